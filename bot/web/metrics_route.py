"""``GET /metrics``: the Prometheus text format, for an admin token (CONTRACT §6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.pipeline import InboundPort
from bot.web.auth import Caller, require_admin
from bot.web.deps import get_pipeline, runtime_of

router = APIRouter()


@router.get("/metrics", tags=["admin"])
async def metrics(
    request: Request,
    _: Caller = Depends(require_admin),
    pipeline: InboundPort = Depends(get_pipeline),
) -> Response:
    """What this process's endpoints counted (the requests they refused), then the counters
    of the process that processes the events, and the shared backlog."""
    front = generate_latest(runtime_of(request).metrics.front)
    return Response(front + await pipeline.metrics_text(), media_type=CONTENT_TYPE_LATEST)
