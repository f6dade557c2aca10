"""The outbox: everything the bot says, written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# Statuses the worker never claims: a paused bulletin's rows wait as ``held``, a cancelled
# bulletin's or recalled alert's unsent rows end as ``cancelled``.
HELD, CANCELLED = "held", "cancelled"


class OutboxMessage(Base):
    """A message waiting to be sent, being sent, sent, or failed for good.

    ``status``: ``pending`` → ``sending`` (leased to a worker until ``lease_until``) → ``sent`` or
    ``failed``. A ``sending`` row whose lease ran out (the worker died) is pending again.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "chat_key", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    # Keyed hash of the text as a chat would show it, to recognise the bridge echoing our own
    # messages back as events (bots that answer themselves loop forever).
    echo_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # bridge | wechat | wecom_robot
    group_id: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(128))
    # One conversation (``channel:g:group`` or ``channel:u:user``): the unit of pacing and of
    # order. Rows of one chat go one at a time; different chats go side by side.
    chat_key: Mapped[str | None] = mapped_column(String(300))
    # {"text", "mentions", "media"}: may quote residents, so encrypted like the journal.
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # Lower sends first: 0 urgent notices and emergency replies, 5 replies, 9 bulletins.
    priority: Mapped[int] = mapped_column(default=5)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    sent_via: Mapped[str | None] = mapped_column(String(16))  # api | passive
    last_error: Mapped[str | None] = mapped_column(Text)
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_events.id"), index=True)
    # Urgent messages about a ticket (P1 pages, safety replies): if still unsent at
    # ``fallback_at``, the ticket's officers are paged by SMS (bot/services/sms_fallback.py).
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    fallback_at: Mapped[datetime | None] = mapped_column(index=True)


def chat_key(channel: str, group_id: str | None, user_id: str | None) -> str:
    """The conversation a message goes to: a group, else one person, on one channel."""
    return f"{channel}:g:{group_id}" if group_id else f"{channel}:u:{user_id or ''}"


class SendPace(Base):
    """When a chat may next be sent to, shared by every worker of every instance.

    ``tat`` is the generic cell-rate algorithm's theoretical arrival time in Unix seconds: a
    send is admitted when ``tat - (burst - 1) × interval <= now`` and moves ``tat`` on by one
    interval. Bridged accounts get one message per ``bridge.send_interval_s`` per chat; a WeCom
    group robot 20 a minute.
    """

    __tablename__ = "send_pace"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tat: Mapped[float]


class RateCounter(Base):
    """Inbound events counted per sender and per group in fixed windows (abuse limits), shared
    by every instance. ``key`` names the scope, a keyed hash of the id and the window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(index=True)
