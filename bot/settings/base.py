"""What every settings section shares: the base model, the error, reading secrets and keys."""

from __future__ import annotations

import base64
import binascii
import re

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


def env_name(dotted: str) -> str:
    """``bridge.secret`` → ``LIANXIN__BRIDGE__SECRET``."""
    return ENV_PREFIX + "__".join(part.upper() for part in dotted.split("."))
