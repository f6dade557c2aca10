"""What an officer or a console account does to a ticket: take it, answer, close, transfer,
reclassify, look up the reporters' contact details — and who may do it.

One implementation for every surface: the chat commands (handlers/officer.py) and the bureau
console (bot/web/console/) call these functions. Each takes the unit of work (:class:`Out`:
session, runtime, time, and where its messages go) first and the rest keyword-only; it writes
the ticket, its timeline and the outbox messages to residents and to other officers, and never
commits. A rule broken raises :class:`Refused` with a reason the caller words for its medium
(the chat's ``officer_<reason>`` texts, the console's ``refused_<reason>``); nothing was
changed then. Confirmations to the actor themselves are the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.services.deadlines import next_check, restart_ladder
from bot.services.dispute_cases import follow_ticket, open_for_ticket, set_aside_for
from bot.services.routing import officers_named, station_subtree
from bot.services.tickets import (
    Out,
    add_event,
    category_text,
    clip,
    holder_of,
    priority_for,
    reachable,
    reporters,
)
from bot.texts import Script, script_of
from broadcasts.outbox import OnFailure
from models.directory import Officer, Station
from models.people import Binding
from models.tickets import Ticket, TicketReporter

CATEGORIES = ("consultation", "suggestion", "report", "help", "dispute", "other")


class Refused(Exception):
    """The action is not allowed or not possible; ``reason`` names the rule, ``values`` fill
    its sentence (``code``, ``officer``, ``officer_id``, ``label``)."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True)
class Scope:
    """Which tickets someone may see and act on: those of ``stations`` (None: every station),
    those assigned to ``officer_id`` wherever they are, and with ``unstationed`` those without
    a station (the county desk's)."""

    stations: frozenset[str] | None
    officer_id: str | None = None
    unstationed: bool = False

    def covers_station(self, station_id: str | None) -> bool:
        """Whether a station (a transfer's target, a picker's entry) lies within the scope."""
        if station_id is None:
            return self.unstationed
        return self.stations is None or station_id in self.stations

    def admits(self, ticket: Ticket) -> bool:
        """Whether ``ticket`` lies within the scope (the same rule as :meth:`clause`)."""
        if self.officer_id is not None and ticket.assigned_officer_id == self.officer_id:
            return True
        return self.covers_station(ticket.station_id)

    def clause(self) -> ColumnElement[bool]:
        """:meth:`admits` as a filter on ``Ticket`` rows."""
        if self.stations is None and self.unstationed:
            return true()
        if self.stations is None:
            stationed: ColumnElement[bool] = Ticket.station_id.is_not(None)
        elif self.stations:
            stationed = Ticket.station_id.in_(sorted(self.stations))
        else:
            stationed = false()
        parts = [stationed]
        if self.unstationed:
            parts.append(Ticket.station_id.is_(None))
        if self.officer_id is not None:
            parts.append(Ticket.assigned_officer_id == self.officer_id)
        return or_(*parts) if len(parts) > 1 else parts[0]


COUNTY = Scope(stations=None, unstationed=True)


async def officer_scope(session: AsyncSession, officer: Officer) -> Scope:
    """An officer's scope: their station and every station below it, plus what is assigned to
    them. The county centre's (a station without a parent) also holds the tickets without a
    station."""
    stations = await station_subtree(session, [officer.station_id])
    parent = await session.scalar(select(Station.parent_id).where(Station.id == officer.station_id))
    return Scope(frozenset(stations), officer.id, unstationed=parent is None)


@dataclass(frozen=True)
class Actor:
    """Who acts: ``key`` goes into the timeline (``officer:off-wang``, ``console:admin``),
    ``name`` is how residents and officers are told who it was, ``officer`` the directory
    officer acting (None for a console admin without one), ``leader`` whether they lead their
    stations (the reporters' numbers are for the holder and leaders), ``script`` the script of
    notices addressed to the actor."""

    key: str
    name: str
    officer: Officer | None
    scope: Scope
    script: Script
    leader: bool = False


async def officer_actor(session: AsyncSession, officer: Officer, *, script: Script) -> Actor:
    """An officer acting from the chat."""
    return Actor(
        key=f"officer:{officer.id}",
        name=officer.name,
        officer=officer,
        scope=await officer_scope(session, officer),
        script=script,
        leader=officer.role == "leader",
    )


def check_scope(actor: Actor, ticket: Ticket) -> None:
    """Raise ``out_of_scope`` unless ``actor`` may act on ``ticket``: holding a ticket opens its
    reporters' names and numbers, so an officer acts only on the matters of their own station
    and the stations below it (the county centre: every station)."""
    if not actor.scope.admits(ticket):
        raise Refused("out_of_scope", code=ticket.code)


def _is_actor(actor: Actor, officer: Officer | None) -> bool:
    return officer is not None and actor.officer is not None and officer.id == actor.officer.id


def _notice_script(ticket: Ticket, *names: str) -> Script:
    """The script of a notice to an officer that names officers: the directory's, as their
    names show it (趙所長), so that the sentence does not switch script around them; the
    ticket's when the names read alike in both (王警官)."""
    return script_of("".join(names)) or ticket.script


def _tell_previous_holder(
    out: Out, actor: Actor, ticket: Ticket, previous: Officer | None, holder: Officer
) -> None:
    """A ticket taken from someone (接單 by another, 轉派): they hear who holds it now (and who
    moved it, when that is someone else), so that nobody goes on working on, or waiting for,
    a matter that is no longer theirs, nor calls the wrong colleague about it."""
    if previous is None or _is_actor(actor, previous) or previous.id == ticket.assigned_officer_id:
        return
    names = (holder.name,) if _is_actor(actor, holder) else (holder.name, actor.name)
    key = "officer_ticket_taken" if len(names) == 1 else "officer_ticket_moved"
    script = _notice_script(ticket, *names)
    out.to_officer(
        previous,
        out.text(key, script, code=ticket.code, holder=holder.name, by=actor.name),
    )


async def _to_reporters(
    out: Out, ticket: Ticket, key: str, *, on_failure: Any = None, **values: object
) -> list[TicketReporter]:
    """Tell every reporter of ``ticket``, in the ticket's script; returns them."""
    people = await reporters(out.session, ticket)
    text = out.text(key, ticket.script, code=ticket.code, **values)
    out.to_reporters(people, text, on_failure=on_failure)
    return people


async def answer(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> list[TicketReporter]:
    """The answer to every reporter where they asked (``#CODE text``); returns the reporters.

    Should it never reach a resident, the actor (or, for an admin, the ticket's holder) hears
    so and can call them."""
    check_scope(actor, ticket)
    if not text.strip():
        raise Refused("empty_answer", code=ticket.code)
    notify = actor.officer
    if notify is None:
        notify = await holder_of(out.session, ticket)
    failed = OnFailure(
        notice=(
            out.notice_to_officer(
                notify, out.text("officer_answer_undelivered", actor.script, code=ticket.code)
            )
            if notify is not None
            else None
        ),
        ticket_id=ticket.id,
    )
    people = await _to_reporters(
        out, ticket, "ticket_answer", on_failure=failed, officer=actor.name, text=text
    )
    if ticket.acknowledged_at is None:
        ticket.acknowledged_at = out.now
    if ticket.status != "closed":
        ticket.status = "answered"
        ticket.answered_at = out.now
    ticket.escalation_level = 0
    ticket.next_check_at = next_check(ticket, out.runtime.settings.deadlines)
    add_event(
        out.session,
        out.runtime,
        ticket,
        "answered",
        now=out.now,
        actor=actor.key,
        # Reporters who cut the link (註銷實名) are on the ticket but receive nothing.
        detail=f"to {len(reachable(people))} reporter(s)",
        note=text,
    )
    return people


async def answer_undelivered(
    runtime: Runtime, session: AsyncSession, ticket_id: int, queued_at: datetime, at: datetime
) -> None:
    """An answer the outbox gave up on (for a day the channel refused or was down): the
    timeline says so, and a ticket that stood answered awaits its answer again, on a fresh
    deadline, so that the ladder chases it up to the leaders if nobody calls the resident and
    answers anew. Its officer is told by the answer's failure notice."""
    # Locked first: a 結案 committed between this read and its write would come back open.
    ticket = await session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None:
        return
    add_event(session, runtime, ticket, "answer_undelivered", now=at)
    if ticket.status != "answered" or (
        ticket.answered_at is not None and ticket.answered_at > queued_at
    ):
        return  # closed meanwhile, or answered anew: that answer has its own fate
    ticket.status = "acknowledged"
    ticket.answered_at = None
    restart_ladder(runtime, ticket, at)


async def acknowledge(out: Out, *, actor: Actor, ticket: Ticket) -> None:
    """接單: the actor's officer takes the ticket; the reporters hear who handles it."""
    check_scope(actor, ticket)
    officer = actor.officer
    if officer is None:
        raise Refused("no_officer", code=ticket.code)
    if ticket.status == "closed":
        raise Refused("already_closed", code=ticket.code)
    if ticket.acknowledged_at is not None and ticket.assigned_officer_id == officer.id:
        # Already theirs: the residents heard so once.
        raise Refused("already_acknowledged", code=ticket.code)
    if ticket.assigned_officer_id != officer.id:
        previous = await holder_of(out.session, ticket)
        ticket.assigned_officer_id, ticket.assigned_by = officer.id, "manual"
        _tell_previous_holder(out, actor, ticket, previous, officer)
    mark_acknowledged(out, actor, ticket)
    await _to_reporters(out, ticket, "ticket_acknowledged_to_resident", officer=officer.name)


def mark_acknowledged(out: Out, actor: Actor, ticket: Ticket, detail: str | None = None) -> None:
    """The ticket is taken up (接單, or its holder's first dispute command): its acknowledge
    ladder stands down and the next phase's deadline, if any, is what the sweep waits for."""
    if ticket.acknowledged_at is None:
        ticket.acknowledged_at = out.now
        ticket.escalation_level = 0
    if ticket.status in ("new", "escalated"):
        ticket.status = "acknowledged"
    ticket.next_check_at = next_check(ticket, out.runtime.settings.deadlines)
    add_event(out.session, out.runtime, ticket, "acknowledged", now=out.now, actor=actor.key,
              detail=detail)  # fmt: skip


async def close(out: Out, *, actor: Actor, ticket: Ticket, note: str) -> None:
    """結案 with a note, which may be left out once the reporters have had an answer; the
    reporters are asked whether they are satisfied."""
    check_scope(actor, ticket)
    note = note.strip()
    if ticket.status == "closed":
        # A note now would reach nobody: the actor hears how to send the residents a word.
        raise Refused("already_closed_note" if note else "already_closed", code=ticket.code)
    if not note and ticket.answered_at is None:
        # Every matter gets an answer: a bare close would leave the residents with none.
        raise Refused("close_needs_note", code=ticket.code)
    ticket.status = "closed"
    ticket.closed_at = out.now
    ticket.acknowledged_at = ticket.acknowledged_at or out.now
    ticket.resolution_enc = out.runtime.cipher.encrypt(note or "-")
    ticket.awaiting_satisfaction = True
    ticket.next_check_at = None
    add_event(out.session, out.runtime, ticket, "closed", now=out.now, actor=actor.key, note=note)
    if note:
        await _to_reporters(out, ticket, "ticket_closed_to_resident", text=note)
    else:
        await _to_reporters(out, ticket, "ticket_closed_to_resident_plain")
    holder = await holder_of(out.session, ticket)
    if holder is not None and not _is_actor(actor, holder):
        # Closed by a colleague or a leader: the holder stops working on it, and knows why.
        out.to_officer(
            holder,
            out.text(
                "officer_ticket_closed_by",
                _notice_script(ticket, actor.name),
                code=ticket.code,
                by=actor.name,
            ),
        )


async def _officer_named(session: AsyncSession, actor: Actor, said: str) -> Officer | None:
    """The officer ``said`` names: their id (off-li), or their name as the directory writes it,
    in either script (陳警官, 陈警官): the one of that name within the actor's stations, else the
    county's (whom :func:`transfer` then refuses as out of scope, saying so, not "no such
    officer")."""
    if not said:
        return None
    by_id = await session.get(Officer, said)
    if by_id is not None:
        return by_id
    named = await officers_named(session, said)
    mine = [o for o in named if actor.scope.covers_station(o.station_id)]
    if len(mine) == 1:
        return mine[0]
    return named[0] if named and not mine else None


async def transfer(out: Out, *, actor: Actor, ticket: Ticket, officer_id: str) -> Officer:
    """轉派 (or, for a ticket nobody holds, assign) to another officer of the actor's stations
    whom the bot can reach; returns them. Escalation follows the new holder's station."""
    check_scope(actor, ticket)
    target = await _officer_named(out.session, actor, officer_id)
    if target is None:
        raise Refused("unknown_officer", code=ticket.code, officer_id=officer_id)
    if target.id == ticket.assigned_officer_id:
        raise Refused("transfer_same", code=ticket.code, officer=target.name)
    if not actor.scope.covers_station(target.station_id):
        raise Refused("transfer_out_of_scope", code=ticket.code, officer=target.name)
    if not target.wechat_id:
        # The bot could never tell them: the ticket would wait in silence for its deadline.
        raise Refused("transfer_unreachable", code=ticket.code, officer=target.name)
    previous = ticket.assigned_officer_id
    ticket.assigned_officer_id, ticket.assigned_by = target.id, "manual"
    ticket.station_id = target.station_id
    if ticket.status != "closed":
        ticket.status = "new" if ticket.acknowledged_at is None else ticket.status
        restart_ladder(out.runtime, ticket, out.now)
    await follow_ticket(out.session, out.runtime, ticket, now=out.now, by=actor.key)
    add_event(
        out.session,
        out.runtime,
        ticket,
        "transferred",
        now=out.now,
        actor=actor.key,
        detail=f"{previous} -> {target.id}",
    )
    _tell_previous_holder(
        out, actor, ticket, await out.session.get(Officer, previous) if previous else None, target
    )
    script = _notice_script(ticket, actor.name)
    out.to_officer(
        target,
        out.text(
            "officer_transferred_to_you",
            script,
            code=ticket.code,
            category=category_text(out.runtime, ticket, script),
            priority=ticket.priority,
            by=actor.name,
            text=clip(out.runtime.cipher.decrypt(ticket.text_enc) or ""),
        ),
    )
    return target


# Categories an emergency may keep when an officer files it anew.
STILL_URGENT = ("report", "help", "dispute")


async def reclassify(out: Out, *, actor: Actor, ticket: Ticket, label: str) -> str:
    """分類: a new category (and with it, unless an emergency, a new priority and deadline;
    an emergency filed as anything but a report, a help request or a dispute stands down);
    returns the previous category."""
    check_scope(actor, ticket)
    if label not in CATEGORIES:
        raise Refused("unknown_label", code=ticket.code, label=label)
    previous = ticket.category
    ticket.category, ticket.unclear = label, False
    # An emergency filed as a question, a proposal or chatter is the officer saying it was
    # none (a false alarm): its P1 ladder, which climbs to the county, stands down. A report,
    # a help request or a dispute (a fight) may still be one.
    stood_down = ticket.emergency and label not in STILL_URGENT
    if stood_down:
        ticket.emergency = False
    if not ticket.emergency and ticket.priority != priority_for(label, False):
        ticket.priority = priority_for(label, False)
        if ticket.status != "closed":
            restart_ladder(out.runtime, ticket, out.now)
    elif ticket.status != "closed":
        # The same priority, maybe another ladder: a dispute taken up has no answer deadline.
        ticket.next_check_at = next_check(ticket, out.runtime.settings.deadlines)
    add_event(
        out.session,
        out.runtime,
        ticket,
        "classified",
        now=out.now,
        actor=actor.key,
        detail=f"{previous} -> {label}" + (" (no emergency)" if stood_down else ""),
    )
    if label == "dispute" and ticket.status != "closed":
        # A dispute gets its case: colour, mediation level and deadline (docs/disputes.md).
        await open_for_ticket(out.session, out.runtime, ticket, now=out.now, by=actor.key)
    elif previous == "dispute" and label != "dispute":
        # No longer a dispute: its case must not climb, notify or count on its own.
        await set_aside_for(out.session, ticket, now=out.now, by=actor.key)
    return previous


def may_read_words(actor: Actor, ticket: Ticket) -> bool:
    """The residents' words — the report, the notes of its timeline, a dispute's records,
    parties and agreement — are for whoever may act on the ticket: nobody answers or mediates
    without reading them. Each showing is audited by the surface that shows them."""
    return actor.scope.admits(ticket)


def may_see_contacts(actor: Actor, ticket: Ticket) -> bool:
    """The reporters' verified names and numbers are for the officer holding the ticket and
    for leaders of its station or one above it — as far as their 指派 and 待辦 reach, no more
    than the work needs (PIPL)."""
    holder = actor.officer is not None and ticket.assigned_officer_id == actor.officer.id
    leader = (
        actor.leader
        and ticket.station_id is not None
        and actor.scope.covers_station(ticket.station_id)
    )
    return holder or leader


@dataclass(frozen=True)
class Contact:
    """A reporter's verified name and number; both None when they never verified."""

    name: str | None
    phone: str | None


async def contacts(out: Out, *, actor: Actor, ticket: Ticket) -> list[Contact]:
    """聯繫: the reporters' verified names and numbers, for the holder or a leader (see
    :func:`may_see_contacts`); every look goes into the ticket's timeline."""
    check_scope(actor, ticket)
    if not may_see_contacts(actor, ticket):
        raise Refused("contact_not_yours", code=ticket.code)
    cipher = out.runtime.cipher
    found: list[Contact] = []
    for reporter in await reporters(out.session, ticket):
        binding = (
            await out.session.scalar(select(Binding).where(Binding.member_id == reporter.member_id))
            if reporter.member_id is not None
            else None
        )
        if binding is None:
            found.append(Contact(None, None))
            continue
        found.append(
            Contact(cipher.decrypt(binding.name_enc) or "", cipher.decrypt(binding.phone_enc) or "")
        )
    add_event(out.session, out.runtime, ticket, "contact_shown", now=out.now, actor=actor.key)
    return found
