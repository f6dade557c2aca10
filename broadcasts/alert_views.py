"""What is read about urgent notices, by the API (``GET /api/v1/alerts…``) and the console's
緊急通報 page alike: per group whether it went out (sent, pending, failed with the error, or
withdrawn), residents' acknowledgements, the clue tickets linked to it, its follow-ups, and the
stations it reached (who may see it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from broadcasts.bulletins import CANCELLED, delivery_summary
from models.bulletins import Alert, AlertAck, AlertDelivery
from models.directory import Group
from models.outbox import OutboxMessage
from models.tickets import Ticket

# A sending error is shown as it came, cut to this length (a bridge's whole HTML error page
# is of no use on a screen).
ERROR_SHOWN = 300


@dataclass(frozen=True)
class AlertGroupView:
    group_id: str
    status: str  # pending | sent | failed | cancelled
    sent_at: datetime | None
    attempts: int
    acks: int
    error: str | None = None  # the last sending error: a retry's (pending) or the final one
    # Withdrawn by a recall while it was being sent: that attempt may have reached the group,
    # which gets the recall notice (broadcasts.alerts.recall_alert).
    maybe_sent: bool = False


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    parent_id: int | None
    status: str  # recalled | sending | sent | partly_failed | failed (alert_state)
    scope: dict[str, Any]
    text: str
    created_by: str
    created_at: datetime
    recalled_at: datetime | None
    totals: dict[str, int]
    groups: list[AlertGroupView]
    acks: int
    tickets: list[str]
    followups: list[int]


async def clue_tickets(session: AsyncSession, alert_id: int) -> list[Ticket]:
    """The tickets residents' clues opened for an alert (``ticket.alert_id``), oldest first."""
    return list(
        (
            await session.scalars(
                select(Ticket).where(Ticket.alert_id == alert_id).order_by(Ticket.id)
            )
        ).all()
    )


async def reached_stations(session: AsyncSession, alert_id: int) -> set[str]:
    """The stations whose groups an alert was sent to (withdrawn copies included: the
    station's people should see what was meant for them, and that it was recalled)."""
    rows = await session.scalars(
        select(Group.station_id)
        .join(AlertDelivery, AlertDelivery.group_id == Group.id)
        .where(AlertDelivery.alert_id == alert_id)
        .distinct()
    )
    return set(rows.all())


async def group_states(session: AsyncSession, alert_id: int) -> list[AlertGroupView]:
    """Per group, in group id order: whether its copy went out, and the acknowledgements."""
    rows = (
        await session.execute(
            select(
                AlertDelivery.group_id,
                AlertDelivery.status,
                OutboxMessage.status,
                OutboxMessage.sent_at,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
            )
            .outerjoin(
                OutboxMessage, OutboxMessage.idempotency_key == AlertDelivery.idempotency_key
            )
            .where(AlertDelivery.alert_id == alert_id)
            .order_by(AlertDelivery.group_id)
        )
    ).all()
    acks = dict(
        (
            await session.execute(
                select(AlertAck.group_id, func.count())
                .where(AlertAck.alert_id == alert_id)
                .group_by(AlertAck.group_id)
            )
        ).all()
    )
    out = []
    for group_id, own, ob_status, sent_at, attempts, last_error in rows:
        if own == CANCELLED or ob_status == CANCELLED:
            status = CANCELLED
        elif ob_status in ("sent", "failed"):
            status = ob_status
        else:
            status = "pending"  # queued, or being sent (a retry waits here too)
        error = last_error[:ERROR_SHOWN] if last_error and status in ("pending", "failed") else None
        maybe_sent = status == CANCELLED and own != CANCELLED
        out.append(
            AlertGroupView(
                group_id, status, sent_at, attempts or 0, acks.get(group_id, 0), error, maybe_sent
            )
        )
    return out


def totals_of(groups: list[AlertGroupView]) -> dict[str, int]:
    """How many groups' copies were sent, are pending, failed or were withdrawn."""
    totals = {"sent": 0, "pending": 0, "failed": 0, "cancelled": 0}
    for g in groups:
        totals[g.status] += 1
    return totals


def alert_state(alert: Alert, totals: dict[str, int]) -> str:
    """``recalled``, or what its copies came to (:func:`broadcasts.bulletins.delivery_summary`:
    sending, sent, partly_failed, failed), for the API and the console alike."""
    return "recalled" if alert.status == "recalled" else delivery_summary(totals)


async def alert_view(session: AsyncSession, *, runtime: Runtime, alert: Alert) -> AlertView:
    """Per group: whether it went out, and how many residents acknowledged; linked tickets."""
    groups = await group_states(session, alert.id)
    totals = totals_of(groups)
    tickets = [t.code for t in await clue_tickets(session, alert.id)]
    followups = list(
        (
            await session.scalars(
                select(Alert.id).where(Alert.parent_id == alert.id).order_by(Alert.id)
            )
        ).all()
    )
    return AlertView(
        id=alert.id,
        kind=alert.kind,
        parent_id=alert.parent_id,
        status=alert_state(alert, totals),
        scope=alert.scope,
        text=runtime.cipher.decrypt(alert.text_enc) or "",
        created_by=alert.created_by,
        created_at=alert.created_at,
        recalled_at=alert.recalled_at,
        totals=totals,
        groups=groups,
        acks=sum(g.acks for g in groups),
        tickets=tickets,
        followups=followups,
    )
