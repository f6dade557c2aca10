"""``/wechat/callback`` (CONTRACT §2): the Official Account's private conversations."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response

from bot.channels.body import read_capped_body
from bot.channels.wechat import CallbackQuery, Rejected, WeChatCallback
from bot.db import DatabaseUnavailable
from bot.runtime import Runtime
from bot.web.deps import pipeline_of, runtime_of
from bot.web.refusals import DATABASE_UNAVAILABLE, RETRY_HEADERS, count_refused

log = logging.getLogger("lianxin.wechat")
router = APIRouter()


def _callback(runtime: Runtime) -> WeChatCallback:
    if runtime.wechat is None:
        raise HTTPException(404, "wechat channel not configured")
    return runtime.wechat


def _query(request: Request) -> CallbackQuery:
    # Read here rather than declared as Query() parameters: FastAPI's solving of six of them
    # was a fifth of an accepted event's CPU (docs/performance.md). A repeated key: the last.
    q = request.query_params
    return CallbackQuery(
        q.get("signature"),
        q.get("timestamp"),
        q.get("nonce"),
        q.get("echostr"),
        q.get("encrypt_type"),
        q.get("msg_signature"),
    )


@router.get("/wechat/callback")
async def verify_url(request: Request) -> PlainTextResponse:
    """WeChat's URL check: echo ``echostr`` when the signature holds."""
    q, runtime = _query(request), runtime_of(request)
    try:
        echo = _callback(runtime).verify_url(q, runtime.clock.now())
    except Rejected as exc:
        log.warning("wechat verification refused: %s", exc.reason)
        count_refused(runtime, "wechat", exc.status)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    return PlainTextResponse(echo)


@router.post("/wechat/callback")
async def receive(request: Request) -> Response:
    """Verify, decrypt and journal one message; in ``passive`` reply mode wait (within the
    budget) for its processing and answer with its first reply."""
    q, runtime, pipeline = _query(request), runtime_of(request), pipeline_of(request)
    callback = _callback(runtime)
    started = runtime.clock.now()
    try:
        body = await read_capped_body(request, runtime.settings.server.max_body_bytes)
    except HTTPException as exc:  # 413 (or 400 for a bad Content-Length), answered as it is
        count_refused(runtime, "wechat", exc.status_code)
        raise
    try:
        parsed = callback.parse(q, body, started)
    except Rejected as exc:
        log.warning("wechat callback refused: %s", exc.reason)
        count_refused(runtime, "wechat", exc.status)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    settings = runtime.settings.wechat
    try:
        if settings.reply_mode == "api":
            # Every reply goes through the customer-service API; WeChat only needs to know we
            # have it.
            await pipeline.accept(parsed.inbound)
            return PlainTextResponse("success")
        budget = timedelta(seconds=settings.passive_reply_budget_s)
        # A retry gets the reply its first arrival was answered with; otherwise the event's
        # first reply when it is ready within the budget (the rest go by the API).
        candidate = await pipeline.accept_with_reply(parsed.inbound, passive_until=started + budget)
    except DatabaseUnavailable:
        # Not "success": WeChat sends the message again, and it is journaled then.
        count_refused(runtime, "wechat", 503)
        return PlainTextResponse(DATABASE_UNAVAILABLE, status_code=503, headers=RETRY_HEADERS)
    if candidate is None:
        return PlainTextResponse("success")
    text = runtime.cipher.decrypt_json(candidate.payload_enc)["text"]
    xml = callback.render_reply(parsed, text, q)
    return Response(xml, media_type="application/xml")
