"""``/wecom/bot/callback`` (CONTRACT §3a): the WeCom smart robot, in groups and single chats.

The callback object is ``runtime.wecom`` (a :class:`WeComCallback`, built when the ``wecom``
section is configured); without it the route answers 404.

Passive replies: the request waits for its event's processing (bot/pipeline.py); the processor
claims the first reply to the event's chat (the group, or the sender privately) in the handlers'
own transaction, before the outbox worker can see it, so the worker and this request never both
send it and neither misses it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot.channels.body import read_capped_body
from bot.channels.wecom import Rejected, WeComCallback, WeComQuery
from bot.db import DatabaseUnavailable
from bot.runtime import Runtime
from bot.web.deps import pipeline_of, runtime_of
from bot.web.refusals import DATABASE_UNAVAILABLE, RETRY_HEADERS, count_refused

log = logging.getLogger("lianxin.wecom")
router = APIRouter()
PATH = "/wecom/bot/callback"


def _callback(runtime: Runtime) -> WeComCallback:
    callback = runtime.wecom
    if callback is None:
        raise HTTPException(404, "wecom channel not configured")
    return callback


def _query(request: Request) -> WeComQuery:
    # Read directly, not as Query() parameters (bot/web/wechat_routes.py says why).
    q = request.query_params
    return WeComQuery(q.get("msg_signature"), q.get("timestamp"), q.get("nonce"), q.get("echostr"))


@router.get(PATH)
async def verify_url(request: Request) -> PlainTextResponse:
    """WeCom's URL check: answer the decrypted ``echostr`` as plain text."""
    q, runtime = _query(request), runtime_of(request)
    try:
        echo = _callback(runtime).verify_url(q, runtime.clock.now())
    except Rejected as exc:
        log.warning("wecom verification refused: %s", exc.reason)
        count_refused(runtime, "wecom", exc.status)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    return PlainTextResponse(echo)


@router.post(PATH)
async def receive(request: Request) -> Response:
    """Verify, decrypt, journal and handle one callback; answer passively when in time."""
    q, runtime, pipeline = _query(request), runtime_of(request), pipeline_of(request)
    callback = _callback(runtime)
    started = runtime.clock.now()
    try:
        body = await read_capped_body(request, runtime.settings.server.max_body_bytes)
    except HTTPException as exc:  # 413 (or 400 for a bad Content-Length), answered as it is
        count_refused(runtime, "wecom", exc.status_code)
        raise
    try:
        parsed = callback.parse(q, body, started)
    except Rejected as exc:
        log.warning("wecom callback refused: %s", exc.reason)
        count_refused(runtime, "wecom", exc.status)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    if parsed.inbound is None:
        # A stream refresh: our streams finish in the first reply, so there is nothing to add.
        log.info("wecom %s callback ignored", parsed.msgtype)
        return Response(status_code=200)
    budget = timedelta(seconds=callback.passive_reply_budget_s)
    # A retry gets the reply its first arrival was answered with; otherwise the event's first
    # reply when it is ready within the budget (the rest go by the API).
    try:
        candidate = await pipeline.accept_with_reply(parsed.inbound, passive_until=started + budget)
    except DatabaseUnavailable:
        # Not an empty 200 ("no reply"): WeCom sends the callback again, journaled then.
        count_refused(runtime, "wecom", 503)
        return PlainTextResponse(DATABASE_UNAVAILABLE, status_code=503, headers=RETRY_HEADERS)
    if candidate is None:
        return Response(status_code=200)  # WeCom: an empty answer means "no reply"
    text = runtime.cipher.decrypt_json(candidate.payload_enc).get("text", "")
    reply = callback.render_reply(
        text, q, kind=parsed.reply_kind, stream_id=candidate.idempotency_key
    )
    return JSONResponse(reply)
