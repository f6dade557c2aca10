"""The delivery worker: claims due outbox rows, sends them through each channel's sender,
records the outcome (see :mod:`broadcasts.outbox` for the queueing side and the delivery
guarantee)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.channel_health import ChannelHealth
from bot.clock import Clock
from bot.db import FailureRun
from bot.messages import Sender, SendError
from bot.metrics import Metrics
from bot.pii import PiiCipher
from bot.settings import OutboxSettings
from broadcasts.outbox import (
    OnFailure,
    enqueue,
    on_failure_of,
    recipient_after_sending,
    scrub_payload,
)
from broadcasts.pacing import Pace, admit
from models.base import rowcount
from models.outbox import OutboxMessage, chat_key

log = logging.getLogger("lianxin.outbox")


@dataclass(frozen=True)
class Outcome:
    """What one send came to."""

    outbox_id: int
    status: str  # sent | pending (retry later) | failed
    reason: str | None = None


GivenUp = Callable[[AsyncSession, int, datetime, datetime], Awaitable[None]]
"""Called in the transaction that records a message as failed for good, with the ticket its
:class:`OnFailure` names, when the message was queued and when it was given up."""


_CLAIMED = (
    "id", "priority", "next_attempt_at", "channel", "group_id", "user_id", "idempotency_key",
    "attempts", "payload_enc", "created_at",
)  # fmt: skip


@dataclass(frozen=True)
class _Attempt:
    """One send's result, recorded with the rest of its batch."""

    outcome: Outcome
    values: dict[str, Any]
    on_failure: OnFailure | None
    at: datetime
    queued_at: datetime
    # The channel, when this send was its first success after failures.
    revived: str | None = None


def _due(now: Any) -> Any:
    return or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
    )


# The worker's statements run for every message sent: built once (SQLAlchemy's statement
# construction costs more CPU than SQLite takes to run them), executed with fresh parameters.
@functools.cache
def _candidates_statement() -> Any:
    """The first due row of every chat that has none in flight, most urgent first.

    One row per chat: a chat's messages go out in order and one at a time, and a backlog in
    one group (thirty safety replies to one flood) never stands in front of another chat. A
    chat whose earlier message (as urgent or more) waits to be tried again after a failure
    waits with it: its later ones went out first, out of order, after an outage. A message
    put off by design (a bulletin held for the quiet hours) holds nothing up."""
    now: BindParameter[datetime] = bindparam("now")
    ranked = (
        select(
            OutboxMessage.id,
            OutboxMessage.chat_key,
            OutboxMessage.channel,
            OutboxMessage.priority,
            OutboxMessage.next_attempt_at,
            func.row_number()
            .over(
                partition_by=OutboxMessage.chat_key,
                # Within a chat the order written, not the time due: a message tried again
                # after a failure is due later than the next one, and must still go first.
                order_by=(OutboxMessage.priority, OutboxMessage.id),
            )
            .label("rank"),
        )
        # The urgent lane ranks only urgent rows: the same first row per chat (a chat's
        # most urgent row ranks first anyway), without ranking every ordinary row due.
        .where(_due(now), OutboxMessage.priority <= bindparam("max_priority"))
        .subquery()
    )
    other = aliased(OutboxMessage)
    in_flight = (
        select(other.id)
        .where(
            other.chat_key == ranked.c.chat_key,
            other.status == "sending",
            other.lease_until >= now,
        )
        .exists()
    )
    earlier = aliased(OutboxMessage)
    retrying_before = (
        select(earlier.id)
        .where(
            earlier.chat_key == ranked.c.chat_key,
            earlier.status == "pending",
            earlier.attempts > 0,
            earlier.next_attempt_at > now,
            earlier.priority <= ranked.c.priority,
            earlier.id < ranked.c.id,
        )
        .exists()
    )
    return (
        select(ranked.c.id, ranked.c.chat_key, ranked.c.channel, ranked.c.priority)
        # The ordinary worker beside an urgent lane leaves a chat whose next row is urgent
        # to that lane (min_priority 2): it would record it only with its whole batch, and
        # the chat's next urgent message would wait for that.
        .where(
            ranked.c.rank == 1,
            ranked.c.priority >= bindparam("min_priority"),
            ~in_flight,
            ~retrying_before,
        )
        .order_by(ranked.c.priority, ranked.c.next_attempt_at, ranked.c.id)
        .limit(bindparam("limit"))
    )


# Priorities up to this are urgent (0: urgent notices, 1: safety replies and P1 pages).
URGENT = 1
# The ordinary worker's priority bound: every row.
_ORDINARY = 1_000_000
# How soon a blocked urgent lane looks again: a safety reply or a P1 page waits at most for the
# send in flight to its chat, plus this.
_BLOCKED_POLL_S = 0.05


@functools.cache
def _waiting_statement() -> Any:
    """Any due row this urgent (the candidates found none: each waits for its chat)."""
    return (
        select(OutboxMessage.id)
        .where(_due(bindparam("now")), OutboxMessage.priority <= bindparam("max_priority"))
        .limit(1)
    )


@functools.cache
def _claim_statement() -> Any:
    return (
        update(OutboxMessage)
        # `due` is checked again by the UPDATE itself: of two workers racing for a row, only
        # one matches it (PostgreSQL re-evaluates the condition after the row lock).
        .where(OutboxMessage.id.in_(bindparam("ids", expanding=True)), _due(bindparam("now")))
        .values(status="sending", lease_until=bindparam("lease_until"))
        # Everything a delivery needs, so that sending does not read the row again.
        .returning(*(getattr(OutboxMessage, c) for c in _CLAIMED))
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _revive_statement() -> Any:
    """Make due now a channel's urgent rows that wait to be tried again after a failure."""
    now: BindParameter[datetime] = bindparam("now")
    return (
        update(OutboxMessage)
        .where(
            OutboxMessage.channel == bindparam("on_channel"),
            OutboxMessage.status == "pending",
            # Tried and failed: a row held by a "slow down" or by design has spent no try.
            OutboxMessage.attempts > 0,
            OutboxMessage.priority <= URGENT,
            OutboxMessage.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _finish_statement(columns: tuple[str, ...]) -> Any:
    """Record a delivery attempt: ``v_<column>`` parameters for ``columns``, ``outbox_id``."""
    return (
        update(OutboxMessage)
        .where(OutboxMessage.id == bindparam("outbox_id"), OutboxMessage.status == "sending")
        .values({c: bindparam(f"v_{c}") for c in columns})
        .execution_options(synchronize_session=False)
    )


class OutboxWorker:
    """Claims due rows, sends them through the channel's sender, records the outcome.

    Different chats are sent to side by side; one chat gets one message at a time, paced by
    ``pacing`` (per channel) through the database, so that several workers and instances
    together never send to a chat faster than one may."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        cipher: PiiCipher,
        clock: Clock,
        settings: OutboxSettings,
        pacing: Mapping[str, Pace] | None = None,
        account_pacing: Mapping[str, Pace] | None = None,
        wakeup: asyncio.Event | None = None,
        health: ChannelHealth | None = None,
        metrics: Metrics | None = None,
        max_priority: int | None = None,
        turn: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
        min_priority: int = 0,
        given_up: GivenUp | None = None,
        urgent_wakeup: asyncio.Event | None = None,
    ) -> None:
        """``max_priority``: send only rows this urgent or more (the urgent lane: a second
        worker for safety replies and P1 pages, never behind a batch of ordinary sends).
        ``given_up``: what a ticket's answer that finally failed does to the ticket.
        ``urgent_wakeup``: the urgent lane's wake-up (this worker's own when not given)."""
        # The urgent lane found due rows that all wait for a send in flight to their chat: it
        # looks again in _BLOCKED_POLL_S, not after the poll interval.
        self.blocked = False
        # The runtime's first-come-first-served turn for the database (Runtime.db_turn):
        # straight from the pool, a worker was overtaken by every journal write and
        # processing batch during a burst, and an urgent row waited seconds to be claimed.
        self._turn = turn or contextlib.nullcontext
        self._max_priority = _ORDINARY if max_priority is None else max_priority
        # Rows more urgent than this are left to the urgent lane (the ordinary worker of a
        # server, which runs both; alone, as in the tests' drain, a worker sends everything).
        self._min_priority = min_priority
        self._sessions = sessions
        self._senders = senders
        self._cipher = cipher
        self._clock = clock
        self._settings = settings
        self._pacing = {c: p for c, p in (pacing or {}).items() if p.interval_s > 0}
        self._account_pacing = dict(account_pacing or {})
        self.wakeup = wakeup or asyncio.Event()
        self._urgent_wakeup = urgent_wakeup or self.wakeup
        self.health = health or ChannelHealth()
        self._metrics = metrics or Metrics()
        self._given_up = given_up
        self._stopping = False

    def backoff(self, attempts: int) -> timedelta:
        """Exponential backoff with a little jitter so retries of a burst spread out."""
        base = self._settings.backoff_base_s * (2 ** max(0, attempts - 1))
        delay = min(self._settings.backoff_max_s, base) * (1 + random.uniform(0, 0.2))
        return timedelta(seconds=delay)

    def _keeps_trying(self, attempts: int, created_at: datetime, now: datetime) -> bool:
        """Whether a message that failed for a passing reason is tried again: until it has had
        ``max_attempts`` tries and is ``give_up_after_s`` old. With attempts alone (8 tries,
        about four minutes of backoff) a bridge down for five minutes lost its P1 pages and
        its answers to residents for good."""
        settings = self._settings
        return attempts < settings.max_attempts or (
            now - created_at < timedelta(seconds=settings.give_up_after_s)
        )

    async def _chat_admits(
        self, session: AsyncSession, row: Any, now: datetime, pace: Pace
    ) -> bool:
        """Whether ``row``'s chat may be sent to now, taking its slot if so.

        An urgent message (a safety reply, a P1 page) waits only for the chat's previous urgent
        one, never for an ordinary message sent just before it (an acknowledgement, the "too
        fast" notice of a flood). It takes the chat's next ordinary slot too, so what is
        ordinary goes one interval later than it would have: a chat never gets more than one
        ordinary and one urgent message in an interval."""
        # Keyed hash: a private chat's key holds the person's account id.
        key = self._cipher.lookup_hash(f"pace:{row.chat_key}")
        if row.priority > URGENT:
            return await admit(session, key, now=now, pace=pace)
        urgent_key = self._cipher.lookup_hash(f"pace-urgent:{row.chat_key}")
        if not await admit(session, urgent_key, now=now, pace=pace):
            return False
        await admit(session, key, now=now, pace=pace, taken_anyway=True)
        return True

    async def _claim(self) -> list[Any]:
        """Lease due rows to this worker, at most one per chat and only where the chat's pace
        allows; returns them most urgent first."""
        now = self._clock.now()
        limit = self._settings.batch_size
        async with self._turn(), self._sessions.begin() as session:
            candidates = (
                await session.execute(
                    _candidates_statement(),
                    {
                        "now": now,
                        "limit": limit * 2,
                        "max_priority": self._max_priority,
                        "min_priority": self._min_priority,
                    },
                )
            ).all()
            if not candidates and self._max_priority < _ORDINARY:
                found = await session.scalar(
                    _waiting_statement(), {"now": now, "max_priority": self._max_priority}
                )
                self.blocked = found is not None
            else:
                self.blocked = False
            chosen: list[int] = []
            for row in candidates:
                pace = self._pacing.get(row.channel)
                if pace is not None and not await self._chat_admits(session, row, now, pace):
                    continue  # this chat waits for its slot; the others go on
                account = self._account_pacing.get(row.channel)
                if (
                    account is not None
                    and row.priority > URGENT  # urgent messages are never held by the account cap
                    and not await admit(session, f"account:{row.channel}", now=now, pace=account)
                ):
                    continue
                chosen.append(row.id)
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            result = await session.execute(
                _claim_statement(),
                {
                    "ids": chosen,
                    "now": now,
                    "lease_until": now + timedelta(seconds=self._settings.lease_s),
                },
            )
            return sorted(result.all(), key=lambda r: (r.priority, r.next_attempt_at, r.id))

    async def run_once(self) -> list[Outcome]:
        """Send one batch of due rows, different chats concurrently, then record every
        outcome in one transaction; returns what happened to each, in the batch's order.

        The urgent lane records each send as soon as it ends instead: a chat's next message
        waits until its last one is recorded, and the next safety reply to a group must not
        wait for a slow page to someone else in the same batch."""
        claimed = await self._claim()
        if not claimed:
            return []
        if len(claimed) == 1:
            attempts = [await self._attempt(claimed[0])]
            await self._record(attempts)
            return [attempts[0].outcome]
        slots = asyncio.Semaphore(self._settings.concurrency)

        async def attempt(row: Any) -> _Attempt:
            async with slots:
                return await self._attempt(row)

        if self._max_priority >= _ORDINARY:
            attempts = list(await asyncio.gather(*(attempt(row) for row in claimed)))
            await self._record(attempts)
            return [a.outcome for a in attempts]
        ended: dict[int, Outcome] = {}
        tasks = [asyncio.ensure_future(attempt(row)) for row in claimed]
        try:
            for next_ended in asyncio.as_completed(tasks):
                one = await next_ended
                await self._record([one])
                ended[one.outcome.outbox_id] = one.outcome
        finally:
            for task in tasks:  # stopped or failed midway: the rest is not sent now
                task.cancel()
        return [ended[row.id] for row in claimed]

    async def drain(self, max_rounds: int = 10_000) -> list[Outcome]:
        """Run batches until nothing is due now (tests, the demo script, shutdown)."""
        outcomes: list[Outcome] = []
        for _ in range(max_rounds):
            batch = await self.run_once()
            if not batch:
                break
            outcomes.extend(batch)
        return outcomes

    def _works_again(self, channel: str, error: SendError | None) -> bool:
        """Note a send's outcome in the channel's health; whether the channel works again."""
        if error is not None and error.throttled:
            return False  # "not so fast" (429, a robot's 20 a minute): it works, counts neither way
        # A refusal of one message (4xx) says nothing about the channel; timeouts and 5xx do.
        return self.health.record(channel, ok=error is None or not error.retryable)

    async def _attempt(self, row: Any) -> _Attempt:
        """Send one claimed row; what to record about it (nothing is written here)."""
        outbox_id, channel, group_id, user_id = row.id, row.channel, row.group_id, row.user_id
        key, attempts = row.idempotency_key, row.attempts + 1
        try:
            payload: dict[str, Any] = self._cipher.decrypt_json(row.payload_enc)
        except ValueError:  # its key was dropped from pii_previous_keys too early
            payload = {}
        sender = self._senders.get(channel)
        error: SendError | None = None
        if not payload:
            error = SendError("undecryptable payload", retryable=False)
        elif sender is None:
            error = SendError(f"no sender configured for channel {channel!r}", retryable=False)
        else:
            try:
                await sender.send(
                    idempotency_key=key, group_id=group_id, user_id=user_id, payload=payload
                )
            except SendError as exc:
                error = exc
            except Exception as exc:  # a bug in a sender must not kill the worker
                log.exception("sender crashed on outbox %s", outbox_id)
                error = SendError(f"sender error: {type(exc).__name__}", retryable=True)
        now = self._clock.now()
        revived = None
        if sender is not None and payload and self._works_again(channel, error):
            revived = channel
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None}
        if error is not None and error.throttled and error.retry_after is not None:
            # Not a failed try: the message waits the time the channel named (or our own count
            # of a robot's minute) without spending one of its attempts. Without a time, it
            # backs off as after a failure.
            values.update(
                status="pending",
                attempts=row.attempts,
                next_attempt_at=now + timedelta(seconds=error.retry_after),
                last_error=error.reason,
            )
            outcome = Outcome(outbox_id, "pending", error.reason)
        elif error is None:
            values.update(
                status="sent", sent_at=now, sent_via="api", last_error=None, fallback_at=None
            )
            outcome = Outcome(outbox_id, "sent")
            self._metrics.outbox_sent.labels(channel).inc()
        elif error.retryable and self._keeps_trying(attempts, row.created_at, now):
            values.update(
                status="pending",
                next_attempt_at=now + self.backoff(attempts),
                last_error=error.reason,
            )
            outcome = Outcome(outbox_id, "pending", error.reason)
            self._metrics.outbox_retried.labels(channel).inc()
        else:
            values.update(status="failed", last_error=error.reason)
            outcome = Outcome(outbox_id, "failed", error.reason)
            self._metrics.outbox_failed.labels(channel).inc()
        scrubbed = scrub_payload(payload)
        if values["status"] != "pending" and scrubbed is not payload:
            values["payload_enc"] = self._cipher.encrypt_json(scrubbed)
            kept_recipient = recipient_after_sending(payload, user_id)
            if kept_recipient != user_id:
                values["user_id"] = kept_recipient
                values["chat_key"] = chat_key(channel, group_id, kept_recipient)
        if error is not None:
            log.warning(
                "outbox %s via %s attempt %s: %s (%s)",
                outbox_id,
                channel,
                attempts,
                error.reason,
                outcome.status,
            )
        on_failure = on_failure_of(payload) if values["status"] == "failed" else None
        return _Attempt(outcome, values, on_failure, now, row.created_at, revived)

    async def _record(self, attempts: list[_Attempt]) -> None:
        """Write a batch's outcomes in one transaction: one executemany per shape of update
        (a run of sends is one statement), a failure with a notice on its own."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        notices = False
        async with self._turn(), self._sessions.begin() as session:
            for a in attempts:
                params = {"outbox_id": a.outcome.outbox_id}
                params.update({f"v_{k}": v for k, v in a.values.items()})
                columns = tuple(sorted(a.values))
                if a.on_failure is None:
                    shapes.setdefault(columns, []).append(params)
                    continue
                finished = await session.execute(_finish_statement(columns), params)
                # Only the worker that recorded the failure acts on it, in the same commit (a
                # row whose lease another worker took over matches nothing).
                if not rowcount(finished):
                    continue
                if a.on_failure.notice is not None:
                    enqueue(session, a.on_failure.notice, cipher=self._cipher, now=a.at)
                    notices = True
                if a.on_failure.ticket_id is not None and self._given_up is not None:
                    await self._given_up(session, a.on_failure.ticket_id, a.queued_at, a.at)
            # On the connection: a Core executemany, not the ORM's bulk update by primary key.
            connection = await session.connection()
            for columns, rows in shapes.items():
                await connection.execute(_finish_statement(columns), rows)
            revived = await self._revive(session, {a.revived for a in attempts if a.revived})
        if notices:
            self.wakeup.set()
        if revived:
            self._urgent_wakeup.set()

    async def _revive(self, session: AsyncSession, channels: set[str]) -> bool:
        """Make the urgent rows waiting out a backoff on ``channels``, which work again, due
        now; whether there were any. After an outage the safety replies and P1 pages that
        failed during it waited for their own timers (up to ``backoff_max_s``) while the
        channel was sending again. Each chat's order and pace are still the claim's."""
        now = self._clock.now()
        revived = 0
        for channel in sorted(channels):
            params = {"on_channel": channel, "now": now}
            made_due = rowcount(await session.execute(_revive_statement(), params))
            if made_due:
                log.info("channel %s works again: %d urgent messages due now", channel, made_due)
            revived += made_due
        return revived > 0

    async def run_forever(self) -> None:
        """The service loop: send what is due, then sleep until woken or the poll interval."""
        lane = "urgent outbox pass" if self._max_priority < _ORDINARY else "outbox pass"
        failures = FailureRun(log, lane, self._clock.now)
        while not self._stopping:
            try:
                did = await self.run_once()
            except Exception as error:
                failures.failed(error)
                did = []
            else:
                failures.worked()
            if did:
                continue
            self.wakeup.clear()
            wait_s = _BLOCKED_POLL_S if self.blocked else self._settings.poll_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), wait_s)

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the current pass."""
        self._stopping = True
        self.wakeup.set()
