"""The inbound journal: every accepted event, committed before the HTTP answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# The width of ``dedup_key``; `lianxin forget` keeps rewritten keys within it.
DEDUP_KEY_LENGTH = 200


class InboundEvent(Base):
    """One event from a channel. ``(channel, dedup_key)`` is unique: a retry changes nothing."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel", "dedup_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(DEDUP_KEY_LENGTH))
    kind: Mapped[str] = mapped_column(String(32))  # message | member_joined | member_left | event
    group_id: Mapped[str | None] = mapped_column(String(128), index=True)
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    # Text, nickname, mentions, media: personal data, AES-GCM encrypted.
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(32), default="handled")
