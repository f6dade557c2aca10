"""``POST /bridge/events`` (CONTRACT §3)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from bot.channels import bridge
from bot.channels.body import read_capped_body
from bot.db import DatabaseUnavailable
from bot.settings import secret_value
from bot.web.deps import pipeline_of, runtime_of
from bot.web.refusals import DATABASE_UNAVAILABLE, RETRY_HEADERS, count_refused

log = logging.getLogger("lianxin.bridge")
router = APIRouter()


@router.post("/bridge/events")
async def bridge_events(request: Request) -> JSONResponse:
    """Verify, parse and journal one bridge event; answer once it is committed (it is handled
    behind, by the pipeline's processor)."""
    runtime, pipeline = runtime_of(request), pipeline_of(request)
    secret = secret_value(runtime.settings.bridge.secret)
    if not secret:
        raise HTTPException(404, "bridge channel not configured")

    def refuse(status: int, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
        count_refused(runtime, "bridge", status)
        return JSONResponse({"ok": False, "error": error}, status_code=status, headers=headers)

    try:
        body = await read_capped_body(request, runtime.settings.server.max_body_bytes)
    except HTTPException as exc:
        return refuse(exc.status_code, exc.detail)
    problem = bridge.verify(
        secret,
        request.headers,
        body,
        now=runtime.clock.now(),
        window_s=runtime.settings.server.replay_window_s,
    )
    if problem:
        log.warning("bridge event refused: %s", problem)
        return refuse(401, problem)
    try:
        event = bridge.parse_event(body)
    except bridge.BadEvent as exc:
        return refuse(422, str(exc))
    try:
        accepted = await pipeline.accept(event)
    except DatabaseUnavailable:
        return refuse(503, DATABASE_UNAVAILABLE, RETRY_HEADERS)
    answer: dict[str, object] = {"ok": True}
    if accepted.duplicate:
        answer["duplicate"] = True
    if accepted.unknown_group:
        answer["unknown_group"] = True
    return JSONResponse(answer)
