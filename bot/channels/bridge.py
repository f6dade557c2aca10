"""The group-chat bridge (CONTRACT §3): signed JSON in both directions."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.messages import InboundMessage, SendError, inbound_problem, unix_seconds

SIGNATURE_HEADER = "X-Lianxin-Signature"
TIMESTAMP_HEADER = "X-Lianxin-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``hex(HMAC-SHA256(secret, timestamp + "." + raw_body))``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """Headers for a signed request made at ``now``."""
    ts = str(int(now.timestamp()))
    return {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, ts, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, headers: Any, body: bytes, *, now: datetime, window_s: int) -> str | None:
    """None when the request is authentic and fresh, else the reason it is not."""
    ts = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if not ts or not signature:
        return "missing signature headers"
    seconds = unix_seconds(ts)
    if seconds is None:
        return "bad timestamp"
    if abs(now.timestamp() - seconds) > window_s:
        return "stale timestamp"
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(sign(secret, ts, body).encode(), given):
        return "bad signature"
    return None


class _Strictish(BaseModel):
    # Bridges add fields over time; unknown ones are ignored, known ones are checked.
    model_config = ConfigDict(extra="ignore")


class BridgeGroup(_Strictish):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)


class BridgeUser(_Strictish):
    id: str = Field(min_length=1, max_length=128)
    nickname: str | None = Field(default=None, max_length=200)


# @-mentions one message may carry: a group holds at most 500 members, and a bridge that sends
# thousands is broken (each is kept with the event and compared with the bot's own ids).
MAX_MENTIONS = 100
# A link to an attachment; longer is no URL a chat app makes (it is kept and shown to officers).
MAX_MEDIA_URL = 2000
# A mention is an account id like sender.id (its control characters: bot.messages).
_MentionId = Annotated[str, Field(min_length=1, max_length=128)]


class BridgeMessage(_Strictish):
    type: Literal["text", "image", "voice", "video", "file"]
    text: str | None = Field(default=None, max_length=20000)
    mentions: list[_MentionId] = Field(default_factory=list, max_length=MAX_MENTIONS)
    media_url: str | None = Field(default=None, max_length=MAX_MEDIA_URL)

    @field_validator("mentions", mode="before")
    @classmethod
    def _no_mentions(cls, value: Any) -> Any:
        # null is what a bridge writes for "none", as leaving the field out says.
        return [] if value is None else value


class BridgeEvent(_Strictish):
    event_id: str = Field(min_length=1, max_length=128)
    type: Literal["message", "member_joined", "member_left"]
    # Unix seconds; a bridge sending milliseconds gets a 422 naming the field, not a 500.
    timestamp: int = Field(ge=0, lt=10**11, strict=True)  # not true, "1764…" or 1764….0
    group: BridgeGroup | None
    sender: BridgeUser
    message: BridgeMessage | None = None

    @model_validator(mode="after")
    def _message_present(self) -> BridgeEvent:
        # Each names its field as the others do ("message: …"), without pydantic's "Value
        # error," (an error of the whole body has no field of its own).
        if self.type == "message" and self.message is None:
            raise _missing("message", "required when type is 'message'")
        if self.message is not None and self.message.type == "text" and self.message.text is None:
            raise _missing("message.text", "required when message.type is 'text'")
        if self.type != "message" and self.group is None:
            raise _missing("group", f"required when type is {self.type!r} (null is for messages)")
        return self

    def to_inbound(self) -> InboundMessage:
        """Normalise to our own type."""
        msg = self.message
        return InboundMessage(
            channel="bridge",
            dedup_key=self.event_id,
            kind=self.type,
            sender_id=self.sender.id,
            nickname=self.sender.nickname,
            occurred_at=datetime.fromtimestamp(self.timestamp, UTC),
            group_id=self.group.id if self.group else None,
            group_name=self.group.name if self.group else None,
            msg_type=msg.type if msg else "event",
            text=(msg.text or "") if msg else "",
            mentions=tuple(msg.mentions) if msg else (),
            media_url=msg.media_url if msg else None,
        )


def _missing(field: str, problem: str) -> PydanticCustomError:
    context = {"field": field, "problem": problem}
    return PydanticCustomError("missing", "{field}: {problem}", context)


class BadEvent(Exception):
    """A body that is not a valid bridge event; the message says what is wrong."""


# The bridge's own names for the fields of a normalised event, for error messages.
_FIELD_NAMES = {
    "dedup_key": "event_id",
    "sender_id": "sender.id",
    "nickname": "sender.nickname",
    "group_id": "group.id",
    "group_name": "group.name",
    "text": "message.text",
    "media_url": "message.media_url",
    "mentions": "message.mentions",
}


# What a bridge gets wrong about ``timestamp``, said in its terms: pydantic's own words ("Input
# should be less than 100000000000") left a bridge author sending milliseconds to guess.
_TIMESTAMP_PROBLEMS = {
    "less_than": "Unix seconds expected, got {value!r} (milliseconds? divide by 1000)",
    "greater_than_equal": "Unix seconds expected, got {value!r}",
    "int_type": (
        "Unix seconds as a JSON integer expected (not a string or a fraction), got {value!r}"
    ),
}


def parse_event(body: bytes) -> InboundMessage:
    """Parse, validate and normalise an inbound body, or raise :class:`BadEvent` naming the
    problem."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers broken JSON, bad UTF-8 and integers too long to convert.
        raise BadEvent(f"malformed JSON: {str(exc)[:200] or type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise BadEvent("body must be a JSON object")
    try:
        event = BridgeEvent.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problem = _TIMESTAMP_PROBLEMS.get(err["type"]) if where == "timestamp" else None
            message = problem.format(value=err["input"]) if problem else err["msg"]
            parts.append(f"{where}: {message}" if where else message)
        raise BadEvent("; ".join(parts)) from None
    inbound = event.to_inbound()
    problem = inbound_problem(inbound, _FIELD_NAMES)
    if problem:
        raise BadEvent(problem)
    return inbound


class BridgeClient:
    """Sends outbox rows to ``bridge.send_url``, signed like inbound events."""

    def __init__(self, *, url: str, secret: str, client: httpx.AsyncClient, clock: Any) -> None:
        self._url = url
        self._secret = secret
        self._client = client
        self._clock = clock

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        body = json.dumps(
            {
                "idempotency_key": idempotency_key,
                "group_id": group_id,
                "user_id": None if group_id else user_id,
                "text": payload.get("text", ""),
                "mentions": payload.get("mentions") or [],
                "media": payload.get("media"),
            },
            ensure_ascii=False,
        ).encode()
        headers = signed_headers(self._secret, body, self._clock.now())
        await post_for_delivery(self._client, self._url, content=body, headers=headers)


def _seconds(retry_after: str | None) -> float | None:
    """A ``Retry-After`` of seconds (an HTTP date is rare from these peers: backoff then)."""
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None


async def post_for_delivery(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """POST and sort the outcome: 2xx ok; 429/5xx/timeouts retryable; other 4xx final."""
    try:
        response = await client.post(url, **kwargs)
    except httpx.TimeoutException:
        raise SendError("timeout", retryable=True) from None
    except httpx.TransportError as exc:
        raise SendError(f"transport error: {type(exc).__name__}", retryable=True) from None
    if response.status_code == 429:
        raise SendError("HTTP 429", retryable=True, throttled=True,
                        retry_after=_seconds(response.headers.get("retry-after")))  # fmt: skip
    if response.status_code >= 500:
        raise SendError(f"HTTP {response.status_code}", retryable=True)
    if response.status_code >= 300:
        raise SendError(f"HTTP {response.status_code}", retryable=False)
    return response
