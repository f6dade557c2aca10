"""When the chat cannot deliver an emergency, the duty officer and the station leader get an SMS.

A P1 page and an emergency's safety reply are queued with ``fallback_at`` (``sms.fallback_after_s``
after queueing). Should one of them still be unsent then — the bridge answering 429/5xx, timing
out, or marked down, or the message refused for good, which trigger it at once — the ticket's
holder and its station's leader are paged by SMS at the numbers the directory gives
(``phone``), once per ticket, and the ticket's timeline says so; not when someone has taken the
ticket (接單) meanwhile. Run by the scheduler's sweep (one instance at a time).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.services.routing import Router
from bot.services.tickets import add_event, category_text, group_label, holder_of
from bot.sms_templates import sms_message
from broadcasts.outbox import enqueue
from models.directory import Officer
from models.outbox import OutboxMessage
from models.tickets import Ticket, TicketEvent

log = logging.getLogger("lianxin.sms_fallback")
SMS_PAGE = "sms_page"


async def page_by_sms(runtime: Runtime, now: datetime | None = None) -> int:
    """Page by SMS every ticket whose urgent chat messages are overdue; returns the number of
    tickets paged now."""
    now = now or runtime.clock.now()
    down = runtime.health.down()
    # Refused for good (WeChat's closed 48-hour window, 45015): no waiting for the deadline.
    overdue = or_(OutboxMessage.fallback_at <= now, OutboxMessage.status == "failed")
    if down:
        overdue = or_(overdue, OutboxMessage.channel.in_(sorted(down)))
    due = and_(OutboxMessage.fallback_at.is_not(None), OutboxMessage.status != "sent", overdue)
    paged = 0
    async with runtime.sessions.begin() as session:
        rows = (
            await session.execute(select(OutboxMessage.id, OutboxMessage.ticket_id).where(due))
        ).all()
        if not rows:
            return 0
        for ticket_id in sorted({r.ticket_id for r in rows if r.ticket_id is not None}):
            paged += await _page(session, runtime, ticket_id, now)
        # Each urgent message triggers the fallback once, whatever becomes of it.
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([r.id for r in rows]))
            .values(fallback_at=None)
            .execution_options(synchronize_session=False)
        )
    if paged:
        runtime.outbox_wakeup.set()
    return paged


async def _first_number(session: AsyncSession, ticket: Ticket) -> str:
    """The number the resident was told to call first (119 fire, 120 injury, else 110), as the
    chat page says: the safety reply's timeline entry begins with it."""
    detail = await session.scalar(
        select(TicketEvent.detail)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "emergency_reply")
        .order_by(TicketEvent.id)
        .limit(1)
    )
    number = (detail or "").split(" ", 1)[0]
    return number if number in ("110", "119", "120") else "110"


async def _page(session: AsyncSession, runtime: Runtime, ticket_id: int, now: datetime) -> int:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or ticket.status == "closed":
        return 0
    if ticket.acknowledged_at is not None:
        # Taken in the chat already (接單 from WeCom while the Official Account refused the
        # page): an SMS asking for it would only confuse.
        return 0
    already = await session.scalar(
        select(TicketEvent.id).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == SMS_PAGE
        )
    )
    if already is not None:
        return 0  # once per ticket
    people: list[Officer] = []
    holder = await holder_of(session, ticket)
    if holder is not None:
        people.append(holder)
    if ticket.station_id:
        leader = await Router(session, runtime.settings.timezone).head_for(ticket.station_id)
        if leader is not None and leader not in people:
            people.append(leader)
    text = runtime.texts.render(
        "sms_emergency_page",
        ticket.script,
        code=ticket.code,
        category=category_text(runtime, ticket),
        group=await group_label(session, runtime, ticket),
    )
    number = await _first_number(session, ticket)
    reached = []
    for officer in people:
        phone = runtime.cipher.decrypt(officer.phone_enc) if officer.phone_enc else None
        if not phone:
            continue
        enqueue(
            session,
            sms_message(
                "page",
                text=text,
                phone=phone,
                values={
                    "ticket": ticket.code,
                    "category": category_text(runtime, ticket),
                    "number": number,
                    "minutes": max(1, runtime.settings.deadlines.p1_ack_s // 60),
                },
                priority=0,
            ),
            cipher=runtime.cipher,
            now=now,
        )
        reached.append(officer.id)
    missing = [o.id for o in people if o.id not in reached]
    detail = "P1 page by SMS to " + (", ".join(reached) or "nobody")
    if missing:
        detail += f" (no phone in the directory: {', '.join(missing)})"
    add_event(session, runtime, ticket, SMS_PAGE, now=now, detail=detail[:500])
    if missing:
        log.warning("ticket %s: chat undeliverable and no phone for %s", ticket.code, missing)
    return 1
