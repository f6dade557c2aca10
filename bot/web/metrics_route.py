"""``GET /metrics``: the Prometheus text format, for an admin token (CONTRACT §6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from bot.pipeline import InboundPort
from bot.web.auth import Caller, require_admin
from bot.web.deps import get_pipeline

router = APIRouter()


@router.get("/metrics", tags=["admin"])
async def metrics(
    _: Caller = Depends(require_admin),
    pipeline: InboundPort = Depends(get_pipeline),
) -> Response:
    """Counters of the process that processes the events, and the shared backlog."""
    return Response(await pipeline.metrics_text(), media_type=CONTENT_TYPE_LATEST)
