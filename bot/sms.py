"""SMS delivery for the outbox (CONTRACT §1 ``sms``): an HTTP gateway or the server log.

Outbox rows on channel ``sms`` carry the number inside their encrypted payload
(``payload["extra"]["phone"]``); the clear ``user_id`` column holds only the masked number.
Neither sender ever writes a full number to a log or an exception message.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import httpx

from bot.channels.base import Sender, SendError
from bot.channels.bridge import post_for_delivery
from bot.clock import Clock
from bot.pii import mask_phone
from bot.settings import Settings

log = logging.getLogger("lianxin.sms")


def recipient(user_id: str | None, payload: dict[str, Any]) -> str:
    """The number to text: the payload's ``extra.phone``, else a ``user_id`` of digits only."""
    extra = payload.get("extra") or {}
    phone = extra.get("phone") if isinstance(extra, dict) else None
    if not phone and user_id and re.fullmatch(r"\+?\d{6,16}", user_id):
        phone = user_id
    if not phone:
        raise SendError("sms row has no phone number", retryable=False)
    return str(phone)


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
    """The sender for ``sms.provider`` (``clock`` is accepted for symmetry with other senders)."""
    del clock  # neither provider signs requests with a timestamp
    sms = settings.sms
    if sms.provider == "http":
        if not sms.url:
            raise ValueError("sms.url is required when sms.provider is http")
        return HttpSmsSender(url=sms.url, client=http_client)
    return LogSmsSender()
