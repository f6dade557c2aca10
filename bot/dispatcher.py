"""From an accepted event to committed state: handlers, tickets, outbox, in the caller's
transaction.

The webhook journals an event and answers (``bot/pipeline.py``); the processor then hands each
journaled event to :meth:`Dispatcher.process`, which runs the handlers in order (the first that
returns True wins) and marks the journal row processed in the same transaction. Handlers write
rows and outbox messages; they never commit (the pipeline does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dispatch_batch import Batch, forgotten_retries, prepare_batch
from bot.messages import InboundMessage
from bot.runtime import Runtime
from bot.services.directory_cache import DirectoryCache
from bot.text_parts import WECHAT_TEXT_LIMIT, fits
from broadcasts.outbox import (
    recipient_after_sending,
    resend_refused,
    scrub_payload,
)
from handlers.context import Handler, HandlerContext
from models.outbox import OutboxMessage, chat_key

log = logging.getLogger("lianxin.dispatch")


@dataclass(frozen=True)
class DispatchResult:
    journal_id: int
    duplicate: bool
    status: str
    outbox: tuple[OutboxMessage, ...] = ()
    passive: OutboxMessage | None = None  # the reply that rides back in the HTTP response


class Dispatcher:
    """Runs accepted (journaled) events through the handler chain, a batch at a time."""

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
        self.directory = DirectoryCache()

    async def prepare(
        self,
        session: AsyncSession,
        events: Sequence[tuple[int, InboundMessage]],
        *,
        now: datetime,
    ) -> Batch:
        """The batch for the journaled ``events``: see :func:`bot.dispatch_batch.prepare_batch`."""
        return await prepare_batch(self._runtime, self.directory, session, events, now=now)

    async def process(
        self,
        session: AsyncSession,
        event: InboundMessage,
        journal_id: int,
        *,
        now: datetime,
        claim_passive: Callable[[], bool] | None = None,
        classification: Any = None,
        batch: Batch | None = None,
    ) -> DispatchResult:
        """Handle the journaled event ``journal_id`` in ``session``; the caller commits.

        Marks the journal row processed with its final status in the same transaction (with
        ``batch``, when the batch finishes), so an event is handled exactly once however often
        a processor crashes before committing. When ``claim_passive`` (asked once the handlers
        are done) says a request is still waiting in time, the first reply to the event's chat
        on its channel is marked as answered in that HTTP response (WeChat's and WeCom's
        passive reply). ``classification``: the classifier's verdict when the emergency check
        at acceptance already made it. ``batch``: from :meth:`prepare` for a batch the event
        is in (its events processed in order); without, the event is a batch of its own.
        """
        if batch is None:
            alone = await self.prepare(session, [(journal_id, event)], now=now)
            result = await self.process(
                session,
                event,
                journal_id,
                now=now,
                claim_passive=claim_passive,
                classification=classification,
                batch=alone,
            )
            await alone.finish()
            return result
        rt = self._runtime
        group = batch.directory.group(event.group_id)
        status = "unknown_group" if event.group_id and group is None else "handled"
        if await batch.own(event, journal_id):
            # Our own words coming back through the bridge: recorded, never answered.
            batch.mark_processed(journal_id, "own_message")
            return DispatchResult(journal_id, False, "own_message")
        member = await batch.member(event)
        if (event.channel, event.sender_id) in batch.cut:  # a new member since prepare
            batch.forgotten_retries |= await forgotten_retries(
                session, rt, [(journal_id, event)], batch, now
            )
        if journal_id in batch.forgotten_retries:
            # A channel's retry of an event whose sender has since cut the link (註銷實名):
            # handled once already, under the key it keeps now.
            batch.mark_processed(journal_id, "duplicate")
            return DispatchResult(journal_id, True, "duplicate")
        officer = batch.directory.officer(event.channel, event.sender_id)
        if event.kind != "message":
            # Joins and leaves change memberships: each later message notes its own again.
            batch.open_memberships.clear()
        elif group is not None:
            await batch.note_membership(group.id, member.id)
        ctx = HandlerContext(
            session=session,
            runtime=rt,
            event=event,
            journal_id=journal_id,
            group=group,
            member=member,
            officer=officer,
            now=now,
            answered_lately=batch.knows_answered_lately(member.id),
            reported_emergency_lately=batch.knows_reported_emergency(member.id),
            _classification=classification,
        )
        limit = None
        if officer is None and event.kind == "message":
            limit = await batch.counts.check(
                session,
                cipher=rt.cipher,
                limits=rt.settings.limits,
                event=event,
                journal_id=journal_id,
                now=now,
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
        if (
            event.channel == "wechat"
            and event.kind == "message"
            and (batch.refused is None or event.sender_id in batch.refused)
        ):
            # They wrote: WeChat lets us reach them again. After the handlers' own replies,
            # so that the passive reply answers what they just said when there is one.
            ctx.outbox += await resend_refused(
                session, user_id=event.sender_id, now=now, source_event_id=journal_id
            )
        batch.mark_processed(journal_id, status)
        batch.handled(member.id, officer=officer is not None)
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
            if row.channel == "wechat" and not _fits_passive(ctx, row):
                return None  # WeChat refuses it: the API sends it in parts, and the rest after
            row.status, row.sent_via, row.sent_at, row.attempts = "sent", "passive", ctx.now, 1
            row.fallback_at = None  # answered in the response: no SMS page needed
            if ctx.pseudonyms:
                _scrub_sent(ctx, row)
            return row
    return None


def _fits_passive(ctx: HandlerContext, row: OutboxMessage) -> bool:
    text: str = ctx.runtime.cipher.decrypt_json(row.payload_enc).get("text", "")
    return fits(text, WECHAT_TEXT_LIMIT)


def _scrub_sent(ctx: HandlerContext, row: OutboxMessage) -> None:
    """What the worker does to a row it has sent, for the passive reply: the payload loses what
    was only needed to send it, and the recipient becomes their pseudonym if they cut the link."""
    cipher = ctx.runtime.cipher
    payload = cipher.decrypt_json(row.payload_enc)
    row.payload_enc = cipher.encrypt_json(scrub_payload(payload))
    row.user_id = recipient_after_sending(payload, row.user_id)
    row.chat_key = chat_key(row.channel, row.group_id, row.user_id)
