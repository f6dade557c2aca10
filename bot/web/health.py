"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from bot.db import ping
from bot.runtime import Runtime
from bot.web.deps import get_runtime

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, bool]:
    """The process is up."""
    return {"ok": True}


@router.get("/readyz")
async def readyz(runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    """Ready when the database answers; 503 otherwise. ``scheduler`` says whether this instance
    runs the scheduled jobs (``leader``) or waits to take over (``standby``): both are ready."""
    scheduler = runtime.leadership.role
    if await ping(runtime.engine):
        return JSONResponse({"ok": True, "database": "up", "scheduler": scheduler})
    return JSONResponse({"ok": False, "database": "down", "scheduler": scheduler}, status_code=503)
