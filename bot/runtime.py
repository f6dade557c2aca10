"""The runtime: every long-lived dependency, built once and passed in (no globals).

A foundation module: every layer is handed a :class:`Runtime`, so it imports nothing above the
foundation. The composition root builds it (bot/wiring.py, :func:`bot.wiring.build_runtime`);
the channel callbacks and the classifier are named for their types only (``TYPE_CHECKING``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channel_health import ChannelHealth
from bot.clock import Clock
from bot.leadership import Leadership
from bot.messages import Sender
from bot.metrics import Metrics
from bot.pii import PiiCipher
from bot.settings import Settings
from bot.texts import Texts
from bot.turns import Turns

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from bot.channels.wechat import WeChatCallback
    from bot.channels.wecom import WeComCallback
    from handlers.classify import Classifier


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cipher: PiiCipher
    texts: Texts
    classifier: Classifier
    http: httpx.AsyncClient
    senders: dict[str, Sender] = field(default_factory=dict)
    wechat: WeChatCallback | None = None
    wecom: WeComCallback | None = None
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a safety reply or P1 page is queued: wakes the outbox's urgent lane.
    urgent_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    health: ChannelHealth = field(default_factory=ChannelHealth)
    metrics: Metrics = field(default_factory=Metrics)
    # Run first by aclose(): background tasks started with the runtime (the inbound pipeline).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Whether this instance runs the scheduler's jobs (bot.leadership); one process
    # on SQLite always does.
    leadership: Leadership = field(default_factory=lambda: Leadership(None))
    # The inbound pipeline and the delivery workers take turns for the database (bot/turns.py:
    # in arrival order, urgent work first). SQLite (one connection, one writer): one at a
    # time. PostgreSQL: as many as the pool's base size, leaving its overflow to the
    # scheduler and the console. None: no turns (a runtime built without wiring).
    turns: Turns | None = None
    # Verifies the console's passwords at sign-in (bot.services.accounts.authenticate); None:
    # that module's own argon2id hasher. A seam: a test counts the verifications a sign-in
    # runs with argon2's own hasher, counting.
    passwords: PasswordHasher | None = None

    def db_turn(
        self, *, urgent: bool = False, request: bool = False
    ) -> AbstractAsyncContextManager[Any]:
        """Hold while using the database for inbound events or deliveries (first come, first
        served; ``urgent``: before every other waiter; ``request``: work an HTTP request is
        held open for, before the ordinary waiters)."""
        if self.turns is None:
            return contextlib.nullcontext()
        return self.turns.take(urgent=urgent, request=request)

    def wake_outbox(self, *, urgent: bool = False) -> None:
        """Wake the delivery workers to rows just committed. ``urgent``: rows at priority ≤ 1
        (urgent notices, their corrections and recalls), which the urgent lane sends."""
        self.outbox_wakeup.set()
        if urgent:
            self.urgent_wakeup.set()

    async def aclose(self) -> None:
        """Stop background tasks, release connections (HTTP client, scheduler lock, pool)."""
        for close in self.closers:
            await close()
        await self.leadership.close()
        await self.http.aclose()
        await self.engine.dispose()
