"""From an accepted event to committed state: handlers, tickets, outbox, in the caller's
transaction.

The webhook journals an event and answers (``bot/pipeline.py``); the processor then hands each
journaled event to :meth:`Dispatcher.process`, which runs the handlers in order (the first that
returns True wins) and marks the journal row processed in the same transaction. Handlers write
rows and outbox messages; they never commit (the pipeline does).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from sqlalchemy import Table, bindparam, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services import rate_limits
from broadcasts.outbox import (
    echo_hash,
    recipient_after_sending,
    resend_refused,
    scrub_payload,
)
from handlers.context import Handler, HandlerContext
from models.base import core
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage, chat_key
from models.people import GroupMember, Member

log = logging.getLogger("lianxin.dispatch")
# How long after sending a text an identical inbound text in the same chat counts as our echo.
ECHO_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class DispatchResult:
    journal_id: int
    duplicate: bool
    status: str
    outbox: tuple[OutboxMessage, ...] = ()
    passive: OutboxMessage | None = None  # the reply that rides back in the HTTP response


def _dialect_insert(dialect: str, model: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both supported databases do)."""
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


@dataclass(frozen=True)
class _Statements:
    """The statements every event runs, built once per dialect with bound parameters.

    Building a SQLAlchemy statement costs more CPU than SQLite takes to run it; these run on
    every inbound event, so they are built once and executed with fresh parameters.
    """

    lookup: dict[tuple[bool, bool], Any]  # (in a group, on WeCom) → statement
    processed: Any
    member: Any
    membership: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    echo = select(OutboxMessage.id).where(
        OutboxMessage.echo_hash == bindparam("echo_hash"),
        OutboxMessage.created_at >= bindparam("since"),
    )

    def lookup(chat_column: Any, officer_column: Any) -> Any:
        # One round trip for the three reads every event needs (the group, whether the sender
        # is an officer, whether the text is our own echo): each statement costs more in
        # SQLAlchemy than in the database. FROM a one-row table so that missing rows are NULLs.
        one = select(literal(1).label("one")).subquery()
        recent = echo.where(chat_column == bindparam("chat")).limit(1).scalar_subquery()
        return (
            select(Group, Officer, recent.label("echo_id"))
            .select_from(one)
            .outerjoin(Group, Group.id == bindparam("group_id"))
            .outerjoin(Officer, officer_column == bindparam("sender_id"))
        )

    # Core inserts on the tables: the ORM's DML path costs several times more per statement.
    member = _dialect_insert(dialect, Member.__table__).values(
        channel=bindparam("channel"),
        sender_id=bindparam("sender_id"),
        nickname_enc=bindparam("nickname_enc"),
        first_seen_at=bindparam("now"),
        last_seen_at=bindparam("now"),
    )
    membership = _dialect_insert(dialect, GroupMember.__table__).values(
        group_id=bindparam("group_id"), member_id=bindparam("member_id"), joined_at=bindparam("now")
    )
    return _Statements(
        # An officer is the id the directory names on the channel the event came by: a WeCom
        # user id equal to an officer's WeChat id is somebody else.
        lookup={
            (in_group, on_wecom): lookup(
                OutboxMessage.group_id if in_group else OutboxMessage.user_id,
                Officer.wecom_id if on_wecom else Officer.wechat_id,
            )
            for in_group in (True, False)
            for on_wecom in (True, False)
        },
        processed=update(cast(Table, InboundEvent.__table__))
        .where(InboundEvent.__table__.c.id == bindparam("journal_id"))
        .values(status=bindparam("status"), processed_at=bindparam("now")),
        member=select(Member).from_statement(
            member.on_conflict_do_update(
                index_elements=["channel", "sender_id"],
                set_={"last_seen_at": member.excluded.last_seen_at},
            ).returning(*Member.__table__.c)
        ),
        membership=membership.on_conflict_do_update(
            index_elements=["group_id", "member_id"],
            set_={"left_at": None},
            where=GroupMember.__table__.c.left_at.is_not(None),
        ),
    )


def _stmts(session: AsyncSession) -> _Statements:
    return _statements(session.get_bind().dialect.name)


async def _member(
    session: AsyncSession, rt: Runtime, event: InboundMessage, now: datetime
) -> Member:
    """The sender's member row, created or touched in one statement."""
    params = {
        "channel": event.channel,
        "sender_id": event.sender_id,
        "nickname_enc": rt.cipher.encrypt(event.nickname),
        "now": now,
    }
    member: Member = (
        await session.scalars(
            _stmts(session).member, params, execution_options={"populate_existing": True}
        )
    ).one()
    if event.nickname and _opened(rt, member.nickname_enc) != event.nickname:
        member.nickname_enc = rt.cipher.encrypt(event.nickname)
    return member


def _opened(rt: Runtime, blob: bytes | None) -> str | None:
    """A stored nickname, or None when no configured key opens it (serve refuses to start so,
    but nothing on the way to the emergency layer may fail on it)."""
    try:
        return rt.cipher.decrypt(blob)
    except (ValueError, InvalidTag):
        return None


async def _note_membership(
    session: AsyncSession, group_id: str, member_id: int, now: datetime
) -> None:
    """A member who speaks in a group is in it (bridges may miss join events)."""
    await (await core(session)).execute(
        _stmts(session).membership, {"group_id": group_id, "member_id": member_id, "now": now}
    )


@dataclass(frozen=True)
class _Known:
    group: Group | None
    officer: Officer | None
    own_message: bool


async def _look_up(
    session: AsyncSession, rt: Runtime, event: InboundMessage, now: datetime
) -> _Known:
    """The event's group, the sender's officer row, and whether the event is our own message:
    the bot's account (``bridge.self_ids``) or a text we sent to this chat just now."""
    stmts = _stmts(session)
    echo_hash_ = (
        echo_hash(rt.cipher, event.text)
        if event.kind == "message" and event.text.strip()
        else None  # compares with nothing: NULL = NULL is not true
    )
    group, officer, echo_id = (
        await session.execute(
            stmts.lookup[(bool(event.group_id), event.channel == "wecom")],
            {
                "group_id": event.group_id,
                "sender_id": event.sender_id,
                "echo_hash": echo_hash_,
                "since": now - ECHO_WINDOW,
                "chat": event.group_id or event.sender_id,
            },
        )
    ).one()
    own = event.sender_id in rt.settings.bridge.self_ids or echo_id is not None
    return _Known(group, officer, own)


class Dispatcher:
    """Runs an accepted (journaled) event through the handler chain."""

    def __init__(
        self,
        runtime: Runtime,
        handlers: Sequence[Handler],
        *,
        when_limited: Mapping[str, Sequence[Handler]] | None = None,
    ) -> None:
        """``when_limited``: the handlers that still run for an event over a rate limit, by
        the limit (``sender``, ``group``); the emergency layer belongs in both."""
        self._runtime = runtime
        self._handlers = list(handlers)
        self._when_limited = {k: list(v) for k, v in (when_limited or {}).items()}

    async def process(
        self,
        session: AsyncSession,
        event: InboundMessage,
        journal_id: int,
        *,
        now: datetime,
        claim_passive: Callable[[], bool] | None = None,
        classification: Any = None,
    ) -> DispatchResult:
        """Handle the journaled event ``journal_id`` in ``session``; the caller commits.

        Marks the journal row processed with its final status in the same transaction, so an
        event is handled exactly once however often a processor crashes before committing.
        When ``claim_passive`` (asked once the handlers are done) says a request is still
        waiting in time, the first reply to the event's chat on its channel is marked as
        answered in that HTTP response (WeChat's and WeCom's passive reply). ``classification``:
        the classifier's verdict when the emergency check at acceptance already made it.
        """
        rt = self._runtime
        known = await _look_up(session, rt, event, now)
        group = known.group
        status = "unknown_group" if event.group_id and group is None else "handled"
        if known.own_message:
            # Our own words coming back through the bridge: recorded, never answered.
            await _mark_processed(session, journal_id, "own_message", now)
            return DispatchResult(journal_id, False, "own_message")
        member = await _member(session, rt, event, now)
        officer = known.officer
        if group is not None and event.kind == "message":
            await _note_membership(session, group.id, member.id, now)
        ctx = HandlerContext(
            session=session,
            runtime=rt,
            event=event,
            journal_id=journal_id,
            group=group,
            member=member,
            officer=officer,
            now=now,
            _classification=classification,
        )
        limit = None
        if officer is None and event.kind == "message":
            limit = await rate_limits.check(
                session, cipher=rt.cipher, limits=rt.settings.limits, event=event, now=now
            )
        chain = self._when_limited.get(limit.over, []) if limit and limit.over else self._handlers
        taken = False
        for handler in chain:
            if await handler(ctx):
                taken = True
                break
        if limit and limit.over and not taken:
            # Journaled and counted, nothing opened: a flood costs rows, not officers' time.
            status = "rate_limited"
            if limit.notify:
                ctx.reply(ctx.text(f"rate_limited_{limit.over}"))
        if event.channel == "wechat" and event.kind == "message":
            # They wrote: WeChat lets us reach them again. After the handlers' own replies,
            # so that the passive reply answers what they just said when there is one.
            ctx.outbox += await resend_refused(
                session, user_id=event.sender_id, now=now, source_event_id=journal_id
            )
        await _mark_processed(session, journal_id, status, now)
        passive = _claim_passive(ctx) if claim_passive is not None and claim_passive() else None
        if status == "unknown_group":
            log.warning(
                "event %s/%s from unknown group %s", event.channel, journal_id, event.group_id
            )
        log.info(
            "event %s/%s kind=%s group=%s status=%s replies=%d",
            event.channel,
            journal_id,
            event.kind,
            event.group_id or "-",
            status,
            len(ctx.outbox),
        )
        return DispatchResult(journal_id, False, status, tuple(ctx.outbox), passive)


async def _mark_processed(
    session: AsyncSession, journal_id: int, status: str, now: datetime
) -> None:
    # On the connection: the handlers' pending rows are flushed with the next event's first
    # read or at the commit, and a passive reply claimed below is inserted once, as sent.
    await (await core(session)).execute(
        _stmts(session).processed, {"journal_id": journal_id, "status": status, "now": now}
    )


def _claim_passive(ctx: HandlerContext) -> OutboxMessage | None:
    """The first reply to the chat the event came from, marked as answered in the response.

    Claimed in the handlers' transaction, before the worker is woken: the worker takes
    priority-0 rows (safety replies) first and must never find this one pending. A group event
    is answered in the group; a private reply to its sender (a reminder) is never shown there."""
    ev = ctx.event
    for row in ctx.outbox:
        if ev.group_id is not None:
            same_chat = row.group_id == ev.group_id and row.user_id is None
        else:
            same_chat = row.group_id is None and row.user_id == ev.sender_id
        if row.channel == ev.channel and same_chat and row.status == "pending":
            row.status, row.sent_via, row.sent_at, row.attempts = "sent", "passive", ctx.now, 1
            row.fallback_at = None  # answered in the response: no SMS page needed
            if ctx.pseudonyms:
                _scrub_sent(ctx, row)
            return row
    return None


def _scrub_sent(ctx: HandlerContext, row: OutboxMessage) -> None:
    """What the worker does to a row it has sent, for the passive reply: the payload loses what
    was only needed to send it, and the recipient becomes their pseudonym if they cut the link."""
    cipher = ctx.runtime.cipher
    payload = cipher.decrypt_json(row.payload_enc)
    row.payload_enc = cipher.encrypt_json(scrub_payload(payload))
    row.user_id = recipient_after_sending(payload, row.user_id)
    row.chat_key = chat_key(row.channel, row.group_id, row.user_id)
