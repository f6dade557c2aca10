"""Accepting at the speed of the wire (issue 17): wrk against the bare floor and Lianxin.

What it measures, in one run, each figure beside the bare floor (a FastAPI endpoint doing only
wechatpy's signature check, AES decrypt and XML parse, ``bench/webhook.py --serve baseline``):

(a) acceptance: ``wrk`` (a C client that leaves the servers their core) with 50 connections
    for 8 s against ``POST /wechat/callback`` in safe mode, distinct messages (the same file of
    pre-encrypted requests for both sides): req/s, p50/p99, errors, and full/floor.
(b) processing: from wrk's first request until every instance's ``/metrics`` shows as many
    events processed as received: events/s, and that rate over the floor's req/s.
    Then the backlog: the events not yet processed when wrk stopped, over the time they took
    (with no load running, what the processes can process; in runs with several ``serve``s
    the figure to compare with one).
(c) emergency lane: 20 emergencies (the corpus's labelled emergencies, as signed bridge events
    in a known group, each from its own ``sos-`` sender) sent while wrk runs; the latency from
    each POST until the fake bridge receives the first message that @-mentions the sender (the
    safety reply): p50/p99/max.

``uptime`` is printed with each figure: the machine may be shared.

How to run
    .venv/bin/python bench/wire.py                       # SQLite, one process
    .venv/bin/python bench/wire.py --reply-mode api
    createdb -h 127.0.0.1 -U postgres lx_wire && .venv/bin/python bench/wire.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1/lx_wire --processes 2

With ``--processes K`` (PostgreSQL only) K ``lianxin serve`` processes share the database; wrk
and the emergencies go to the first, every process processes. ``--reply-mode`` is written to
``wechat.reply_mode`` (leave it out for versions without the key).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine
import webhook

from bot.channels.bridge import signed_headers

LUA = r"""
local reqs = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local path, body = line:match("([^\t]*)\t(.*)")
    reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body)
  end
  f:close()
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"status": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wrk(url: str, script: Path, requests_file: Path, seconds: int, connections: int) -> dict:
    """One wrk run (one thread); its ``done`` hook prints a JSON line."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            str(requests_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("{"))
    return dict(json.loads(line))


def write_requests(path: Path, n: int, s: webhook.Secrets) -> None:
    """N distinct safe-mode messages, one ``path?query<TAB>body`` a line."""
    with path.open("w", encoding="utf-8") as f:
        for req in webhook.wechat_requests(n, s):
            f.write(f"{req.path}?{urlencode(req.params or {})}\t{req.body.decode()}\n")


def scrape(url: str, token: str) -> tuple[float, float]:
    """(received, processed) events from one instance's ``/metrics``."""
    received, processed, _ = scrape_all(url, token)
    return received, processed


def scrape_all(url: str, token: str) -> tuple[float, float, float]:
    """(received, processed, outbox pending) from one instance's ``/metrics``; the outbox
    figure is the database's, the same from every instance."""
    text = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).text
    received = processed = pending = 0.0
    for line in text.splitlines():
        if line.startswith("lianxin_events_received_total"):
            received += float(line.rsplit(" ", 1)[1])
        elif line.startswith("lianxin_events_processed_total"):
            processed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("lianxin_outbox_pending{"):
            pending += float(line.rsplit(" ", 1)[1])
    return received, processed, pending


def emergency_texts(k: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(webhook.MESSAGES.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and row.get("emergency") and row["text"] not in texts:
                texts.append(row["text"])
    return texts[:k]


def send_emergencies(
    url: str,
    s: webhook.Secrets,
    group: str,
    texts: list[str],
    start_s: float,
    every_s: float,
    posted: dict[str, float],
) -> None:
    """Signed bridge events from ``sos-i``, one every ``every_s`` from ``start_s`` on."""
    with httpx.Client(base_url=url, timeout=30) as client:
        time.sleep(start_s)
        for i, text in enumerate(texts):
            who = f"sos-{i}"
            body = json.dumps(
                {
                    "event_id": f"sos-{i}-{os.urandom(3).hex()}",
                    "type": "message",
                    "timestamp": int(time.time()),
                    "group": {"id": group, "name": "警民群"},
                    "sender": {"id": who, "nickname": "居民"},
                    "message": {"type": "text", "text": text, "mentions": [], "media_url": None},
                },
                ensure_ascii=False,
            ).encode()
            headers = signed_headers(s.bridge_secret, body, webhook.datetime.now(webhook.UTC))
            posted[who] = time.time()
            client.post("/bridge/events", content=body, headers=headers)
            time.sleep(every_s)


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, max(0, int(q * len(data) + 0.999999) - 1))] if data else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-d", "--seconds", type=int, default=8)
    p.add_argument("-c", "--connections", type=int, default=50)
    p.add_argument("-n", type=int, default=40_000, help="distinct requests prepared")
    p.add_argument("--emergencies", type=int, default=20)
    p.add_argument("--database-url")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--reply-mode", choices=["passive", "api"])
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a config.yaml value for Lianxin (YAML value), e.g. inbound.slice_ms=20",
    )
    args = p.parse_args()
    s = webhook.Secrets.random()
    workdir = Path(tempfile.mkdtemp(prefix="lianxin-wire-"))
    db_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'lianxin.db'}"
    config = workdir / "config.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANXIN")}
    env["PYTHONUNBUFFERED"] = "1"
    helper_env = {**env, **s.to_env()}
    product_env = s.product_env(env)
    me = [sys.executable, str(Path(webhook.__file__).resolve())]
    fake = webhook.Server("fake", [*me, "--serve", "fake"], helper_env, workdir)
    floor = webhook.Server("floor", [*me, "--serve", "baseline"], helper_env, workdir)
    serve = [sys.executable, "-m", "bot", "serve", "--config", str(config), "--host", webhook.HOST]
    fulls = [
        webhook.Server(f"lianxin{i}", serve, product_env, workdir) for i in range(args.processes)
    ]
    servers = [fake, floor, *fulls]
    try:
        webhook.write_config(config, db_url, fake.url, s)
        data = yaml.safe_load(config.read_text("utf-8"))
        if args.reply_mode:
            data["wechat"]["reply_mode"] = args.reply_mode
        for item in args.set:
            dotted, value = item.split("=", 1)
            section, key = dotted.split(".", 1)
            data.setdefault(section, {})[key] = yaml.safe_load(value)
        config.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        cli = [sys.executable, "-m", "bot"]
        for command in (["db", "upgrade"], ["directory", "load", str(webhook.DIRECTORY)]):
            subprocess.run(
                [*cli, *command, "--config", str(config)],
                env=product_env,
                cwd=workdir,
                check=True,
                timeout=120,
                stdout=subprocess.DEVNULL,
            )
        token = subprocess.run(
            [*cli, "token", "create", "--role", "admin", "--config", str(config)],
            env=product_env,
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        script = workdir / "wechat.lua"
        script.write_text(LUA)
        requests_file = workdir / "requests.tsv"
        write_requests(requests_file, args.n, s)
        group = yaml.safe_load(webhook.DIRECTORY.read_text("utf-8"))["groups"][0]["id"]
        where = "SQLite" if db_url.startswith("sqlite") else "PostgreSQL"
        print(
            f"{where}, {args.processes} lianxin process(es), reply_mode "
            f"{args.reply_mode or 'default'}, wrk -c{args.connections} -d{args.seconds}s"
            + (f", config {' '.join(args.set)}" if args.set else "")
        )

        print(f"floor ... ({uptime()})")
        floor_cpu = floor.cpu_seconds()
        base = wrk(
            f"{floor.url}/wechat/callback", script, requests_file, args.seconds, args.connections
        )
        base_rps = base["requests"] / (base["duration_us"] / 1e6)
        floor_cpu = floor.cpu_seconds() - floor_cpu

        print(f"full ... ({uptime()})")
        received0 = sum(scrape(f.url, token)[0] for f in fulls)
        posted: dict[str, float] = {}
        texts = emergency_texts(args.emergencies)
        every = max(0.05, (args.seconds - 1.5) / max(1, len(texts)))
        sos = threading.Thread(
            target=send_emergencies, args=(fulls[0].url, s, group, texts, 0.5, every, posted)
        )
        full_cpu = sum(f.cpu_seconds() for f in fulls)
        accept_cpu = sum(f.cpu_seconds(tree=False) for f in fulls)
        started = time.time()
        at_start = machine.reading(started)
        sos.start()
        full = wrk(
            f"{fulls[0].url}/wechat/callback", script, requests_file, args.seconds, args.connections
        )
        accepted_at = time.time()
        # What was left to process when the load stopped: worked off with nothing else
        # running, its rate is the processing capacity alone ("backlog" below).
        at_end = [scrape(f.url, token) for f in fulls]
        backlog = sum(c[0] for c in at_end) - sum(c[1] for c in at_end)
        backlog_at = time.time()
        at_backlog = machine.reading(backlog_at)
        sos.join()
        full_rps = full["requests"] / (full["duration_us"] / 1e6)
        print(
            f"  wrk done ({uptime()}): lianxin {full_rps:.0f} req/s, p99 "
            f"{full['p99_us'] / 1000:.1f} ms; floor {base_rps:.0f} req/s"
        )
        done_at = None
        deadline = time.time() + 600
        while time.time() < deadline:
            counts = [scrape(f.url, token) for f in fulls]
            received = sum(c[0] for c in counts) - received0
            processed = sum(c[1] for c in counts) - received0
            if processed >= received:
                done_at = time.time()
                at_done = machine.reading(done_at)
                break
            # Not more often: each scrape counts the queue (O(backlog)); at 50 ms it took 3-4 %
            # of the server's CPU away from the processing it measures.
            time.sleep(0.25)
        full_cpu = sum(f.cpu_seconds() for f in fulls) - full_cpu
        accept_cpu = sum(f.cpu_seconds(tree=False) for f in fulls) - accept_cpu
        # (d) The replies: when the outbox has none left to send (up to 180 s more).
        replied_at = None
        reply_deadline = time.time() + 180
        while done_at is not None and time.time() < reply_deadline:
            if scrape_all(fulls[0].url, token)[2] == 0:
                replied_at = time.time()
                break
            time.sleep(0.2)
        # The safety replies are sent behind their processing: wait (up to 30 s) for them to
        # reach the fake bridge rather than count as missing those still on their way.
        arrived = httpx.get(f"{fake.url}/sos", timeout=10).json()
        settle_until = time.time() + 30
        while len(arrived) < len(posted) and time.time() < settle_until:
            time.sleep(0.2)
            arrived = httpx.get(f"{fake.url}/sos", timeout=10).json()
        lat = [(arrived[w] - t) * 1000 for w, t in posted.items() if w in arrived]
        missing = len(posted) - len(lat)

        errors = lambda r: r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]  # noqa: E731
        print(f"\n(a) acceptance   {'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors")
        for name, r, rps in (("floor", base, base_rps), ("lianxin", full, full_rps)):
            print(
                f"    {name:12}{rps:9.0f}{r['p50_us'] / 1000:9.1f}{r['p99_us'] / 1000:9.1f}"
                f"{r['max_us'] / 1000:9.1f}  {errors(r)}"
            )
        print(f"    ratio {full_rps / base_rps:.2f} (target ≥ 0.50), p99 target < 100 ms")
        print(
            f"    server CPU: floor {floor_cpu * 1000 / max(1, base['requests']):.2f} ms/request; "
            f"lianxin {full_cpu * 1000 / max(1, received):.2f} ms/event from the first request "
            "until processed (accepting, processing, sending the replies); of which "
            f"{accept_cpu * 1000 / max(1, received):.2f} in the accepting process"
        )
        if done_at is None:
            print("(b) processing: NOT drained within 600 s")
        else:
            rate = received / (done_at - started)
            print(
                f"(b) processing   {received:.0f} events in {done_at - started:.1f} s "
                f"(accepting took {accepted_at - started:.1f} s): {rate:.0f}/s = "
                f"{rate / base_rps:.3f} of the floor (target ≥ 0.15)"
            )
            if backlog > 0 and done_at > backlog_at:
                print(
                    f"    backlog      {backlog:.0f} events left when the load stopped, "
                    f"processed in {done_at - backlog_at:.1f} s: "
                    f"{backlog / (done_at - backlog_at):.0f}/s"
                )
        print(
            f"(c) emergencies  {len(lat)} of {len(posted)} safety replies: p50 "
            f"{pct(lat, 0.5):.0f} ms, p99 {pct(lat, 0.99):.0f} ms, max "
            f"{max(lat, default=0):.0f} ms (target p99 < 1000 ms)"
            + (f"; {missing} never arrived" if missing else "")
        )
        if replied_at is None:
            print("(d) replies      outbox NOT empty within 180 s of the processing's end")
        else:
            print(
                f"(d) replies      every reply sent {replied_at - started:.1f} s after the first "
                "request (outbox empty)"
            )
        if done_at is not None:
            groups = {f.name: f.pids() for f in fulls}
            groups["fake peers"] = fake.pids()
            groups["bench"] = [os.getpid()]
            print("    machine      (from /proc; the ceiling assumes CPU per event stays the same)")
            for phase, a, b in (
                ("under load", at_start, at_backlog),
                ("backlog", at_backlog, at_done),
                ("all of (b)", at_start, at_done),
            ):
                busy, cores, used = machine.split(a, b, groups)
                print(f"      {phase:11}{machine.describe(busy, cores, used)}")
            busy, cores, _ = machine.split(at_start, at_done, groups)
            print(
                f"      so more serves could make (b) at most {cores / max(busy, 1e-9):.2f} × "
                "this run's on this machine"
            )
        for f in fulls:
            n, last = f.last_exception()
            if n:
                print(f"  {f.name} logged {n} tracebacks; last: {last}")
        print(f"uptime at the end: {uptime()}")
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
