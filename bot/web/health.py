"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from bot.pipeline import InboundPort
from bot.web.deps import get_pipeline

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """The process is up."""
    return {"ok": True}


@router.get("/readyz")
async def readyz(pipeline: InboundPort = Depends(get_pipeline)) -> JSONResponse:
    """Ready when the database answers and no outgoing channel is marked down; 503 otherwise,
    naming what is down (``{"bridge": "down"}``, ``{"processor": "down"}`` while the server's
    processing process restarts). ``scheduler`` says whether this instance runs the scheduled
    jobs (``leader``) or waits to take over (``standby``): both are ready."""
    body = await pipeline.readiness()
    return JSONResponse(body, status_code=200 if body["ok"] else 503)
