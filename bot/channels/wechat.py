"""WeChat Official Account (CONTRACT §2): callback verification, decryption, parsing, sending.

wechatpy does the crypto and parsing; this module adds what it leaves out (PROTOCOL-NOTES):
constant-time signature comparison, a freshness window, a catch-all around decrypt + parse,
``ToUserName`` checking, and a bounded access-token refresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import xmltodict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.bridge import post_for_delivery
from bot.clock import Clock
from bot.messages import InboundMessage, SendError, inbound_problem, unix_seconds
from bot.text_parts import WECHAT_TEXT_LIMIT, split_text
from models.tokens import AccessTokenCache

# Codes meaning "your access token is no longer good": refresh once and try again.
_TOKEN_EXPIRED = {40001, 40014, 42001}
# WeChat's "system busy" and rate limits are worth a later retry; the rest are final.
_RETRYABLE = {-1, 45009}


class Rejected(Exception):
    """The request is refused with ``status``; ``reason`` is safe to log (no message content)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Malformed(ValueError):
    """A message missing a field or giving it in a form we cannot read; its text names the
    field and never quotes the message, so it may go into the answer and the log."""


# The tags a message is read by (a KeyError naming another key might quote the message).
_TAGS = frozenset({"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Event"})


def malformed(exc: Exception) -> str:
    """Why a decrypted message was refused, for the 400 and the log: our own words for what
    is missing, the field name of a tag the parser looked up, else only the class (a library's
    words may quote the message)."""
    if isinstance(exc, Malformed):
        return f"malformed message ({exc})"
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in _TAGS:
        return f"malformed message (missing {exc.args[0]})"
    return f"malformed message ({type(exc).__name__})"


def _sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass(frozen=True)
class CallbackQuery:
    signature: str | None
    timestamp: str | None
    nonce: str | None
    echostr: str | None = None
    encrypt_type: str | None = None
    msg_signature: str | None = None


@dataclass(frozen=True)
class ParsedCallback:
    """A verified, decrypted, parsed callback and what is needed to answer it passively."""

    inbound: InboundMessage
    account_id: str  # our original id (ToUserName), the passive reply's FromUserName
    message: Any  # wechatpy message, kept for create_reply
    encrypted: bool


class WeChatCallback:
    """Verifies and decodes ``/wechat/callback`` requests for one Official Account."""

    def __init__(
        self,
        *,
        token: str,
        app_id: str,
        aes_key: str | None,
        original_id: str | None,
        window_s: int,
    ) -> None:
        self._token = token
        self._original_id = original_id
        self._window_s = window_s
        self._crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None

    def _check_fresh(self, timestamp: str | None, now: datetime) -> None:
        ts = unix_seconds(timestamp)
        if ts is None:
            raise Rejected(403, "missing or bad timestamp")
        if abs(now.timestamp() - ts) > self._window_s:
            raise Rejected(403, "stale timestamp")

    def _check_plain_signature(self, q: CallbackQuery) -> None:
        if not q.signature or q.nonce is None or q.timestamp is None:
            raise Rejected(403, "missing signature")
        expected = _sha1_signature(self._token, q.timestamp, q.nonce)
        if not hmac.compare_digest(
            expected.encode(), q.signature.lower().encode("utf-8", "replace")
        ):
            raise Rejected(403, "bad signature")

    def _check_msg_signature(self, q: CallbackQuery, body: bytes) -> str:
        """The envelope's ``Encrypt`` once its signature holds.

        wechatpy compares with `!=`; compare in constant time first (PROTOCOL-NOTES)."""
        try:
            envelope = xmltodict.parse(body)["xml"]["Encrypt"]
        except Exception as exc:
            raise Rejected(400, f"malformed envelope ({type(exc).__name__})") from None
        if not isinstance(envelope, str):
            raise Rejected(400, "malformed envelope")
        expected = _sha1_signature(self._token, q.timestamp or "", q.nonce or "", envelope)
        given = (q.msg_signature or "").lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise Rejected(403, "bad msg_signature")
        return envelope

    def verify_url(self, q: CallbackQuery, now: datetime) -> str:
        """The GET handshake: returns ``echostr`` when the signature holds."""
        self._check_plain_signature(q)
        self._check_fresh(q.timestamp, now)
        if q.echostr is None:
            raise Rejected(400, "missing echostr")
        return q.echostr

    def parse(self, q: CallbackQuery, body: bytes, now: datetime) -> ParsedCallback:
        """Verify and decode a POST; raises :class:`Rejected` with 403 or 400."""
        encrypted = (q.encrypt_type or "").lower() == "aes"
        if encrypted:
            if self._crypto is None:
                raise Rejected(400, "safe mode message but no encoding_aes_key configured")
            if not q.msg_signature or q.nonce is None or q.timestamp is None:
                raise Rejected(403, "missing msg_signature")
            self._check_fresh(q.timestamp, now)
            envelope = self._check_msg_signature(q, body)
            try:
                # The envelope parsed above, not the body: wechatpy would parse it again.
                xml = self._crypto.decrypt_message(
                    {"Encrypt": envelope}, q.msg_signature, q.timestamp, q.nonce
                )
            except InvalidSignatureException:
                raise Rejected(403, "bad msg_signature") from None
            except Exception as exc:  # wrong key, garbage, broken XML: see PROTOCOL-NOTES
                raise Rejected(400, f"cannot decrypt ({type(exc).__name__})") from None
        else:
            if self._crypto is not None:
                # With a key configured WeChat always sends encrypt_type=aes; plain is forged.
                raise Rejected(403, "plain-mode message refused: safe mode is configured")
            self._check_plain_signature(q)
            self._check_fresh(q.timestamp, now)
            xml = body
        try:
            message = parse_message(xml)
            inbound = _to_inbound(message)
        except Rejected:
            raise
        except Exception as exc:
            raise Rejected(400, malformed(exc)) from None
        problem = inbound_problem(inbound, _FIELD_NAMES)
        if problem:
            raise Rejected(400, f"malformed message ({problem})")
        if self._original_id and message.target != self._original_id:
            raise Rejected(403, "ToUserName is not this account")
        return ParsedCallback(
            inbound=inbound, account_id=message.target, message=message, encrypted=encrypted
        )

    def render_reply(self, parsed: ParsedCallback, text: str, q: CallbackQuery) -> str:
        """A passive text reply, encrypted when the request was."""
        # wechatpy is untyped: its replies are XML text.
        xml: str = create_reply(text, parsed.message, render=True)
        if parsed.encrypted and self._crypto is not None:
            encrypted: str = self._crypto.encrypt_message(xml, q.nonce, q.timestamp)
            return encrypted
        return xml


# WeChat's tag names for the fields of a normalised event, for error messages.
_FIELD_NAMES = {"dedup_key": "MsgId", "sender_id": "FromUserName", "text": "Content"}


def _str(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        # xmltodict turns a repeated tag into a list and a tag with attributes into a dict.
        raise Malformed("a tag given twice or with attributes")
    return value


def _to_inbound(message: Any) -> InboundMessage:
    data = message._data  # the raw dict; field objects hide missing tags behind defaults
    source = _str(data["FromUserName"])
    target = _str(data["ToUserName"])
    create_time = unix_seconds(_str(data["CreateTime"]))
    msg_type = _str(data["MsgType"]).lower()
    if not source or not target:
        raise Malformed("missing user names")
    if not create_time:
        raise Malformed("bad CreateTime")
    occurred = datetime.fromtimestamp(create_time, UTC)
    if msg_type == "event":
        event = _str(data.get("Event")).lower()
        # wechatpy renames a follow through a QR code (EventKey qrscene_…) to subscribe_scan;
        # to us it is a follow like any other.
        event = "subscribe" if event == "subscribe_scan" else event
        # Two different events of one user in the same second are two events, not a retry.
        return InboundMessage(
            channel="wechat",
            dedup_key=f"evt:{source}:{create_time}:{event}",
            kind="event",
            sender_id=source,
            occurred_at=occurred,
            msg_type=f"event:{event}",
        )
    msg_id = _str(data.get("MsgId"))
    if not (msg_id.isascii() and msg_id.isdigit()):
        raise Malformed("missing MsgId")
    text = ""
    media_url = None
    if msg_type == "text":
        if data.get("Content") is None:
            raise Malformed("text without Content")
        text = _str(data.get("Content"))
    elif msg_type == "voice":
        text = _str(data.get("Recognition"))  # WeChat's speech-to-text when enabled
    elif msg_type == "image":
        media_url = _str(data.get("PicUrl")) or None
    elif msg_type == "location":
        # Where the resident is: the place's name as the text, the point as a geo: URI.
        text = _str(data.get("Label"))
        media_url = f"geo:{_str(data.get('Location_X'))},{_str(data.get('Location_Y'))}"
    elif msg_type == "link":
        text, media_url = _str(data.get("Title")), _str(data.get("Url")) or None
    known = {"text", "image", "voice", "video", "location", "link"}
    return InboundMessage(
        channel="wechat",
        dedup_key=f"msg:{source}:{msg_id}",  # scoped: one user cannot replay another's reply
        kind="message",
        sender_id=source,
        occurred_at=occurred,
        msg_type=msg_type if msg_type in known else "file",
        text=text,
        media_url=media_url,
    )


class WeChatApi:
    """Customer-service messages with a cached access token (one refresh per failure, bounded)."""

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        app_secret: str,
        client: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._app_id = app_id
        self._app_secret = app_secret
        self._client = client
        self._sessions = sessions
        self._clock = clock
        self._lock = asyncio.Lock()
        # The token this process last used, and until when: a send needs no database read
        # (and, on PostgreSQL, no round trip under the lock) while it lasts. Refused as
        # ``stale`` (another process fetched a newer one), it is looked up again.
        self._known: tuple[str, datetime] | None = None

    def _usable(self, token: str, expires_at: datetime, stale: str | None) -> bool:
        return token != stale and expires_at - timedelta(seconds=300) > self._clock.now()

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached token, refreshed when missing, near expiry, or equal to ``stale``: this
        process's copy first, then the database's (shared by every process), then WeChat."""
        if self._known is not None and self._usable(*self._known, stale):
            return self._known[0]
        async with self._lock:
            if self._known is not None and self._usable(*self._known, stale):
                return self._known[0]  # refreshed by a send that held the lock before us
            async with self._sessions.begin() as session:
                row = await session.get(AccessTokenCache, self._app_id)
                if row and self._usable(row.token, row.expires_at, stale):
                    self._known = (row.token, row.expires_at)
                    return row.token
            token, expires_in = await self._fetch_token()
            expires_at = self._clock.now() + timedelta(seconds=expires_in)
            async with self._sessions.begin() as session:
                await session.merge(
                    AccessTokenCache(app_id=self._app_id, token=token, expires_at=expires_at)
                )
            self._known = (token, expires_at)
            return token

    async def _fetch_token(self) -> tuple[str, int]:
        try:
            response = await self._client.get(
                f"{self._base}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self._app_id,
                    "secret": self._app_secret,
                },
            )
        except httpx.TimeoutException:
            raise SendError("token fetch timeout", retryable=True) from None
        except httpx.TransportError as exc:
            raise SendError(f"token fetch: {type(exc).__name__}", retryable=True) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise SendError(f"token fetch HTTP {response.status_code}", retryable=True)
        data = _json(response)
        if "access_token" not in data:
            code = data.get("errcode")
            raise SendError(f"token fetch errcode {code}", retryable=code in _RETRYABLE)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Send a text customer-service message to ``user_id`` (an OpenID); a text over
        WeChat's 2,048 bytes goes as several messages, cut between lines.

        A retry after a part failed sends the earlier parts again: the customer-service API has
        no idempotency key (at-least-once, like every send on this channel)."""
        if not user_id:
            raise SendError("the Official Account cannot post to groups", retryable=False)
        text = payload.get("text", "")
        media = payload.get("media")
        if media:  # custom "news" needs a thumbnail upload; a link in the text always works
            text = f"{text}\n{media.get('title') or ''} {media['url']}".strip()
        for part in split_text(text, WECHAT_TEXT_LIMIT):
            await self._send_text(user_id, part)

    async def _send_text(self, user_id: str, text: str) -> None:
        body = {"touser": user_id, "msgtype": "text", "text": {"content": text}}
        stale: str | None = None
        for _ in range(2):
            token = await self.access_token(stale=stale)
            response = await post_for_delivery(
                self._client,
                f"{self._base}/cgi-bin/message/custom/send",
                params={"access_token": token},
                json=body,
            )
            code = _json(response).get("errcode", 0)
            if code == 0:
                return
            if code in _TOKEN_EXPIRED:
                if stale is None:
                    stale = token
                    continue
                # Rejected again after a refresh: another process or tool fetched a token
                # meanwhile (PROTOCOL-NOTES). Worth a later try with backoff, not a failure.
                raise SendError(f"wechat errcode {code} after a token refresh", retryable=True)
            # 45009: over the account's API quota, which refills: "not now", like HTTP 429.
            raise SendError(f"wechat errcode {code}", retryable=code in _RETRYABLE,
                            throttled=code == 45009)  # fmt: skip
        raise SendError("access token rejected after refresh", retryable=True)  # pragma: no cover


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise SendError("WeChat API answered non-JSON", retryable=True) from None
    return data if isinstance(data, dict) else {}
