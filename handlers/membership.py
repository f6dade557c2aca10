"""Membership events (joins, leaves, the welcome) and officers assigned to groups (``指派``)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import OutboundMessage
from bot.services.routing import Router, station_subtree
from bot.services.tickets import Out, holder_of
from bot.texts import Script, group_script
from handlers.context import HandlerContext
from handlers.verification_support import is_verified, say
from models.directory import Group, Officer
from models.people import GroupMember
from models.tickets import OPEN_STATUSES, Ticket, TicketReporter

log = logging.getLogger("lianxin.verification")

# --- 指派 ---------------------------------------------------------------------------------------


async def _station_within(session: AsyncSession, station_id: str, ancestor_id: str) -> bool:
    """Whether ``station_id`` is ``ancestor_id`` or below it."""
    return station_id in await station_subtree(session, [ancestor_id])


async def assign_officer(ctx: HandlerContext, first: str | None, second: str | None) -> None:
    """``指派 [群] 警員``: a leader makes an officer the officer of a group."""
    leader = ctx.officer
    if leader is None or leader.role != "leader":
        ctx.reply(say(ctx, "verify_assign_not_leader"))
        return
    if first and second:
        group_id, officer_id = first, second
    elif first and ctx.group is not None:
        group_id, officer_id = ctx.group.id, first
    else:
        ctx.reply(say(ctx, "verify_assign_usage"))
        return
    group = await ctx.session.get(Group, group_id)
    if group is None:
        ctx.reply(say(ctx, "verify_assign_unknown_group", group_id=group_id))
        return
    officer = await ctx.session.get(Officer, officer_id)
    if officer is None:
        ctx.reply(say(ctx, "verify_assign_unknown_officer", officer_id=officer_id))
        return
    if not await _station_within(ctx.session, group.station_id, leader.station_id):
        ctx.reply(say(ctx, "verify_assign_out_of_scope", group=group.name))
        return
    if officer.id != group.officer_id and not await _station_within(
        ctx.session, officer.station_id, leader.station_id
    ):
        # As on the console: only the leader's own officers. Another station's would get the
        # group's tickets when nobody is on duty, read them, and be refused acting on them.
        ctx.reply(say(ctx, "verify_assign_officer_out_of_scope", officer=officer.name))
        return
    group.officer_id = officer.id
    ctx.reply(say(ctx, "verify_assign_done", officer=officer.name, group=group.name))


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
            text=say(ctx, key, script, group=group.name),
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
            text=say(ctx, key, script, officer=officer.name),
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
    if group is not None and officer is None:
        await _answers_go_private(ctx, group)


async def _answers_go_private(ctx: HandlerContext, group: Group) -> None:
    """A resident left a group with matters still open that they reported there: an answer
    posted there now would @-mention somebody who cannot read it, and the officer would think
    it delivered. Their answers go privately from now on (a reporter is verified, and binding
    is done in the private chat, so that chat exists), and each ticket's officer is told."""
    rows = (
        await ctx.session.scalars(
            select(TicketReporter)
            .join(Ticket, Ticket.id == TicketReporter.ticket_id)
            .where(
                TicketReporter.member_id == ctx.member.id,
                TicketReporter.group_id == group.id,
                TicketReporter.channel == ctx.event.channel,
                Ticket.status.in_(OPEN_STATUSES),
            )
            .order_by(TicketReporter.id)
        )
    ).all()
    out = Out.of(ctx)
    for reporter in rows:
        reporter.group_id = None
        ticket = await ctx.session.get(Ticket, reporter.ticket_id)
        holder = await holder_of(ctx.session, ticket) if ticket is not None else None
        if ticket is None or holder is None:
            continue
        # In the ticket's script, as the officer's other notices about it.
        text = say(ctx, "reporter_left_group", ticket.script, code=ticket.code, group=group.name)
        out.to_officer(holder, text)


async def _release_group(ctx: HandlerContext, group: Group, officer: Officer) -> None:
    """The group's own officer left its chat: the group no longer has one, and a leader hears of
    it. Its items still reach the duty officer; the next officer to join, or ``指派``, takes it."""
    group.officer_id = None
    router = Router(ctx.session, ctx.runtime.settings.timezone)
    leader = await router.escalation_target(officer, 2)
    if leader is None:
        log.warning("group %s lost its officer and no leader is up the chain", group.id)
        return
    text = say(
        ctx, "verify_officer_left", group_script(group.name),
        officer=officer.name, group=group.name, group_id=group.id,
    )  # fmt: skip
    Out.of(ctx).to_officer(leader, text)


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
