"""The last resort for private messages nobody else handled: say who we are and how to get help."""

from __future__ import annotations

from handlers.context import HandlerContext


async def private_greeting(ctx: HandlerContext) -> bool:
    """Answer an unhandled private text so a resident is never met with silence."""
    ev = ctx.event
    if ev.kind == "event" and ev.msg_type == "event:subscribe" and ev.is_private:
        # Following the Official Account: what it is for, how to bind, and 110 first.
        ctx.reply(ctx.text("subscribe_welcome"))
        return True
    if ev.kind != "message" or not ev.is_private:
        return False
    ctx.reply(ctx.text("private_greeting"))
    return True
