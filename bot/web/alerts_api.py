"""Admin API for urgent notices (緊急通知: a lost child, a wanted suspect), CONTRACT §6: send,
list, show, recall, correct. Admin token only, like every ``/api/v1`` route; input errors are
``422`` in FastAPI's own shape, as in :mod:`bot.web.bulletins_api`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.web.auth import ADMIN_QUERY, Caller, require_admin
from bot.web.deps import (
    ADMIN_ERRORS,
    IdempotencyKeyHeader,
    Offset,
    RowId,
    created_once,
    errors,
    get_runtime,
)
from broadcasts.alert_views import alert_view
from broadcasts.alerts import TEXT_MAX, correct_alert, recall_alert, send_alert
from broadcasts.bulletin_preview import media_warnings
from broadcasts.bulletins import (
    InputSpec,
    MediaSpec,
    Problem,
)
from models.bulletins import Alert

router = APIRouter(tags=["urgent notices"], dependencies=[ADMIN_QUERY], responses=ADMIN_ERRORS)


class AlertScope(InputSpec):
    """Exactly one of ``stations`` (with the stations below them), ``groups``, ``all``.

    Each mistake has its own error ``type`` and says what to send instead: a client used to get
    one generic ``value_error`` for all of them, and no word that tags are for bulletins only.
    """

    stations: list[str] | None = None
    groups: list[str] | None = None
    all: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_tags(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tags" in data:
            # A tag is resolved across the county: a notice goes where it is meant, by name.
            raise PydanticCustomError(
                "scope_tags",
                "an urgent notice goes by stations, groups or all, not by tags "
                "(tags are for bulletins)",
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> AlertScope:
        given = [k for k in ("stations", "groups", "all") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "scope_one",
                "give exactly one of stations, groups, all (got {given})",
                {"given": ", ".join(given) or "none"},
            )
        if given[0] == "all" and self.all is not True:
            raise PydanticCustomError("scope_all", "all must be true")
        if given[0] != "all" and not getattr(self, given[0]):
            raise PydanticCustomError(
                "scope_empty", "{key} is empty: name at least one", {"key": given[0]}
            )
        return self


class AlertIn(InputSpec):
    scope: AlertScope
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    media: MediaSpec | None = None


class AlertCreated(BaseModel):
    id: int
    groups: int
    # What the author should know about what went out (media nobody outside can open), as a
    # bulletin preview says it.
    warnings: list[str] = Field(default_factory=list)


class AlertGroupOut(BaseModel):
    group_id: str
    status: str
    sent_at: datetime | None
    attempts: int
    acks: int
    error: str | None = None
    maybe_sent: bool = False


class AlertOut(BaseModel):
    id: int
    kind: str
    parent_id: int | None
    status: str
    scope: dict[str, Any]
    text: str
    created_by: str
    created_at: datetime
    recalled_at: datetime | None
    totals: dict[str, int]
    groups: list[AlertGroupOut]
    acks: int
    tickets: list[str]
    followups: list[int]


@router.post("/api/v1/alerts", status_code=201, response_model=AlertCreated, responses=errors(409))
async def create_alert(
    body: AlertIn,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    caller: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> AlertCreated:
    """An urgent notice: out at once to every group in scope, ahead of queued bulletins,
    regardless of quiet hours and caps. With an ``Idempotency-Key`` header, a retry of the
    same body answers the first ``201`` again and sends nothing (the groups heard it once);
    the same key with another body is ``409``."""
    now = runtime.clock.now()
    urls = [body.media.url] if body.media else []
    warnings = [w.text for w in media_warnings(urls, runtime.settings.bulletins)]

    async def send(session: AsyncSession) -> dict[str, Any]:
        alert, count = await send_alert(
            session,
            runtime=runtime,
            scope=body.scope.model_dump(exclude_none=True),
            text=body.text,
            media=body.media.model_dump() if body.media else None,
            created_by=caller.author,
            now=now,
        )
        return AlertCreated(id=alert.id, groups=count, warnings=warnings).model_dump()

    answer, replayed = await created_once(
        runtime,
        response,
        route="POST /api/v1/alerts",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        created_by=caller.author,
        now=now,
        create=send,
    )
    if not replayed:
        runtime.wake_outbox(urgent=True)  # priority 0: the urgent lane
    return AlertCreated.model_validate(answer)


async def _alert_out(session: AsyncSession, runtime: Runtime, alert: Alert) -> AlertOut:
    view = await alert_view(session, runtime=runtime, alert=alert)
    data = dict(view.__dict__)
    data["groups"] = [AlertGroupOut(**g.__dict__) for g in view.groups]
    return AlertOut(**data)


async def _get_alert(session: AsyncSession, alert_id: int) -> Alert:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return alert


@router.get("/api/v1/alerts", response_model=list[AlertOut])
async def list_alerts(
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> list[AlertOut]:
    """Alerts, corrections and recalls, newest first, with per-group delivery; page with
    ``limit`` and ``offset``."""
    async with runtime.sessions() as session:
        alerts = (
            await session.scalars(
                select(Alert).order_by(Alert.id.desc()).limit(limit).offset(offset)
            )
        ).all()
        return [await _alert_out(session, runtime, a) for a in alerts]


@router.get("/api/v1/alerts/{alert_id}", response_model=AlertOut, responses=errors(404))
async def get_alert(
    alert_id: RowId,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> AlertOut:
    """``status``: recalled, or what its copies came to (sending, sent, partly_failed, failed);
    per group whether it went out (sent, pending, failed, cancelled) and acknowledgements;
    tickets opened from residents' clues."""
    async with runtime.sessions() as session:
        return await _alert_out(session, runtime, await _get_alert(session, alert_id))


class RecallIn(InputSpec):
    reason: str = Field("", max_length=1000)


class CorrectionIn(InputSpec):
    text: str = Field(min_length=1, max_length=TEXT_MAX)


@router.post(
    "/api/v1/alerts/{alert_id}/recall", response_model=AlertCreated, responses=errors(404, 409)
)
async def recall(
    alert_id: RowId,
    body: RecallIn | None = None,
    caller: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> AlertCreated:
    """Withdraw what has not gone out and tell the groups it reached; returns the notice."""
    try:
        async with runtime.sessions.begin() as session:
            alert = await _get_alert(session, alert_id)
            notice, count, _withdrawn = await recall_alert(
                session,
                runtime=runtime,
                alert=alert,
                reason=body.reason if body else "",
                created_by=caller.author,
                now=runtime.clock.now(),
            )
    except Problem as exc:
        raise HTTPException(409, exc.message) from None
    runtime.wake_outbox(urgent=True)  # priority 0: the urgent lane
    return AlertCreated(id=notice.id, groups=count)


@router.post(
    "/api/v1/alerts/{alert_id}/correct",
    status_code=201,
    response_model=AlertCreated,
    responses=errors(404, 409),
)
async def correct(
    alert_id: RowId,
    body: CorrectionIn,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
    caller: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> AlertCreated:
    """A correction, sent the same way to the groups the alert reached. An
    ``Idempotency-Key`` makes a retry answer the first ``201`` again, as for a new notice."""
    now = runtime.clock.now()

    async def send(session: AsyncSession) -> dict[str, Any]:
        alert = await _get_alert(session, alert_id)
        correction, count = await correct_alert(
            session,
            runtime=runtime,
            alert=alert,
            text=body.text,
            created_by=caller.author,
            now=now,
        )
        return AlertCreated(id=correction.id, groups=count).model_dump()

    answer, replayed = await created_once(
        runtime,
        response,
        # One alert's corrections apart from another's: the same key may not be reused
        # across them either (the route and the alert are part of what is compared).
        route="POST /api/v1/alerts/{id}/correct",
        key=idempotency_key,
        body={"alert": alert_id, **body.model_dump(mode="json")},
        created_by=caller.author,
        now=now,
        create=send,
        problem_is_conflict=True,
    )
    if not replayed:
        runtime.wake_outbox(urgent=True)  # priority 0: the urgent lane
    return AlertCreated.model_validate(answer)
