"""Schedule maths: crontab expressions, first and next due times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from models.bulletins import Bulletin

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_dow(field: str) -> str:
    """Crontab's day-of-week numbers (0 or 7 Sunday, 1 Monday) as names.

    APScheduler 3's ``from_crontab`` passes the field through, and APScheduler counts 0 as
    Monday: "0 9 * * 1" would fire on Tuesdays. Numbers, ranges and steps are expanded to names.
    """
    out: list[str] = []
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        if not any(ch.isdigit() for ch in base) and not step_text:
            out.append(item)  # *, names, name ranges: the same in both
            continue
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = int(base)
            hi = 6 if step_text else lo
        step = int(step_text) if step_text else 1
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            raise ValueError(f"day of week {item!r} is out of range 0-7")
        out.extend(_DOW_NAMES[v] for v in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(out))


def parse_cron(expr: str, tz: ZoneInfo | str = "UTC") -> CronTrigger:
    """A five-field crontab expression as an APScheduler trigger; ValueError names the problem.

    Standard crontab meaning, evaluated in ``tz``. One difference from cron(8): when both day of
    month and day of week are restricted, both must match (APScheduler's rule), not either.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError('must have five fields "m h dom mon dow"')
    try:
        fields[4] = _crontab_dow(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=tz)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not a valid cron expression: {exc}") from None


# The most days each month can have (February: in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _numbers(field: str, lo: int, hi: int) -> set[int] | None:
    """The numbers a crontab field names, or None when it names something else (names)."""
    out: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                a, b = lo, hi
            elif "-" in base:
                a, b = (int(x) for x in base.split("-", 1))
            else:
                a = int(base)
                b = hi if step_text else a
        except ValueError:
            return None
        out.update(range(a, b + 1, step))
    return out


def days_some_months_lack(expr: str) -> list[int]:
    """The days of the month a cron schedule names that some of its months do not have (the
    31st in April, the 30th in February, the 29th in February of three years in four): cron
    skips those months without a word. Empty when every named day comes in every month named."""
    fields = expr.split()
    if len(fields) != 5 or fields[2] == "*":
        return []
    days = _numbers(fields[2], 1, 31)
    months = _numbers(fields[3], 1, 12)
    if days is None or months is None or not months:
        return []
    shortest = min(_MONTH_DAYS[m - 1] for m in months if 1 <= m <= 12)
    leap_only = 2 in months and 29 in days
    return sorted(d for d in days if d > shortest or (d == 29 and leap_only))


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def first_run(bulletin: Bulletin, *, tz: ZoneInfo, at_or_after: datetime) -> datetime | None:
    """The first due time at or after ``at_or_after`` (within start/end), or None."""
    if bulletin.schedule_kind == "at":
        return bulletin.run_at
    assert bulletin.cron is not None
    start = max(at_or_after, bulletin.starts_at or at_or_after)
    fire = parse_cron(bulletin.cron, tz).get_next_fire_time(None, start.astimezone(tz))
    if fire is None or (bulletin.ends_at is not None and fire > bulletin.ends_at):
        return None
    return _utc(fire)


def next_after(bulletin: Bulletin, *, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The due time strictly after ``after``, or None (one-off, or past the end)."""
    if bulletin.schedule_kind == "at":
        return None
    assert bulletin.cron is not None
    trigger = parse_cron(bulletin.cron, tz)
    local = after.astimezone(tz)
    # APScheduler treats ``previous_fire_time`` as done: the answer is strictly later.
    fire = trigger.get_next_fire_time(local, local)
    if bulletin.starts_at is not None and fire is not None and fire < bulletin.starts_at:
        fire = trigger.get_next_fire_time(None, bulletin.starts_at.astimezone(tz))
    if fire is None or (bulletin.ends_at is not None and fire > bulletin.ends_at):
        return None
    return _utc(fire)


def upcoming(bulletin: Bulletin, *, tz: ZoneInfo, count: int = 5) -> list[datetime]:
    """The next ``count`` due times from ``next_run_at`` on (for previews)."""
    out: list[datetime] = []
    t = bulletin.next_run_at
    while t is not None and len(out) < count:
        out.append(t)
        t = next_after(bulletin, tz=tz, after=t)
    return out
