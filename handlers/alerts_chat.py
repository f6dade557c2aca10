"""Urgent notices in the chat: the leader's commands, and residents' answers to an alert.

``alert_commands`` (before ``officer_commands``, which takes every officer message):

- ``緊急通報 範圍 內容`` / ``紧急通报 范围 内容``: scope is a station id or name, in either
  script (its sub-stations included), or ``全縣``/``全县``. Leaders only — any leader, any
  scope: a child lost in one township may be found in the next, and the station chief is who
  decides that.
- ``撤回通報 ID [原因]`` / ``撤回通报 ID [原因]``, and ``更正通報 ID 內容`` / ``更正通报 ID 内容``:
  by the alert's author, or a leader whose stations hold every group it reached (the county's
  leader: any alert) — :func:`broadcasts.alerts.may_recall`, the console's rule too.

``alert_replies`` (after the emergency layer and resident commands, before intake), in a group
that an alert reached in the last 24 h: ``收到`` is recorded and nothing is said; a clue (see
:func:`is_clue`) becomes a help ticket linked to the alert; anything else goes on to intake.
Clues are not held for real-name verification: during a search for a missing child a clue must
not wait (docs/bulletins.md).
"""

from __future__ import annotations

import dataclasses
import re

from bot.services.routing import station_named
from bot.services.ticket_service import officer_scope
from bot.services.tickets import Out, find_ticket
from broadcasts.alerts import (
    active_alert_for_group,
    correct_alert,
    may_recall,
    recall_alert,
    record_ack,
    send_alert,
)
from broadcasts.bulletins import Problem
from handlers.alert_links import (
    SAME_MATTER,
    more_than_chatter,
    sights_the_sought,
    tell_officer_of_clue,
)
from handlers.classify import normalise
from handlers.commands import clean, parse
from handlers.context import HandlerContext
from handlers.intake import submit
from handlers.merges import Item
from handlers.similarity import passes_on, similarity
from models.bulletins import Alert
from models.directory import Officer

_SEND = re.compile(r"^(?:緊急通報|紧急通报)(?:\s+(?P<scope>\S+))?(?:\s+(?P<text>.+))?$", re.S)
_RECALL = re.compile(r"^(?:撤回通報|撤回通报)\s*#?(?P<id>\d+)(?:\s+(?P<reason>.+))?$", re.S)
_CORRECT = re.compile(r"^(?:更正通報|更正通报)\s*#?(?P<id>\d+)\s+(?P<text>.+)$", re.S)
_WHOLE_COUNTY = {"全縣", "全县"}
# 收到, 已收到, 收到了, 收到!, 好的收到, 收到收到 … and nothing else.
_ACK = re.compile(r"^(?:好的)?(?:已)?(?:收到)+(?:了|啦|啊)?$")
_PUNCT = re.compile(r"[\s\W_]+")


async def alert_commands(ctx: HandlerContext) -> bool:
    """A leader's alert command; other senders' messages pass on untouched."""
    officer = ctx.officer
    if officer is None or ctx.event.kind != "message":
        return False
    text = clean(ctx.event.text)
    send, recall, correct = _SEND.match(text), _RECALL.match(text), _CORRECT.match(text)
    if not (send or recall or correct):
        return False
    out = Out.of(ctx)
    if officer.role != "leader":
        out.to_officer(officer, ctx.text("alert_not_leader"))
        return True
    if send:
        await _send(ctx, out, officer, send.group("scope"), send.group("text"))
    elif recall:
        await _recall(ctx, out, officer, int(recall.group("id")), recall.group("reason") or "")
    elif correct:
        await _correct(ctx, out, officer, int(correct.group("id")), correct.group("text"))
    return True


async def _send(
    ctx: HandlerContext, out: Out, officer: Officer, scope_word: str | None, text: str | None
) -> None:
    if not scope_word or not text or not text.strip():
        out.to_officer(officer, ctx.text("alert_usage"))
        return
    if scope_word in _WHOLE_COUNTY:
        scope: dict[str, object] = {"all": True}
    else:
        station = await station_named(ctx.session, scope_word)
        if station is None:
            out.to_officer(officer, ctx.text("alert_unknown_scope", scope=scope_word))
            return
        scope = {"stations": [station.id]}
    try:
        alert, count = await send_alert(
            ctx.session,
            runtime=ctx.runtime,
            scope=scope,
            text=text.strip(),
            media=None,
            created_by=f"officer:{officer.id}",
            now=ctx.now,
        )
    except Problem:
        out.to_officer(officer, ctx.text("alert_no_groups", scope=scope_word))
        return
    out.to_officer(officer, ctx.text("alert_sent_to_leader", id=alert.id, count=count), priority=0)


async def _own_alert(
    ctx: HandlerContext, out: Out, officer: Officer, alert_id: int
) -> Alert | None:
    alert = await ctx.session.get(Alert, alert_id)
    if alert is None or alert.kind != "alert":
        out.to_officer(officer, ctx.text("alert_unknown", id=alert_id))
        return None
    scope = await officer_scope(ctx.session, officer)
    authors = frozenset({f"officer:{officer.id}"})
    if not await may_recall(ctx.session, alert, authors=authors, within=scope.stations):
        out.to_officer(officer, ctx.text("alert_not_yours", id=alert_id))
        return None
    if alert.status == "recalled":
        out.to_officer(officer, ctx.text("alert_already_recalled", id=alert_id))
        return None
    return alert


async def _recall(
    ctx: HandlerContext, out: Out, officer: Officer, alert_id: int, reason: str
) -> None:
    alert = await _own_alert(ctx, out, officer, alert_id)
    if alert is None:
        return
    _notice, count, withdrawn = await recall_alert(
        ctx.session,
        runtime=ctx.runtime,
        alert=alert,
        reason=reason.strip(),
        created_by=f"officer:{officer.id}",
        now=ctx.now,
    )
    out.to_officer(
        officer,
        ctx.text("alert_recalled_to_leader", id=alert_id, count=count, withdrawn=withdrawn),
        priority=0,
    )


async def _correct(
    ctx: HandlerContext, out: Out, officer: Officer, alert_id: int, text: str
) -> None:
    alert = await _own_alert(ctx, out, officer, alert_id)
    if alert is None:
        return
    correction, count = await correct_alert(
        ctx.session,
        runtime=ctx.runtime,
        alert=alert,
        text=text.strip(),
        created_by=f"officer:{officer.id}",
        now=ctx.now,
    )
    out.to_officer(
        officer,
        ctx.text("alert_corrected_to_leader", id=alert_id, correction=correction.id, count=count),
        priority=0,
    )


# What makes words of no label a clue while a notice is out: somebody seen or met, a moment
# (刚才) or a place (在桥头, 在河边) named, a guess (好像), or the sought claimed as one's own.
_CLUE_SIGNS = re.compile(
    r"看到|看见|见到|见过|碰到|遇到|发现|刚才|刚刚|好像|像是"
    r"|在.{0,8}(?:边|旁|口|里|路|街|村|镇|桥|河|站|场|店|楼|家|门)"
    r"|是我(?:家)?的?(?:孙子|孙女|外孙|儿子|女儿|孩子|小孩|爸|妈|父亲|母亲|爷爷|奶奶|外公|外婆|老伴|老公|老婆)"
)


def is_ack(text: str) -> bool:
    """``收到`` and its everyday variants, with any punctuation or emoji around it."""
    return bool(_ACK.match(_PUNCT.sub("", clean(text))))


def is_clue(ctx: HandlerContext, text: str, alert_text: str) -> bool:
    """Whether a resident's message answers the alert rather than raising a matter of its own.

    A message that talks about what the alert says is a clue. Otherwise one the classifier files
    under a real label (a fraud question, a theft) is an ordinary matter for intake, and one it
    calls ``other`` is a clue when it has a clue's signs (:data:`_CLUE_SIGNS`: somebody seen,
    a place or a moment named, the sought claimed as one's own: "那是我孫子!我馬上去廣場,謝謝").
    Short thanks and greetings are not clues, nor is the day's chatter ("大家早上好,今天去趕集
    的人多嗎" was a P2 clue for the officer: a notice to every group would have buried him).
    """
    result = ctx.classify()
    if similarity(alert_text, text) >= SAME_MATTER or sights_the_sought(ctx, alert_text, text):
        return True
    return (
        result.label == "other"
        and more_than_chatter(result, text)
        and _CLUE_SIGNS.search(normalise(text)) is not None
    )


async def _names_a_ticket_in(ctx: HandlerContext, text: str) -> bool:
    """Whether ``text`` is ``#CODE …`` for a ticket that exists."""
    command = parse(text)
    if command is None or command.name != "answer" or not command.code:
        return False
    return await find_ticket(ctx.session, command.code) is not None


async def alert_replies(ctx: HandlerContext) -> bool:
    """收到 → acknowledgement; a clue → a help ticket linked to the alert; else pass on."""
    ev = ctx.event
    if ev.kind != "message" or ctx.group is None or ctx.officer is not None:
        return False
    text = clean(ev.text)
    if not text:
        return False
    alert = await active_alert_for_group(ctx.session, group_id=ctx.group.id, now=ctx.now)
    if alert is None:
        return False
    alert_text = ctx.runtime.cipher.decrypt(alert.text_enc) or ""
    if is_ack(text) or passes_on(ev.text, alert_text):
        # Passing the notice on says it was read; it is no clue (the officer would get a
        # "clue" for every resident who shares it).
        await record_ack(
            ctx.session, alert=alert, group_id=ctx.group.id, member_id=ctx.member.id, now=ctx.now
        )
        return True
    if await _names_a_ticket_in(ctx, ev.text):
        # "#M9060 消防车到了": about that ticket, for its officer (the reporter's addition or
        # a neighbour's clue, resident_followups), not a new ticket filed under the notice.
        return False
    if not is_clue(ctx, text, alert_text):
        return False  # an ordinary matter or chatter: intake decides, as on any other day
    ticket = await submit(
        ctx,
        dataclasses.replace(ctx.classify(), label="help", unclear=False),
        Item.of(ctx),
        alert_id=alert.id,
    )
    if ticket.alert_id is None:
        ticket.alert_id = alert.id
        # Right after intake's notice of the ticket, at its priority.
        await tell_officer_of_clue(ctx, ticket, alert, priority=3 if ticket.priority <= 2 else 5)
    return True
