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
    """Ready when the database answers and no outgoing channel is marked down; 503 otherwise,
    naming what is down (``{"bridge": "down"}``). ``scheduler`` says whether this instance
    runs the scheduled jobs (``leader``) or waits to take over (``standby``): both are ready."""
    body: dict[str, object] = {"database": "up" if await ping(runtime.engine) else "down"}
    for channel in sorted(runtime.health.down()):
        body[channel] = "down"
    ok = all(value != "down" for value in body.values())
    body["scheduler"] = runtime.leadership.role
    return JSONResponse({"ok": ok, **body}, status_code=200 if ok else 503)
