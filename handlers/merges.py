"""Whether a resident's message belongs to an open ticket, and joining it: the same resident's
same matter, or one incident reported by several residents of a group (docs/decisions.md,
"Merges")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true

from bot.services.tickets import (
    Out,
    add_event,
    category_text,
    holder_of,
    open_reported_by,
)
from bot.texts import Script
from handlers.classify import Classification, normalise
from handlers.context import HandlerContext
from handlers.forwarding import words_to_officer
from handlers.safety import goes_on, names_a_danger, reply_key_of
from handlers.similarity import names_nothing, similarity
from models.directory import Group
from models.people import Member
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent, TicketReporter

# Overlap of content bigrams above which two messages are taken to describe one incident:
# stricter between different residents (two thefts on one evening are two matters) than for
# the same resident's follow-up.
_SIMILAR = 0.5
_FOLLOW_UP_SIMILAR = 0.34

# The writer's own crisis: nobody else reports the same one ("我被绑架了", "我不想活了").
_OWN_CRISIS = re.compile(
    r"我(?:们)?(?:被|让人|叫人)(?:绑|拐|劫|关|锁|困|打|砍|捅|追)"
    r"|我(?:不想活|活不下去|想死|要死|想自杀|要自杀|想轻生|要轻生|要跳|想跳)"
)


# How many of a ticket's latest reports a repeat is compared with.
_REPEAT_LOOKBACK = 5

# A new occurrence of the same kind of incident: "又被偷了一辆", "又一次", "再次被撬".
_AGAIN = re.compile(r"又[^,.!?]{0,6}了|又一[辆个次回台只头家户]|再次|这次又")


@dataclass(frozen=True)
class Item:
    """One resident message about to become (part of) a ticket, and where to answer it."""

    text: str
    member: Member
    channel: str
    sender_id: str
    group: Group | None
    script: Script
    # The chat's group id even when the directory does not know the group (emergencies there).
    chat_group_id: str | None = None

    @classmethod
    def of(cls, ctx: HandlerContext) -> Item:
        """The event being handled."""
        ev = ctx.event
        return cls(
            ctx.words(), ctx.member, ev.channel, ev.sender_id, ctx.group, ctx.script, ev.group_id
        )

    @property
    def group_id(self) -> str | None:
        return self.group.id if self.group else self.chat_group_id

    def reporter(self, ticket: Ticket, now: datetime) -> TicketReporter:
        """A reporter row for this item's sender on ``ticket``."""
        return TicketReporter(
            ticket_id=ticket.id,
            member_id=self.member.id,
            channel=self.channel,
            sender_id=self.sender_id,
            group_id=self.group_id,
            added_at=now,
        )


async def merge_target(
    ctx: HandlerContext,
    result: Classification,
    item: Item,
    *,
    emergency: bool,
    alert_id: int | None = None,
) -> Ticket | None:
    """An open ticket this item belongs to: the same resident's same matter, or the same
    incident reported by several residents of one group within the merge window. A clue for
    urgent notice ``alert_id`` belongs only with that notice's tickets (a sighting of the lost
    child went into its writer's bicycle theft of minutes before, by the place they shared)."""
    settings = ctx.runtime.settings.intake
    same_chat = (
        Ticket.group_id.is_(None) if item.group_id is None else Ticket.group_id == item.group_id
    )
    same_notice = true() if alert_id is None else Ticket.alert_id == alert_id
    own = await ctx.session.scalars(
        open_reported_by(item.member.id)
        .where(
            Ticket.created_at >= ctx.now - timedelta(seconds=settings.same_resident_window_s),
            # The same matter written in the group and then privately too ("in case"): one
            # ticket, not two for the officer to answer and the ladder to chase. Not the other
            # way: a group's acknowledgement naming a matter told privately would tell the
            # group it exists. An alarm stays with its chat: its safety reply and pages belong
            # where it was raised.
            same_chat if emergency or item.group_id is not None else true(),
            same_notice,
        )
        .order_by(Ticket.created_at.desc())
    )
    follow_up = timedelta(seconds=settings.merge_window_s)
    for ticket in own.all():
        if ticket.emergency != emergency:
            continue
        recent = ctx.now - ticket.updated_at <= follow_up
        first = ctx.runtime.cipher.decrypt(ticket.text_enc) or ""
        if emergency and recent and _same_danger(first, item.text):
            return ticket  # "快来啊" after "着火了": the same person's same danger
        if emergency:
            continue  # a fire after their stuck lift: its own P1, its own pages
        # The same matter: the same resident writing about the same thing again, unless they
        # say it happened again (又被偷了一辆) after the first report has gone quiet.
        if (
            not recent
            and result.label in ("report", "help")
            and _AGAIN.search(normalise(item.text))
        ):
            continue
        if similarity(first, item.text) >= _FOLLOW_UP_SIMILAR and (
            recent or ticket.category == result.label
        ):
            return ticket
    if item.group_id is None:
        return None
    others = await ctx.session.scalars(
        select(Ticket)
        .where(
            Ticket.group_id == item.group_id,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.created_at >= ctx.now - follow_up,
            same_notice,
        )
        .order_by(Ticket.created_at.desc())
    )
    for ticket in others.all():
        if ticket.emergency != emergency:
            continue
        first = ctx.runtime.cipher.decrypt(ticket.text_enc) or ""
        # Two residents, one incident: same kind and the same things named. A knife attack
        # reported during a fire, a second resident's "救命", somebody's own crisis (我被绑架了,
        # 不想活了) are emergencies of their own, with their own pages to the leader.
        if emergency:
            theirs, mine = normalise(first), normalise(item.text)
            same_kind = reply_key_of(theirs) == reply_key_of(mine) and not (
                _OWN_CRISIS.search(theirs) or _OWN_CRISIS.search(mine)
            )
        else:
            same_kind = ticket.category == result.label
        # An emergency's reports share fewer words (each says what they see), but a place alone
        # is not one incident: a bag snatched and a fight both "at the market" were merged.
        threshold = _FOLLOW_UP_SIMILAR if emergency else _SIMILAR
        if same_kind and similarity(first, item.text) >= threshold:
            return ticket
    return None


def _same_danger(theirs: str, mine: str) -> bool:
    """One resident's next alarm is about their open one when it names nothing at all
    (快来啊), when it names no danger and says how the alarm goes on (a fire's "老人还在二楼"),
    or is the same kind of danger (what the safety reply names) — for a fire or an injury,
    whatever it says; for the rest (violence, a scam, a missing child: all 110) when it names
    the same things or says how it goes on (打人的那个开车往镇上跑了). A scam on the phone
    after a fight at the market was folded into the fight, and its writer got no answer."""
    if names_nothing(mine):
        return True
    plain = normalise(mine)
    if goes_on(plain) and not names_a_danger(plain):
        return True
    kind = reply_key_of(plain)
    if kind != reply_key_of(normalise(theirs)):
        return False
    return (
        kind != "emergency_reply"
        or similarity(theirs, mine) >= _FOLLOW_UP_SIMILAR
        or goes_on(plain)
    )


async def flood_target(ctx: HandlerContext, item: Item) -> Ticket | None:
    """The sender's latest alarm in this chat when they have raised
    ``intake.alarms_per_sender`` open ones or more within ``intake.merge_window_s``: a further
    alarm joins it (its safety reply still goes at once; the holder reads it as a follow-up)
    instead of paging the duty officer and the leader again. Other residents' alarms are never
    held back by one sender's flood."""
    settings = ctx.runtime.settings.intake
    same_chat = (
        Ticket.group_id.is_(None) if item.group_id is None else Ticket.group_id == item.group_id
    )
    alarms = (
        await ctx.session.scalars(
            open_reported_by(item.member.id)
            .where(
                Ticket.emergency.is_(True),
                same_chat,
                Ticket.created_at >= ctx.now - timedelta(seconds=settings.merge_window_s),
            )
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(settings.alarms_per_sender)
        )
    ).all()
    return alarms[0] if len(alarms) >= settings.alarms_per_sender else None


async def attach(ctx: HandlerContext, ticket: Ticket, out: Out, item: Item) -> None:
    """Attach a reporter and their words to an open ticket; tell them and the assignee."""
    exists = await ctx.session.scalar(
        select(TicketReporter).where(
            TicketReporter.ticket_id == ticket.id, TicketReporter.member_id == item.member.id
        )
    )
    reporter = exists or item.reporter(ticket, ctx.now)
    if exists is None:
        ctx.session.add(reporter)
    repeated = exists is not None and await _said_before(ctx, ticket, item.text)
    add_event(
        ctx.session,
        ctx.runtime,
        ticket,
        "merged",
        now=ctx.now,
        actor="resident",
        detail="same resident" if exists else "another reporter",
        note=item.text,
    )
    officer = await holder_of(ctx.session, ticket)
    # Told where they wrote: their words in the private chat are not acknowledged in the group
    # they first reported in (nor the other way round); answers still go where they first asked.
    here = reporter if reporter.group_id == item.group_id else item.reporter(ticket, ctx.now)
    if not ticket.emergency:  # emergency reporters already got the safety reply
        out.to_reporter(
            here,
            out.text(
                "ticket_merged",
                item.script,
                code=ticket.code,
                category=category_text(ctx.runtime, ticket, item.script),
                officer=officer.name if officer else "",
            ),
        )
    if officer is not None and not repeated:  # the same words again tell the officer nothing
        key = "officer_merged_same" if exists else "officer_merged"
        await words_to_officer(ctx, out, officer, key, ticket, item.member, item.script, item.text)


async def _said_before(ctx: HandlerContext, ticket: Ticket, text: str) -> bool:
    """Whether ``text`` is word for word what the ticket was opened with or lately given."""
    notes = await ctx.session.scalars(
        select(TicketEvent.note_enc)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind.in_(("opened", "merged")))
        .order_by(TicketEvent.id.desc())
        .limit(_REPEAT_LOOKBACK)
    )
    said = normalise(text)
    return any(normalise(ctx.runtime.cipher.decrypt(n) or "") == said for n in notes if n)
