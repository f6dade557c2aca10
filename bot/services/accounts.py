"""Console accounts (CONTRACT §7): created, disabled, enabled, unlocked and given a new
password from the command line; passwords hashed with argon2id; five failed sign-ins in a row
lock an account for 15 minutes.

Only the hash is stored. Verifying one costs about 64 MiB and tens of milliseconds on purpose
(argon2-cffi's RFC 9106 profile), so it runs in a worker thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import name_problem
from bot.services import audit
from models.console import CONSOLE_ROLES, ConsoleAccount, ConsoleSession
from models.directory import Officer

MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" would only cost us CPU
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified against when no account's own hash may be (the username names no account, or
    a disabled or locked one), so that such a name takes as long to refuse as a wrong password
    (no probing for names by timing). Made by ``hasher``, so that it costs what its hashes do.

    Made at the first such sign-in, not at import: hashing takes argon2's 64 MiB for a moment,
    which at import raised every process's peak memory by that much, `serve` included, though
    most never refuse a sign-in (docs/performance.md, "Fan-out, second pass")."""
    return hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored and compared in lower case."""
    return username.strip().lower()


def check_password(password: str) -> None:
    """Raise :class:`AccountError` for a password too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password may have at most {MAX_PASSWORD} characters")


def generate_password() -> str:
    """A random password (16 URL-safe characters, 96 bits) to print once."""
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    """The argon2id hash to store."""
    return _hasher.hash(password)


def _verify(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; with ``stored`` None, the
    same work against the dummy hash, always False (in the worker thread: hashing the dummy
    the first time too)."""
    try:
        if stored is None:
            hasher.verify(_dummy_hash(hasher), password)
            return False
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_account(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    officer_id: str | None = None,
    name: str = "",
    script: str = "hant",
) -> ConsoleAccount:
    """A new account. A leader or an officer must name their directory officer (their
    stations are the account's scope); an admin may, to take tickets as that officer."""
    username = normalise_username(username)
    if not USERNAME.match(username):
        raise AccountError(
            f"username {username!r}: 2 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if role not in CONSOLE_ROLES:
        raise AccountError(f"role {role!r}: one of {', '.join(CONSOLE_ROLES)}")
    if script not in ("hant", "hans"):
        raise AccountError(f"script {script!r}: hant (Traditional) or hans (Simplified)")
    if role != "admin" and not officer_id:
        raise AccountError(f"{role} accounts need --officer ID (their directory officer)")
    if officer_id and await session.get(Officer, officer_id) is None:
        raise AccountError(f"no officer {officer_id!r} in the directory (lianxin directory load)")
    if await session.scalar(select(ConsoleAccount.id).where(ConsoleAccount.username == username)):
        raise AccountError(f"an account {username!r} exists already")
    name = name.strip()
    if problem := name_problem(name, ConsoleAccount.name.type.length or 200):
        raise AccountError(f"--name: {problem}")
    check_password(password)
    account = ConsoleAccount(
        username=username,
        name=name,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        officer_id=officer_id or None,
        script=script,
        failed_logins=0,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account


async def list_accounts(session: AsyncSession) -> list[ConsoleAccount]:
    """Every account, oldest first (disabled ones too)."""
    return list((await session.scalars(select(ConsoleAccount).order_by(ConsoleAccount.id))).all())


async def find_account(session: AsyncSession, username: str) -> ConsoleAccount | None:
    """The account of ``username`` (any case), if any."""
    return await session.scalar(
        select(ConsoleAccount).where(ConsoleAccount.username == normalise_username(username))
    )


async def _end_sessions(session: AsyncSession, account: ConsoleAccount, now: datetime) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.account_id == account.id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def _audit(session: AsyncSession, account: ConsoleAccount, action: str, now: datetime) -> None:
    # The actor is whoever runs the command on the server; the row names the account acted on.
    audit.record(
        session,
        now=now,
        action=action,
        account=account,
        target=f"account:{account.username}",
        detail="lianxin account",
    )


async def disable_account(session: AsyncSession, *, username: str, now: datetime) -> bool:
    """Disable an account and end its sessions (until ``enable``); False when there is no
    such live account."""
    account = await find_account(session, username)
    if account is None or account.disabled_at is not None:
        return False
    account.disabled_at = now
    await _end_sessions(session, account, now)
    _audit(session, account, "account_disabled", now)
    return True


async def enable_account(session: AsyncSession, *, username: str, now: datetime) -> bool:
    """Let a disabled account sign in again, with its password unchanged and no failures
    counted; False when there is no disabled account of that name."""
    account = await find_account(session, username)
    if account is None or account.disabled_at is None:
        return False
    account.disabled_at = None
    account.failed_logins, account.locked_until = 0, None
    _audit(session, account, "account_enabled", now)
    return True


async def unlock_account(session: AsyncSession, *, username: str, now: datetime) -> bool | None:
    """Lift a lock-out and start the count of failures again. True when the account was
    locked, False when it was not (its count still starts again), None when there is no
    such account."""
    account = await find_account(session, username)
    if account is None:
        return None
    was_locked = account.locked_until is not None and account.locked_until > now
    account.failed_logins, account.locked_until = 0, None
    _audit(session, account, "account_unlocked", now)
    return was_locked


async def reset_password(
    session: AsyncSession, *, username: str, password: str, now: datetime
) -> ConsoleAccount:
    """Give an account a new password. Its sessions end at once (whoever knew the old one is
    signed out) and a lock-out is lifted: the usual reason for a reset is a person locked out
    by their own forgotten password. A disabled account stays disabled."""
    check_password(password)
    account = await find_account(session, username)
    if account is None:
        raise AccountError(f"no account {normalise_username(username)!r}")
    account.password_hash = await asyncio.to_thread(hash_password, password)
    account.failed_logins, account.locked_until = 0, None
    await _end_sessions(session, account, now)
    _audit(session, account, "password_reset", now)
    return account


SignInOutcome = Literal["ok", "wrong", "locked", "unknown", "disabled"]


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to. ``locked_now``: this failure locked the account."""

    outcome: SignInOutcome
    account: ConsoleAccount | None
    locked_now: bool = False


async def authenticate(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    now: datetime,
    hasher: PasswordHasher | None = None,
) -> SignIn:
    """Check a username and password, counting failures: the fifth in a row locks the
    account for 15 minutes, during which even the right password fails.

    Every attempt costs the same work, whatever the name: one argon2 verification — against
    the account's hash when it may sign in, against the dummy hash when the name is unknown,
    disabled or locked — or, for a password over :data:`MAX_PASSWORD`, none for any name. So
    the time an answer takes tells nothing the answer does not (docs/console.md).
    ``hasher``: argon2-cffi's hasher to use (``Runtime.passwords``; this module's own when
    None)."""
    hasher = hasher or _hasher
    account = await find_account(session, username)
    may_sign_in = (
        account is not None
        and account.disabled_at is None
        and (account.locked_until is None or now >= account.locked_until)
    )
    verified = False
    if len(password) <= MAX_PASSWORD:
        stored = account.password_hash if account is not None and may_sign_in else None
        verified = await asyncio.to_thread(_verify, hasher, stored, password)
    if account is None or account.disabled_at is not None:
        return SignIn("unknown" if account is None else "disabled", account)
    if account.locked_until is not None:
        if now < account.locked_until:
            return SignIn("locked", account)
        account.locked_until, account.failed_logins = None, 0
    if verified:
        account.failed_logins, account.last_login_at = 0, now
        if hasher.check_needs_rehash(account.password_hash):
            account.password_hash = await asyncio.to_thread(hasher.hash, password)
        return SignIn("ok", account)
    await session.flush()
    # Counted in the database: two failures at the same moment (two instances, two tabs) both
    # count.
    failures = await session.scalar(
        update(ConsoleAccount)
        .where(ConsoleAccount.id == account.id)
        .values(failed_logins=ConsoleAccount.failed_logins + 1)
        .returning(ConsoleAccount.failed_logins)
    )
    if failures is not None and failures >= MAX_FAILURES:
        account.locked_until, account.failed_logins = now + LOCK_FOR, 0
        return SignIn("wrong", account, locked_now=True)
    return SignIn("wrong", account)
