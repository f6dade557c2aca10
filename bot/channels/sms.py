"""SMS delivery for the outbox (CONTRACT §1 ``sms``): Alibaba Cloud or Tencent Cloud templates
(``bot/channels/sms_gateways``), an HTTP gateway of one's own, or the server log.

Outbox rows on channel ``sms`` carry the number inside their encrypted payload
(``payload["extra"]["phone"]``); the clear ``user_id`` column holds only the masked number.
No sender ever writes a full number to a log or an exception message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from bot.channels.bridge import post_for_delivery
from bot.channels.sms_gateways.aliyun import AliyunSmsSender
from bot.channels.sms_gateways.tencent import TencentSmsSender
from bot.clock import Clock
from bot.messages import Sender
from bot.pii import mask_phone
from bot.settings import Settings
from bot.sms_templates import recipient

__all__ = ["HttpSmsSender", "LogSmsSender", "make_sms_sender", "recipient", "sms_warnings"]

log = logging.getLogger("lianxin.sms")


class HttpSmsSender:
    """POSTs ``{"phone": …, "text": …}`` to the gateway; 429/5xx/timeouts are retried."""

    def __init__(self, *, url: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._client = client

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Deliver one SMS; raises :class:`SendError`."""
        body = json.dumps(
            {"phone": recipient(user_id, payload), "text": payload.get("text", "")},
            ensure_ascii=False,
        ).encode()
        # Gateways that de-duplicate can use the key; the others ignore the header.
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        await post_for_delivery(self._client, self._url, content=body, headers=headers)


class LogSmsSender:
    """Development stand-in: writes the text to the server log, the number masked."""

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Log one SMS instead of sending it."""
        phone = recipient(user_id, payload)
        log.info("sms to %s [%s]: %s", mask_phone(phone), idempotency_key, payload.get("text", ""))


def make_sms_sender(settings: Settings, http_client: httpx.AsyncClient, clock: Clock) -> Sender:
    """The sender for ``sms.provider``; the gateways sign with the time from ``clock``."""
    sms = settings.sms
    if sms.provider == "aliyun":
        return AliyunSmsSender(settings=sms, client=http_client, clock=clock)
    if sms.provider == "tencent":
        return TencentSmsSender(settings=sms, client=http_client, clock=clock)
    if sms.provider == "http":
        if not sms.url:
            raise ValueError("sms.url is required when sms.provider is http")
        return HttpSmsSender(url=sms.url, client=http_client)
    return LogSmsSender()


def sms_warnings(settings: Settings) -> list[str]:
    """What ``lianxin serve`` should warn about in the SMS settings (not errors: it can run)."""
    sms = settings.sms
    if sms.provider == "log":
        # Fine for trying it out; in service, residents would wait for codes that never come.
        return [
            "sms.provider is 'log': verification codes are written to this log, not sent to "
            "residents; set sms.provider to aliyun, tencent or http for real use (docs/sms.md)"
        ]
    if sms.gateway and "page" not in sms.templates:
        return [
            f"sms.templates.page is not set: urgent pages to officers cannot go out through "
            f"{sms.provider} SMS (docs/sms.md)"
        ]
    return []
