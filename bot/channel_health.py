"""Whether each outgoing channel is up, as the delivery worker sees it.

A run of failures that say nothing about one message (timeouts, 429, 5xx) marks a channel down;
the first success marks it up again. While the bridge is down ``/readyz`` answers 503, urgent
pages go by SMS at once (bot/services/sms_fallback.py) and the operator sees a WARNING in the log.
"""

from __future__ import annotations

import logging

log = logging.getLogger("lianxin.health")


class ChannelHealth:
    """Consecutive send failures per channel; ``down_after`` of them mark it down."""

    def __init__(self, down_after: int = 3) -> None:
        self._down_after = down_after
        self._failures: dict[str, int] = {}
        self._down: set[str] = set()

    def record(self, channel: str, *, ok: bool) -> bool:
        """Note one delivery attempt's outcome on ``channel``; whether it is a success after
        failures (the channel works again: what waits to be tried again on it need not)."""
        if ok:
            revived = self._failures.get(channel, 0) > 0 or channel in self._down
            self._failures[channel] = 0
            if channel in self._down:
                self._down.discard(channel)
                log.info("channel %s is up again", channel)
            return revived
        self._failures[channel] = self._failures.get(channel, 0) + 1
        if self._failures[channel] >= self._down_after and channel not in self._down:
            self._down.add(channel)
            log.warning(
                "channel %s is down: %d deliveries in a row failed",
                channel,
                self._failures[channel],
            )
        return False

    def is_down(self, channel: str) -> bool:
        """Whether ``channel`` is marked down now."""
        return channel in self._down

    def down(self) -> set[str]:
        """The channels marked down now."""
        return set(self._down)

    def mirror(self, down: set[str]) -> None:
        """Take another process's view as this one's: the server's accepting process shows
        (console overview) what its processing process, which sends, has marked down."""
        self._down = set(down)
