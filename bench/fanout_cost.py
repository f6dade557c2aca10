"""CPU per bulletin delivery, in process (issue 17, the fan-out target).

    .venv/bin/python bench/fanout_cost.py                       # 2,000 groups, default config
    .venv/bin/python bench/fanout_cost.py --concurrency 4 16    # one round per value
    .venv/bin/python bench/fanout_cost.py --repeat 3            # rounds alternate, best kept
    .venv/bin/python bench/fanout_cost.py --profile 30          # and cProfile's top functions
    .venv/bin/python bench/fanout_cost.py --repo /tmp/old       # another checkout's code

The fake bridge of bench/fanout.py runs in its own process on loopback. In this process: the
baseline (``--groups`` bare signed POSTs one after the other, bench/fanout.py's), then per round
a fresh migrated SQLite database with ``--groups`` groups and one bulletin to ``all``, the real
runtime (``bot.wiring.build_runtime``: the default HTTP client) and the real delivery worker
(``bot.app.make_worker``), pacing off. The bulletin tick fans the run out, then the worker runs
until nothing is due. Printed: CPU time (``time.process_time``, not wall time: the machine is
shared) for the fan-out and per delivery for the sending, against the baseline's CPU per POST,
and the bridge's count of distinct deliveries (every group exactly once, or the round fails).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def memory_mb() -> tuple[float, float]:
    """This process's resident and peak resident memory (VmRSS, VmHWM), MB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


async def one_round(
    workdir: Path, bridge_url: str, groups: int, concurrency: int | None, profile: int
) -> dict[str, Any]:
    """Fan one bulletin out to ``groups`` groups and send it; CPU seconds of each phase."""
    import fanout

    from bot.app import make_worker
    from bot.settings import load_settings
    from bot.wiring import build_runtime
    from broadcasts.bulletins import bulletin_tick

    db = workdir / f"round-{time.monotonic_ns()}.db"
    config = workdir / f"{db.stem}.yaml"
    fanout.write_config(config, db, bridge_url, concurrency or 0)
    if concurrency is None:  # the shipped default, whatever it is
        text = config.read_text("utf-8").replace("  concurrency: 0\n", "")
        config.write_text(text, "utf-8")
    await fanout.seed(db, groups)
    due = datetime.now(UTC) + timedelta(seconds=1)
    await fanout.add_bulletin(db, due)  # a schedule is refused in the past: wait for it
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.05)
    settings = load_settings(str(config))
    runtime = build_runtime(settings)
    worker = make_worker(runtime)
    profiler = cProfile.Profile(time.process_time) if profile else None
    memory = [memory_mb()]
    try:
        cpu = time.process_time()
        await bulletin_tick(runtime)
        fan_cpu = time.process_time() - cpu
        memory.append(memory_mb())
        if profiler:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        outcomes = await worker.drain()
        send_cpu, send_wall = time.process_time() - cpu, time.perf_counter() - wall
        memory.append(memory_mb())
        if profiler:
            profiler.disable()
    finally:
        await runtime.aclose()
    sent = sum(1 for o in outcomes if o.status == "sent")
    top = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile)
        top = out.getvalue()
    return {
        "concurrency": settings.outbox.concurrency,
        "fan_cpu": fan_cpu,
        "send_cpu": send_cpu,
        "send_wall": send_wall,
        "sent": sent,
        "top": top,
        "memory": " → ".join(f"{rss:.0f} ({peak:.0f})" for rss, peak in memory),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, nargs="*", default=[], help="outbox.concurrency values"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--repo", type=Path, default=HERE.parent)
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), str(args.repo.resolve())]
    os.environ.setdefault("PYTHONPATH", str(args.repo.resolve()))
    import fanout

    secret = base64.b64encode(os.urandom(24)).decode()
    os.environ[fanout.SECRET_ENV] = secret
    os.environ["LIANXIN__SECURITY__PII_KEY"] = base64.b64encode(os.urandom(32)).decode()
    values: list[int | None] = list(args.concurrency) or [None]
    with tempfile.TemporaryDirectory(prefix="lianxin-fanout-cost-") as tmp:
        workdir = Path(tmp)
        me = [sys.executable, str(HERE / "fanout.py")]
        bridge = fanout.Proc("fake-bridge", [*me, "--serve-fake"], dict(os.environ), workdir)
        bridge.start()
        try:
            best: dict[Any, dict[str, Any]] = {}
            base_best = float("inf")
            for _ in range(args.repeat):
                wall, cpu = asyncio.run(fanout.baseline(bridge, secret, args.groups))
                base_best = min(base_best, cpu / args.groups * 1000)
                print(
                    f"baseline: {args.groups / wall:.0f} POST/s, "
                    f"{cpu / args.groups * 1000:.3f} ms CPU per POST",
                    flush=True,
                )
                for value in values:
                    r = asyncio.run(
                        one_round(workdir, bridge.url, args.groups, value, args.profile)
                    )
                    per = r["send_cpu"] / max(1, r["sent"]) * 1000
                    print(
                        f"concurrency {r['concurrency']:>3}: fan-out {r['fan_cpu']:.2f} s CPU; "
                        f"sending {r['sent']} in {r['send_wall']:.1f} s "
                        f"({r['sent'] / r['send_wall']:.0f}/s), {per:.3f} ms CPU per delivery",
                        flush=True,
                    )
                    print(
                        f"  RSS (peak) MB before, after the fan-out, after sending: {r['memory']}"
                    )
                    if r["top"]:
                        print(r["top"])
                    if r["sent"] != args.groups:
                        print("  NOT every group was sent to", flush=True)
                        return 1
                    if value not in best or per < best[value]["per"]:
                        best[value] = {**r, "per": per}
            print(f"\nbest of {args.repeat}: baseline {base_best:.3f} ms CPU per POST")
            for r in best.values():
                print(
                    f"  concurrency {r['concurrency']:>3}: {r['per']:.3f} ms CPU per delivery "
                    f"= {base_best / r['per']:.2f} of the baseline's rate if CPU-bound; "
                    f"fan-out {r['fan_cpu'] / args.groups * 1000:.3f} ms CPU per group"
                )
            stats = fanout.stats(bridge)
            print(f"bridge: {stats['posts']} POSTs, {stats['bad']} refused")
        finally:
            bridge.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
