"""Real-name verification (CONTRACT §5).

A resident binds privately: ``實名 姓名 手機號`` → a 6-digit code goes out by SMS (through the
outbox) → the resident answers with the digits → a :class:`~models.people.Binding` holds the
name and number, AES-GCM encrypted, with a keyed look-up hash of the number. Only a keyed hash
of a code is stored. Everything here runs inside the dispatcher's transaction and never commits.

``我的信息`` / ``註銷實名`` are in handlers/my_info.py, joins, leaves and ``指派`` in
handlers/membership.py, names and numbers (normalising, hashing) in bot/services/identity.py.
Two helpers for intake are in handlers/verification_support.py: :func:`is_verified`,
:func:`maybe_remind`.
"""

from __future__ import annotations

import hmac
import math
import secrets
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import as_utc
from bot.pii import PiiCipher, mask_name, mask_phone
from bot.services.identity import (
    IdentityError,
    check_name,
    code_hash,
    name_hash,
    normalise_phone,
    phone_hash,
)
from bot.sms_templates import sms_message
from bot.texts import Script
from handlers.context import HandlerContext
from handlers.intake import release_pending
from handlers.membership import assign_officer
from handlers.my_info import show_info, unbind
from handlers.verification_support import (
    ASSIGN_COMMAND,
    INFO_COMMANDS,
    UNBIND_COMMANDS,
    BindRequest,
    close_code,
    code_attempt,
    code_typed,
    command_text,
    group_reply_once_a_day,
    name_script,
    open_code_rows,
    parse_bind,
    redacted_bind,
    say,
)
from models.people import Binding, Household, VerificationCode

# --- codes ------------------------------------------------------------------------------------


async def _limit_refusal(ctx: HandlerContext, script: Script, p_hash: str) -> str | None:
    """The refusal when this member or this number asked too often, else None."""
    vs = ctx.runtime.settings.verification
    now = as_utc(ctx.now)
    # (window, limit, what the refusal says): a day's cap on top of the hour's, as SMS
    # gateways' own flow control has (1 a minute, 5 an hour, 10 a day per number): without it
    # one number could be sent 120 codes a day, and a stranger get 25 tries an hour at it.
    limits = (
        (timedelta(hours=1), vs.max_requests_per_hour, "verify_too_many_requests"),
        (timedelta(days=1), vs.max_requests_per_day, "verify_too_many_today"),
    )
    for window, limit, key in reversed(limits):
        waits: list[float] = []
        for clause in (
            VerificationCode.member_id == ctx.member.id,
            VerificationCode.phone_hash == p_hash,
        ):
            recent = (
                await ctx.session.scalars(
                    select(VerificationCode.created_at).where(
                        clause, VerificationCode.created_at > now - window
                    )
                )
            ).all()
            if len(recent) >= limit:
                oldest = min(as_utc(t) for t in recent)
                waits.append((oldest + window - now).total_seconds())
        if waits:
            minutes = max(1, math.ceil(max(waits) / 60))
            return say(ctx, key, script, minutes=minutes, hours=math.ceil(minutes / 60))
    latest = await ctx.session.scalar(
        select(func.max(VerificationCode.created_at)).where(
            or_(VerificationCode.member_id == ctx.member.id, VerificationCode.phone_hash == p_hash)
        )
    )
    if latest is not None:
        remaining = vs.resend_after_s - (now - as_utc(latest)).total_seconds()
        if remaining > 0:
            return say(ctx, "verify_resend_too_soon", script, seconds=math.ceil(remaining))
    return None


async def _request_code(ctx: HandlerContext, request: BindRequest) -> None:
    """Check the name and number, apply the limits, then queue a new code by SMS."""
    script = ctx.script
    if not request.name and not request.phone:
        ctx.reply(say(ctx, "verify_usage", script))
        return
    try:
        name = check_name(request.name)
        if not request.phone:
            raise IdentityError("verify_missing_phone")
        phone = normalise_phone(request.phone)
    except IdentityError as exc:
        ctx.reply(say(ctx, exc.key, script))
        return
    cipher = ctx.runtime.cipher
    p_hash = phone_hash(cipher, phone)
    refusal = await _limit_refusal(ctx, script, p_hash)
    if refusal:
        ctx.reply(refusal)
        return
    for old in await open_code_rows(ctx.session, ctx.member.id):
        close_code(old, "dead", cipher)  # a new request replaces the previous code
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
            script=script,
        )
    )
    minutes = max(1, math.ceil(vs.code_ttl_s / 60))
    ctx.reply(say(ctx, "verify_code_sent", script, phone=mask_phone(phone), minutes=minutes))
    # The number rides in the encrypted payload; outbox.user_id is a clear column, so it only
    # gets the masked form (useful to operators, useless to a thief).
    ctx.send(
        sms_message(
            "code",
            text=say(ctx, "verify_sms", script, code=code, minutes=minutes),
            phone=phone,
            # What a gateway's template gets (docs/sms.md).
            values={"code": code, "minutes": minutes},
            # Only a hash of the code is kept; once sent, neither is its text.
            kept_text=say(ctx, "verify_sms", script, code="******", minutes=minutes),
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


async def _after_a_dead_code(ctx: HandlerContext) -> bool:
    """Six digits again after the member's latest code died (tried too often, or expired)
    within the hour: they are told it is dead and how to get a new one, in the request's
    script (a newcomer got the greeting, in the other script). False otherwise."""
    latest = await ctx.session.scalar(
        select(VerificationCode)
        .where(VerificationCode.member_id == ctx.member.id)
        .order_by(VerificationCode.id.desc())
        .limit(1)
    )
    if latest is None or latest.status != "dead":
        return False
    if as_utc(ctx.now) - as_utc(latest.created_at) > timedelta(hours=1):
        return False
    ctx.reply(say(ctx, "verify_code_dead", latest.script or ctx.script))
    return True


async def _confirm_code(ctx: HandlerContext, digits: str) -> bool:
    """Check six digits against the member's open code; False when there is none."""
    open_codes = await open_code_rows(ctx.session, ctx.member.id)
    if not open_codes:
        return await _after_a_dead_code(ctx)
    row = open_codes[0]
    cipher = ctx.runtime.cipher
    vs = ctx.runtime.settings.verification
    name = cipher.decrypt(row.name_enc) or ""
    script = row.script or name_script(name)
    if as_utc(ctx.now) >= as_utc(row.expires_at):
        close_code(row, "dead", cipher)
        ctx.reply(say(ctx, "verify_code_expired", script))
        return True
    if not hmac.compare_digest(row.code_hash, code_hash(cipher, ctx.member.id, digits)):
        row.attempts += 1
        left = vs.max_tries - row.attempts
        if left <= 0:
            close_code(row, "dead", cipher)
            ctx.reply(say(ctx, "verify_code_exhausted", script))
        else:
            ctx.reply(say(ctx, "verify_code_wrong", script, left=left))
        return True
    phone = cipher.decrypt(row.phone_enc) or ""
    matched = await _roster_matches(ctx.session, cipher, name, phone)
    if vs.roster_match and not matched:
        close_code(row, "dead", cipher)
        ctx.reply(say(ctx, "verify_roster_mismatch", script))
        return True
    close_code(row, "used", cipher)
    await _store_binding(ctx, name, phone, matched)
    # The confirmation first (it is the passive reply on the Official Account), then the
    # acknowledgements of whatever was held for them.
    ctx.reply(say(ctx, "verify_bound", script, name=mask_name(name), phone=mask_phone(phone)))

    tickets = await release_pending(ctx, ctx.member)
    if tickets:
        codes = "、".join(f"#{t.code}" for t in tickets)
        ctx.reply(say(ctx, "verify_released", script, count=len(tickets), codes=codes))
    return True


# --- entry points -----------------------------------------------------------------------------


async def verification_commands(ctx: HandlerContext) -> bool:
    """實名, the code, 我的信息, 註銷實名 (private); the public-實名 hint; 指派 (anywhere)."""
    if ctx.event.kind != "message" or not ctx.event.text:
        return False
    text = command_text(ctx)
    assign = ASSIGN_COMMAND.match(text)
    if assign:
        await assign_officer(ctx, assign["a"], assign["b"])
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
    code = code_typed(text)
    if code is None and request is None:
        code = await _code_in_words(ctx, text)
        if code == "":
            return True
    if code is not None:
        # Only a hash of a code is kept, in the journal as everywhere else.
        await ctx.redact_journal("******")
        return await _confirm_code(ctx, code)
    if request is not None:
        await _request_code(ctx, request)
        return True
    if text in INFO_COMMANDS:
        await show_info(ctx)
        return True
    if text in UNBIND_COMMANDS:
        await unbind(ctx)
        return True
    return False


async def _code_in_words(ctx: HandlerContext, text: str) -> str | None:
    """The six digits of a code typed back among words while one is open; "" when the digits
    are too few or too many (the resident is told to send the six, no try is counted); None
    when the message is no attempt at a code (it went to the greeting, which asked for words
    again: elders did not see why their code was ignored)."""
    attempt = code_attempt(text)
    if attempt is None:
        return None
    open_codes = await open_code_rows(ctx.session, ctx.member.id)
    if not open_codes:
        return None
    if len(attempt) == 6:
        return attempt
    await ctx.redact_journal("******")
    script = open_codes[0].script or ctx.script
    ctx.reply(say(ctx, "verify_code_length", script, count=len(attempt)))
    return ""


async def _group_command(ctx: HandlerContext, text: str, request: BindRequest | None) -> bool:
    """In a group nothing personal is processed or repeated: point to the private chat."""
    if request is not None:
        await group_reply_once_a_day(ctx, "verify-public", say(ctx, "verify_public_hint"))
        return True
    if text in INFO_COMMANDS or text in UNBIND_COMMANDS:
        await group_reply_once_a_day(ctx, "verify-private", say(ctx, "verify_private_only"))
        return True
    return False
