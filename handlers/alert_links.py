"""Whether a resident's emergency is about an active alert in their group (a child seen by the
river while the lost-child notice is out): intake asks before opening an emergency ticket."""

from __future__ import annotations

import re

from bot.services.tickets import Out, clip, holder_of
from broadcasts.alerts import (
    active_alert_for_group,
)
from handlers.classify import CHATTER, Classification, normalise
from handlers.classify.rules import DANGER_NOW
from handlers.context import HandlerContext
from handlers.similarity import similarity
from models.bulletins import Alert
from models.tickets import Ticket

_PUNCT = re.compile(r"[\s\W_]+")
_CHATTER_MAX = 10

# Share of character bigrams with the alert's text above which a message is about the alert.
SAME_MATTER = 0.2
_PERSON = r"(?:小孩|孩子|男孩|女孩|小朋友|儿童|老人|老太|老头|大爷|大妈|男的|女的|男子|女子|人)"
# A notice that seeks a person, and a message that says one was seen.
_SEEKS_SOMEONE = re.compile(rf"寻找|找人|走失|失踪|走丢|不见|寻人|{_PERSON}")
_ANY_PERSON = re.compile(_PERSON)
_SIGHTING = re.compile(rf"(?:看到|看见|见到|见过|碰到|遇到|发现)(?:了|过)?.{{0,8}}{_PERSON}")


async def answers_active_alert(ctx: HandlerContext) -> bool:
    """Whether a group message talks about what an active alert in that group seeks."""
    if ctx.group is None:
        return False
    alert = await active_alert_for_group(ctx.session, group_id=ctx.group.id, now=ctx.now)
    if alert is None:
        return False
    alert_text = ctx.runtime.cipher.decrypt(alert.text_enc) or ""
    if names_new_danger(ctx, alert_text):
        return False  # "救命!有人拿刀砍那个穿红外套的男孩": the notice's words, and danger now
    if similarity(alert_text, ctx.event.text) >= SAME_MATTER:
        return True
    return sights_the_sought(ctx, alert_text, ctx.event.text)


def names_new_danger(ctx: HandlerContext, alert_text: str) -> bool:
    """Whether the message names danger now (救命, 掉河里, 拿刀砍) that the notice itself does
    not: an emergency, however many of the notice's words it repeats. A copy of a notice that
    names danger (a wanted man with a knife) stays an answer to it."""
    if DANGER_NOW not in ctx.classify().matched:
        return False
    return DANGER_NOW not in ctx.runtime.classifier.classify(alert_text).matched


def more_than_chatter(result: Classification, text: str) -> bool:
    """Of words that open no matter of their own, whether they say something a person should
    hear (a clue, a reporter's update): at least four characters, and not thanks or a greeting
    of up to ten ("那是我孫子!我馬上去廣場,謝謝" is; "谢谢大家" is not)."""
    size = len(_PUNCT.sub("", text))
    return size >= 4 and not (CHATTER in result.matched and size <= _CHATTER_MAX)


def sights_the_sought(ctx: HandlerContext, alert_text: str, text: str) -> bool:
    """ "刚才在桥头好像看到一个小孩,穿红衣服": somebody seen while the notice seeks somebody,
    in other words than the notice's. Danger named plainly (掉河里了, 救命) is no clue: it
    stays an emergency, with its safety reply."""
    return (
        _SEEKS_SOMEONE.search(normalise(alert_text)) is not None
        and _SIGHTING.search(normalise(text)) is not None
        and DANGER_NOW not in ctx.classify().matched
    )


async def link_to_active_alert(ctx: HandlerContext, ticket: Ticket) -> None:
    """An emergency raised in a group during an alert, about what the alert says, belongs to it
    (a child seen by the river while the lost-child notice is out)."""
    if ctx.group is None or ticket.alert_id is not None:
        return
    alert = await active_alert_for_group(ctx.session, group_id=ctx.group.id, now=ctx.now)
    if alert is None:
        return
    # Weaker wording overlap than for clues: an emergency about a person during an alert is
    # more likely than not about the person the alert seeks, and a wrong link costs nothing.
    alert_text = ctx.runtime.cipher.decrypt(alert.text_enc) or ""
    overlap = similarity(alert_text, ctx.event.text)
    # "About a person" is said, not assumed from the category: a fire ("柴房烧起来了", filed
    # as help) during a notice about a power cut was told to the officer as that notice's clue.
    about_the_sought = (
        ticket.category == "help"
        and _SEEKS_SOMEONE.search(normalise(alert_text)) is not None
        and _ANY_PERSON.search(normalise(ctx.event.text)) is not None
    )
    if overlap >= SAME_MATTER / 2 or about_the_sought:
        ticket.alert_id = alert.id
        ticket.category = "help"  # a clue for the alert, as alert_replies files them
        # Priority 1: right after the P0 page intake queues next, ahead of everything else.
        await tell_officer_of_clue(ctx, ticket, alert, priority=1)


async def tell_officer_of_clue(
    ctx: HandlerContext, ticket: Ticket, alert: Alert, *, priority: int
) -> None:
    """Tell the officer who has ``ticket`` that it answers urgent notice N, and what that
    notice seeks, so that the clue is not handled as an ordinary matter. Intake's own notice of
    the ticket is left as it is; ``priority`` places this line right after it."""
    officer = await holder_of(ctx.session, ticket)
    if officer is None:
        return
    sought = clip(ctx.runtime.cipher.decrypt(alert.text_enc) or "", 80)
    Out.of(ctx).to_officer(
        officer,
        ctx.text("officer_alert_clue", code=ticket.code, id=alert.id, alert=sought),
        priority=priority,
    )
