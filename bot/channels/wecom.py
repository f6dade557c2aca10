"""WeCom smart robot (智能机器人, CONTRACT §3a): URL check, decryption, parsing, passive replies.

WeCom POSTs ``{"encrypt": "..."}`` with ``msg_signature``, ``timestamp`` and ``nonce`` in the
query. The cipher is the Official Account's AES scheme with an EMPTY ReceiveId, so
``wechatpy.enterprise.WeChatCrypto(token, key, "")`` decrypts it when handed
``{"Encrypt": ...}``. wechatpy only speaks XML envelopes, so the JSON reply is built here from
the library's ``PrpCrypto`` and ``WeChatSigner``.

What this module adds to wechatpy (PROTOCOL-NOTES): a constant-time signature comparison, a
timestamp freshness window, a catch-all around decrypt + parse (a wrong key fails at random),
strict field checks on the decrypted JSON, and stripping the robot's @name from group texts.

Passive reply shapes (WeCom "被动回复消息"): a user message is answered with a ``stream``
message (``finish: true``, so WeCom sends no stream-refresh callbacks); ``text`` is accepted
only in answer to an event (the ``enter_chat`` welcome). See docs/wecom.md.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import WeChatSigner, to_text

from bot.channels.wechat import Malformed, Rejected, malformed
from bot.messages import (
    InboundMessage,
    inbound_problem,
    unix_seconds,
)
from bot.settings import WeComSettings, secret_value

__all__ = [
    "ParsedWeCom",
    "Rejected",
    "WeComCallback",
    "WeComQuery",
    "strip_mention",
]

CHANNEL = "wecom"
# A stream reply's content is limited to 20480 bytes (UTF-8) by WeCom.
STREAM_LIMIT = 20480
_MENTION = re.compile(r"^@\S+[\s\u2005\u00a0]*")
_SPACES = "\u2005\u00a0 \t\r\n"


def _signature(*parts: str) -> str:
    """WeCom's msg_signature: sha1 over the sorted parts (wechatpy's signer)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


@dataclass(frozen=True)
class WeComQuery:
    """The callback's query string."""

    msg_signature: str | None
    timestamp: str | None
    nonce: str | None
    echostr: str | None = None


@dataclass(frozen=True)
class ParsedWeCom:
    """A verified, decrypted callback.

    ``inbound`` is None for a stream-refresh callback, which is not a new message (we always
    finish our streams in the first reply, so WeCom should not send one).
    """

    inbound: InboundMessage | None
    msgtype: str
    chattype: str
    chat_id: str | None
    response_url: str | None

    @property
    def reply_kind(self) -> Literal["stream", "text"]:
        """The passive reply type WeCom accepts for this callback."""
        return "text" if self.msgtype == "event" else "stream"


def strip_mention(text: str, robot_name: str | None, *, group: bool) -> str:
    """Remove the leading ``@robot`` from a text.

    With ``robot_name`` only that mention is removed (in any chat). Without it, a group text's
    first ``@word`` is removed: WeCom calls back in groups only when the robot is mentioned,
    and the mention comes first.
    """
    stripped = text.lstrip(_SPACES)
    if robot_name:
        mention = "@" + robot_name
        if stripped.startswith(mention):
            rest = stripped[len(mention) :]
            if not rest or rest[0] in _SPACES:
                return rest.lstrip(_SPACES)
        return stripped if group else text
    if group:
        return _MENTION.sub("", stripped, count=1)
    return text


class WeComCallback:
    """Verifies and decodes ``/wecom/bot/callback`` requests for one smart robot."""

    def __init__(
        self,
        *,
        token: str,
        aes_key: str,
        window_s: int,
        robot_name: str | None = None,
        aibot_id: str | None = None,
        passive_reply_budget_s: float = 4.0,
    ) -> None:
        self._token = token
        self._window_s = window_s
        self._robot_name = robot_name or None
        self._aibot_id = aibot_id or None
        self.passive_reply_budget_s = passive_reply_budget_s
        # Smart robots use an empty ReceiveId (WeCom: "receiveid 直接传空字符串").
        self._crypto = WeChatCrypto(token, aes_key, "")

    @classmethod
    def from_settings(cls, settings: WeComSettings, *, window_s: int) -> WeComCallback:
        """Build from the ``wecom`` section; raises ValueError when it is not configured."""
        if not settings.configured:
            raise ValueError("wecom.token and wecom.encoding_aes_key are required")
        return cls(
            token=secret_value(settings.token),
            aes_key=secret_value(settings.encoding_aes_key),
            window_s=window_s,
            robot_name=settings.robot_name,
            aibot_id=settings.aibot_id,
            passive_reply_budget_s=settings.passive_reply_budget_s,
        )

    # --- checks -----------------------------------------------------------------------------
    def _check_fresh(self, timestamp: str | None, now: datetime) -> None:
        ts = unix_seconds(timestamp)
        if ts is None:
            raise Rejected(403, "missing or bad timestamp")
        if abs(now.timestamp() - ts) > self._window_s:
            raise Rejected(403, "stale timestamp")

    def _check_signature(self, q: WeComQuery, encrypted: str) -> None:
        # wechatpy compares with `!=`; compare in constant time first (PROTOCOL-NOTES).
        if not q.msg_signature or q.nonce is None or q.timestamp is None:
            raise Rejected(403, "missing msg_signature")
        expected = _signature(self._token, q.timestamp, q.nonce, encrypted)
        given = q.msg_signature.lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):
            raise Rejected(403, "bad msg_signature")

    # --- requests ---------------------------------------------------------------------------
    def verify_url(self, q: WeComQuery, now: datetime) -> str:
        """The GET handshake: returns the decrypted ``echostr`` when the signature holds."""
        if not q.msg_signature:
            raise Rejected(403, "missing msg_signature")
        if q.echostr is None:
            raise Rejected(400, "missing echostr")
        self._check_signature(q, q.echostr)
        self._check_fresh(q.timestamp, now)
        try:
            echo = self._crypto.check_signature(q.msg_signature, q.timestamp, q.nonce, q.echostr)
        except InvalidSignatureException:
            raise Rejected(403, "bad msg_signature") from None
        except Exception as exc:  # wrong key or garbage: see PROTOCOL-NOTES
            raise Rejected(400, f"cannot decrypt echostr ({type(exc).__name__})") from None
        return str(echo)

    def parse(self, q: WeComQuery, body: bytes, now: datetime) -> ParsedWeCom:
        """Verify and decode a POST; raises :class:`Rejected` with 403 or 400."""
        if not q.msg_signature or q.nonce is None or q.timestamp is None:
            raise Rejected(403, "missing msg_signature")
        self._check_fresh(q.timestamp, now)
        try:
            envelope = json.loads(body)
        except Exception as exc:
            raise Rejected(400, f"malformed envelope ({type(exc).__name__})") from None
        encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
        if not isinstance(encrypted, str) or not encrypted:
            raise Rejected(400, "malformed envelope")
        self._check_signature(q, encrypted)
        try:
            plain = self._crypto.decrypt_message(
                {"Encrypt": encrypted}, q.msg_signature, q.timestamp, q.nonce
            )
            data = json.loads(plain)
        except InvalidSignatureException:
            raise Rejected(403, "bad msg_signature") from None
        except Exception as exc:  # wrong key, garbage, broken JSON: log the class only
            raise Rejected(400, f"cannot decrypt ({type(exc).__name__})") from None
        try:
            parsed = self._to_parsed(data, now)
        except Rejected:
            raise
        except Exception as exc:
            raise Rejected(400, malformed(exc)) from None
        problem = parsed.inbound and inbound_problem(parsed.inbound, _FIELD_NAMES)
        if problem:
            raise Rejected(400, f"malformed message ({problem})")
        return parsed

    def _to_parsed(self, data: Any, now: datetime) -> ParsedWeCom:
        if not isinstance(data, dict):
            raise Malformed("not an object")
        msgid = _field(data, "msgid")
        msgtype = _field(data, "msgtype")
        chattype = _field(data, "chattype")
        if chattype not in {"group", "single"}:
            raise Malformed("bad chattype")
        sender = data.get("from")
        if not isinstance(sender, dict):
            raise Malformed("missing from")
        user_id = _field(sender, "userid")
        if self._aibot_id is not None:
            aibot = data.get("aibotid")
            if not isinstance(aibot, str) or not hmac.compare_digest(
                aibot.encode(), self._aibot_id.encode()
            ):
                raise Rejected(403, "aibotid is not this robot")
        chat_id = _optional(data, "chatid")
        if chattype == "group" and not chat_id:
            raise Malformed("group message without chatid")
        group_id = chat_id if chattype == "group" else None
        response_url = _optional(data, "response_url")
        common = partial(
            InboundMessage,
            channel=CHANNEL,
            dedup_key=f"msg:{user_id}:{msgid}",  # scoped: one user cannot replay another's
            sender_id=user_id,
            group_id=group_id,
        )
        result = partial(
            ParsedWeCom,
            msgtype=msgtype,
            chattype=chattype,
            chat_id=chat_id,
            response_url=response_url,
        )
        if msgtype == "stream":
            _object(data, "stream")  # a refresh of one of our streams: nothing new to handle
            return result(inbound=None)
        if msgtype == "event":
            event = _object(data, "event")
            created = data.get("create_time")
            occurred_at = now  # messages carry no time; events carry create_time
            if isinstance(created, int) and not isinstance(created, bool) and created > 0:
                occurred_at = datetime.fromtimestamp(created, now.tzinfo)
            kind_name = _field(event, "eventtype").lower()
            inbound = common(kind="event", msg_type=f"event:{kind_name}", occurred_at=occurred_at)
            return result(inbound=inbound)
        text = ""
        msg_type = "file"
        group = chattype == "group"
        if msgtype == "text":
            text = strip_mention(
                _field(_object(data, "text"), "content"), self._robot_name, group=group
            )
            msg_type = "text"
        elif msgtype == "mixed":
            parts = []
            items = _object(data, "mixed").get("msg_item")
            if not isinstance(items, list):
                raise Malformed("bad mixed.msg_item")
            for item in items:
                if isinstance(item, dict) and item.get("msgtype") == "text":
                    parts.append(_field(_object(item, "text"), "content"))
            text = strip_mention("\n".join(parts), self._robot_name, group=group)
            msg_type = "text"
        elif msgtype == "voice":
            text = _field(_object(data, "voice"), "content")  # WeCom's speech-to-text
            msg_type = "voice"
        elif msgtype == "image":
            _object(data, "image")
            msg_type = "image"
        # Image and file URLs point at AES-encrypted blobs valid for five minutes: not kept.
        inbound = common(kind="message", msg_type=msg_type, text=text, occurred_at=now)
        return result(inbound=inbound)

    # --- replies ----------------------------------------------------------------------------
    def render_reply(
        self,
        text: str,
        q: WeComQuery,
        *,
        kind: Literal["stream", "text"] = "stream",
        stream_id: str = "",
    ) -> dict[str, str]:
        """The encrypted JSON passive reply ``{"encrypt","msgsignature","timestamp","nonce"}``.

        ``stream`` (the only type WeCom accepts for a user message) is sent finished, with the
        full text; ``text`` is for event callbacks (the ``enter_chat`` welcome).
        """
        if kind == "stream":
            plain: dict[str, Any] = {
                "msgtype": "stream",
                "stream": {"id": stream_id, "finish": True, "content": _clip(text, STREAM_LIMIT)},
            }
        else:
            plain = {"msgtype": "text", "text": {"content": text}}
        return self.encrypt_json(plain, q)

    def encrypt_json(self, plain: dict[str, Any], q: WeComQuery) -> dict[str, str]:
        """Encrypt and sign a plaintext reply object, as WeCom's JSON crypto library does."""
        timestamp = q.timestamp or ""
        nonce = q.nonce or ""
        message = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
        encrypt = to_text(PrpCrypto(self._crypto.key).encrypt(message, ""))
        return {
            "encrypt": encrypt,
            "msgsignature": _signature(self._token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }


# WeCom's names for the fields of a normalised event, for error messages.
_FIELD_NAMES = {
    "dedup_key": "msgid",
    "sender_id": "from.userid",
    "group_id": "chatid",
    "text": "text.content",
}


def _field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"missing {key}")
    return value


def _optional(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"bad {key}")
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"missing {key}")
    return value


def _clip(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", "ignore") + "…"
