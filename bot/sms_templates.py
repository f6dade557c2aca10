"""What an SMS says, as values a gateway template can carry (docs/sms.md).

Alibaba Cloud and Tencent Cloud send only templates registered with them beforehand; the
wording is theirs to approve, and we fill in the blanks. So an SMS outbox row carries, besides
its full text (for the ``log`` and ``http`` providers), its *kind* and the *values* of that
kind, under our own names:

========  ==========================================================================
kind      values
========  ==========================================================================
``code``  ``code`` (the six digits), ``minutes`` (how long the code is valid)
``page``  ``ticket`` (``A1023``), ``category`` (``報警``), ``number`` (the emergency
          number the resident was told to call, ``110``), ``minutes`` (time to
          acknowledge)
========  ==========================================================================

``sms.templates.<kind>`` in the settings names the gateway's template and maps the template's
own parameter names onto these values. Values that must not outlive the send (the code) are
dropped with the number once the row is sent or given up (``broadcasts.outbox.scrub_payload``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.messages import OutboundMessage, SendError
from bot.pii import mask_phone

# Each kind of SMS and the values it offers a template. A new kind is added here, then used
# through ``sms_message``; the settings refuse a template that asks for a value not listed.
TEMPLATE_VALUES: dict[str, tuple[str, ...]] = {
    "code": ("code", "minutes"),
    "page": ("ticket", "category", "number", "minutes"),
}


def sms_message(
    kind: str,
    *,
    text: str,
    phone: str,
    values: Mapping[str, Any],
    kept_text: str | None = None,
    priority: int = 5,
) -> OutboundMessage:
    """An outbox message on channel ``sms``: ``text`` for the plain providers, ``kind`` and
    ``values`` for the template gateways.

    The number rides in the encrypted payload; the row's clear ``user_id`` gets only its masked
    form. ``kept_text`` replaces ``text`` once the message is sent or given up (a code's text
    must not be kept). Raises ``ValueError`` for an unknown kind or value name (a programming
    error, not bad input).
    """
    allowed = TEMPLATE_VALUES.get(kind)
    if allowed is None:
        raise ValueError(f"unknown SMS kind {kind!r}")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"SMS kind {kind!r} has no value(s) {', '.join(unknown)}")
    extra: dict[str, Any] = {
        "phone": phone,
        "sms_kind": kind,
        "sms_values": {name: str(value) for name, value in values.items()},
    }
    if kept_text is not None:
        extra["kept_text"] = kept_text
    return OutboundMessage(
        channel="sms", text=text, user_id=mask_phone(phone), priority=priority, extra=extra
    )


def recipient(user_id: str | None, payload: Mapping[str, Any]) -> str:
    """The number to text: the payload's ``extra.phone``, else a ``user_id`` of digits only."""
    extra = payload.get("extra") or {}
    phone = extra.get("phone") if isinstance(extra, Mapping) else None
    if not phone and user_id and re.fullmatch(r"\+?\d{6,16}", user_id):
        phone = user_id
    if not phone:
        raise SendError("sms row has no phone number", retryable=False)
    return str(phone)


def message_values(payload: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The kind and values of an SMS outbox payload; a :class:`SendError` (final) when the row
    was queued without them (a template gateway cannot send free text)."""
    extra = payload.get("extra")
    extra = extra if isinstance(extra, Mapping) else {}
    kind, values = extra.get("sms_kind"), extra.get("sms_values")
    if not isinstance(kind, str) or not isinstance(values, Mapping):
        raise SendError(
            "sms row has no template values (queue it with bot.sms_templates.sms_message): "
            "a template gateway cannot send free text",
            retryable=False,
        )
    return kind, {str(k): str(v) for k, v in values.items()}


def fill(kind: str, params: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The template's parameters (``params``: its parameter name → our value name) filled from
    a message's ``values``; a final :class:`SendError` naming what is missing."""
    missing = sorted({v for v in params.values() if v not in values})
    if missing:
        raise SendError(
            f"sms.templates.{kind} needs {', '.join(missing)}, which this message does not carry",
            retryable=False,
        )
    return {name: values[value] for name, value in params.items()}
