"""Webhook throughput and latency: the full Lianxin path next to a bare baseline.

What it measures
    Two inbound paths of a real ``lianxin serve`` (uvicorn, SQLite, loopback), each next to a
    *baseline* measured in the same run: a bare FastAPI app served by uvicorn the same way
    (``uvicorn.run``, default loop/http, no access log) in its own process, that does only the
    unavoidable part of the webhook.

    * bridge: signed JSON events to ``POST /bridge/events`` — a third each in a known group (from
      ``bot/demo/directory.yaml``), in an unknown group, and private (these queue a reply that
      the delivery worker sends to the fake bridge while the run goes on).
      Baseline: check the HMAC signature, ``json.loads`` the body.
    * wechat: safe-mode (AES) text messages to ``POST /wechat/callback``, encrypted with wechatpy
      as WeChat's servers would; each is answered with an encrypted passive reply.
      Baseline: verify ``msg_signature`` + decrypt with wechatpy, ``parse_message``.

    Requests are fired from this process by ``concurrency`` workers, each with its own
    ``httpx.AsyncClient`` and keep-alive connection, awaiting every answer before sending the
    next; a small warm-up goes first. Bodies, signatures and ciphertexts are built before the
    clock starts. For each path it prints throughput (requests/s over the wall time of the whole
    batch), p50/p99/max latency in ms, CPU per request of the server process and of this client,
    the ratio full/baseline of throughput, whether the targets hold (full ≥ 50 % of baseline
    throughput, full p99 < 250 ms), the HTTP statuses (all 200 expected) and the error count.

    httpx costs the client far more CPU per request than the bare baseline costs its server, so
    on a small machine the baseline figures are the client's ceiling. ``--client raw`` swaps in a
    minimal HTTP/1.1 client (asyncio streams) to see what the servers themselves can do.

    Outside the product: ``bridge.send_url`` and ``wechat.api_base_url`` point at a tiny fake
    (FastAPI, own process) that answers 200 / ``{"errcode": 0}``. After each full run the script
    waits (bounded) for the outbox to drain and reads the database to report journal and outbox
    states. ``--database-url`` runs lianxin on another (empty) database, e.g. PostgreSQL.
    ``bridge.send_interval_s`` is 0: group pacing is a deliberate rate limit toward WeChat
    groups, not server capacity, and would keep the outbox from draining.

    The texts are residents' messages: the labelled non-emergencies of
    ``handlers/classify/corpus`` (about two thousand different ones, so nothing is classified
    twice), senders from a pool of 500.

How to run
    /tmp/venv/bin/python bench/webhook.py            # N=2000 requests per path, concurrency 50
    /tmp/venv/bin/python bench/webhook.py -n 500 -c 20
    /tmp/venv/bin/python bench/webhook.py --client raw   # take httpx out of the measurement
    /tmp/venv/bin/python bench/webhook.py --keep         # keep config, database, server logs
    # production's database, PostgreSQL (an empty database):
    createdb lianxin_bench && /tmp/venv/bin/python bench/webhook.py \
        --database-url postgresql+asyncpg://postgres@127.0.0.1/lianxin_bench

    Everything runs on 127.0.0.1 with free ports and a temporary directory (config, database,
    server logs); the servers are stopped at the end, also on error or Ctrl-C. The load average is
    printed before and after: anything else running on the machine skews every figure.
    Exit status: 0 when every request got a 200, 1 otherwise (targets do not change it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode

import httpx
import uvicorn
import xmltodict
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from bot.channels.bridge import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers

REPO = Path(__file__).resolve().parent.parent
DIRECTORY = REPO / "bot" / "demo" / "directory.yaml"
HOST = "127.0.0.1"
ACCOUNT = "gh_lianxin_bench"
APP_ID = "wx0123456789abcdef"
TARGET_RATIO = 0.5
TARGET_P99_MS = 250.0
# Secrets reach the helper processes through the environment, never the command line.
ENV_PREFIX = "LIANXIN_BENCH_"


# --- secrets and the config file ---------------------------------------------------------------
@dataclass(frozen=True)
class Secrets:
    bridge_secret: str
    wechat_token: str
    aes_key: str  # 43 characters: WeChat's EncodingAESKey
    app_secret: str
    pii_key: str  # 32 random bytes, base64

    @classmethod
    def random(cls) -> Secrets:
        return cls(
            bridge_secret=os.urandom(16).hex(),
            wechat_token=os.urandom(8).hex(),
            aes_key=base64.b64encode(os.urandom(32)).decode()[:43],
            app_secret=os.urandom(16).hex(),
            pii_key=base64.b64encode(os.urandom(32)).decode(),
        )

    def to_env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}BRIDGE_SECRET": self.bridge_secret,
            f"{ENV_PREFIX}WECHAT_TOKEN": self.wechat_token,
            f"{ENV_PREFIX}AES_KEY": self.aes_key,
        }

    def product_env(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with the secrets ``lianxin serve`` and its CLI read (CONTRACT §1)."""
        return {
            **env,
            "LIANXIN__SECURITY__PII_KEY": self.pii_key,
            "LIANXIN__BRIDGE__SECRET": self.bridge_secret,
            "LIANXIN__WECHAT__TOKEN": self.wechat_token,
            "LIANXIN__WECHAT__ENCODING_AES_KEY": self.aes_key,
            "LIANXIN__WECHAT__APP_SECRET": self.app_secret,
        }

    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.wechat_token, self.aes_key, APP_ID)


def write_config(path: Path, db_url: str, fake_url: str, s: Secrets) -> None:
    config = {
        "database": {"url": db_url},
        "timezone": "Asia/Shanghai",
        "server": {"max_body_bytes": 65536, "replay_window_s": 300},
        "bridge": {
            "send_url": f"{fake_url}/send",
            "send_interval_s": 0,
            "timeout_s": 5,
        },
        "wechat": {  # the secrets come from the environment (CONTRACT §1)
            "app_id": APP_ID,
            "original_id": ACCOUNT,
            "api_base_url": fake_url,
        },
        "sms": {"provider": "log"},
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")


# --- the helper apps, each run in its own process by ``--serve`` --------------------------------
def baseline_app() -> FastAPI:
    """Only what any webhook must do: check the signature, decrypt, parse. No database."""
    secret = os.environ[f"{ENV_PREFIX}BRIDGE_SECRET"]
    token = os.environ[f"{ENV_PREFIX}WECHAT_TOKEN"]
    crypto = WeChatCrypto(token, os.environ[f"{ENV_PREFIX}AES_KEY"], APP_ID)
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/bridge/events")
    async def bridge_events(request: Request) -> JSONResponse:
        body = await request.body()
        ts = request.headers.get(TIMESTAMP_HEADER, "")
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(sign(secret, ts, body), given.strip().lower()):
            return JSONResponse({"ok": False, "error": "bad signature"}, status_code=401)
        try:
            data = json.loads(body)
        except ValueError:
            return JSONResponse({"ok": False, "error": "malformed JSON"}, status_code=422)
        if not isinstance(data, dict):
            return JSONResponse({"ok": False, "error": "not an object"}, status_code=422)
        return JSONResponse({"ok": True})

    @app.post("/wechat/callback")
    async def wechat_callback(request: Request) -> Response:
        body = await request.body()
        q = request.query_params
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        try:
            xml = crypto.decrypt_message(body, q.get("msg_signature", ""), ts, nonce)
        except InvalidSignatureException:
            return PlainTextResponse("bad msg_signature", status_code=403)
        parse_message(xml)
        return PlainTextResponse("success")

    return app


def fake_app() -> FastAPI:
    """The outside world: the bridge's send endpoint and WeChat's API, always answering OK."""
    seen: Counter[str] = Counter()  # one event loop, no threads: no lock needed
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return dict(seen)

    # When a message mentioning each ``sos-`` sender first arrived (bench/wire.py's emergency
    # lane: the safety reply @-mentions the resident in their group).
    sos_first: dict[str, float] = {}

    @app.get("/sos")
    async def sos() -> dict[str, float]:
        return sos_first

    @app.post("/send")
    async def send(request: Request) -> JSONResponse:
        body = await request.body()
        seen["bridge_send"] += 1
        if b"sos-" in body:
            arrived = time.time()
            for who in json.loads(body).get("mentions") or []:
                if who.startswith("sos-"):
                    sos_first.setdefault(who, arrived)
        return JSONResponse({"ok": True})

    @app.get("/cgi-bin/token")
    async def token() -> JSONResponse:
        seen["wechat_token"] += 1
        return JSONResponse({"access_token": "bench-token", "expires_in": 7200})

    @app.post("/cgi-bin/message/custom/send")
    async def custom_send(request: Request) -> JSONResponse:
        await request.body()
        seen["wechat_custom_send"] += 1
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @app.post("/sms")
    async def sms() -> JSONResponse:
        seen["sms"] += 1
        return JSONResponse({"ok": True})

    return app


def serve(role: str, port: int) -> None:
    """Entry point of a helper process: ``uvicorn.run`` as ``lianxin serve`` does."""
    app = baseline_app() if role == "baseline" else fake_app()
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# --- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """A subprocess serving HTTP on loopback; stopped (its whole process group) by ``stop``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self._argv = [*argv, "--port", str(self.port)]
        self._env = env
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self._argv,
                env=self._env,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches its children
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The server process and its living descendants (Linux; empty elsewhere)."""
        if self._proc is None:
            return []
        pids, found = [self._proc.pid], []
        while pids:
            pid = pids.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.append(pid)
            pids += [int(c) for c in children]
        return found

    def cpu_seconds(self, *, tree: bool = True) -> float:
        """User + system CPU time so far of the server process and, with ``tree``, of its
        living descendants (``lianxin serve``'s processing process) (Linux; NaN elsewhere)."""
        if self._proc is None:
            return float("nan")
        total = 0.0
        for pid in self.pids() if tree else [self._proc.pid]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                if pid == self._proc.pid:
                    return float("nan")
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def last_exception(self) -> tuple[int, str]:
        """How many tracebacks the server logged, and the exception line of the last one."""
        try:
            lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return 0, ""
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
        if not starts:
            return 0, ""
        after = lines[starts[-1] + 1 :]
        last = next((line for line in after if line and not line[0].isspace()), "")
        return len(starts), last

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --- requests -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    path: str
    body: bytes
    headers: dict[str, str]
    params: dict[str, str] | None = None


_serial = itertools.count(1)
MESSAGES = REPO / "handlers" / "classify" / "corpus"


@functools.cache
def _texts() -> tuple[str, ...]:
    """Residents' messages: the corpus's labelled non-emergencies, in a fixed shuffle.

    About two thousand different texts, so every request is classified afresh (no cache sees
    a repeat) with the length and mix of real chat. Emergencies are left out: they are rare in
    real traffic, and each opens a P1 ticket and pages two officers.
    """
    seen: dict[str, None] = {}
    for path in sorted(MESSAGES.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and not row.get("emergency") and "]]>" not in row["text"]:
                seen.setdefault(row["text"], None)
    texts = list(seen) or ["請問明天村裡停水嗎？", "路口的路燈壞了好幾天了", "谢谢警官提醒", "你好"]
    random.Random(20261129).shuffle(texts)
    return tuple(texts)


def bridge_requests(n: int, s: Secrets, known_groups: Sequence[str]) -> list[Req]:
    """Signed events: a third each in a known group, an unknown group, and private."""
    now_ts = int(time.time())
    out = []
    for i in range(n):
        k = next(_serial)
        group: dict[str, str] | None
        if i % 3 == 0:
            group = {"id": known_groups[k % len(known_groups)], "name": "警民群"}
        elif i % 3 == 1:
            group = {"id": f"grp-unknown-{k % 17}", "name": "未登記群"}
        else:
            group = None
        event = {
            "event_id": f"bench-{k}",
            "type": "message",
            "timestamp": now_ts,
            "group": group,
            "sender": {"id": f"wxid_bench_{k % 500}", "nickname": "居民"},
            "message": {
                "type": "text",
                "text": _texts()[k % len(_texts())],
                "mentions": [],
                "media_url": None,
            },
        }
        raw = json.dumps(event, ensure_ascii=False).encode()
        headers = signed_headers(s.bridge_secret, raw, datetime.now(UTC))
        out.append(Req("/bridge/events", raw, headers))
    return out


def wechat_requests(n: int, s: Secrets) -> list[Req]:
    """Safe-mode text messages, encrypted by wechatpy, shaped like ``post_wechat_safe``."""
    crypto = s.crypto()
    ts = str(int(time.time()))
    out = []
    for _ in range(n):
        k = next(_serial)
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[o_bench_{k % 500}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{_texts()[k % len(_texts())]}]]></Content>"
            f"<MsgId>{10_000_000 + k}</MsgId></xml>"
        )
        nonce = os.urandom(4).hex()
        doc = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{doc['Encrypt']}]]></Encrypt></xml>"
        ).encode()
        params = {
            "signature": _sha1_signature(s.wechat_token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": doc["MsgSignature"],
        }
        out.append(Req("/wechat/callback", body, {"Content-Type": "text/xml"}, params))
    return out


def _sha1_signature(token: str, ts: str, nonce: str) -> str:
    signature = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
    check_signature(token, signature, ts, nonce)  # the same rule wechatpy verifies with
    return signature


# --- load ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    count: int
    wall_s: float
    latencies_ms: list[float]
    statuses: Counter[str]
    errors: int
    client_cpu_s: float  # this process, while the batch ran
    server_cpu_s: float  # the target server process (Linux /proc), while the batch ran

    @property
    def rps(self) -> float:
        return self.count / self.wall_s if self.wall_s > 0 else 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, max(0, math.ceil(q * len(data)) - 1))]  # nearest rank

    def cpu_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.count


class HttpxConnection:
    """One worker's ``httpx.AsyncClient`` with a single keep-alive connection.

    One client per worker rather than one shared pool of 50: a shared httpx pool costs this
    process ~2.5× more CPU per request at concurrency 50 (encode/httpx#3215), which on two cores
    would be measured instead of the servers.
    """

    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0)

    async def post(self, req: Req) -> int:
        response = await self._client.post(
            req.path, content=req.body, headers=req.headers, params=req.params
        )
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client (``--client raw``): almost no client-side CPU.

    Enough for these servers (every answer has a Content-Length); used to see what the servers
    can do when the load generator is not the bottleneck.
    """

    def __init__(self, base_url: str) -> None:
        self._port = int(base_url.rsplit(":", 1)[1])
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, req: Req) -> int:
        if self._conn is None:
            self._conn = await asyncio.open_connection(HOST, self._port)
        reader, writer = self._conn
        target = req.path + (f"?{urlencode(req.params)}" if req.params else "")
        head = [f"POST {target} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(req.body)}"]
        head += [f"{k}: {v}" for k, v in req.headers.items()]
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + req.body)
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            await reader.readexactly(length)
        except (IndexError, ValueError, asyncio.IncompleteReadError, OSError) as exc:
            await self.aclose()  # the next request opens a new connection
            raise ConnectionError(f"no valid response: {type(exc).__name__}") from None
        if close:
            await self.aclose()
        return status

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].close()
            with contextlib.suppress(OSError):
                await conn[1].wait_closed()


async def fire(
    server: Server, reqs: Sequence[Req], concurrency: int, client: str = "httpx"
) -> RunResult:
    """Send every request once with ``concurrency`` workers; time each and the whole batch."""
    pending: Iterator[Req] = iter(reqs)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0

    async def worker(conn: HttpxConnection | RawConnection) -> None:
        nonlocal errors
        try:
            for req in pending:  # a shared iterator: each request is taken by exactly one worker
                started = time.perf_counter()
                try:
                    status = await conn.post(req)
                    statuses[str(status)] += 1
                    errors += status != 200
                except (httpx.HTTPError, OSError) as exc:
                    statuses[type(exc).__name__] += 1
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            await conn.aclose()

    # Clients are made before the clock starts (an httpx client loads CA certificates).
    conns = [
        HttpxConnection(server.url) if client == "httpx" else RawConnection(server.url)
        for _ in range(concurrency)
    ]
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in conns))
    wall = time.perf_counter() - started
    return RunResult(
        len(reqs),
        wall,
        latencies,
        statuses,
        errors,
        client_cpu_s=time.process_time() - client_cpu,
        server_cpu_s=server.cpu_seconds() - server_cpu,
    )


# --- database and fake peeks --------------------------------------------------------------------
async def db_states(db_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Journal statuses and outbox ``status/sent_via``, read through SQLAlchemy."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            journal_rows = await conn.execute(
                text("SELECT status, count(*) FROM inbound_events GROUP BY 1")
            )
            journal = {status: count for status, count in journal_rows}
            outbox_rows = await conn.execute(
                text("SELECT status, sent_via, count(*) FROM outbox GROUP BY 1, 2")
            )
            outbox = {f"{status}/{via or '-'}": count for status, via, count in outbox_rows}
    finally:
        await engine.dispose()
    return journal, outbox


async def wait_outbox_idle(db_url: str, timeout_s: float = 120.0) -> str:
    """Wait (bounded) until no outbox row is pending or sending; says how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        _, outbox = await db_states(db_url)
        if not any(k.startswith(("pending/", "sending/")) for k in outbox):
            return f"outbox idle {time.monotonic() - started:.1f} s later"
        await asyncio.sleep(0.2)
    return f"outbox still busy after {timeout_s:.0f} s"


async def empty_database(db_url: str) -> bool:
    """True when the database holds no Lianxin tables yet (the bench needs a fresh one)."""
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return "inbound_events" not in tables


def fake_stats(fake: Server) -> dict[str, int]:
    return dict(httpx.get(f"{fake.url}/stats", timeout=5.0).json())


# --- report -------------------------------------------------------------------------------------
def print_pair(name: str, base: RunResult, full: RunResult) -> bool:
    """Print one path's figures and targets; True when every request got a 200."""
    ratio = full.rps / base.rps if base.rps else 0.0
    print(f"\n== {name} ({full.count} requests per side)")
    print(
        f"{'':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'server CPU':>12}{'client CPU':>12}  statuses"
    )
    for label, r in (("baseline", base), ("full", full)):
        statuses = ", ".join(f"{k}×{v}" for k, v in sorted(r.statuses.items()))
        print(
            f"{label:10}{r.rps:9.1f}{r.pct(0.5):9.1f}{r.pct(0.99):9.1f}"
            f"{max(r.latencies_ms, default=0):9.1f}"
            f"{r.cpu_ms(r.server_cpu_s):8.2f} ms/r{r.cpu_ms(r.client_cpu_s):8.2f} ms/r  {statuses}"
        )
    print(f"throughput full/baseline = {ratio:.2f}  (target ≥ {TARGET_RATIO:.2f})")
    if ratio >= TARGET_RATIO:
        print("  target met")
    else:
        needed = TARGET_RATIO * base.rps
        short = f" ({needed / full.rps:.1f}× short)" if full.rps else ""
        print(f"  target MISSED: need ≥ {needed:.0f} req/s, got {full.rps:.0f}{short}")
    p99 = full.pct(0.99)
    print(f"full p99 = {p99:.1f} ms  (target < {TARGET_P99_MS:.0f} ms)")
    print(
        "  target met"
        if p99 < TARGET_P99_MS
        else f"  target MISSED by {p99 - TARGET_P99_MS:.0f} ms"
    )
    all_ok = base.errors == 0 and full.errors == 0
    print(
        f"all responses 200: {'yes' if all_ok else 'NO'}  "
        f"(errors: baseline {base.errors}, full {full.errors})"
    )
    return all_ok


# --- main ---------------------------------------------------------------------------------------
@dataclass
class Bench:
    n: int
    concurrency: int
    warmup: int
    client: str
    secrets: Secrets
    baseline: Server
    full: Server
    fake: Server
    db_url: str

    async def run(self) -> bool:
        """Both paths, each baseline then full; True when every request got a 200."""
        s = self.secrets
        groups = [g["id"] for g in yaml.safe_load(DIRECTORY.read_text("utf-8"))["groups"]]
        paths: list[tuple[str, Callable[[int], list[Req]]]] = [
            ("bridge  POST /bridge/events", lambda k: bridge_requests(k, s, groups)),
            ("wechat  POST /wechat/callback (safe mode)", lambda k: wechat_requests(k, s)),
        ]
        ok = True
        for name, build in paths:
            for server in (self.baseline, self.full):  # warm-up: imports, caches, database file
                warm = await fire(server, build(self.warmup), self.concurrency, self.client)
                if warm.errors:
                    ok = False
                    print(f"warm-up of {server.name}: {warm.errors} errors {dict(warm.statuses)}")
            await wait_outbox_idle(self.db_url)
            base = await fire(self.baseline, build(self.n), self.concurrency, self.client)
            full = await fire(self.full, build(self.n), self.concurrency, self.client)
            ok = print_pair(name, base, full) and ok
            tracebacks, last = self.full.last_exception()
            if tracebacks:
                print(f"  lianxin logged {tracebacks} tracebacks so far; last: {last}")
            waited = await wait_outbox_idle(self.db_url)
            journal, outbox = await db_states(self.db_url)
            print(f"after the run ({waited}; totals include the warm-up):")
            print(f"  journal: {journal}")
            print(f"  outbox:  {outbox}")
            print(f"  fake peer received: {fake_stats(self.fake)}")
        return ok


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _where(db_url: str) -> str:
    """The database for the report, without a password."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return f"SQLite {url.database}"
    return f"{url.get_backend_name()} {url.render_as_string(hide_password=True)}"


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per path and side")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=None, help="default: min(200, n // 10)")
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="httpx.AsyncClient (default) or a minimal HTTP/1.1 client that costs almost no CPU",
    )
    parser.add_argument(
        "--database-url",
        help="an empty database for lianxin (e.g. postgresql+asyncpg://…); default: SQLite "
        "in the temporary directory",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    parser.add_argument("--serve", choices=["baseline", "fake"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.n < 1 or args.concurrency < 1:
        parser.error("-n and -c must be at least 1")
    warmup = args.warmup if args.warmup is not None else max(1, min(200, args.n // 10))

    # A stop request (SIGTERM) unwinds like Ctrl-C, so the servers are always stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    s = Secrets.random()
    workdir = Path(tempfile.mkdtemp(prefix="lianxin-bench-"))
    db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'lianxin.db'}"
    if args.database_url and not asyncio.run(empty_database(db_url)):
        parser.error("--database-url must name an empty database (the bench counts its rows)")
    config = workdir / "config.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANXIN")}
    env["PYTHONUNBUFFERED"] = "1"
    helper_env = {**env, **s.to_env()}
    product_env = s.product_env(env)
    me = [sys.executable, str(Path(__file__).resolve())]
    fake = Server("fake", [*me, "--serve", "fake"], helper_env, workdir)
    baseline = Server("baseline", [*me, "--serve", "baseline"], helper_env, workdir)
    full = Server(
        "lianxin",
        [sys.executable, "-m", "bot", "serve", "--config", str(config), "--host", HOST],
        product_env,
        workdir,
    )
    servers = (fake, baseline, full)
    try:
        write_config(config, db_url, fake.url, s)
        # `directory load` works on an existing, migrated database only: create it first.
        for command in (["db", "upgrade"], ["directory", "load", str(DIRECTORY)]):
            subprocess.run(
                [sys.executable, "-m", "bot", *command, "--config", str(config)],
                env=product_env,
                cwd=workdir,
                check=True,
                timeout=120,
                stdout=subprocess.DEVNULL,
            )
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        print(
            f"lianxin {full.url} ({_where(db_url)}), baseline {baseline.url}, fake {fake.url}; "
            f"n={args.n} per side, concurrency {args.concurrency}, warm-up {warmup}, "
            f"client {args.client}, {os.cpu_count()} CPUs, load average {_load()}"
        )
        bench = Bench(
            args.n, args.concurrency, warmup, args.client, s, baseline, full, fake, db_url
        )
        ok = asyncio.run(bench.run())
        print(f"\nload average at the end: {_load()}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
