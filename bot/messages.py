"""Our own message types, shared by every channel."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from bot.pii import PSEUDONYM_PREFIX

Kind = Literal["message", "member_joined", "member_left", "event"]

# Control characters a text may not carry: C0 but tab and line breaks, DEL, C1. A resident's
# words keep everything else; a NUL or an escape sequence would reach an officer's page, a log
# or a terminal as it is (docs/interfaces.md, "texts"). Also the bidi embeddings, overrides and
# isolates (U+202A–U+202E, U+2066–U+2069): on an officer's page a right-to-left override shows
# a resident's "13912345678" or "12號" reversed, the words in another order than written. And
# the zero-width space U+200B, which hides inside a word or a #CODE. The zero-width joiner
# U+200D stays: emoji are made with it.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2066-\u2069]")


def without_controls(value: str | None) -> str | None:
    """``value`` without the control characters a text may not carry."""
    if value and _TEXT_CONTROL.search(value):
        return _TEXT_CONTROL.sub("", value)
    return value


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
    msg_type: str = "text"  # text | image | voice | video | file | location | link | event
    text: str = ""
    mentions: tuple[str, ...] = ()
    media_url: str | None = None

    def __post_init__(self) -> None:
        # Every channel's texts are cleaned here, once, whatever built the event: removed,
        # not refused, so that a resident's message is never lost for a stray character.
        for attr in ("text", "nickname", "group_name"):
            value = getattr(self, attr)
            cleaned = without_controls(value)
            if cleaned is not value:
                object.__setattr__(self, attr, cleaned or ("" if attr == "text" else None))

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
            "occurred_at": self.occurred_at.isoformat(),
        }

    @classmethod
    def from_journal(
        cls,
        *,
        channel: str,
        dedup_key: str,
        kind: Kind,
        sender_id: str,
        group_id: str | None,
        received_at: datetime,
        payload: Mapping[str, Any],
    ) -> InboundMessage:
        """The event again from its journal row (the processor handles it after acceptance).
        Rows journaled before ``occurred_at`` was kept use the time they were received."""
        occurred = payload.get("occurred_at")
        return cls(
            channel=channel,
            dedup_key=dedup_key,
            kind=kind,
            sender_id=sender_id,
            occurred_at=datetime.fromisoformat(occurred) if occurred else received_at,
            group_id=group_id,
            group_name=payload.get("group_name"),
            nickname=payload.get("nickname"),
            msg_type=payload.get("msg_type") or "text",
            text=payload.get("text") or "",
            mentions=tuple(payload.get("mentions") or ()),
            media_url=payload.get("media_url"),
        )


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
    """A failed send. ``retryable`` decides between backoff and a final ``failed``.

    ``throttled``: the channel said "not so fast" (HTTP 429, WeCom's 45009, or our own count of
    a robot's 20 a minute) — nothing is wrong with it, so the try neither counts against the
    message's attempts nor marks the channel down; ``retry_after`` (seconds), when known, is
    when to try again."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        throttled: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable or throttled
        self.throttled = throttled
        self.retry_after = retry_after


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


def unix_seconds(value: str | None) -> int | None:
    """A request's timestamp as Unix seconds, or None when it is not plain ASCII digits.

    ``str.isdigit`` admits "²" and other digits that ``int`` refuses."""
    if not value or len(value) > 12 or not value.isascii() or not value.isdigit():
        return None
    return int(value)


# The ids an event is stored under in clear columns, with the columns' widths.
# The sender and the group first: a channel's dedup key is made of the sender's id and its
# message id (WeCom, WeChat), and a sender's id too long for its column is to be named as that,
# not as the message id it made too long.
_ID_WIDTHS = {"sender_id": 128, "group_id": 128, "dedup_key": 200}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXTS = ("text", "nickname", "group_name", "media_url")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(value: str) -> bool:
    """Whether a text can be stored in a clear column of either database: no NUL (PostgreSQL
    refuses it) and no lone surrogate (JSON escapes can carry one; no encoding takes it)."""
    return "\x00" not in value and _encodable(value)


def storable_id(value: str) -> bool:
    """Whether an id can be stored and logged: no control characters at all (a newline in an id
    would forge log lines) and no lone surrogate."""
    return not _CONTROL.search(value) and _encodable(value)


def name_problem(value: str, width: int) -> str | None:
    """Why ``value`` cannot be a one-line name (a token's, an account's) in a column ``width``
    characters wide, or None: held to an id's rules, since the name is listed in
    tab-separated lines and written into logs (SQLite would keep a longer one that PostgreSQL
    refuses)."""
    if len(value) > width:
        return f"at most {width} characters (got {len(value)})"
    if not storable_id(value):
        return "no tabs, line breaks or other control characters"
    return None


def inbound_problem(msg: InboundMessage, names: Mapping[str, str] | None = None) -> str | None:
    """Why ``msg`` cannot be stored as it is, naming the field (through ``names``, the channel's
    own field names), or None.

    Every channel asks before anything is stored: a lone surrogate cannot be encrypted, NUL is
    refused by PostgreSQL, and an id must fit its column. Each would otherwise fail the same way
    on every retry, and the event would be lost instead of refused with a reason."""
    names = names or {}
    for attr, width in _ID_WIDTHS.items():
        value = getattr(msg, attr)
        if value is None:
            continue
        name = names.get(attr, attr)
        if len(value) > width:
            return f"{name}: at most {width} characters"
        if not storable_id(value):
            return f"{name}: control characters and lone surrogates are not allowed"
    mention_name = names.get("mentions", "mentions")
    for mention in msg.mentions:
        # Account ids, held to sender_id's rules: the handlers compare them with officers' and
        # the bot's own ids, and a control character would reach the logs.
        if len(mention) > _ID_WIDTHS["sender_id"]:
            return f"{mention_name}: at most {_ID_WIDTHS['sender_id']} characters"
        if not storable_id(mention):
            return f"{mention_name}: control characters and lone surrogates are not allowed"
    if msg.sender_id.startswith(PSEUDONYM_PREFIX):
        # A pseudonym stands for a resident who cut the link: no event may speak as them.
        name = names.get("sender_id", "sender_id")
        return f"{name}: ids starting {PSEUDONYM_PREFIX!r} are reserved"
    for attr, value in [(attr, getattr(msg, attr)) for attr in _TEXTS]:
        if value and not _encodable(value):
            return f"{names.get(attr, attr)}: not valid Unicode (a lone surrogate)"
    return None
