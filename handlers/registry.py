"""The handler chain, in order: the first handler that takes an event wins.

Officer commands come first (an officer's ``#CODE`` is never a resident's message); the
emergency layer runs before verification, so nothing holds back an emergency; verification
commands come before intake so that ``實名 …`` never becomes a ticket.
"""

from __future__ import annotations

from handlers.alerts_chat import alert_commands, alert_replies
from handlers.context import Handler
from handlers.disputes import dispute_commands
from handlers.greeting import private_greeting
from handlers.intake import emergency_first, intake
from handlers.membership import membership_events
from handlers.officer import officer_commands
from handlers.resident import resident_commands, resident_followups
from handlers.verification import verification_commands
from handlers.visits import visit_commands


def default_handlers() -> list[Handler]:
    """Handlers for a production runtime."""
    return [
        alert_commands,
        dispute_commands,
        visit_commands,  # before officer_commands, which takes every officer message
        officer_commands,
        emergency_first,
        membership_events,
        verification_commands,
        resident_commands,
        alert_replies,
        resident_followups,
        intake,
        private_greeting,
    ]


def when_limited() -> dict[str, list[Handler]]:
    """What still runs for an event over a rate limit: the emergency layer always; in a group
    flooded by many residents (a lost-child notice answered by hundreds), also the answers to
    an alert, so that no sighting is dropped."""
    return {"sender": [emergency_first], "group": [emergency_first, alert_replies]}
