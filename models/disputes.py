"""Disputes the county's way: red/yellow/blue risk control (三色管控) and three levels of mediation
(三級調解: village → station → county mediation centre), each with a deadline.

A case belongs to a ticket whose category is ``dispute``. The functions here change a case and
write its history; they never message anyone (handlers/disputes.py and bot/dispute_deadlines.py
do, from what these return) and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, ForeignKey, Index, LargeBinary, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

LEVELS = ("village", "station", "county")
COLOURS = ("red", "yellow", "blue")
# Open cases climb and are checked; the others wait only for their follow-up visits.
STATUSES = ("open", "resolved", "referred", "withdrawn")
# A case whose ticket an officer filed as something else (分類): no longer a dispute, it is
# kept with its history (filed back as a dispute, it resumes) but counted and listed nowhere.
SET_ASIDE = "set_aside"


class DisputeCase(Base):
    """One dispute: its colour, the level mediating it, that level's deadline, its outcome.

    ``level_deadline`` is the deadline state the sweep reads (a restart loses nothing);
    ``check_at`` is the next weekly look at a yellow case; ``follow_up_at`` the next 回訪 due
    after an agreement.
    """

    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_level_deadline", "level_deadline"),
        Index("ix_disputes_check_at", "check_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    station_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    colour: Mapped[str] = mapped_column(String(8), default="blue")
    suggested_colour: Mapped[str] = mapped_column(String(8), default="blue")
    colour_set_by_officer: Mapped[bool] = mapped_column(default=False)
    level: Mapped[str] = mapped_column(String(8), default="village")
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    opened_at: Mapped[datetime]
    level_started_at: Mapped[datetime]
    level_deadline: Mapped[datetime | None]
    check_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_level: Mapped[str | None] = mapped_column(String(8))
    follow_up_at: Mapped[datetime | None] = mapped_column(index=True)
    follow_ups_done: Mapped[int] = mapped_column(default=0)
    # Personal data: who is in conflict, where, what about, what they agreed (encrypted).
    parties_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    place_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    summary_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    agreement_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class DisputeEvent(Base):
    """A case's history: opened, graded, mediated, agreed, escalated (by hand or deadline),
    referred, followed up, reopened, an agreement's photo."""

    __tablename__ = "dispute_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(ForeignKey("disputes.id"), index=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(8))
    colour: Mapped[str] = mapped_column(String(8))
    by: Mapped[str] = mapped_column(String(128), default="system")
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)  # records, reasons, agreements


@dataclass(frozen=True)
class Deadlines:
    """Time allowed at each level (``disputes.deadlines``) and the follow-up visits after an
    agreement (``disputes.follow_up_days``)."""

    village: timedelta
    station: timedelta
    county: timedelta
    follow_ups: tuple[timedelta, ...]

    def at(self, level: str) -> timedelta:
        return {"village": self.village, "station": self.station}.get(level, self.county)


def next_level(level: str) -> str | None:
    """The level above ``level``; None above the county."""
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def record(
    session: AsyncSession,
    case: DisputeCase,
    action: str,
    *,
    now: datetime,
    by: str = "system",
    note_enc: bytes | None = None,
) -> None:
    """Append to the case's history, with the level and colour after the change."""
    session.add(
        DisputeEvent(
            dispute_id=case.id,
            at=now,
            action=action,
            level=case.level,
            colour=case.colour,
            by=by,
            note_enc=note_enc,
        )
    )
    case.updated_at = now


def is_dispute() -> ColumnElement[bool]:
    """Cases that count as disputes: every one but those set aside (see :data:`SET_ASIDE`)."""
    return DisputeCase.status != SET_ASIDE


async def case_of(
    session: AsyncSession, ticket_id: int, *, set_aside_too: bool = False
) -> DisputeCase | None:
    """The dispute case of a ticket, if it has one (one set aside only with ``set_aside_too``)."""
    query = select(DisputeCase).where(DisputeCase.ticket_id == ticket_id)
    if not set_aside_too:
        query = query.where(is_dispute())
    return await session.scalar(query)


async def open_case(
    session: AsyncSession,
    *,
    ticket_id: int,
    station_id: str | None,
    suggested: str,
    deadlines: Deadlines,
    now: datetime,
    parties_enc: bytes | None,
    place_enc: bytes | None,
    summary_enc: bytes | None,
    by: str = "system",
    raised_at: datetime | None = None,
) -> DisputeCase:
    """A new case at the village level, coloured as suggested until an officer grades it; the
    ticket's existing case when it has one. ``opened_at`` is when the resident raised the
    matter (``raised_at``, for a ticket filed as a dispute later), so the month that counts
    the ticket counts its case; the village level's time runs from ``now``."""
    existing = await case_of(session, ticket_id)
    if existing is not None:
        return existing
    case = DisputeCase(
        ticket_id=ticket_id,
        station_id=station_id,
        colour=suggested,
        suggested_colour=suggested,
        level="village",
        status="open",
        opened_at=raised_at or now,
        level_started_at=now,
        level_deadline=now + deadlines.village,
        check_at=now + timedelta(days=7) if suggested == "yellow" else None,
        parties_enc=parties_enc,
        place_enc=place_enc,
        summary_enc=summary_enc,
        updated_at=now,
        follow_ups_done=0,
    )
    session.add(case)
    await session.flush()
    record(session, case, "opened", now=now, by=by)
    return case


def grade(
    session: AsyncSession,
    case: DisputeCase,
    colour: str,
    *,
    now: datetime,
    by: str,
    reason_enc: bytes | None,
) -> str:
    """Set the colour (定級); returns the colour before. Yellow cases are looked at weekly."""
    before = case.colour
    case.colour, case.colour_set_by_officer = colour, True
    case.check_at = (
        now + timedelta(days=7) if colour == "yellow" and case.status == "open" else None
    )
    record(session, case, "graded", now=now, by=by, note_enc=reason_enc)
    return before


def move_up(
    session: AsyncSession,
    case: DisputeCase,
    *,
    deadlines: Deadlines,
    now: datetime,
    by: str,
    reason_enc: bytes | None = None,
    automatic: bool = False,
) -> str:
    """The case to the next level with that level's deadline (升級, or its deadline passed);
    returns the level it left. The caller checks there is a next level."""
    before = case.level
    above = next_level(before)
    assert above is not None
    case.level, case.level_started_at = above, now
    case.level_deadline = now + deadlines.at(above)
    record(
        session,
        case,
        "auto_escalated" if automatic else "escalated",
        now=now,
        by=by,
        note_enc=reason_enc,
    )
    return before


def resolve(
    session: AsyncSession,
    case: DisputeCase,
    *,
    deadlines: Deadlines,
    now: datetime,
    by: str,
    agreement_enc: bytes | None,
) -> None:
    """An agreement (協議) resolves the case at its level; follow-up visits fall due."""
    case.status, case.resolved_at, case.resolved_level = "resolved", now, case.level
    case.level_deadline, case.check_at = None, None
    case.agreement_enc = agreement_enc
    case.follow_ups_done = 0
    case.follow_up_at = now + deadlines.follow_ups[0] if deadlines.follow_ups else None
    record(session, case, "agreement", now=now, by=by, note_enc=agreement_enc)


def refer(
    session: AsyncSession, case: DisputeCase, *, now: datetime, by: str, note_enc: bytes | None
) -> None:
    """Referred to a court or another body (轉介): mediation ends here."""
    case.status, case.resolved_at, case.resolved_level = "referred", now, case.level
    case.level_deadline, case.check_at, case.follow_up_at = None, None, None
    record(session, case, "referred", now=now, by=by, note_enc=note_enc)


def withdraw(
    session: AsyncSession, case: DisputeCase, *, now: datetime, by: str, note_enc: bytes | None
) -> None:
    """Withdrawn (撤回調解): the parties no longer ask for mediation; nothing is left to climb.
    Nothing was resolved either: ``resolved_at`` stays empty (the history has the time), or
    the API, the report and the console told it as settled (:func:`ended_at`)."""
    case.status = "withdrawn"
    case.level_deadline, case.check_at, case.follow_up_at = None, None, None
    record(session, case, "withdrawn", now=now, by=by, note_enc=note_enc)


def ended_at(case: DisputeCase) -> datetime | None:
    """When an agreement or a referral ended the case; None for any other (a withdrawn case of
    an older version still carries the withdrawal's time in ``resolved_at``)."""
    return case.resolved_at if case.status in ("resolved", "referred") else None


def set_aside(session: AsyncSession, case: DisputeCase, *, now: datetime, by: str) -> None:
    """The ticket is filed as something else: the case stops climbing and being checked."""
    case.status = SET_ASIDE
    case.level_deadline, case.check_at, case.follow_up_at = None, None, None
    record(session, case, "set_aside", now=now, by=by)


def reopen(
    session: AsyncSession,
    case: DisputeCase,
    *,
    deadlines: Deadlines,
    now: datetime,
    by: str,
    action: str = "reopened",
) -> None:
    """Open again — the conflict came back after an agreement, a resident rejected the
    agreement, or the ticket is filed as a dispute again — at the level that reached the
    agreement (else where it was), with that level's full time again."""
    case.status = "open"
    case.level = case.resolved_level or case.level
    case.level_started_at, case.level_deadline = now, now + deadlines.at(case.level)
    case.resolved_at = case.resolved_level = None
    case.follow_up_at = None
    case.check_at = now + timedelta(days=7) if case.colour == "yellow" else None
    record(session, case, action, now=now, by=by)


def move_to_station(
    session: AsyncSession, case: DisputeCase, station_id: str | None, *, now: datetime, by: str
) -> None:
    """The ticket went to an officer of another station (轉派): the case, its level's people
    and its figures follow it; the level and its deadline stay."""
    case.station_id = station_id
    record(session, case, "transferred", now=now, by=by)


def follow_up(
    session: AsyncSession,
    case: DisputeCase,
    *,
    returned: bool,
    deadlines: Deadlines,
    now: datetime,
    by: str,
    note_enc: bytes | None,
) -> None:
    """A follow-up visit (回訪). If the conflict has returned, the case reopens at the level
    that reached the agreement, with that level's full deadline again."""
    record(session, case, "follow_up", now=now, by=by, note_enc=note_enc)
    if returned:
        reopen(session, case, deadlines=deadlines, now=now, by=by)
        return
    case.follow_ups_done += 1
    remaining = deadlines.follow_ups[case.follow_ups_done :]
    case.follow_up_at = case.resolved_at + remaining[0] if remaining and case.resolved_at else None
