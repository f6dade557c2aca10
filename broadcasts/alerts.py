"""Urgent notices (alerts): out at once to every group in scope, ahead of everything queued.

An alert is written with one ``AlertDelivery`` and one outbox row per group in the same
transaction, at outbox priority 0 (the worker claims lower priorities first) and ``not_before``
now: quiet hours and the daily cap are for bulletins, never for alerts. Corrections and recalls
are alerts too (``kind``), sent the same way to the groups the original reached; a recall also
withdraws the original's rows that had not gone out yet.

Residents answer in their group: ``收到`` is recorded as an acknowledgement, anything with content
becomes a help ticket linked to the alert (``handlers/alerts_chat.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Media, OutboundMessage
from bot.runtime import Runtime
from bot.settings import BulletinSettings
from bot.texts import detect_script
from broadcasts.bulletins import (
    CANCELLED,
    Problem,
    channel_for,
    public_url,
    resolve_targets,
)
from broadcasts.outbox import enqueue
from models.bulletins import Alert, AlertAck, AlertDelivery
from models.directory import Group
from models.outbox import OutboxMessage
from models.tickets import Ticket

ALERT_PRIORITY = 0
# Residents' answers count toward an alert for this long after it went out.
REPLY_WINDOW = timedelta(hours=24)


def _message(
    runtime: Runtime,
    alert: Alert,
    group: Group,
    text: str,
    options: BulletinSettings,
) -> OutboundMessage:
    media = None
    if alert.media:
        m = alert.media
        media = Media(m["type"], public_url(m["url"], options), m.get("title"))
    return OutboundMessage(
        channel=channel_for(group),
        text=text,
        group_id=group.id,
        media=media,
        priority=ALERT_PRIORITY,
        extra={"webhook": group.wecom_webhook} if group.wecom_webhook else {},
    )


def render_alert(runtime: Runtime, alert: Alert, *, parent_id: int | None, reason: str) -> str:
    """The group message: the author's words as written inside the alert frame."""
    text = runtime.cipher.decrypt(alert.text_enc) or ""
    script = detect_script(text or reason)
    if alert.kind == "correction":
        return runtime.texts.render("alert_correction", script, parent=parent_id, text=text)
    if alert.kind == "recall":
        because = (
            runtime.texts.render("alert_recall_reason", script, reason=reason) if reason else ""
        )
        return runtime.texts.render("alert_recall", script, parent=parent_id, reason=because)
    return runtime.texts.render("alert_message", script, id=alert.id, text=text)


async def _fan_out(
    session: AsyncSession,
    *,
    runtime: Runtime,
    alert: Alert,
    groups: list[Group],
    parent_id: int | None,
    reason: str,
    now: datetime,
) -> int:
    options = runtime.settings.bulletins
    text = render_alert(runtime, alert, parent_id=parent_id, reason=reason)
    for group in groups:
        message = _message(runtime, alert, group, text, options)
        key = f"alert-{alert.id}-{group.id}"
        session.add(
            AlertDelivery(
                alert_id=alert.id,
                group_id=group.id,
                channel=message.channel,
                idempotency_key=key,
                status="queued",
                created_at=now,
            )
        )
        enqueue(session, message, cipher=runtime.cipher, now=now, idempotency_key=key)
    runtime.outbox_wakeup.set()
    return len(groups)


async def send_alert(
    session: AsyncSession,
    *,
    runtime: Runtime,
    scope: dict[str, Any],
    text: str,
    media: dict[str, Any] | None,
    created_by: str,
    now: datetime,
) -> tuple[Alert, int]:
    """Write an alert and queue it to every group in ``scope``; returns it and the group count.

    :class:`Problem` (field ``scope…``) for an unknown station or group or an empty scope.
    """
    groups = await resolve_targets(session, scope, field="scope")
    if not groups:
        raise Problem("scope", "no group is in this scope")
    alert = Alert(
        kind="alert",
        scope=scope,
        text_enc=runtime.cipher.encrypt(text),
        media=media,
        status="sent",
        created_by=created_by,
        created_at=now,
    )
    session.add(alert)
    await session.flush()
    count = await _fan_out(
        session, runtime=runtime, alert=alert, groups=groups, parent_id=None, reason="", now=now
    )
    return alert, count


async def _reached_groups(session: AsyncSession, alert_id: int) -> list[Group]:
    """Groups an alert went out to, or is going out to (not withdrawn)."""
    return list(
        (
            await session.scalars(
                select(Group)
                .join(AlertDelivery, AlertDelivery.group_id == Group.id)
                .where(AlertDelivery.alert_id == alert_id, AlertDelivery.status != CANCELLED)
                .order_by(Group.id)
            )
        ).all()
    )


async def correct_alert(
    session: AsyncSession,
    *,
    runtime: Runtime,
    alert: Alert,
    text: str,
    created_by: str,
    now: datetime,
) -> tuple[Alert, int]:
    """A correction: sent like an alert, to the groups the original reached."""
    if alert.status == "recalled":
        raise Problem("id", f"alert {alert.id} was recalled")
    return await _follow_up(
        session,
        runtime=runtime,
        alert=alert,
        kind="correction",
        text=text,
        reason="",
        created_by=created_by,
        now=now,
    )


async def _follow_up(
    session: AsyncSession,
    *,
    runtime: Runtime,
    alert: Alert,
    kind: str,
    text: str,
    reason: str,
    created_by: str,
    now: datetime,
) -> tuple[Alert, int]:
    """A correction or recall notice, sent to exactly the groups the alert reached."""
    groups = await _reached_groups(session, alert.id)
    notice = Alert(
        kind=kind,
        parent_id=alert.id,
        scope=alert.scope,
        text_enc=runtime.cipher.encrypt(text),
        media=None,
        status="sent",
        created_by=created_by,
        created_at=now,
    )
    session.add(notice)
    await session.flush()
    count = await _fan_out(
        session,
        runtime=runtime,
        alert=notice,
        groups=groups,
        parent_id=alert.id,
        reason=reason,
        now=now,
    )
    return notice, count


async def recall_alert(
    session: AsyncSession,
    *,
    runtime: Runtime,
    alert: Alert,
    reason: str,
    created_by: str,
    now: datetime,
) -> tuple[Alert, int, int]:
    """Recall an alert (and its corrections): withdraw what has not gone out, and tell the
    groups it reached. Returns (the recall notice, groups told, messages withdrawn)."""
    if alert.status == "recalled":
        raise Problem("id", f"alert {alert.id} was already recalled")
    children = await session.scalars(select(Alert.id).where(Alert.parent_id == alert.id))
    family = [alert.id, *children.all()]
    keys = select(AlertDelivery.idempotency_key).where(AlertDelivery.alert_id.in_(family))
    # Conditional on ``pending``: a row the worker has already taken goes out, and is recalled.
    withdrawn = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.idempotency_key.in_(keys), OutboxMessage.status == "pending")
        .values(status=CANCELLED, last_error="alert recalled")
    )
    await session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.alert_id.in_(family))
        .where(
            AlertDelivery.idempotency_key.in_(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.status == CANCELLED)
            )
        )
        .values(status=CANCELLED)
    )
    await session.execute(
        update(Alert).where(Alert.id.in_(family)).values(status="recalled", recalled_at=now)
    )
    await session.refresh(alert)
    notice, count = await _follow_up(
        session,
        runtime=runtime,
        alert=alert,
        kind="recall",
        text=reason,
        reason=reason,
        created_by=created_by,
        now=now,
    )
    return notice, count, int(withdrawn.rowcount)  # type: ignore[attr-defined]


# Built once: it runs for every resident message in a group.
_ACTIVE_ALERT = (
    select(Alert)
    .join(AlertDelivery, AlertDelivery.alert_id == Alert.id)
    .where(
        AlertDelivery.group_id == bindparam("group_id"),
        AlertDelivery.status != CANCELLED,
        Alert.kind.in_(("alert", "correction")),
        Alert.status == "sent",
        Alert.created_at >= bindparam("since"),
    )
    .order_by(Alert.created_at.desc(), Alert.id.desc())
    .limit(1)
)


async def active_alert_for_group(
    session: AsyncSession, *, group_id: str, now: datetime
) -> Alert | None:
    """The latest alert (or correction) that reached ``group_id`` in the last 24 h, not recalled.

    Replies count toward the original alert, so a correction maps back to its parent.
    """
    row = await session.scalar(_ACTIVE_ALERT, {"group_id": group_id, "since": now - REPLY_WINDOW})
    if row is not None and row.kind == "correction" and row.parent_id is not None:
        return await session.get(Alert, row.parent_id)
    return row


async def record_ack(
    session: AsyncSession, *, alert: Alert, group_id: str, member_id: int, now: datetime
) -> bool:
    """Record a resident's 收到 once; False when they had already answered."""
    exists = await session.scalar(
        select(AlertAck.id).where(AlertAck.alert_id == alert.id, AlertAck.member_id == member_id)
    )
    if exists is not None:
        return False
    session.add(AlertAck(alert_id=alert.id, group_id=group_id, member_id=member_id, at=now))
    return True


@dataclass(frozen=True)
class AlertGroupView:
    group_id: str
    status: str  # pending | sent | failed | cancelled
    sent_at: datetime | None
    attempts: int
    acks: int


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    parent_id: int | None
    status: str
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


async def alert_view(session: AsyncSession, *, runtime: Runtime, alert: Alert) -> AlertView:
    """Per group: whether it went out, and how many residents acknowledged; linked tickets."""
    rows = (
        await session.execute(
            select(
                AlertDelivery.group_id,
                AlertDelivery.status,
                OutboxMessage.status,
                OutboxMessage.sent_at,
                OutboxMessage.attempts,
            )
            .outerjoin(
                OutboxMessage, OutboxMessage.idempotency_key == AlertDelivery.idempotency_key
            )
            .where(AlertDelivery.alert_id == alert.id)
            .order_by(AlertDelivery.group_id)
        )
    ).all()
    acks = dict(
        (
            await session.execute(
                select(AlertAck.group_id, func.count())
                .where(AlertAck.alert_id == alert.id)
                .group_by(AlertAck.group_id)
            )
        ).all()
    )
    groups = []
    totals = {"sent": 0, "pending": 0, "failed": 0, "cancelled": 0}
    for group_id, own, ob_status, sent_at, attempts in rows:
        if own == CANCELLED or ob_status == CANCELLED:
            status = CANCELLED
        elif ob_status in ("sent", "failed"):
            status = ob_status
        else:
            status = "pending"
        totals[status] += 1
        groups.append(
            AlertGroupView(group_id, status, sent_at, attempts or 0, acks.get(group_id, 0))
        )
    tickets = list(
        (
            await session.scalars(
                select(Ticket.code).where(Ticket.alert_id == alert.id).order_by(Ticket.id)
            )
        ).all()
    )
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
        status=alert.status,
        scope=alert.scope,
        text=runtime.cipher.decrypt(alert.text_enc) or "",
        created_by=alert.created_by,
        created_at=alert.created_at,
        recalled_at=alert.recalled_at,
        totals=totals,
        groups=groups,
        acks=sum(acks.values()),
        tickets=tickets,
        followups=followups,
    )
