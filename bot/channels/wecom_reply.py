"""Sender for outbox channel ``wecom``: what the smart robot could not answer passively.

A smart robot has no general "send" API. What we can use:

- **Group chats**: the group's WeCom group-robot webhook (``groups.wecom_webhook``), through the
  shared :class:`WeComRobotSender` so its 20-a-minute window per robot is shared with bulletins
  and alerts. A group without a webhook fails with a clear, final reason.
- **Single chats**: no active send path is implemented. (WeCom's per-message ``response_url``
  would allow one active reply within an hour, but it is not kept yet: see docs/wecom.md.)
  Such rows fail at once, not retried, with the reason recorded on the row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Sender, SendError
from models.directory import Group

NO_SINGLE_PATH = "no active send path for WeCom single chats (passive reply only)"


class WeComReplySender:
    """Delivers ``wecom`` outbox rows: group rows via the group's robot webhook."""

    def __init__(self, *, robot: Sender, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._robot = robot
        self._sessions = sessions

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Send one row; raises :class:`SendError` (final) when there is no way to send it."""
        if not group_id:
            raise SendError(NO_SINGLE_PATH, retryable=False)
        async with self._sessions() as session:
            group = await session.get(Group, group_id)
            webhook = group.wecom_webhook if group is not None else None
        if group is None:
            raise SendError(f"WeCom chat {group_id} is not a known group", retryable=False)
        if not webhook:
            raise SendError(
                f"group {group_id} has no wecom_webhook: WeCom group replies need one",
                retryable=False,
            )
        extra = dict(payload.get("extra") or {})
        extra["webhook"] = webhook
        await self._robot.send(
            idempotency_key=idempotency_key,
            group_id=group_id,
            user_id=None,
            payload={**payload, "extra": extra},
        )
