"""Time as a dependency: production uses the system clock, tests move a manual one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol

# The years a date typed or loaded by people may have. Whatever reads a local date turns it
# into instants in some time zone and steps from it (the day after, a week either side, a
# night shift into the next morning), and datetime stops at the years 1 and 9999: within
# these years none of that overflows. The API (422), 統計, the console's filters and the
# directory's one-off shifts all refuse the rest with this rule.
FIRST_YEAR, LAST_YEAR = 1971, 9998


def within_years(day: date) -> bool:
    """Whether ``day`` lies within :data:`FIRST_YEAR`–:data:`LAST_YEAR`."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, the scripted demo)."""

    def __init__(self, start: datetime | None = None, *, step: float = 0.0) -> None:
        # ``step`` seconds pass at every reading: a way to make a code path look slow.
        self.step = timedelta(seconds=step)
        start = start or datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        current = self._now
        self._now += self.step
        return current

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or by seconds; returns the new time."""
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to an absolute aware time."""
        self._now = when.astimezone(UTC)


def as_utc(value: datetime) -> datetime:
    """Database drivers may hand back naive datetimes (SQLite); they are stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def since(now: datetime, then: datetime) -> timedelta:
    """Elapsed time, tolerant of naive UTC values read back from SQLite."""
    return as_utc(now) - as_utc(then)
