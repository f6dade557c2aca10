"""The inbound journal: every accepted event, committed before the HTTP answer.

An event is accepted (journaled, ``processed_at`` NULL) by the webhook and handled afterwards by
the processor (``bot/pipeline.py``), which sets ``processed_at`` and the final ``status`` in the
handlers' transaction. The rows still to process are the queue; emergencies go first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# The width of ``dedup_key``; `lianxin forget` keeps rewritten keys within it.
DEDUP_KEY_LENGTH = 200


class InboundEvent(Base):
    """One event from a channel. ``(channel, dedup_key)`` is unique: a retry changes nothing."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("channel", "dedup_key"),
        # The processor's queue: only unprocessed rows are in it, emergencies first. In the
        # claim's order (emergency DESC, id): read in index order, a claim stops at its first
        # rows instead of sorting the whole backlog (migration 0010).
        Index(
            "ix_inbound_events_queue",
            text("emergency DESC"),
            "id",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(DEDUP_KEY_LENGTH))
    kind: Mapped[str] = mapped_column(String(32))  # message | member_joined | member_left | event
    group_id: Mapped[str | None] = mapped_column(String(128), index=True)
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    # Text, nickname, mentions, media: personal data, AES-GCM encrypted.
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]
    # accepted (waiting for the processor), then handled | unknown_group | own_message |
    # rate_limited | failed.
    status: Mapped[str] = mapped_column(String(32), default="handled")
    # The emergency check's verdict at acceptance: such events are processed before all others.
    emergency: Mapped[bool] = mapped_column(default=False, server_default=false())
    processed_at: Mapped[datetime | None]
