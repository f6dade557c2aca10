"""Admin API for bulletins (CONTRACT §6); uploads and the public ``/media/…`` are
:mod:`bot.web.media_api`, urgent notices :mod:`bot.web.alerts_api`.

Everything under ``/api/v1`` needs an admin token (401 without, 403 with an officer's). Requests
that parse but are wrong for the directory or the clock (an unknown group, a past ``at``) are
``422`` in FastAPI's own error shape, with ``loc`` naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.web.auth import ADMIN_QUERY, Caller, require_admin
from bot.web.deps import (
    MAX_ROW_ID,
    IdempotencyKeyHeader,
    Offset,
    RowId,
    body_error,
    created_once,
    errors,
    get_runtime,
    query_error,
)
from broadcasts import bulletin_preview
from broadcasts.bulletin_preview import Preview, preview_bulletin
from broadcasts.bulletins import (
    BulletinPatch,
    BulletinSpec,
    Conflict,
    Problem,
    cancel_bulletin,
    create_bulletin,
    list_deliveries,
    list_runs,
    pause_bulletin,
    resume_bulletin,
    schedule_dict,
    update_bulletin,
)
from models.bulletins import Bulletin, BulletinRun

router = APIRouter(tags=["bulletins"])


# --- bulletins ---------------------------------------------------------------------------------
class Created(BaseModel):
    id: int


class BulletinOut(BaseModel):
    id: int
    title: str
    category: str
    text: str
    media: dict[str, Any] | None
    cover: str | None
    targets: dict[str, Any]
    schedule: dict[str, Any]
    status: str
    next_run_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


def _out(b: Bulletin) -> BulletinOut:
    return BulletinOut(
        id=b.id,
        title=b.title,
        category=b.category,
        text=b.text,
        media=b.media,
        cover=b.cover,
        targets=b.targets,
        schedule=schedule_dict(b),
        status=b.status,
        next_run_at=b.next_run_at,
        created_by=b.created_by,
        created_at=b.created_at,
        updated_at=b.updated_at,
    )


async def _get(session: AsyncSession, bulletin_id: int) -> Bulletin:
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise HTTPException(404, f"no bulletin {bulletin_id}")
    return bulletin


@router.post(
    "/api/v1/bulletins",
    status_code=201,
    response_model=Created,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 409),
)
async def create(
    spec: BulletinSpec,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    caller: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> Created:
    """Schedule a bulletin: ``{"title", "category", "text", "media"?, "cover"?, "targets",
    "schedule"}``. With an ``Idempotency-Key`` header, a retry of the same body answers the
    first ``201`` again (same id, ``Idempotent-Replayed: true``) and creates nothing; the same
    key with another body is ``409``."""
    now = runtime.clock.now()

    async def store(session: AsyncSession) -> dict[str, Any]:
        bulletin = await create_bulletin(
            session,
            spec=spec,
            tz=runtime.settings.tz,
            created_by=caller.author,
            now=now,
            media_dir=runtime.settings.bulletins.media_folder,
        )
        return Created(id=bulletin.id).model_dump()

    answer, _ = await created_once(
        runtime,
        response,
        route="POST /api/v1/bulletins",
        key=idempotency_key,
        body=spec.model_dump(mode="json"),
        created_by=caller.author,
        now=now,
        create=store,
    )
    return Created.model_validate(answer)


@router.get(
    "/api/v1/bulletins",
    response_model=list[BulletinOut],
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403),
)
async def list_bulletins(
    # An empty value means no filter, as on every list.
    status: str | None = Query(None, pattern="^(|active|paused|cancelled|finished)$"),
    limit: int = Query(200, ge=1, le=2000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[BulletinOut]:
    """Bulletins, newest first; page with ``limit`` and ``offset``."""
    query = select(Bulletin).order_by(Bulletin.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Bulletin.status == status)
    async with runtime.sessions() as session:
        return [_out(b) for b in (await session.scalars(query)).all()]


@router.get(
    "/api/v1/bulletins/{bulletin_id}",
    response_model=BulletinOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404),
)
async def get_bulletin(
    bulletin_id: RowId,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> BulletinOut:
    """One bulletin with its schedule, status and next due time."""
    async with runtime.sessions() as session:
        return _out(await _get(session, bulletin_id))


@router.patch(
    "/api/v1/bulletins/{bulletin_id}",
    response_model=BulletinOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404, 409),
)
async def patch_bulletin(
    bulletin_id: RowId,
    patch: BulletinPatch,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> BulletinOut:
    """Change any fields, for the runs still to come: a run already fanned out keeps what it
    sent (its ``sent`` in ``…/runs``). A one-off that has gone out is ``409`` for a change of
    title, category, text, media, cover or targets, unless a new ``schedule.at`` sends it
    again; a cancelled one is ``409``."""
    try:
        async with runtime.sessions.begin() as session:
            bulletin = await update_bulletin(
                session,
                bulletin=await _get(session, bulletin_id),
                patch=patch,
                tz=runtime.settings.tz,
                now=runtime.clock.now(),
                media_dir=runtime.settings.bulletins.media_folder,
            )
    except Problem as exc:
        raise body_error(exc.field, exc.message, exc.code) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    return _out(bulletin)


@router.post(
    "/api/v1/bulletins/{bulletin_id}/{action}",
    response_model=BulletinOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404, 409),
)
async def bulletin_action(
    bulletin_id: RowId,
    action: Literal["pause", "resume", "cancel"],
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> BulletinOut:
    """``pause`` holds unsent deliveries and stops new runs; ``resume`` releases them;
    ``cancel`` withdraws unsent deliveries for good."""
    now = runtime.clock.now()
    try:
        async with runtime.sessions.begin() as session:
            bulletin = await _get(session, bulletin_id)
            if action == "pause":
                await pause_bulletin(session, bulletin=bulletin, now=now)
            elif action == "resume":
                await resume_bulletin(session, bulletin=bulletin, tz=runtime.settings.tz, now=now)
            else:
                await cancel_bulletin(session, bulletin=bulletin, now=now)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    if action == "resume":
        runtime.outbox_wakeup.set()
    return _out(bulletin)


class PreviewMessageOut(BaseModel):
    group_id: str
    group_name: str
    channel: str
    text: str
    media: dict[str, Any] | None
    not_before: datetime | None
    reason: str | None


class PreviewOut(BaseModel):
    next_runs: list[datetime]
    messages: list[PreviewMessageOut]
    warnings: list[str]


def _preview_out(p: Preview) -> PreviewOut:
    return PreviewOut(
        next_runs=p.next_runs,
        messages=[PreviewMessageOut(**m.__dict__) for m in p.messages],
        warnings=[w.text for w in p.warnings],
    )


async def _preview(session: AsyncSession, runtime: Runtime, bulletin: Bulletin) -> PreviewOut:
    now = runtime.clock.now()
    return _preview_out(
        await preview_bulletin(session, runtime=runtime, bulletin=bulletin, now=now)
    )


@router.get(
    "/api/v1/bulletins/{bulletin_id}/preview",
    response_model=PreviewOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404),
)
async def preview_saved(
    bulletin_id: RowId,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> PreviewOut:
    """The exact messages the next run sends, the groups, and when each would go out."""
    async with runtime.sessions() as session:
        return await _preview(session, runtime, await _get(session, bulletin_id))


@router.post(
    "/api/v1/bulletins/preview",
    response_model=PreviewOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403),
)
async def preview_draft(
    spec: BulletinSpec,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> PreviewOut:
    """Preview a bulletin before creating it (same body as ``POST /api/v1/bulletins``),
    checked exactly as creating it would be; nothing is stored."""
    async with runtime.sessions() as session:
        try:
            _draft, preview = await bulletin_preview.preview_draft(
                session, runtime=runtime, spec=spec, now=runtime.clock.now()
            )
        except Problem as exc:
            raise body_error(exc.field, exc.message, exc.code) from None
    return _preview_out(preview)


class DeliveryOut(BaseModel):
    group_id: str
    status: str
    sent_at: datetime | None
    attempts: int
    run_id: int
    due_at: datetime
    channel: str
    not_before: datetime
    reason: str | None


@router.get(
    "/api/v1/bulletins/{bulletin_id}/deliveries",
    response_model=list[DeliveryOut],
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404),
)
async def deliveries(
    bulletin_id: RowId,
    run_id: int | None = Query(None, ge=1, le=MAX_ROW_ID),
    limit: int = Query(1000, ge=1, le=5000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[DeliveryOut]:
    """One row per (run, group): ``status`` is deferred (quiet hours or daily cap, see
    ``reason``), pending, sent, failed, held (paused) or cancelled; attempts from the outbox.
    Oldest run first, by group; page with ``limit`` and ``offset``."""
    async with runtime.sessions() as session:
        await _get(session, bulletin_id)
        run = await session.get(BulletinRun, run_id) if run_id is not None else None
        if run_id is not None and (run is None or run.bulletin_id != bulletin_id):
            # Ignored, it answered an empty list: as if the run had reached no group.
            raise query_error("run_id", f"bulletin {bulletin_id} has no run {run_id}")
        views = await list_deliveries(
            session,
            bulletin_id=bulletin_id,
            now=runtime.clock.now(),
            run_ids=None if run_id is None else [run_id],
            limit=limit,
            offset=offset,
        )
    return [DeliveryOut(**v.__dict__) for v in views]


class RunOut(BaseModel):
    id: int
    due_at: datetime
    status: str
    reason: str | None
    groups: int
    totals: dict[str, int]
    # What this run sent: title, category, text, media, cover, targets (null until it fans
    # out); an edit of the bulletin changes later runs, never this.
    sent: dict[str, Any] | None


@router.get(
    "/api/v1/bulletins/{bulletin_id}/runs",
    response_model=list[RunOut],
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 404),
)
async def runs(
    bulletin_id: RowId,
    limit: int = Query(200, ge=1, le=2000),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[RunOut]:
    """Runs newest first with delivery totals; ``status`` pending, missed or cancelled, or once
    fanned out what its copies came to (sending, waiting, sent, partly_failed, failed); page
    with ``limit`` and ``offset``."""
    async with runtime.sessions() as session:
        await _get(session, bulletin_id)
        views = await list_runs(
            session, bulletin_id=bulletin_id, now=runtime.clock.now(), limit=limit, offset=offset
        )
    return [RunOut(**v.__dict__) for v in views]
