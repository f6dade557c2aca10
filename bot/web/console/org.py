"""組織: the stations of the viewer's scope as a tree with their officers (on duty now, numbers
masked) and groups; a station's page with its roster as a week in local time, and for editors
(admins, leaders within their subtree) the forms to add, change or remove a duty slot and to
give a group another officer. Every change goes through bot/services/directory_changes.py (the
loader's own code), once per rendered form, audited; officers read only. A station or group
outside the viewer's scope answers 404, as one that does not exist. The directory file upload is
org_upload.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from bot.pii import mask_phone
from bot.runtime import Runtime
from bot.services import audit
from bot.services.console_sessions import use_form
from bot.services.directory_changes import (
    GROUP_OFFICER_CHANGED,
    ROSTER_EDITED,
    DirectoryError,
    EditRefused,
    edit_roster,
    set_group_officer,
)
from bot.services.directory_check import DAYS
from bot.services.stats import StatsInputError, parse_day
from bot.web.console.org_data import (
    monday_of,
    officer_choices,
    org_scope,
    read_directory,
    station_roster,
    station_tz,
    week_view,
)
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, posted_form, viewer
from bot.web.deps import get_runtime
from models.directory import Group, Station

router = APIRouter()
BASE = "/console/organisation"
SLOT_FIELDS = ("officer", "date", "from", "to")


@dataclass
class FormState:
    """A refused form: which one (``form``: ``add``, a slot's key, or a group's id), the
    reasons beside its fields and what was typed."""

    form: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    status_code: int = 200


def _text(form: FormData, name: str, limit: int = 300) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def directory_reason(ui: Ui, exc: DirectoryError) -> str:
    """The loader's reason in the viewer's script."""
    params = {k: str(v) for k, v in exc.params.items()}
    return ui.t(f"dir_{exc.code}", **params)


def reason_field(exc: DirectoryError) -> str:
    """The form field a loader's refusal of a roster slot is about."""
    if exc.code in ("bad_time", "missing_key"):
        return str(exc.params.get("key", "form"))
    return {
        "days_or_date": "days",
        "bad_days": "days",
        "bad_date": "date",
        "date_out_of_range": "date",
        "unknown_officer": "officer",
    }.get(exc.code, "form")


@router.get("/organisation", include_in_schema=False)
async def tree(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The stations of the viewer's scope as a tree, each with its officers and groups."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        scope = await org_scope(session, who)
        directory = await read_directory(session, scope, now=now, tz=runtime.settings.tz)
    masked = {
        o.id: mask_phone(runtime.cipher.decrypt(o.phone_enc) or "") if o.phone_enc else ""
        for node in directory.nodes
        for o in node.officers
    }
    return page(
        "org.html",
        ui=ui,
        viewer=who,
        active="organisation",
        here=BASE,
        directory=directory,
        scope=scope,
        masked=masked,
        done=request.query_params.get("done", "")[:16],
    )


@router.get("/organisation/stations/{station_id}", include_in_schema=False)
async def station_page(
    station_id: str,
    request: Request,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A station: officers, groups and the roster's week (``?week=`` any day of it)."""
    return await render_station(request, who, runtime, station_id[:64], FormState())


async def render_station(
    request: Request, who: Viewer, runtime: Runtime, station_id: str, state: FormState
) -> Response:
    """The station's page, with a refused form's reasons and values."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions.begin() as session:
        scope = await org_scope(session, who)
        if not scope.sees(station_id) or await session.get(Station, station_id) is None:
            return not_found(ui, who)
        directory = await read_directory(session, scope, now=now, tz=runtime.settings.tz)
        node = next(n for n in directory.nodes if n.station.id == station_id)
        tz = station_tz(node.station, runtime.settings.tz)
        typed_week = request.query_params.get("week", "")[:10]
        today = now.astimezone(tz).date()
        monday = monday_of(today)
        if typed_week:
            # The API's and 統計's rule for a date: the week either side of 0001-01-01 or
            # 9999-12-31 (the page's links) overflowed into a 500.
            try:
                monday = monday_of(parse_day("week", typed_week))
            except StatsInputError as exc:
                key = "org_week_out_of_range" if exc.out_of_range else "org_bad_week"
                state.errors.setdefault("week", ui.t(key))
                state.status_code = max(state.status_code, 400)
        roster = await station_roster(session, station_id)
        week = week_view(roster, monday)
        editable = scope.edits(station_id)
        show_phones = editable and request.query_params.get("phones") == "1"
        phones: dict[str, str] = {}
        for officer in node.officers:
            number = runtime.cipher.decrypt(officer.phone_enc) if officer.phone_enc else ""
            phones[officer.id] = (number if show_phones else mask_phone(number)) if number else ""
        if show_phones and any(phones.values()):
            audit.record(
                session,
                now=now,
                action="personal_data_shown",
                account=who.account,
                target=f"station:{station_id}",
                detail="officer_phones",
                ip=who.ip,
            )
        choices = await officer_choices(session, scope, directory) if editable else {}
    return page(
        "org_station.html",
        ui=ui,
        viewer=who,
        active="organisation",
        here=f"{BASE}/stations/{station_id}?" + urlencode({"week": monday.isoformat()}),
        node=node,
        directory=directory,
        week=week,
        node_roster=roster,
        days=DAYS,
        editable=editable,
        phones=phones,
        show_phones=show_phones,
        choices=choices,
        state=state,
        done=request.query_params.get("done", "")[:16],
        status_code=state.status_code,
    )


def _slot_of_form(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    """The slot a roster form describes, as a directory file would say it, and what was typed."""
    typed: dict[str, Any] = {k: _text(form, k, 64) for k in SLOT_FIELDS}
    typed["days"] = [d for d in form.getlist("days") if isinstance(d, str)][:7]
    slot: dict[str, Any] = {"officer": typed["officer"], "from": typed["from"], "to": typed["to"]}
    if typed["date"]:
        slot["date"] = typed["date"]
    if typed["days"]:
        slot["days"] = typed["days"]
    return slot, typed


@router.post("/organisation/stations/{station_id}/roster", include_in_schema=False)
async def roster_edit(
    station_id: str,
    request: Request,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Add (``action=add``), change or remove (``slot``: the slot's key) one duty slot."""
    who, form = posted
    station_id = station_id[:64]
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    action = _text(form, "action", 16)
    key = _text(form, "slot", 300) or None
    slot, typed = _slot_of_form(form)
    state = FormState(form=key or "add", values=typed, status_code=400)
    try:
        async with runtime.sessions.begin() as session:
            scope = await org_scope(session, who)
            if not scope.edits(station_id) or action not in ("add", "change", "remove"):
                return not_found(ui, who)
            directory = await read_directory(session, scope, now=now, tz=runtime.settings.tz)
            if action != "remove" and slot["officer"] not in await officer_choices(
                session, scope, directory
            ):
                state.errors["officer"] = ui.t("org_bad_choice")
                raise EditRefused("org_fix_fields")
            if not await use_form(
                session, nonce=_text(form, "nonce", 64), account_id=who.account.id, now=now
            ):
                done = "duplicate"
            else:
                await edit_roster(
                    session,
                    station_id,
                    remove=key if action != "add" else None,
                    add=slot if action != "remove" else None,
                )
                audit.record(
                    session,
                    now=now,
                    action=ROSTER_EDITED,
                    account=who.account,
                    target=f"station:{station_id}",
                    detail=_audit_detail(action, key, slot),
                    ip=who.ip,
                )
                done = f"roster_{action}"
    except EditRefused as exc:
        if exc.key != "org_fix_fields":
            state.errors["form"] = ui.t(exc.key)
        return await render_station(request, who, runtime, station_id, state)
    except DirectoryError as exc:
        state.errors[reason_field(exc)] = directory_reason(ui, exc)
        return await render_station(request, who, runtime, station_id, state)
    week = _text(form, "week", 10)
    return RedirectResponse(
        f"{BASE}/stations/{station_id}?" + urlencode({"week": week, "done": done}),
        status_code=303,
    )


def _audit_detail(action: str, key: str | None, slot: dict[str, Any]) -> str:
    """What changed, by ids and hours (no personal data)."""
    when = slot.get("date") or ",".join(slot.get("days") or [])
    new = f"{slot['officer']} {when} {slot['from']}-{slot['to']}" if action != "remove" else ""
    return " ".join(part for part in (action, key or "", new) if part)[:500]


@router.post("/organisation/groups/{group_id}/officer", include_in_schema=False)
async def group_officer(
    group_id: str,
    request: Request,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Give a group another officer (or none)."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    officer = _text(form, "officer", 64)
    async with runtime.sessions.begin() as session:
        scope = await org_scope(session, who)
        group = await session.get(Group, group_id[:128])
        if group is None or not scope.edits(group.station_id):
            return not_found(ui, who)
        station_id = group.station_id
        before = group.officer_id
        directory = await read_directory(session, scope, now=now, tz=runtime.settings.tz)
        # The group's present officer may stay even when from outside the editor's stations.
        valid = officer in ("", before) or officer in await officer_choices(
            session, scope, directory
        )
        if valid and await use_form(
            session, nonce=_text(form, "nonce", 64), account_id=who.account.id, now=now
        ):
            await set_group_officer(session, group, officer or None)
            audit.record(
                session,
                now=now,
                action=GROUP_OFFICER_CHANGED,
                account=who.account,
                target=f"group:{group.id}",
                detail=f"{before or '-'} -> {officer or '-'}",
                ip=who.ip,
            )
            done = "group"
        else:
            done = "duplicate"
    if not valid:
        state = FormState(
            form=group_id,
            errors={"officer": ui.t("org_bad_choice")},
            values={"officer": officer},
            status_code=400,
        )
        return await render_station(request, who, runtime, station_id, state)
    week = _text(form, "week", 10)
    return RedirectResponse(
        f"{BASE}/stations/{station_id}?" + urlencode({"week": week, "done": done}),
        status_code=303,
    )
