"""Ticket operations shared by intake, officer commands, resident commands and the deadline sweep.

Functions take the open session and what they need, keyword-only; they write rows and outbox
messages and never commit.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage, OutboundMessage
from bot.pii import is_pseudonym, mask_name
from bot.runtime import Runtime
from bot.texts import Script
from broadcasts.outbox import OnFailure, enqueue, on_failure_extra, urgent_fallback
from models.directory import Group, Officer
from models.people import Binding, Member
from models.tickets import OPEN_STATUSES, Ticket, TicketEvent, TicketReporter


class EventContext(Protocol):
    """What :class:`Out` needs of an event being handled (handlers' ``HandlerContext`` is one):
    messages sent through it ride in the event's transaction (and its passive reply)."""

    session: AsyncSession
    runtime: Runtime
    now: datetime
    event: InboundMessage

    def send(self, message: OutboundMessage, *, urgent_for: int | None = None) -> object: ...


# Letters that cannot be misread as digits (no I, O) and digits: #A1023.
_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"

PRIORITY_BY_LABEL = {"report": 2, "help": 2, "consultation": 3, "suggestion": 3, "dispute": 3}


def priority_for(label: str, emergency: bool) -> int:
    """P1 emergencies, P2 reports and help, P3 the rest."""
    return 1 if emergency else PRIORITY_BY_LABEL.get(label, 3)


async def new_code(session: AsyncSession) -> str:
    """A short unique ticket code such as ``A1023``."""
    for _ in range(50):
        code = secrets.choice(_CODE_LETTERS) + f"{secrets.randbelow(10000):04d}"
        if await session.scalar(select(Ticket.id).where(Ticket.code == code)) is None:
            return code
    # 240,000 codes; if they are that crowded, grow the number part.
    return secrets.choice(_CODE_LETTERS) + f"{secrets.randbelow(10**6):06d}"


async def holder_of(session: AsyncSession, ticket: Ticket) -> Officer | None:
    """The officer ``ticket`` is assigned to, or None."""
    if ticket.assigned_officer_id is None:
        return None
    return await session.get(Officer, ticket.assigned_officer_id)


# An Official Account's OpenID: 28 characters of [A-Za-z0-9_-] beginning with "o". A WeChat
# account id (wxid_…, or one its owner chose, 6–20 characters) is never that long.
_OPENID = re.compile(r"o[A-Za-z0-9_-]{27}")


def looks_like_openid(account: str | None) -> bool:
    """Whether a directory ``wechat_id`` is an Official Account follower's OpenID."""
    return account is not None and _OPENID.fullmatch(account) is not None


@dataclass
class Out:
    """Queues messages for one unit of work (an event, a sweep step) with shared context."""

    session: AsyncSession
    runtime: Runtime
    now: datetime
    # Inside an event, messages go through the handler context (passive WeChat replies).
    ctx: EventContext | None = None

    def text(self, key: str, script: Script, /, **values: Any) -> str:
        return self.runtime.texts.render(key, script, **values)

    @classmethod
    def of(cls, ctx: EventContext) -> Out:
        """The outbox of an event being handled."""
        return cls(ctx.session, ctx.runtime, ctx.now, ctx)

    def queue(self, message: OutboundMessage, *, urgent_for: int | None = None) -> None:
        """Queue ``message``; ``urgent_for``: see :meth:`HandlerContext.send`."""
        if self.ctx is not None:
            self.ctx.send(message, urgent_for=urgent_for)
        else:
            enqueue(
                self.session,
                message,
                cipher=self.runtime.cipher,
                now=self.now,
                **urgent_fallback(self.runtime.settings.sms, urgent_for),
            )
        # Priority ≤ 1 (a P1 page) is the urgent lane's to send.
        self.runtime.wake_outbox(urgent=message.priority <= 1)

    def officer_channel(self, officer: Officer) -> str:
        """The channel that reaches ``officer`` privately: the Official Account when their
        ``wechat_id`` is one of its OpenIDs (they follow it and write to it), else the bridge
        (their WeChat account id), when there is one."""
        senders = self.runtime.senders
        if "wechat" in senders and looks_like_openid(officer.wechat_id):
            return "wechat"
        return "bridge" if "bridge" in senders or "wechat" not in senders else "wechat"

    def _writing_privately(self, officer: Officer) -> InboundMessage | None:
        """The event being handled, when it is ``officer`` writing privately: the answer goes
        back the way it came. An officer working in a WeCom single chat got his 待辦 and 接單
        answers on the bridge (to his WeChat id), or, with no WeChat id, nowhere at all."""
        ev = self.ctx.event if self.ctx is not None else None
        if ev is None or ev.group_id is not None:
            return None
        own = officer.wecom_id if ev.channel == "wecom" else officer.wechat_id
        return ev if own is not None and own == ev.sender_id else None

    def to_officer(
        self,
        officer: Officer,
        text: str,
        *,
        priority: int = 5,
        kept_text: str | None = None,
        urgent_for: int | None = None,
    ) -> None:
        """A private message to an officer (back on the channel they are writing from, when
        the event is theirs); ``kept_text`` replaces ``text`` in the outbox once it is sent
        (for personal data the bot must not keep); ``urgent_for``: a P1 page."""
        writing = self._writing_privately(officer)
        if writing is not None:
            channel, account = writing.channel, writing.sender_id
        elif officer.wechat_id:
            channel, account = self.officer_channel(officer), officer.wechat_id
        else:
            return
        self.queue(
            OutboundMessage(
                channel=channel,
                text=text,
                user_id=account,
                priority=priority,
                extra={} if kept_text is None else {"kept_text": kept_text},
            ),
            urgent_for=urgent_for,
        )

    def notice_to_officer(self, officer: Officer, text: str) -> OutboundMessage | None:
        """A private message to an officer, not queued: for ``on_failure``."""
        if not officer.wechat_id:
            return None
        return OutboundMessage(
            channel=self.officer_channel(officer), text=text, user_id=officer.wechat_id
        )

    def to_reporter(
        self,
        reporter: TicketReporter,
        text: str,
        *,
        priority: int = 5,
        on_failure: OnFailure | None = None,
    ) -> None:
        """Answer a reporter where they asked: in their group with an @-mention, or privately.

        ``on_failure``: what follows when the answer cannot be delivered (see the outbox)."""
        sender = reachable_id(reporter)
        if sender is None:
            return  # the resident cut the link (註銷實名); nothing to reach
        self.queue(
            OutboundMessage(
                channel=reporter.channel,
                text=text,
                group_id=reporter.group_id,
                user_id=None if reporter.group_id else sender,
                mentions=(sender,) if reporter.group_id else (),
                priority=priority,
                extra=on_failure_extra(on_failure),
            )
        )

    def to_reporters(
        self,
        people: list[TicketReporter],
        text: str,
        *,
        priority: int = 5,
        on_failure: OnFailure | None = None,
    ) -> None:
        """Tell several reporters: one post per group @-mentioning all of them there (bridged
        accounts get banned for bursts), one private message each for the others."""
        by_group: dict[tuple[str, str], list[str]] = {}
        for reporter in people:
            sender = reachable_id(reporter)
            if sender is None:
                continue
            if reporter.group_id:
                key = (reporter.channel, reporter.group_id)
                mentions = by_group.setdefault(key, [])
                if sender not in mentions:
                    mentions.append(sender)
            else:
                self.to_reporter(reporter, text, priority=priority, on_failure=on_failure)
        for (channel, group_id), mentions in by_group.items():
            self.queue(
                OutboundMessage(
                    channel=channel,
                    text=text,
                    group_id=group_id,
                    mentions=tuple(mentions),
                    priority=priority,
                    extra=on_failure_extra(on_failure),
                )
            )


def is_reachable(reporter: TicketReporter) -> bool:
    """Whether answers can reach a reporter: not after they cut the link (``註銷實名`` leaves a
    pseudonym, see bot.services.forget; older rows of deleted data have no sender id at all)."""
    return reachable_id(reporter) is not None


def reachable_id(reporter: TicketReporter) -> str | None:
    """The sender id answers reach a reporter at; None when they cannot be reached."""
    sender = reporter.sender_id
    return None if sender is None or is_pseudonym(sender) else sender


def reachable(people: list[TicketReporter]) -> list[TicketReporter]:
    """The reporters answers can still reach."""
    return [p for p in people if is_reachable(p)]


def clip(text: str, limit: int = 500) -> str:
    """Residents' words as quoted to officers: whole up to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def add_event(
    session: AsyncSession,
    runtime: Runtime,
    ticket: Ticket,
    kind: str,
    *,
    now: datetime,
    actor: str = "system",
    detail: str | None = None,
    note: str | None = None,
) -> None:
    """Append to the ticket's timeline (``note`` is encrypted: it may quote residents)."""
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            kind=kind,
            actor=actor,
            detail=detail,
            note_enc=runtime.cipher.encrypt(note) if note is not None else None,
        )
    )
    ticket.updated_at = now


async def reporters(session: AsyncSession, ticket: Ticket) -> list[TicketReporter]:
    """Everyone attached to a ticket, first reporter first."""
    return list(
        (
            await session.scalars(
                select(TicketReporter)
                .where(TicketReporter.ticket_id == ticket.id)
                .order_by(TicketReporter.id)
            )
        ).all()
    )


async def resident_label(
    session: AsyncSession, runtime: Runtime, member: Member | None, script: Script
) -> str:
    """A masked name for officers: the verified name, else the nickname, masked either way."""
    if member is None:
        return runtime.texts.render("unknown_resident", script)
    binding = await session.scalar(select(Binding).where(Binding.member_id == member.id))
    if binding is not None:
        return mask_name(runtime.cipher.decrypt(binding.name_enc) or "")
    nickname = runtime.cipher.decrypt(member.nickname_enc) if member.nickname_enc else None
    if nickname:
        return mask_name(nickname) + "(" + runtime.texts.render("unknown_resident", script) + ")"
    return runtime.texts.render("unknown_resident", script)


async def group_label(session: AsyncSession, runtime: Runtime, ticket: Ticket) -> str:
    """The group's name, or "private chat"."""
    if ticket.group_id is None:
        return runtime.texts.render("private_chat", ticket.script)
    group = await session.get(Group, ticket.group_id)
    return group.name if group else ticket.group_id


def category_text(runtime: Runtime, ticket: Ticket, script: Script | None = None) -> str:
    """The ticket's category in words, in ``script`` (default: the resident's)."""
    return runtime.texts.render(f"cat_{ticket.category}", script or ticket.script)


def first_deadline(runtime: Runtime, priority: int, now: datetime) -> tuple[datetime, datetime]:
    """(acknowledge by, answer by) for a new matter."""
    d = runtime.settings.deadlines
    return now + timedelta(seconds=d.ack_seconds(priority)), now + timedelta(seconds=d.answer_s)


async def find_ticket(session: AsyncSession, code: str) -> Ticket | None:
    """A ticket by its code (case-insensitive)."""
    return await session.scalar(select(Ticket).where(Ticket.code == code.upper()))


def open_reported_by(member_id: int) -> Select[Ticket]:
    """The open tickets a resident is a reporter of, as a query to narrow and order."""
    return (
        select(Ticket)
        .join(TicketReporter, TicketReporter.ticket_id == Ticket.id)
        .where(TicketReporter.member_id == member_id, Ticket.status.in_(OPEN_STATUSES))
    )


async def open_tickets_of(session: AsyncSession, officer_id: str) -> list[Ticket]:
    """An officer's open tickets, oldest first."""
    return list(
        (
            await session.scalars(
                select(Ticket)
                .where(Ticket.assigned_officer_id == officer_id, Ticket.status.in_(OPEN_STATUSES))
                .order_by(Ticket.created_at)
            )
        ).all()
    )


def age_text(runtime: Runtime, script: Script, delta: timedelta) -> str:
    """``35分鐘``, ``3小時``, ``2天``."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return runtime.texts.render("age_minutes", script, n=minutes)
    if minutes < 48 * 60:
        return runtime.texts.render("age_hours", script, n=minutes // 60)
    return runtime.texts.render("age_days", script, n=minutes // 1440)
