"""Turns for the database: first come, first served, urgent work first, then held requests.

SQLAlchemy's pool hands a returned connection to whoever asks first, so under a burst new
requests overtook waiting ones and the unluckiest waited seconds; the inbound pipeline and the
delivery workers therefore take turns here, in arrival order (SQLite: one turn at a time, its
single connection; PostgreSQL: as many as the pool's base size). An *urgent* caller — the
outbox's urgent lane, a batch of emergencies — goes before every ordinary waiter: a safety
reply's claim then waits for the turn in progress (one processing slice at most), not for the
queue of journal writes and batches behind it. A *request* caller — the journal writer, whose
commit an HTTP request is held open for — goes next, before processing batches and ordinary
deliveries: under a burst, a journal write waited behind a processing batch or two, and the
accepting side's p99 was that wait (docs/performance.md, "Journal writes first").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class Turns:
    """``slots`` turns at a time; waiters served in order, urgent ones first, then requests."""

    def __init__(self, slots: int) -> None:
        self._free = max(1, slots)
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._requests: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()
        self._queues = (self._urgent, self._requests, self._ordinary)

    @contextlib.asynccontextmanager
    async def take(self, *, urgent: bool = False, request: bool = False) -> AsyncIterator[None]:
        """Hold a turn for the block; ``urgent`` jumps every other waiter, ``request`` (work
        a request waits for) the ordinary ones."""
        queue = self._urgent if urgent else self._requests if request else self._ordinary
        await self._acquire(queue)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, queue: deque[asyncio.Future[None]]) -> None:
        if self._free > 0 and not any(self._queues):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the turn as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have dropped it already
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in self._queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the turn passes straight to the next waiter
                    return
        self._free += 1
