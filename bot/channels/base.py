"""Our own message types, shared by every channel."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Kind = Literal["message", "member_joined", "member_left", "event"]


@dataclass(frozen=True)
class InboundMessage:
    """A normalised inbound event, whatever channel it came from."""

    channel: str  # bridge | wechat | wecom | simulated
    dedup_key: str
    kind: Kind
    sender_id: str
    occurred_at: datetime
    group_id: str | None = None
    group_name: str | None = None
    nickname: str | None = None
    msg_type: str = "text"  # text | image | voice | video | file | event
    text: str = ""
    mentions: tuple[str, ...] = ()
    media_url: str | None = None

    @property
    def is_private(self) -> bool:
        return self.group_id is None

    def journal_payload(self) -> dict[str, Any]:
        """What the journal keeps (encrypted) of the event."""
        return {
            "text": self.text,
            "nickname": self.nickname,
            "group_name": self.group_name,
            "msg_type": self.msg_type,
            "mentions": list(self.mentions),
            "media_url": self.media_url,
        }


@dataclass(frozen=True)
class Media:
    type: str  # video | image | file | link
    url: str
    title: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """Something the bot says: to a group (``group_id``) or privately (``user_id``)."""

    channel: str
    text: str
    group_id: str | None = None
    user_id: str | None = None
    mentions: tuple[str, ...] = ()
    media: Media | None = None
    priority: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The encrypted part of an outbox row."""
        return {
            "text": self.text,
            "mentions": list(self.mentions),
            "media": None
            if self.media is None
            else {"type": self.media.type, "url": self.media.url, "title": self.media.title},
            **({"extra": self.extra} if self.extra else {}),
        }


class SendError(Exception):
    """A failed send. ``retryable`` decides between backoff and a final ``failed``."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Sender(Protocol):
    """Delivers one outbox row's content; raises :class:`SendError` on failure."""

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None: ...


def check_encoding_aes_key(value: Any, platform: str) -> Any:
    """A pydantic check of an EncodingAESKey (a ``SecretStr`` or None): 43 characters of base64
    for 32 bytes. wechatpy only asserts this, deep inside, on the first message."""
    key = value.get_secret_value() if value is not None else ""
    if not key:
        return value
    if len(key) != 43:
        raise ValueError(f"must be 43 characters ({platform}'s EncodingAESKey)")
    try:
        raw = base64.b64decode(key + "=", validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "is not an EncodingAESKey (43 characters of base64: A–Z, a–z, 0–9, + and /)"
        )
    return value
