"""What every settings section shares: the base model, the error, reading secrets and keys."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
)

ENV_PREFIX = "LIANXIN__"
# CONTRACT §1: the bridge's HMAC key is generated, never typed.
MIN_BRIDGE_SECRET = 32


class ConfigError(Exception):
    """A configuration problem; the message names the key and says what is wrong."""


class Section(BaseModel):
    """A settings section: a misspelt key is an error naming it, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


def secret_value(value: SecretStr | None) -> str:
    """The plain value of an optional secret, '' when unset."""
    return value.get_secret_value() if value is not None else ""


def decode_key(text: str) -> bytes:
    """Decode a 32-byte key given as base64 (standard or URL-safe) or 64 hex digits."""
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        raw = base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("must be 32 bytes as base64 or 64 hex digits (lianxin keys generate)")
    return raw


def check_http_url(value: str | None) -> str | None:
    """A pydantic check of an optional URL Lianxin calls or hands out: ``http://`` or
    ``https://`` and a host (``bridge.internal/send`` was accepted at start-up, and then every
    send failed with httpx's UnsupportedProtocol). Surrounding spaces go; an empty value is
    None (not set). The value is not repeated in the error: a URL may carry a password."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(
            "must start with http:// or https:// (like http://bridge.internal:9000/send)"
        )
    try:
        parts.port  # noqa: B018 - read for its check: a port that is not one raises
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError("has no host name (like http://bridge.internal:9000/send)")
    return text


def check_required_http_url(value: str) -> str:
    """:func:`check_http_url` for a URL that cannot be left unset."""
    checked = check_http_url(value)
    if checked is None:
        raise ValueError("must be an http:// or https:// URL, not empty")
    return checked


def env_name(dotted: str) -> str:
    """``bridge.secret`` → ``LIANXIN__BRIDGE__SECRET``."""
    return ENV_PREFIX + "__".join(part.upper() for part in dotted.split("."))
