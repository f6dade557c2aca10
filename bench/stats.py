"""Statistics on a county's year: every figure of ``/api/v1/stats`` must take under 1 s on SQLite.

Seeds a temporary, migrated SQLite database (or ``--url``) with Core bulk inserts: 20 stations,
300 groups, 29,000 households, 50,000 tickets, 759 dispute cases, 40,000 visits and a weekly
bulletin to every group (52 runs, 15,600 deliveries with their outbox rows), spread over 2026.
Then times, in the same run, a baseline (``SELECT count(*)`` over the tickets and the visits)
and each figure for the year, county-wide and for one station's subtree, and prints them.

    .venv/bin/python bench/stats.py
    .venv/bin/python bench/stats.py --tickets 100000 --visits 80000
    .venv/bin/python bench/stats.py --url postgresql+asyncpg://postgres@127.0.0.1/lx_bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import make_engine, make_sessions, migrate
from bot.pii import PiiCipher
from bot.services.stats import (
    Period,
    bulletin_figures,
    compute_stats,
    dispute_figures,
    make_period,
    ticket_figures,
    visit_figures,
)
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.directory import Group, Officer, Station
from models.disputes import DisputeCase
from models.outbox import OutboxMessage
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit

YEAR_START = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 Asia/Shanghai
SECONDS = 365 * 86400
LABELS = [
    ("consultation", 0.40),
    ("suggestion", 0.05),
    ("report", 0.20),
    ("help", 0.20),
    ("dispute", 0.05),
    ("other", 0.10),
]


async def bulk(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core INSERT … VALUES in batches (the ORM's unit of work would take minutes)."""
    for start in range(0, len(rows), 5000):
        await session.execute(insert(model), rows[start : start + 5000])


def when(rng: random.Random) -> datetime:
    return YEAR_START + timedelta(seconds=rng.randrange(SECONDS))


async def seed(session: AsyncSession, args: argparse.Namespace) -> None:
    rng = random.Random(15)
    cipher = PiiCipher(os.urandom(32))
    blob = cipher.encrypt("…")
    stations = [{"id": "county", "name": "縣局", "parent_id": None, "timezone": None}]
    stations += [
        {"id": f"st{n:02d}", "name": f"第{n}派出所", "parent_id": "county", "timezone": None}
        for n in range(1, 20)
    ]
    await bulk(session, Station, stations)
    officers = [
        {
            "id": f"off{n:03d}",
            "name": f"民警{n}",
            "station_id": stations[1 + n % 19]["id"],
            "wechat_id": f"wxid_{n}",
            "role": "leader" if n < 19 else "officer",
        }
        for n in range(60)
    ]
    await bulk(session, Officer, officers)
    groups = [
        {
            "id": f"grp{n:03d}",
            "name": f"第{n}村警民群",
            "station_id": stations[1 + n % 19]["id"],
            "officer_id": officers[19 + n % 41]["id"],
            "tags": ["village"],
        }
        for n in range(300)
    ]
    await bulk(session, Group, groups)
    station_of = {g["id"]: g["station_id"] for g in groups}
    households = [
        {
            "name_enc": blob,
            "name_hash": f"{n:064x}",
            "phone_enc": blob,
            "phone_hash": f"p{n:063x}",
            "address_enc": blob,
            "group_id": groups[n % 300]["id"],
        }
        for n in range(args.households)
    ]
    await bulk(session, Household, households)
    tickets = []
    weights = [w for _, w in LABELS]
    for n in range(args.tickets):
        created = when(rng)
        group = groups[rng.randrange(300)]["id"]
        acked = (
            created + timedelta(minutes=rng.expovariate(1 / 20)) if rng.random() < 0.95 else None
        )
        answered = (
            created + timedelta(hours=rng.expovariate(1 / 6))
            if acked and rng.random() < 0.9
            else None
        )
        tickets.append(
            {
                "code": f"T{n:06d}",
                "category": rng.choices([label for label, _ in LABELS], weights)[0],
                "unclear": False,
                "emergency": rng.random() < 0.03,
                "priority": 3,
                "status": "closed" if answered else "acknowledged",
                "channel": "bridge",
                "group_id": group,
                "station_id": station_of[group],
                "assigned_by": "roster",
                "text_enc": blob,
                "created_at": created,
                "updated_at": created,
                "acknowledged_at": acked,
                "answered_at": answered,
                "closed_at": answered,
                "ack_due_at": created,
                "answer_due_at": created,
                "escalation_level": 0,
                "satisfaction": rng.choice(["satisfied"] * 9 + ["unsatisfied"])
                if answered and rng.random() < 0.4
                else None,
                "awaiting_satisfaction": False,
                "script": "hans",
            }
        )
    await bulk(session, Ticket, tickets)
    dispute_tickets = [t for t in tickets if t["category"] == "dispute"][: args.disputes]
    ids = dict(
        (
            await session.execute(
                select(Ticket.code, Ticket.id).where(
                    Ticket.code.in_([t["code"] for t in dispute_tickets])
                )
            )
        ).all()
    )
    disputes = []
    for ticket in dispute_tickets:
        status = rng.choice(["open", "resolved", "resolved", "resolved", "referred"])
        opened = ticket["created_at"]
        disputes.append(
            {
                "ticket_id": ids[ticket["code"]],
                "station_id": ticket["station_id"],
                "colour": rng.choice(["red", "yellow", "blue", "blue", "blue"]),
                "suggested_colour": "blue",
                "colour_set_by_officer": True,
                "level": rng.choice(["village", "village", "station", "county"]),
                "status": status,
                "opened_at": opened,
                "level_started_at": opened,
                "resolved_at": opened + timedelta(days=5) if status != "open" else None,
                "follow_ups_done": 0,
                "updated_at": opened,
            }
        )
    await bulk(session, DisputeCase, disputes)
    household_ids = list(await session.scalars(select(Household.id)))
    group_of_household = {h: groups[(h - household_ids[0]) % 300]["id"] for h in household_ids}
    visits = []
    for _ in range(args.visits):
        household = rng.choice(household_ids)
        group = group_of_household[household]
        at = when(rng)
        visits.append(
            {
                "household_id": household,
                "officer_id": officers[19 + rng.randrange(41)]["id"],
                "group_id": group,
                "station_id": station_of[group],
                "at": at,
                "note_enc": blob,
                "source": "chat",
                "created_at": at,
            }
        )
    await bulk(session, Visit, visits)
    bulletin = {
        "title": "每週反詐",
        "category": "anti-fraud",
        "text": "…",
        "targets": {"all": True},
        "schedule_kind": "cron",
        "cron": "0 10 * * 1",
        "status": "active",
        "created_by": "bench",
        "created_at": YEAR_START,
        "updated_at": YEAR_START,
    }
    await bulk(session, Bulletin, [bulletin])
    bulletin_id = await session.scalar(select(Bulletin.id))
    runs = [
        {
            "bulletin_id": bulletin_id,
            "due_at": YEAR_START + timedelta(days=7 * week, hours=2),
            "status": "sent",
            "groups": 300,
            "created_at": YEAR_START,
        }
        for week in range(52)
    ]
    await bulk(session, BulletinRun, runs)
    run_rows = (await session.execute(select(BulletinRun.id, BulletinRun.due_at))).all()
    deliveries, outbox = [], []
    for run_id, due in run_rows:
        for group in groups:
            key = f"bulletin:{run_id}:{group['id']}"
            deliveries.append(
                {
                    "run_id": run_id,
                    "bulletin_id": bulletin_id,
                    "group_id": group["id"],
                    "channel": "bridge",
                    "idempotency_key": key,
                    "slot_date": due.date(),
                    "not_before": due,
                    "status": "queued",
                    "created_at": due,
                }
            )
            outbox.append(
                {
                    "idempotency_key": key,
                    "channel": "bridge",
                    "group_id": group["id"],
                    "chat_key": f"bridge:g:{group['id']}",
                    "payload_enc": blob,
                    "priority": 9,
                    "status": "failed" if rng.random() < 0.02 else "sent",
                    "attempts": 1,
                    "next_attempt_at": due,
                    "created_at": due,
                }
            )
    await bulk(session, BulletinDelivery, deliveries)
    await bulk(session, OutboxMessage, outbox)


async def timed(
    label: str, work: Callable[[], Awaitable[Any]], results: list[tuple[str, float, Any]]
) -> Any:
    started = time.perf_counter()
    value = await work()
    elapsed = time.perf_counter() - started
    results.append((label, elapsed, value))
    return value


async def run(args: argparse.Namespace, folder: str) -> int:
    url = args.url or f"sqlite+aiosqlite:///{Path(folder) / 'stats.db'}"
    engine = make_engine(url)
    sessions = make_sessions(engine)
    try:
        await migrate(engine)
        started = time.perf_counter()
        async with sessions.begin() as session:
            await seed(session, args)
        print(f"database: {url}")
        print(
            f"seeded in {time.perf_counter() - started:.1f} s: {args.tickets} tickets, "
            f"{args.visits} visits, {args.households} households, {args.disputes} disputes, "
            "52 bulletin runs × 300 groups"
        )
        results: list[tuple[str, float, Any]] = []
        async with sessions() as session:
            # Warm the caches once (the first statement of a connection pays for its set-up).
            await session.scalar(select(func.count()).select_from(Ticket))
            year: dict[str, Period] = {}
            for name, station in (("county", None), ("station st01", "st01")):
                year[name] = await make_period(
                    session,
                    timezone="Asia/Shanghai",
                    first=date(2026, 1, 1),
                    last=date(2026, 12, 31),
                    station=station,
                )
            await timed(
                "baseline: SELECT count(*) FROM tickets",
                lambda: session.scalar(select(func.count()).select_from(Ticket)),
                results,
            )
            await timed(
                "baseline: SELECT count(*) FROM visits",
                lambda: session.scalar(select(func.count()).select_from(Visit)),
                results,
            )

            async def read_column() -> int:
                return len((await session.execute(select(Ticket.created_at))).all())

            await timed("baseline: every ticket's created_at into Python", read_column, results)
            for name, period in year.items():
                for label, figure in (
                    ("items, emergencies, ack/answer p50/p90, satisfaction", ticket_figures),
                    ("disputes", dispute_figures),
                    ("visits and coverage", visit_figures),
                    ("bulletins", bulletin_figures),
                ):
                    await timed(
                        f"{name}: {label}", lambda f=figure, p=period: f(session, p), results
                    )
                await timed(
                    f"{name}: all of /api/v1/stats",
                    lambda p=period: compute_stats(session, p),
                    results,
                )
        width = max(len(label) for label, _, _ in results)
        slowest = 0.0
        for label, elapsed, _ in results:
            if "all of" not in label and not label.startswith("baseline"):
                slowest = max(slowest, elapsed)
            print(f"  {label:<{width}}  {elapsed * 1000:8.1f} ms")
        county = next(v for label, _, v in results if label == "county: all of /api/v1/stats")
        print("figures for 2026, county-wide:")
        print(json.dumps(county, ensure_ascii=False, indent=1))
        verdict = "holds" if slowest < 1.0 else "FAILS"
        print(f"slowest single figure: {slowest * 1000:.1f} ms: the target (< 1 s) {verdict}")
        return 0 if slowest < 1.0 else 1
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=50_000)
    parser.add_argument("--visits", type=int, default=40_000)
    parser.add_argument("--households", type=int, default=29_000)
    parser.add_argument("--disputes", type=int, default=759)
    parser.add_argument("--url", help="a migrated-or-empty database URL instead of a temp SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="lianxin-bench-stats-")
    try:
        return asyncio.run(run(args, folder))
    finally:
        if args.keep and not args.url:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
