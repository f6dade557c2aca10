"""The server's side of its processing process (issue 17: accept at the speed of the wire).

``lianxin serve`` (with ``inbound.separate_process``, the default) accepts in its own process:
verify, decrypt, parse, hand the event over, answer. A second process, started and watched
from here (bot/processor_process.py), journals each event (the emergency check, the group
commit), processes the journal, sends the outbox and runs the scheduler. Each then has a core
of its own; in one process the processing took the accepting's event loop away in slices.

Over a ``socketpair`` the server made (bot/frames.py), the server asks and the child answers:

- ``accept``: the child's :meth:`Pipeline.submit`; answered once the row is durable, so
  nothing is answered before it is journaled, as in one process.
- ``passive``: the child's :meth:`Pipeline.passive_reply`. The waiter, its deadline and the
  claim handshake stay in the one process that processes the event.
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

from bot.db import ping
from bot.frames import FrameProtocol
from bot.inbound_status import earlier_passive
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
    _link: FrameProtocol | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _stopping: bool = False
    _starts: int = 0
    _was_ready: bool = False  # the child has been ready once (a restart, not a failed start)

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
        self._tasks.append(asyncio.create_task(self._mirror_health(), name="processor-health"))
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
            finally:
                theirs.close()
            self._starts += 1
            lost: asyncio.Future[None] = loop.create_future()

            def on_lost(_: Exception | None, lost: asyncio.Future[None] = lost) -> None:
                if not lost.done():
                    lost.set_result(None)

            _, link = await loop.create_connection(
                lambda: FrameProtocol(self._on_frame, on_lost), sock=ours
            )
            self._link = link
            await lost
            self._link = None
            self._ready.clear()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProcessorUnavailable("the processing process ended"))
            self._pending.clear()
            code = await self._process.wait()
            if self._stopping:
                return
            if self._starts == 1 and code != 0 and not self._was_ready:
                return  # it never started: start() reports it
            log.error("the processing process ended (exit %s); starting it again", code)
            await asyncio.sleep(self.restart_after_s)

    def _on_frame(self, frame: tuple[Any, ...]) -> None:
        kind, request_id, value = frame
        if kind == "ready":
            self._was_ready = True
            self._ready.set()
            return
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        if kind == "ok":
            future.set_result(value)
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

    async def _mirror_health(self) -> None:
        """The console of this process shows the channels the child (which sends) has marked
        down; looked up every ``health_every_s``."""
        while True:
            await asyncio.sleep(self.health_every_s)
            with contextlib.suppress(ProcessorUnavailable, ProcessorFailed):
                self.runtime.health.mirror(set(await self._ask("health", None)))

    # --- the inbound port -----------------------------------------------------------------
    async def accept(
        self, event: InboundMessage, *, passive_until: datetime | None = None
    ) -> Accepted:
        """Journaled by the child; returns once the row is durable."""
        accepted: Accepted = await self._ask("accept", event, passive_until)
        return accepted

    async def passive_reply(self, journal_id: int, *, budget_s: float) -> OutboxMessage | None:
        """The child's passive reply for the event, or None (also when the child is gone and
        had not claimed one: the reply, once made, goes through the channel's API)."""
        try:
            reply: OutboxMessage | None = await self._ask("passive", journal_id, budget_s)
        except ProcessorUnavailable:
            # The child may have committed a reply as passive (marked sent) and died before
            # answering: nothing else would send it, and WeChat, answered, does not retry.
            return await earlier_passive(self.runtime, journal_id)
        return reply

    async def earlier_passive(self, journal_id: int) -> OutboxMessage | None:
        """The passive reply an earlier arrival of a retried event was answered with."""
        return await earlier_passive(self.runtime, journal_id)

    async def metrics_text(self) -> bytes:
        """The child's counters and the shared backlog."""
        text: bytes = await self._ask("metrics", None)
        return text

    async def readiness(self) -> dict[str, Any]:
        """The child's readiness; while it is not there, ``processor: down`` (not ready)."""
        try:
            body: dict[str, Any] = await self._ask("ready", None)
        except (ProcessorUnavailable, ProcessorFailed):
            database = "up" if await ping(self.runtime.engine) else "down"
            return {"ok": False, "database": database, "processor": "down"}
        return {**body, "processor": "up"}
