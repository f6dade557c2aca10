"""``GET /metrics``: the Prometheus text format, for an admin token (CONTRACT §6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.pipeline import InboundPort
from bot.web.auth import Caller, require_admin
from bot.web.deps import ADMIN_ERRORS, get_pipeline, runtime_of

router = APIRouter()


@router.get(
    "/metrics",
    tags=["admin"],
    response_class=PlainTextResponse,
    responses={
        200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST: {}}},
        **ADMIN_ERRORS,
    },
)
async def metrics(
    request: Request,
    _: Caller = Depends(require_admin),
    pipeline: InboundPort = Depends(get_pipeline),
) -> Response:
    """What this process's endpoints counted (the requests they refused), then the counters
    of the process that processes the events, and the shared backlog."""
    front = generate_latest(runtime_of(request).metrics.front)
    return Response(front + await pipeline.metrics_text(), media_type=CONTENT_TYPE_LATEST)
