"""The console's sign-in throttle by client address, beside the per-account lock-out.

The lock-out (five failures lock one account) does nothing against one address trying a few
passwords on each of many usernames. So failed sign-ins are also counted per address (an IPv6
address by its /64, which one subscriber usually holds whole) in fixed windows of
``console.login_window_s``; past ``console.login_failures_per_address`` the address may not
try again until its window ends. A throttled attempt is refused before its password is
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
    """Whether an address may try to sign in now. ``until``: when its window ends;
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


def _window(settings: ConsoleSettings, now: datetime) -> tuple[int, datetime]:
    index = int(now.timestamp()) // settings.login_window_s
    return index, datetime.fromtimestamp((index + 1) * settings.login_window_s, UTC)


def _key(cipher: PiiCipher, ip: str | None, kind: str, window: int) -> str:
    return f"login:{kind}:{cipher.lookup_hash(f'login:{_address(ip)}')[:40]}:{window}"


async def check(
    session: AsyncSession,
    *,
    cipher: PiiCipher,
    settings: ConsoleSettings,
    ip: str | None,
    now: datetime,
) -> Throttle:
    """Whether ``ip`` is over its failures for this window; a refused attempt is noted so
    that only the first one of each minute is audited (a flood must not flood the log)."""
    window, until = _window(settings, now)
    failures = await rate_limits.peek(session, _key(cipher, ip, "f", window), now)
    if failures < settings.login_failures_per_address:
        return Throttle(False, until)
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
) -> int:
    """Count a failed sign-in from ``ip`` (in the same transaction as its audit row); returns
    the address's failures in this window."""
    window, until = _window(settings, now)
    key = _key(cipher, ip, "f", window)
    return (await rate_limits.count(session, [(key, until)]))[key]
