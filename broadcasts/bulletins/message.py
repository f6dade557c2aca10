"""What a group receives for a bulletin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.messages import Media, OutboundMessage
from bot.runtime import Runtime
from bot.settings import BulletinSettings
from bot.texts import detect_script
from broadcasts.bulletins.targets import channel_for
from models.bulletins import Bulletin
from models.directory import Group

BULLETIN_PRIORITY = 9


def public_url(url: str, options: BulletinSettings) -> str:
    """Uploaded media are served at ``/media/…``; channels need an absolute URL."""
    if url.startswith("/") and options.public_base_url:
        return options.public_base_url.rstrip("/") + url
    return url


def bulletin_message(
    runtime: Runtime, bulletin: Bulletin, group: Group, options: BulletinSettings
) -> OutboundMessage:
    """Exactly what a group receives: the admin's title and text, and the media or cover."""
    return bulletin_messages(runtime, bulletin, options)(group)


def bulletin_messages(
    runtime: Runtime, bulletin: Bulletin, options: BulletinSettings
) -> Callable[[Group], OutboundMessage]:
    """:func:`bulletin_message` for many groups: the text is rendered once, not per group."""
    script = detect_script(bulletin.title + bulletin.text)
    text = runtime.texts.render(
        "bulletin_message", script, title=bulletin.title, text=bulletin.text
    )
    media: Media | None = None
    if bulletin.media:
        m = bulletin.media
        media = Media(m["type"], public_url(m["url"], options), m.get("title"))
    elif bulletin.cover:
        # The bridge contract carries one media item: a cover alone goes as the image.
        media = Media("image", public_url(bulletin.cover, options), bulletin.title)
    cover = public_url(bulletin.cover, options) if bulletin.cover else None

    def for_group(group: Group) -> OutboundMessage:
        extra: dict[str, Any] = {}
        if group.wecom_webhook:
            extra["webhook"] = group.wecom_webhook
            if cover:
                extra["cover"] = cover
        return OutboundMessage(
            channel=channel_for(group),
            text=text,
            group_id=group.id,
            media=media,
            priority=BULLETIN_PRIORITY,
            extra=extra,
        )

    return for_group
