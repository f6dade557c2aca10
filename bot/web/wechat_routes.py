"""``/wechat/callback`` (CONTRACT §2): the Official Account's private conversations."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response

from bot.channels.body import read_capped_body
from bot.channels.wechat import CallbackQuery, Rejected, WeChatCallback
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.web.deps import get_pipeline, get_runtime

log = logging.getLogger("lianxin.wechat")
router = APIRouter()


def _callback(runtime: Runtime) -> WeChatCallback:
    if runtime.wechat is None:
        raise HTTPException(404, "wechat channel not configured")
    return runtime.wechat


async def _query(
    signature: Annotated[str | None, Query()] = None,
    timestamp: Annotated[str | None, Query()] = None,
    nonce: Annotated[str | None, Query()] = None,
    echostr: Annotated[str | None, Query()] = None,
    encrypt_type: Annotated[str | None, Query()] = None,
    msg_signature: Annotated[str | None, Query()] = None,
) -> CallbackQuery:
    return CallbackQuery(signature, timestamp, nonce, echostr, encrypt_type, msg_signature)


@router.get("/wechat/callback")
async def verify_url(
    q: CallbackQuery = Depends(_query), runtime: Runtime = Depends(get_runtime)
) -> PlainTextResponse:
    """WeChat's URL check: echo ``echostr`` when the signature holds."""
    try:
        echo = _callback(runtime).verify_url(q, runtime.clock.now())
    except Rejected as exc:
        log.warning("wechat verification refused: %s", exc.reason)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    return PlainTextResponse(echo)


@router.post("/wechat/callback")
async def receive(
    request: Request,
    q: CallbackQuery = Depends(_query),
    runtime: Runtime = Depends(get_runtime),
    pipeline: Pipeline = Depends(get_pipeline),
) -> Response:
    """Verify, decrypt and journal one message; in ``passive`` reply mode wait (within the
    budget) for its processing and answer with its first reply."""
    callback = _callback(runtime)
    started = runtime.clock.now()
    body = await read_capped_body(request, runtime.settings.server.max_body_bytes)
    try:
        parsed = callback.parse(q, body, started)
    except Rejected as exc:
        log.warning("wechat callback refused: %s", exc.reason)
        return PlainTextResponse(exc.reason, status_code=exc.status)
    settings = runtime.settings.wechat
    if settings.reply_mode == "api":
        # Every reply goes through the customer-service API; WeChat only needs to know we have it.
        await pipeline.accept(parsed.inbound)
        return PlainTextResponse("success")
    budget = timedelta(seconds=settings.passive_reply_budget_s)
    accepted = await pipeline.accept(parsed.inbound, passive_until=started + budget)
    if accepted.duplicate:
        # WeChat retries only when our answer did not reach it: the same passive reply again.
        candidate = await pipeline.earlier_passive(accepted.journal_id)
    else:
        left = budget - (runtime.clock.now() - started)
        candidate = await pipeline.passive_reply(
            accepted.journal_id, budget_s=max(0.0, left.total_seconds())
        )
    # The first reply to the sender rides back in this response; the rest go by the API.
    if candidate is None:
        return PlainTextResponse("success")
    text = runtime.cipher.decrypt_json(candidate.payload_enc)["text"]
    xml = callback.render_reply(parsed, text, q)
    return Response(xml, media_type="application/xml")
