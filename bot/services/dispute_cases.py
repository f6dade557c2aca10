"""Dispute cases as the bot handles them: opening one for a dispute ticket, telling the right
people when a case changes level, the deadline sweep, and the lines disputes add to 待辦 and
the digest. The chat commands are in handlers/disputes.py; the state is models/disputes.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import opencc
import yaml
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.services.routing import Router, station_subtree
from bot.services.tickets import Out, clip, group_label, reporters
from bot.settings import parse_duration
from bot.texts import Script
from models.base import rowcount
from models.directory import Officer, Station
from models.disputes import (
    SET_ASIDE,
    DisputeCase,
    DisputeEvent,
    case_of,
    move_to_station,
    move_up,
    open_case,
    record,
    reopen,
    set_aside,
)
from models.disputes import Deadlines as LevelDeadlines
from models.people import Binding
from models.tickets import Ticket

WORDS_FILE = Path(__file__).with_name("dispute_words.yaml")
_NEGATION = re.compile(r"[没沒未不无無]")


@lru_cache(maxsize=1)
def _words() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load(WORDS_FILE.read_text(encoding="utf-8"))
    return {kind: tuple(str(w) for w in words) for kind, words in data.items()}


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _simplified(text: str) -> str:
    simplified: str = _t2s().convert(text)
    return simplified


def _mentions(text: str, kind: str) -> bool:
    """Whether ``text`` says one of ``kind``'s words, not negated just before it."""
    plain = _simplified(text)
    for word in _words()[kind]:
        start = plain.find(word)
        while start >= 0:
            if not _NEGATION.search(plain[max(0, start - 2) : start]):
                return True
            start = plain.find(word, start + 1)
    return False


def suggest_colour(text: str) -> str:
    """The colour a dispute's words suggest: threats, weapons, danger to life → red; repeated,
    long-running or many people → yellow; else blue. Only a suggestion: the officer grades."""
    if _mentions(text, "red"):
        return "red"
    if _mentions(text, "yellow"):
        return "yellow"
    return "blue"


def conflict_returned(text: str) -> bool:
    """Whether a follow-up's report says the conflict is back (又吵起來了, 對方反悔了)."""
    return _mentions(text, "returned")


def level_deadlines(runtime: Runtime) -> LevelDeadlines:
    """The configured time per level and follow-up days."""
    d = runtime.settings.disputes
    return LevelDeadlines(
        village=parse_duration(d.deadlines.village),
        station=parse_duration(d.deadlines.station),
        county=parse_duration(d.deadlines.county),
        follow_ups=tuple(timedelta(days=n) for n in d.follow_up_days),
    )


def local_date(runtime: Runtime, at: datetime | None) -> str:
    """A date as people read it: local, ``12月13日``."""
    if at is None:
        return "-"
    local = at.astimezone(ZoneInfo(runtime.settings.timezone))
    return f"{local.month}月{local.day}日"


def word(runtime: Runtime, kind: str, value: str, script: Script) -> str:
    """``colour_red`` → 紅色, ``level_station`` → 派出所調解, in ``script``."""
    return runtime.texts.render(f"{kind}_{value}", script)


async def open_for_ticket(
    session: AsyncSession, runtime: Runtime, ticket: Ticket, *, now: datetime, by: str = "system"
) -> DisputeCase:
    """The dispute case of a ticket filed (or reclassified) as a dispute: opened at the village
    level, coloured as its words suggest; the officer holding it hears the suggestion, and a
    red one pages the station leader at once. An existing case is returned as it is; one set
    aside when the ticket was filed as something else resumes where it was, with its level's
    full time again."""
    existing = await case_of(session, ticket.id, set_aside_too=True)
    if existing is not None and existing.status == SET_ASIDE:
        reopen(session, existing, deadlines=level_deadlines(runtime), now=now, by=by,
               action="resumed")  # fmt: skip
        existing.station_id = ticket.station_id
        if existing.colour == "red":
            await page_red(session, runtime, existing, ticket, now=now, by=by)
    if existing is not None:
        return existing
    cipher = runtime.cipher
    text = cipher.decrypt(ticket.text_enc) or ""
    parties = []
    for reporter in await reporters(session, ticket):
        if reporter.member_id is None:
            continue
        binding = await session.scalar(
            select(Binding).where(Binding.member_id == reporter.member_id)
        )
        if binding is not None:
            parties.append(cipher.decrypt(binding.name_enc) or "")
    case = await open_case(
        session,
        ticket_id=ticket.id,
        station_id=ticket.station_id,
        suggested=suggest_colour(text),
        deadlines=level_deadlines(runtime),
        now=now,
        parties_enc=cipher.encrypt(json.dumps(parties, ensure_ascii=False)),
        place_enc=cipher.encrypt(await group_label(session, runtime, ticket)),
        summary_enc=cipher.encrypt(text),
        by=by,
        # Reclassified (分類) a day later, it still counts in the month the resident raised it,
        # as the ticket does: a ticket of 30 November filed as a dispute on 1 December was a
        # November item and a December dispute.
        raised_at=ticket.created_at,
    )
    out = Out(session, runtime, now)
    holder = await session.get(Officer, ticket.assigned_officer_id or "")
    script: Script = ticket.script
    if holder is not None:
        out.to_officer(
            holder,
            out.text(
                "dispute_opened_to_officer",
                script,
                code=ticket.code,
                level=word(runtime, "level", case.level, script),
                deadline=local_date(runtime, case.level_deadline),
                colour=word(runtime, "colour", case.colour, script),
            ),
        )
    if case.colour == "red":
        await page_red(session, runtime, case, ticket, now=now, by=by)
    return case


async def set_aside_for(session: AsyncSession, ticket: Ticket, *, now: datetime, by: str) -> None:
    """The ticket was filed as something other than a dispute (分類): its open case stops —
    no more levels, checks, notices, figures (:data:`models.disputes.SET_ASIDE`). A case that
    has already ended (agreement, referral, withdrawal) stays as it ended."""
    case = await case_of(session, ticket.id)
    if case is not None and case.status == "open":
        set_aside(session, case, now=now, by=by)


async def agreement_rejected(
    session: AsyncSession, runtime: Runtime, ticket: Ticket, *, now: datetime, reason: str = ""
) -> None:
    """A resident is not satisfied with the agreement (不滿意 after 協議): the case is open
    again, at the level that reached the agreement with its full time, and counts as open
    (the leader who takes the ticket over is told by the rating's reopening). Before, the
    ticket reopened and the case stayed "resolved", so no dispute command could touch it.
    The people of that level hear it too: an agreement the county centre reached went back
    to the station's leader alone, and the centre, mediating it again, learnt nothing."""
    case = await case_of(session, ticket.id)
    if case is None or case.status != "resolved":
        return
    reopen(session, case, deadlines=level_deadlines(runtime), now=now, by="resident",
           action="agreement_rejected")  # fmt: skip
    out = Out(session, runtime, now)
    script: Script = ticket.script
    for officer in await people_at(session, runtime, case):
        if officer.id == ticket.assigned_officer_id:
            continue  # told by the rating's reopening
        out.to_officer(
            officer,
            out.text(
                "dispute_agreement_rejected",
                script,
                code=ticket.code,
                level=word(runtime, "level", case.level, script),
                deadline=local_date(runtime, case.level_deadline),
                reason=out.text("reopened_reason", script, reason=clip(reason)) if reason else "",
            ),
        )


async def follow_ticket(
    session: AsyncSession, runtime: Runtime, ticket: Ticket, *, now: datetime, by: str
) -> None:
    """The ticket moved to another station (轉派 to its officer): the case goes with it, so
    the new station's leaders mediate at its level and count it; a red open case pages the
    leader who now answers for it."""
    case = await case_of(session, ticket.id)
    if case is None or case.station_id == ticket.station_id:
        return
    move_to_station(session, case, ticket.station_id, now=now, by=by)
    if case.status == "open" and case.colour == "red":
        await page_red(session, runtime, case, ticket, now=now, by=by)


async def page_red(
    session: AsyncSession,
    runtime: Runtime,
    case: DisputeCase,
    ticket: Ticket,
    *,
    now: datetime,
    by: str,
) -> None:
    """A red case pages the station's leader at once (and stays at the top of their 待辦); at a
    station without a leader, whoever leads for it above (:meth:`Router.leaders_for`). The
    history credits ``by``, whose act made the case red, not the leader who was told."""
    station_id = case.station_id or ticket.station_id
    if station_id is None:
        return
    leaders = await Router(session, runtime.settings.timezone).leaders_for(station_id)
    if not leaders:
        return
    out = Out(session, runtime, now)
    holder = await session.get(Officer, ticket.assigned_officer_id or "")
    out.to_officer(
        leaders[0],
        out.text(
            "dispute_red_page",
            ticket.script,
            code=ticket.code,
            group=await group_label(session, runtime, ticket),
            text=clip(runtime.cipher.decrypt(ticket.text_enc) or ""),
            officer=holder.name if holder else "-",
        ),
        priority=1,
    )
    record(session, case, "paged_leader", now=now, by=by)


async def people_at(
    session: AsyncSession, runtime: Runtime, case: DisputeCase, level: str | None = None
) -> list[Officer]:
    """Who mediates at the case's level (or ``level``): the station's leaders at ``station``
    (at a station without one, whoever leads for it above), the county centre's officers at
    ``county`` (at ``village`` the ticket's holder, told elsewhere)."""
    level = level or case.level
    if level == "station" and case.station_id:
        return await Router(session, runtime.settings.timezone).leaders_for(case.station_id)
    if level == "county":
        county = await Router(session, runtime.settings.timezone).county_station()
        if county is None:
            return []
        return list(
            (
                await session.scalars(
                    select(Officer).where(Officer.station_id == county.id).order_by(Officer.id)
                )
            ).all()
        )
    return []


async def tell_level_change(
    session: AsyncSession,
    runtime: Runtime,
    case: DisputeCase,
    ticket: Ticket,
    *,
    before: str,
    now: datetime,
    by_name: str | None,
    by_officer_id: str | None = None,
) -> None:
    """After a case moved up: the new level's people, the officer who had it and the residents
    involved (in their script) hear who handles it now. ``by_name`` is who moved it up (None:
    its deadline passed); ``by_officer_id`` their directory officer, who is not told of their
    own step."""
    out = Out(session, runtime, now)
    script: Script = ticket.script
    level = word(runtime, "level", case.level, script)
    old = word(runtime, "level", before, script)
    deadline = local_date(runtime, case.level_deadline)
    reason = (
        out.text("dispute_reason_by", script, officer=by_name)
        if by_name is not None
        else out.text("dispute_reason_deadline", script, level=old)
    )
    newcomers = await people_at(session, runtime, case)
    for officer in newcomers:
        out.to_officer(
            officer,
            out.text(
                "dispute_level_to_new_people",
                script,
                code=ticket.code,
                colour=word(runtime, "colour", case.colour, script),
                reason=reason,
                level=level,
                deadline=deadline,
                group=await group_label(session, runtime, ticket),
                text=clip(runtime.cipher.decrypt(ticket.text_enc) or ""),
            ),
            priority=3,
        )
    # Who had it: the holder, and the level's own people (a station's leaders) it leaves.
    holder = await session.get(Officer, ticket.assigned_officer_id or "")
    previous = ([holder] if holder is not None else []) + await people_at(
        session, runtime, case, before
    )
    told = {o.id for o in newcomers} | {by_officer_id}
    for officer in previous:
        if officer.id in told:
            continue
        told.add(officer.id)
        out.to_officer(
            officer,
            out.text(
                "dispute_level_to_previous",
                script,
                code=ticket.code,
                level=level,
                old=old,
                reason=out.text(
                    "dispute_reason_passed" if by_name is None else "dispute_reason_escalated",
                    script,
                ),
            ),
        )
    who = await _who(session, runtime, case, script)
    out.to_reporters(
        await reporters(session, ticket),
        out.text("dispute_level_to_resident", script, code=ticket.code, who=who),
    )


async def _who(session: AsyncSession, runtime: Runtime, case: DisputeCase, script: Script) -> str:
    """The body now mediating, as residents know it: the police station's name at the station
    level, the county mediation centre's at the county level."""
    if case.level == "station" and case.station_id:
        station = await session.get(Station, case.station_id)
        if station is not None:
            return station.name
    if case.level == "county":
        county = await Router(session, runtime.settings.timezone).county_station()
        if county is not None:
            return county.name
    return word(runtime, "level", case.level, script)


async def sweep(runtime: Runtime, now: datetime) -> int:
    """Move up every open case whose level's deadline has passed (one step per pass, each
    taken once even with two sweeps), remind the county once when its own deadline passes, and
    look at yellow cases weekly. Returns the steps taken."""
    deadlines = level_deadlines(runtime)
    steps = 0
    async with runtime.sessions() as session:
        due = (
            await session.execute(
                select(DisputeCase.id, DisputeCase.level, DisputeCase.level_deadline).where(
                    DisputeCase.status == "open",
                    DisputeCase.level_deadline.is_not(None),
                    DisputeCase.level_deadline <= now,
                    # The county's own deadline reminds once; the deadline stays on the case.
                    ~exists().where(
                        DisputeEvent.dispute_id == DisputeCase.id,
                        DisputeEvent.action == "county_overdue",
                        DisputeEvent.at >= DisputeCase.level_deadline,
                    ),
                )
            )
        ).all()
    for case_id, level, deadline in due:
        async with runtime.sessions.begin() as session:
            # Taken once: the step happens only where the case still is as it was read.
            claimed = await session.execute(
                update(DisputeCase)
                .where(
                    DisputeCase.id == case_id,
                    DisputeCase.level == level,
                    DisputeCase.level_deadline == deadline,
                )
                .values(updated_at=now)
            )
            if rowcount(claimed) != 1:
                continue
            case = await session.get(DisputeCase, case_id)
            assert case is not None
            await session.refresh(case)
            ticket = await session.get(Ticket, case.ticket_id)
            assert ticket is not None
            if level == "county":
                # The deadline is kept: an overdue case at the county showed no deadline at all
                # (API null, 期限 —), exactly like a case that never had one.
                record(session, case, "county_overdue", now=now)
                out = Out(session, runtime, now)
                for officer in await people_at(session, runtime, case):
                    out.to_officer(
                        officer,
                        out.text("dispute_county_overdue", ticket.script, code=ticket.code),
                    )
            else:
                before = move_up(
                    session, case, deadlines=deadlines, now=now, by="system", automatic=True
                )
                await tell_level_change(
                    session, runtime, case, ticket, before=before, now=now, by_name=None
                )
            steps += 1
    steps += await _yellow_checks(runtime, now)
    return steps


async def _yellow_checks(runtime: Runtime, now: datetime) -> int:
    checked = 0
    async with runtime.sessions.begin() as session:
        cases = (
            await session.scalars(
                select(DisputeCase).where(
                    DisputeCase.status == "open",
                    DisputeCase.colour == "yellow",
                    DisputeCase.check_at.is_not(None),
                    DisputeCase.check_at <= now,
                )
            )
        ).all()
        out = Out(session, runtime, now)
        for case in cases:
            case.check_at = now + timedelta(days=7)
            ticket = await session.get(Ticket, case.ticket_id)
            holder = (
                await session.get(Officer, ticket.assigned_officer_id or "") if ticket else None
            )
            if ticket is None or holder is None:
                continue
            out.to_officer(
                holder,
                out.text("dispute_yellow_check", ticket.script, code=ticket.code),
            )
            record(session, case, "yellow_check", now=now)
            checked += 1
    return checked


async def todo_lines(
    session: AsyncSession, runtime: Runtime, officer: Officer, script: Script, now: datetime
) -> list[str]:
    """What disputes add at the top of an officer's 待辦 and digest: red cases they hold or, for
    a leader, of their stations; their follow-up visits that are due."""
    lines: list[str] = []
    red = (
        select(DisputeCase, Ticket)
        .join(Ticket, Ticket.id == DisputeCase.ticket_id)
        .where(DisputeCase.status == "open", DisputeCase.colour == "red")
    )
    if officer.role == "leader":
        scope = await station_subtree(session, [officer.station_id])
        red = red.where(
            (Ticket.assigned_officer_id == officer.id) | DisputeCase.station_id.in_(scope)
        )
    else:
        red = red.where(Ticket.assigned_officer_id == officer.id)
    red_rows = (await session.execute(red.order_by(DisputeCase.opened_at))).all()
    if red_rows:
        lines.append(runtime.texts.render("dispute_todo_red", script, count=len(red_rows)))
        for case, ticket in red_rows:
            holder = await session.get(Officer, ticket.assigned_officer_id or "")
            lines.append(
                runtime.texts.render(
                    "dispute_todo_red_line",
                    script,
                    code=ticket.code,
                    level=word(runtime, "level", case.level, script),
                    deadline=local_date(runtime, case.level_deadline),
                    officer=holder.name if holder else "-",
                )
            )
    due = (
        await session.execute(
            select(DisputeCase, Ticket)
            .join(Ticket, Ticket.id == DisputeCase.ticket_id)
            .where(
                DisputeCase.status == "resolved",
                DisputeCase.follow_up_at.is_not(None),
                DisputeCase.follow_up_at <= now,
                Ticket.assigned_officer_id == officer.id,
            )
            .order_by(DisputeCase.follow_up_at)
        )
    ).all()
    if due:
        lines.append(runtime.texts.render("dispute_todo_follow_ups", script, count=len(due)))
        for case, ticket in due:
            lines.append(
                runtime.texts.render(
                    "dispute_todo_follow_up_line",
                    script,
                    code=ticket.code,
                    date=local_date(runtime, case.resolved_at),
                )
            )
    return lines


async def history(session: AsyncSession, case: DisputeCase) -> list[DisputeEvent]:
    """A case's history, oldest first."""
    return list(
        (
            await session.scalars(
                select(DisputeEvent)
                .where(DisputeEvent.dispute_id == case.id)
                .order_by(DisputeEvent.at, DisputeEvent.id)
            )
        ).all()
    )
