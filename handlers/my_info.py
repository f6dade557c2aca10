"""``我的信息`` (what we hold about you) and ``註銷實名`` (cut the link, forget the sender)."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import OutboundMessage
from bot.pii import mask_name, mask_phone
from bot.services.forget import forget_sender
from bot.services.tickets import Out, add_event, open_reported_by
from broadcasts.outbox import scrub_payload
from handlers.context import HandlerContext
from handlers.verification_support import (
    close_code,
    local_day,
    open_code_rows,
    parse_bind,
    redacted_bind,
    say,
)
from models.base import rowcount
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import Binding, GroupMember, VerificationCode
from models.tickets import Ticket

log = logging.getLogger("lianxin.verification")

# --- 我的信息 / 註銷實名 ----------------------------------------------------------------------


async def _group_names(session: AsyncSession, member_id: int) -> list[str]:
    rows = await session.scalars(
        select(Group.name)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.member_id == member_id, GroupMember.left_at.is_(None))
        .order_by(Group.name)
    )
    return list(rows.all())


async def show_info(ctx: HandlerContext) -> None:
    """The binding, masked, and the groups the member is in; or how to verify."""
    binding = await ctx.session.scalar(select(Binding).where(Binding.member_id == ctx.member.id))
    if binding is None:
        ctx.reply(say(ctx, "verify_info_unbound"))
        return
    cipher = ctx.runtime.cipher
    groups = await _group_names(ctx.session, ctx.member.id)
    ctx.reply(
        say(
            ctx,
            "verify_info",
            name=mask_name(cipher.decrypt(binding.name_enc) or ""),
            phone=mask_phone(cipher.decrypt(binding.phone_enc) or ""),
            date=local_day(ctx, binding.verified_at).isoformat(),
            groups="、".join(groups) if groups else say(ctx, "verify_info_no_groups"),
        )
    )


async def unbind(ctx: HandlerContext) -> None:
    """Delete the binding and every code that still holds a name or number; when a binding was
    deleted, cut the account link too (:func:`_cut_the_link`)."""
    session, member_id = ctx.session, ctx.member.id
    open_codes = await open_code_rows(session, member_id)
    deleted = await session.execute(delete(Binding).where(Binding.member_id == member_id))
    # An open code is closed, not deleted: its name and number go, its phone hash and time stay
    # like every closed code's for the day, so that 實名 + 註銷 over and over cannot send
    # someone's phone a code at every round (the pause and the limits count them).
    for row in open_codes:
        close_code(row, "dead", ctx.runtime.cipher)
    await session.execute(
        delete(VerificationCode).where(
            VerificationCode.member_id == member_id,
            VerificationCode.created_at <= ctx.now - timedelta(days=1),
        )
    )
    await _scrub_history(ctx)
    had_binding = bool(rowcount(deleted))
    if had_binding:
        await _cut_the_link(ctx)
    elif open_codes:  # a verification under way: its code no longer works
        ctx.reply(say(ctx, "verify_unbind_code_cancelled"))
    else:
        ctx.reply(say(ctx, "verify_unbind_nothing"))


async def _cut_the_link(ctx: HandlerContext) -> None:
    """After the binding's deletion: the matter stays, the account link goes (bot.services.forget).

    The officers of the resident's open tickets hear that answers no longer reach them, and
    each ticket's timeline says so; the resident's confirmation names those tickets."""
    member, sender = ctx.member, ctx.event.sender_id
    tickets = list(
        (await ctx.session.scalars(open_reported_by(member.id).order_by(Ticket.id))).all()
    )
    forgotten = await forget_sender(
        ctx.session, ctx.runtime.cipher, member, ctx.now, up_to=ctx.journal_id
    )
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
    text = say(ctx, "verify_unbind_done")
    if tickets:
        codes = "、".join(f"#{t.code}" for t in tickets)
        text += say(ctx, "verify_unbind_open_tickets", count=len(tickets), codes=codes)
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
                # Their commands up to this one: a 實名 sent after it and not handled yet
                # must still read as typed.
                InboundEvent.id <= ctx.journal_id,
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
