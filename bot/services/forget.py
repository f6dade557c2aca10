"""Cutting a resident's account link (``註銷實名``): their channel id becomes a pseudonym.

The matter stays — tickets, their texts, timelines, the journal's counts — but no row ties it to
the WeChat or bridge account any more. The sender id is replaced, in the same transaction as the
binding's deletion, by :meth:`bot.pii.PiiCipher.pseudonym` (a keyed hash: without the key nobody
can test a known id against it, and nobody can reverse it) in

- the member row (its nickname goes too): the resident writing again is a new, unbound member;
- the journal rows they sent (sender and de-duplication key; their nickname leaves the payloads);
- ticket reporter rows: answers to those tickets no longer reach them
  (:func:`bot.services.tickets.reachable`);
- outbox rows addressed to them or @-mentioning them. A row still waiting keeps the real id until
  it is sent (the confirmation of the deletion must reach them): ``extra.pseudonyms`` tells the
  worker what to put in its place afterwards;
- the @-mentions of them in other people's journal rows in their groups.

Their group memberships end (``left_at``), so that member counts do not count them twice.
Everything here runs in the caller's transaction and never commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from models.base import rowcount, table_of
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import GroupMember, Member
from models.tickets import TicketReporter

# Payloads are rewritten this many rows at a time: a member's history may be long.
BATCH = 500

Change = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_sender` changed, row counts per kind."""

    pseudonym: str
    journal: int
    outbox: int
    waiting: int
    reporters: int
    mentions: int
    memberships: int


async def forget_sender(
    session: AsyncSession,
    cipher: PiiCipher,
    member: Member,
    now: datetime,
    *,
    up_to: int | None = None,
) -> Forgotten:
    """Replace ``member``'s sender id by its pseudonym wherever it is stored. ``up_to``: the
    journal id of the event that asked (their journal rows after it are left as they are)."""
    # Pending ORM changes first (the journal's masked commands): the statements below work on
    # the tables, and a later flush must not write an old payload over a rewritten one.
    await session.flush()
    pseudonym = cipher.pseudonym(member.channel, member.id, member.sender_id)
    groups = list(
        (
            await session.scalars(
                select(GroupMember.group_id).where(GroupMember.member_id == member.id).distinct()
            )
        ).all()
    )
    journal, journal_mentions = await _forget_in_journal(
        session, cipher, member, pseudonym, groups, up_to
    )
    outbox, waiting, outbox_mentions = await _forget_in_outbox(
        session, cipher, member, pseudonym, groups
    )
    reporters = table_of(TicketReporter)
    reporter_rows = await _update(
        session,
        update(reporters)
        .where(
            or_(
                reporters.c.member_id == member.id,
                and_(
                    reporters.c.channel == member.channel,
                    reporters.c.sender_id == member.sender_id,
                ),
            )
        )
        .values(sender_id=pseudonym),
    )
    memberships = table_of(GroupMember)
    membership_rows = await _update(
        session,
        update(memberships)
        .where(memberships.c.member_id == member.id, memberships.c.left_at.is_(None))
        .values(left_at=now),
    )
    member.sender_id = pseudonym
    member.nickname_enc = None
    await session.flush()
    return Forgotten(
        pseudonym=pseudonym,
        journal=journal,
        outbox=outbox,
        waiting=waiting,
        reporters=reporter_rows,
        mentions=journal_mentions + outbox_mentions,
        memberships=membership_rows,
    )


async def _forget_in_journal(
    session: AsyncSession,
    cipher: PiiCipher,
    member: Member,
    pseudonym: str,
    groups: list[str],
    up_to: int | None,
) -> tuple[int, int]:
    """Their own rows up to ``up_to`` lose the nickname and take the pseudonym; other people's
    messages in their groups since they appeared @-mention the pseudonym. Returns (own rows,
    mentions)."""
    journal, sender = table_of(InboundEvent), member.sender_id
    own = and_(journal.c.channel == member.channel, journal.c.sender_id == sender)
    if up_to is not None:
        # What they sent after the 註銷實名 and is not handled yet is a newcomer's (a new
        # 實名 among it): given the pseudonym, its answer would go to nobody.
        own = and_(own, journal.c.id <= up_to)
    await _rewrite(session, cipher, journal, own, _without_nickname)
    keys = (await session.execute(select(journal.c.id, journal.c.dedup_key).where(own))).all()
    if keys:
        await session.execute(
            update(journal)
            .where(journal.c.id == bindparam("row_id"))
            .values(sender_id=pseudonym, dedup_key=bindparam("forgotten"))
            .execution_options(synchronize_session=False),
            [
                {"row_id": row_id, "forgotten": forgotten_key(cipher, member.channel, key)}
                for row_id, key in keys
            ],
        )
    rows = len(keys)
    if not groups:
        return rows, 0
    in_their_groups = and_(
        journal.c.group_id.in_(groups),
        journal.c.received_at >= member.first_seen_at,
        journal.c.kind == "message",
    )
    mentions = _mention_swap(sender, pseudonym)
    return rows, await _rewrite(session, cipher, journal, in_their_groups, mentions)


async def _forget_in_outbox(
    session: AsyncSession, cipher: PiiCipher, member: Member, pseudonym: str, groups: list[str]
) -> tuple[int, int, int]:
    """Rows addressed to them take the pseudonym, and rows in their groups @-mention it; a row
    still waiting keeps the id until it is sent (``extra.pseudonyms``), the others lose it now
    ("sending" ones too: the worker has what it needs in hand and records only the outcome).
    Returns (rows addressed to them, rows marked for after sending, mentions replaced)."""
    outbox, sender = table_of(OutboxMessage), member.sender_id
    addressed = and_(outbox.c.channel == member.channel, outbox.c.user_id == sender)
    waiting = outbox.c.status == "pending"
    after_sending = _after_sending(sender, pseudonym)
    marked = await _rewrite(session, cipher, outbox, and_(addressed, waiting), after_sending)
    rows = await _update(
        session,
        update(outbox)
        .where(addressed, ~waiting)
        .values(
            user_id=pseudonym,
            chat_key=func.replace(outbox.c.chat_key, sender, pseudonym),
            last_error=func.replace(outbox.c.last_error, sender, pseudonym),
        ),
    )
    if not groups:
        return rows, marked, 0
    mentions = _mention_swap(sender, pseudonym)
    in_their_groups = and_(
        outbox.c.group_id.in_(groups), outbox.c.created_at >= member.first_seen_at
    )
    marked += await _rewrite(
        session,
        cipher,
        outbox,
        and_(in_their_groups, waiting),
        lambda payload: after_sending(payload) if mentions(payload) is not None else None,
    )
    swapped = await _rewrite(session, cipher, outbox, and_(in_their_groups, ~waiting), mentions)
    return rows, marked, swapped


def forgotten_key(cipher: PiiCipher, channel: str, dedup_key: str) -> str:
    """What a forgotten sender's journal row keeps as its de-duplication key: a keyed hash of
    the key it had (WeChat's and WeCom's name the sender). Nothing names them, and a channel's
    retry of that very event, arriving after the 註銷實名, is still known: the dispatcher asks
    for this key before it handles a new sender's message (a newcomer found a fire handled
    twice: a second P1 and a second page)."""
    return "forgotten:" + cipher.lookup_hash(f"{channel}\x1f{dedup_key}")


def _without_nickname(payload: dict[str, Any]) -> dict[str, Any] | None:
    if not payload.get("nickname"):
        return None
    return {**payload, "nickname": None}


def _mention_swap(sender: str, pseudonym: str) -> Change:
    def swap(payload: dict[str, Any]) -> dict[str, Any] | None:
        mentioned = payload.get("mentions") or []
        if sender not in mentioned:
            return None
        return {**payload, "mentions": [pseudonym if m == sender else m for m in mentioned]}

    return swap


def _after_sending(sender: str, pseudonym: str) -> Change:
    """Mark a waiting row: once sent, its recipient and mentions become the pseudonym (see
    ``broadcasts.outbox.scrub_payload``)."""

    def mark(payload: dict[str, Any]) -> dict[str, Any]:
        extra = dict(payload.get("extra") or {})
        extra["pseudonyms"] = {**(extra.get("pseudonyms") or {}), sender: pseudonym}
        return {**payload, "extra": extra}

    return mark


async def _update(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return rowcount(result)


async def _rewrite(
    session: AsyncSession,
    cipher: PiiCipher,
    table: Table,
    where: ColumnElement[bool],
    change: Change,
) -> int:
    """Apply ``change`` to the encrypted ``payload_enc`` of the rows ``where`` selects, in
    batches by id; returns how many rows changed. ``change`` answers None for "no change".
    A payload no configured key opens is left as it is: nobody can read it any more."""
    pk, column = table.c.id, table.c.payload_enc
    write = (
        update(table)
        .where(pk == bindparam("row_id"))
        .values({column.name: bindparam("new_payload")})
    )
    changed, last = 0, 0
    while True:
        rows = (
            await session.execute(
                select(pk, column).where(where, pk > last).order_by(pk).limit(BATCH)
            )
        ).all()
        if not rows:
            return changed
        last = rows[-1][0]
        batch = []
        for row_id, blob in rows:
            try:
                payload = cipher.decrypt_json(blob)
            except (ValueError, InvalidTag):
                continue
            new = change(payload) if isinstance(payload, dict) else None
            if new is not None:
                batch.append({"row_id": row_id, "new_payload": cipher.encrypt_json(new)})
        if batch:
            await session.execute(write, batch)
            changed += len(batch)
