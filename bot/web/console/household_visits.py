"""住戶: recording a visit from a household's page, putting it on or taking it off a visit plan,
and the 待訪 view (the plan households due in the account's scope).

Each form acts once (its one-time token) and is audited; each calls bot/services/visits.py as the
account's linked officer (the chat's 走訪 and 入冊 call the same functions). An account without a
linked officer cannot record a visit or see plans: the page says so. A household outside the
scope, or whose plan the officer may not see, answers 404 as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from bot.clock import within_years
from bot.pii import mask_name
from bot.runtime import Runtime
from bot.services import visits
from bot.web.console.households import (
    HOUSEHOLD,
    FormState,
    audit_household,
    error_of,
    field_of,
    first_use,
    group_choices,
    in_scope,
    render_household,
    roster_scope,
)
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, posted_form, viewer
from bot.web.console.visit_panel import reason_labels
from bot.web.deps import get_runtime

router = APIRouter()
AT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


class _Refused(Exception):
    """A form refused before bot/services/visits.py was called: the field and the sentence."""

    def __init__(self, where: str, text: str) -> None:
        super().__init__(where)
        self.where, self.text = where, text


async def _again(
    who: Viewer,
    runtime: Runtime,
    household_id: int,
    ui: Ui,
    exc: _Refused | visits.VisitError,
    typed: dict[str, str],
) -> Response:
    """The household's page again (400) with the reason beside its field and what was typed."""
    where, text = (exc.where, exc.text) if isinstance(exc, _Refused) else error_of(ui, exc)
    state = FormState({where: text}, typed, status_code=400)
    return await render_household(who, runtime, household_id, state)


def _back(household_id: int, done: str) -> Response:
    query = urlencode({"done": done})
    return RedirectResponse(f"/console/households/{household_id}?{query}", status_code=303)


def _parse_at(ui: Ui, text: str) -> datetime:
    """The visit's local date and time; refused beside the field when it is not one."""
    try:
        at = datetime.strptime(text, AT_FORMAT).replace(tzinfo=ui.tz)
    except ValueError:
        raise _Refused("at", ui.t("hh_bad_at")) from None
    if not within_years(at.date()):
        # 0001-01-01 in local time is before year 1 in UTC: comparing it was a 500.
        raise _Refused("at", ui.t("hh_visit_too_old" if at.year < 2000 else "hh_visit_in_future"))
    return at


@router.get("/households/due", include_in_schema=False)
async def due(who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)) -> Response:
    """待訪: the plan households due by now that the account's officer may see, most overdue
    first (each one shown is audited by ``plans_in_view``)."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    lines: list[visits.PlanLine] = []
    async with runtime.sessions.begin() as session:
        groups = await group_choices(session, await roster_scope(session, who))
        if who.officer is not None:
            lines = await visits.plans_in_view(
                session,
                runtime.cipher,
                viewer=who.officer,
                now=now,
                due_by=now,
                purpose="console due",
            )
    return page(
        "households_due.html",
        ui=ui,
        viewer=who,
        active="households",
        here="/console/households/due",
        linked=who.officer is not None,
        rows=[(line, mask_name(line.name)) for line in lines],
        groups=groups,
        reasons=reason_labels(runtime.settings.visits, who.script),
    )


@router.post("/households/{household_id}/visit", include_in_schema=False)
async def record(
    household_id: int = HOUSEHOLD,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Record a visit (when, local time, at most now; the note) as the linked officer."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    typed = {"at": field_of(form, "at", 16), "note": field_of(form, "note", 1000)}
    try:
        if who.officer is None:
            raise _Refused("visit", ui.t("hh_needs_officer"))
        if not typed["note"]:
            raise _Refused("note", ui.t("hh_note_empty"))
        at = _parse_at(ui, typed["at"])
        async with runtime.sessions.begin() as session:
            if await in_scope(session, who, household_id) is None:
                return not_found(ui, who)
            done = "duplicate"
            if await first_use(session, who, form, now):
                visit = await visits.record_visit(
                    session,
                    runtime.cipher,
                    household_id=household_id,
                    officer=who.officer,
                    note=typed["note"],
                    at=at,
                    now=now,
                    source="console",
                )
                audit_household(
                    session,
                    who,
                    now=now,
                    action="visit_recorded",
                    household_id=household_id,
                    detail=f"visit {visit.id}",
                )
                done = "visited"
    except (_Refused, visits.VisitError) as exc:
        return await _again(who, runtime, household_id, ui, exc, typed)
    return _back(household_id, done)


@router.post("/households/{household_id}/plan", include_in_schema=False)
async def plan_on(
    household_id: int = HOUSEHOLD,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Put the household on a visit plan, or change its plan (reason from the configured list;
    every so many days, blank for the reason's own)."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    typed = {"reason": field_of(form, "reason", 32), "every": field_of(form, "every", 8)}
    try:
        # 0 would read as "the reason's own" in put_on_plan: a typed number must be 1-366.
        if typed["every"] and not (typed["every"].isdigit() and 1 <= int(typed["every"]) <= 366):
            raise _Refused("every", ui.t("hh_plan_bad_every"))
        async with runtime.sessions.begin() as session:
            household = await in_scope(session, who, household_id)
            if (
                household is None
                or who.officer is None
                or not await visits.may_see_plan(session, viewer=who.officer, household=household)
            ):
                return not_found(ui, who)
            done = "duplicate"
            if await first_use(session, who, form, now):
                plan = await visits.put_on_plan(
                    session,
                    settings=runtime.settings.visits,
                    household_id=household_id,
                    reason=typed["reason"],
                    every_days=int(typed["every"]) if typed["every"] else None,
                    officer_id=None,
                    by=who.actor.key,
                    now=now,
                )
                audit_household(  # the reason stays out, as in the chat
                    session,
                    who,
                    now=now,
                    action="plan_put_on",
                    household_id=household_id,
                    detail=f"every {plan.every_days} d",
                )
                done = "planned"
    except (_Refused, visits.VisitError) as exc:
        return await _again(who, runtime, household_id, ui, exc, typed)
    return _back(household_id, done)


@router.post("/households/{household_id}/plan/off", include_in_schema=False)
async def plan_off(
    household_id: int = HOUSEHOLD,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Take the household off its visit plan."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions.begin() as session:
        household = await in_scope(session, who, household_id)
        if (
            household is None
            or who.officer is None
            or not await visits.may_see_plan(session, viewer=who.officer, household=household)
        ):
            return not_found(ui, who)
        done = "duplicate"
        if await first_use(session, who, form, now):
            ended = await visits.take_off_plan(
                session, household_id=household_id, by=who.actor.key, now=now
            )
            if ended:
                audit_household(
                    session,
                    who,
                    now=now,
                    action="plan_taken_off",
                    household_id=household_id,
                )
            done = "unplanned" if ended else "no_plan"
    return _back(household_id, done)
