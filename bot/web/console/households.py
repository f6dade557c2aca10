"""住戶: the household roster of the viewer's scope, by group, least recently visited first,
with how often and when each was last visited; add a household, edit one, and (leaders and
admins) delete one on request (household_visits.py adds visits, plans and 待訪). Every change
calls bot/services/visits.py (the functions the chat's 走訪 uses), once per rendered form, and is
audited; the edit page shows the householder's name, number and address in clear, and each
showing is audited too. The list shows names masked.

A household outside the scope answers exactly as one that does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot.pii import mask_name
from bot.runtime import Runtime
from bot.services import audit, visits
from bot.services.console_sessions import use_form
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, posted_form, viewer
from bot.web.console.visit_panel import visit_panel
from bot.web.deps import get_runtime
from models.directory import Group
from models.people import Household

router = APIRouter()
PAGE_SIZE = 100
FIELDS = ("name", "phone", "address", "group")
# Fields are cut only far past what the roster takes, so that a too-long address is refused
# beside its field (ADDRESS_MAX) instead of being cut short without a word.
TYPED_MAX = 1000
HOUSEHOLD = Path(ge=1, le=2**31 - 1)


async def roster_scope(session: AsyncSession, who: Viewer) -> visits.Scope:
    """The roster the viewer works on: the county for an admin, else their officer's (their
    station and those below it; the county centre's officers every group)."""
    if who.is_admin:
        return visits.Scope(stations=None, ungrouped=True)
    if who.officer is None:
        return visits.Scope(stations=frozenset(), ungrouped=False)
    return await visits.officer_scope(session, officer=who.officer)


async def group_choices(session: AsyncSession, scope: visits.Scope) -> dict[str, str]:
    """The scope's groups by name, id → name."""
    query = select(Group.id, Group.name).order_by(Group.station_id, Group.name)
    if scope.stations is not None:
        query = query.where(Group.station_id.in_(sorted(scope.stations)))
    return {gid: name for gid, name in (await session.execute(query)).all()}


async def check_group(session: AsyncSession, who: Viewer, group: str) -> None:
    """A group the viewer may file a household under (none: only the county's people)."""
    scope = await roster_scope(session, who)
    if (group == "" and not scope.ungrouped) or (
        group and group not in await group_choices(session, scope)
    ):
        raise visits.VisitError("visit_unknown_group", group=group)


def may_delete(who: Viewer) -> bool:
    """Deleting a household on request is a leader's or an admin's decision."""
    return who.role in ("admin", "leader")


@dataclass
class FormState:
    """Errors beside a form and what was typed, to show again."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    status_code: int = 200


def field_of(form: FormData, name: str, limit: int = 200) -> str:
    """A posted text field, trimmed and cut to ``limit`` ("" when absent)."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def first_use(session: AsyncSession, who: Viewer, form: FormData, now: datetime) -> bool:
    """Whether this rendered form is submitted for the first time: its nonce is recorded in
    the same transaction as what it does, and a second submission does nothing."""
    return await use_form(
        session, nonce=field_of(form, "nonce", 64), account_id=who.account.id, now=now
    )


def audit_household(
    session: AsyncSession,
    who: Viewer,
    *,
    now: datetime,
    action: str,
    household_id: int,
    detail: str | None = None,
) -> None:
    """The audit row of what the viewer did to a household (never its personal data)."""
    audit.record(
        session,
        now=now,
        action=action,
        account=who.account,
        target=f"household:{household_id}",
        detail=detail,
        ip=who.ip,
    )


def error_of(ui: Ui, exc: visits.VisitError) -> tuple[str, str]:
    """The form field a refusal is about and the console's sentence for it."""
    where = {
        "visit_bad_name": "name",
        "visit_bad_phone": "phone",
        "visit_phone_known": "phone",
        "visit_household_known": "name",
        "visit_bad_address": "address",
        "visit_unknown_group": "group",
        "visit_in_future": "at",
        "visit_too_old": "at",
        "plan_bad_reason": "reason",
        "plan_bad_every": "every",
    }.get(exc.key, "form")
    return where, ui.t(f"hh_{exc.key}", **exc.values)


@router.get("/households", include_in_schema=False)
async def roster(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """One group's households (or the scope's), 100 a page, never visited first."""
    return await render_roster(request, who, runtime, FormState())


async def render_roster(
    request: Request, who: Viewer, runtime: Runtime, state: FormState
) -> Response:
    """The list page, with the add form's errors and values when it was refused."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    typed = (request.query_params.get("group") or "").strip()[:128]
    page_no = request.query_params.get("page") or "1"
    page_no_int = int(page_no) if page_no.isdigit() and 0 < int(page_no) <= 10_000 else 1
    async with runtime.sessions() as session:
        scope = await roster_scope(session, who)
        groups = await group_choices(session, scope)
        group = typed if typed in groups else ""
        if typed and not group:
            state.errors["filter"] = ui.t("f_bad_choice")
            state.status_code = 400
        lines = await visits.list_households(
            session,
            runtime.cipher,
            scope=scope,
            group_id=group or None,
            limit=PAGE_SIZE + 1,
            offset=(page_no_int - 1) * PAGE_SIZE,
        )
    more = len(lines) > PAGE_SIZE
    return page(
        "households.html",
        ui=ui,
        viewer=who,
        active="households",
        here="/console/households?" + urlencode({"group": group}),
        groups=groups,
        group=group,
        rows=[(line, mask_name(line.name)) for line in lines[:PAGE_SIZE]],
        page_no=page_no_int,
        more=more,
        state=state,
        done=request.query_params.get("done", "")[:16],
        status_code=state.status_code,
    )


@router.post("/households", include_in_schema=False)
async def add(
    request: Request,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Add a household (a number is optional), once per rendered form."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    typed = {k: field_of(form, k, TYPED_MAX) for k in FIELDS}
    try:
        async with runtime.sessions.begin() as session:
            await check_group(session, who, typed["group"])
            if not await first_use(session, who, form, now):
                done = "duplicate"
            else:
                household = await visits.add_household(
                    session,
                    runtime.cipher,
                    name=typed["name"],
                    address=typed["address"] or None,
                    phone=typed["phone"] or None,
                    group_id=typed["group"] or None,
                    actor=who.actor.key,
                    now=now,
                )
                audit_household(
                    session,
                    who,
                    now=now,
                    action="household_added",
                    household_id=household.id,
                    detail=f"group {typed['group']}",
                )
                done = "added"
    except visits.VisitError as exc:
        where, text = error_of(ui, exc)
        return await render_roster(
            request, who, runtime, FormState(errors={where: text}, values=typed, status_code=400)
        )
    query = urlencode({"group": typed["group"], "done": done})
    return RedirectResponse(f"/console/households?{query}", status_code=303)


async def in_scope(session: AsyncSession, who: Viewer, household_id: int) -> Household | None:
    """The household, if it is in the viewer's roster (else None, as for one that is gone)."""
    household = await session.get(Household, household_id)
    if household is None:
        return None
    scope = await roster_scope(session, who)
    if household.group_id is None:
        return household if scope.ungrouped else None
    groups = await group_choices(session, scope)
    return household if household.group_id in groups else None


async def render_household(
    who: Viewer,
    runtime: Runtime,
    household_id: int,
    state: FormState | None = None,
    done: str = "",
) -> Response:
    """A household's page: its details in clear (audited) in the edit form, its last visit and
    the form to record one, its plan (to those who may see it, audited), and deletion."""
    state = state or FormState()
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    cipher = runtime.cipher
    async with runtime.sessions.begin() as session:
        household = await in_scope(session, who, household_id)
        if household is None:
            return not_found(ui, who)
        groups = await group_choices(session, await roster_scope(session, who))
        values: dict[str, Any] = {
            "name": cipher.decrypt(household.name_enc) or "",
            "phone": cipher.decrypt(household.phone_enc) or "",
            "address": cipher.decrypt(household.address_enc) or "",
            "group": household.group_id or "",
            "at": ui.local(now, "%Y-%m-%dT%H:%M"),
            "note": "",
            "reason": "",
            "every": "",
            **state.values,
        }
        panel = await visit_panel(
            session, who=who, household=household, settings=runtime.settings.visits, now=now
        )
        audit_household(
            session,
            who,
            now=now,
            action="personal_data_shown",
            household_id=household_id,
            detail="household",
        )
    return page(
        "household.html",
        ui=ui,
        viewer=who,
        active="households",
        here=f"/console/households/{household_id}",
        household_id=household_id,
        values=values,
        groups=groups,
        state=state,
        deletable=may_delete(who),
        panel=panel,
        done=done[:16],
        status_code=state.status_code,
    )


@router.get("/households/{household_id}", include_in_schema=False)
async def household_page(
    request: Request,
    household_id: int = HOUSEHOLD,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A household's details and forms."""
    done = request.query_params.get("done", "")
    return await render_household(who, runtime, household_id, done=done)


class _Missing(Exception):
    pass


@router.post("/households/{household_id}/edit", include_in_schema=False)
async def edit(
    household_id: int = HOUSEHOLD,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Change the name, number, address or group (an empty number removes it)."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    typed = {k: field_of(form, k, TYPED_MAX) for k in FIELDS}
    try:
        async with runtime.sessions.begin() as session:
            if await in_scope(session, who, household_id) is None:
                raise _Missing
            await check_group(session, who, typed["group"])
            done = "duplicate"
            if await first_use(session, who, form, now):
                await visits.update_household(
                    session,
                    runtime.cipher,
                    household_id=household_id,
                    actor=who.actor.key,
                    now=now,
                    name=typed["name"],
                    phone=typed["phone"] or None,
                    address=typed["address"] or None,
                    group_id=typed["group"] or None,
                )
                audit_household(
                    session,
                    who,
                    now=now,
                    action="household_edited",
                    household_id=household_id,
                )
                done = "edited"
    except _Missing:
        return not_found(ui, who)
    except visits.VisitError as exc:
        where, text = error_of(ui, exc)
        return await render_household(
            who, runtime, household_id, FormState({where: text}, typed, status_code=400)
        )
    query = urlencode({"group": typed["group"], "done": done})
    return RedirectResponse(f"/console/households?{query}", status_code=303)


@router.post("/households/{household_id}/delete", include_in_schema=False)
async def delete(
    household_id: int = HOUSEHOLD,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Delete the household's personal data on request (leaders and admins; the box 確認
    ticked): its row, plan and visit notes; its visits stay as counts."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    if not may_delete(who):
        return not_found(ui, who)
    if field_of(form, "confirm") != "yes":
        return await render_household(
            who,
            runtime,
            household_id,
            FormState({"delete": ui.t("hh_confirm_needed")}, status_code=400),
        )
    group = ""
    async with runtime.sessions.begin() as session:
        done = "duplicate"
        if await first_use(session, who, form, now):
            household = await in_scope(session, who, household_id)
            if household is None:
                return not_found(ui, who)
            group = household.group_id or ""
            gone = await visits.delete_household(
                session, household_id=household_id, actor=who.actor.key, now=now
            )
            audit_household(
                session,
                who,
                now=now,
                action="household_deleted",
                household_id=household_id,
                detail=f"visits_kept={gone.visits_kept if gone else 0}",
            )
            done = "deleted"
    query = urlencode({"group": group, "done": done})
    return RedirectResponse(f"/console/households?{query}", status_code=303)
