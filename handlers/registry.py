"""The handler chain, in order: the first handler that takes an event wins."""

from __future__ import annotations

from bot.dispatcher import Handler
from handlers.greeting import private_greeting


def default_handlers() -> list[Handler]:
    """Handlers for a production runtime."""
    return [private_greeting]
