"""Retention: texts kept only for a time are blanked after ``retention.*`` days; rows stay.

What goes, once older than its retention (``lianxin purge``, or daily by the scheduler):

- **journal** (``inbound_events``, by ``received_at``): the payload (text, nickname, mentions,
  media) becomes ``{"text": ""}``. Channel, de-duplication key, sender, kind, status and time
  stay: retries are still recognised, events still counted, outbox rows still point at their
  cause. A message held for an unverified resident whose text goes is dropped with it
  (``pending_items.status = 'dropped'``): it could no longer be submitted.
- **outbox** (by ``created_at``), rows sent or failed for good: the payload becomes an empty
  message and ``echo_hash`` (a hash of the text) goes. Status, recipient, times, attempts and
  errors stay, so ``/api/v1/outbox`` counts hold. Failed rows are kept at least as long as an
  answer WeChat refused may still be sent again (``broadcasts.outbox.RESEND_WITHIN``).
- **closed tickets** (by ``closed_at``): the resident's text becomes empty, the resolution and
  every timeline note go. Code, category, priority, status, times, reporters and the timeline's
  steps stay.

A blank is a real ciphertext (of the empty text), so every reader, the start-up key check and
``keys rotate`` treat it as any other. A value is blank when its ciphertext is no longer than
the blank's (AES-GCM adds a fixed overhead; every real payload is longer than the empty one), so
a run only changes, and only counts, what is not blank yet: running it twice changes nothing.
Each kind is one set-based ``UPDATE … WHERE id IN (…)`` per batch of ``retention.batch_size``
ids (never an ORM load), one transaction per batch, so the server's writers never wait long.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pii import PiiCipher
from bot.runtime import Runtime
from bot.settings import RetentionSettings
from broadcasts.outbox import RESEND_WITHIN
from models.base import rowcount, table_of
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import PendingItem
from models.tickets import JobRun, Ticket, TicketEvent

log = logging.getLogger("lianxin.purge")

# The blanks' plaintexts: the smallest payload each kind's readers accept.
JOURNAL_BLANK: dict[str, Any] = {"text": ""}
OUTBOX_BLANK: dict[str, Any] = {"text": "", "mentions": [], "media": None}


@dataclass(frozen=True)
class Kind:
    """One kind of text: its name for people, its retention setting and how many rows it had
    (to blank, or blanked); ``days`` None means it is kept."""

    label: str
    setting: str
    days: int | None
    rows: int = 0


@dataclass
class PurgeReport:
    """What a purge blanked, or (``dry_run``) would blank, per kind."""

    dry_run: bool
    kinds: list[Kind] = field(default_factory=list)
    held_dropped: int = 0

    def count(self, setting: str) -> int:
        """Rows of the kind configured by ``setting`` (``journal_days`` …)."""
        return sum(k.rows for k in self.kinds if k.setting == setting)

    def lines(self) -> list[str]:
        """One line per kind, for the command line and the log."""
        verb = "to blank" if self.dry_run else "blanked"
        out = []
        for kind in self.kinds:
            if kind.days is None:
                out.append(f"{kind.label}: kept (retention.{kind.setting} not set)")
            else:
                out.append(f"{kind.label} older than {kind.days} days: {kind.rows} {verb}")
            if kind.setting == "journal_days" and kind.days is not None:
                dropped = "to drop" if self.dry_run else "dropped"
                out.append(f"messages held for unverified residents: {self.held_dropped} {dropped}")
        return out


async def purge(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    retention: RetentionSettings,
    now: datetime,
    *,
    dry_run: bool = False,
) -> PurgeReport:
    """Blank what ``retention`` keeps no longer at ``now``; with ``dry_run``, only count."""
    report = PurgeReport(dry_run)
    batch = retention.batch_size

    async def run(table: Table, where: ColumnElement[bool], values: dict[str, Any]) -> int:
        if dry_run:
            return await _count(sessions, table, where)
        return await _blank_in_batches(sessions, table, where, values, batch)

    journal = table_of(InboundEvent)
    days = retention.journal_days
    rows = 0
    if days is not None:
        blank = cipher.encrypt_json(JOURNAL_BLANK)
        old = (journal.c.received_at < now - timedelta(days=days)) & (
            func.length(journal.c.payload_enc) > len(blank)
        )
        report.held_dropped = await _drop_held(sessions, select(journal.c.id).where(old), dry_run)
        rows = await run(journal, old, {"payload_enc": blank})
    report.kinds.append(Kind("journal payloads", "journal_days", days, rows))

    outbox = table_of(OutboxMessage)
    days, rows = retention.outbox_days, 0
    if days is not None:
        blank = cipher.encrypt_json(OUTBOX_BLANK)
        final = (outbox.c.status == "sent") | (
            (outbox.c.status == "failed") & (outbox.c.created_at < now - RESEND_WITHIN)
        )
        old = (
            final
            & (outbox.c.created_at < now - timedelta(days=days))
            & or_(
                func.length(outbox.c.payload_enc) > len(blank),
                outbox.c.echo_hash.is_not(None),
            )
        )
        rows = await run(outbox, old, {"payload_enc": blank, "echo_hash": None})
    report.kinds.append(Kind("sent outbox texts", "outbox_days", days, rows))

    tickets, events = table_of(Ticket), table_of(TicketEvent)
    days, rows, notes = retention.closed_ticket_days, 0, 0
    if days is not None:
        blank_text = cipher.encrypt("")
        assert blank_text is not None
        closed_long_ago = (tickets.c.status == "closed") & (
            tickets.c.closed_at < now - timedelta(days=days)
        )
        old = closed_long_ago & or_(
            func.length(tickets.c.text_enc) > len(blank_text),
            tickets.c.resolution_enc.is_not(None),
        )
        rows = await run(tickets, old, {"text_enc": blank_text, "resolution_enc": None})
        noted = events.c.note_enc.is_not(None) & events.c.ticket_id.in_(
            select(tickets.c.id).where(closed_long_ago)
        )
        notes = await run(events, noted, {"note_enc": None})
    report.kinds.append(Kind("closed tickets' texts", "closed_ticket_days", days, rows))
    report.kinds.append(Kind("closed tickets' timeline notes", "closed_ticket_days", days, notes))
    return report


async def _count(
    sessions: async_sessionmaker[AsyncSession], table: Table, where: ColumnElement[bool]
) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(where)) or 0)


async def _blank_in_batches(
    sessions: async_sessionmaker[AsyncSession],
    table: Table,
    where: ColumnElement[bool],
    values: dict[str, Any],
    batch: int,
) -> int:
    """Per batch, the next ``batch`` ids matching ``where`` (in id order, after the last batch),
    then ``UPDATE table SET values WHERE id IN (those) AND where``; one transaction per batch.
    Moving on by id ends the run even if a row still matched after its update; checking
    ``where`` again lets two purges at once (the command while the scheduler runs) each blank a
    row once."""
    pk, total, last = table.c.id, 0, 0
    while True:
        async with sessions.begin() as session:
            ids = list(
                (
                    await session.scalars(
                        select(pk).where(where, pk > last).order_by(pk).limit(batch)
                    )
                ).all()
            )
            if not ids:
                return total
            result = await session.execute(update(table).where(pk.in_(ids), where).values(values))
        total += rowcount(result)
        last = ids[-1]


async def _drop_held(
    sessions: async_sessionmaker[AsyncSession], journal_ids: Any, dry_run: bool
) -> int:
    """Held messages whose journal text is about to go are dropped first: released later, they
    would be submitted empty."""
    held = (PendingItem.status == "held") & PendingItem.journal_id.in_(journal_ids)
    if dry_run:
        return await _count(sessions, table_of(PendingItem), held)
    async with sessions.begin() as session:
        result = await session.execute(update(PendingItem).where(held).values(status="dropped"))
    return rowcount(result)


async def _claim_day(session: AsyncSession, day: str, now: datetime) -> bool:
    """Whether this process is the first to purge on ``day`` (several may share a database)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(JobRun)
        .values(job="purge", run_key=day, ran_at=now)
        .on_conflict_do_nothing()
        .returning(JobRun.id)
    )
    return result.scalar_one_or_none() is not None


async def retention_purge_job(runtime: Runtime) -> PurgeReport | None:
    """The scheduler's daily purge: once per local day across processes; errors are logged and
    the next day tries again (a purge is idempotent). Returns None when another run had the
    day."""
    now = runtime.clock.now()
    day = now.astimezone(runtime.settings.tz).date().isoformat()
    try:
        async with runtime.sessions.begin() as session:
            if not await _claim_day(session, day, now):
                return None
        report = await purge(runtime.sessions, runtime.cipher, runtime.settings.retention, now)
    except Exception:
        log.exception("retention purge failed")
        return None
    log.info("retention purge: %s", "; ".join(report.lines()))
    return report
