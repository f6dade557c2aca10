"""緊急通報: urgent notices — the list (newest first, state, delivery totals), the form that
sends one (text, an optional photo or video from this computer, a scope picked by name, a
preview of the groups reached before anything is sent), and a notice's page: delivery per
group and the clue tickets residents' answers opened, refreshing itself, and recall (撤回).

One implementation: sending is ``broadcasts.alerts.send_alert`` (its checks ``check_text`` and
``alert_groups`` make the preview), recall ``recall_alert`` with ``may_recall`` deciding who
may, as the chat's ``緊急通報`` / ``撤回通報`` and ``POST /api/v1/alerts…`` do; states are
``broadcasts.alert_views``, the API's. Uploads go through ``broadcasts.media`` as the 公告
form's do. Nothing here waits for rate limits or pacing: the service queues at priority 0.

Admins send to the county; leaders to their station and the stations below it (stations or
groups by name); officers see the notices that reach their groups. A notice outside the
viewer's scope answers 404, like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot.runtime import Runtime
from bot.services import audit
from bot.services.console_sessions import tokens_match, use_form
from bot.settings import BulletinSettings
from bot.texts import detect_script
from bot.web.console import alert_lines as lines
from bot.web.console.alert_lines import AlertForm
from bot.web.console.bulletin_form import megabytes
from bot.web.console.bulletin_media import receive_media
from bot.web.console.bulletin_views import choices
from bot.web.console.bulletin_warnings import media_warning_words
from bot.web.console.bulletins_page import FILE_FIELD, HARD_LIMIT
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.uploads import UploadForm, read_upload_form
from bot.web.console.viewer import CsrfRefused, Viewer, passive_viewer, posted_form, viewer
from bot.web.deps import get_runtime
from broadcasts.alerts import (
    MEDIA_KINDS,
    alert_groups,
    check_text,
    may_recall,
    recall_alert,
    send_alert,
)
from broadcasts.bulletins import Problem
from broadcasts.media import StoredMedia, stored_media
from models.bulletins import Alert
from models.console import AuditEntry
from models.directory import Group

router = APIRouter()
ALERT_ID = Path(pattern=r"^\d{1,9}$")
DONE = {"sent", "recalled", "duplicate", "refused"}
REASON_MAX = 1000
# A notice's deliveries change by the second while it goes out: its panel refreshes this
# often (or every console.refresh_s, when that is shorter).
POLL_S = 5


async def posted_upload(
    request: Request,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> tuple[Viewer, UploadForm]:
    """The form as posted (``multipart/form-data``, at most one file), its ``csrf_token``
    checked as every console form's. Someone who may not send has nothing read (404)."""
    if not lines.may_send(who):
        return who, UploadForm()
    limit = runtime.settings.bulletins.max_upload_bytes
    form = await read_upload_form(
        request,
        file_field=FILE_FIELD,
        file_limit=limit,
        field_limit=runtime.settings.server.max_body_bytes,
        hard_limit=max(HARD_LIMIT, 2 * limit),
    )
    if not tokens_match(who.csrf_token, form.get("csrf_token") or None):
        raise CsrfRefused(who.script)
    return who, form


async def _find(session: AsyncSession, who: Viewer, raw_id: str) -> Alert | None:
    """A notice the viewer may see, or None (absent and out of scope alike)."""
    alert = await session.get(Alert, int(raw_id))
    if alert is None or not await lines.visible(session, who, alert):
        return None
    return alert


# --- the list --------------------------------------------------------------------------------
@router.get("/alerts", include_in_schema=False)
async def alert_list(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The notices of the viewer's scope, newest first, with their state and delivery."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        found = await session.scalars(
            select(Alert).where(Alert.kind == "alert").order_by(Alert.id.desc())
        )
        shown = [a for a in found if await lines.visible(session, who, a)][: lines.LIST_SIZE]
        names = await lines.Names.read(session)
        tokens = await lines.token_names(session)
        rows = [await lines.line(session, a, ui=ui, names=names, tokens=tokens) for a in shown]
    done = request.query_params.get("done")
    return page(
        "alerts.html",
        ui=ui,
        viewer=who,
        active="alerts",
        here="/console/alerts",
        rows=rows,
        may_send=lines.may_send(who),
        done=done if done in DONE else None,
    )


# --- a notice's page and its refreshing panel ------------------------------------------------
async def _audit_words(
    session: AsyncSession, who: Viewer, codes: list[str], now: datetime, *, refresh: bool
) -> None:
    """Each clue whose words are shown is a showing of personal data, as on the ticket page.
    The panel's own refreshes re-show words already on the screen: they record only clues
    not yet recorded for this sign-in, so a screen left open does not fill the log."""
    if refresh and codes:
        seen = set(
            await session.scalars(
                select(AuditEntry.target).where(
                    AuditEntry.account_id == who.account.id,
                    AuditEntry.action == audit.PERSONAL_DATA_SHOWN,
                    AuditEntry.at >= who.session.created_at,
                    AuditEntry.target.in_([f"ticket:{c}" for c in codes]),
                )
            )
        )
        codes = [c for c in codes if f"ticket:{c}" not in seen]
    for code in codes:
        audit.record(
            session,
            now=now,
            action=audit.PERSONAL_DATA_SHOWN,
            account=who.account,
            target=f"ticket:{code}",
            detail="words",
            ip=who.ip,
        )


async def _render_alert(
    who: Viewer,
    runtime: Runtime,
    alert_id: str,
    template: str,
    *,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Response:
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions.begin() as session:
        alert = await _find(session, who, alert_id)
        if alert is None:
            return not_found(ui, who)
        names = await lines.Names.read(session)
        tokens = await lines.token_names(session)
        info = await lines.line(session, alert, ui=ui, names=names, tokens=tokens)
        clues = await lines.clues(session, who, alert, ui=ui, names=names)
        shown = [c.code for c in clues if c.words is not None]
        await _audit_words(session, who, shown, now, refresh=template != "alert.html")
        followups = list(
            await session.scalars(
                select(Alert).where(Alert.parent_id == alert.id).order_by(Alert.id)
            )
        )
        recall = await lines.may_recall_here(session, who, alert)
    media = None
    if alert.media:
        media = stored_media(runtime.settings.bulletins.media_folder, alert.media.get("url", ""))
    return page(
        template,
        ui=ui,
        viewer=who,
        active="alerts",
        here=f"/console/alerts/{alert.id}",
        a=alert,
        info=info,
        clues=clues,
        followups=followups,
        media=media,
        media_url=(alert.media or {}).get("url"),
        media_kind=(alert.media or {}).get("type"),
        may_recall=recall,
        done=done,
        errors=errors or {},
        reason=reason,
        reason_max=REASON_MAX,
        poll_s=min(POLL_S, int(runtime.settings.console.refresh_s)),
        status_code=status_code,
    )


@router.get("/alerts/new", include_in_schema=False)
async def new_alert(
    who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """An empty form."""
    if not lines.may_send(who):
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return await _render_form(who, runtime, AlertForm())


@router.get("/alerts/{alert_id}", include_in_schema=False)
async def alert_page(
    request: Request,
    alert_id: str = ALERT_ID,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A notice: what it said, to whom, by whom; delivery per group and the clues (the
    panel refreshes itself); its corrections and recall; the recall form."""
    done = request.query_params.get("done")
    return await _render_alert(
        who, runtime, alert_id, "alert.html", done=done if done in DONE else None
    )


@router.get("/alerts/{alert_id}/panel", include_in_schema=False)
async def alert_panel(
    alert_id: str = ALERT_ID,
    who: Viewer = Depends(passive_viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The delivery and clues panel alone, for its periodic refresh (not use of the
    session: an unattended screen still signs out)."""
    return await _render_alert(who, runtime, alert_id, "_alert_panel.html")


@router.post("/alerts/{alert_id}/recall", include_in_schema=False)
async def recall(
    alert_id: str = ALERT_ID,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """撤回: once per rendered form, with the box ticked. The service withdraws the copies
    not yet sent and sends the groups that had it (or were being sent it) a recall notice."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    nonce, reason = form.get("nonce"), form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    errors: dict[str, str] = {}
    if form.get("confirm") != "1":
        errors["confirm"] = ui.t("al_recall_confirm_missing")
    if len(reason) > REASON_MAX:
        errors["reason"] = ui.t("bf_too_long", limit=REASON_MAX)
    done = "recalled"
    try:
        async with runtime.sessions.begin() as session:
            alert = await _find(session, who, alert_id)
            if alert is None or not lines.may_send(who):
                return not_found(ui, who)
            if not await may_recall(
                session, alert, authors=lines.authors(who), within=lines.within(who)
            ):
                return not_found(ui, who)
            if errors:
                raise _Refused
            if not await use_form(
                session,
                nonce=nonce if isinstance(nonce, str) else "",
                account_id=who.account.id,
                now=now,
            ):
                done = "duplicate"
            else:
                _notice, count, withdrawn = await recall_alert(
                    session,
                    runtime=runtime,
                    alert=alert,
                    reason=reason,
                    created_by=f"console:{who.account.username}",
                    now=now,
                )
                audit.record(
                    session,
                    now=now,
                    action="alert_recalled",
                    account=who.account,
                    target=f"alert:{alert.id}",
                    detail=f"told={count} withdrew={withdrawn}",
                    ip=who.ip,
                )
    except _Refused:
        return await _render_alert(
            who, runtime, alert_id, "alert.html", errors=errors, reason=reason, status_code=400
        )
    except Problem:
        done = "refused"
    runtime.wake_outbox(urgent=True)  # priority 0: the urgent lane
    return RedirectResponse(f"/console/alerts/{alert_id}?done={done}", status_code=303)


class _Refused(Exception):
    """The recall form was refused: roll back (nothing used, nothing changed)."""


# --- the form --------------------------------------------------------------------------------
async def _render_form(
    who: Viewer,
    runtime: Runtime,
    form: AlertForm,
    *,
    errors: dict[str, str] | None = None,
    media: StoredMedia | None = None,
    reached: list[tuple[str, str]] | None = None,
    message: str = "",
    previewed: str = "",
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        picks = await choices(session, lines.within(who))
    options = runtime.settings.bulletins
    return page(
        "alert_new.html",
        ui=ui,
        viewer=who,
        active="alerts",
        here="/console/alerts/new",
        form=form,
        errors=errors or {},
        picks=picks,
        media=media,
        megabytes=megabytes,
        limit=megabytes(options.max_upload_bytes),
        reached=reached,
        message=message,
        previewed=previewed,
        notice=notice,
        warnings=media_warning_words([media.url], options, ui) if reached and media else [],
        status_code=status_code,
    )


async def _media(
    posted: UploadForm, form: AlertForm, options: BulletinSettings, ui: Ui
) -> tuple[StoredMedia | None, str | None]:
    """The notice's photo or video: a picture or a video only (the service's MEDIA_KINDS)."""
    kept = stored_media(options.media_folder, form.media_url) if form.media_url else None
    return await receive_media(
        posted, form, options, ui, kept=kept, kinds=MEDIA_KINDS, wrong_kind=ui.t("al_media_kind")
    )


@router.post("/alerts/new", include_in_schema=False)
async def submit_alert(
    submitted: tuple[Viewer, UploadForm] = Depends(posted_upload),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """預覽 (``step=preview``) shows the groups the notice would reach; 確認發送
    (``step=send``) sends exactly that — once per rendered form; a form changed since its
    preview is previewed again. Refusals come back beside their fields, nothing sent."""
    who, posted = submitted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    if not lines.may_send(who):
        return not_found(ui, who)
    options = runtime.settings.bulletins
    form = AlertForm.read(posted)
    media, media_refused = await _media(posted, form, options, ui)
    errors: dict[str, str] = {}
    if media_refused:
        errors["media"] = media_refused
    scope = form.scope()
    reached: list[Group] = []
    async with runtime.sessions() as session:
        names = (await lines.Names.read(session)).all()
        try:
            check_text(form.text)
        except Problem as problem:
            where, why = lines.problem_error(problem, ui, names)
            errors[where] = why
        if scope is None:
            errors["scope"] = ui.t("al_scope_missing")
        else:
            try:
                reached = await alert_groups(session, scope, within=lines.within(who))
            except Problem as problem:
                where, why = lines.problem_error(problem, ui, names)
                errors[where] = why
    if errors or scope is None:
        return await _render_form(who, runtime, form, errors=errors, media=media, status_code=400)
    spec_media = {"type": media.kind, "url": media.url, "title": None} if media else None
    fingerprint = form.digest(scope, spec_media)
    notice = None
    if posted.get("step") == "send" and posted.get("previewed") == fingerprint:
        try:
            async with runtime.sessions.begin() as session:
                if not await use_form(
                    session, nonce=posted.get("nonce"), account_id=who.account.id, now=now
                ):
                    return RedirectResponse("/console/alerts?done=duplicate", status_code=303)
                alert, count = await send_alert(
                    session,
                    runtime=runtime,
                    scope=scope,
                    text=form.text,
                    media=spec_media,
                    created_by=f"console:{who.account.username}",
                    now=now,
                    within=lines.within(who),
                )
                audit.record(
                    session,
                    now=now,
                    action="alert_sent",
                    account=who.account,
                    target=f"alert:{alert.id}",
                    detail=f"groups={count}",
                    ip=who.ip,
                )
        except Problem as problem:
            where, why = lines.problem_error(problem, ui, names)
            return await _render_form(
                who, runtime, form, errors={where: why}, media=media, status_code=400
            )
        # Once committed: the worker wakes to rows it can see.
        runtime.wake_outbox(urgent=True)  # priority 0: the urgent lane
        return RedirectResponse(f"/console/alerts/{alert.id}?done=sent", status_code=303)
    if posted.get("step") == "send":
        notice = "al_changed_since_preview"
    stations = {g.id: names.get(g.station_id, "") for g in reached}
    message = runtime.texts.render(
        "alert_message", detect_script(form.text), id="…", text=form.text
    )
    return await _render_form(
        who,
        runtime,
        form,
        media=media,
        reached=sorted((stations[g.id], g.name) for g in reached),
        message=message,
        previewed=fingerprint,
        notice=notice,
    )
