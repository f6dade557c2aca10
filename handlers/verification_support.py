"""What the verification commands share: parsing them, small ways to answer, and two helpers
for intake (:func:`is_verified`, :func:`maybe_remind`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import as_utc
from bot.messages import OutboundMessage
from bot.pii import PiiCipher, mask_name, mask_phone
from bot.services.identity import normalise_text
from bot.texts import Script, detect_script
from broadcasts.outbox import enqueue
from handlers.context import HandlerContext
from models.base import core, has_changes
from models.outbox import OutboxMessage
from models.people import Binding, VerificationCode

# --- parsing commands -------------------------------------------------------------------------

_BIND = re.compile(
    r"^(?:(?:我要|我想|我來|我来|申請|申请|請幫我|请帮我|幫我|帮我)\s*)?"
    r"(?:實名|实名)(?:認證|认证)?(?P<sep>[\s:,;、]*)(?P<rest>.*)$",
    re.S,
)
_PHONE_AND_NAME = re.compile(
    r"^(?P<phone>(?:\+|00)?(?:86)?[\s\-]*1[\d\-()]{10,16})[\s:,;、]+(?P<name>[^\d\s].*)$", re.S
)
_NAME_AND_PHONE = re.compile(
    r"^(?P<name>.*?)[\s:,;、]*(?P<phone>(?:\+|00)?(?:86)?[\s\-]*1[\d\s\-()]{9,16})$", re.S
)
# The six digits as people type them back: "915614", "915 614", "验证码:915614", "code 915-614".
_CODE_TYPED = re.compile(
    r"(?:验证码|驗證碼|验证|驗證|code)?\s*[:：]?\s*(\d{3})[\s\-]?(\d{3})", re.I
)


def code_typed(text: str) -> str | None:
    """The six digits of a verification code as typed back, or None for anything else."""
    match = _CODE_TYPED.fullmatch(text.strip())
    return match.group(1) + match.group(2) if match else None


# Words people put around the digits when a code is awaited ("验证码是877125", "877125 谢谢",
# "我收到的验证码为 87712"): what is left without them is an attempt at the code.
_AROUND_A_CODE = re.compile(
    r"验证码|驗證碼|验证|驗證|code|我的|收到|是|为|為|的|了|好的|麻烦|麻煩|你好|您好"
    r"|谢谢|謝謝|多谢|多謝|感谢|感謝|唔该晒|唔該晒|唔该|唔該|辛苦|嗯|哦|喔|啊|呀|啦|吧"
    r"|[\s:,;.!?~、\-]|[\U0001F300-\U0001FAFF\u2600-\u27BF]",
    re.I,
)


def code_attempt(text: str) -> str | None:
    """The digits of a message that can only be a code typed back in words, whatever their
    number (an elder's "验证码是87712" is five digits, not a new matter), or None when other
    words remain. Read only while the sender has a code open."""
    rest = _AROUND_A_CODE.sub("", text)
    return rest if rest.isascii() and rest.isdigit() and 4 <= len(rest) <= 8 else None


# Ids are ASCII (off-wang, grp-qiaozhen-01), so "指派出所的人来看看" is not a command.
ASSIGN_COMMAND = re.compile(
    r"^指派(?:\s*(?P<a>[A-Za-z0-9][\w.\-]*))?(?:\s+(?P<b>[A-Za-z0-9][\w.\-]*))?$", re.A
)
_MENTIONS = re.compile(r"^(?:@\S+\s*)+")
_TRAILING = re.compile(r"[\s。.!！?？~～]+$")
INFO_COMMANDS = frozenset({"我的信息", "我的資訊", "我的资讯", "我的資料", "我的资料"})
UNBIND_COMMANDS = frozenset({"註銷實名", "注销实名", "注銷實名", "註銷实名"})


@dataclass(frozen=True)
class BindRequest:
    """What followed ``實名``; either part may be empty when the resident left it out."""

    name: str
    phone: str


def parse_bind(text: str) -> BindRequest | None:
    """``實名 張三 138…`` → its parts; None when the text is not the binding command.

    ``实名制怎么办`` is a question, not a command: without a separator after 實名 the rest must
    end in a number for the text to count.
    """
    match = _BIND.match(normalise_text(text).strip())
    if match is None:
        return None
    rest = match["rest"].strip()
    both = _NAME_AND_PHONE.match(rest)
    if both and not re.search(r"[\d+(（]", both["name"]):
        return BindRequest(both["name"].strip(" :,;、"), both["phone"].strip())
    turned = _PHONE_AND_NAME.match(rest)
    if turned:  # "實名 13812340018 張三": the number first
        return BindRequest(turned["name"].strip(" :,;、"), turned["phone"].strip())
    if rest and not match["sep"]:
        return None
    # The number starts at its first digit, "+" or bracket: "(+86)138…" and a landline
    # ("010-…") are a number to refuse as one, not part of the name.
    digit = re.search(r"[+\d(（]", rest)
    if digit is None:
        return BindRequest(rest, "")
    return BindRequest(rest[: digit.start()].strip(" :,;、"), rest[digit.start() :].strip())


def command_text(ctx: HandlerContext) -> str:
    """The text without leading @mentions and trailing punctuation, in half-width form."""
    text = normalise_text(ctx.event.text or "").strip()
    if ctx.event.group_id:
        text = _MENTIONS.sub("", text)
    return _TRAILING.sub("", text)


# --- small helpers ----------------------------------------------------------------------------


def say(ctx: HandlerContext, key: str, script: Script | None = None, **values: object) -> str:
    return ctx.runtime.texts.render(key, script or ctx.script, **values)


# Channels that can only answer a message, never write to a user first.
_REPLY_ONLY = frozenset({"wecom"})


def tell_privately(ctx: HandlerContext, text: str, *, names_nobody: bool = False) -> None:
    """Private message to the sender: a reply when the event was private (so WeChat can carry
    it passively), else a direct message on the same channel. On a channel that can only
    answer (WeCom's robot cannot write to a user first: the private row failed for good), the
    group hears ``text`` itself when it ``names_nobody`` (the verification reminder), else a
    line that names nothing, asking them to write privately."""
    if ctx.event.is_private:
        ctx.reply(text)
    elif ctx.event.channel in _REPLY_ONLY:
        ctx.reply(text if names_nobody else say(ctx, "ask_privately"))
    else:
        ctx.send(OutboundMessage(channel=ctx.event.channel, text=text, user_id=ctx.event.sender_id))


def local_day(ctx: HandlerContext, when: datetime) -> date:
    return as_utc(when).astimezone(ctx.runtime.settings.tz).date()


def name_script(name: str) -> Script:
    """The script of a code's answer: the six digits do not tell, the name may."""
    return "hant" if detect_script(name) == "hant" else "hans"


async def group_reply_once_a_day(ctx: HandlerContext, tag: str, text: str) -> None:
    """Answer in the group at most once per member per day.

    The day's idempotency key is the record: no column needed, and a unique key cannot be
    queued twice even by two events racing.
    """
    day = local_day(ctx, ctx.now).isoformat()
    key = f"lx-{tag}-{ctx.member.id}-{day}"
    if await ctx.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    ):
        return
    message = OutboundMessage(
        channel=ctx.event.channel,
        text=text,
        group_id=ctx.event.group_id,
        mentions=(ctx.event.sender_id,),
    )
    row = enqueue(
        ctx.session,
        message,
        cipher=ctx.runtime.cipher,
        now=ctx.now,
        idempotency_key=key,
        source_event_id=ctx.journal_id,
    )
    ctx.outbox.append(row)


# --- helpers for intake -----------------------------------------------------------------------


_BINDING_OF = select(Binding.id).where(Binding.member_id == bindparam("member_id")).limit(1)
BOUND_AMONG = select(Binding.member_id).where(
    Binding.member_id.in_(bindparam("member_ids", expanding=True))
)
_KNOWN = "lianxin.bindings.known"  # session.info: member id → has a binding (read for a batch)


def know_bindings(session: AsyncSession, known: dict[int, bool]) -> None:
    """Let :func:`is_verified` answer from ``known`` (member id → whether they have a binding,
    read at once for a batch of events with :data:`BOUND_AMONG`). Only a member's own commands
    change their binding: the caller removes a member from ``known`` once an event of theirs
    was handled, and a binding changed and not yet flushed is looked up as before."""
    session.info[_KNOWN] = known


async def is_verified(session: AsyncSession, member_id: int) -> bool:
    """Whether the member has a real-name binding."""
    known = session.info.get(_KNOWN)
    if known and member_id in known and not has_changes(session, (Binding,)):
        return bool(known[member_id])
    # On the connection (flushed first when a binding changed in this batch: it counts):
    # asked for every actionable message, and the ORM's path costs several times the query.
    conn = await core(session, flush=(Binding,))
    result = await conn.execute(_BINDING_OF, {"member_id": member_id})
    return result.first() is not None


def close_code(row: VerificationCode, status: str, cipher: PiiCipher) -> None:
    """A code that can no longer bind keeps no name or number; the hash stays for rate limits."""
    row.status = status
    row.name_enc = cipher.encrypt("")
    row.phone_enc = cipher.encrypt("")


async def open_code_rows(session: AsyncSession, member_id: int) -> list[VerificationCode]:
    rows = await session.scalars(
        select(VerificationCode)
        .where(VerificationCode.member_id == member_id, VerificationCode.status == "open")
        .order_by(VerificationCode.id.desc())
    )
    return list(rows.all())


def redacted_bind(request: BindRequest) -> str:
    """What the journal keeps of a real-name command: ``實名 楊** 139****5678``."""
    digits = re.sub(r"\D", "", request.phone)
    return " ".join(part for part in ("實名", mask_name(request.name), mask_phone(digits)) if part)


async def maybe_remind(ctx: HandlerContext, *, unverified: bool = False) -> bool:
    """Queue a private "how to verify" reminder, at most one per member per local day.

    Returns whether one was queued. Verified members are never reminded; ``unverified`` says
    the caller has just checked, which saves looking again.
    """
    member = ctx.member
    if member.last_reminder_at is not None and local_day(ctx, member.last_reminder_at) == (
        local_day(ctx, ctx.now)
    ):
        return False
    if not unverified and await is_verified(ctx.session, member.id):
        return False
    # On WeCom the reminder answers the @-mention in the group, where it was asked.
    tell_privately(ctx, say(ctx, "verify_reminder"), names_nobody=True)
    member.last_reminder_at = ctx.now
    return True
