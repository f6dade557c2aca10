"""The outbox: enqueue in the caller's transaction; a worker (:mod:`broadcasts.outbox_worker`)
then claims, sends and records.

Delivery is at-least-once toward the channel with the same ``idempotency_key`` on every try, so
a receiver that de-duplicates on it (the bridge does, by contract) sees each message once even
when the worker dies between sending and recording.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import OutboundMessage
from bot.pii import PiiCipher, mask_phone
from bot.settings import SmsSettings
from models.base import core
from models.outbox import OutboxMessage, chat_key


def echo_hash(cipher: PiiCipher, text: str) -> str:
    """The hash under which an echo of ``text`` is recognised: leading @-mentions (which bridges
    add when they render mentions) and surrounding white space do not count."""
    body = re.sub(r"^(?:@\S+[\s\u2005]*)+", "", unicodedata.normalize("NFKC", text)).strip()
    return cipher.lookup_hash("echo:" + body)


def outbox_values(
    message: OutboundMessage,
    *,
    cipher: PiiCipher,
    now: datetime,
    idempotency_key: str | None = None,
    source_event_id: int | None = None,
    not_before: datetime | None = None,
    ticket_id: int | None = None,
    fallback_after: timedelta | None = None,
) -> dict[str, Any]:
    """The column values of ``message``'s outbox row (see :func:`enqueue`), for callers that
    insert many rows in one statement (a bulletin run's fan-out)."""
    return {
        "idempotency_key": idempotency_key or f"lx-{uuid.uuid4().hex}",
        "channel": message.channel,
        "group_id": message.group_id,
        "user_id": message.user_id,
        "chat_key": chat_key(message.channel, message.group_id, message.user_id),
        "ticket_id": ticket_id,
        "fallback_at": (
            (not_before or now) + fallback_after if fallback_after is not None else None
        ),
        "payload_enc": cipher.encrypt_json(message.payload()),
        "echo_hash": echo_hash(cipher, message.text),
        "priority": message.priority,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "source_event_id": source_event_id,
    }


def enqueue(
    session: AsyncSession,
    message: OutboundMessage,
    *,
    cipher: PiiCipher,
    now: datetime,
    idempotency_key: str | None = None,
    source_event_id: int | None = None,
    not_before: datetime | None = None,
    ticket_id: int | None = None,
    fallback_after: timedelta | None = None,
) -> OutboxMessage:
    """Add an outbox row to ``session`` (the caller commits it with whatever caused it).

    ``ticket_id`` with ``fallback_after``: should the row still be unsent that long after it
    was queued, the ticket's officers are paged by SMS (bot/services/sms_fallback.py)."""
    row = OutboxMessage(
        **outbox_values(
            message,
            cipher=cipher,
            now=now,
            idempotency_key=idempotency_key,
            source_event_id=source_event_id,
            not_before=not_before,
            ticket_id=ticket_id,
            fallback_after=fallback_after,
        )
    )
    session.add(row)
    return row


def urgent_fallback(sms: SmsSettings, ticket_id: int | None) -> dict[str, Any]:
    """:func:`enqueue`'s arguments that make a message about ``ticket_id`` urgent: still
    unsent after ``sms.fallback_after_s``, its ticket is paged by SMS
    (bot/services/sms_fallback.py)."""
    if ticket_id is None:
        return {}
    return {"ticket_id": ticket_id, "fallback_after": timedelta(seconds=sms.fallback_after_s)}


# WeChat refuses customer-service messages to a follower who has not written for 48 hours
# (45015) or has had too many since (45047); a message from them opens the window again.
_WINDOW_CLOSED = ("wechat errcode 45015", "wechat errcode 45047")
RESEND_WITHIN = timedelta(days=7)


# Built once: on every WeChat message, building the statement would cost more than running it.
_REFUSED = (
    select(OutboxMessage)
    .where(
        OutboxMessage.channel == "wechat",
        OutboxMessage.user_id == bindparam("user_id"),
        OutboxMessage.status == "failed",
        OutboxMessage.last_error.in_(_WINDOW_CLOSED),
        OutboxMessage.created_at >= bindparam("since"),
    )
    .order_by(OutboxMessage.id)
)


_REFUSED_AMONG = (
    select(OutboxMessage.user_id)
    .where(
        OutboxMessage.channel == "wechat",
        OutboxMessage.user_id.in_(bindparam("user_ids", expanding=True)),
        OutboxMessage.status == "failed",
        OutboxMessage.last_error.in_(_WINDOW_CLOSED),
        OutboxMessage.created_at >= bindparam("since"),
    )
    .distinct()
)


async def refused_among(
    session: AsyncSession, user_ids: Collection[str], now: datetime
) -> set[str]:
    """Of the WeChat ``user_ids``, those WeChat refused a message to because their window had
    closed (what :func:`resend_refused` would find for them)."""
    if not user_ids:
        return set()
    rows = await (await core(session)).execute(
        _REFUSED_AMONG, {"user_ids": sorted(user_ids), "since": now - RESEND_WITHIN}
    )
    return {user_id for user_id in rows.scalars() if user_id is not None}


async def resend_refused(
    session: AsyncSession, *, user_id: str, now: datetime, source_event_id: int
) -> list[OutboxMessage]:
    """Queue again what WeChat refused to send ``user_id`` because their window had closed (an
    officer's answer given two days later), now that they have written; each once."""
    # No autoflush: the rows this event queued are pending, never among the refused, and
    # flushing them here would only move the commit's work ahead of a look-up on every message.
    with session.no_autoflush:
        refused = (
            await session.scalars(_REFUSED, {"user_id": user_id, "since": now - RESEND_WITHIN})
        ).all()
    # A row queued again by an earlier event of the batch is changed in the session and not yet
    # in the table: the query's condition, on what the session holds.
    refused = [r for r in refused if r.status == "failed" and r.last_error in _WINDOW_CLOSED]
    again = []
    for row in refused:
        row.last_error = f"{row.last_error}; sent again when the resident wrote"
        copy = OutboxMessage(
            idempotency_key=f"{row.idempotency_key}-again",
            channel=row.channel,
            group_id=None,
            user_id=row.user_id,
            chat_key=row.chat_key,
            payload_enc=row.payload_enc,
            echo_hash=row.echo_hash,
            priority=row.priority,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            source_event_id=source_event_id,
        )
        session.add(copy)
        again.append(copy)
    return again


def scrub_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload without what was only needed to send it, once it is sent or given up: a
    text message's phone number (``extra.phone``) becomes its masked form, a text that must
    not be kept (an SMS code, a resident's number sent to an officer) is replaced by
    ``extra.kept_text``, an SMS's template values (``extra.sms_values``: the code) go, and the
    ids of residents who cut the link while it waited (``extra.pseudonyms``, id → pseudonym)
    are replaced in its mentions. The same payload back when there is nothing to scrub."""
    extra = payload.get("extra")
    if not isinstance(extra, dict) or not (
        extra.get("phone") or "kept_text" in extra or "sms_values" in extra or "pseudonyms" in extra
    ):
        return payload
    scrubbed = {**payload, "extra": dict(extra)}
    if extra.get("phone"):
        scrubbed["extra"]["phone"] = mask_phone(str(extra["phone"]))
    if "kept_text" in extra:
        scrubbed["text"] = scrubbed["extra"].pop("kept_text")
    scrubbed["extra"].pop("sms_values", None)
    if "pseudonyms" in extra:
        names = scrubbed["extra"].pop("pseudonyms") or {}
        scrubbed["mentions"] = [names.get(m, m) for m in payload.get("mentions") or []]
    return scrubbed


def recipient_after_sending(payload: dict[str, Any], user_id: str | None) -> str | None:
    """The ``user_id`` an outbox row keeps once sent or given up: the pseudonym of a resident
    who cut the link while the message waited (``extra.pseudonyms``), else ``user_id``."""
    extra = payload.get("extra")
    names = extra.get("pseudonyms") if isinstance(extra, dict) else None
    if not isinstance(names, dict) or user_id is None:
        return user_id
    pseudonym = names.get(user_id)
    return pseudonym if isinstance(pseudonym, str) else user_id


@dataclass(frozen=True)
class OnFailure:
    """What a message that finally fails brings about: ``notice`` is sent instead, and the
    ``ticket_id`` it answered is handed to the worker's ``given_up`` (an officer's answer that
    never reached the resident must not pass for delivered)."""

    notice: OutboundMessage | None = None
    ticket_id: int | None = None


def on_failure_extra(on_failure: OnFailure | None) -> dict[str, Any]:
    """The ``extra`` of a message that carries ``on_failure`` (see :class:`OnFailure`)."""
    if on_failure is None or (on_failure.notice is None and on_failure.ticket_id is None):
        return {}
    spec: dict[str, Any] = {"ticket_id": on_failure.ticket_id}
    notice = on_failure.notice
    if notice is not None:
        spec["notice"] = {
            "channel": notice.channel,
            "group_id": notice.group_id,
            "user_id": notice.user_id,
            "text": notice.text,
            "priority": notice.priority,
        }
    return {"on_failure": spec}


def on_failure_of(payload: dict[str, Any]) -> OnFailure | None:
    """The :class:`OnFailure` a message's payload carries (see :func:`on_failure_extra`)."""
    extra = payload.get("extra")
    spec = extra.get("on_failure") if isinstance(extra, dict) else None
    if not isinstance(spec, dict):
        return None
    # Rows queued before the ticket was named hold the notice itself.
    notice = spec.get("notice") if "notice" in spec or "ticket_id" in spec else spec
    ticket_id = spec.get("ticket_id")
    return OnFailure(
        notice=(
            OutboundMessage(
                channel=str(notice["channel"]),
                text=str(notice["text"]),
                group_id=notice.get("group_id"),
                user_id=notice.get("user_id"),
                priority=int(notice.get("priority", 5)),
            )
            if isinstance(notice, dict)
            else None
        ),
        ticket_id=ticket_id if isinstance(ticket_id, int) else None,
    )
