"""What the events of one processing batch share, read and written at once before they are
handled (:class:`Batch`, :func:`prepare_batch`); :mod:`bot.dispatcher` then handles them one
by one."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from sqlalchemy import Table, and_, bindparam, func, literal, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services import rate_limits
from bot.services.directory_cache import VERSION, DirectoryCache, DirectoryView
from bot.services.forget import forgotten_key
from bot.texts import script_of
from broadcasts.outbox import (
    echo_hash,
    refused_among,
)
from handlers.resident import lately_among
from handlers.verification_support import BOUND_AMONG, know_bindings
from models.base import core
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import GroupMember, Member

# How long after sending a text an identical inbound text in the same chat counts as our echo.
ECHO_WINDOW = timedelta(minutes=15)


def _dialect_insert(dialect: str, model: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (both supported databases do)."""
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


@dataclass(frozen=True)
class _Statements:
    """The statements of a batch and of its events, built once per dialect with bound
    parameters.

    Building a SQLAlchemy statement costs more CPU than SQLite takes to run it, and SQLAlchemy
    costs more per statement than the database: these are built once, and run once per batch
    where the batch can share them (an executemany of one statement is one round trip)."""

    first: Any  # per batch: the directory's version and the texts we sent lately
    processed: Any
    member: Any  # an ORM upsert of one member, or of a batch's as an executemany
    membership: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    # The directory's version and every recent outbox row whose text hash one of the batch's
    # texts has, in one round trip: FROM a one-row table, so that no echo is one NULL row.
    one = select(literal(1).label("one")).subquery()
    first = (
        select(
            VERSION.label("version"),
            OutboxMessage.echo_hash,
            OutboxMessage.group_id,
            OutboxMessage.user_id,
        )
        .select_from(one)
        .outerjoin(
            OutboxMessage,
            and_(
                OutboxMessage.echo_hash.in_(bindparam("hashes", expanding=True)),
                OutboxMessage.created_at >= bindparam("since"),
            ),
        )
    )
    # Core inserts on the tables: the ORM's DML path costs several times more per statement.
    # Separate parameters for the two times: PostgreSQL's executemany form numbers them.
    member = _dialect_insert(dialect, Member).values(
        channel=bindparam("channel"),
        sender_id=bindparam("sender_id"),
        nickname_enc=bindparam("nickname_enc"),
        first_seen_at=bindparam("first_seen_at"),
        last_seen_at=bindparam("last_seen_at"),
        script=bindparam("script"),
    )
    membership = _dialect_insert(dialect, GroupMember.__table__).values(
        group_id=bindparam("group_id"), member_id=bindparam("member_id"), joined_at=bindparam("now")
    )
    return _Statements(
        first=first,
        processed=update(cast(Table, InboundEvent.__table__))
        .where(InboundEvent.__table__.c.id == bindparam("journal_id"))
        .values(status=bindparam("status"), processed_at=bindparam("now")),
        member=member.on_conflict_do_update(
            index_elements=["channel", "sender_id"],
            set_={
                "last_seen_at": member.excluded.last_seen_at,
                "script": func.coalesce(member.excluded.script, Member.__table__.c.script),
            },
        ).returning(Member),
        membership=membership.on_conflict_do_update(
            index_elements=["group_id", "member_id"],
            set_={"left_at": None},
            where=GroupMember.__table__.c.left_at.is_not(None),
        ),
    )


def _stmts(session: AsyncSession) -> _Statements:
    return _statements(session.get_bind().dialect.name)


def _opened(rt: Runtime, blob: bytes | None) -> str | None:
    """A stored nickname, or None when no configured key opens it (serve refuses to start so,
    but nothing on the way to the emergency layer may fail on it)."""
    try:
        return rt.cipher.decrypt(blob)
    except (ValueError, InvalidTag):
        return None


def _member_params(rt: Runtime, event: InboundMessage, now: datetime) -> dict[str, Any]:
    return {
        "channel": event.channel,
        "sender_id": event.sender_id,
        "nickname_enc": rt.cipher.encrypt(event.nickname),
        "first_seen_at": now,
        "last_seen_at": now,
        # Of their first message in the batch; a text that reads alike keeps the one before.
        "script": script_of(event.text) if event.kind == "message" else None,
    }


async def _upsert_members(
    session: AsyncSession, params: list[dict[str, Any]]
) -> dict[tuple[str, str], Member]:
    """Create or touch members (one statement however many), by (channel, sender id)."""
    members = await session.scalars(
        _stmts(session).member, params, execution_options={"populate_existing": True}
    )
    return {(m.channel, m.sender_id): m for m in members.all()}


_ECHO = select(OutboxMessage.id).where(
    OutboxMessage.echo_hash == bindparam("echo_hash"),
    OutboxMessage.created_at >= bindparam("since"),
)
_ECHO_TO_GROUP = _ECHO.where(OutboxMessage.group_id == bindparam("chat")).limit(1)
_ECHO_TO_USER = _ECHO.where(OutboxMessage.user_id == bindparam("chat")).limit(1)


async def forgotten_retries(
    session: AsyncSession,
    rt: Runtime,
    events: Sequence[tuple[int, InboundMessage]],
    batch: Batch,
    now: datetime,
) -> set[int]:
    """Of ``events`` of senders new in this batch (their member row made at ``now``), those
    journaled before under a sender who has since been forgotten
    (:func:`bot.services.forget.forgotten_key`): one statement, none when nobody is new. A
    forgotten sender's next words come from an id with no member row."""
    keys: dict[tuple[str, str], int] = {}
    for journal_id, ev in events:
        member = batch.members.get((ev.channel, ev.sender_id))
        if member is not None and member.first_seen_at == now:
            keys[(ev.channel, forgotten_key(rt.cipher, ev.channel, ev.dedup_key))] = journal_id
    if not keys:
        return set()
    rows = await session.execute(
        select(InboundEvent.id, InboundEvent.channel, InboundEvent.dedup_key).where(
            InboundEvent.channel.in_(sorted({c for c, _ in keys})),
            InboundEvent.dedup_key.in_(sorted({k for _, k in keys})),
        )
    )
    return {
        keys[(channel, key)]
        for row_id, channel, key in rows.all()
        if (channel, key) in keys and row_id != keys[(channel, key)]
    }


def _chat(event: InboundMessage) -> tuple[str, str]:
    """Where an echo of ours would be addressed: the group, or the sender in private."""
    return ("g", event.group_id) if event.group_id else ("u", event.sender_id)


@dataclass
class Batch:
    """What the events of one processing batch share, read and written before they are
    handled: the directory (from the process's cache), the texts we sent lately (our echoes),
    the senders' member rows, their memberships, and their rate counters. Per event this is
    what the event alone would have read and written at its turn
    (:meth:`bot.dispatcher.Dispatcher.process` says where it falls back to doing it alone);
    :meth:`finish` marks the handled events
    processed, in one statement, before the commit.
    """

    runtime: Runtime
    session: AsyncSession
    now: datetime
    directory: DirectoryView
    echo_hashes: dict[int, str | None]  # journal id → the hash of its text
    echoes: set[tuple[str, str, str]]  # (hash, "g" | "u", chat) of our recent messages
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    # (group, member) known to be open in this transaction
    open_memberships: set[tuple[str, int]] = field(default_factory=set)
    counts: rate_limits.BatchCount = field(default_factory=rate_limits.BatchCount)
    # member id → whether they have a binding, until an event of theirs was handled
    bindings: dict[int, bool] = field(default_factory=dict)
    added: list[OutboxMessage] = field(default_factory=list)  # queued by this batch's events
    cut: set[tuple[str, str]] = field(default_factory=set)  # senders who cut their link in it
    processed: list[dict[str, Any]] = field(default_factory=list)
    listening: bool = False  # for rows the session queues (:meth:`_queued`)
    # Senders' member id → whether they have an open ticket answered lately, as the
    # batch read it; each until an event of theirs or any officer's is handled: their own
    # messages and officers' answers change it.
    answered_lately: dict[int, bool] = field(default_factory=dict)
    # Senders' member id → whether they reported an emergency still open, raised within
    # the merge window; each until an event of theirs is handled (it may raise one).
    reported_emergency: dict[int, bool] = field(default_factory=dict)
    # WeChat senders with messages WeChat refused while their window was closed (None: not
    # read). Only the sender marks a message refused, in a transaction of its own.
    refused: set[str] | None = None
    # New senders' events that are a channel's retry of an event journaled before under a
    # sender who has since cut the link (bot.services.forget.forgotten_key): handled once.
    forgotten_retries: set[int] = field(default_factory=set)

    def knows_answered_lately(self, member_id: int) -> bool | None:
        """Whether ``member_id`` has an open ticket answered within the follow-up window, as
        read for the batch; None when the batch does not know (any more)."""
        return self.answered_lately.get(member_id)

    def knows_reported_emergency(self, member_id: int) -> bool | None:
        """Whether ``member_id`` reported an emergency still open within the merge window, as
        read for the batch; None when the batch does not know (any more)."""
        return self.reported_emergency.get(member_id)

    def handled(self, member_id: int, *, officer: bool) -> None:
        """After an event of ``member_id`` (an officer's when ``officer``): what the batch
        read that the event may have changed is asked again for later events."""
        self.bindings.pop(member_id, None)  # their own commands may have changed it
        self.reported_emergency.pop(member_id, None)
        if officer:
            self.answered_lately.clear()
        else:
            self.answered_lately.pop(member_id, None)

    def own_message(self, event: InboundMessage, journal_id: int) -> bool:
        """Our own words coming back: the bot's account, or a text we sent to this chat within
        :data:`ECHO_WINDOW` (before the batch, or queued by one of its earlier events)."""
        if event.sender_id in self.runtime.settings.bridge.self_ids:
            return True
        hash_ = self.echo_hashes.get(journal_id)
        if hash_ is None:
            return False
        if (hash_, *_chat(event)) in self.echoes:
            return True
        since = self.now - ECHO_WINDOW
        for row in self.added:
            if row.echo_hash == hash_ and row.created_at >= since:
                kind, chat = _chat(event)
                if (row.group_id if kind == "g" else row.user_id) == chat:
                    return True
        return False

    async def own(self, event: InboundMessage, journal_id: int) -> bool:
        """:meth:`own_message` at the event's turn. A sender who cut their link earlier in the
        batch had the rows addressed to them rewritten since the batch read them: for them the
        outbox is asked again."""
        key = (event.channel, event.sender_id)
        member = self.members.get(key)
        cut = key in self.cut or (member is not None and member.sender_id != event.sender_id)
        hash_ = self.echo_hashes.get(journal_id)
        if not cut or hash_ is None:
            return self.own_message(event, journal_id)
        if event.sender_id in self.runtime.settings.bridge.self_ids:
            return True
        conn = await core(self.session, flush=(OutboxMessage,))
        kind, chat = _chat(event)
        found = await conn.execute(
            _ECHO_TO_GROUP if kind == "g" else _ECHO_TO_USER,
            {"echo_hash": hash_, "since": self.now - ECHO_WINDOW, "chat": chat},
        )
        return found.first() is not None

    def _queued(self, session: Session, instance: object) -> None:
        if isinstance(instance, OutboxMessage) and instance.echo_hash is not None:
            self.added.append(instance)

    async def member(self, event: InboundMessage) -> Member:
        """The sender's member row, created or touched (by the batch's statement when it
        still names this sender: a ``註銷實名`` earlier in the batch makes them a new one)."""
        rt = self.runtime
        member = self.members.get((event.channel, event.sender_id))
        if member is None or (member.channel, member.sender_id) != (
            event.channel,
            event.sender_id,
        ):
            if member is not None:
                self.cut.add((event.channel, event.sender_id))  # see :meth:`own`
            params = _member_params(rt, event, self.now)
            member = (await _upsert_members(self.session, [params]))[
                (event.channel, event.sender_id)
            ]
            self.members[(event.channel, event.sender_id)] = member
        if event.nickname and _opened(rt, member.nickname_enc) != event.nickname:
            member.nickname_enc = rt.cipher.encrypt(event.nickname)
        return member

    async def note_membership(self, group_id: str, member_id: int) -> None:
        """A member who speaks in a group is in it (bridges may miss join events)."""
        if (group_id, member_id) in self.open_memberships:
            return
        # A join handled earlier in the batch may still be an unflushed ORM row.
        await (await core(self.session, flush=(GroupMember,))).execute(
            _stmts(self.session).membership,
            {"group_id": group_id, "member_id": member_id, "now": self.now},
        )
        self.open_memberships.add((group_id, member_id))

    def mark_processed(self, journal_id: int, status: str) -> None:
        """Record the event's final status; written by :meth:`finish`."""
        self.processed.append({"journal_id": journal_id, "status": status, "now": self.now})

    async def finish(self) -> None:
        """Mark the handled events processed and take back what was counted for the others;
        in the batch's transaction, before its commit."""
        if self.listening:
            sa_event.remove(self.session.sync_session, "transient_to_pending", self._queued)
            self.listening = False
        if self.processed:
            # On the connection: the handlers' pending rows are flushed at the commit, and a
            # passive reply claimed in its event is inserted once, as sent.
            await (await core(self.session)).execute(_stmts(self.session).processed, self.processed)
            self.processed = []
        await self.counts.settle(self.session)


async def prepare_batch(
    rt: Runtime,
    cache: DirectoryCache,
    session: AsyncSession,
    events: Sequence[tuple[int, InboundMessage]],
    *,
    now: datetime,
) -> Batch:
    """Read and write, for the journaled ``events`` (journal id, event; in journal order)
    at once, what each would read and write first on its own: see :class:`Batch`.

    Writes only for each sender's first event in the batch (their member row, and their
    membership when it is a message in a known group) and counts every event against the
    rate limits; :meth:`Batch.finish` takes back the counts of events not handled in the
    end. The caller runs :meth:`bot.dispatcher.Dispatcher.process` for a prefix of ``events``
    and then :meth:`Batch.finish`, in the same transaction."""
    if not events:  # nothing claimed (an idle poll): nothing to read
        return Batch(rt, session, now, cache.as_loaded(session), {}, set())
    stmts = _stmts(session)
    hashes = {
        journal_id: (
            echo_hash(rt.cipher, ev.text) if ev.kind == "message" and ev.text.strip() else None
        )
        for journal_id, ev in events
    }
    rows = (
        await (await core(session)).execute(
            stmts.first,
            {"hashes": sorted({h for h in hashes.values() if h}), "since": now - ECHO_WINDOW},
        )
    ).all()
    directory = await cache.view(session, rows[0].version)
    echoes = set()
    for row in rows:
        if row.echo_hash is not None:
            if row.group_id is not None:
                echoes.add((row.echo_hash, "g", row.group_id))
            if row.user_id is not None:
                echoes.add((row.echo_hash, "u", row.user_id))
    batch = Batch(rt, session, now, directory, hashes, echoes)
    first: dict[tuple[str, str], tuple[int, InboundMessage]] = {}
    for journal_id, ev in events:
        if not batch.own_message(ev, journal_id):
            first.setdefault((ev.channel, ev.sender_id), (journal_id, ev))
    if first:
        batch.members = await _upsert_members(
            session, [_member_params(rt, ev, now) for _, ev in first.values()]
        )
        batch.forgotten_retries = await forgotten_retries(session, rt, events, batch, now)
        ids = sorted(m.id for m in batch.members.values())
        bound = set(
            (await (await core(session)).execute(BOUND_AMONG, {"member_ids": ids})).scalars()
        )
        batch.bindings = {member_id: member_id in bound for member_id in ids}
        know_bindings(session, batch.bindings)
        private = sorted(
            {
                batch.members[key].id
                for key, (_, ev) in first.items()
                if ev.kind == "message" and ev.group_id is None
            }
        )
        in_groups = sorted(
            {
                batch.members[key].id
                for key, (_, ev) in first.items()
                if ev.kind == "message" and ev.group_id is not None
            }
        )
        answered, alarmed = await lately_among(
            session, sorted({*private, *in_groups}), now, rt.settings.intake.merge_window_s
        )
        # Group senders too: their first words after an officer's question there answer it
        # (handlers/resident.py, ``_asked_here``), read here instead of once per message.
        senders = {*private, *in_groups}
        batch.answered_lately = {member_id: member_id in answered for member_id in senders}
        batch.reported_emergency = {m: m in alarmed for m in {*private, *in_groups}}
        batch.refused = await refused_among(
            session,
            {sender for channel, sender in first if channel == "wechat"},
            now,
        )
        pairs = {
            (group.id, batch.members[key].id)
            for key, (_, ev) in first.items()
            if ev.kind == "message" and (group := directory.group(ev.group_id)) is not None
        }
        if pairs:
            await (await core(session)).execute(
                stmts.membership,
                [{"group_id": g, "member_id": m, "now": now} for g, m in sorted(pairs)],
            )
            batch.open_memberships = pairs
    counted = [
        (journal_id, ev)
        for journal_id, ev in events
        if ev.kind == "message"
        and not batch.own_message(ev, journal_id)
        and directory.officer(ev.channel, ev.sender_id) is None
    ]
    batch.counts = await rate_limits.count_batch(session, rt.cipher, counted, now)
    # Rows queued from here on (by the handlers) count as ours for the later events.
    sa_event.listen(session.sync_session, "transient_to_pending", batch._queued)
    batch.listening = True
    return batch
