"""What both gateways share: the HTTP call, the template look-up, and reasons safe to keep."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from bot.messages import SendError
from bot.settings import SmsSettings
from bot.sms_templates import fill, message_values

# Digit runs long enough to be part of a number or a code; a gateway's message may echo either.
_DIGITS = re.compile(r"\d{4,}")


def safe_text(text: Any, limit: int = 120) -> str:
    """A gateway's free-text message fit for a log line and ``outbox.last_error``: digit runs
    masked (it may quote the number or the code), control characters dropped, clipped."""
    clean = re.sub(r"[\x00-\x1f\x7f]", " ", str(text or ""))
    clean = _DIGITS.sub(lambda m: "*" * len(m.group(0)), clean).strip()
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def template_params(
    settings: SmsSettings, payload: Mapping[str, Any]
) -> tuple[str, str, dict[str, str]]:
    """The message's kind, the gateway template id for it and the template's parameters."""
    kind, values = message_values(payload)
    template = settings.templates.get(kind)
    if template is None:
        raise SendError(f"sms.templates.{kind} is not configured", retryable=False)
    return kind, template.id, fill(kind, template.params, values)


async def post(
    client: httpx.AsyncClient, url: str, *, timeout_s: float, **kwargs: Any
) -> httpx.Response:
    """POST to a gateway; a timeout or a broken connection is a retryable :class:`SendError`.

    Neither gateway de-duplicates, so a retry after a timeout may deliver twice: a second copy
    of the same code or page is the lesser harm than none."""
    try:
        return await client.post(url, timeout=timeout_s, **kwargs)
    except httpx.TimeoutException:
        raise SendError("timeout", retryable=True) from None
    except httpx.TransportError as exc:
        raise SendError(f"transport error: {type(exc).__name__}", retryable=True) from None


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The answer as a JSON object, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def host_of(url: str) -> str:
    """The Host header httpx sends for ``url`` (the port only when it is not the default)."""
    return httpx.URL(url).netloc.decode("ascii")
