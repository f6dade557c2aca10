"""From a normalised event to committed state: journal, handlers, outbox — one transaction.

The journal insert is the de-duplication point: ``(channel, dedup_key)`` is unique, so a retried
event finds its row and changes nothing. Handlers run in order; the first that returns True wins.
They write rows and outbox messages; only this module commits.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import InboundMessage, OutboundMessage
from bot.runtime import Runtime
from broadcasts.outbox import enqueue
from handlers.texts import Script, detect_script
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import GroupMember, Member

log = logging.getLogger("lianxin.dispatch")


@dataclass
class HandlerContext:
    """What a handler gets: the open session, the event, the time, and ways to answer."""

    session: AsyncSession
    runtime: Runtime
    event: InboundMessage
    journal: InboundEvent
    group: Group | None
    member: Member
    officer: Officer | None
    now: datetime
    outbox: list[OutboxMessage] = field(default_factory=list)
    _classification: Any = None

    def classify(self) -> Any:
        """The classifier's verdict on this message's text, computed once per event."""
        if self._classification is None:
            self._classification = self.runtime.classifier.classify(self.event.text)
        return self._classification

    @property
    def script(self) -> Script:
        """The script the sender wrote in; answers follow it."""
        return detect_script(self.event.text)

    def text(self, key: str, /, **values: Any) -> str:
        """A sentence from texts.yaml in the sender's script."""
        return self.runtime.texts.render(key, self.script, **values)

    def send(
        self, message: OutboundMessage, *, not_before: datetime | None = None
    ) -> OutboxMessage:
        """Queue a message in this transaction."""
        ev = self.event
        if (
            not_before is None
            and ev.channel == "wechat"
            and message.channel == "wechat"
            and message.user_id == ev.sender_id
        ):
            # Give the request its chance at a passive reply before the worker may take the row.
            budget = self.runtime.settings.wechat.passive_reply_budget_s
            not_before = self.now + timedelta(seconds=budget + 1)
        row = enqueue(
            self.session,
            message,
            cipher=self.runtime.cipher,
            now=self.now,
            source_event_id=self.journal.id,
            not_before=not_before,
        )
        self.outbox.append(row)
        return row

    def reply(self, text: str, *, mention: bool = True, priority: int = 5) -> OutboxMessage:
        """Answer where the event came from: in its group (@-mentioning the sender) or privately."""
        ev = self.event
        message = OutboundMessage(
            channel=ev.channel,
            text=text,
            group_id=ev.group_id,
            user_id=None if ev.group_id else ev.sender_id,
            mentions=(ev.sender_id,) if ev.group_id and mention else (),
            priority=priority,
        )
        return self.send(message)


Handler = Callable[[HandlerContext], Awaitable[bool]]


@dataclass(frozen=True)
class DispatchResult:
    journal_id: int
    duplicate: bool
    status: str
    outbox: tuple[OutboxMessage, ...] = ()


async def _insert_journal(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id; None when the key was already there."""
    dialect = session.bind.dialect.name
    table = InboundEvent.__table__
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")
    result = await session.execute(stmt.returning(table.c.id))
    return result.scalar_one_or_none()


async def _member(
    session: AsyncSession, rt: Runtime, event: InboundMessage, now: datetime
) -> Member:
    member = await session.scalar(
        select(Member).where(Member.channel == event.channel, Member.sender_id == event.sender_id)
    )
    if member is None:
        member = Member(
            channel=event.channel,
            sender_id=event.sender_id,
            nickname_enc=rt.cipher.encrypt(event.nickname),
            first_seen_at=now,
            last_seen_at=now,
        )
        session.add(member)
        await session.flush()
    else:
        member.last_seen_at = now
        if event.nickname and rt.cipher.decrypt(member.nickname_enc) != event.nickname:
            member.nickname_enc = rt.cipher.encrypt(event.nickname)
    return member


async def _note_membership(
    session: AsyncSession, group_id: str, member_id: int, now: datetime
) -> None:
    """A member who speaks in a group is in it (bridges may miss join events)."""
    row = await session.scalar(
        select(GroupMember).where(
            GroupMember.group_id == group_id, GroupMember.member_id == member_id
        )
    )
    if row is None:
        session.add(GroupMember(group_id=group_id, member_id=member_id, joined_at=now))
    elif row.left_at is not None:
        row.left_at = None


class Dispatcher:
    """Runs an inbound event through the journal and the handler chain."""

    def __init__(self, runtime: Runtime, handlers: Sequence[Handler]) -> None:
        self._runtime = runtime
        self._handlers = list(handlers)

    async def dispatch(self, event: InboundMessage) -> DispatchResult:
        """Journal the event and handle it exactly once; commit before returning."""
        rt = self._runtime
        now = rt.clock.now()
        async with rt.sessions.begin() as session:
            journal_id = await _insert_journal(
                session,
                {
                    "channel": event.channel,
                    "dedup_key": event.dedup_key,
                    "kind": event.kind,
                    "group_id": event.group_id,
                    "sender_id": event.sender_id,
                    "payload_enc": rt.cipher.encrypt_json(event.journal_payload()),
                    "received_at": now,
                    "status": "received",
                },
            )
            if journal_id is None:
                existing = await session.scalar(
                    select(InboundEvent).where(
                        InboundEvent.channel == event.channel,
                        InboundEvent.dedup_key == event.dedup_key,
                    )
                )
                assert existing is not None
                earlier = (
                    await session.scalars(
                        select(OutboxMessage)
                        .where(OutboxMessage.source_event_id == existing.id)
                        .order_by(OutboxMessage.id)
                    )
                ).all()
                return DispatchResult(existing.id, True, existing.status, tuple(earlier))
            journal = await session.get(InboundEvent, journal_id)
            assert journal is not None
            group = await session.get(Group, event.group_id) if event.group_id else None
            member = await _member(session, rt, event, now)
            officer = await session.scalar(
                select(Officer).where(Officer.wechat_id == event.sender_id)
            )
            if group is not None and event.kind == "message":
                await _note_membership(session, group.id, member.id, now)
            ctx = HandlerContext(
                session=session,
                runtime=rt,
                event=event,
                journal=journal,
                group=group,
                member=member,
                officer=officer,
                now=now,
            )
            status = "unknown_group" if event.group_id and group is None else "handled"
            for handler in self._handlers:
                if await handler(ctx):
                    break
            journal.status = status
        if ctx.outbox:
            rt.outbox_wakeup.set()
        log.info(
            "event %s/%s kind=%s group=%s status=%s replies=%d",
            event.channel,
            journal_id,
            event.kind,
            event.group_id or "-",
            status,
            len(ctx.outbox),
        )
        return DispatchResult(journal_id, False, status, tuple(ctx.outbox))
