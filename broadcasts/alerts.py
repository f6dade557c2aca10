"""Urgent notices (alerts): out at once to every group in scope, ahead of everything queued.

An alert is written with one ``AlertDelivery`` and one outbox row per group in the same
transaction, at outbox priority 0 (the worker claims lower priorities first) and ``not_before``
now: quiet hours and the daily cap are for bulletins, never for alerts. Corrections and recalls
are alerts too (``kind``), sent the same way to the groups the original reached; a recall also
withdraws the original's rows that had not gone out yet, also one being sent.

Residents answer in their group: ``收到`` is recorded as an acknowledgement, anything with content
becomes a help ticket linked to the alert (``handlers/alerts_chat.py``).

The rules are here once, for the chat (``handlers/alerts_chat.py``), the API
(``bot/web/alerts_api.py``) and the console (``bot/web/console/alerts_page.py``): what a text
and a scope must be (:func:`alert_groups`, :func:`check_text`), which media go out with an alert
(:data:`MEDIA_KINDS`), who may recall (:func:`may_recall`) and what a recall does. What the
pages and the API read is in ``broadcasts/alert_views.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Media, OutboundMessage, without_controls
from bot.runtime import Runtime
from bot.settings import BulletinSettings
from bot.texts import group_script, script_of
from broadcasts.bulletins import (
    CANCELLED,
    Problem,
    channel_for,
    check_media,
    check_within,
    public_url,
    resolve_targets,
)
from broadcasts.outbox import enqueue
from models.base import core
from models.bulletins import Alert, AlertAck, AlertDelivery
from models.directory import Group
from models.outbox import OutboxMessage

ALERT_PRIORITY = 0
# Residents' answers count toward an alert for this long after it went out.
REPLY_WINDOW = timedelta(hours=24)
TEXT_MAX = 4000
# ``last_error`` of a copy the recall withdrew while the worker was sending it: the attempt may
# have reached the group, so that group is told of the recall (see :func:`recall_alert`).
RECALLED = "alert recalled"
RECALLED_IN_FLIGHT = "alert recalled while being sent: it may have reached the group"
# What an alert may carry: a photo (a lost child's face) or a short video. A PDF or a file is
# for bulletins; a group reading an urgent notice on a phone should see it at once.
MEDIA_KINDS = ("image", "video")


def check_text(text: str) -> str:
    """The alert's words, stripped; :class:`Problem` (field ``text``, code ``required`` or
    ``too_long``) for none or too many."""
    # Bidi overrides and zero-width spaces go, as from residents' words: an override showed
    # the notice's words reversed in every group.
    text = (without_controls(text) or "").strip()
    if not text:
        raise Problem("text", "an alert needs a text", code="required")
    if len(text) > TEXT_MAX:
        raise Problem("text", f"at most {TEXT_MAX} characters", code="too_long", limit=TEXT_MAX)
    return text


async def alert_groups(
    session: AsyncSession, scope: dict[str, Any], *, within: frozenset[str] | None = None
) -> list[Group]:
    """The groups an alert to ``scope`` reaches now, in id order: what a preview shows and
    what :func:`send_alert` sends to. ``within`` limits an author to their stations
    (:func:`broadcasts.bulletins.check_within`; None: the county). :class:`Problem` (field
    ``scope…``) for an unknown station or group (``unknown``), a scope outside ``within``
    (``outside_scope``, ``scope_all``, ``scope_tags``) or one with no group (``empty``)."""
    groups = await resolve_targets(session, scope, field="scope")
    check_within(scope, groups, within, field="scope")
    if not groups:
        raise Problem("scope", "no group is in this scope", code="empty")
    return groups


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


def render_alert(
    runtime: Runtime, alert: Alert, *, parent_id: int | None, reason: str, group_name: str | None
) -> str:
    """The group message: the author's words as written inside the alert frame, in their
    script; words that read the same in both (更正:已找到) take the group name's."""
    text = runtime.cipher.decrypt(alert.text_enc) or ""
    script = script_of(text or reason) or group_script(group_name)
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
    not_before: dict[str, datetime] | None = None,
) -> int:
    options = runtime.settings.bulletins
    rendered: dict[str, str] = {}  # by the script a group's name asks for: two at most
    for group in groups:
        text = rendered.get(group_script(group.name))
        if text is None:
            text = render_alert(
                runtime, alert, parent_id=parent_id, reason=reason, group_name=group.name
            )
            rendered[group_script(group.name)] = text
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
        enqueue(
            session,
            message,
            cipher=runtime.cipher,
            now=now,
            idempotency_key=key,
            not_before=(not_before or {}).get(group.id),
        )
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
    within: frozenset[str] | None = None,
) -> tuple[Alert, int]:
    """Write an alert and queue it to every group in ``scope``; returns it and the group count.

    :class:`Problem` as :func:`check_text` and :func:`alert_groups` say, or (field ``media``,
    code ``media_kind``) for media other than :data:`MEDIA_KINDS`, or as :func:`check_media`
    for an upload not stored here or not of its type.
    """
    text = check_text(text)
    if media is not None and media.get("type") not in MEDIA_KINDS:
        raise Problem("media", "an alert carries a photo or a video", code="media_kind")
    check_media(media, None, runtime.settings.bulletins.media_folder)
    groups = await alert_groups(session, scope, within=within)
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
    """Groups an alert went out to, or is going out to: not withdrawn, and not given up on
    (a group whose copy finally failed never read the alert; a recall or a correction of
    something it never saw would only puzzle it)."""
    return list(
        (
            await session.scalars(
                select(Group)
                .join(AlertDelivery, AlertDelivery.group_id == Group.id)
                .outerjoin(
                    OutboxMessage,
                    OutboxMessage.idempotency_key == AlertDelivery.idempotency_key,
                )
                .where(AlertDelivery.alert_id == alert_id, AlertDelivery.status != CANCELLED)
                .where(or_(OutboxMessage.status.is_(None), OutboxMessage.status != "failed"))
                .order_by(Group.id)
            )
        ).all()
    )


def _recallable(alert: Alert) -> None:
    """Only an alert itself is recalled or corrected (its corrections go with it), once."""
    if alert.kind != "alert":
        raise Problem(
            "id", f"{alert.id} is a {alert.kind}, act on the alert itself", code="not_alert"
        )
    if alert.status == "recalled":
        raise Problem("id", f"alert {alert.id} was already recalled", code="recalled")


async def may_recall(
    session: AsyncSession,
    alert: Alert,
    *,
    authors: frozenset[str],
    within: frozenset[str] | None,
) -> bool:
    """Whether someone may recall or correct ``alert``: its author (``authors``: every name
    they act under, ``officer:ID`` in the chat, ``console:USERNAME`` on the console), or
    someone whose stations (``within``; None: the county) hold every group it was sent to —
    the county's leader for any alert, a station's leader for the ones that reached only
    their groups."""
    if alert.created_by in authors:
        return True
    if within is None:
        return True
    stations = await session.scalars(
        select(Group.station_id)
        .join(AlertDelivery, AlertDelivery.group_id == Group.id)
        .where(AlertDelivery.alert_id == alert.id)
    )
    reached = set(stations.all())
    return bool(reached) and reached <= within


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
    _recallable(alert)
    return await _follow_up(
        session,
        runtime=runtime,
        alert=alert,
        kind="correction",
        text=check_text(text),
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
    not_before: dict[str, datetime] | None = None,
) -> tuple[Alert, int]:
    """A correction or recall notice, sent to exactly the groups the alert reached
    (``not_before``: per group, not before then)."""
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
        not_before=not_before,
    )
    return notice, count


async def _withdraw(
    session: AsyncSession, family: list[int], now: datetime
) -> tuple[int, dict[str, datetime]]:
    """Cancel every copy of ``family`` not yet sent, also one being sent: a failed attempt is
    recorded only on a row still ``sending``, so it can no longer be retried after the recall.
    A copy waiting to be tried again after an attempt (a timeout, a 5xx) may have got through
    as well, and counts as in flight. Returns how many were withdrawn before they left, and
    the groups whose copy was in flight with when the recall may follow it (the end of the
    attempt's lease; now, for one already over)."""
    tried = or_(
        OutboxMessage.status == "sending",
        and_(OutboxMessage.status == "pending", OutboxMessage.attempts > 0),
    )
    keys = select(AlertDelivery.idempotency_key).where(AlertDelivery.alert_id.in_(family))
    rows = (
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.idempotency_key.in_(keys),
                OutboxMessage.status.in_(("pending", "sending")),
            )
            .values(
                status=CANCELLED,
                last_error=case((tried, RECALLED_IN_FLIGHT), else_=RECALLED),
            )
            .returning(OutboxMessage.group_id, OutboxMessage.last_error, OutboxMessage.lease_until)
            .execution_options(synchronize_session=False)
        )
    ).all()
    # Only a copy that never left is withdrawn from its group; one in flight may be there.
    await session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.alert_id.in_(family))
        .where(
            AlertDelivery.idempotency_key.in_(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.status == CANCELLED, OutboxMessage.last_error == RECALLED
                )
            )
        )
        .values(status=CANCELLED)
    )
    in_flight = {
        g: max(lease or now, now) for g, error, lease in rows if error == RECALLED_IN_FLIGHT and g
    }
    return sum(error == RECALLED for _, error, _ in rows), in_flight


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
    groups it reached. Returns (the recall notice, groups told, messages withdrawn before they
    left).

    A group whose copy was withdrawn before it left never saw it and is told nothing; one
    whose copy was sent gets the recall notice at priority 0, and so does one whose copy was
    being sent (withdrawn too: it is never tried again, but that attempt may have got
    through), once that attempt is over.
    :class:`Problem` (``not_alert``, ``recalled``) for a correction, a recall notice or an
    alert already recalled."""
    _recallable(alert)
    # The reason goes to every group in the notice: cleaned as an alert's words are, whoever
    # calls (the console's form passed it on as typed).
    reason = (without_controls(reason) or "").strip()
    children = await session.scalars(select(Alert.id).where(Alert.parent_id == alert.id))
    family = [alert.id, *children.all()]
    withdrawn, in_flight = await _withdraw(session, family, now)
    await session.execute(
        update(Alert).where(Alert.id.in_(family)).values(status="recalled", recalled_at=now)
    )
    await session.refresh(alert)
    # A group whose copy was in flight hears of the recall after that attempt is over, never
    # before the copy it recalls.
    notice, count = await _follow_up(
        session,
        runtime=runtime,
        alert=alert,
        kind="recall",
        text=reason,
        reason=reason,
        created_by=created_by,
        now=now,
        not_before=in_flight,
    )
    return notice, count, withdrawn


# Built once: it runs for every resident message in a group.
_ACTIVE_ALERT = (
    select(Alert.id, Alert.kind, Alert.parent_id)
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


# Whether any alert went out in the window at all, asked once per transaction (an inbound
# batch): on most days none did, and then no group needs asking. Alerts made in this process
# since (a chat command earlier in the batch) count them again; one another process sends is
# seen from the next transaction.
_ANY_SENT = (
    select(Alert.id)
    .where(
        Alert.kind.in_(("alert", "correction")),
        Alert.status == "sent",
        Alert.created_at >= bindparam("since"),
    )
    .limit(1)
)
_SENT = "lianxin.alerts.sent_since"  # session.info: ((since, alerts made), any sent)
_made = [0]  # alerts constructed in this process


@event.listens_for(Alert, "init")
def _count_made(*_: Any) -> None:
    _made[0] += 1


async def _none_sent(session: AsyncSession, since: datetime) -> bool:
    """True when no alert was sent since ``since`` (known for this transaction)."""
    asked = (since, _made[0])
    known = session.info.get(_SENT)
    if known is not None and known[0] == asked:
        return not known[1]
    conn = await core(session, flush=(Alert,))
    sent = (await conn.execute(_ANY_SENT, {"since": since})).first() is not None
    session.info[_SENT] = (asked, sent)
    return not sent


async def active_alert_for_group(
    session: AsyncSession, *, group_id: str, now: datetime
) -> Alert | None:
    """The latest alert (or correction) that reached ``group_id`` in the last 24 h, not recalled.

    Replies count toward the original alert, so a correction maps back to its parent.
    """
    since = now - REPLY_WINDOW
    if await _none_sent(session, since):
        return None
    # A narrow Core query on the connection (flushed first only when alerts changed in this
    # transaction), and the ORM loads the alert only when there is one.
    conn = await core(session, flush=(Alert, AlertDelivery))
    row = (await conn.execute(_ACTIVE_ALERT, {"group_id": group_id, "since": since})).first()
    if row is None:
        return None
    return await session.get(
        Alert, row.parent_id if row.kind == "correction" and row.parent_id is not None else row.id
    )


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
