"""``lianxin account create | list | disable``: console accounts (CONTRACT §1, §7).

``create`` reads the password from standard input (one line; typed without echo at a
terminal), or with ``--generate`` makes one and prints it once. Only its argon2 hash is kept.
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


def _read_password() -> str:
    """One line from stdin, without its line end; at a terminal, asked for without echo."""
    if sys.stdin.isatty():
        return getpass.getpass("password: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_account_create(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock
    from bot.services.accounts import (
        AccountError,
        check_password,
        create_account,
        generate_password,
    )

    password = generate_password() if args.generate else _read_password()
    try:
        check_password(password)
    except AccountError as exc:
        print(f"lianxin: {exc}", file=sys.stderr)
        return 2
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
        return 2
    print(f"account {username} created ({args.role})")
    if args.generate:
        print(f"password: {password}")
    return 0


def cmd_account_list(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock
    from bot.services.accounts import list_accounts
    from models.directory import Officer

    now = SystemClock().now()

    async def rows(session: Any) -> list[str]:
        lines = []
        for a in await list_accounts(session):
            officer = await session.get(Officer, a.officer_id) if a.officer_id else None
            if a.disabled_at:
                state = f"disabled {a.disabled_at:%Y-%m-%d %H:%M}"
            elif a.locked_until and a.locked_until > now:
                state = f"locked until {a.locked_until:%Y-%m-%d %H:%M} UTC"
            else:
                state = "active"
            last = f"last sign-in {a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "-"
            who = f"{officer.id} {officer.name}" if officer else (a.officer_id or "-")
            lines.append(f"{a.username}\t{a.role}\t{who}\t{a.script}\t{state}\t{last}")
        return lines

    lines = in_transaction(args, rows)
    print("\n".join(lines) if lines else "no accounts")
    return 0


def cmd_account_disable(args: argparse.Namespace) -> int:
    from bot.cli_common import in_transaction
    from bot.clock import SystemClock
    from bot.services.accounts import disable_account

    now = SystemClock().now()
    if not in_transaction(args, lambda s: disable_account(s, username=args.username, now=now)):
        print(
            f"lianxin: no active account {args.username!r} (see `lianxin account list`)",
            file=sys.stderr,
        )
        return 1
    print(f"account {args.username} disabled; its sessions are ended")
    return 0
