"""``GET /metrics``: the Prometheus text format, for an admin token (CONTRACT §6)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.web.auth import Caller, require_admin
from bot.web.deps import get_pipeline, get_runtime
from models.outbox import OutboxMessage

router = APIRouter()


@router.get("/metrics", tags=["admin"])
async def metrics(
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
    pipeline: Pipeline = Depends(get_pipeline),
) -> Response:
    """Counters of this process and the shared backlog, in Prometheus' text format."""
    m = runtime.metrics
    async with runtime.sessions() as session:
        pending = dict(
            (
                await session.execute(
                    select(OutboxMessage.channel, func.count())
                    .where(OutboxMessage.status.in_(("pending", "sending")))
                    .group_by(OutboxMessage.channel)
                )
            ).all()
        )
        queued, oldest = await pipeline.queue_state(session)
    for channel in {*runtime.senders, *pending}:
        m.outbox_pending.labels(channel).set(pending.get(channel, 0))
    for channel in {"bridge", "wechat", "wecom", *queued}:
        m.inbound_queued.labels(channel).set(queued.get(channel, 0))
    lag = (runtime.clock.now() - oldest).total_seconds() if oldest is not None else 0.0
    m.inbound_lag.set(max(0.0, lag))
    down = runtime.health.down()
    for channel in runtime.senders:
        m.channel_up.labels(channel).set(0 if channel in down else 1)
    m.scheduler_leader.set(1 if runtime.leadership.role == "leader" else 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
