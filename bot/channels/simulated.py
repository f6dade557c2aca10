"""An in-process stand-in for the group bridge, for the demo: it records what the bot says."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock


@dataclass
class SimulatedSend:
    idempotency_key: str
    group_id: str | None
    user_id: str | None
    payload: dict[str, Any]
    at: datetime


@dataclass
class SimulatedBridge:
    """A :class:`~bot.messages.Sender` that keeps every message and tells listeners."""

    clock: Clock
    sent: list[SimulatedSend] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _listeners: list[asyncio.Queue[SimulatedSend]] = field(default_factory=list)

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        if idempotency_key in self._seen:  # like a real bridge: one delivery per key
            return
        self._seen.add(idempotency_key)
        item = SimulatedSend(idempotency_key, group_id, user_id, payload, self.clock.now())
        self.sent.append(item)
        for queue in list(self._listeners):
            queue.put_nowait(item)

    def subscribe(self) -> asyncio.Queue[SimulatedSend]:
        """A queue that receives every later send."""
        queue: asyncio.Queue[SimulatedSend] = asyncio.Queue()
        self._listeners.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[SimulatedSend]) -> None:
        """Stop delivering to ``queue``."""
        if queue in self._listeners:
            self._listeners.remove(queue)
