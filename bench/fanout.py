"""Bulletin fan-out: 10,000 groups, one bulletin, and a crash halfway through.

What it measures
    1. *Baseline*: 10,000 bare signed POSTs (the bridge's JSON, HMAC headers) sent one after the
       other from this process with ``httpx.AsyncClient`` to the fake bridge: the unavoidable
       cost of talking to the bridge, with no database.
    2. *Fan-out*: a real Lianxin server (SQLite, loopback, ``bridge.send_interval_s: 0`` — pacing
       off, since pacing is a deliberate rate limit, not capacity) with 10,000 groups inserted
       directly into its database. One bulletin targeting ``all`` is stored due two seconds
       later; the bulletin tick fans it out and the outbox worker delivers it. Reported: time from
       the due time to the last delivery, deliveries per second over the sending phase, and the
       server's peak memory (VmHWM).
    3. *Crash*: the same on a fresh database, but the server is killed with SIGKILL once the fake
       bridge has accepted half of the messages, then started again. The fake bridge de-duplicates
       by ``idempotency_key`` and counts: every group must have exactly one delivery. Re-sends
       of rows that were in flight at the kill (same key, dropped by the bridge) are shown too.

    The fake bridge is a real HTTP server (uvicorn, own process) that checks the signature and
    answers 200 at once. The Lianxin server is ``lianxin serve`` once the bulletin job is wired
    into ``bot/scheduler.py``; until then the same start-up with that one job added
    (``--serve-lianxin``, see ``serve_lianxin``).

How to run
    .venv/bin/python bench/fanout.py               # 10,000 groups
    .venv/bin/python bench/fanout.py --groups 2000

    Everything runs on 127.0.0.1 with free ports in a temporary directory; servers are stopped
    at the end, also on error. Exit status 0 when every group got exactly one delivery in both
    runs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SECRET_ENV = "LIANXIN__BRIDGE__SECRET"


# --- helper processes ---------------------------------------------------------------------------
def fake_bridge_app() -> FastAPI:
    """The bridge's send endpoint: verifies the signature, de-duplicates by key, counts."""
    secret = os.environ[SECRET_ENV].encode()
    state: dict[str, Any] = {"posts": 0, "bad": 0, "first": None, "last": None}
    keys: set[str] = set()
    per_group: Counter[str] = Counter()
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/reset")
    async def reset() -> dict[str, bool]:
        state.update(posts=0, bad=0, first=None, last=None)
        keys.clear()
        per_group.clear()
        return {"ok": True}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        counts = Counter(per_group.values())
        return {
            **state,
            "unique": len(keys),
            "groups": len(per_group),
            "groups_by_count": {str(k): v for k, v in counts.items()},
        }

    @app.post("/send")
    async def send(request: Request) -> JSONResponse:
        body = await request.body()
        ts = request.headers.get("x-lianxin-timestamp", "")
        expected = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-lianxin-signature", "")):
            state["bad"] += 1
            return JSONResponse({"ok": False}, status_code=401)
        state["posts"] += 1
        data = json.loads(body)
        key = data["idempotency_key"]
        if key not in keys:  # a repeated key is acknowledged and not delivered again
            keys.add(key)
            if data.get("group_id"):
                per_group[data["group_id"]] += 1
            now = time.time()
            state["first"] = state["first"] or now
            state["last"] = now
        return JSONResponse({"ok": True})

    return app


def serve_lianxin(config: str, port: int) -> None:
    """``lianxin serve`` with the bulletin tick added to the scheduler (the proposed wiring)."""
    import uvicorn

    import bot.app
    from bot.db import migrate_url
    from bot.settings import load_settings
    from bot.wiring import build_runtime
    from broadcasts.bulletins import bulletin_tick_job

    original = bot.app.build_scheduler

    def build_scheduler(runtime: Any) -> Any:
        scheduler = original(runtime)
        if scheduler.get_job("bulletin-tick") is None:
            scheduler.add_job(
                bulletin_tick_job,
                "interval",
                seconds=1,
                args=[runtime],
                id="bulletin-tick",
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(runtime.settings.tz),
            )
        return scheduler

    bot.app.build_scheduler = build_scheduler  # type: ignore[assignment]
    settings = load_settings(config)
    asyncio.run(migrate_url(settings.database.url))
    app = bot.app.create_app(build_runtime(settings))
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


def _wired() -> bool:
    scheduler = REPO / "bot" / "scheduler.py"
    return scheduler.exists() and "bulletin_tick_job" in scheduler.read_text("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Proc:
    """A helper server in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.argv, self.env, self.workdir = [*argv, "--port", str(self.port)], env, workdir
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/healthz") -> Proc:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + ready_path, timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def _tree(self) -> list[int]:
        """The server's process id and its living descendants' (``lianxin serve``'s
        processing process, which does the fan-out and the sending)."""
        if self.proc is None:
            return []
        pids, seen = [self.proc.pid], []
        while pids:
            pid = pids.pop()
            seen.append(pid)
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                pids += [int(c) for c in children]
        return seen

    def cpu_s(self) -> float:
        """User + system CPU seconds the server and its children have used so far."""
        total = float("nan")
        for pid in self._tree():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                total = used if total != total else total + used  # NaN until the first
        return total

    def peak_rss_mb(self) -> float:
        """The largest peak RSS (VmHWM) among the server and its children, in MB."""
        peaks = [float("nan")]
        for pid in self._tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        real = [p for p in peaks if p == p]
        return max(real) if real else float("nan")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --- set-up ------------------------------------------------------------------------------------
def write_config(path: Path, db: Path, bridge_url: str, concurrency: int = 16) -> None:
    from bot.settings import BulletinSettings

    bulletins: dict[str, Any] = {"quiet_hours": None, "daily_cap_per_group": 3}
    if "tick_interval_s" in BulletinSettings.model_fields:
        bulletins["tick_interval_s"] = 1
    config = {
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "timezone": "Asia/Shanghai",
        "bridge": {"send_url": f"{bridge_url}/send", "send_interval_s": 0, "timeout_s": 5},
        # A short lease so the restarted server re-sends the in-flight rows within seconds.
        "outbox": {
            "lease_s": 3,
            "poll_interval_s": 0.2,
            "batch_size": 200,
            "concurrency": concurrency,
        },
        "bulletins": bulletins,
        "sms": {"provider": "log"},
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")


async def seed(db: Path, groups: int) -> None:
    """Migrate, then insert one station and ``groups`` groups directly."""
    from bot.db import migrate_url

    await migrate_url(f"sqlite+aiosqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO stations (id, name) VALUES ('county', '甘泉縣公安局')")
        conn.executemany(
            "INSERT INTO groups (id, name, station_id, tags) VALUES (?, ?, 'county', '[]')",
            [(f"grp-{i:05d}", f"警民群{i}") for i in range(groups)],
        )


async def add_bulletin(db: Path, due: datetime) -> int:
    from bot.db import make_engine, make_sessions
    from broadcasts.bulletins import BulletinSpec, create_bulletin

    spec = BulletinSpec.model_validate(
        {
            "title": "冬季防火",
            "category": "fire",
            "text": "電暖器不要靠近窗簾,出門記得關電源。",
            "media": {"type": "video", "url": "https://example.org/fire.mp4", "title": "短片"},
            "targets": {"all": True},
            "schedule": {"at": due.isoformat()},
        }
    )
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with make_sessions(engine).begin() as session:
            b = await create_bulletin(
                session,
                spec=spec,
                tz=ZoneInfo("Asia/Shanghai"),
                created_by="bench",
                now=datetime.now(UTC),
                media_dir=None,  # the bench's media is a link elsewhere
            )
            return b.id
    finally:
        await engine.dispose()


def db_counts(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        return {
            "runs": one("SELECT count(*) FROM bulletin_runs"),
            "deliveries": one("SELECT count(*) FROM bulletin_deliveries"),
            "outbox": dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status")),
            "max_attempts": one("SELECT max(attempts) FROM outbox"),
        }


def stats(bridge: Proc) -> dict[str, Any]:
    return dict(httpx.get(bridge.url + "/stats", timeout=5).json())


def wait_for(bridge: Proc, target: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        s = stats(bridge)
        if s["unique"] >= target or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


# --- the baseline ------------------------------------------------------------------------------
async def baseline(bridge: Proc, secret: str, n: int) -> tuple[float, float]:
    """n signed POSTs, one after the other, like the worker sends them; wall and CPU
    seconds of this process."""
    from bot.channels.bridge import signed_headers

    async with httpx.AsyncClient(timeout=5) as client:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            body = json.dumps(
                {
                    "idempotency_key": f"baseline-{i}",
                    "group_id": f"grp-{i:05d}",
                    "user_id": None,
                    "text": "【冬季防火】\n電暖器不要靠近窗簾,出門記得關電源。",
                    "mentions": [],
                    "media": {"type": "video", "url": "https://example.org/fire.mp4"},
                },
                ensure_ascii=False,
            ).encode()
            headers = signed_headers(secret, body, datetime.now(UTC))
            r = await client.post(f"{bridge.url}/send", content=body, headers=headers)
            r.raise_for_status()
        return time.perf_counter() - start, time.process_time() - cpu


# --- the runs ----------------------------------------------------------------------------------
def run(groups: int, workdir: Path, concurrency: int = 16) -> bool:
    secret = base64.b64encode(os.urandom(24)).decode()
    env = os.environ | {
        SECRET_ENV: secret,
        "LIANXIN__SECURITY__PII_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PYTHONPATH": str(REPO),
    }
    me = [sys.executable, str(Path(__file__).resolve())]
    bridge = Proc("fake-bridge", [*me, "--serve-fake"], env, workdir).start()
    ok = True
    try:
        # 1. Baseline.
        wall, client_cpu = asyncio.run(baseline(bridge, secret, groups))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"baseline: {groups} bare signed POSTs from one process")
        print(
            f"  time {wall:.2f} s, {groups / wall:.0f} POST/s, this process peak RSS {rss:.0f} MB"
        )
        print(f"  CPU {client_cpu / groups * 1000:.2f} ms per POST (this process)")

        # 2. Fan-out, undisturbed.
        how = "lianxin serve" if _wired() else "lianxin serve + bulletin tick (--serve-lianxin)"
        for label, crash in (("fan-out", False), ("crash and restart", True)):
            httpx.post(bridge.url + "/reset", timeout=5)
            db = workdir / f"{'crash' if crash else 'fanout'}.db"
            config = workdir / f"{db.stem}.yaml"
            write_config(config, db, bridge.url, concurrency)
            asyncio.run(seed(db, groups))
            argv = (
                [str(Path(sys.executable).with_name("lianxin")), "serve", "--config", str(config)]
                if _wired()
                else [*me, "--serve-lianxin", str(config)]
            )
            server = Proc(f"lianxin-{db.stem}", argv, env, workdir).start()
            idle_cpu = server.cpu_s()
            due = datetime.now(UTC) + timedelta(seconds=2)
            asyncio.run(add_bulletin(db, due))
            print(
                f"\n{label}: {groups} groups, one bulletin, {how}, SQLite, pacing off, "
                f"outbox.concurrency {concurrency}"
            )
            kill_info = ""
            if crash:
                half = wait_for(bridge, groups // 2, 300)
                peak = server.peak_rss_mb()
                server.kill(signal.SIGKILL)
                kill_info = (
                    f"  SIGKILL after {half['unique']} deliveries (server peak RSS {peak:.0f} MB)"
                )
                print(kill_info)
                server = Proc(f"lianxin-{db.stem}-2", argv, env, workdir).start()
            final = wait_for(bridge, groups, 600)
            time.sleep(1.0)  # let stragglers (re-sends of in-flight rows) arrive before counting
            final = stats(bridge)
            peak = server.peak_rss_mb()
            busy_cpu = server.cpu_s() - idle_cpu
            server.kill()
            counts = db_counts(db)
            exactly_once = (
                final["unique"] == groups
                and final["groups"] == groups
                and final["groups_by_count"] == {"1": groups}
            )
            ok = ok and exactly_once
            due_ts = due.timestamp()
            send_s = (final["last"] or 0) - (final["first"] or 0)
            print(
                f"  delivered {final['unique']} of {groups}; groups by deliveries: "
                f"{final['groups_by_count']}; POSTs {final['posts']} "
                f"({final['posts'] - final['unique']} same-key re-sends dropped by the bridge)"
            )
            if not crash:
                total = (final["last"] or due_ts) - due_ts
                print(
                    f"  due → last delivery {total:.2f} s; due → first delivery "
                    f"{(final['first'] or due_ts) - due_ts:.2f} s (tick + fan-out)"
                )
                print(
                    f"  sending phase {send_s:.2f} s, {groups / send_s:.0f} deliveries/s "
                    f"({groups / total:.0f}/s end to end); baseline {groups / wall:.0f} POST/s "
                    f"→ {(groups / send_s) / (groups / wall):.0%} of baseline"
                )
                print(f"  server peak RSS {peak:.0f} MB (the larger of its two processes)")
                # CPU is what a loaded machine does not distort much: on a quiet one, the
                # ratio of these two is about the ratio of the rates.
                per = busy_cpu / groups * 1000
                print(
                    f"  server CPU {per:.2f} ms per delivery (fan-out and sending, after start-up)"
                    f" → {client_cpu / groups * 1000 / per:.0%} of the baseline's rate if CPU-bound"
                )
            else:
                print(f"  restarted server peak RSS {peak:.0f} MB")
            print(
                f"  database: {counts['runs']} run, {counts['deliveries']} delivery rows, "
                f"outbox {counts['outbox']}, max attempts {counts['max_attempts']}"
            )
            print(f"  every group exactly one delivery: {'YES' if exactly_once else 'NO'}")
    finally:
        bridge.kill()
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="outbox.concurrency (default 16)"
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-lianxin", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        import uvicorn

        uvicorn.run(
            fake_bridge_app(), host=HOST, port=args.port, log_level="warning", access_log=False
        )
        return 0
    if args.serve_lianxin:
        serve_lianxin(args.serve_lianxin, args.port)
        return 0
    with tempfile.TemporaryDirectory(prefix="lianxin-fanout-") as tmp:
        try:
            return 0 if run(args.groups, Path(tmp), args.concurrency) else 1
        except RuntimeError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
