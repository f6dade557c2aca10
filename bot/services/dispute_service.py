"""What an officer or a console account does to a dispute case (三色管控, 三級調解): grade it,
record a mediation or the agreement, move it up, refer it, record a follow-up visit.

One implementation for every surface, like bot/services/ticket_service.py: the chat's commands
(handlers/disputes.py: 定級 / 調解 / 協議 / 升級 / 轉介 / 回訪) and the console's 糾紛台賬 page
(bot/web/console/disputes.py) call these functions. Each takes the unit of work (:class:`Out`)
first and the rest keyword-only; it changes the case, its history and the ticket, queues what
the residents, the leader and the next level's people are told, and never commits. A rule
broken raises the ticket service's :class:`Refused` (nothing changed then) with one of
:data:`REASONS`; the caller words it for its medium. Confirmations to the actor themselves are
the caller's, from the :class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.services.dispute_cases import (
    conflict_returned,
    level_deadlines,
    open_for_ticket,
    page_red,
    tell_level_change,
    word,
)
from bot.services.ticket_service import Actor, Refused, check_scope, mark_acknowledged
from bot.services.tickets import Out, add_event, reporters
from models import disputes as cases
from models.disputes import COLOURS, DisputeCase, next_level
from models.tickets import Ticket

# Why an action is refused (besides the ticket service's ``out_of_scope``), and the values
# that come with it: ``code`` always; ``status`` and ``action`` (not_open: agreed, a follow-up
# may reopen it; mediation_ended: referred or withdrawn, nothing reopens it), ``colour``
# (bad_colour), ``action`` (empty_text).
REASONS = (
    "not_a_dispute",
    "not_open",
    "mediation_ended",
    "empty_text",
    "bad_colour",
    "at_county",
    "follow_up_not_due",
)


@dataclass(frozen=True)
class Outcome:
    """What an action did: the case after it; ``before`` the colour (grade) or level
    (escalate) it had; ``follow_ups`` when visits fall due (agreement); ``returned`` whether a
    follow-up found the conflict back (the case reopened)."""

    case: DisputeCase
    before: str | None = None
    follow_ups: tuple[datetime, ...] = ()
    returned: bool = False


async def case_for(out: Out, *, actor: Actor, ticket: Ticket) -> DisputeCase:
    """The case of a dispute ticket the actor may act on (opened now if it has none yet):
    ``out_of_scope`` for another station's ticket, ``not_a_dispute`` for another category."""
    check_scope(actor, ticket)
    if ticket.category != "dispute":
        raise Refused("not_a_dispute", code=ticket.code)
    return await open_for_ticket(out.session, out.runtime, ticket, now=out.now)


def _taken_up(out: Out, actor: Actor, ticket: Ticket) -> None:
    """The holder grading, mediating or moving up a case they never 接單'd has taken it up:
    the ticket's acknowledge ladder stands down (mediation runs on the case's deadlines)."""
    officer = actor.officer
    if ticket.acknowledged_at is not None or officer is None:
        return
    if ticket.assigned_officer_id != officer.id or ticket.status == "closed":
        return
    mark_acknowledged(out, actor, ticket, detail="by a dispute command")


def _still_open(ticket: Ticket, case: DisputeCase, action: str) -> None:
    if case.status in ("referred", "withdrawn"):
        raise Refused("mediation_ended", code=ticket.code, status=case.status, action=action)
    if case.status != "open":
        raise Refused("not_open", code=ticket.code, status=case.status, action=action)


def _needs_text(ticket: Ticket, action: str, text: str) -> str:
    text = text.strip()
    if not text:
        raise Refused("empty_text", code=ticket.code, action=action)
    return text


def _enc(out: Out, text: str) -> bytes | None:
    return out.runtime.cipher.encrypt(text) if text else None


async def grade(
    out: Out, *, actor: Actor, ticket: Ticket, colour: str, reason: str = ""
) -> Outcome:
    """定級: the risk colour (``red``, ``yellow``, ``blue``) with an optional reason. A turn to
    red pages the station's leader at once."""
    case = await case_for(out, actor=actor, ticket=ticket)
    if colour not in COLOURS:
        raise Refused("bad_colour", code=ticket.code, colour=colour or "-")
    reason = reason.strip()
    before = cases.grade(
        out.session, case, colour, now=out.now, by=actor.key, reason_enc=_enc(out, reason)
    )
    add_event(
        out.session,
        out.runtime,
        ticket,
        "graded",
        now=out.now,
        actor=actor.key,
        detail=f"{before} -> {colour}",
    )
    if colour == "red" and before != "red" and case.status == "open":
        await page_red(out.session, out.runtime, case, ticket, now=out.now, by=actor.key)
    _taken_up(out, actor, ticket)
    return Outcome(case, before=before)


async def mediate(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> Outcome:
    """調解: a mediation session's record, kept encrypted in the history."""
    case = await case_for(out, actor=actor, ticket=ticket)
    _still_open(ticket, case, "mediate")
    text = _needs_text(ticket, "mediate", text)
    cases.record(out.session, case, "mediated", now=out.now, by=actor.key, note_enc=_enc(out, text))
    _taken_up(out, actor, ticket)
    return Outcome(case)


async def agreement(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> Outcome:
    """協議: the agreement resolves the case at its level and closes the ticket; the residents
    hear the terms (and are asked to rate), follow-up visits fall due."""
    case = await case_for(out, actor=actor, ticket=ticket)
    _still_open(ticket, case, "agreement")
    text = _needs_text(ticket, "agreement", text)
    deadlines = level_deadlines(out.runtime)
    cases.resolve(
        out.session,
        case,
        deadlines=deadlines,
        now=out.now,
        by=actor.key,
        agreement_enc=_enc(out, text),
    )
    # The matter is settled: the ticket closes as 結案 would, and the residents hear the terms.
    ticket.status, ticket.closed_at = "closed", out.now
    ticket.acknowledged_at = ticket.acknowledged_at or out.now
    ticket.answered_at = ticket.answered_at or out.now
    ticket.resolution_enc, ticket.next_check_at = out.runtime.cipher.encrypt(text), None
    ticket.awaiting_satisfaction = True
    add_event(
        out.session,
        out.runtime,
        ticket,
        "closed",
        now=out.now,
        actor=actor.key,
        detail=f"agreement at {case.level}",
        note=text,
    )
    script = ticket.script
    out.to_reporters(
        await reporters(out.session, ticket),
        out.text(
            "dispute_resolved_to_resident",
            script,
            code=ticket.code,
            level=word(out.runtime, "level", case.level, script),
            text=text,
        ),
    )
    return Outcome(case, follow_ups=tuple(out.now + d for d in deadlines.follow_ups))


async def escalate(out: Out, *, actor: Actor, ticket: Ticket, reason: str = "") -> Outcome:
    """升級: to the next level with its deadline; its people, the officer who had it and the
    residents hear who handles it now. At the county level: ``at_county`` (refer it)."""
    case = await case_for(out, actor=actor, ticket=ticket)
    _still_open(ticket, case, "escalate")
    if next_level(case.level) is None:
        raise Refused("at_county", code=ticket.code)
    before = cases.move_up(
        out.session,
        case,
        deadlines=level_deadlines(out.runtime),
        now=out.now,
        by=actor.key,
        reason_enc=_enc(out, reason.strip()),
    )
    add_event(
        out.session,
        out.runtime,
        ticket,
        "dispute_escalated",
        now=out.now,
        actor=actor.key,
        detail=f"{before} -> {case.level}",
    )
    await tell_level_change(
        out.session,
        out.runtime,
        case,
        ticket,
        before=before,
        now=out.now,
        by_name=actor.name,
        by_officer_id=actor.officer.id if actor.officer else None,
    )
    _taken_up(out, actor, ticket)
    return Outcome(case, before=before)


async def refer(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> Outcome:
    """轉介: referred to a court or another body (where, in ``text``); mediation ends."""
    case = await case_for(out, actor=actor, ticket=ticket)
    _still_open(ticket, case, "refer")
    text = _needs_text(ticket, "refer", text)
    cases.refer(out.session, case, now=out.now, by=actor.key, note_enc=_enc(out, text))
    add_event(out.session, out.runtime, ticket, "referred", now=out.now, actor=actor.key, note=text)
    await _mediation_over(out, actor, ticket, text, "referred")
    return Outcome(case)


async def withdraw(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> Outcome:
    """撤回調解: the parties withdraw the request (why, in ``text``); mediation ends without an
    agreement and the case leaves every deadline."""
    case = await case_for(out, actor=actor, ticket=ticket)
    _still_open(ticket, case, "withdraw")
    text = _needs_text(ticket, "withdraw", text)
    cases.withdraw(out.session, case, now=out.now, by=actor.key, note_enc=_enc(out, text))
    add_event(
        out.session, out.runtime, ticket, "dispute_withdrawn", now=out.now, actor=actor.key,
        note=text,
    )  # fmt: skip
    await _mediation_over(out, actor, ticket, text, "withdrawn")
    return Outcome(case)


async def _mediation_over(
    out: Out, actor: Actor, ticket: Ticket, text: str, how: Literal["referred", "withdrawn"]
) -> None:
    """Mediation ended without an agreement: the ticket closes (no deadline left to run, out
    of every 待辦) and its residents hear how it ended, in their script. Before, it stayed
    open with its acknowledge deadline, and nobody told them."""
    ticket.status, ticket.closed_at, ticket.next_check_at = "closed", out.now, None
    ticket.acknowledged_at = ticket.acknowledged_at or out.now
    ticket.resolution_enc = out.runtime.cipher.encrypt(text)
    add_event(
        out.session, out.runtime, ticket, "closed", now=out.now, actor=actor.key,
        detail=f"dispute {how}", note=text,
    )  # fmt: skip
    out.to_reporters(
        await reporters(out.session, ticket),
        out.text(f"dispute_{how}_to_resident", ticket.script, code=ticket.code, text=text),
    )


async def follow_up(out: Out, *, actor: Actor, ticket: Ticket, text: str) -> Outcome:
    """回訪: a visit after the agreement. A report that the conflict is back reopens the case
    at the level that reached the agreement (and the ticket); a red one pages the leader
    again."""
    case = await case_for(out, actor=actor, ticket=ticket)
    if case.status in ("referred", "withdrawn"):
        # Mediation ended elsewhere: no follow-up of ours is due, and none reopens it.
        raise Refused("mediation_ended", code=ticket.code, status=case.status, action="follow_up")
    if case.status != "resolved":
        raise Refused("follow_up_not_due", code=ticket.code)
    text = _needs_text(ticket, "follow_up", text)
    returned = conflict_returned(text)
    cases.follow_up(
        out.session,
        case,
        returned=returned,
        deadlines=level_deadlines(out.runtime),
        now=out.now,
        by=actor.key,
        note_enc=_enc(out, text),
    )
    if returned:
        # Back to work: the ticket is open again, with the officer who held it.
        ticket.status, ticket.closed_at, ticket.awaiting_satisfaction = "acknowledged", None, False
        add_event(
            out.session,
            out.runtime,
            ticket,
            "reopened",
            now=out.now,
            actor=actor.key,
            detail="dispute returned at follow-up",
            note=text,
        )
        if case.colour == "red":
            await page_red(out.session, out.runtime, case, ticket, now=out.now, by=actor.key)
    return Outcome(case, returned=returned)
