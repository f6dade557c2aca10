"""A small fake of the outside world on loopback: the bridge's send endpoint, WeChat's API, SMS,
WeCom group robots.

It runs a real HTTP server (uvicorn in a thread) so the product's own HTTP client, timeouts and
signatures are exercised. Tests script its answers and read what it recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeState:
    bridge_secret: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # Scripted answers for /send, consumed in order; an int is an HTTP status, "hang" sleeps
    # (5 s, or "hang:N" N seconds).
    send_script: deque[int | str] = field(default_factory=deque)
    # The same, for the sends to one group only (sends to different chats go out side by side,
    # so which one would take the next answer of send_script is a race).
    group_send_script: dict[str, deque[int | str]] = field(default_factory=dict)
    token_counter: int = 0
    # errcodes to answer on custom/send, consumed in order (0 = ok)
    custom_send_script: deque[int] = field(default_factory=deque)
    valid_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sends(self) -> list[dict[str, Any]]:
        """Bodies of every POST to /send, in order, including retries."""
        return [r.json() for r in self.requests if r.path == "/send"]

    def delivered(self) -> list[dict[str, Any]]:
        """What the bridge actually delivered: accepted sends, one per idempotency key."""
        seen: dict[str, dict[str, Any]] = {}
        for r in self.requests:
            if r.path == "/send" and r.headers.get("x-fake-accepted") == "1":
                body = r.json()
                seen.setdefault(body["idempotency_key"], body)
        return list(seen.values())

    def by_path(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.send_script.clear()
            self.group_send_script.clear()
            self.custom_send_script.clear()
            self.valid_tokens.clear()


def _app(state: FakeState) -> FastAPI:
    app = FastAPI()

    async def record(request: Request, accepted: bool = True) -> Recorded:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers["x-fake-accepted"] = "1" if accepted else "0"
        rec = Recorded(request.url.path, headers, body, dict(request.query_params))
        with state.lock:
            state.requests.append(rec)
        return rec

    @app.post("/send")
    async def send(request: Request) -> JSONResponse:
        body = await request.body()
        ts = request.headers.get("x-lianxin-timestamp", "")
        expected = hmac.new(
            state.bridge_secret.encode(), ts.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-lianxin-signature", "")):
            await record(request, accepted=False)
            return JSONResponse({"error": "bad signature"}, status_code=401)
        with state.lock:
            for_group = state.group_send_script.get(json.loads(body).get("group_id") or "")
            if for_group:
                step = for_group.popleft()
            else:
                step = state.send_script.popleft() if state.send_script else 200
        if isinstance(step, str) and step.startswith("hang"):
            # Delivered, but the answer comes too late for the client. Recorded on arrival: five
            # seconds later another test owns the shared state, and a late record there is a
            # send that test never made.
            await record(request, accepted=True)
            # "hang:1.5": this long instead of 5 s.
            await asyncio.sleep(float(step.partition(":")[2] or 5))
            return JSONResponse({"ok": True})
        if isinstance(step, str) and step.startswith("429:"):
            # "429:42": slow down, with Retry-After: 42.
            await record(request, accepted=False)
            headers = {"Retry-After": step.partition(":")[2]}
            return JSONResponse({"ok": False}, status_code=429, headers=headers)
        await record(request, accepted=step == 200)
        return JSONResponse({"ok": step == 200}, status_code=int(step))

    @app.get("/cgi-bin/token")
    async def token(request: Request) -> JSONResponse:
        await record(request)
        with state.lock:
            state.token_counter += 1
            tok = f"tok-{state.token_counter}"
            state.valid_tokens.add(tok)
        return JSONResponse({"access_token": tok, "expires_in": 7200})

    @app.post("/cgi-bin/message/custom/send")
    async def custom_send(request: Request) -> JSONResponse:
        token = request.query_params.get("access_token", "")
        with state.lock:
            if token not in state.valid_tokens:
                code = 40001
            else:
                code = state.custom_send_script.popleft() if state.custom_send_script else 0
        content = (await request.json()).get("text", {}).get("content", "")
        if code == 0 and len(content.encode()) > 2048:
            code = 45002  # WeChat's "content size out of limit"
        await record(request, accepted=code == 0)
        return JSONResponse({"errcode": code, "errmsg": "ok" if code == 0 else "error"})

    @app.post("/cgi-bin/webhook/send")
    async def wecom_robot(request: Request) -> JSONResponse:
        # A WeCom group robot's webhook (``?key=``), for bulletins.wecom_webhook_url.
        await record(request)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @app.post("/sms")
    async def sms(request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse({"ok": True})

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """An ASGI app served by uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


class FakeWorld(LoopbackServer):
    """Runs the fake server in a background thread for the whole test session."""

    def __init__(self) -> None:
        self.state = FakeState()
        super().__init__(_app(self.state))
