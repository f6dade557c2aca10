"""A month of made-up activity for the demo county, so that ``/api/v1/stats``, the report and
the console's figures are not empty: households on each group's roster (a few on visit plans),
30 days of officers' visits, of residents' items with their response times and ratings, of
dispute cases, and a weekly anti-fraud bulletin's runs.

Everything is settled (tickets closed, cases resolved or referred, plans not overdue) so that
nothing seeded sets off a deadline, a reminder or a bulletin in the running demo. Deterministic:
the same ``seed`` gives the same month. Names and numbers are invented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.identity import name_hash, phone_hash
from broadcasts.bulletins.crud import sent_record
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.directory import Group
from models.disputes import DisputeCase
from models.outbox import OutboxMessage
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit, VisitPlan

_SURNAMES = "王李張劉陳楊趙黃周吳徐孫胡朱高林何郭馬羅梁宋鄭謝韓唐馮于董蕭程曹袁鄧許傅沈曾彭呂"
_GIVEN = ("建國", "秀英", "德勝", "桂蘭", "志強", "玉梅", "國華", "淑珍", "金山", "鳳英", "春生",
          "海燕", "家寶", "麗娟", "長林", "翠花", "永福", "小紅", "大山", "秋菊")  # fmt: skip
# Each group's roster: where its households live.
_PLACES = {
    "grp-qiaozhen-01": "橋鎮村{team}組{n}號",
    "grp-qiaozhen-02": "橋鎮社區{team}棟{n}號",
    "grp-hexi-01": "河西村{team}組{n}號",
}
# Households the scripted demo meets by name (visits, 待訪): on 橋鎮村's roster first.
KNOWN = (
    ("楊德勝", "13912340001", "橋鎮村3組12號", "living_alone"),
    ("劉桂蘭", "13912340002", "橋鎮村3組15號", None),
    ("張國華", None, "橋鎮村2組5號", "left_behind_children"),
)
_CATEGORIES = (
    ("consultation", 12),
    ("suggestion", 4),
    ("report", 5),
    ("help", 5),
    ("dispute", 2),
    ("other", 2),
)


@dataclass(frozen=True)
class SeededMonth:
    """What was written, for the demo's welcome and tests."""

    households: int
    visits: int
    tickets: int
    disputes: int
    runs: int


async def seed_month(
    session: AsyncSession, cipher: PiiCipher, *, now: datetime, seed: int = 15
) -> SeededMonth:
    """Write the 30 days before ``now`` (the demo directory must be loaded)."""
    rng = random.Random(seed)
    groups = {g.id: g for g in (await session.scalars(select(Group).order_by(Group.id))).all()}
    households: dict[str, list[int]] = {}
    used_phones: set[str] = set()
    for group_id, pattern in _PLACES.items():
        if group_id not in groups:
            continue
        people: list[tuple[str, str | None, str, str | None]] = [
            k for k in KNOWN if group_id == "grp-qiaozhen-01"
        ]
        for n in range(24 - len(people)):
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            phone = f"139{rng.randrange(10**8):08d}" if rng.random() < 0.8 else None
            # Teams 4 and up: the known households of 3組 stay the only ones there.
            address = pattern.format(team=4 + n // 6, n=2 * n + 21)
            people.append((name, phone, address, None))
        ids = []
        for name, phone, address, _reason in people:
            if phone in used_phones:
                phone = None
            if phone:
                used_phones.add(phone)
            household = Household(
                name_enc=cipher.encrypt(name),
                name_hash=name_hash(cipher, name),
                phone_enc=cipher.encrypt(phone),
                phone_hash=phone_hash(cipher, phone) if phone else None,
                address_enc=cipher.encrypt(address),
                group_id=group_id,
            )
            session.add(household)
            await session.flush()
            ids.append(household.id)
        households[group_id] = ids
    visits = await _visits(session, cipher, rng, groups, households, now)
    await _plans(session, groups, households, now)
    tickets, disputes = await _tickets(session, cipher, rng, groups, now)
    runs = await _bulletins(session, cipher, groups, now)
    return SeededMonth(sum(map(len, households.values())), visits, tickets, disputes, runs)


_NOTES = ("家中老人身體尚好,已提醒防詐騙", "宣傳防火用電安全", "了解家庭情況,無異常",
          "留守兒童學習正常,叮囑注意交通安全", "登記新購電動車,提醒勿私拉電線充電")  # fmt: skip


async def _visits(
    session: AsyncSession,
    cipher: PiiCipher,
    rng: random.Random,
    groups: dict[str, Group],
    households: dict[str, list[int]],
    now: datetime,
) -> int:
    rows = []
    for group_id, ids in households.items():
        group = groups[group_id]
        officer = group.officer_id or "off-zhao"
        # Most households once in the month, some twice; the first known household is the one
        # 待訪 shows in the scripted demo, so it is left unvisited.
        for household_id in ids:
            if household_id == ids[0] and group_id == "grp-qiaozhen-01":
                continue
            for _ in range(rng.choice((0, 1, 1, 1, 2))):
                at = now - timedelta(days=rng.uniform(1, 30))
                rows.append(
                    {
                        "household_id": household_id,
                        "officer_id": officer,
                        "group_id": group_id,
                        "station_id": group.station_id,
                        "at": at,
                        "note_enc": cipher.encrypt(rng.choice(_NOTES)),
                        "source": "chat",
                        "created_at": at,
                    }
                )
    if rows:
        await session.execute(insert(Visit), rows)
    return len(rows)


async def _plans(
    session: AsyncSession, groups: dict[str, Group], households: dict[str, list[int]], now: datetime
) -> None:
    """The known households' plans: 楊's due today (never visited this month), 張's next week."""
    ids = households.get("grp-qiaozhen-01", [])
    for index, (_name, _phone, _address, reason) in enumerate(KNOWN):
        if reason is None or index >= len(ids):
            continue
        due = now - timedelta(hours=1) if index == 0 else now + timedelta(days=7)
        session.add(
            VisitPlan(
                household_id=ids[index],
                reason=reason,
                every_days=30,
                officer_id=groups["grp-qiaozhen-01"].officer_id,
                next_due_at=due,
                reminded=0,
                created_at=now - timedelta(days=60),
                created_by="demo",
                updated_at=now,
            )
        )


async def _tickets(
    session: AsyncSession,
    cipher: PiiCipher,
    rng: random.Random,
    groups: dict[str, Group],
    now: datetime,
) -> tuple[int, int]:
    labels = [label for label, weight in _CATEGORIES for _ in range(weight)]
    group_ids = sorted(groups)
    count = disputes = 0
    for n in range(60):
        group = groups[rng.choice(group_ids)]
        label = rng.choice(labels)
        created = now - timedelta(days=rng.uniform(1, 30))
        emergency = label == "report" and rng.random() < 0.3
        acked = created + timedelta(minutes=rng.expovariate(1 / (3 if emergency else 25)))
        answered = acked + timedelta(hours=rng.expovariate(1 / 5))
        ticket = Ticket(
            code=f"M{n:04d}",
            category=label,
            priority=1 if emergency else (2 if label in ("report", "help") else 3),
            emergency=emergency,
            status="closed",
            channel="bridge",
            group_id=group.id,
            station_id=group.station_id,
            assigned_officer_id=group.officer_id,
            text_enc=cipher.encrypt("(示範資料)"),
            created_at=created,
            updated_at=answered,
            acknowledged_at=acked,
            answered_at=answered,
            closed_at=answered + timedelta(hours=1),
            ack_due_at=created + timedelta(hours=4),
            answer_due_at=created + timedelta(days=1),
            satisfaction=rng.choice(("satisfied",) * 9 + ("unsatisfied",))
            if rng.random() < 0.6
            else None,
            script="hant",
        )
        session.add(ticket)
        count += 1
        if label != "dispute":
            continue
        await session.flush()
        status = rng.choice(("resolved", "resolved", "referred"))
        level = rng.choice(("village", "village", "station"))
        colour = rng.choice(("blue", "blue", "yellow", "red"))
        session.add(
            DisputeCase(
                ticket_id=ticket.id,
                station_id=group.station_id,
                colour=colour,
                suggested_colour=colour,
                colour_set_by_officer=True,
                level=level,
                status=status,
                opened_at=created,
                level_started_at=created,
                resolved_at=answered,
                resolved_level=level,
                follow_ups_done=2,
                updated_at=answered,
            )
        )
        disputes += 1
    await session.flush()
    return count, disputes


async def _bulletins(
    session: AsyncSession, cipher: PiiCipher, groups: dict[str, Group], now: datetime
) -> int:
    """Four weekly runs of a finished anti-fraud bulletin to the village groups, delivered."""
    villages = [g for g in groups.values() if "village" in (g.tags or [])]
    bulletin = Bulletin(
        title="反詐提醒:冒充客服退款",
        category="anti-fraud",
        text="【反詐提醒】「客服」來電說要退款、讓您下載軟件或共享屏幕的,都是詐騙。",
        targets={"tags": ["village"]},
        schedule_kind="cron",
        cron="0 10 * * 1",
        status="finished",  # the running demo schedules nothing from it
        created_by="demo",
        created_at=now - timedelta(days=35),
        updated_at=now - timedelta(days=1),
    )
    session.add(bulletin)
    await session.flush()
    for week in range(4):
        due = now - timedelta(days=7 * week + 2)
        run = BulletinRun(
            bulletin_id=bulletin.id,
            due_at=due,
            status="sent",
            groups=len(villages),
            created_at=due,
            fanned_out_at=due,
            sent=sent_record(bulletin),
        )
        session.add(run)
        await session.flush()
        for group in villages:
            key = f"demo-bulletin:{run.id}:{group.id}"
            session.add(
                BulletinDelivery(
                    run_id=run.id,
                    bulletin_id=bulletin.id,
                    group_id=group.id,
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
                    group_id=group.id,
                    chat_key=f"bridge:g:{group.id}",
                    payload_enc=cipher.encrypt_json({"text": bulletin.text}),
                    priority=9,
                    status="sent",
                    attempts=1,
                    next_attempt_at=due,
                    created_at=due,
                    sent_at=due,
                    sent_via="api",
                )
            )
    await session.flush()
    return 4
