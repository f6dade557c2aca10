"""The last resort for private messages nobody else handled: say who we are and how to get help."""

from __future__ import annotations

from handlers.context import CAPTIONED, HandlerContext


async def private_greeting(ctx: HandlerContext) -> bool:
    """Answer an unhandled private text so a resident is never met with silence."""
    ev = ctx.event
    if ev.kind == "event" and ev.msg_type == "event:subscribe" and ev.is_private:
        # Following the Official Account: what it is for, how to bind, and 110 first.
        ctx.reply(ctx.text("subscribe_welcome"))
        return True
    if ev.kind == "event" and ev.msg_type == "event:click" and ev.is_private:
        # A menu button tapped (我要反映, 联系民警…): with the server in charge of the account
        # WeChat's own menu replies are off, and silence looked like a broken button.
        ctx.reply(ctx.text("private_greeting"))
        return True
    if ev.kind != "message" or not ev.is_private:
        return False
    ctx.reply(ctx.text(_greeting_key(ctx)))
    return True


def _greeting_key(ctx: HandlerContext) -> str:
    """Which greeting: a voice message nobody turned into text, or a photo, video or file
    without words, is told what to send instead (an elder re-sent the voice message after "说明
    情况"); a picture is kept and goes with the words that follow (``media_before``)."""
    ev = ctx.event
    if ev.text.strip():
        return "private_greeting"
    if ev.msg_type == "voice":
        return "private_greeting_voice"
    if ev.msg_type in CAPTIONED and ev.media_url:
        return "private_greeting_media"
    return "private_greeting"
