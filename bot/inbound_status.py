"""What the inbound side reports: ``/metrics``' body, ``/readyz``' body, a retried event's
earlier passive reply.

Read by the process that processes the events (its counters, its channels' health, its
scheduler's role): the server itself, or its processing process (bot/pipeline_link.py), which
the server then asks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from prometheus_client import generate_latest
from sqlalchemy import Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import ping
from bot.runtime import Runtime
from models.journal import InboundEvent
from models.outbox import HELD, OutboxMessage

_journal = cast(Table, InboundEvent.__table__)
# The channels events come in on (their endpoints: /bridge/events, /wechat/callback,
# /wecom/bot/callback); the senders (sms, wecom_robot among them) are another list.
INBOUND_CHANNELS = ("bridge", "wechat", "wecom")


async def earlier_passive(runtime: Runtime, journal_id: int) -> OutboxMessage | None:
    """The passive reply an earlier arrival of a retried event was answered with."""
    async with runtime.sessions() as session:
        return await session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.source_event_id == journal_id,
                OutboxMessage.sent_via == "passive",
            )
            .order_by(OutboxMessage.id)
            .limit(1)
        )


async def queue_state(session: AsyncSession) -> tuple[dict[str, int], datetime | None]:
    """Unprocessed events by channel, and when the oldest of them was received."""
    rows = (
        await session.execute(
            select(_journal.c.channel, func.count(), func.min(_journal.c.received_at))
            .where(_journal.c.processed_at.is_(None))
            .group_by(_journal.c.channel)
        )
    ).all()
    oldest = min((r[2] for r in rows if r[2] is not None), default=None)
    return {r[0]: int(r[1]) for r in rows}, oldest


# Why a row not sent is not being sent now (lianxin_outbox_waiting's ``reason``).
WAITING_REASONS = ("scheduled", "retry", "paused")


async def outbox_backlog(session: AsyncSession, now: datetime) -> dict[tuple[str, str], int]:
    """Rows not yet sent by channel and state: ``due`` (being sent, or pending with their time
    come: what the worker has to do now), or held back on purpose (``WAITING_REASONS``).
    ``lianxin_outbox_pending`` counted them all: a 21:00 bulletin to every group, waiting for
    quiet hours to end, read as a backlog all night."""
    state = case(
        (OutboxMessage.status == "sending", "due"),
        (OutboxMessage.status == HELD, "paused"),
        (OutboxMessage.next_attempt_at <= now, "due"),
        (OutboxMessage.attempts > 0, "retry"),
        else_="scheduled",
    )
    # Grouped in an outer query: PostgreSQL would take the CASE written twice, with its own
    # parameters each time, for two expressions.
    unsent = (
        select(OutboxMessage.channel.label("channel"), state.label("state"))
        .where(OutboxMessage.status.in_(("pending", "sending", HELD)))
        .subquery()
    )
    rows = await session.execute(
        select(unsent.c.channel, unsent.c.state, func.count()).group_by(
            unsent.c.channel, unsent.c.state
        )
    )
    return {(str(channel), str(kind)): int(n) for channel, kind, n in rows.all()}


async def metrics_text(runtime: Runtime) -> bytes:
    """This process's counters and the shared backlog, in Prometheus' text format."""
    m = runtime.metrics
    async with runtime.sessions() as session:
        backlog = await outbox_backlog(session, runtime.clock.now())
        queued, oldest = await queue_state(session)
    channels = {*runtime.senders, *(channel for channel, _ in backlog)}
    for channel in channels:
        m.outbox_pending.labels(channel).set(backlog.get((channel, "due"), 0))
        for reason in WAITING_REASONS:
            m.outbox_waiting.labels(channel, reason).set(backlog.get((channel, reason), 0))
    for channel in {*INBOUND_CHANNELS, *queued}:
        m.inbound_queued.labels(channel).set(queued.get(channel, 0))
        # Shown at 0 before the first event: an alert on rate() has a series to read.
        m.events_received.labels(channel)
    lag = (runtime.clock.now() - oldest).total_seconds() if oldest is not None else 0.0
    m.inbound_lag.set(max(0.0, lag))
    down = runtime.health.down()
    for channel in runtime.senders:
        m.channel_up.labels(channel).set(0 if channel in down else 1)
        # Shown at 0 before the first send. Not events_received: a sender is no receiver (it
        # showed events received from "sms" and "wecom_robot", which receive none).
        for counter in (m.outbox_sent, m.outbox_failed, m.outbox_retried):
            counter.labels(channel)
    m.scheduler_leader.set(1 if runtime.leadership.role == "leader" else 0)
    return generate_latest(m.registry)


async def readiness(runtime: Runtime) -> dict[str, Any]:
    """``{"ok": …, "database": "up"|"down", <channel>: "down"…, "scheduler": role}``: ready
    when the database answers. An outgoing channel marked down is named but does not make
    the instance unready: every instance shares it, so a load balancer taking them all out
    would refuse residents' messages, emergencies included, for a fault on the way out."""
    body: dict[str, Any] = {"database": "up" if await ping(runtime.engine) else "down"}
    ok = body["database"] == "up"
    for channel in sorted(runtime.health.down()):
        body[channel] = "down"
    body["scheduler"] = runtime.leadership.role
    return {"ok": ok, **body}
