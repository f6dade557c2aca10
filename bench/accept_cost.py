"""CPU per accepted WeChat callback, in process (issue 17, acceptance target (a)).

    .venv/bin/python bench/accept_cost.py                   # this checkout, SQLite
    .venv/bin/python bench/accept_cost.py --repo /tmp/old   # another checkout's code
    .venv/bin/python bench/accept_cost.py --profile 30      # and the top functions

Builds the real app (tests/harness.py: a migrated SQLite database, the fake world, a manual
clock) in ``api`` reply mode and calls it as ASGI directly, without a client or a socket, with
``--events`` distinct safe-mode WeChat messages (the corpus's texts, encrypted by wechatpy as
WeChat's servers do), ``--concurrency`` at a time so that the journal writer group-commits as it
does under load. Nothing is processed: this is what the server pays to accept an event (verify,
decrypt, parse, the emergency check, the journal). Beside it, the same requests through the
bare floor of ``bench/webhook.py`` (signature check, decrypt, parse) as ASGI in the same process.
Printed: CPU ms per request for each, their ratio (what wrk's req/s ratio tends to when the
server is the bottleneck), and with ``--profile`` the Python calls per accepted request, which
is deterministic where the CPU time is not (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "bench"))
import cpu_runs  # noqa: E402


def _texts(repo: Path, n: int) -> list[str]:
    """``n`` distinct texts: the corpus's non-emergencies, numbered once they run out."""
    texts = cpu_runs.corpus_texts(repo, 20261207)
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" {i}") for i in range(n)]


def _requests(texts: list[str], now: int) -> list[tuple[bytes, bytes]]:
    """(query string, body) of each message, as WeChat sends them in safe mode."""
    from urllib.parse import urlencode

    import xmltodict
    from wechatpy.crypto import WeChatCrypto

    from tests.harness import ACCOUNT, WECHAT_AES_KEY, WECHAT_APP_ID, WECHAT_TOKEN, _sha1

    crypto = WeChatCrypto(WECHAT_TOKEN, WECHAT_AES_KEY, WECHAT_APP_ID)
    out = []
    for i, text in enumerate(texts):
        ts, nonce = str(now), f"n{i:08d}"
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[o_bench_{i % 500}]]></FromUserName>"
            f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{50_000_000 + i}</MsgId></xml>"
        )
        doc = xmltodict.parse(crypto.encrypt_message(xml, nonce, ts))["xml"]
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{doc['Encrypt']}]]></Encrypt></xml>"
        ).encode()
        query = urlencode(
            {
                "signature": _sha1(WECHAT_TOKEN, ts, nonce),
                "timestamp": ts,
                "nonce": nonce,
                "encrypt_type": "aes",
                "msg_signature": doc["MsgSignature"],
            }
        ).encode()
        out.append((query, body))
    return out


async def _call(app: Any, query: bytes, body: bytes) -> int:
    """One POST /wechat/callback through the ASGI interface; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/wechat/callback",
        "raw_path": b"/wechat/callback",
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"lianxin"),
            (b"content-type", b"text/xml"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _measure(
    app: Any, requests: list[tuple[bytes, bytes]], concurrency: int, profiler: Any
) -> float:
    """CPU seconds for all ``requests``, ``concurrency`` in flight at a time."""
    cpu = 0.0
    for start in range(0, len(requests), concurrency):
        wave = requests[start : start + concurrency]
        t0 = time.process_time()
        if profiler:
            profiler.enable()
        statuses = await asyncio.gather(*(_call(app, q, b) for q, b in wave))
        if profiler:
            profiler.disable()
        cpu += time.process_time() - t0
        bad = [s for s in statuses if s != 200]
        assert not bad, f"statuses {bad}"
    return cpu


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bot.db import migrate_url
    from tests.fakes import FakeWorld
    from tests.harness import Harness

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate_url(url)
        world = FakeWorld()
        world.start()
        h = Harness.build(url, world, wechat={"reply_mode": "api"})
        await h.load_directory()
        import bot.app

        getattr(bot.app, "settle_heap", lambda: None)()
        app = h.client._transport.app  # type: ignore[attr-defined]
        now = int(h.clock.now().timestamp())
        texts = _texts(Path(args.repo), args.events + 200)
        warm = _requests(texts[:200], now)
        requests = _requests(texts[200:], now)
        await _measure(app, warm, args.concurrency, None)  # imports, caches, statements
        floor = _floor_app(h)
        await _measure(floor, warm, args.concurrency, None)
        profiler = cProfile.Profile() if args.profile else None
        floor_cpu = await _measure(floor, requests, args.concurrency, None)
        full_cpu = await _measure(app, requests, args.concurrency, profiler)
        await h.close()
        world.stop()
        result: dict[str, Any] = {
            "repo": str(args.repo),
            "events": args.events,
            "floor_cpu_ms_per_request": round(floor_cpu * 1000 / args.events, 3),
            "accept_cpu_ms_per_request": round(full_cpu * 1000 / args.events, 3),
            "floor_over_accept": round(floor_cpu / full_cpu, 3),
        }
        if profiler:
            stats = pstats.Stats(profiler)
            result["python_calls_per_request"] = stats.total_calls // args.events  # type: ignore[attr-defined]
            cpu_runs.print_profile(profiler, args.profile)
        return result


def _floor_app(h: Any) -> Any:
    """bench/webhook.py's bare floor, keyed with the harness's WeChat secrets."""
    from tests.harness import WECHAT_AES_KEY, WECHAT_APP_ID, WECHAT_TOKEN

    sys.path.insert(0, str(HERE / "bench"))
    os.environ["LIANXIN_BENCH_BRIDGE_SECRET"] = "x" * 32
    os.environ["LIANXIN_BENCH_WECHAT_TOKEN"] = WECHAT_TOKEN
    os.environ["LIANXIN_BENCH_AES_KEY"] = WECHAT_AES_KEY
    import webhook

    webhook.APP_ID = WECHAT_APP_ID
    return webhook.baseline_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    cpu_runs.add_common(parser)
    cpu_runs.run_repeatedly(run, parser.parse_args(), "request")


if __name__ == "__main__":
    main()
