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
from bot.web.refusals import DATABASE_UNAVAILABLE, RETRY_HEADERS

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
    try:
        body = await read_capped_body(request, runtime.settings.server.max_body_bytes)
    except HTTPException as exc:
        return JSONResponse({"ok": False, "error": exc.detail}, status_code=exc.status_code)
    problem = bridge.verify(
        secret,
        request.headers,
        body,
        now=runtime.clock.now(),
        window_s=runtime.settings.server.replay_window_s,
    )
    if problem:
        log.warning("bridge event refused: %s", problem)
        return JSONResponse({"ok": False, "error": problem}, status_code=401)
    try:
        event = bridge.parse_event(body)
    except bridge.BadEvent as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=422)
    try:
        accepted = await pipeline.accept(event)
    except DatabaseUnavailable:
        error = {"ok": False, "error": DATABASE_UNAVAILABLE}
        return JSONResponse(error, status_code=503, headers=RETRY_HEADERS)
    answer: dict[str, object] = {"ok": True}
    if accepted.duplicate:
        answer["duplicate"] = True
    if accepted.unknown_group:
        answer["unknown_group"] = True
    return JSONResponse(answer)
