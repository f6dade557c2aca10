"""How long a fire reported in one group waits while another group is flooded (issue 12, finding 2).

    .venv/bin/python bench/emergency_delay.py                 # this checkout
    .venv/bin/python bench/emergency_delay.py --repo /tmp/old # another checkout, same script

Runs ``lianxin serve`` (the checkout's own, from ``--repo``) on a temporary SQLite database with
``bridge.send_interval_s: 3`` and a recording fake bridge on loopback. One resident sends 30
emergency messages to 橋鎮's group; then a fire is reported in 河西's group. It prints
how long after the fire's POST its safety reply (119) and the P1 page to 河西's duty officer
reached the bridge, and, as the baseline measured in the same run, how long the same fire takes
with no flood before it. Only the CLI, the config file and the signed bridge protocol are used,
so the script measures old and new versions alike. Bounded: gives up after ``--timeout`` s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent.parent
DIRECTORY = """
stations:
  - {id: county, name: 甘泉縣調解中心}
  - {id: qiaozhen, name: 橋鎮派出所, parent: county}
  - {id: hexi, name: 河西派出所, parent: county}
officers:
  - {id: off-zhao, name: 趙所長, station: qiaozhen, wechat_id: wxid_zhao, role: leader}
  - {id: off-wang, name: 王警官, station: qiaozhen, wechat_id: wxid_wang, role: officer}
  - {id: off-chen, name: 陳警官, station: hexi, wechat_id: wxid_chen, role: officer}
groups:
  - {id: grp-qiaozhen-01, name: 橋鎮村警民群, station: qiaozhen, officer: off-wang}
  - {id: grp-hexi-01, name: 河西村警民群, station: hexi, officer: off-chen}
roster:
  - {station: qiaozhen, officer: off-wang, days: [mon, tue, wed, thu, fri, sat, sun],
     from: "00:00", to: "23:59"}
  - {station: hexi, officer: off-chen, days: [mon, tue, wed, thu, fri, sat, sun],
     from: "00:00", to: "23:59"}
"""
FLOOD = "着火了!三楼冒烟了,快来人{}"
FIRE = "河西村十二号着火了,火很大,快来人{}"


class Recorder:
    """The fake bridge's /send: when each message arrived, by group or user."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, object]]] = []
        self.lock = threading.Lock()

    def first(self, since: float, *, group: str | None = None, user: str | None = None) -> float:
        with self.lock:
            for at, body in self.arrivals:
                if at < since:
                    continue
                if group and body.get("group_id") == group:
                    return at - since
                if user and body.get("user_id") == user:
                    return at - since
        return -1.0


def fake_bridge(recorder: Recorder, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with recorder.lock:
                recorder.arrivals.append((time.monotonic(), json.loads(body)))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def post(port: int, secret: str, group: str, sender: str, text: str) -> None:
    body = json.dumps(
        {
            "event_id": f"evt-{os.urandom(6).hex()}",
            "type": "message",
            "timestamp": int(time.time()),
            "group": {"id": group, "name": "群"},
            "sender": {"id": sender, "nickname": "居民"},
            "message": {"type": "text", "text": text, "mentions": [], "media_url": None},
        },
        ensure_ascii=False,
    ).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://{HOST}:{port}/bridge/events",
        data=body,
        headers={
            "content-type": "application/json",
            "X-Lianxin-Timestamp": ts,
            "X-Lianxin-Signature": sig,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200, answer.status


def wait_for(recorder: Recorder, since: float, timeout: float) -> tuple[float, float]:
    """Seconds until the fire's safety reply reached 河西's group and its page 陳."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = recorder.first(since, group="grp-hexi-01")
        page = recorder.first(since, user="wxid_chen")
        if reply >= 0 and page >= 0:
            return reply, page
        time.sleep(0.05)
    return recorder.first(since, group="grp-hexi-01"), recorder.first(since, user="wxid_chen")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose lianxin to run")
    parser.add_argument("--flood", type=int, default=30)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=150.0)
    args = parser.parse_args()
    python = args.repo / ".venv" / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="lx-emergency-"))
    bridge_port, app_port = free_port(), free_port()
    recorder = Recorder()
    bridge = fake_bridge(recorder, bridge_port)
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
    (work / "directory.yaml").write_text(DIRECTORY, encoding="utf-8")
    (work / "config.yaml").write_text(
        f"database:\n  url: sqlite+aiosqlite:///{work}/lx.db\n"
        f"bridge:\n  send_url: http://{HOST}:{bridge_port}/send\n"
        f"  send_interval_s: {args.interval}\n  timeout_s: 5\n"
        "sms:\n  provider: log\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "LIANXIN_CONFIG": str(work / "config.yaml"),
        "LIANXIN__BRIDGE__SECRET": secret,
        "LIANXIN__SECURITY__PII_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    cli = [str(python), "-m", "bot"]
    for step in (["db", "upgrade"], ["directory", "load", str(work / "directory.yaml")]):
        subprocess.run(cli + step, cwd=args.repo, env=env, check=True, capture_output=True)
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [*cli, "serve", "--host", HOST, "--port", str(app_port)],
        cwd=args.repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://{HOST}:{app_port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        # Baseline, same run: a fire with nothing queued.
        start = time.monotonic()
        post(app_port, secret, "grp-hexi-01", "wxid_calm", FIRE.format("(一)"))
        base_reply, base_page = wait_for(recorder, start, args.timeout)
        time.sleep(args.interval + 0.5)  # let 河西's group be free to send again
        for i in range(args.flood):
            post(app_port, secret, "grp-qiaozhen-01", "wxid_flood", FLOOD.format(i))
        start = time.monotonic()
        post(app_port, secret, "grp-hexi-01", "wxid_other", FIRE.format("(二)"))
        reply, page = wait_for(recorder, start, args.timeout)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        bridge.shutdown()
    flood_replies = sum(1 for _, b in recorder.arrivals if b.get("group_id") == "grp-qiaozhen-01")
    print(f"checkout: {args.repo}")
    print(
        f"flood: {args.flood} emergencies from one resident in grp-qiaozhen-01, "
        f"pacing {args.interval} s"
    )
    print(f"baseline (no flood): safety reply {base_reply:.2f} s, P1 page {base_page:.2f} s")
    print(
        f"behind the flood:    safety reply {reply:.2f} s, P1 page {page:.2f} s "
        f"(-1 = not within {args.timeout:.0f} s)"
    )
    if base_reply > 0 and reply > 0:
        print(
            f"ratio flood/baseline: safety reply {reply / base_reply:.1f}x, "
            f"P1 page {page / max(base_page, 1e-3):.1f}x"
        )
    print(f"messages delivered to the flooded group by the end: {flood_replies}")
    return 0 if reply >= 0 and page >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
