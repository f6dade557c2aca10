"""A hand-built month (November 2026, Asia/Shanghai) with known counts and percentiles, for the
statistics and the monthly report. The expected figures below are worked out by hand in the
comments, not computed by the code under test."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.disputes import DisputeCase
from models.outbox import OutboxMessage
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit

TZ = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


M = timedelta(minutes=1)
H = timedelta(hours=1)

# (category, station, created, ack after, answered after, closed after, emergency, rating)
TICKETS: list[tuple[str, str | None, datetime, Any, Any, Any, bool, str | None]] = [
    # 00:30 local on 1 November is 16:30 UTC on 31 October: in the month.
    ("consultation", "qiaozhen", local(11, 1, 0, 30), 2 * M, 1 * H, None, False, "satisfied"),
    ("suggestion", "qiaozhen", local(11, 5), 4 * M, 2 * H, None, False, "satisfied"),
    # Closed without an answer: the close is its answer (3 h).
    ("report", "qiaozhen", local(11, 10), 6 * M, None, 3 * H, True, "unsatisfied"),
    ("help", "qiaozhen", local(11, 15), 8 * M, 4 * H, 5 * H, False, None),
    ("dispute", "qiaozhen", local(11, 20), 10 * M, None, None, False, None),
    ("suggestion", "qiaozhen", local(11, 30, 23, 59), None, None, None, False, None),
    ("report", "hexi", local(11, 12), 20 * M, 10 * H, None, True, "satisfied"),
    ("other", None, local(11, 3), 30 * M, None, None, False, None),  # the county desk's
    # Outside the month on either side.
    ("consultation", "qiaozhen", local(10, 31, 23, 59), 1 * M, 1 * H, None, False, "satisfied"),
    ("consultation", "qiaozhen", local(12, 1, 0, 0), 1 * M, 1 * H, None, True, "unsatisfied"),
]

# (station, colour, level, status, opened)
DISPUTES = [
    ("qiaozhen", "red", "village", "open", local(11, 2)),
    ("qiaozhen", "yellow", "station", "resolved", local(11, 6)),
    ("qiaozhen", "blue", "county", "referred", local(11, 8)),
    ("qiaozhen", "blue", "village", "resolved", local(11, 28)),
    ("hexi", "yellow", "village", "open", local(11, 9)),
    ("qiaozhen", "red", "village", "open", local(10, 20)),  # opened in October
]

# Households: 4 + 2 in 橋鎮's groups, 2 in 河西's, 1 in no group (9 in the county).
HOUSEHOLDS = [
    "grp-qiaozhen-01",
    "grp-qiaozhen-01",
    "grp-qiaozhen-01",
    "grp-qiaozhen-01",
    "grp-qiaozhen-02",
    "grp-qiaozhen-02",
    "grp-hexi-01",
    "grp-hexi-01",
    None,
]
# (household index or None once deleted, station, at)
VISITS: list[tuple[int | None, str, datetime]] = [
    (0, "qiaozhen", local(11, 2)),
    (0, "qiaozhen", local(11, 9)),
    (0, "qiaozhen", local(11, 16)),
    (1, "qiaozhen", local(11, 3)),
    (4, "qiaozhen", local(11, 4)),
    (None, "qiaozhen", local(11, 5)),  # a household since deleted on request
    (6, "hexi", local(11, 6)),
    (6, "hexi", local(11, 7)),
    (2, "qiaozhen", local(10, 31, 23, 0)),  # October
]

# Bulletin runs: (due, status, [(group, outbox status)])
RUNS = [
    (
        local(11, 10),
        "sent",
        [("grp-qiaozhen-01", "sent"), ("grp-qiaozhen-02", "failed"), ("grp-hexi-01", "sent")],
    ),
    (local(11, 20), "sent", [("grp-hexi-01", "pending")]),
    (local(10, 15), "sent", [("grp-qiaozhen-01", "sent")]),  # October
    (local(11, 25), "missed", []),
]

# November, the whole county:
#   items: consultation 1, suggestion 2, report 2, help 1, dispute 1, other 1; emergencies 2.
#   ack minutes [2, 4, 6, 8, 10, 20, 30]: p50 = rank 4 = 8; p90 at 5.4: 20 + 0.4 × 10 = 24.
#   answer hours [1, 2, 3, 4, 10]: p50 = 3; p90 at 3.6: 4 + 0.6 × 6 = 7.6.
#   rated 4, satisfied 3.
#   disputes opened: red 1, yellow 2, blue 2; village 3, station 1, county 1; resolved 2,
#   referred 1.  visits 8, households 9, visited 4 (0, 1, 4, 6) → 0.4444.
#   bulletins: runs 2, delivered 2, failed 1.
COUNTY = {
    "items": {
        "consultation": 1,
        "suggestion": 2,
        "report": 2,
        "help": 1,
        "dispute": 1,
        "other": 1,
    },
    "emergencies": 2,
    "ack_minutes": {"p50": 8.0, "p90": 24.0},
    "answer_hours": {"p50": 3.0, "p90": 7.6},
    "satisfaction": {"rated": 4, "satisfied": 3, "rate": 0.75},
    "disputes": {
        "by_colour": {"red": 1, "yellow": 2, "blue": 2},
        "by_level": {"village": 3, "station": 1, "county": 1},
        "resolved": 2,
        "referred": 1,
    },
    "visits": {"count": 8, "households": 9, "visited_households": 4, "coverage": 0.4444},
    "bulletins": {"runs": 2, "delivered": 2, "failed": 1},
}
# 橋鎮 only: ack [2, 4, 6, 8, 10]: p50 6, p90 at 3.6: 8 + 0.6 × 2 = 9.2; answer [1, 2, 3, 4]:
# p50 at 1.5: 2.5, p90 at 2.7: 3.7; rated 3, satisfied 2; visits 6 of 6 households, 3 visited.
QIAOZHEN = {
    "items": {
        "consultation": 1,
        "suggestion": 2,
        "report": 1,
        "help": 1,
        "dispute": 1,
        "other": 0,
    },
    "emergencies": 1,
    "ack_minutes": {"p50": 6.0, "p90": 9.2},
    "answer_hours": {"p50": 2.5, "p90": 3.7},
    "satisfaction": {"rated": 3, "satisfied": 2, "rate": 0.6667},
    "disputes": {
        "by_colour": {"red": 1, "yellow": 1, "blue": 2},
        "by_level": {"village": 2, "station": 1, "county": 1},
        "resolved": 2,
        "referred": 1,
    },
    "visits": {"count": 6, "households": 6, "visited_households": 3, "coverage": 0.5},
    "bulletins": {"runs": 1, "delivered": 1, "failed": 1},
}


async def seed_month(session: AsyncSession, cipher: PiiCipher) -> None:
    """Write the month above (the directory of tests/data/directory.yaml must be loaded)."""
    for n, (category, station, created, ack, answer, close, urgent, rating) in enumerate(TICKETS):
        session.add(
            Ticket(
                code=f"S{n:04d}",
                category=category,
                priority=1 if urgent else 3,
                emergency=urgent,
                status="closed" if close else "acknowledged",
                channel="bridge",
                station_id=station,
                text_enc=cipher.encrypt("…"),
                created_at=created,
                updated_at=created,
                acknowledged_at=created + ack if ack else None,
                answered_at=created + answer if answer else None,
                closed_at=created + close if close else None,
                ack_due_at=created,
                answer_due_at=created,
                satisfaction=rating,
            )
        )
    for n, (station, colour, level, status, opened) in enumerate(DISPUTES):
        # Each case's ticket came in long before: it counts in no month's items.
        ticket = Ticket(
            code=f"D{n:04d}",
            category="dispute",
            priority=3,
            channel="bridge",
            station_id=station,
            text_enc=cipher.encrypt("…"),
            created_at=local(9, 1),
            updated_at=local(9, 1),
            ack_due_at=local(9, 1),
            answer_due_at=local(9, 1),
        )
        session.add(ticket)
        await session.flush()
        session.add(
            DisputeCase(
                ticket_id=ticket.id,
                station_id=station,
                colour=colour,
                suggested_colour=colour,
                level=level,
                status=status,
                opened_at=opened,
                level_started_at=opened,
                resolved_at=opened + timedelta(days=3) if status != "open" else None,
                resolved_level=level if status != "open" else None,
                updated_at=opened,
            )
        )
    households = []
    for n, group in enumerate(HOUSEHOLDS):
        household = Household(
            name_enc=cipher.encrypt(f"住戶{'甲乙丙丁戊己庚辛壬'[n]}"),
            name_hash=cipher.lookup_hash(f"name{n}"),
            phone_enc=None,
            phone_hash=None,
            address_enc=cipher.encrypt(f"{n}號"),
            group_id=group,
        )
        session.add(household)
        households.append(household)
    await session.flush()
    group_of = {
        "qiaozhen": "grp-qiaozhen-01",
        "hexi": "grp-hexi-01",
    }
    for index, station, at in VISITS:
        session.add(
            Visit(
                household_id=households[index].id if index is not None else None,
                officer_id="off-wang" if station == "qiaozhen" else "off-chen",
                group_id=group_of[station],
                station_id=station,
                at=at,
                note_enc=cipher.encrypt("…"),
                source="chat",
                created_at=at,
            )
        )
    bulletin = Bulletin(
        title="反詐提醒",
        category="anti-fraud",
        text="…",
        targets={"all": True},
        schedule_kind="cron",
        cron="0 10 * * 1",
        status="active",
        created_at=local(9, 1),
        updated_at=local(9, 1),
    )
    session.add(bulletin)
    await session.flush()
    for due, status, deliveries in RUNS:
        run = BulletinRun(
            bulletin_id=bulletin.id,
            due_at=due,
            status=status,
            groups=len(deliveries),
            created_at=due,
        )
        session.add(run)
        await session.flush()
        for group, outcome in deliveries:
            key = f"bulletin:{run.id}:{group}"
            session.add(
                BulletinDelivery(
                    run_id=run.id,
                    bulletin_id=bulletin.id,
                    group_id=group,
                    channel="bridge",
                    idempotency_key=key,
                    slot_date=due.date(),
                    not_before=due,
                    status="queued",
                    created_at=due,
                )
            )
            session.add(
                OutboxMessage(
                    idempotency_key=key,
                    channel="bridge",
                    group_id=group,
                    payload_enc=cipher.encrypt_json({"text": "…"}),
                    priority=9,
                    status=outcome,
                    attempts=1,
                    next_attempt_at=due,
                    created_at=due,
                )
            )
    await session.flush()
