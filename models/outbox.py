"""The outbox: everything the bot says, written in the same transaction as its cause."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class OutboxMessage(Base):
    """A message waiting to be sent, being sent, sent, or failed for good.

    ``status``: ``pending`` → ``sending`` (leased to a worker until ``lease_until``) → ``sent`` or
    ``failed``. A ``sending`` row whose lease ran out (the worker died) is pending again.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    # Keyed hash of the text as a chat would show it, to recognise the bridge echoing our own
    # messages back as events (bots that answer themselves loop forever).
    echo_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # bridge | wechat | wecom_robot
    group_id: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(128))
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
