"""糾紛台賬: the dispute register (filters by colour, level, station and status; red open cases
on top; the tally by level), a case's page (its history and, audited, the residents' words)
and its actions — grade, record a mediation or the agreement, escalate, refer, record a
follow-up — which call bot/services/dispute_service.py, the same functions as the officers' chat
commands 定級 / 調解 / 協議 / 升級 / 轉介 / 回訪.

A case whose ticket lies outside the viewer's scope answers exactly as a code that does not
exist (404), as on the ticket pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from bot.pii import mask_name
from bot.runtime import Runtime
from bot.services import audit
from bot.services import dispute_service as service
from bot.services.console_sessions import use_form
from bot.services.dispute_cases import history, level_deadlines
from bot.services.ticket_service import Refused, may_read_words
from bot.services.tickets import Out
from bot.web.console.dispute_queries import (
    PAGE_SIZE,
    STATUS_CHOICES,
    parse_filters,
    register_query,
    tally,
)
from bot.web.console.overview_data import names
from bot.web.console.ticket_queries import choices
from bot.web.console.tickets import account_names, find_in_scope
from bot.web.console.timeline import actor_name
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, posted_form, viewer
from bot.web.deps import get_runtime
from models.disputes import COLOURS, LEVELS, DisputeCase, case_of, next_level
from models.tickets import Ticket

router = APIRouter()
CODE = Path(pattern=r"^[A-Za-z]\d{4,6}$")
ACTIONS = ("grade", "mediate", "agreement", "escalate", "refer", "follow_up")
TEXT_LIMIT = 1500
# The form's input was wrong (400); any other refusal is the case's state (409).
BAD_INPUT = {"empty_text", "bad_colour", "text_too_long"}
DONE = (*ACTIONS, "reopened", "duplicate")
# What each action is called in the audit log.
AUDITED = {
    "grade": "dispute_graded",
    "mediate": "dispute_mediated",
    "agreement": "dispute_agreement",
    "escalate": "dispute_escalated",
    "refer": "dispute_referred",
    "follow_up": "dispute_followed_up",
}


@dataclass(frozen=True)
class CaseRow:
    """A case as a row of the register, with names instead of ids."""

    case: DisputeCase
    ticket: Ticket
    station: str
    officer: str
    group: str
    overdue: bool
    follow_up_due: bool


def _row(
    case: DisputeCase, ticket: Ticket, lookup: tuple[dict[str, str], ...], now: datetime
) -> CaseRow:
    stations, officers, groups = lookup
    return CaseRow(
        case=case,
        ticket=ticket,
        station=stations.get(case.station_id or "", ""),
        officer=officers.get(ticket.assigned_officer_id or "", ""),
        group=groups.get(ticket.group_id, "") if ticket.group_id else "",
        overdue=case.status == "open"
        and case.level_deadline is not None
        and case.level_deadline < now,
        follow_up_due=case.status == "resolved"
        and case.follow_up_at is not None
        and case.follow_up_at <= now,
    )


@router.get("/disputes", include_in_schema=False)
async def register(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The register, filtered; 50 to a page. No residents' words: nothing to audit."""
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        picks = await choices(session, who.scope)
        f = parse_filters(request.query_params, picks.subtrees)
        query = register_query(f, scope=who.scope, tz=runtime.settings.tz)
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        pages = max(1, -(-total // PAGE_SIZE))
        page_no = min(f.page, pages)
        window = query.limit(PAGE_SIZE).offset((page_no - 1) * PAGE_SIZE)
        found = (await session.execute(window)).all()
        lookup = await names(session)
        counts = await tally(session, who.scope)
    return page(
        "disputes.html",
        ui=Ui(runtime, who.script, now),
        viewer=who,
        active="disputes",
        here="/console/disputes?" + f.query(page=page_no),
        f=f,
        stations=picks.stations,
        colours=COLOURS,
        levels=LEVELS,
        statuses=STATUS_CHOICES,
        rows=[_row(case, ticket, lookup, now) for case, ticket in found],
        tally=counts,
        total=total,
        page_no=page_no,
        pages=pages,
        query=f.query(),
    )


@dataclass(frozen=True)
class CaseStep:
    """One line of a case's history: what happened, who did it, at which level and colour,
    and its note (a record, a reason, the agreement) for viewers entitled to the words."""

    at: datetime
    action: str
    label: str
    actor: str
    level: str
    colour: str
    note: str | None


@dataclass
class CasePage:
    """What a case's page shows besides the case: errors beside the forms, what was typed, a
    confirmation."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    failed: str | None = None  # the form whose values these are
    done: str | None = None
    status_code: int = 200


def _parties(runtime: Runtime, case: DisputeCase) -> list[str]:
    """The parties' names, masked (楊**): the full names are the reporters' contact details,
    shown on the ticket page to those entitled to them."""
    raw = runtime.cipher.decrypt(case.parties_enc) if case.parties_enc else None
    try:
        names_ = json.loads(raw) if raw else []
    except ValueError:
        names_ = []
    return [mask_name(str(n)) for n in names_ if str(n).strip()]


def _forms(case: DisputeCase, ticket: Ticket) -> set[str]:
    """The actions the case's state allows (grading always, while the ticket is a dispute)."""
    if ticket.category != "dispute":
        return set()
    forms = {"grade"}
    if case.status == "open":
        forms |= {"mediate", "agreement", "refer"}
        forms |= {"escalate"} if next_level(case.level) else set()
    if case.status == "resolved":
        forms.add("follow_up")
    return forms


async def render_case(
    who: Viewer, runtime: Runtime, code: str, extra: CasePage | None = None
) -> Response:
    """A case's page; showing the residents' words is recorded in the audit log."""
    extra = extra or CasePage()
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    cipher = runtime.cipher
    async with runtime.sessions.begin() as session:
        ticket = await find_in_scope(session, who, code)
        case = await case_of(session, ticket.id) if ticket is not None else None
        if ticket is None or case is None:
            return not_found(ui, who)
        stations, officers, groups = await names(session)
        accounts = await account_names(session, officers)
        with_words = may_read_words(who.actor, ticket)
        steps = [
            CaseStep(
                at=e.at,
                action=e.action,
                label=ui.t(f"dev_{e.action}") if ui.has(f"dev_{e.action}") else e.action,
                actor=actor_name(e.by, ui, officers, accounts),
                level=ui.level(e.level),
                colour=e.colour,
                note=cipher.decrypt(e.note_enc) if with_words and e.note_enc else None,
            )
            for e in await history(session, case)
        ]
        if with_words:
            audit.record(
                session,
                now=now,
                action=audit.PERSONAL_DATA_SHOWN,
                account=who.account,
                target=f"dispute:{ticket.code}",
                detail="words",
                ip=who.ip,
            )
    deadlines = level_deadlines(runtime)
    above = next_level(case.level)
    forms = _forms(case, ticket)
    return page(
        "dispute.html",
        ui=ui,
        viewer=who,
        active="disputes",
        here=f"/console/disputes/{ticket.code}",
        c=case,
        t=ticket,
        station=stations.get(case.station_id or "", ""),
        officer=officers.get(ticket.assigned_officer_id or "", ""),
        overdue=case.status == "open"
        and case.level_deadline is not None
        and case.level_deadline < now,
        with_words=with_words,
        summary=cipher.decrypt(case.summary_enc) if with_words and case.summary_enc else "",
        place=(
            (cipher.decrypt(case.place_enc) if case.place_enc else None)
            or groups.get(ticket.group_id or "", "")
        )
        if with_words
        else "",
        parties=_parties(runtime, case) if with_words else [],
        agreement=cipher.decrypt(case.agreement_enc) if with_words and case.agreement_enc else None,
        steps=steps,
        colours=COLOURS,
        forms=forms,
        next_level=above,
        next_deadline=now + deadlines.at(above) if above else None,
        follow_up_dates="、".join(ui.local(now + d, "%m-%d") for d in deadlines.follow_ups),
        stray_errors=[m for action, m in extra.errors.items() if action not in forms],
        text_limit=TEXT_LIMIT,
        errors=extra.errors,
        values=extra.values,
        failed=extra.failed,
        done=extra.done,
        status_code=extra.status_code,
    )


@router.get("/disputes/{code}", include_in_schema=False)
async def case_page(
    request: Request,
    code: str = CODE,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A case's page."""
    done = request.query_params.get("done")
    return await render_case(who, runtime, code, CasePage(done=done if done in DONE else None))


class _Missing(Exception):
    """The ticket is not there for this viewer (rolls the transaction back)."""


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _text(form: FormData, name: str, ticket: Ticket) -> str:
    text = _field(form, name).strip()
    if len(text) > TEXT_LIMIT:
        raise Refused("text_too_long", code=ticket.code, limit=TEXT_LIMIT)
    return text


async def _act(out: Out, who: Viewer, ticket: Ticket, action: str, form: FormData) -> str:
    """Call the dispute service for ``action``; returns what the page confirms."""
    actor = who.actor
    if action == "grade":
        await service.grade(
            out,
            actor=actor,
            ticket=ticket,
            colour=_field(form, "colour")[:16],
            reason=_text(form, "reason", ticket),
        )
    elif action == "mediate":
        await service.mediate(out, actor=actor, ticket=ticket, text=_text(form, "text", ticket))
    elif action == "agreement":
        await service.agreement(out, actor=actor, ticket=ticket, text=_text(form, "text", ticket))
    elif action == "escalate":
        await service.escalate(
            out, actor=actor, ticket=ticket, reason=_text(form, "reason", ticket)
        )
    elif action == "refer":
        await service.refer(out, actor=actor, ticket=ticket, text=_text(form, "text", ticket))
    else:
        done = await service.follow_up(
            out, actor=actor, ticket=ticket, text=_text(form, "text", ticket)
        )
        return "reopened" if done.returned else action
    return action


def _refusal(ui: Ui, refused: Refused) -> str:
    """A refusal in the console's words."""
    values: dict[str, Any] = dict(refused.values)
    if "status" in values:
        values["status"] = ui.dstatus(values["status"])
    if "action" in values:
        # The form's heading (記錄調解) for not_open, its field (調解記錄) for empty_text.
        key = ("dn_" if refused.reason == "empty_text" else "da_") + values["action"]
        values["action"] = ui.t(key)
    return ui.t(f"refused_{refused.reason}", **values)


@router.post("/disputes/{code}/{action}", include_in_schema=False)
async def case_action(
    code: str = CODE,
    action: str = Path(pattern="^(" + "|".join(ACTIONS) + ")$"),
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Do ``action`` on the case, once per rendered form; then back to its page (``303``), or
    the page again with the reason beside the form and what was typed kept."""
    who, form = posted
    now = runtime.clock.now()
    nonce = _field(form, "nonce")[:64]
    try:
        async with runtime.sessions.begin() as session:
            if not await use_form(session, nonce=nonce, account_id=who.account.id, now=now):
                done = "duplicate"
            else:
                ticket = await find_in_scope(session, who, code)
                if ticket is None or await case_of(session, ticket.id) is None:
                    raise _Missing
                done = await _act(Out(session, runtime, now), who, ticket, action, form)
                audit.record(
                    session,
                    now=now,
                    action=AUDITED[action],
                    account=who.account,
                    target=f"dispute:{ticket.code}",
                    ip=who.ip,
                )
    except _Missing:
        return not_found(Ui(runtime, who.script, now), who)
    except Refused as refused:
        ui = Ui(runtime, who.script, now)
        typed = {k: _field(form, k)[: TEXT_LIMIT * 2] for k in ("colour", "reason", "text")}
        return await render_case(
            who,
            runtime,
            code,
            CasePage(
                errors={action: _refusal(ui, refused)},
                values=typed,
                failed=action,
                status_code=400 if refused.reason in BAD_INPUT else 409,
            ),
        )
    return RedirectResponse(f"/console/disputes/{code.upper()}?done={done}", status_code=303)
