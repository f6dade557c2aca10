"""Bulletins (scheduled safety content) and urgent notices (alerts), with their runs and deliveries.

The database is the truth of every schedule: ``Bulletin.next_run_at`` says when the next run is
due, a ``BulletinRun`` row exists once per (bulletin, due time) and a ``BulletinDelivery`` once per
(run, group). APScheduler only wakes the tick that reads these rows, so a restart neither loses a
run nor repeats one. Delivery state itself (attempts, sent, failed) lives on the outbox row that
shares the delivery's ``idempotency_key``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, Date, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

BulletinCategory = Literal[
    "anti-fraud",
    "anti-theft",
    "fire",
    "staged-accident",
    "drugs",
    "organised-crime",
    "missing-person",
    "traffic",
    "other",
]
BULLETIN_CATEGORIES: tuple[BulletinCategory, ...] = get_args(BulletinCategory)


class Bulletin(Base):
    """A piece of safety content and its schedule (one-off ``at`` or recurring ``cron``).

    ``status``: ``active`` → ``finished`` (a one-off after its run, a cron past its end), or
    ``paused`` ↔ ``active``, or ``cancelled`` for good. Title and text are the admin's, public
    content, stored as written and never rewritten.
    """

    __tablename__ = "bulletins"
    __table_args__ = (Index("ix_bulletins_due", "status", "next_run_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    # {"type": "video"|"image"|"file"|"link", "url", "title"}
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cover: Mapped[str | None] = mapped_column(String(1000))
    # {"groups": [...]} | {"tags": [...]} | {"stations": [...]} | {"all": true}
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    schedule_kind: Mapped[str] = mapped_column(String(8))  # at | cron
    run_at: Mapped[datetime | None]
    cron: Mapped[str | None] = mapped_column(String(100))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active")
    next_run_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BulletinRun(Base):
    """One due time of a bulletin. ``(bulletin_id, due_at)`` is unique: a run happens once.

    ``status``: ``pending`` (due, not fanned out yet) → ``sent`` (a delivery row and an outbox row
    per target group were written), or ``missed`` (found too late: older than the grace period),
    or ``cancelled`` (the bulletin was cancelled first).
    """

    __tablename__ = "bulletin_runs"
    __table_args__ = (UniqueConstraint("bulletin_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"), index=True)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(String(200))
    groups: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    fanned_out_at: Mapped[datetime | None]
    # What this run sent (title, category, text, media, cover, targets), written when its
    # fan-out starts: a later edit of the bulletin changes later runs, not this record. None
    # until then, and for runs fanned out before the column existed.
    sent: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class BulletinDelivery(Base):
    """A run's message to one group. ``(run_id, group_id)`` is unique.

    ``slot_date`` is the group's local day the message counts against the daily cap; ``not_before``
    is when it may go out (later than the run when quiet hours or the cap held it, ``reason``
    says which). ``status`` is ours (``queued``, ``held`` while paused, ``cancelled``); whether it
    was sent comes from the outbox row with the same ``idempotency_key``.
    """

    __tablename__ = "bulletin_deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "group_id"),
        Index("ix_bulletin_deliveries_cap", "group_id", "slot_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("bulletin_runs.id"), index=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id"), index=True)
    group_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    slot_date: Mapped[date] = mapped_column(Date)
    not_before: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime]


class Alert(Base):
    """An urgent notice, or a correction or recall of one (``kind``, ``parent_id``).

    The text may name people (a missing child, a suspect), so it is encrypted like the journal.
    ``created_by`` is ``admin:<token name>`` or ``officer:<id>``.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="alert")  # alert | correction | recall
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)
    text_enc: Mapped[bytes] = mapped_column(LargeBinary)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="sent")  # sent | recalled
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    recalled_at: Mapped[datetime | None]


class AlertDelivery(Base):
    """An alert's message to one group; ``(alert_id, group_id)`` is unique."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    group_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | cancelled
    created_at: Mapped[datetime]


class AlertAck(Base):
    """A resident's ``收到`` to an alert in a group; once per (alert, member)."""

    __tablename__ = "alert_acks"
    __table_args__ = (UniqueConstraint("alert_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    group_id: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    at: Mapped[datetime]


__all__ = [
    "BULLETIN_CATEGORIES",
    "Alert",
    "AlertAck",
    "AlertDelivery",
    "Bulletin",
    "BulletinCategory",
    "BulletinDelivery",
    "BulletinRun",
]
