"""公告: scheduled bulletins — the list (state, next send time, delivery per group), a
bulletin's page (its runs, cancel, pause, resume) and the form that creates or edits one,
with a preview of the groups reached and the next five send times before anything is saved.

One implementation: the form becomes a ``BulletinSpec`` and goes to ``build_bulletin`` /
``create_bulletin`` (an edit: ``update_bulletin``, as ``PATCH``) and ``preview_draft``, the
functions behind ``POST /api/v1/bulletins`` and ``POST /api/v1/bulletins/preview``; uploads go
through ``broadcasts.media.save_upload`` as ``POST /api/v1/media`` does; cancel, pause and
resume call the service as the API does.

Admins schedule for the county; leaders for their station and the stations below it (groups
or stations, not tags: a tag reaches the whole county); officers see what goes to their
groups. A bulletin outside the viewer's scope answers 404, like one that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot.runtime import Runtime
from bot.services import audit
from bot.services.console_sessions import tokens_match, use_form
from bot.web.console import bulletin_views as views
from bot.web.console.bulletin_form import (
    CATEGORIES,
    WEEKDAYS,
    BulletinForm,
    digest,
    megabytes,
    problem_errors,
    to_spec,
    when,
)
from bot.web.console.bulletin_media import form_media, kept_media
from bot.web.console.bulletin_warnings import preview_view
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.uploads import UploadForm, read_upload_form
from bot.web.console.viewer import CsrfRefused, Viewer, posted_form, viewer
from bot.web.deps import get_runtime
from broadcasts.bulletin_preview import Preview, preview_bulletin, preview_draft
from broadcasts.bulletins import (
    Conflict,
    Problem,
    cancel_bulletin,
    create_bulletin,
    pause_bulletin,
    replacing,
    resume_bulletin,
    update_bulletin,
    within_reach,
)
from broadcasts.media import StoredMedia
from models.bulletins import Bulletin

router = APIRouter()
BULLETIN_ID = Path(pattern=r"^\d{1,9}$")
ACTIONS = ("cancel", "pause", "resume")
DONE = {"created", "edited", "cancelled", "paused", "resumed", "duplicate", "refused"}
# The file field of the form; files beyond the upload limit are read (and counted) up to
# this much so that the typed form still comes back with the reason.
FILE_FIELD = "media_file"
HARD_LIMIT = 1024 * 1024 * 1024


async def posted_upload(
    request: Request,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> tuple[Viewer, UploadForm]:
    """The 公告 form as posted (``multipart/form-data`` with at most one file), after
    checking its ``csrf_token`` as every console form's. The body of someone who may not
    schedule is not read at all (the route answers 404)."""
    if not views.may_schedule(who):
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


# --- the list and a bulletin's page ------------------------------------------------------------
@router.get("/bulletins", include_in_schema=False)
async def bulletin_list(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Bulletins of the viewer's scope, newest first: state, schedule, next send time, and
    the latest run's delivery per group."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    status = request.query_params.get("status", "current")
    status = status if status in views.LIST_STATUSES else "current"
    done = request.query_params.get("done")
    page_no = request.query_params.get("page", "1")
    page_no_int = int(page_no) if page_no.isdigit() and 0 < int(page_no) < 10_000 else 1
    async with runtime.sessions() as session:
        found = list(
            await session.scalars(
                select(Bulletin)
                .where(Bulletin.status.in_(views.status_filter(status)))
                .order_by(Bulletin.id.desc())
            )
        )
        shown = [b for b in found if await views.visible(session, who, b)]
        pages = max(1, -(-len(shown) // views.PAGE_SIZE))
        page_no_int = min(page_no_int, pages)
        start = (page_no_int - 1) * views.PAGE_SIZE
        names = (await views.choices(session, None)).names
        authors = await views.author_names(session)
        lines = [
            await views.line(session, who, b, ui=ui, names=names, authors=authors, now=now)
            for b in shown[start : start + views.PAGE_SIZE]
        ]
    return page(
        "bulletins.html",
        ui=ui,
        viewer=who,
        active="bulletins",
        here=f"/console/bulletins?status={status}",
        lines=lines,
        total=len(shown),
        status=status,
        statuses=views.LIST_STATUSES,
        may_schedule=views.may_schedule(who),
        done=done if done in DONE else None,
        when=lambda at: when(at, ui),
        page_no=page_no_int,
        pages=pages,
        query=f"status={status}",
    )


async def _find(session: AsyncSession, who: Viewer, raw_id: str) -> Bulletin | None:
    """A bulletin the viewer may see, or None (absent and out of scope alike)."""
    bulletin = await session.get(Bulletin, int(raw_id))
    if bulletin is None or not await views.visible(session, who, bulletin):
        return None
    return bulletin


@router.get("/bulletins/new", include_in_schema=False)
async def new_bulletin(
    who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """An empty form: weekly at 09:00 is the usual choice."""
    if not views.may_schedule(who):
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return await _render_form(who, runtime, BulletinForm())


@router.get("/bulletins/{bulletin_id}", include_in_schema=False)
async def bulletin_page(
    request: Request,
    bulletin_id: str = BULLETIN_ID,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """A bulletin: what it says, to whom, when; the next five send times; every run with
    its delivery per group; cancel, pause, resume."""
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        bulletin = await _find(session, who, bulletin_id)
        if bulletin is None:
            return not_found(ui, who)
        names = (await views.choices(session, None)).names
        authors = await views.author_names(session)
        info = await views.line(
            session, who, bulletin, ui=ui, names=names, authors=authors, now=now
        )
        preview = await preview_bulletin(session, runtime=runtime, bulletin=bulletin, now=now)
        runs = await views.run_lines(session, bulletin, names=names, now=now)
    done = request.query_params.get("done")
    return page(
        "bulletin.html",
        ui=ui,
        viewer=who,
        active="bulletins",
        here=f"/console/bulletins/{bulletin.id}",
        b=bulletin,
        info=info,
        preview=preview_view(preview, bulletin, ui, names),
        runs=runs,
        done=done if done in DONE else None,
        when=lambda at: when(at, ui),
    )


# Before /{action}: its pattern would refuse `edit` with a 422 instead of passing it on.
@router.get("/bulletins/{bulletin_id}/edit", include_in_schema=False)
async def edit_bulletin_form(
    bulletin_id: str = BULLETIN_ID,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The 公告 form filled in with a bulletin that is not cancelled, for those who may
    pause or cancel it."""
    async with runtime.sessions() as session:
        bulletin = await _editable(session, who, bulletin_id)
    if bulletin is None:
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    form = BulletinForm.of(bulletin, runtime.settings.tz)
    options = runtime.settings.bulletins
    media = kept_media(form, bulletin, options)
    return await _render_form(who, runtime, form, media=media, editing=bulletin)


@router.post("/bulletins/{bulletin_id}/edit", include_in_schema=False)
async def submit_edit(
    bulletin_id: str = BULLETIN_ID,
    submitted: tuple[Viewer, UploadForm] = Depends(posted_upload),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The edit's 預覽 and 保存, exactly as a new bulletin's; saving replaces the bulletin's
    title, category, text, media, targets and schedule (``update_bulletin``, as ``PATCH
    /api/v1/bulletins/ID``); runs already sent keep what they sent."""
    who, posted = submitted
    async with runtime.sessions() as session:
        bulletin = await _editable(session, who, bulletin_id)
    if bulletin is None:
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return await _submit(who, posted, runtime, editing=bulletin)


async def _editable(session: AsyncSession, who: Viewer, raw_id: str) -> Bulletin | None:
    """A bulletin the viewer may change: visible, not cancelled, wholly within their
    stations; None otherwise (a 404 like one that does not exist)."""
    bulletin = await _find(session, who, raw_id)
    if (
        bulletin is None
        or bulletin.status == "cancelled"
        or not views.may_schedule(who)
        or not await within_reach(session, bulletin, views.within(who))
    ):
        return None
    return bulletin


@router.post("/bulletins/{bulletin_id}/{action}", include_in_schema=False)
async def bulletin_action(
    bulletin_id: str = BULLETIN_ID,
    action: str = Path(pattern="^(" + "|".join(ACTIONS) + ")$"),
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Cancel (for good), pause or resume, once per rendered form; the service's own rules
    refuse what the bulletin's state forbids."""
    who, form = posted
    now = runtime.clock.now()
    nonce = form.get("nonce")
    target = f"/console/bulletins/{bulletin_id}"
    done = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}[action]
    try:
        async with runtime.sessions.begin() as session:
            bulletin = await _find(session, who, bulletin_id)
            if (
                bulletin is None
                or not views.may_schedule(who)
                or not await within_reach(session, bulletin, views.within(who))
            ):
                return not_found(Ui(runtime, who.script, now), who)
            used = await use_form(
                session,
                nonce=nonce if isinstance(nonce, str) else "",
                account_id=who.account.id,
                now=now,
            )
            if not used:
                done = "duplicate"
            else:
                if action == "cancel":
                    await cancel_bulletin(session, bulletin=bulletin, now=now)
                elif action == "pause":
                    await pause_bulletin(session, bulletin=bulletin, now=now)
                else:
                    await resume_bulletin(
                        session, bulletin=bulletin, tz=runtime.settings.tz, now=now
                    )
                audit.record(
                    session,
                    now=now,
                    action=f"bulletin_{done}",
                    account=who.account,
                    target=f"bulletin:{bulletin.id}",
                    ip=who.ip,
                )
    except Conflict:
        done = "refused"
    if done == "resumed":
        runtime.outbox_wakeup.set()
    return RedirectResponse(f"{target}?done={done}", status_code=303)


# --- the form ----------------------------------------------------------------------------------
async def _render_form(
    who: Viewer,
    runtime: Runtime,
    form: BulletinForm,
    *,
    errors: dict[str, str] | None = None,
    media: StoredMedia | None = None,
    preview: Preview | None = None,
    draft: Bulletin | None = None,
    previewed: str = "",
    notice: str | None = None,
    editing: Bulletin | None = None,
    status_code: int = 200,
) -> Response:
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        picks = await views.choices(session, views.within(who))
    options = runtime.settings.bulletins
    return page(
        "bulletin_new.html",
        ui=ui,
        viewer=who,
        active="bulletins",
        here=f"/console/bulletins/{editing.id}/edit" if editing else "/console/bulletins/new",
        form=form,
        editing=editing,
        errors=errors or {},
        picks=picks,
        categories=CATEGORIES,
        weekdays=WEEKDAYS,
        media=media,
        megabytes=megabytes,
        limit=megabytes(options.max_upload_bytes),
        preview=preview_view(preview, draft, ui, picks.names) if preview and draft else None,
        previewed=previewed,
        notice=notice,
        status_code=status_code,
    )


@router.post("/bulletins/new", include_in_schema=False)
async def submit_bulletin(
    submitted: tuple[Viewer, UploadForm] = Depends(posted_upload),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """預覽 (``step=preview``) shows what would be saved; 保存 (``step=save``) saves it —
    once per rendered form, and only what the preview showed: a form changed since its
    preview is previewed again instead of saved. Refusals come back beside their fields."""
    who, posted = submitted
    if not views.may_schedule(who):
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return await _submit(who, posted, runtime, editing=None)


async def _submit(
    who: Viewer, posted: UploadForm, runtime: Runtime, *, editing: Bulletin | None
) -> Response:
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    options = runtime.settings.bulletins
    form = BulletinForm.read(posted)
    media, media_refused = await form_media(posted, form, options, ui, editing)
    outcome = to_spec(form, tz=runtime.settings.tz, media=media, ui=ui)
    errors = dict(outcome.errors)
    if media_refused:
        errors["media"] = media_refused
    spec = outcome.spec
    if spec is None or errors:
        return await _render_form(
            who, runtime, form, errors=errors, media=media, editing=editing, status_code=400
        )
    fingerprint = digest(spec)
    limit = views.within(who)
    saving = posted.get("step") == "save"
    notice = None
    back = f"/console/bulletins/{editing.id}" if editing else "/console/bulletins"
    if saving and posted.get("previewed") == fingerprint:
        try:
            async with runtime.sessions.begin() as session:
                nonce = posted.get("nonce")
                if not await use_form(session, nonce=nonce, account_id=who.account.id, now=now):
                    return RedirectResponse(f"{back}?done=duplicate", status_code=303)
                if editing is None:
                    bulletin = await create_bulletin(
                        session,
                        spec=spec,
                        tz=runtime.settings.tz,
                        created_by=f"console:{who.account.username}",
                        now=now,
                        media_dir=runtime.settings.bulletins.media_folder,
                        within=limit,
                    )
                else:
                    current = await _editable(session, who, str(editing.id))
                    if current is None:
                        raise Conflict("no longer editable")
                    bulletin = await update_bulletin(
                        session,
                        bulletin=current,
                        patch=replacing(spec),
                        tz=runtime.settings.tz,
                        now=now,
                        media_dir=runtime.settings.bulletins.media_folder,
                        within=limit,
                    )
                done = "created" if editing is None else "edited"
                audit.record(
                    session,
                    now=now,
                    action=f"bulletin_{done}",
                    account=who.account,
                    target=f"bulletin:{bulletin.id}",
                    ip=who.ip,
                )
        except Problem as problem:
            return await _problem(who, runtime, form, problem, media, ui, editing)
        except Conflict:
            return RedirectResponse(f"{back}?done=refused", status_code=303)
        return RedirectResponse(f"/console/bulletins/{bulletin.id}?done={done}", status_code=303)
    if saving:
        notice = "bf_changed_since_preview"
    try:
        async with runtime.sessions() as session:
            draft, preview = await preview_draft(
                session, runtime=runtime, spec=spec, now=now, within=limit
            )
    except Problem as problem:
        return await _problem(who, runtime, form, problem, media, ui, editing)
    return await _render_form(
        who,
        runtime,
        form,
        media=media,
        preview=preview,
        draft=draft,
        previewed=fingerprint,
        notice=notice,
        editing=editing,
    )


async def _problem(
    who: Viewer,
    runtime: Runtime,
    form: BulletinForm,
    problem: Problem,
    media: StoredMedia | None,
    ui: Ui,
    editing: Bulletin | None,
) -> Response:
    """The form again with the service's refusal beside its field (400); nothing saved."""
    async with runtime.sessions() as session:
        names = (await views.choices(session, None)).names
    errors = problem_errors(problem, form, ui, names)
    return await _render_form(
        who, runtime, form, errors=errors, media=media, editing=editing, status_code=400
    )
