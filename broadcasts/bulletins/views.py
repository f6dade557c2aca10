"""Reading state: runs and deliveries as the API and the console show them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.outbox import CANCELLED, OutboxMessage


@dataclass(frozen=True)
class DeliveryView:
    run_id: int
    due_at: datetime
    group_id: str
    channel: str
    status: str  # deferred | pending | sent | failed | held | cancelled
    sent_at: datetime | None
    attempts: int
    not_before: datetime
    reason: str | None


def delivery_status(
    delivery: BulletinDelivery,
    outbox_status: str | None,
    attempts: int,
    next_attempt_at: datetime | None,
    now: datetime,
) -> str:
    """Our view of one delivery: the outbox row's state, or deferred while it waits its turn."""
    if outbox_status is None:
        return CANCELLED if delivery.status == CANCELLED else "pending"  # merged: never queued
    if outbox_status == "pending":
        waiting = next_attempt_at is not None and next_attempt_at > now
        return "deferred" if waiting and attempts == 0 and delivery.reason else "pending"
    if outbox_status == "sending":
        return "pending"
    return outbox_status  # sent | failed | held | cancelled


async def list_deliveries(
    session: AsyncSession,
    *,
    bulletin_id: int,
    now: datetime,
    run_ids: Sequence[int] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[DeliveryView]:
    """Every delivery of a bulletin (or of the runs ``run_ids``), joined to its outbox row by
    key, oldest run first; a page of ``limit`` from ``offset`` when given."""
    query = (
        select(
            BulletinDelivery,
            BulletinRun.due_at,
            OutboxMessage.status,
            OutboxMessage.attempts,
            OutboxMessage.sent_at,
            OutboxMessage.next_attempt_at,
            OutboxMessage.last_error,
        )
        .join(BulletinRun, BulletinRun.id == BulletinDelivery.run_id)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .where(BulletinDelivery.bulletin_id == bulletin_id)
        .order_by(BulletinDelivery.run_id, BulletinDelivery.group_id)
    )
    if run_ids is not None:
        query = query.where(BulletinDelivery.run_id.in_(run_ids))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    out = []
    for d, due_at, ob_status, attempts, sent_at, next_at, last_error in (
        await session.execute(query)
    ).all():
        status = delivery_status(d, ob_status, attempts or 0, next_at, now)
        reason = last_error if status in ("failed", "pending") and last_error else d.reason
        out.append(
            DeliveryView(
                run_id=d.run_id,
                due_at=due_at,
                group_id=d.group_id,
                channel=d.channel,
                status=status,
                sent_at=sent_at,
                attempts=attempts or 0,
                not_before=d.not_before,
                reason=reason if status != "sent" else None,
            )
        )
    return out


def delivery_summary(totals: Mapping[str, int]) -> str:
    """What copies came to, from their totals (``sent``, ``pending`` with the ``deferred`` and
    ``held`` among them, ``failed``; withdrawn ones aside): ``sending`` while any is on its way,
    ``waiting`` while all that are left wait on purpose (quiet hours, the daily cap, a pause),
    else ``failed`` when none reached a group and some failed for good, ``partly_failed``
    when some did, ``cancelled`` when every copy was withdrawn, and ``sent`` when every copy
    not withdrawn reached its group."""
    pending = totals.get("pending", 0)
    if pending:
        held_back = totals.get("deferred", 0) + totals.get("held", 0)
        return "waiting" if held_back >= pending else "sending"
    if totals.get("failed", 0):
        return "partly_failed" if totals.get("sent", 0) else "failed"
    return "cancelled" if totals.get("cancelled", 0) and not totals.get("sent", 0) else "sent"


@dataclass(frozen=True)
class RunView:
    id: int
    due_at: datetime
    status: str
    reason: str | None
    groups: int
    totals: dict[str, int]
    # What the run sent (BulletinRun.sent): None before its fan-out, or for an old run.
    sent: dict[str, Any] | None = None


async def list_runs(
    session: AsyncSession,
    *,
    bulletin_id: int,
    now: datetime,
    limit: int | None = None,
    offset: int = 0,
) -> list[RunView]:
    """Runs newest first with delivery totals (sent, pending incl. deferred/held, failed);
    ``status`` pending, missed or cancelled, or once fanned out :func:`delivery_summary`.
    A page of ``limit`` runs from ``offset`` when given (only their deliveries are read)."""
    query = (
        select(BulletinRun)
        .where(BulletinRun.bulletin_id == bulletin_id)
        .order_by(BulletinRun.due_at.desc(), BulletinRun.id.desc())
    )
    if limit is not None:
        query = query.limit(limit).offset(offset)
    runs = (await session.scalars(query)).all()
    per_run: dict[int, Counter[str]] = {r.id: Counter() for r in runs}
    page = [r.id for r in runs] if limit is not None else None
    for view in await list_deliveries(session, bulletin_id=bulletin_id, now=now, run_ids=page):
        bucket = view.status if view.status in ("sent", "failed", "cancelled") else "pending"
        per_run[view.run_id][bucket] += 1
        if view.status in ("deferred", "held"):
            per_run[view.run_id][view.status] += 1
    out = []
    for r in runs:
        totals = {
            k: per_run[r.id][k]
            for k in ("sent", "pending", "failed", "cancelled", "deferred", "held")
        }
        # A run fanned out is stored ``sent``: what its copies came to says more.
        status = delivery_summary(totals) if r.status == "sent" else r.status
        out.append(RunView(r.id, r.due_at, status, r.reason, r.groups, totals, r.sent))
    return out


def schedule_dict(bulletin: Bulletin) -> dict[str, Any]:
    """The schedule as the API shows it (the shape it was given in)."""
    if bulletin.schedule_kind == "at":
        return {"at": bulletin.run_at}
    return {"cron": bulletin.cron, "start": bulletin.starts_at, "end": bulletin.ends_at}
