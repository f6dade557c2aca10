"""The tick: materialise due runs, fan each out to deliveries and outbox rows.

See the package docstring for why a crash or a second tick neither loses nor repeats a run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import OutboundMessage
from bot.runtime import Runtime
from broadcasts.bulletins.crud import sent_record
from broadcasts.bulletins.message import bulletin_messages
from broadcasts.bulletins.quiet import QuietHours, cap_counts, cap_taken, plan_slot
from broadcasts.bulletins.schedule import first_run, next_after
from broadcasts.bulletins.targets import (
    channel_for,
    group_timezones,
    target_page,
)
from broadcasts.outbox import outbox_values
from models.base import rowcount, table_of
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.directory import Group
from models.outbox import CANCELLED, OutboxMessage

log = logging.getLogger("lianxin.bulletins")
# A service down for long with a frequent cron: record at most this many missed runs per tick.
MAX_CATCH_UP = 100
# Groups per fan-out transaction: large enough that a round trip is shared by many rows, small
# enough that memory stays flat and a writer is never held up long (SQLite has one at a time).
FAN_OUT_PAGE = 500


@dataclass
class TickResult:
    """What one tick did."""

    runs: int = 0
    missed: int = 0
    fanned_out: int = 0
    deliveries: int = 0
    run_ids: list[int] = field(default_factory=list)


async def _insert_ignore(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """INSERT a run unless its (bulletin, due time) exists; the new id or None."""
    table = table_of(BulletinRun)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    run_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return run_id


async def materialise_runs(
    session: AsyncSession,
    *,
    bulletin_id: int,
    tz: ZoneInfo,
    grace: timedelta,
    now: datetime,
) -> tuple[int, int]:
    """Insert the runs of one bulletin that are due by ``now``; returns (pending, missed)."""
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None or bulletin.status != "active" or bulletin.next_run_at is None:
        return 0, 0
    old_next = bulletin.next_run_at
    due: list[datetime] = []
    t: datetime | None = old_next
    while t is not None and t <= now and len(due) < MAX_CATCH_UP:
        due.append(t)
        t = next_after(bulletin, tz=tz, after=t)
    if t is not None and t <= now:
        # Far behind: skip to the runs that are still within the grace period.
        skipped_from = t
        t = first_run(bulletin, tz=tz, at_or_after=now - grace)
        while t is not None and t <= now:
            due.append(t)
            t = next_after(bulletin, tz=tz, after=t)
        log.warning(
            "bulletin %s: skipped due times from %s (far behind)", bulletin_id, skipped_from
        )
    # Conditional on the value we read: two ticks at once create each run once.
    moved = await session.execute(
        update(Bulletin)
        .where(Bulletin.id == bulletin_id, Bulletin.next_run_at == old_next)
        .values(next_run_at=t, status="active" if t is not None else "finished", updated_at=now)
    )
    if rowcount(moved) != 1:
        return 0, 0
    pending = missed = 0
    for due_at in due:
        late = now - due_at
        is_missed = late > grace
        inserted = await _insert_ignore(
            session,
            {
                "bulletin_id": bulletin_id,
                "due_at": due_at,
                "status": "missed" if is_missed else "pending",
                "reason": (
                    f"missed: found {int(late.total_seconds())} s late, past the grace period"
                    if is_missed
                    else None
                ),
                "groups": 0,
                "created_at": now,
            },
        )
        if inserted is not None:
            missed += is_missed
            pending += not is_missed
    return pending, missed


async def fan_out_run(
    runtime: Runtime, *, run_id: int, now: datetime, page_size: int = FAN_OUT_PAGE
) -> int | None:
    """Fan a pending run out completely (see :func:`fan_out_pages`); the number of groups, or
    None if it was not ours to do."""
    progress = [
        p async for p in fan_out_pages(runtime, run_id=run_id, now=now, page_size=page_size)
    ]
    return progress[-1].groups if progress and progress[-1].done else None


@dataclass(frozen=True)
class FanOut:
    """How far a run's fan-out has come: groups written so far, and whether it is sent."""

    groups: int
    done: bool = False


async def fan_out_pages(
    runtime: Runtime, *, run_id: int, now: datetime, page_size: int = FAN_OUT_PAGE
) -> AsyncIterator[FanOut]:
    """Write a pending run's deliveries and outbox rows, a page of groups per transaction, then
    mark it sent; yields after every committed page and, last, once the run is sent. Yields
    nothing when the run is not ours to do (gone, not pending, missed, paused).

    Pages keep memory flat and let the outbox worker start on the first groups while the rest
    are written. A crash between pages leaves the run pending with some pages written; the
    next tick resumes after the last group written (the deliveries are written in group id
    order), so no group gets two rows (``(run_id, group_id)`` and the idempotency key are
    unique besides)."""
    options = runtime.settings.bulletins
    async with runtime.sessions.begin() as session:
        run = await session.get(BulletinRun, run_id)
        if run is None or run.status != "pending":
            return
        written, after = (
            await session.execute(
                select(func.count(), func.max(BulletinDelivery.group_id)).where(
                    BulletinDelivery.run_id == run_id
                )
            )
        ).one()
        late = now - run.due_at
        if not written and late > timedelta(seconds=options.missed_run_grace_s):
            # Pending since before a long outage: too late to be useful. A run already partly
            # out is finished instead: half the groups told is worse than all of them late.
            await session.execute(
                update(BulletinRun)
                .where(BulletinRun.id == run_id, BulletinRun.status == "pending")
                .values(
                    status="missed",
                    reason=(
                        f"missed: found {int(late.total_seconds())} s late, past the grace period"
                    ),
                )
            )
            return
        bulletin = await session.get(Bulletin, run.bulletin_id)
        assert bulletin is not None
        targets, bulletin_id = dict(bulletin.targets), bulletin.id
        if run.sent is None:
            run.sent = sent_record(bulletin)
        words = dict(run.sent)
        message_for = bulletin_messages(runtime, bulletin, options)
        tzs = await group_timezones(session, runtime.settings.timezone)
    total = int(written or 0)
    while True:
        async with runtime.sessions.begin() as session:
            # Locked (PostgreSQL) so that a pause committed meanwhile holds this page too, or
            # stops the fan-out; the resume picks the run up where it stopped.
            status = await session.scalar(
                select(Bulletin.status).where(Bulletin.id == bulletin_id).with_for_update()
            )
            if status not in ("active", "finished"):
                return
            groups, last = await target_page(session, targets, after=after, size=page_size)
            if last is None:
                break
            await _write_page(
                session,
                runtime=runtime,
                run_id=run_id,
                bulletin_id=bulletin_id,
                groups=groups,
                message_for=message_for,
                words=words,
                tzs=tzs,
                now=now,
            )
        total += len(groups)
        after = last
        if groups:
            runtime.outbox_wakeup.set()
        yield FanOut(total)
    async with runtime.sessions.begin() as session:
        claimed = await session.execute(
            update(BulletinRun)
            .where(BulletinRun.id == run_id, BulletinRun.status == "pending")
            .values(status="sent", fanned_out_at=now, groups=total)
        )
    if rowcount(claimed) == 1:
        yield FanOut(total, done=True)


async def _write_page(
    session: AsyncSession,
    *,
    runtime: Runtime,
    run_id: int,
    bulletin_id: int,
    groups: list[Group],
    message_for: Callable[[Group], OutboundMessage],
    words: dict[str, Any],
    tzs: dict[str, ZoneInfo],
    now: datetime,
) -> None:
    """One page of a run's fan-out: a delivery and (unless merged) an outbox row per group,
    each kind in one multi-row INSERT."""
    if not groups:
        return
    options = runtime.settings.bulletins
    ids = [g.id for g in groups]
    quiet = QuietHours.parse(options.quiet_hours)
    cap = options.daily_cap_per_group
    counts = await cap_counts(session, since=(now - timedelta(days=1)).date(), groups=ids)
    waiting = await _still_waiting(session, bulletin_id, ids)
    deliveries: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    replaced: list[str] = []
    for group in groups:
        tz = tzs.get(group.station_id, runtime.settings.tz)
        slot = plan_slot(
            now, tz=tz, quiet=quiet, cap=cap, taken=partial(cap_taken, counts, group.id)
        )
        key = f"bulletin-{run_id}-{group.id}"
        delivery = {
            "run_id": run_id,
            "bulletin_id": bulletin_id,
            "group_id": group.id,
            "channel": channel_for(group),
            "idempotency_key": key,
            "slot_date": slot.slot_date,
            "not_before": slot.not_before,
            "reason": slot.reason,
            "status": "queued",
            "created_at": now,
        }
        earlier = waiting.get(group.id)
        if earlier is not None and earlier[1] in (None, words):
            # A cron bulletin due every few minutes through the night would otherwise queue a
            # copy per run, all released together at the end of the quiet hours: one copy of
            # the same words waiting for a group is enough.
            delivery["reason"] = f"merged: run {earlier[0]} of this bulletin still waits to go"
            delivery["status"] = CANCELLED
            deliveries.append(delivery)
            continue
        if earlier is not None:
            # Edited since that copy was queued: merged, the group got the old words and the
            # correction was dropped. The newer words go instead.
            replaced.append(f"bulletin-{earlier[0]}-{group.id}")
        counts[(group.id, slot.slot_date)] += 1
        deliveries.append(delivery)
        outbox.append(
            outbox_values(
                message_for(group),
                cipher=runtime.cipher,
                now=now,
                idempotency_key=key,
                not_before=slot.not_before,
            )
        )
    # On the connection: plain executemany INSERTs, no ORM objects to build or flush.
    connection = await session.connection()
    await connection.execute(insert(BulletinDelivery), deliveries)
    if outbox:
        await connection.execute(insert(OutboxMessage), outbox)
    if replaced:
        await _withdraw(session, replaced, reason=f"replaced by run {run_id} (edited since)")


async def _withdraw(session: AsyncSession, keys: list[str], *, reason: str) -> None:
    """Withdraw the copies ``keys`` not yet tried (one the worker took meanwhile goes out)."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.idempotency_key.in_(keys))
        .where(OutboxMessage.status == "pending", OutboxMessage.attempts == 0)
        .values(status=CANCELLED, last_error=reason)
    )
    await session.execute(
        update(BulletinDelivery)
        .where(BulletinDelivery.idempotency_key.in_(keys))
        .where(
            BulletinDelivery.idempotency_key.in_(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.idempotency_key.in_(keys), OutboxMessage.status == CANCELLED
                )
            )
        )
        .values(status=CANCELLED, reason=reason)
    )


async def _still_waiting(
    session: AsyncSession, bulletin_id: int, groups: list[str]
) -> dict[str, tuple[int, dict[str, Any] | None]]:
    """Of ``groups``, those with a delivery of this bulletin queued and not yet tried (waiting
    for the end of quiet hours, a day under the cap, or the worker), the run it belongs to
    and what that run sent (None for a run older than the record)."""
    rows = await session.execute(
        select(BulletinDelivery.group_id, BulletinDelivery.run_id, BulletinRun.sent)
        .join(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .join(BulletinRun, BulletinRun.id == BulletinDelivery.run_id)
        .where(
            BulletinDelivery.bulletin_id == bulletin_id,
            BulletinDelivery.group_id.in_(groups),
            OutboxMessage.status == "pending",
            OutboxMessage.attempts == 0,
        )
    )
    return {group_id: (run, sent) for group_id, run, sent in rows.all()}


async def bulletin_tick(runtime: Runtime) -> TickResult:
    """Everything due at ``runtime.clock.now()``: create runs, then fan out pending ones.

    Safe to run twice, concurrently, or after a crash at any point (see the module docstring).
    """
    now = runtime.clock.now()
    options = runtime.settings.bulletins
    grace = timedelta(seconds=options.missed_run_grace_s)
    tz = runtime.settings.tz
    result = TickResult()
    async with runtime.sessions() as session:
        due_ids = (
            await session.scalars(
                select(Bulletin.id)
                .where(Bulletin.status == "active", Bulletin.next_run_at <= now)
                .order_by(Bulletin.next_run_at)
            )
        ).all()
    for bulletin_id in due_ids:
        async with runtime.sessions.begin() as session:
            pending, missed = await materialise_runs(
                session, bulletin_id=bulletin_id, tz=tz, grace=grace, now=now
            )
        result.runs += pending
        result.missed += missed
    async with runtime.sessions() as session:
        run_ids = (
            await session.scalars(
                select(BulletinRun.id)
                .join(Bulletin, Bulletin.id == BulletinRun.bulletin_id)
                .where(
                    BulletinRun.status == "pending",
                    BulletinRun.due_at <= now,
                    Bulletin.status.in_(("active", "finished")),
                )
                .order_by(BulletinRun.due_at, BulletinRun.id)
            )
        ).all()
    for run_id in run_ids:
        count = await fan_out_run(runtime, run_id=run_id, now=now)
        if count is None:
            continue
        result.fanned_out += 1
        result.deliveries += count
        result.run_ids.append(run_id)
        log.info("bulletin run %s fanned out to %d group(s)", run_id, count)
    if result.missed:
        log.warning("bulletins: %d run(s) recorded as missed", result.missed)
    if result.deliveries:
        runtime.outbox_wakeup.set()
    return result


async def bulletin_tick_job(runtime: Runtime) -> None:
    """The scheduler job: one tick (the scheduler logs a failure; the next tick tries again)."""
    await bulletin_tick(runtime)
