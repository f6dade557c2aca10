"""Intake: classify, answer emergencies, open or merge tickets, route them (being written)."""

from __future__ import annotations

from bot.dispatcher import HandlerContext
from models.people import Member
from models.tickets import Ticket


async def release_pending(ctx: HandlerContext, member: Member) -> list[Ticket]:
    """Submit every item held for ``member`` while unverified; returns the tickets made."""
    return []
