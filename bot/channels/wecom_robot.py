"""Sender for WeCom group-robot webhooks (群机器人): send-only, 20 messages a minute per robot.

Outbox rows for a group with ``wecom_webhook`` carry the webhook (a key or a full URL) in the
encrypted payload's ``extra``: the key is a credential. WeCom's webhook has no idempotency key,
so a crash between sending and recording can repeat a message (at-least-once; the bridge is the
channel with exactly-once delivery by key).

Limits (docs: PROTOCOL-NOTES.md): text ≤ 2048 bytes, markdown ≤ 4096 bytes (a longer text goes
as several markdown messages); errcode 45009 when over the rate. We keep our own sliding window
per robot and answer "retry later" before WeCom has to, so the outbox's backoff paces the rest
and the worker never sleeps on one robot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from bot.channels.bridge import post_for_delivery
from bot.messages import SendError
from bot.text_parts import WECOM_ROBOT_MARKDOWN_LIMIT, WECOM_ROBOT_TEXT_LIMIT, fits, split_text

PER_MINUTE = 20
RATE_LIMITED = 45009


def robot_bodies(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The webhook JSON messages for a payload: one text message when it fits, else markdown,
    as several messages (cut between lines) when even markdown's 4,096 bytes are too few.

    Media become a link line in markdown: a robot cannot post a video, and an image message
    would need the file's bytes.
    """
    text: str = payload.get("text", "")
    media = payload.get("media")
    if not media and fits(text, WECOM_ROBOT_TEXT_LIMIT):
        return [
            {
                "msgtype": "text",
                "text": {"content": text, "mentioned_list": payload.get("mentions") or []},
            }
        ]
    content = text
    if media:
        title = media.get("title") or media.get("url")
        content += f"\n[{title}]({media['url']})"
    return [
        {"msgtype": "markdown", "markdown": {"content": part}}
        for part in split_text(content, WECOM_ROBOT_MARKDOWN_LIMIT)
    ]


class WeComRobotSender:
    """Posts outbox rows to group-robot webhooks with a per-robot rate window."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        per_minute: int = PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._per_minute = per_minute
        self._monotonic = monotonic
        self._sent: dict[str, deque[float]] = {}

    def _url(self, webhook: str) -> str:
        return (
            webhook
            if webhook.startswith(("https://", "http://"))
            else (f"{self._base_url}?key={webhook}")
        )

    def _admit(self, webhook: str, count: int) -> None:
        """Count ``count`` messages against the robot's last minute, or ask the outbox to retry
        later: all of a long text's parts go in one minute, or none of them."""
        if count > self._per_minute:
            raise SendError(
                f"too long for a WeCom group robot ({count} messages, {self._per_minute} a minute)",
                retryable=False,
            )
        now = self._monotonic()
        window = self._sent.setdefault(webhook, deque())
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) + count > self._per_minute:
            wait = 60 - (now - window[len(window) + count - self._per_minute - 1])
            raise SendError(f"robot rate limit: retry in {wait:.0f} s", retryable=True,
                            throttled=True, retry_after=wait)  # fmt: skip
        window.extend([now] * count)

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        webhook = (payload.get("extra") or {}).get("webhook")
        if not webhook:
            raise SendError(f"group {group_id} has no WeCom webhook", retryable=False)
        bodies = robot_bodies(payload)
        self._admit(webhook, len(bodies))
        for body in bodies:
            await self._post(webhook, body)

    async def _post(self, webhook: str, body: dict[str, Any]) -> None:
        response = await post_for_delivery(self._client, self._url(webhook), json=body)
        try:
            answer = response.json()
        except ValueError:
            raise SendError(
                "WeCom answered with something other than JSON", retryable=True
            ) from None
        code = answer.get("errcode", 0)
        if code == RATE_LIMITED:
            raise SendError("WeCom errcode 45009 (rate limit)", retryable=True, throttled=True,
                            retry_after=60.0)  # fmt: skip
        if code != 0:
            raise SendError(f"WeCom errcode {code}: {answer.get('errmsg', '')}", retryable=False)
