"""What an intent handler gets: :class:`HandlerContext` (the open session, the event, the time,
and ways to answer), and the :data:`Handler` signature the dispatcher calls.

The dispatcher builds one context per event and runs the handlers it was given (the composition
root passes handlers/registry.py's chain); handlers import this module, never the dispatcher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import as_utc
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import Runtime
from bot.texts import Script, detect_script, script_of
from broadcasts.outbox import (
    enqueue,
    urgent_fallback,
)
from handlers.classify import without_ticket_codes
from models.directory import Group, Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import Member

# Messages whose ``text`` is a caption the resident wrote under a photo, a video or a file.
CAPTIONED = ("image", "video", "file")
# How long before a message a photo, video or file its sender sent in the same chat without a
# caption is taken as part of it: people send the picture first, then say what it shows.
MEDIA_BEFORE = timedelta(minutes=5)


# The journal's receiving clock against the channel's: a generous bound for the query only.
_CLOCK_SLACK = timedelta(minutes=10)


def _sent_at(payload: dict[str, Any]) -> datetime | None:
    """When a journaled message was sent, by the channel's clock (None for rows journaled
    before that was kept)."""
    occurred = payload.get("occurred_at")
    return datetime.fromisoformat(occurred) if occurred else None


def classifiable(event: InboundMessage) -> str:
    """The words of ``event`` the classifier judges: the resident's own text or caption, without
    our ticket codes. A location's place name or a link's title rides in ``text`` too: not
    words the resident wrote, so nothing to classify."""
    words = event.text if event.msg_type in ("text", "voice", *CAPTIONED) else ""
    return without_ticket_codes(words)


@dataclass
class HandlerContext:
    """What a handler gets: the open session, the event, the time, and ways to answer."""

    session: AsyncSession
    runtime: Runtime
    event: InboundMessage
    journal_id: int
    group: Group | None
    member: Member
    officer: Officer | None
    now: datetime
    outbox: list[OutboxMessage] = field(default_factory=list)
    # Set when the sender cut the link in this event (註銷實名): their sender id → pseudonym,
    # applied to the passive reply once it is sent in the response (the worker does the same
    # for queued rows through ``extra.pseudonyms``).
    pseudonyms: dict[str, str] = field(default_factory=dict)
    # Whether the sender has an open ticket an officer answered within the follow-up window,
    # when the batch already knows (read for all its senders at once); None: ask.
    answered_lately: bool | None = None
    # Whether the group sender reported an emergency that is still open within the merge
    # window, when the batch already knows (read for its group senders at once); None: ask.
    reported_emergency_lately: bool | None = None
    _classification: Any = None

    def classify(self) -> Any:
        """The classifier's verdict on this message's text, computed once per event.

        Ticket codes (``#A1023``) are ours, not the resident's words: they are left out, or a
        code's letters and digits could sway the verdict on what the resident says."""
        if self._classification is None:
            self._classification = self.runtime.classifier.classify(classifiable(self.event))
        return self._classification

    @property
    def script(self) -> Script:
        """The script the sender wrote in; answers follow it. Text that reads the same in both
        scripts is answered in the script they last wrote in, else that of the group's name,
        else Simplified."""
        written = script_of(self.event.text)
        if written is not None:
            return written
        if self.member.script in ("hant", "hans"):
            return "hant" if self.member.script == "hant" else "hans"
        return detect_script(self.group.name if self.group else "")

    def text(self, key: str, /, **values: Any) -> str:
        """A sentence from texts.yaml in the sender's script."""
        return self.runtime.texts.render(key, self.script, **values)

    def words(self, payload: dict[str, Any] | None = None) -> str:
        """What the resident said, as a ticket keeps it and an officer reads it: the text, and
        under a captioned photo, video or file, where the attachment is (the officer sees it).
        ``payload``: a journaled message's instead of this event's (an item held until its
        writer verified)."""
        ev = self.event
        said, kind, url = ev.text.strip(), ev.msg_type, ev.media_url
        if payload is not None:
            said = (payload.get("text") or "").strip()
            kind, url = payload.get("msg_type") or "text", payload.get("media_url")
        if kind not in CAPTIONED or not url:
            return said
        marker = self._marker(kind, url)
        return f"{said}\n{marker}" if said else marker

    def _marker(self, kind: str, url: str) -> str:
        """Where an attachment is ("[图片] URL"), on one line: no caption in it (the words are
        on the line above, or the attachment came without)."""
        return " ".join(self.text(f"attachment_{kind}", label="", url=url).split())

    async def media_before(self, journal: InboundEvent | None = None) -> list[str]:
        """Where the photos, videos and files are ("[图片] URL") that the sender sent in this
        chat without a caption just before this message (or the journaled ``journal``, an item
        held until its writer verified), nothing with words in between: the picture of the cut
        lock, then "这是我家门口的电动车被人剪了锁". Without them the officer read "这是…"
        with nothing to see (in a group the photo alone reaches nobody)."""
        ev = self.event
        channel, sender, group_id = ev.channel, ev.sender_id, ev.group_id
        before, at = self.journal_id, ev.occurred_at
        if journal is not None:
            channel, sender, group_id = journal.channel, journal.sender_id, journal.group_id
            sent = _sent_at(self.runtime.cipher.decrypt_json(journal.payload_enc))
            before, at = journal.id, sent or as_utc(journal.received_at)
        # Measured between the messages' own times (the channel's clock), not the processing
        # time: a backlog worked through late still pairs a photo with its words.
        since = at - MEDIA_BEFORE - _CLOCK_SLACK
        chat = (
            InboundEvent.group_id.is_(None)
            if group_id is None
            else InboundEvent.group_id == group_id
        )
        rows = await self.session.scalars(
            select(InboundEvent.payload_enc)
            .where(
                InboundEvent.channel == channel,
                InboundEvent.sender_id == sender,
                chat,
                InboundEvent.kind == "message",
                InboundEvent.id < before,
                InboundEvent.received_at >= since,
            )
            .order_by(InboundEvent.id.desc())
            .limit(5)
        )
        markers: list[str] = []
        for blob in rows:
            payload = self.runtime.cipher.decrypt_json(blob) or {}
            kind, url = payload.get("msg_type"), payload.get("media_url")
            if kind not in CAPTIONED or not url or (payload.get("text") or "").strip():
                break
            sent = _sent_at(payload)
            if sent is None or at - sent > MEDIA_BEFORE:
                break
            markers.append(self._marker(kind, url))
        return markers[::-1]

    async def redact_journal(self, text: str) -> None:
        """Keep ``text`` in this event's journal row instead of what the sender wrote (for
        personal data the event must not keep, such as a real-name command)."""
        payload = {**self.event.journal_payload(), "text": text}
        await self.session.execute(
            update(InboundEvent)
            .where(InboundEvent.id == self.journal_id)
            .values(payload_enc=self.runtime.cipher.encrypt_json(payload))
        )

    def send(
        self,
        message: OutboundMessage,
        *,
        not_before: datetime | None = None,
        urgent_for: int | None = None,
    ) -> OutboxMessage:
        """Queue a message in this transaction. ``urgent_for`` names the ticket of an urgent
        message (a safety reply, a P1 page): undelivered in time, the ticket is paged by SMS."""
        row = enqueue(
            self.session,
            message,
            cipher=self.runtime.cipher,
            now=self.now,
            source_event_id=self.journal_id,
            not_before=not_before,
            **urgent_fallback(self.runtime.settings.sms, urgent_for),
        )
        self.outbox.append(row)
        return row

    def reply(
        self,
        text: str,
        *,
        mention: bool = True,
        priority: int = 5,
        urgent_for: int | None = None,
    ) -> OutboxMessage:
        """Answer where the event came from: in its group (@-mentioning the sender) or privately."""
        ev = self.event
        message = OutboundMessage(
            channel=ev.channel,
            text=text,
            group_id=ev.group_id,
            user_id=None if ev.group_id else ev.sender_id,
            mentions=(ev.sender_id,) if ev.group_id and mention else (),
            priority=priority,
        )
        return self.send(message, urgent_for=urgent_for)


Handler = Callable[[HandlerContext], Awaitable[bool]]
