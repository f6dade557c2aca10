"""Tickets: every actionable matter, its reporters, and a timeline of everything that happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Script

OPEN_STATUSES = ("new", "acknowledged", "answered", "escalated")


class Ticket(Base):
    """One matter. ``status``: new → acknowledged → answered → closed, or escalated.

    ``next_check_at`` is the deadline state: when the sweep must look at the ticket next
    (reminder, escalation, hand-over). APScheduler only runs the sweep; this column is the truth.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_next_check", "next_check_at"),
        # The statistics read tickets by arrival; this index holds every column they use, so a
        # year is read from the index alone (SQLite otherwise looks up each row in the table).
        Index(
            "ix_tickets_stats",
            "created_at",
            "station_id",
            "category",
            "emergency",
            "satisfaction",
            "acknowledged_at",
            "answered_at",
            "closed_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    category: Mapped[str] = mapped_column(String(16))
    unclear: Mapped[bool] = mapped_column(default=False)
    emergency: Mapped[bool] = mapped_column(default=False)
    priority: Mapped[int]  # 1 emergency, 2 report/help, 3 consultation/suggestion/dispute
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    channel: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[str | None] = mapped_column(String(128), index=True)
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"))
    reporter_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    assigned_officer_id: Mapped[str | None] = mapped_column(ForeignKey("officers.id"), index=True)
    assigned_by: Mapped[str] = mapped_column(
        String(16), default="roster"
    )  # roster | fallback | manual
    text_enc: Mapped[bytes] = mapped_column(LargeBinary)
    resolution_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    ack_due_at: Mapped[datetime]
    answer_due_at: Mapped[datetime]
    escalation_level: Mapped[int] = mapped_column(default=0)  # 0, 1 reminded, 2 leader, 3 parent
    next_check_at: Mapped[datetime | None]
    satisfaction: Mapped[str | None] = mapped_column(String(16))  # satisfied | unsatisfied
    awaiting_satisfaction: Mapped[bool] = mapped_column(default=False)
    alert_id: Mapped[int | None]
    script: Mapped[Script] = mapped_column(String(4), default="hans")  # the resident's: hant | hans
    # A resident's 不滿意 reopens the ticket and clears the three times above, so that its
    # deadlines run again; the first handling's times are kept here for the figures.
    first_acknowledged_at: Mapped[datetime | None]
    first_answered_at: Mapped[datetime | None]  # the first answer, or close without one

    @hybrid_property
    def ack_time(self) -> datetime | None:
        """When the ticket was first acknowledged (statistics, the monthly report)."""
        return self.first_acknowledged_at or self.acknowledged_at

    @ack_time.inplace.expression
    @classmethod
    def _ack_time(cls) -> Any:
        return func.coalesce(cls.first_acknowledged_at, cls.acknowledged_at)

    @hybrid_property
    def answer_time(self) -> datetime | None:
        """When the ticket was first answered, or closed when it was closed without an answer."""
        return self.first_answered_at or self.answered_at or self.closed_at

    @answer_time.inplace.expression
    @classmethod
    def _answer_time(cls) -> Any:
        return func.coalesce(cls.first_answered_at, cls.answered_at, cls.closed_at)


class TicketReporter(Base):
    """A resident attached to a ticket, and where to answer them."""

    __tablename__ = "ticket_reporters"
    __table_args__ = (UniqueConstraint("ticket_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str | None] = mapped_column(String(128))
    group_id: Mapped[str | None] = mapped_column(String(128))
    added_at: Mapped[datetime]


class TicketEvent(Base):
    """The timeline: every state change, page, reminder, answer and merge."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128), default="system")
    detail: Mapped[str | None] = mapped_column(String(500))  # never personal data
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # texts (answers, merged messages)


class JobRun(Base):
    """Once-only marker for periodic work (the 08:00 digest of a given day)."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "run_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    run_key: Mapped[str] = mapped_column(String(64))
    ran_at: Mapped[datetime]
