"""Real-name verification, membership events and group officers (CONTRACT §5).

A resident binds privately: ``實名 姓名 手機號`` → a 6-digit code goes out by SMS (through the
outbox) → the resident answers with the digits → a :class:`~models.people.Binding` holds the
name and number, AES-GCM encrypted, with a keyed look-up hash of the number. Only a keyed hash
of a code is stored. Everything here runs inside the dispatcher's transaction and never commits.

Also here: ``我的信息`` / ``註銷實名``, the welcome when someone joins a group, officers joining
and being assigned to groups (``指派``), and two helpers for intake (:func:`is_verified`,
:func:`maybe_remind`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import opencc
import phonenumbers
from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import OutboundMessage
from bot.clock import as_utc
from bot.dispatcher import HandlerContext
from bot.forget import forget_sender
from bot.pii import PiiCipher, mask_name, mask_phone
from bot.routing import Router, station_subtree
from bot.sms_templates import sms_message
from broadcasts.outbox import enqueue, scrub_payload
from handlers.texts import Script, detect_script, script_of
from handlers.tickets import Out, add_event, open_reported_by
from models.base import rowcount
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import Binding, GroupMember, Household, VerificationCode
from models.tickets import Ticket

log = logging.getLogger("lianxin.verification")

# --- identity: names and numbers --------------------------------------------------------------

NAME_MIN, NAME_MAX = 2, 20
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_NAME_CHARS = re.compile(rf"[{_CJK}{_LATIN}· ]+")
_HAS_LATIN = re.compile(rf"[{_LATIN}]")
# People type the middle dot of 阿卜杜·热合曼 in many ways; one form makes names comparable.
_DOTS = str.maketrans(dict.fromkeys("•‧・･∙⋅●", "·"))
_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


class IdentityError(ValueError):
    """A name or number that cannot be used; ``key`` is the sentence that explains why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def normalise_text(text: str) -> str:
    """NFKC (full-width digits, spaces, colons → ASCII) and one middle dot."""
    return unicodedata.normalize("NFKC", text).translate(_DOTS)


def check_name(raw: str) -> str:
    """A real name, tidied: 2–20 CJK or Latin letters, ``·``; spaces only in Latin names."""
    name = re.sub(r"\s+", " ", normalise_text(raw)).strip()
    ok = (
        NAME_MIN <= len(name) <= NAME_MAX
        and _NAME_CHARS.fullmatch(name) is not None
        and not name.startswith("·")
        and not name.endswith("·")
        and "··" not in name
        and (" " not in name or _HAS_LATIN.search(name) is not None)
    )
    if not ok:
        raise IdentityError("verify_bad_name")
    return name


def normalise_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits (``+86``, ``0086``, spaces and dashes removed)."""
    cleaned = re.sub(r"[\s\-()]", "", normalise_text(raw))
    if not cleaned or not re.fullmatch(r"\+?\d{6,16}", cleaned):
        raise IdentityError("verify_bad_phone")
    try:
        parsed = phonenumbers.parse(cleaned, "CN")
    except phonenumbers.NumberParseException:
        raise IdentityError("verify_bad_phone") from None
    national = str(parsed.national_number)
    if parsed.country_code != 86 or not _MAINLAND_MOBILE.fullmatch(national):
        raise IdentityError("verify_bad_phone")
    return national


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def name_key(name: str) -> str:
    """What two spellings of one name share: Simplified script, case-folded (張三 == 张三)."""
    simplified: str = _t2s().convert(re.sub(r"\s+", " ", normalise_text(name)).strip())
    return simplified.casefold()


def phone_hash(cipher: PiiCipher, phone: str) -> str:
    """The look-up hash of a normalised number (bindings, codes, households)."""
    return cipher.lookup_hash(phone)


def name_hash(cipher: PiiCipher, name: str) -> str:
    """The look-up hash of a name, script- and case-insensitive."""
    return cipher.lookup_hash(name_key(name))


def code_hash(cipher: PiiCipher, member_id: int, code: str) -> str:
    """Keyed, so six digits cannot be brute-forced from a stolen database."""
    return cipher.lookup_hash(f"verification-code:{member_id}:{code}")


# --- parsing commands -------------------------------------------------------------------------

_BIND = re.compile(
    r"^(?:(?:我要|我想|我來|我来|申請|申请|請幫我|请帮我|幫我|帮我)\s*)?"
    r"(?:實名|实名)(?:認證|认证)?(?P<sep>[\s:,;、]*)(?P<rest>.*)$",
    re.S,
)
_NAME_AND_PHONE = re.compile(
    r"^(?P<name>.*?)[\s:,;、]*(?P<phone>(?:\+|00)?(?:86)?[\s\-]*1[\d\s\-()]{9,16})$", re.S
)
_CODE = re.compile(r"\d{6}")
# Ids are ASCII (off-wang, grp-qiaozhen-01), so "指派出所的人来看看" is not a command.
_ASSIGN = re.compile(
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
    if both:
        return BindRequest(both["name"].strip(" :,;、"), both["phone"].strip())
    if rest and not match["sep"]:
        return None
    digit = re.search(r"[+\d]", rest)
    if digit is None:
        return BindRequest(rest, "")
    return BindRequest(rest[: digit.start()].strip(" :,;、"), rest[digit.start() :].strip())


def _command_text(ctx: HandlerContext) -> str:
    """The text without leading @mentions and trailing punctuation, in half-width form."""
    text = normalise_text(ctx.event.text or "").strip()
    if ctx.event.group_id:
        text = _MENTIONS.sub("", text)
    return _TRAILING.sub("", text)


# --- small helpers ----------------------------------------------------------------------------


def _say(ctx: HandlerContext, key: str, script: Script | None = None, **values: object) -> str:
    return ctx.runtime.texts.render(key, script or ctx.script, **values)


def _tell_privately(ctx: HandlerContext, text: str) -> None:
    """Private message to the sender: a reply when the event was private (so WeChat can carry
    it passively), else a direct message on the same channel."""
    if ctx.event.is_private:
        ctx.reply(text)
    else:
        ctx.send(OutboundMessage(channel=ctx.event.channel, text=text, user_id=ctx.event.sender_id))


def _local_day(ctx: HandlerContext, when: datetime) -> date:
    return as_utc(when).astimezone(ctx.runtime.settings.tz).date()


def group_script(name: str | None) -> Script:
    """Announcements follow the group name's script; Traditional when the name does not tell."""
    return "hans" if name and script_of(name) == "hans" else "hant"


def _name_script(name: str) -> Script:
    """The script of a code's answer: the six digits do not tell, the name may."""
    return "hant" if detect_script(name) == "hant" else "hans"


async def _group_reply_once_a_day(ctx: HandlerContext, tag: str, text: str) -> None:
    """Answer in the group at most once per member per day.

    The day's idempotency key is the record: no column needed, and a unique key cannot be
    queued twice even by two events racing.
    """
    day = _local_day(ctx, ctx.now).isoformat()
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


async def is_verified(session: AsyncSession, member_id: int) -> bool:
    """Whether the member has a real-name binding."""
    return await session.scalar(_BINDING_OF, {"member_id": member_id}) is not None


async def maybe_remind(ctx: HandlerContext, *, unverified: bool = False) -> bool:
    """Queue a private "how to verify" reminder, at most one per member per local day.

    Returns whether one was queued. Verified members are never reminded; ``unverified`` says
    the caller has just checked, which saves looking again.
    """
    member = ctx.member
    if member.last_reminder_at is not None and _local_day(ctx, member.last_reminder_at) == (
        _local_day(ctx, ctx.now)
    ):
        return False
    if not unverified and await is_verified(ctx.session, member.id):
        return False
    _tell_privately(ctx, _say(ctx, "verify_reminder"))
    member.last_reminder_at = ctx.now
    return True


# --- codes ------------------------------------------------------------------------------------


def _close_code(row: VerificationCode, status: str, cipher: PiiCipher) -> None:
    """A code that can no longer bind keeps no name or number; the hash stays for rate limits."""
    row.status = status
    row.name_enc = cipher.encrypt("")
    row.phone_enc = cipher.encrypt("")


async def _open_codes(session: AsyncSession, member_id: int) -> list[VerificationCode]:
    rows = await session.scalars(
        select(VerificationCode)
        .where(VerificationCode.member_id == member_id, VerificationCode.status == "open")
        .order_by(VerificationCode.id.desc())
    )
    return list(rows.all())


async def _limit_refusal(ctx: HandlerContext, script: Script, p_hash: str) -> str | None:
    """The refusal when this member or this number asked too often, else None."""
    vs = ctx.runtime.settings.verification
    now = as_utc(ctx.now)
    window_start = now - timedelta(hours=1)
    waits: list[float] = []
    for clause in (
        VerificationCode.member_id == ctx.member.id,
        VerificationCode.phone_hash == p_hash,
    ):
        recent = (
            await ctx.session.scalars(
                select(VerificationCode.created_at).where(
                    clause, VerificationCode.created_at > window_start
                )
            )
        ).all()
        if len(recent) >= vs.max_requests_per_hour:
            oldest = min(as_utc(t) for t in recent)
            waits.append((oldest + timedelta(hours=1) - now).total_seconds())
    if waits:
        minutes = max(1, math.ceil(max(waits) / 60))
        return _say(ctx, "verify_too_many_requests", script, minutes=minutes)
    latest = await ctx.session.scalar(
        select(func.max(VerificationCode.created_at)).where(
            or_(VerificationCode.member_id == ctx.member.id, VerificationCode.phone_hash == p_hash)
        )
    )
    if latest is not None:
        remaining = vs.resend_after_s - (now - as_utc(latest)).total_seconds()
        if remaining > 0:
            return _say(ctx, "verify_resend_too_soon", script, seconds=math.ceil(remaining))
    return None


async def _request_code(ctx: HandlerContext, request: BindRequest) -> None:
    """Check the name and number, apply the limits, then queue a new code by SMS."""
    script = ctx.script
    if not request.name and not request.phone:
        ctx.reply(_say(ctx, "verify_usage", script))
        return
    try:
        name = check_name(request.name)
        if not request.phone:
            raise IdentityError("verify_missing_phone")
        phone = normalise_phone(request.phone)
    except IdentityError as exc:
        ctx.reply(_say(ctx, exc.key, script))
        return
    cipher = ctx.runtime.cipher
    p_hash = phone_hash(cipher, phone)
    refusal = await _limit_refusal(ctx, script, p_hash)
    if refusal:
        ctx.reply(refusal)
        return
    for old in await _open_codes(ctx.session, ctx.member.id):
        _close_code(old, "dead", cipher)  # a new request replaces the previous code
    vs = ctx.runtime.settings.verification
    code = f"{secrets.randbelow(10**6):06d}"
    ctx.session.add(
        VerificationCode(
            member_id=ctx.member.id,
            name_enc=cipher.encrypt(name),
            phone_enc=cipher.encrypt(phone),
            phone_hash=p_hash,
            code_hash=code_hash(cipher, ctx.member.id, code),
            created_at=ctx.now,
            expires_at=ctx.now + timedelta(seconds=vs.code_ttl_s),
            attempts=0,
            status="open",
        )
    )
    minutes = max(1, math.ceil(vs.code_ttl_s / 60))
    ctx.reply(_say(ctx, "verify_code_sent", script, phone=mask_phone(phone), minutes=minutes))
    # The number rides in the encrypted payload; outbox.user_id is a clear column, so it only
    # gets the masked form (useful to operators, useless to a thief).
    ctx.send(
        sms_message(
            "code",
            text=_say(ctx, "verify_sms", script, code=code, minutes=minutes),
            phone=phone,
            # What a gateway's template gets (docs/sms.md).
            values={"code": code, "minutes": minutes},
            # Only a hash of the code is kept; once sent, neither is its text.
            kept_text=_say(ctx, "verify_sms", script, code="******", minutes=minutes),
            priority=3,
        )
    )


async def _roster_matches(session: AsyncSession, cipher: PiiCipher, name: str, phone: str) -> bool:
    household = await session.scalar(
        select(Household).where(Household.phone_hash == phone_hash(cipher, phone))
    )
    return household is not None and hmac.compare_digest(
        household.name_hash, name_hash(cipher, name)
    )


async def _store_binding(ctx: HandlerContext, name: str, phone: str, matched: bool) -> None:
    """Create the member's binding, or replace it (re-binding)."""
    cipher = ctx.runtime.cipher
    binding = await ctx.session.scalar(select(Binding).where(Binding.member_id == ctx.member.id))
    if binding is None:
        binding = Binding(member_id=ctx.member.id)
        ctx.session.add(binding)
    binding.name_enc = cipher.encrypt(name)
    binding.phone_enc = cipher.encrypt(phone)
    binding.phone_hash = phone_hash(cipher, phone)
    binding.verified_at = ctx.now
    binding.roster_matched = matched
    await ctx.session.flush()


async def _confirm_code(ctx: HandlerContext, digits: str) -> bool:
    """Check six digits against the member's open code; False when there is none."""
    open_codes = await _open_codes(ctx.session, ctx.member.id)
    if not open_codes:
        return False
    row = open_codes[0]
    cipher = ctx.runtime.cipher
    vs = ctx.runtime.settings.verification
    name = cipher.decrypt(row.name_enc) or ""
    script = _name_script(name)
    if as_utc(ctx.now) >= as_utc(row.expires_at):
        _close_code(row, "dead", cipher)
        ctx.reply(_say(ctx, "verify_code_expired", script))
        return True
    if not hmac.compare_digest(row.code_hash, code_hash(cipher, ctx.member.id, digits)):
        row.attempts += 1
        left = vs.max_tries - row.attempts
        if left <= 0:
            _close_code(row, "dead", cipher)
            ctx.reply(_say(ctx, "verify_code_exhausted", script))
        else:
            ctx.reply(_say(ctx, "verify_code_wrong", script, left=left))
        return True
    phone = cipher.decrypt(row.phone_enc) or ""
    matched = await _roster_matches(ctx.session, cipher, name, phone)
    if vs.roster_match and not matched:
        _close_code(row, "dead", cipher)
        ctx.reply(_say(ctx, "verify_roster_mismatch", script))
        return True
    _close_code(row, "used", cipher)
    await _store_binding(ctx, name, phone, matched)
    # The confirmation first (it is the passive reply on the Official Account), then the
    # acknowledgements of whatever was held for them.
    ctx.reply(_say(ctx, "verify_bound", script, name=mask_name(name), phone=mask_phone(phone)))
    # Imported here: intake imports this module for is_verified/maybe_remind.
    from handlers.intake import release_pending

    tickets = await release_pending(ctx, ctx.member)
    if tickets:
        codes = "、".join(f"#{t.code}" for t in tickets)
        ctx.reply(_say(ctx, "verify_released", script, count=len(tickets), codes=codes))
    return True


# --- 我的信息 / 註銷實名 ----------------------------------------------------------------------


async def _group_names(session: AsyncSession, member_id: int) -> list[str]:
    rows = await session.scalars(
        select(Group.name)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.member_id == member_id, GroupMember.left_at.is_(None))
        .order_by(Group.name)
    )
    return list(rows.all())


async def _show_info(ctx: HandlerContext) -> None:
    """The binding, masked, and the groups the member is in; or how to verify."""
    binding = await ctx.session.scalar(select(Binding).where(Binding.member_id == ctx.member.id))
    if binding is None:
        ctx.reply(_say(ctx, "verify_info_unbound"))
        return
    cipher = ctx.runtime.cipher
    groups = await _group_names(ctx.session, ctx.member.id)
    ctx.reply(
        _say(
            ctx,
            "verify_info",
            name=mask_name(cipher.decrypt(binding.name_enc) or ""),
            phone=mask_phone(cipher.decrypt(binding.phone_enc) or ""),
            date=_local_day(ctx, binding.verified_at).isoformat(),
            groups="、".join(groups) if groups else _say(ctx, "verify_info_no_groups"),
        )
    )


async def _unbind(ctx: HandlerContext) -> None:
    """Delete the binding and every code that still holds a name or number; when a binding was
    deleted, cut the account link too (:func:`_cut_the_link`)."""
    session, member_id = ctx.session, ctx.member.id
    had_open_code = bool(await _open_codes(session, member_id))
    deleted = await session.execute(delete(Binding).where(Binding.member_id == member_id))
    # Closed codes hold no personal data any more; recent ones stay (hash only) so that
    # 註銷 + 實名 cannot be used to get around the hourly limits.
    await session.execute(
        delete(VerificationCode).where(
            VerificationCode.member_id == member_id,
            or_(
                VerificationCode.status == "open",
                VerificationCode.created_at <= ctx.now - timedelta(hours=1),
            ),
        )
    )
    await _scrub_history(ctx)
    had_binding = bool(rowcount(deleted))
    if had_binding:
        await _cut_the_link(ctx)
    elif had_open_code:  # a verification under way: its code no longer works
        ctx.reply(_say(ctx, "verify_unbind_code_cancelled"))
    else:
        ctx.reply(_say(ctx, "verify_unbind_nothing"))


async def _cut_the_link(ctx: HandlerContext) -> None:
    """After the binding's deletion: the matter stays, the account link goes (bot.forget).

    The officers of the resident's open tickets hear that answers no longer reach them, and
    each ticket's timeline says so; the resident's confirmation names those tickets."""
    member, sender = ctx.member, ctx.event.sender_id
    tickets = list(
        (await ctx.session.scalars(open_reported_by(member.id).order_by(Ticket.id))).all()
    )
    forgotten = await forget_sender(ctx.session, ctx.runtime.cipher, member, ctx.now)
    log.info(
        "member %s cut the link: journal=%d outbox=%d waiting=%d reporters=%d mentions=%d",
        member.id,
        forgotten.journal,
        forgotten.outbox,
        forgotten.waiting,
        forgotten.reporters,
        forgotten.mentions,
    )
    await _tell_officers_reporter_left(ctx, tickets)
    text = _say(ctx, "verify_unbind_done")
    if tickets:
        codes = "、".join(f"#{t.code}" for t in tickets)
        text += _say(ctx, "verify_unbind_open_tickets", count=len(tickets), codes=codes)
    # The confirmation must reach them: it keeps the real id until sent, then the pseudonym.
    ctx.pseudonyms[sender] = forgotten.pseudonym
    ctx.send(
        OutboundMessage(
            channel=ctx.event.channel,
            text=text,
            user_id=sender,
            extra={"pseudonyms": {sender: forgotten.pseudonym}},
        )
    )


async def _tell_officers_reporter_left(ctx: HandlerContext, tickets: list[Ticket]) -> None:
    """One private message per assigned officer listing the tickets whose reporter left, and
    a ``reporter_left`` step in each timeline."""
    by_officer: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        add_event(
            ctx.session,
            ctx.runtime,
            ticket,
            "reporter_left",
            now=ctx.now,
            actor="resident",
            detail="a reporter deleted their real-name data; answers no longer reach them",
        )
        if ticket.assigned_officer_id:
            by_officer.setdefault(ticket.assigned_officer_id, []).append(ticket)
    out = Out.of(ctx)
    for officer_id, theirs in by_officer.items():
        officer = await ctx.session.get(Officer, officer_id)
        if officer is None:
            continue
        codes = "、".join(f"#{t.code}" for t in theirs)
        out.to_officer(officer, out.text("officer_reporter_left", theirs[0].script, codes=codes))


async def _scrub_history(ctx: HandlerContext) -> None:
    """Mask the member's earlier real-name commands in the journal and the numbers their code
    messages went to (journal rows from before commands were masked on arrival, and code
    messages still waiting, which are not sent any more)."""
    session, cipher, member = ctx.session, ctx.runtime.cipher, ctx.member
    events = (
        await session.scalars(
            select(InboundEvent).where(
                InboundEvent.channel == member.channel,
                InboundEvent.sender_id == member.sender_id,
                InboundEvent.kind == "message",
            )
        )
    ).all()
    commands = []
    for event in events:
        try:
            payload = cipher.decrypt_json(event.payload_enc)
        except ValueError:  # under a key already dropped: nobody can read it any more
            continue
        request = parse_bind(str(payload.get("text") or ""))
        if request is not None:
            commands.append(event.id)
            if "*" in request.phone:
                continue  # masked on arrival already; masking it again would garble it
            masked = redacted_bind(request)
            if payload.get("text") != masked:
                event.payload_enc = cipher.encrypt_json({**payload, "text": masked})
    if not commands:
        return
    for row in (
        await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.channel == "sms", OutboxMessage.source_event_id.in_(commands)
            )
        )
    ).all():
        with contextlib.suppress(ValueError):  # unreadable already: nothing to mask
            payload = scrub_payload(cipher.decrypt_json(row.payload_enc))
            row.payload_enc = cipher.encrypt_json(payload)
        if row.status in ("pending", "sending"):
            row.status, row.last_error = "failed", "cancelled: the real-name binding was deleted"


# --- 指派 ---------------------------------------------------------------------------------------


async def _station_within(session: AsyncSession, station_id: str, ancestor_id: str) -> bool:
    """Whether ``station_id`` is ``ancestor_id`` or below it."""
    return station_id in await station_subtree(session, [ancestor_id])


async def _assign(ctx: HandlerContext, first: str | None, second: str | None) -> None:
    """``指派 [群] 警員``: a leader makes an officer the officer of a group."""
    leader = ctx.officer
    if leader is None or leader.role != "leader":
        ctx.reply(_say(ctx, "verify_assign_not_leader"))
        return
    if first and second:
        group_id, officer_id = first, second
    elif first and ctx.group is not None:
        group_id, officer_id = ctx.group.id, first
    else:
        ctx.reply(_say(ctx, "verify_assign_usage"))
        return
    group = await ctx.session.get(Group, group_id)
    if group is None:
        ctx.reply(_say(ctx, "verify_assign_unknown_group", group_id=group_id))
        return
    officer = await ctx.session.get(Officer, officer_id)
    if officer is None:
        ctx.reply(_say(ctx, "verify_assign_unknown_officer", officer_id=officer_id))
        return
    if not await _station_within(ctx.session, group.station_id, leader.station_id):
        ctx.reply(_say(ctx, "verify_assign_out_of_scope", group=group.name))
        return
    group.officer_id = officer.id
    ctx.reply(_say(ctx, "verify_assign_done", officer=officer.name, group=group.name))


# --- membership events ------------------------------------------------------------------------


async def _membership_row(ctx: HandlerContext, group_id: str) -> GroupMember | None:
    return await ctx.session.scalar(
        select(GroupMember).where(
            GroupMember.group_id == group_id, GroupMember.member_id == ctx.member.id
        )
    )


async def _joined(ctx: HandlerContext, group_id: str) -> None:
    row = await _membership_row(ctx, group_id)
    if row is None:
        ctx.session.add(GroupMember(group_id=group_id, member_id=ctx.member.id, joined_at=ctx.now))
    else:
        row.joined_at, row.left_at = ctx.now, None
    group = ctx.group
    if group is None:
        return  # a group not in the directory: remember who is in it, say nothing
    script = group_script(group.name)
    if ctx.officer is not None:
        _announce_officer(ctx, group, ctx.officer, script)
        return
    if ctx.member.welcomed_at is not None:
        return
    verified = await is_verified(ctx.session, ctx.member.id)
    key = "verify_welcome_verified" if verified else "verify_welcome"
    ctx.send(
        OutboundMessage(
            channel=ctx.event.channel,
            text=_say(ctx, key, script, group=group.name),
            user_id=ctx.event.sender_id,
        )
    )
    ctx.member.welcomed_at = ctx.now


def _announce_officer(ctx: HandlerContext, group: Group, officer: Officer, script: Script) -> None:
    """Tell the group its officer is here; an officer joining an officer-less group takes it."""
    if group.officer_id is None:
        group.officer_id = officer.id
    # Only the group's own officer is introduced as "this group's officer"; a colleague (a
    # leader, a stand-in) is introduced as an officer of the station.
    key = "verify_officer_joined" if group.officer_id == officer.id else "verify_colleague_joined"
    ctx.send(
        OutboundMessage(
            channel=ctx.event.channel,
            text=_say(ctx, key, script, officer=officer.name),
            group_id=group.id,
        )
    )


async def _left(ctx: HandlerContext, group_id: str) -> None:
    row = await _membership_row(ctx, group_id)
    if row is not None and row.left_at is None:
        row.left_at = ctx.now
    group, officer = ctx.group, ctx.officer
    if group is not None and officer is not None and group.officer_id == officer.id:
        await _release_group(ctx, group, officer)


async def _release_group(ctx: HandlerContext, group: Group, officer: Officer) -> None:
    """The group's own officer left its chat: the group no longer has one, and a leader hears of
    it. Its items still reach the duty officer; the next officer to join, or ``指派``, takes it."""
    group.officer_id = None
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    leader = await router.escalation_target(officer, 2)
    if leader is None:
        log.warning("group %s lost its officer and no leader is up the chain", group.id)
        return
    text = _say(
        ctx, "verify_officer_left", group_script(group.name),
        officer=officer.name, group=group.name, group_id=group.id,
    )  # fmt: skip
    Out.of(ctx).to_officer(leader, text)


# --- entry points -----------------------------------------------------------------------------


async def membership_events(ctx: HandlerContext) -> bool:
    """``member_joined`` / ``member_left`` from the bridge: membership, welcome, officers."""
    kind = ctx.event.kind
    if kind not in ("member_joined", "member_left"):
        return False
    group_id = ctx.event.group_id
    if group_id is None:
        return True  # the bridge always names the group; nothing to record without one
    if kind == "member_joined":
        await _joined(ctx, group_id)
    else:
        await _left(ctx, group_id)
    return True


def redacted_bind(request: BindRequest) -> str:
    """What the journal keeps of a real-name command: ``實名 楊** 139****5678``."""
    digits = re.sub(r"\D", "", request.phone)
    return " ".join(part for part in ("實名", mask_name(request.name), mask_phone(digits)) if part)


async def verification_commands(ctx: HandlerContext) -> bool:
    """實名, the code, 我的信息, 註銷實名 (private); the public-實名 hint; 指派 (anywhere)."""
    if ctx.event.kind != "message" or not ctx.event.text:
        return False
    text = _command_text(ctx)
    assign = _ASSIGN.match(text)
    if assign:
        await _assign(ctx, assign["a"], assign["b"])
        return True
    request = parse_bind(text)
    if request is not None:
        # The name and number live encrypted in the binding, where 註銷實名 deletes them; the
        # journal keeps the command masked, in a group as well as privately.
        await ctx.redact_journal(redacted_bind(request))
    if ctx.event.is_private:
        return await _private_command(ctx, text, request)
    return await _group_command(ctx, text, request)


async def _private_command(ctx: HandlerContext, text: str, request: BindRequest | None) -> bool:
    if _CODE.fullmatch(text):
        # Only a hash of a code is kept, in the journal as everywhere else.
        await ctx.redact_journal("******")
        return await _confirm_code(ctx, text)
    if request is not None:
        await _request_code(ctx, request)
        return True
    if text in INFO_COMMANDS:
        await _show_info(ctx)
        return True
    if text in UNBIND_COMMANDS:
        await _unbind(ctx)
        return True
    return False


async def _group_command(ctx: HandlerContext, text: str, request: BindRequest | None) -> bool:
    """In a group nothing personal is processed or repeated: point to the private chat."""
    if request is not None:
        await _group_reply_once_a_day(ctx, "verify-public", _say(ctx, "verify_public_hint"))
        return True
    if text in INFO_COMMANDS or text in UNBIND_COMMANDS:
        await _group_reply_once_a_day(ctx, "verify-private", _say(ctx, "verify_private_only"))
        return True
    return False
