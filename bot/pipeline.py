"""Accept at the speed of the wire, process behind, emergencies first (issue 17).

Accepting: a channel endpoint verifies and parses an event, runs the emergency check and hands
it to :meth:`Pipeline.accept`, which returns once the event's journal row is durable. A single
writer task gathers the events that arrive within ``inbound.gather_ms`` (or up to
``inbound.max_batch``) into one transaction: one INSERT for all of them, one commit. Nothing is
answered before its row is committed, so a crash after the answer loses nothing.

Processing: a processor task claims unprocessed journal rows, emergencies first and otherwise in
journal order, and runs each through :meth:`Dispatcher.process` in one transaction per batch,
which marks the rows processed. Per chat the order holds: one processor task per process, and on
PostgreSQL a transaction-scoped advisory lock per chat keeps another process off a chat's events
while one has them (docs/performance.md). Passive replies: an endpoint that may answer in its
response registers a waiter at acceptance; the processor claims the passive reply for it while
the waiter is still waiting and its deadline has not passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.db import DatabaseUnavailable, FailureRun, ping, reported_unavailable, unavailable
from bot.dispatcher import Dispatcher, DispatchResult
from bot.inbound_status import earlier_passive, metrics_text, readiness
from bot.messages import InboundMessage
from bot.runtime import Runtime
from handlers.context import classifiable
from models.directory import Group
from models.journal import InboundEvent
from models.outbox import OutboxMessage

log = logging.getLogger("lianxin.pipeline")
_journal = cast(Table, InboundEvent.__table__)
_JOURNAL_COLUMNS = (
    "channel", "dedup_key", "kind", "group_id", "sender_id", "payload_enc", "received_at",
    "status", "emergency",
)  # fmt: skip
_CLAIM_COLUMNS = (
    _journal.c.id, _journal.c.channel, _journal.c.dedup_key, _journal.c.kind,
    _journal.c.group_id, _journal.c.sender_id, _journal.c.payload_enc, _journal.c.received_at,
    _journal.c.emergency,
)  # fmt: skip
_QUEUE = (
    select(*_CLAIM_COLUMNS)
    .where(_journal.c.processed_at.is_(None))
    .order_by(_journal.c.emergency.desc(), _journal.c.id)
    .limit(bindparam("n"))
)
# PostgreSQL: walk the queue's first rows in order and take a row when this transaction gets
# its chat's advisory lock (held by one transaction at a time, re-entrantly), until :n rows are
# taken. The outer LIMIT stops the walk there, so only the chats of the rows taken get locked;
# rows of a chat another process holds are skipped, and each chat's rows taken are a prefix of
# its queue. PostgreSQL does not push a volatile function's condition below the inner LIMIT.
_PG_LOCK = text(
    "SELECT q.id FROM (SELECT id, channel, coalesce(group_id, '@' || sender_id) AS chat "
    "FROM inbound_events WHERE processed_at IS NULL ORDER BY emergency DESC, id "
    "LIMIT :window) q "
    "WHERE pg_try_advisory_xact_lock(hashtextextended(q.channel || ':' || q.chat, 17)) "
    "LIMIT :n"
)
# Then read them again in a new snapshot: rows another process processed before it let go of
# the chat's lock are done. By primary key alone, filtered and ordered here: with the queue's
# condition in the statement PostgreSQL reads the rows through the queue's partial index, which
# walks the whole backlog for them (5 ms a batch behind 10,000 events).
_PG_RECHECK = (
    select(*_CLAIM_COLUMNS, _journal.c.processed_at)
    .where(_journal.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)
# Verdicts of the emergency check kept for the processor (it would classify again without).
_MAX_VERDICTS = 20_000
# How far past the rows it takes a processor looks for chats no other process holds.
_PG_WINDOW = 8
# Unprocessed events before a given one, counted up to :n (the queue's partial index).
_AHEAD = select(func.count()).select_from(
    select(_journal.c.id)
    .where(_journal.c.processed_at.is_(None), _journal.c.id < bindparam("id"))
    .limit(bindparam("n"))
    .subquery()
)
_KNOWN_GROUPS = select(Group.id).where(Group.id.in_(bindparam("ids", expanding=True)))
_EXISTING = select(_journal.c.id, _journal.c.status).where(
    _journal.c.channel == bindparam("channel"), _journal.c.dedup_key == bindparam("dedup_key")
)
_FAILED = (
    update(_journal)
    .where(_journal.c.id == bindparam("journal_id"), _journal.c.processed_at.is_(None))
    .values(status="failed", processed_at=bindparam("now"))
)


@dataclass(frozen=True)
class Accepted:
    """What an endpoint learns once an event is journaled."""

    journal_id: int
    duplicate: bool
    status: str  # "accepted", or for a duplicate what its first arrival became
    unknown_group: bool = False


class InboundPort(Protocol):
    """What the channel routes and the status routes use of the inbound side: the
    :class:`Pipeline` of this process, or the server's link to its processing process
    (bot/pipeline_link.py). ``accept`` and ``accept_with_reply`` raise
    :class:`bot.db.DatabaseUnavailable` when the database could not take the event: the
    endpoints answer 503, and the sender's retry is journaled."""

    async def accept(
        self, event: InboundMessage, *, passive_until: datetime | None = None
    ) -> Accepted: ...

    async def accept_with_reply(
        self, event: InboundMessage, *, passive_until: datetime
    ) -> OutboxMessage | None: ...

    async def metrics_text(self) -> bytes: ...

    async def readiness(self) -> dict[str, Any]: ...


@dataclass
class _Incoming:
    event: InboundMessage
    values: dict[str, Any]
    passive_until: datetime | None
    classification: Any
    future: asyncio.Future[Accepted]


@dataclass
class _Waiter:
    """An endpoint waiting to answer with the event's first reply (a passive reply)."""

    passive_until: datetime
    future: asyncio.Future[OutboxMessage | None]
    claimed: bool = False  # the processor marked a reply as passive: its commit decides
    abandoned: bool = False  # the endpoint answered without it
    # The emergency check flagged it: processed first, and its safety reply is worth waiting
    # for in a burst too (a subscription account has no API to send it later).
    emergency: bool = False

    def still_waiting(self, rt: Runtime) -> Callable[[], bool]:
        """Asked when the handlers are done: may the first reply ride in the response?"""
        return lambda: not self.abandoned and rt.clock.now() <= self.passive_until


@dataclass
class Pipeline:
    """The journal writer and the processor of one process (both lazily started tasks)."""

    runtime: Runtime
    dispatcher: Dispatcher
    _incoming: list[_Incoming] = field(default_factory=list)
    _incoming_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _urgent: asyncio.Event = field(default_factory=asyncio.Event)
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    _waiters: dict[int, _Waiter] = field(default_factory=dict)
    _verdicts: dict[int, Any] = field(default_factory=dict)  # journal id → classification
    _last_write: float = 0.0
    _last_arrival: float = 0.0  # when the last event reached accept()
    # Every ordinary event up to this journal id is processed, as far as this process knows:
    # the newest one its processor settled (emergencies, taken out of order, do not move it),
    # or, when the processor found nothing left, the newest one its writer journaled. None
    # until either happens. A passive request far behind it does not wait.
    _head: int | None = None
    _last_id: int = 0  # the newest journal id this process's writer inserted
    _writer: asyncio.Task[None] | None = None
    _processor: asyncio.Task[None] | None = None

    # --- accepting ------------------------------------------------------------------------
    async def accept(
        self, event: InboundMessage, *, passive_until: datetime | None = None
    ) -> Accepted:
        """Journal ``event`` (group-committed) and return once its row is durable.

        With ``passive_until`` a waiter is registered for :meth:`passive_reply`. The emergency
        check runs here, so that an emergency is processed before everything queued.
        :class:`DatabaseUnavailable` when the database could not take the row."""
        return await self.submit(event, passive_until=passive_until)

    def submit(
        self, event: InboundMessage, *, passive_until: datetime | None = None
    ) -> asyncio.Future[Accepted]:
        """:meth:`accept` without a coroutine: the future is resolved once the row is durable
        (the processing process answers the server from its callback, no task per event)."""
        rt = self.runtime
        classification = None
        if event.kind == "message" and (words := classifiable(event)).strip():
            classification = rt.classifier.classify(words)
        values = {
            "channel": event.channel,
            "dedup_key": event.dedup_key,
            "kind": event.kind,
            "group_id": event.group_id,
            "sender_id": event.sender_id,
            "payload_enc": rt.cipher.encrypt_json(event.journal_payload()),
            "received_at": rt.clock.now(),
            "status": "accepted",
            "emergency": bool(classification is not None and classification.emergency),
        }
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._last_arrival = time.monotonic()
        self._incoming.append(_Incoming(event, values, passive_until, classification, future))
        self._incoming_ready.set()
        self.start()
        return future

    async def _write_loop(self) -> None:
        gather_s = self.runtime.settings.inbound.gather_ms / 1000
        max_batch = self.runtime.settings.inbound.max_batch
        while True:
            # Events that arrived during the last write have waited for it already: they are
            # written now, together. Only a first event after a quiet moment waits gather_ms
            # for the ones arriving with it.
            arrived_meanwhile = self._incoming_ready.is_set()
            await self._incoming_ready.wait()
            if gather_s and not arrived_meanwhile and len(self._incoming) < max_batch:
                await asyncio.sleep(gather_s)  # let the events arriving now share the commit
            batch, self._incoming = self._incoming[:max_batch], self._incoming[max_batch:]
            if not self._incoming:
                self._incoming_ready.clear()
            try:
                with reported_unavailable():
                    await self._write(batch)
            except DatabaseUnavailable as exc:
                # Nothing answered, nothing lost: each request is answered 503 (the endpoints)
                # and its sender retries. One line: an outage fails every batch.
                log.error("journal write failed for %d events: %s", len(batch), exc)
                failure: Exception = exc
            except Exception as exc:  # the requests fail (500): nothing answered, nothing lost
                log.exception("journal write failed for %d events", len(batch))
                failure = exc
            else:
                continue
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(failure)

    async def _write(self, batch: Sequence[_Incoming]) -> None:
        rt = self.runtime
        first: dict[tuple[str, str], _Incoming] = {}
        for item in batch:
            first.setdefault((item.event.channel, item.event.dedup_key), item)
        group_ids = sorted({i.event.group_id for i in first.values() if i.event.group_id})
        # Before processing batches and deliveries: each of these events' requests is held
        # open until this commit.
        async with rt.db_turn(request=True), rt.engine.begin() as conn:
            known: set[str] = set()
            if group_ids:
                known = set((await conn.execute(_KNOWN_GROUPS, {"ids": group_ids})).scalars())
            rows = await conn.execute(_insert(conn), [item.values for item in first.values()])
            ids = {(r.channel, r.dedup_key): r.id for r in rows}
            if ids:
                self._last_id = max(self._last_id, *ids.values())
            existing = {
                key: (await conn.execute(_EXISTING, {"channel": key[0], "dedup_key": key[1]})).one()
                for key in first
                if key not in ids
            }
        self._last_write = time.monotonic()
        for item in batch:
            # Counted once committed: an event the database did not take (a 503, retried)
            # was not received, and its retry is counted when it is.
            rt.metrics.events_received.labels(item.event.channel).inc()
            key = (item.event.channel, item.event.dedup_key)
            unknown = bool(item.event.group_id) and item.event.group_id not in known
            if key in ids and first[key] is item:
                journal_id = ids[key]
                if item.passive_until is not None:
                    loop = asyncio.get_running_loop()
                    self._waiters[journal_id] = _Waiter(
                        item.passive_until,
                        loop.create_future(),
                        emergency=bool(item.values["emergency"]),
                    )
                if item.classification is not None:
                    if len(self._verdicts) > _MAX_VERDICTS:
                        # Kept for events another process handled: a saving, not a record.
                        self._verdicts.clear()
                    self._verdicts[journal_id] = item.classification
                result = Accepted(journal_id, False, "accepted", unknown)
                if item.values["emergency"]:
                    self._urgent.set()
            elif key in ids:  # the same event twice in one batch
                result = Accepted(ids[key], True, "accepted", unknown)
            else:
                journal_id, status = existing[key]
                result = Accepted(journal_id, True, status, status == "unknown_group")
            if result.duplicate:  # nothing left to do for it: processed as it arrives
                rt.metrics.events_processed.labels(item.event.channel, "duplicate").inc()
            if not item.future.done():
                item.future.set_result(result)
        self._wakeup.set()

    async def accept_with_reply(
        self, event: InboundMessage, *, passive_until: datetime
    ) -> OutboxMessage | None:
        """Journal ``event`` and return the reply to answer its request with (a passive
        reply): for a retried event, the one its first arrival was answered with; otherwise
        its first reply, when it is processed before ``passive_until``. None: answer without
        one (the replies go through the channel's API). :class:`DatabaseUnavailable` when the
        database failed the journal write or a read after it: the channel's retry is journaled,
        or answered as the duplicate it is."""
        with reported_unavailable():
            accepted = await self.accept(event, passive_until=passive_until)
            if accepted.duplicate:
                # The channel retries only when our answer did not reach it: the same reply.
                return await earlier_passive(self.runtime, accepted.journal_id)
            left = (passive_until - self.runtime.clock.now()).total_seconds()
            return await self.passive_reply(accepted.journal_id, budget_s=max(0.0, left))

    async def passive_reply(self, journal_id: int, *, budget_s: float) -> OutboxMessage | None:
        """The reply to answer in the response: wait (at most ``budget_s``) for the event's
        processing. None when there is none or it is not ready in time (the outbox worker then
        sends it through the channel's API)."""
        waiter = self._waiters.get(journal_id)
        if waiter is None:
            return None
        if self._processor is None:
            # No processor task (an in-process client without the server's lifespan): this
            # request processes the queue, emergencies and earlier events first, up to its own.
            while not waiter.future.done() and await self.process_once():
                pass
        elif (
            not waiter.emergency
            and (
                len(self._waiters) > (batch := self.runtime.settings.inbound.process_batch)
                or await self._behind(journal_id, more_than=batch)
            )
            and not (waiter.claimed or waiter.future.done())
        ):
            # A burst: more than a batch is waiting, or queued ahead of this event. Answer now
            # rather than hold the connection until the budget runs out; the reply goes
            # through the channel's API when it is ready. (Checked after the await above: a
            # reply claimed meanwhile rides in this response.) Not an emergency: it jumps the
            # queue, and its safety reply rides in the response within the budget.
            waiter.abandoned = True
            self._waiters.pop(journal_id, None)
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), budget_s)
        except TimeoutError:
            if waiter.claimed:  # marked passive in a transaction that is committing now
                return await waiter.future
            waiter.abandoned = True
            return None
        finally:
            self._waiters.pop(journal_id, None)

    async def _behind(self, journal_id: int, *, more_than: int) -> bool:
        """Whether more than ``more_than`` unprocessed events precede ``journal_id``: measured
        from :attr:`_head` (ordinary events are processed in journal order), or, before this
        process has one, counted in the journal (at most ``more_than + 1`` index entries)."""
        if self._head is not None:
            return journal_id - self._head > more_than
        async with self.runtime.db_turn(request=True), self.runtime.engine.connect() as conn:
            ahead = await conn.scalar(_AHEAD, {"id": journal_id, "n": more_than + 1})
        return int(ahead or 0) > more_than

    async def metrics_text(self) -> bytes:
        """``GET /metrics``'s body: this process's counters and the shared backlog."""
        return await metrics_text(self.runtime)

    async def readiness(self) -> dict[str, Any]:
        """``GET /readyz``'s body: the database, the channels marked down, the scheduler."""
        return await readiness(self.runtime)

    # --- processing -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the journal writer if it is not running (on the first event)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="journal-writer")

    def start_processing(self) -> None:
        """Start the processor task (with the server). Without it, events are processed by
        :meth:`drain`, and a request waiting for a passive reply processes the queue itself."""
        if self._processor is None:
            self._processor = asyncio.create_task(self._process_loop(), name="inbound-processor")

    async def stop(self) -> None:
        """Stop both tasks; events journaled and not processed stay queued for the next run."""
        tasks = [t for t in (self._writer, self._processor) if t is not None]
        self._writer = self._processor = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _process_loop(self) -> None:
        settings = self.runtime.settings.inbound
        failures = FailureRun(log, "inbound processing", self.runtime.clock.now)
        while True:
            self._wakeup.clear()
            await self._yield_to_urgent_sends(settings.urgent_yield_s)
            # Two turns of the event loop: requests that arrived while the last batch held it
            # are read and reach accept() first, so that they count below.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            started = time.monotonic()
            journaled = self._last_id  # before the look below: all of it is in its snapshot
            # Catching up: no request for a moment, none waiting for its reply, no emergency
            # queued. Nothing then waits for the event loop, and larger batches spread each
            # batch's own statements over more events.
            catching_up = (
                started - self._last_arrival > settings.catch_up_after_s
                and not self._waiters
                and not self._urgent.is_set()
                and not self.runtime.urgent_wakeup.is_set()
            )
            try:
                done = await self.process_once(catching_up=catching_up)
            except Exception as error:
                failures.failed(error)
                done = 0
                await asyncio.sleep(settings.poll_interval_s)
            else:
                failures.worked()
            if done == 0:
                if journaled:  # everything journaled before this look is processed
                    self._head = max(self._head or 0, journaled)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), settings.poll_interval_s)
                continue
            # While requests keep arriving, leave them most of the event loop: the backlog is
            # processed when the burst ends. Emergencies cut the pause short.
            took = time.monotonic() - started
            accepting = time.monotonic() - self._last_write < max(took, 0.05)
            # Requests waiting for their passive reply are waiting for this very work.
            waited_for = bool(self._waiters)
            if (
                accepting
                and not waited_for
                and not self._urgent.is_set()
                and settings.process_share < 1
            ):
                pause = took * (1 - settings.process_share) / settings.process_share
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), pause)
            else:
                await asyncio.sleep(0)

    async def _yield_to_urgent_sends(self, at_most_s: float) -> None:
        """Wait while the outbox's urgent lane has work (``Runtime.urgent_wakeup`` is set until
        the lane finds nothing to send), unless an emergency is queued here, at most
        ``at_most_s``. Its sends need a few turns of the event loop each, and every batch run
        in the meantime lengthens each turn by its own duration."""
        deadline = time.monotonic() + at_most_s
        # Polled: asyncio cannot await an Event being cleared.
        while (  # noqa: ASYNC110
            self.runtime.urgent_wakeup.is_set()
            and not self._urgent.is_set()
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.002)

    async def drain(self) -> None:
        """Process until no journaled event waits (the tests' deterministic drain, after the
        requests were answered: their events are journaled by then)."""
        while await self.process_once():
            pass

    async def process_once(self, *, catching_up: bool = False) -> int:
        """Claim and process one batch; returns how many events were processed.
        ``catching_up``: the larger batch and time slice of a backlog with nobody waiting."""
        settings = self.runtime.settings.inbound
        limit, slice_ms = (
            (settings.catch_up_batch, settings.catch_up_slice_ms)
            if catching_up
            else (settings.process_batch, settings.slice_ms)
        )
        async with self._turn:
            try:
                return await self._batch(limit, slice_ms=slice_ms)
            except Exception as error:
                self._release_waiters()
                if unavailable(error):
                    # The database down is no event's fault: one by one would only fail again.
                    if not await ping(self.runtime.engine):
                        raise
                    # It answers again (the batch failed as it came back): the batch once more.
                    try:
                        return await self._batch(limit, slice_ms=slice_ms)
                    except Exception:
                        self._release_waiters()
                log.exception("a batch of inbound events failed; processing them one by one")
            return await self._batch(1, isolate=True)

    def _release_waiters(self) -> None:
        """Nothing of a failed batch was committed: a request waiting for its passive reply must
        not wait for a row that is not there (it waited out a whole database outage)."""
        for waiter in self._waiters.values():
            waiter.claimed = False

    async def _batch(
        self, limit: int, *, isolate: bool = False, slice_ms: float | None = None
    ) -> int:
        rt = self.runtime
        slice_s = (rt.settings.inbound.slice_ms if slice_ms is None else slice_ms) / 1000
        emergencies_queued = self._urgent.is_set()
        self._urgent.clear()
        done: list[tuple[InboundMessage, DispatchResult]] = []
        claimed: list[tuple[int, str]] = []  # journal id, channel
        urgent_batch = more = False
        now = rt.clock.now()
        try:
            async with rt.db_turn(urgent=emergencies_queued), rt.sessions.begin() as session:
                rows = await _claim(session, limit)
                urgent_batch = bool(rows) and rows[0].emergency
                if urgent_batch:
                    # Emergencies are committed on their own: their safety replies and pages
                    # go out without waiting for a batch of ordinary events (claimed first,
                    # they are the rows' prefix). All of those claimed, whatever the time
                    # slice: each waits for the others' batches otherwise (an emergency took
                    # 50-100 ms on PostgreSQL under load, and the slice is 10 ms).
                    more = len(rows) == limit and rows[-1].emergency
                    rows = [row for row in rows if row.emergency]
                started = time.monotonic()
                events = [(row.id, _event(rt, row)) for row in rows]
                # What the events share is read and written once for the batch.
                batch = await self.dispatcher.prepare(session, events, now=now)
                for journal_id, event in events:
                    if done and not urgent_batch and time.monotonic() - started > slice_s:
                        break  # the rest stays queued, in order, for the next batch
                    claimed.append((journal_id, event.channel))
                    waiter = self._waiters.get(journal_id)
                    result = await self.dispatcher.process(
                        session,
                        event,
                        journal_id,
                        now=now,
                        claim_passive=None if waiter is None else waiter.still_waiting(rt),
                        classification=self._verdicts.get(journal_id),
                        batch=batch,
                    )
                    if waiter is not None and result.passive is not None:
                        # No await since the claim: the endpoint now waits for the commit.
                        waiter.claimed = True
                    done.append((event, result))
                await batch.finish()
        except Exception:
            if not isolate or not claimed:
                raise
            journal_id, channel = claimed[-1]
            log.exception("inbound event %s failed: marked failed", journal_id)
            async with rt.db_turn(), rt.sessions.begin() as session:
                await session.execute(_FAILED, {"journal_id": journal_id, "now": now})
            self._settle(journal_id, None)
            # By its channel, like the other outcomes: which channel's events fail is the
            # first thing to know about them.
            rt.metrics.events_processed.labels(channel, "failed").inc()
            return 1
        emergencies = {row.id for row in rows if row.emergency}
        if more:
            self._urgent.set()  # emergencies may be left: the next batch is theirs, at once
        for event, result in done:
            rt.metrics.events_processed.labels(event.channel, result.status).inc()
            if result.passive is not None:
                # Sent in the waiting request's response (WeChat's, WeCom's passive reply):
                # the delivery worker, which counts the others, never sees it. Counted once
                # committed, as the claim of a batch that failed is undone.
                rt.metrics.outbox_sent.labels(result.passive.channel).inc()
            self._settle(result.journal_id, result.passive)
            if result.journal_id not in emergencies:
                self._head = max(self._head or 0, result.journal_id)
        if any(result.outbox for _, result in done):
            rt.outbox_wakeup.set()
        if any(row.priority <= 1 for _, result in done for row in result.outbox):
            rt.urgent_wakeup.set()
        return len(done)

    def _settle(self, journal_id: int, passive: OutboxMessage | None) -> None:
        self._verdicts.pop(journal_id, None)
        waiter = self._waiters.get(journal_id)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(passive)


def _insert(conn: AsyncConnection) -> Any:
    return _insert_statement(conn.dialect.name)


_INSERTS: dict[str, Any] = {}


def _insert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING, built once per dialect: a retried event
    finds its key taken and is reported as a duplicate."""
    if dialect not in _INSERTS:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        _INSERTS[dialect] = (
            insert(_journal)
            .values({c: bindparam(c) for c in _JOURNAL_COLUMNS})
            .on_conflict_do_nothing()
            .returning(_journal.c.id, _journal.c.channel, _journal.c.dedup_key)
        )
    return _INSERTS[dialect]


async def _claim(session: AsyncSession, limit: int) -> Sequence[Any]:
    if session.get_bind().dialect.name != "postgresql":
        # One process on SQLite (its single writer): the processor's own lock is enough.
        return (await session.execute(_QUEUE, {"n": limit})).all()
    window = limit * _PG_WINDOW
    ids = list((await session.execute(_PG_LOCK, {"n": limit, "window": window})).scalars())
    if not ids:
        return []
    rows = (await session.execute(_PG_RECHECK, {"ids": ids})).all()
    return sorted(
        (row for row in rows if row.processed_at is None),
        key=lambda row: (not row.emergency, row.id),
    )


def _event(rt: Runtime, row: Any) -> InboundMessage:
    return InboundMessage.from_journal(
        channel=row.channel,
        dedup_key=row.dedup_key,
        kind=row.kind,
        sender_id=row.sender_id,
        group_id=row.group_id,
        received_at=row.received_at,
        payload=rt.cipher.decrypt_json(row.payload_enc),
    )
