"""``lianxin account create | list | disable | enable | unlock | password``: console accounts
(CONTRACT §1, §7).

``create`` and ``password`` read the password from standard input (one line; typed without
echo at a terminal), or with ``--generate`` make one and print it once. Only its argon2 hash is
kept.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from models.console import CONSOLE_ROLES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``account`` command group."""
    account = subparsers.add_parser("account", help="console accounts (/console/)")
    sub = account.add_subparsers(dest="account_command", required=True)
    create = sub.add_parser(
        "create",
        help="create a console account; the password comes from stdin, or --generate",
    )
    create.add_argument("username")
    create.add_argument("--role", choices=CONSOLE_ROLES, required=True)
    create.add_argument(
        "--officer", help="the directory officer (id) a leader or officer account belongs to"
    )
    create.add_argument("--name", default="", help="how the account signs (default: its officer)")
    create.add_argument(
        "--script",
        choices=("hant", "hans"),
        default="hant",
        help="Traditional (hant, default) or Simplified (hans) characters",
    )
    create.add_argument(
        "--generate", action="store_true", help="make up a password and print it once"
    )
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.set_defaults(func=cmd_account_create)
    listing = sub.add_parser("list", help="list accounts (never passwords)")
    listing.add_argument("--config", default=argparse.SUPPRESS)
    listing.set_defaults(func=cmd_account_list)
    disable = sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("username")
    disable.add_argument("--config", default=argparse.SUPPRESS)
    disable.set_defaults(func=cmd_account_disable)
    enable = sub.add_parser("enable", help="let a disabled account sign in again")
    enable.add_argument("username")
    enable.add_argument("--config", default=argparse.SUPPRESS)
    enable.set_defaults(func=cmd_account_enable)
    unlock = sub.add_parser(
        "unlock", help="lift a lock-out after failed sign-ins and start the count again"
    )
    unlock.add_argument("username")
    unlock.add_argument("--config", default=argparse.SUPPRESS)
    unlock.set_defaults(func=cmd_account_unlock)
    password = sub.add_parser(
        "password",
        help="set a new password (from stdin, or --generate); ends the account's sessions",
    )
    password.add_argument("username")
    password.add_argument(
        "--generate", action="store_true", help="make up a password and print it once"
    )
    password.add_argument("--config", default=argparse.SUPPRESS)
    password.set_defaults(func=cmd_account_password)


def _read_password() -> str:
    """One line from stdin, without its line end; at a terminal, asked for without echo."""
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def _new_password(args: argparse.Namespace, refused: str) -> str | None:
    """The password of ``create`` or ``password``: made up with ``--generate``, else read;
    None (and why, after ``refused``, on stderr) when it is too short or too long."""
    from bot.services.accounts import AccountError, check_password, generate_password

    password = generate_password() if args.generate else _read_password()
    try:
        check_password(password)
    except AccountError as exc:
        print(f"lianxin: {refused}{exc}", file=sys.stderr)
        return None
    return password


def cmd_account_create(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock
    from bot.services.accounts import AccountError, create_account

    password = _new_password(args, "")
    if password is None:
        return 1  # refused input: nothing applied (docs/interfaces.md, exit codes)
    now = SystemClock().now()

    async def work(session: Any) -> str:
        account = await create_account(
            session,
            username=args.username,
            password=password,
            role=args.role,
            officer_id=args.officer,
            name=args.name,
            script=args.script,
            now=now,
        )
        return account.username

    try:
        username = in_transaction(args, work)
    except AccountError as exc:
        print(f"lianxin: nothing created: {exc}", file=sys.stderr)
        return 1
    print(f"account {username} created ({args.role})")
    if args.generate:
        print(f"password: {password}")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction, settings_of, when
    from bot.clock import SystemClock
    from bot.services.accounts import list_accounts
    from models.directory import Officer

    now = SystemClock().now()
    tz = settings_of(args, require_secrets=False).tz

    async def rows(session: Any) -> list[str]:
        lines = []
        for a in await list_accounts(session):
            officer = await session.get(Officer, a.officer_id) if a.officer_id else None
            if a.disabled_at:
                state = f"disabled {when(a.disabled_at, tz)}"
            elif a.locked_until and a.locked_until > now:
                state = f"locked until {when(a.locked_until, tz)}"
            else:
                state = "active"
            last = f"last sign-in {when(a.last_login_at, tz)}" if a.last_login_at else "-"
            who = f"{officer.id} {officer.name}" if officer else (a.officer_id or "-")
            lines.append(f"{a.username}\t{a.role}\t{who}\t{a.script}\t{state}\t{last}")
        return lines

    lines = in_transaction(args, rows)
    print("\n".join(lines) if lines else "no accounts")
    return 0


def _on_account(args: argparse.Namespace, action: Any) -> Any:
    """``await action(session, username=…, now=…)`` in one transaction on the configured
    database, at the system clock's now."""
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock

    now = SystemClock().now()
    return in_transaction(args, lambda s: action(s, username=args.username, now=now))


def _no_account(args: argparse.Namespace, what: str) -> int:
    print(f"lianxin: no {what}{args.username!r} (see `lianxin account list`)", file=sys.stderr)
    return 1


def cmd_account_disable(args: argparse.Namespace) -> int:
    from bot.services.accounts import disable_account

    if not _on_account(args, disable_account):
        return _no_account(args, "active account ")
    print(f"account {args.username} disabled; its sessions are ended")
    return 0


def cmd_account_enable(args: argparse.Namespace) -> int:
    from bot.services.accounts import enable_account

    if not _on_account(args, enable_account):
        return _no_account(args, "disabled account ")
    print(f"account {args.username} enabled; it signs in with its old password")
    return 0


def cmd_account_unlock(args: argparse.Namespace) -> int:
    from bot.services.accounts import unlock_account

    was_locked = _on_account(args, unlock_account)
    if was_locked is None:
        return _no_account(args, "account ")
    if was_locked:
        print(f"account {args.username} unlocked")
    else:
        print(f"account {args.username} was not locked; its count of failed sign-ins starts again")
    return 0


def cmd_account_password(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock
    from bot.services.accounts import AccountError, reset_password

    password = _new_password(args, "password unchanged: ")
    if password is None:
        return 1  # refused input: nothing applied (docs/interfaces.md, exit codes)
    now = SystemClock().now()

    async def work(session: Any) -> bool:
        account = await reset_password(session, username=args.username, password=password, now=now)
        return account.disabled_at is not None

    try:
        disabled = in_transaction(args, work)
    except AccountError as exc:
        print(f"lianxin: password unchanged: {exc}", file=sys.stderr)
        return 1
    print(f"account {args.username}: new password set; its sessions are ended")
    if disabled:
        print(f"(it is disabled: `lianxin account enable {args.username}` to let it sign in)")
    if args.generate:
        print(f"password: {password}")
    return 0
