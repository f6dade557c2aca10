"""Cutting a long text into the parts a channel accepts, between lines where possible.

WeChat refuses a passive reply or a customer-service text over 2,048 bytes (errcode 45002), and
a WeCom group robot a markdown message over 4,096: an officer's 待辦 list with sixty tickets, or
a long bulletin, would be lost whole. The senders send such a text as several messages instead.
"""

from __future__ import annotations

# WeChat's limit on a text message's content, passive or customer-service (UTF-8 bytes).
WECHAT_TEXT_LIMIT = 2048
# A WeCom group robot's limits on a text and on a markdown message (PROTOCOL-NOTES.md).
WECOM_ROBOT_TEXT_LIMIT = 2048
WECOM_ROBOT_MARKDOWN_LIMIT = 4096


def fits(text: str, limit: int) -> bool:
    """Whether ``text`` is at most ``limit`` bytes in UTF-8."""
    return len(text.encode()) <= limit


def split_text(text: str, limit: int) -> list[str]:
    """``text`` as parts of at most ``limit`` UTF-8 bytes, in order, together holding every
    character: cut at line ends, and only inside a line that alone is too long (then between
    characters, never inside one). A text that fits is one part; an empty text is one part."""
    if fits(text, limit):
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if fits(current + line, limit):
            current += line
            continue
        if current:
            parts.append(current)
        current = ""
        while not fits(line, limit):
            head = line.encode()[:limit].decode("utf-8", "ignore")
            parts.append(head)
            line = line[len(head) :]
        current = line
    if current:
        parts.append(current)
    # A part's trailing newline is the cut itself: the chat shows each part as its own bubble.
    return [p.rstrip("\r\n") or p for p in parts]
