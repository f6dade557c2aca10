"""工單: the list (filters, search by code, CSV export), a ticket's page (its timeline and,
audited, the residents' words) and its actions, which call bot/services/ticket_service.py — the
same functions as the officers' chat commands.

A ticket outside the viewer's scope answers exactly as a code that does not exist (404).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot.runtime import Runtime
from bot.services import audit
from bot.services import ticket_service as service
from bot.services.console_sessions import use_form
from bot.services.ticket_service import CATEGORIES, Contact, Refused
from bot.services.tickets import Out, find_ticket, reporters, resident_label
from bot.web.console.csv_cells import csv_cell
from bot.web.console.overview_data import names, overdue_clause
from bot.web.console.ticket_queries import (
    CSV_LIMIT,
    PAGE_SIZE,
    STATUSES,
    choices,
    parse_filters,
    ticket_query,
)
from bot.web.console.timeline import steps
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, posted_form, viewer
from bot.web.deps import get_runtime
from models.console import ConsoleAccount
from models.directory import Officer
from models.disputes import case_of
from models.people import Member
from models.tickets import Ticket, TicketEvent

router = APIRouter()
CODE = Path(pattern=r"^[A-Za-z]\d{4,6}$")
ANSWER_LIMIT = 1500
# Refusals of what the form said (a 400); the rest are of the ticket's state (a 409).
BAD_INPUT = {
    "empty_answer",
    "close_needs_note",
    "answer_too_long",
    "unknown_label",
    "unknown_officer",
    "transfer_same",
    "transfer_out_of_scope",
    "transfer_unreachable",
}
ACTIONS = ("take", "answer", "close", "transfer", "reclassify", "contacts")


@dataclass(frozen=True)
class Row:
    """A ticket as a row of the list, with names instead of ids."""

    ticket: Ticket
    station: str
    officer: str
    group: str
    overdue: bool
    mine: bool


def _rows(
    tickets: list[Ticket], who: Viewer, lookup: tuple[dict[str, str], ...], overdue: set[int]
) -> list[Row]:
    stations, officers, groups = lookup
    me = who.officer.id if who.officer else None
    return [
        Row(
            ticket=t,
            station=stations.get(t.station_id or "", ""),
            officer=officers.get(t.assigned_officer_id or "", ""),
            group=groups.get(t.group_id, t.group_id) if t.group_id else "",
            overdue=t.id in overdue,
            mine=me is not None and t.assigned_officer_id == me,
        )
        for t in tickets
    ]


async def _overdue_ids(session: AsyncSession, ids: list[int], runtime: Runtime) -> set[int]:
    if not ids:
        return set()
    now = runtime.clock.now()
    found = await session.scalars(select(Ticket.id).where(Ticket.id.in_(ids), overdue_clause(now)))
    return set(found)


def _mine(who: Viewer) -> str | None:
    """An officer's own items come first in their lists."""
    return who.officer.id if who.role == "officer" and who.officer else None


@router.get("/tickets", include_in_schema=False)
async def ticket_list(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The list, filtered; 50 to a page."""
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        picks = await choices(session, who.scope)
        f = parse_filters(request.query_params, picks)
        query = ticket_query(f, scope=who.scope, tz=runtime.settings.tz, mine=_mine(who))
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
        pages = max(1, -(-total // PAGE_SIZE))
        page_no = min(f.page, pages)
        found = list(
            await session.scalars(query.limit(PAGE_SIZE).offset((page_no - 1) * PAGE_SIZE))
        )
        lookup = await names(session)
        overdue = await _overdue_ids(session, [t.id for t in found], runtime)
    return page(
        "tickets.html",
        ui=Ui(runtime, who.script, now),
        viewer=who,
        active="tickets",
        here="/console/tickets?" + f.query(page=page_no),
        f=f,
        picks=picks,
        statuses=STATUSES,
        categories=CATEGORIES,
        rows=_rows(found, who, lookup, overdue),
        total=total,
        page_no=page_no,
        pages=pages,
        query=f.query(),
    )


@router.get("/tickets.csv", include_in_schema=False)
async def ticket_csv(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The filtered list as CSV (UTF-8 with a byte-order mark, so that Excel reads it), every
    page of it up to 10,000 rows, local times; no residents' words or names. A filter that
    cannot be used answers 400 naming it, as 統計's CSV does."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions.begin() as session:
        picks = await choices(session, who.scope)
        f = parse_filters(request.query_params, picks)
        if f.errors:
            # A download has no form to say it beside, and a list without the filter asked
            # for is not the export asked for (the list page's own link never carries one).
            field_, key = next(iter(f.errors.items()))
            return Response(
                f"{field_}: {ui.t(key)}\n", status_code=400, media_type="text/plain; charset=utf-8"
            )
        query = ticket_query(f, scope=who.scope, tz=runtime.settings.tz, mine=_mine(who))
        found = list(await session.scalars(query.limit(CSV_LIMIT)))
        rows = _rows(found, who, await names(session), set())
        audit.record(
            session,
            now=now,
            action="export",
            account=who.account,
            target="tickets.csv",
            detail=f.query() or None,
            ip=who.ip,
        )
    out = io.StringIO()
    writer = csv.writer(out)
    columns = (
        "col_code", "col_priority", "col_category", "col_status", "col_emergency",
        "col_station", "col_officer", "col_group", "col_created", "col_acknowledged",
        "col_answered", "col_closed", "t_ack_due", "t_answer_due", "col_satisfaction",
    )  # fmt: skip
    writer.writerow([ui.t(c) for c in columns])
    for r in rows:
        t = r.ticket
        writer.writerow(
            csv_cell(v)
            for v in (
                t.code,
                f"P{t.priority}",
                ui.cat(t.category),
                ui.status(t.status),
                ui.t("word_yes") if t.emergency else ui.t("word_no"),
                r.station,
                r.officer,
                r.group or ui.t("private_chat"),
                ui.local(t.created_at),
                ui.local(t.acknowledged_at) if t.acknowledged_at else "",
                ui.local(t.answered_at) if t.answered_at else "",
                ui.local(t.closed_at) if t.closed_at else "",
                ui.local(t.ack_due_at),
                ui.local(t.answer_due_at),
                ui.t(f"sat_{t.satisfaction}") if t.satisfaction else "",
            )
        )
    name = f"tickets-{ui.local(now, '%Y%m%d-%H%M')}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@dataclass
class TicketPage:
    """What a ticket's page shows besides the ticket: errors beside the forms, what was
    typed, a confirmation, contacts when asked for."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    done: str | None = None
    contacts: list[Contact] | None = None
    status_code: int = 200


async def account_names(session: AsyncSession, officers: dict[str, str]) -> dict[str, str]:
    """Console accounts by username → how they sign (for ``console:USERNAME`` actors)."""
    rows = await session.execute(
        select(ConsoleAccount.username, ConsoleAccount.name, ConsoleAccount.officer_id)
    )
    return {u: n or officers.get(o or "", "") or u for u, n, o in rows.all()}


async def _reporter_lines(
    session: AsyncSession, runtime: Runtime, ticket: Ticket, ui: Ui, groups: dict[str, str]
) -> list[tuple[str, str]]:
    """Each reporter masked (楊**) and where they asked."""
    lines = []
    for reporter in await reporters(session, ticket):
        member = await session.get(Member, reporter.member_id) if reporter.member_id else None
        label = await resident_label(session, runtime, member, ui.script)
        where = groups.get(reporter.group_id, "") if reporter.group_id else ui.t("private_chat")
        lines.append((label, where))
    return lines


async def find_in_scope(session: AsyncSession, who: Viewer, code: str) -> Ticket | None:
    """The ticket of ``code`` if the viewer may see it; None for another station's, exactly as
    for a code that does not exist."""
    ticket = await find_ticket(session, code)
    return ticket if ticket is not None and who.scope.admits(ticket) else None


async def render_ticket(
    who: Viewer, runtime: Runtime, code: str, extra: TicketPage | None = None
) -> Response:
    """A ticket's page; showing the residents' words is recorded in the audit log."""
    extra = extra or TicketPage()
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions.begin() as session:
        ticket = await find_in_scope(session, who, code)
        if ticket is None:
            return not_found(ui, who)
        stations, officers, groups = await names(session)
        events = list(
            await session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.at, TicketEvent.id)
            )
        )
        cipher = runtime.cipher
        with_words = service.may_read_words(who.actor, ticket)
        timeline = steps(
            events,
            ui,
            cipher,
            officers=officers,
            accounts=await account_names(session, officers),
            with_notes=with_words,
        )
        reporter_lines = await _reporter_lines(session, runtime, ticket, ui, groups)
        targets = [
            (o.id, f"{o.name}({stations.get(o.station_id, '')})")
            for o in await session.scalars(
                select(Officer).order_by(Officer.station_id, Officer.name)
            )
            if who.scope.covers_station(o.station_id)
            and o.wechat_id
            and o.id != ticket.assigned_officer_id
        ]
        dispute = await case_of(session, ticket.id)
        # Every page that shows residents' words is a showing of personal data.
        if with_words:
            audit.record(
                session,
                now=now,
                action=audit.PERSONAL_DATA_SHOWN,
                account=who.account,
                target=f"ticket:{ticket.code}",
                detail="words",
                ip=who.ip,
            )
    holder = who.officer is not None and ticket.assigned_officer_id == who.officer.id
    can_take = (
        who.officer is not None
        and ticket.status != "closed"
        and not (holder and ticket.acknowledged_at is not None)
    )
    can_see_contacts = service.may_see_contacts(who.actor, ticket)
    forms = {"answer", "reclassify"}
    forms |= {"take"} if can_take else set()
    forms |= {"transfer", "close"} if ticket.status != "closed" else set()
    forms |= {"contacts"} if can_see_contacts else set()
    return page(
        "ticket.html",
        ui=ui,
        viewer=who,
        active="tickets",
        here=f"/console/tickets/{ticket.code}",
        t=ticket,
        station=stations.get(ticket.station_id or "", ""),
        officer=officers.get(ticket.assigned_officer_id or "", ""),
        group=groups.get(ticket.group_id, ticket.group_id) if ticket.group_id else "",
        words=(cipher.decrypt(ticket.text_enc) or "") if with_words else None,
        dispute=dispute,
        resolution=cipher.decrypt(ticket.resolution_enc) if ticket.resolution_enc else None,
        reporters=reporter_lines,
        timeline=timeline,
        targets=targets,
        categories=CATEGORIES,
        can_take=can_take,
        can_see_contacts=can_see_contacts,
        # A refusal whose form the page no longer shows (the ticket changed meanwhile, or the
        # form was never the viewer's) is said at the top.
        stray_errors=[m for action, m in extra.errors.items() if action not in forms],
        answer_limit=ANSWER_LIMIT,
        errors=extra.errors,
        values=extra.values,
        done=extra.done,
        contacts=extra.contacts,
        status_code=extra.status_code,
    )


@router.get("/tickets/{code}", include_in_schema=False)
async def ticket_page(
    request: Request,
    code: str = CODE,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A ticket's page."""
    done = request.query_params.get("done")
    allowed = {"acknowledged", "answered", "closed", "transferred", "classified", "duplicate"}
    return await render_ticket(
        who, runtime, code, TicketPage(done=done if done in allowed else None)
    )


class _Missing(Exception):
    """The ticket is not there for this viewer (rolls the transaction back)."""


def _field(form: FormData, name: str, limit: int = 5000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def _act(out: Out, who: Viewer, ticket: Ticket, action: str, form: FormData) -> Any:
    """Call the ticket service for ``action``; returns what the page needs afterwards."""
    actor = who.actor
    if action == "take":
        await service.acknowledge(out, actor=actor, ticket=ticket)
        return "acknowledged"
    if action == "answer":
        text = _field(form, "text").strip()
        if len(text) > ANSWER_LIMIT:
            raise Refused("answer_too_long", code=ticket.code, limit=ANSWER_LIMIT)
        await service.answer(out, actor=actor, ticket=ticket, text=text)
        return "answered"
    if action == "close":
        await service.close(
            out, actor=actor, ticket=ticket, note=_field(form, "note", ANSWER_LIMIT)
        )
        return "closed"
    if action == "transfer":
        await service.transfer(
            out, actor=actor, ticket=ticket, officer_id=_field(form, "officer", 64)
        )
        return "transferred"
    if action == "reclassify":
        await service.reclassify(
            out, actor=actor, ticket=ticket, label=_field(form, "category", 32)
        )
        return "classified"
    return await service.contacts(out, actor=actor, ticket=ticket)


@router.post("/tickets/{code}/{action}", include_in_schema=False)
async def ticket_action(
    code: str = CODE,
    action: str = Path(pattern="^(" + "|".join(ACTIONS) + ")$"),
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Do ``action`` on the ticket, once per rendered form; then back to its page (``303``),
    or the page again with the reason beside the form and what was typed kept."""
    who, form = posted
    now = runtime.clock.now()
    nonce = _field(form, "nonce", 64)
    try:
        async with runtime.sessions.begin() as session:
            if not await use_form(session, nonce=nonce, account_id=who.account.id, now=now):
                result: Any = "duplicate"
            else:
                ticket = await find_in_scope(session, who, code)
                if ticket is None:
                    raise _Missing
                result = await _act(Out(session, runtime, now), who, ticket, action, form)
                audit.record(
                    session,
                    now=now,
                    action=audit.PERSONAL_DATA_SHOWN
                    if action == "contacts"
                    else f"ticket_{result}",
                    account=who.account,
                    target=f"ticket:{ticket.code}",
                    detail="contacts" if action == "contacts" else None,
                    ip=who.ip,
                )
    except _Missing:
        return not_found(Ui(runtime, who.script, now), who)
    except Refused as refused:
        ui = Ui(runtime, who.script, now)
        values = {k: _field(form, k) for k in ("text", "note", "officer", "category")}
        message = ui.t(f"refused_{refused.reason}", **refused.values)
        return await render_ticket(
            who,
            runtime,
            code,
            TicketPage(
                errors={action: message},
                values=values,
                # The form's input was wrong (400), or the ticket's state forbids it (409).
                status_code=400 if refused.reason in BAD_INPUT else 409,
            ),
        )
    if action == "contacts" and isinstance(result, list):
        return await render_ticket(who, runtime, code, TicketPage(contacts=result))
    done = result if isinstance(result, str) else "duplicate"
    return RedirectResponse(f"/console/tickets/{code.upper()}?done={done}", status_code=303)
