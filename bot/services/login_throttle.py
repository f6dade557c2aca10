"""The console's sign-in throttle by client address, beside the per-account lock-out.

The lock-out (five failures lock one account) does nothing against one address trying a few
passwords on each of many usernames. So failed sign-ins are also counted per address (an IPv6
address by its /64, which one subscriber usually holds whole) over the last
``console.login_window_s``, rolling: in fifteen buckets of a fifteenth of it each (a minute of
the default fifteen). Past ``console.login_failures_per_address`` the address may not try
again until enough of its failures have aged out. Fixed windows let an attacker try twice the
limit across a window's end, and made a blocked address wait anything from nothing to a whole
window. A throttled attempt is refused before its password is
looked at: no argon2 work, no failure counted against the account, so one address can no
longer lock out many accounts either.

Counted in ``rate_counters`` (bot/rate_limits.py) under keys of their own (``login:…``), so
every instance sees the same count; the chat's limits never read them. The address is kept
in the key only as a keyed hash.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services import rate_limits
from bot.settings import ConsoleSettings


@dataclass(frozen=True)
class Throttle:
    """Whether an address may try to sign in now. ``until``: when it may try again;
    ``first_this_minute``: the first refused attempt of this minute (the one audited)."""

    throttled: bool
    until: datetime
    first_this_minute: bool = False


def _address(ip: str | None) -> str:
    """What is counted: an IPv4 address, an IPv6 address's /64, or the string as it came."""
    if not ip:
        return "-"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


_BUCKETS = 15


def _bucket_s(settings: ConsoleSettings) -> int:
    return max(1, settings.login_window_s // _BUCKETS)


def _buckets(settings: ConsoleSettings, now: datetime) -> list[int]:
    """The buckets the last ``login_window_s`` covers, oldest first (the current one last)."""
    size = _bucket_s(settings)
    current = int(now.timestamp()) // size
    span = -(-settings.login_window_s // size)  # buckets per window, rounded up
    return list(range(current - span + 1, current + 1))


def _aged_out(settings: ConsoleSettings, bucket: int) -> datetime:
    """When a failure counted in ``bucket`` no longer counts."""
    size = _bucket_s(settings)
    span = -(-settings.login_window_s // size)
    return datetime.fromtimestamp((bucket + span) * size, UTC)


def _key(cipher: PiiCipher, ip: str | None, kind: str, window: int) -> str:
    return f"login:{kind}:{cipher.lookup_hash(f'login:{_address(ip)}')[:40]}:{window}"


async def _failures(
    session: AsyncSession,
    cipher: PiiCipher,
    settings: ConsoleSettings,
    ip: str | None,
    now: datetime,
) -> dict[int, int]:
    """The address's failures by bucket, over the last window."""
    keys = {_key(cipher, ip, "f", b): b for b in _buckets(settings, now)}
    counts = await rate_limits.peek_many(session, list(keys), now)
    return {keys[k]: n for k, n in counts.items()}


async def check(
    session: AsyncSession,
    *,
    cipher: PiiCipher,
    settings: ConsoleSettings,
    ip: str | None,
    now: datetime,
) -> Throttle:
    """Whether ``ip`` is over its failures for the last window; ``until``: when enough of them
    will have aged out. A refused attempt is noted so that only the first one of each minute
    is audited (a flood must not flood the log)."""
    by_bucket = await _failures(session, cipher, settings, ip, now)
    total = sum(by_bucket.values())
    limit = settings.login_failures_per_address
    if total < limit:
        return Throttle(False, now + timedelta(seconds=settings.login_window_s))
    until = now
    for bucket in sorted(by_bucket):
        total -= by_bucket[bucket]
        until = _aged_out(settings, bucket)
        if total < limit:
            break
    minute = int(now.timestamp()) // 60
    noted = await rate_limits.count(
        session, [(_key(cipher, ip, "n", minute), now + timedelta(minutes=2))]
    )
    return Throttle(True, until, first_this_minute=next(iter(noted.values())) == 1)


async def count_failure(
    session: AsyncSession,
    *,
    cipher: PiiCipher,
    settings: ConsoleSettings,
    ip: str | None,
    now: datetime,
) -> None:
    """Count a failed sign-in from ``ip`` (in the same transaction as its audit row)."""
    bucket = _buckets(settings, now)[-1]
    key = _key(cipher, ip, "f", bucket)
    await rate_limits.count(session, [(key, _aged_out(settings, bucket))])
