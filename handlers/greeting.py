"""The last resort for private messages nobody else handled: say who we are and how to get help."""

from __future__ import annotations

from bot.dispatcher import HandlerContext


async def private_greeting(ctx: HandlerContext) -> bool:
    """Answer an unhandled private text so a resident is never met with silence."""
    if ctx.event.kind != "message" or not ctx.event.is_private:
        return False
    ctx.reply(ctx.text("private_greeting"))
    return True
