"""CPU per inbound event, in process and deterministic (issue 17, processing target (b)).

    .venv/bin/python bench/process_cost.py                  # this checkout, SQLite
    .venv/bin/python bench/process_cost.py --repo /tmp/old  # another checkout's code
    .venv/bin/python bench/process_cost.py --db-url postgresql+asyncpg://…/lx_x  # emptied first
    .venv/bin/python bench/process_cost.py --profile 25     # and the processing's top functions
    .venv/bin/python bench/process_cost.py --warm 120       # one-off costs left out

Builds the real app (tests/harness.py: the ASGI app over httpx, the fake world on loopback, a
manual clock) on a fresh migrated database and sends ``--events`` distinct residents' messages
as signed bridge events: a third each in a known group, in an unknown group and in private, the
texts of bench/webhook.py. Events go in chunks of ``--chunk``: the chunk is accepted (the
requests answered, journal rows committed), the clock moves on a minute (so no rate limit
trips), and the processor drains it in its batches. It prints the process's CPU time (not wall
time: the machine is shared) per event for accepting and for processing, and the statuses the
events ended with, so that two checkouts are seen to do the same work.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "bench"))
import cpu_runs  # noqa: E402


def _texts(repo: Path) -> list[str]:
    """The corpus's labelled non-emergencies, in a fixed shuffle (as bench/webhook.py)."""
    return cpu_runs.corpus_texts(repo, 20261129)


async def _empty_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    from sqlalchemy import func, select

    from bot.db import migrate_url
    from models.journal import InboundEvent
    from tests.fakes import FakeWorld
    from tests.harness import Harness

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        if url.startswith("postgresql"):
            await _empty_postgres(url)
        await migrate_url(url)
        world = FakeWorld()
        world.start()
        h = Harness.build(url, world)
        await h.load_directory()
        import bot.app

        # What `serve` does as it starts, in the checkouts that do it (bot.app.settle_heap).
        getattr(bot.app, "settle_heap", lambda: None)()
        # Plain ASGI transport: the request answers once its event is journaled; the
        # processing is run (and measured) separately below.
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=h.client._transport.app),  # type: ignore[attr-defined]
            base_url="http://lianxin",
        )
        pipeline = h.client._transport.app.state.pipeline  # type: ignore[attr-defined]
        texts = _texts(Path(args.repo))
        groups = ["grp-qiaozhen-01", "grp-qiaozhen-02", "grp-hexi-01"]
        profiler = cProfile.Profile() if args.profile else None
        accept_cpu = process_cpu = 0.0
        # Deterministic beside the CPU time: the statements the processing sends.
        statements = [0, False]

        def count(*_: Any) -> None:
            statements[0] += statements[1]

        from sqlalchemy import event

        event.listen(h.runtime.engine.sync_engine, "before_cursor_execute", count)
        # ``--warm``: chunks processed first and not measured (other texts and senders), so
        # that one-off costs (the converters' dictionaries, first statements) stay out.
        chunks = [(True, s) for s in range(0, args.warm, args.chunk)] + [
            (False, s) for s in range(0, args.events, args.chunk)
        ]
        for warm, start in chunks:
            bodies = []
            for k in range(start, min(args.warm if warm else args.events, start + args.chunk)):
                group = (
                    groups[k % 3]
                    if k % 3 == 0
                    else (f"grp-unknown-{k % 17}" if k % 3 == 1 else None)
                )
                bodies.append(
                    h.bridge_body(
                        texts[-1 - k] if warm else texts[k % len(texts)],
                        group=group,
                        sender=f"wxid_warm_{k % 500}" if warm else f"wxid_bench_{k % 500}",
                        nickname="居民",
                        event_id=f"warm-{k}" if warm else f"bench-{k}",
                    )
                )
            from bot.channels.bridge import signed_headers

            t0 = time.process_time()
            for body in bodies:
                raw = json.dumps(body, ensure_ascii=False).encode()
                response = await client.post(
                    "/bridge/events",
                    content=raw,
                    headers=signed_headers(
                        "test-bridge-secret-of-32-characters-or-more", raw, h.clock.now()
                    ),
                )
                assert response.status_code == 200, response.text
            if not warm:
                accept_cpu += time.process_time() - t0
            h.clock.advance(timedelta(minutes=1))
            if warm:
                await pipeline.drain()
                h.clock.advance(timedelta(minutes=1))
                continue
            t0 = time.process_time()
            statements[1] = True
            if profiler:
                profiler.enable()
            await pipeline.drain()
            if profiler:
                profiler.disable()
            statements[1] = False
            process_cpu += time.process_time() - t0
            h.clock.advance(timedelta(minutes=1))
        async with h.runtime.sessions() as session:
            statuses = dict(
                (
                    await session.execute(
                        select(InboundEvent.status, func.count()).group_by(InboundEvent.status)
                    )
                ).all()
            )
        await client.aclose()
        await h.close()
        world.stop()
        if profiler:
            profiler.dump_stats(os.path.join(tempfile.gettempdir(), "process_cost.prof"))
            cpu_runs.print_profile(profiler, args.profile)
        return {
            "repo": str(args.repo),
            "database": url.split(":", 1)[0],
            "events": args.events,
            "accept_cpu_ms_per_event": round(accept_cpu * 1000 / args.events, 3),
            "process_cpu_ms_per_event": round(process_cpu * 1000 / args.events, 3),
            "process_statements_per_event": round(statements[0] / args.events, 2),
            **(
                {
                    "process_python_calls_per_event": pstats.Stats(profiler).total_calls
                    // args.events
                }  # type: ignore[attr-defined]
                if profiler
                else {}
            ),
            "statuses": dict(Counter(statuses)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=60)
    parser.add_argument(
        "--warm", type=int, default=0, help="events processed first and not measured"
    )
    parser.add_argument("--db-url", default=None, help="a PostgreSQL database to empty and use")
    cpu_runs.add_common(parser)
    cpu_runs.run_repeatedly(run, parser.parse_args(), "event")


if __name__ == "__main__":
    main()
