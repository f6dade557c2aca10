"""入戶走訪: officers' visits to households, the visit plans of households to keep visiting, a
走訪 waiting for the officer to choose which household they meant, and the audit of who
added, deleted or looked at whose household data.

The service functions are in bot/services/visits.py; these are the tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Visit(Base):
    """One visit: when, by whom, to which household, in which group and station (as they were
    at the time, so a village moved to another station keeps its past), and the officer's note
    (encrypted: it is about a family).

    ``household_id`` is NULL once the household was deleted on request: the visit still counts,
    it no longer says whom it was to, and its note is gone."""

    __tablename__ = "visits"
    # Both hold what the statistics read (a county's year from the index alone).
    __table_args__ = (
        Index("ix_visits_at", "at", "station_id", "household_id"),
        Index("ix_visits_station_at", "station_id", "at", "household_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    officer_id: Mapped[str] = mapped_column(ForeignKey("officers.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(String(128))
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"))
    at: Mapped[datetime]
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(16), default="chat")  # chat | console
    created_at: Mapped[datetime]


class VisitPlan(Base):
    """A household to visit regularly: why (a key of ``visits.plan_reasons``), how often, and
    by whom. ``next_due_at`` is the deadline state the sweep reads; ``reminded`` how far the
    overdue plan has climbed (0 none, 1 the officer told, 2 the station leader told). A visit
    moves ``next_due_at`` on and sets ``reminded`` back to 0. Who is on a plan and why is
    personal data: see bot/services/visits.py for who may see it."""

    __tablename__ = "visit_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    every_days: Mapped[int]
    officer_id: Mapped[str | None] = mapped_column(ForeignKey("officers.id"), index=True)
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    reminded: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class VisitChoice(Base):
    """A 走訪 (or 入冊, 出冊) that matched several households, or none: the options offered,
    waiting for the officer's ``走訪 N`` until ``expires_at``. One per officer; a new one
    replaces it. ``options`` hold only ids (``{"household": 12}`` or ``{"group": "grp-…"}``
    for a new household); what the officer wrote is in ``payload_enc``."""

    __tablename__ = "visit_choices"

    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[str] = mapped_column(ForeignKey("officers.id"), unique=True)
    action: Mapped[str] = mapped_column(String(16))  # visit | plan | unplan
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class HouseholdEvent(Base):
    """The audit of household data: added, deleted on request, put on or taken off a plan, and
    every showing of who is on a plan and why (``plan_shown``). ``household_id`` is a plain
    number, kept after the household is deleted; ``detail`` never holds personal data."""

    __tablename__ = "household_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(index=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(String(300))
