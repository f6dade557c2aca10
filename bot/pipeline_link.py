"""The server's side of its processing process (issue 17: accept at the speed of the wire).

``lianxin serve`` (with ``inbound.separate_process``, the default) accepts in its own process:
verify, decrypt, parse, hand the event over, answer. A second process, started and watched
from here (bot/processor_process.py), journals each event (the emergency check, the group
commit), processes the journal, sends the outbox and runs the scheduler. Each then has a core
of its own; in one process the processing took the accepting's event loop away in slices.

Over a ``socketpair`` the server made (bot/frames.py), the server asks and the child answers:

- ``accept``: the child's :meth:`Pipeline.submit`; answered once the row is durable, so
  nothing is answered before it is journaled, as in one process. A database that failed the
  write is answered ``unavailable`` (:class:`DatabaseUnavailable` here, a 503), any other
  failure ``error`` (:class:`ProcessorFailed`, a 500).
- ``accept_reply``: the child's :meth:`Pipeline.accept_with_reply` (passive replies). The
  waiter, its deadline and the claim handshake stay in the one process that processes the
  event, and the request costs one round trip.
- ``metrics`` and ``ready``: the child's counters, channel health and scheduler role;
  ``health`` (every second): the channels it marked down, for this process's console.
- ``wake``: the console queued a message here; the child's delivery worker looks now.

When the child dies, what it was asked fails (:class:`ProcessorUnavailable`, a 503: nothing
was answered, and the sender's retry is journaled once it is back); it is started again after
``restart_after_s``. Events journaled and not processed wait in the journal for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from bot.db import DatabaseUnavailable, ping
from bot.frames import FrameProtocol
from bot.messages import InboundMessage
from bot.pipeline import Accepted
from bot.runtime import Runtime
from models.outbox import OutboxMessage

log = logging.getLogger("lianxin.processor")


class ProcessorUnavailable(Exception):
    """The processing process is not there (starting, or starting again)."""


class ProcessorFailed(Exception):
    """The processing process answered with an error (it logged the traceback)."""


@dataclass
class ProcessorLink:
    """Starts the processing process, keeps it running, and relays the inbound port to it."""

    runtime: Runtime
    command: Sequence[str]  # the child's argv; "--fd N" is appended
    restart_after_s: float = 1.0
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 15.0
    health_every_s: float = 1.0  # how often this process takes the child's channel health
    # A child that has not answered that look for this long is stuck (its event loop held):
    # it is killed, and started again like one that died.
    hang_after_s: float = 10.0
    restart_at_most_s: float = 30.0  # failed starts in a row wait twice as long each time
    _link: FrameProtocol | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _stopping: bool = False
    _was_ready: bool = False  # the child has been ready once (a restart, not a failed start)
    _failures: int = 0  # starts in a row that ended before the child was ready
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    _up: Gauge = field(init=False)
    _restarts: Counter = field(init=False)

    def __post_init__(self) -> None:
        # The server's own figures, in front of the child's on /metrics (and alone while
        # there is no child to ask).
        self._up = Gauge(
            "lianxin_processor_up",
            "1 while the processing process answers, 0 while it is (re)starting.",
            registry=self.metrics,
        )
        self._restarts = Counter(
            "lianxin_processor_restarts",
            "Times the processing process was started again after it ended or hung "
            "(its own counters start again from zero then).",
            registry=self.metrics,
        )

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the child and return once it is ready; a child that cannot start (its
        settings, its database) ends the server with the child's log saying why."""
        self._tasks.append(asyncio.create_task(self._supervise(), name="processor-supervisor"))
        for wakeup, urgent in (
            (self.runtime.outbox_wakeup, False),
            (self.runtime.urgent_wakeup, True),
        ):
            self._tasks.append(asyncio.create_task(self._forward(wakeup, urgent=urgent)))
        self._tasks.append(asyncio.create_task(self._watch(), name="processor-watch"))
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._tasks[0]},
            timeout=self.start_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if ready not in done:
            ready.cancel()
            await self.stop()
            raise RuntimeError("the processing process did not start (see its log above)")

    async def stop(self) -> None:
        """Close the link (the child finishes its batch and exits) and wait for the child."""
        self._stopping = True
        if self._link is not None:
            self._link.close()
        process = self._process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout_s)
            except TimeoutError:
                log.warning("the processing process did not stop; killing it")
                process.kill()
                await process.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    @property
    def pid(self) -> int | None:
        """The running child's process id (None while there is none)."""
        return None if self._process is None else self._process.pid

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            ours, theirs = socket.socketpair()
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *self.command,
                    "--fd",
                    str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),),
                    stdin=asyncio.subprocess.DEVNULL,
                )
            except OSError as exc:  # out of processes or descriptors: try again later
                ours.close()
                log.error("could not start the processing process: %s", exc)
                await self._pause_before_restart()
                continue
            finally:
                theirs.close()
            lost: asyncio.Future[None] = loop.create_future()

            def on_lost(_: Exception | None, lost: asyncio.Future[None] = lost) -> None:
                if not lost.done():
                    lost.set_result(None)

            _, link = await loop.create_connection(
                lambda: FrameProtocol(self._on_frame, on_lost), sock=ours
            )
            self._link = link
            # The child runs on this process's settings as they were at its start, not on the
            # config file as it may have been edited since.
            link.send(("settings", 0, self.runtime.settings))
            if self._stopping:  # stop() came while the child was starting
                link.close()
            await lost
            self._link = None
            self._ready.clear()
            self._up.set(0)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProcessorUnavailable("the processing process ended"))
            self._pending.clear()
            code = await self._process.wait()
            if self._stopping:
                return
            if not self._was_ready:
                return  # the first one never started: start() reports it
            (log.warning if code == 0 else log.error)(
                "the processing process ended (exit %s); starting it again", code
            )
            self._restarts.inc()
            await self._pause_before_restart()

    async def _pause_before_restart(self) -> None:
        """``restart_after_s``, doubled for each start in a row that never got ready (a child
        that cannot start does not spin), up to ``restart_at_most_s``."""
        pause = min(self.restart_after_s * 2**self._failures, self.restart_at_most_s)
        self._failures += 1
        await asyncio.sleep(pause)

    def _on_frame(self, frame: tuple[Any, ...]) -> None:
        kind, request_id, value = frame
        if kind == "ready":
            if self._was_ready:
                log.info("the processing process is ready again (pid %s)", self.pid)
            self._was_ready = True
            self._failures = 0
            self._ready.set()
            self._up.set(1)
            return
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        if kind == "ok":
            future.set_result(value)
        elif kind == "unavailable":  # the child's database failed: a 503, as in one process
            future.set_exception(DatabaseUnavailable(value))
        else:
            future.set_exception(ProcessorFailed(value))

    def _ask(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        link = self._link
        if link is None or not self._ready.is_set():
            raise ProcessorUnavailable("the processing process is starting")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if not link.send((kind, request_id, *args)):
            del self._pending[request_id]
            raise ProcessorUnavailable("the processing process ended")
        return future

    async def _forward(self, wakeup: asyncio.Event, *, urgent: bool) -> None:
        """Messages queued by this process (the console, the admin API) are sent by the
        child's delivery workers: wake them as this process's would have been woken."""
        while True:
            await wakeup.wait()
            wakeup.clear()
            if self._link is not None:
                self._link.send(("wake", 0, urgent))

    async def _watch(self) -> None:
        """Every ``health_every_s``: take the child's channel health (this process's console
        shows the channels the child, which sends, has marked down), and kill a child that
        has not answered for ``hang_after_s`` (requests would wait for it without end)."""
        while True:
            await asyncio.sleep(self.health_every_s)
            try:
                down = await asyncio.wait_for(self._ask("health", None), self.hang_after_s)
            except (ProcessorUnavailable, ProcessorFailed):
                continue
            except TimeoutError:
                process = self._process
                if process is not None and process.returncode is None and not self._stopping:
                    log.error(
                        "the processing process has not answered for %.0f s; killing it",
                        self.hang_after_s,
                    )
                    process.kill()
                continue
            self.runtime.health.mirror(set(down))

    # --- the inbound port -----------------------------------------------------------------
    async def accept(
        self, event: InboundMessage, *, passive_until: datetime | None = None
    ) -> Accepted:
        """Journaled by the child; returns once the row is durable."""
        accepted: Accepted = await self._ask("accept", event, passive_until)
        return accepted

    async def accept_with_reply(
        self, event: InboundMessage, *, passive_until: datetime
    ) -> OutboxMessage | None:
        """Journaled by the child, which also waits for the passive reply: one round trip.
        When the child goes away meanwhile this fails (a 503) whether or not the event was
        journaled: the channel's retry is journaled, or answered as the duplicate it is."""
        reply: OutboxMessage | None = await self._ask("accept_reply", event, passive_until)
        return reply

    async def metrics_text(self) -> bytes:
        """This process's figures about the child, then the child's counters and the shared
        backlog (only the former while the child is not there)."""
        own = generate_latest(self.metrics)
        try:
            text: bytes = await self._ask("metrics", None)
        except (ProcessorUnavailable, ProcessorFailed):
            return own
        return own + text

    async def readiness(self) -> dict[str, Any]:
        """The child's readiness; while it is not there, ``processor: down`` (not ready)."""
        try:
            body: dict[str, Any] = await self._ask("ready", None)
        except (ProcessorUnavailable, ProcessorFailed):
            database = "up" if await ping(self.runtime.engine) else "down"
            return {"ok": False, "database": database, "processor": "down"}
        return {**body, "processor": "up"}
