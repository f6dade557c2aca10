"""The ``lianxin`` command line (CONTRACT §1)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import bot
from bot.cli_accounts import register as register_accounts
from bot.cli_bulletins import register as register_bulletins
from bot.cli_classify import register as register_classify
from bot.cli_common import (
    in_transaction,
    port_problem,
    settings_of,
    setup_logging,
    unopened_refusal,
    when,
)
from bot.cli_people import register as register_people
from bot.cli_purge import register as register_purge
from bot.cli_report import register as register_report

if TYPE_CHECKING:
    pass

T = TypeVar("T")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.channels.sms import sms_warnings
    from bot.cli_database import hold_sqlite_alone, migrate_database, refuse_a_misplaced_database
    from bot.wiring import build_runtime

    settings = settings_of(args)
    problem = port_problem(args.host, args.port)
    if problem:
        print(f"lianxin: {problem}", file=sys.stderr)
        return 2
    setup_logging(settings.server.log_level)
    for warning in [*sms_warnings(settings), *settings.startup_warnings()]:
        logging.getLogger("lianxin").warning("%s", warning)
    refuse_a_misplaced_database(settings, getattr(args, "config", None))
    alone = hold_sqlite_alone(settings.database.url)  # noqa: F841 (held until the process ends)
    before, after = migrate_database(settings, getattr(args, "config", None))
    if before != after:
        log = logging.getLogger("lianxin")
        log.info("database upgraded from %s to %s", before or "empty", after)
    runtime = build_runtime(settings)
    unopened = asyncio.run(_checks_at_start(runtime))
    if unopened:
        print(f"lianxin: {unopened_refusal(unopened)}", file=sys.stderr)
        return 2
    app = create_app(runtime, processor_command=_processor_command(settings))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.server.log_level.lower(),
        access_log=False,
        server_header=False,  # no "server: uvicorn" banner telling a scanner what to try
        # Forwarded headers are believed only from server.trusted_proxies (bot/app.py), not
        # from uvicorn's default 127.0.0.1 or $FORWARDED_ALLOW_IPS.
        proxy_headers=False,
    )
    return 0


def _processor_command(settings: Any) -> list[str] | None:
    """The argv of the processing process (bot/processor_process.py), None without one. It
    gets this process's settings over its socket, not from the config file."""
    if not settings.inbound.separate_process:
        return None
    return [sys.executable, "-m", "bot.processor_process"]


async def _checks_at_start(runtime: Any) -> list[str]:
    """What ``serve`` reads of the database before it starts: warns of officers no configured
    channel reaches, and returns the encrypted columns the configured keys cannot open."""
    from bot.services.directory import officers_out_of_reach
    from bot.services.keyrotation import unopened_columns

    try:
        async with runtime.sessions() as session:
            unreachable = await officers_out_of_reach(session, runtime.senders)
        if unreachable:
            logging.getLogger("lianxin").warning(
                "no bridge is configured and %d officer(s) have a wechat_id that is no Official "
                "Account OpenID (%s): nothing reaches them, P1 pages included; give them the "
                "OpenID they follow the account with, or configure bridge.send_url",
                len(unreachable),
                ", ".join(unreachable[:10]) + (" …" if len(unreachable) > 10 else ""),
            )
        return await unopened_columns(runtime.sessions, runtime.cipher)
    finally:
        # The server's event loop is another one: leave no connection bound to this one.
        await runtime.engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from bot.cli_database import migrate_database, refuse_a_misplaced_database

    settings = settings_of(args, require_secrets=False)
    refuse_a_misplaced_database(settings, getattr(args, "config", None))
    before, after = migrate_database(settings, getattr(args, "config", None))
    if before == after:
        print(f"database already at the latest revision ({after})")
    else:
        print(f"database upgraded from {before or 'empty'} to {after}")
    return 0


def cmd_directory_load(args: argparse.Namespace) -> int:
    from bot.services.directory import DirectoryError, load_directory_file
    from bot.services.directory_changes import load_noting_undone

    try:
        cipher = _cipher_if_configured(args)
        summary, undone = in_transaction(
            args,
            lambda s: load_noting_undone(
                s, lambda: load_directory_file(s, Path(args.file), cipher=cipher)
            ),
            # Officers' phone numbers: stored with this key beside those of another, they
            # could not all be read again.
            cipher=cipher,
        )
    except DirectoryError as exc:
        print(f"lianxin: nothing loaded: {exc}", file=sys.stderr)
        return 1
    print(
        f"directory loaded: {summary.stations} stations, {summary.officers} officers, "
        f"{summary.groups} groups, {summary.roster} roster entries"
    )
    for warning in summary.warnings:
        print(f"lianxin: warning: {warning}", file=sys.stderr)
    for change in undone:
        print(f"lianxin: note: {_undone(change)}", file=sys.stderr)
    return 0


def _undone(change: Any) -> str:
    """A console edit that a load replaced, in words (a directory_changes.Change)."""
    at, username = change.console_edit
    row = change.before or change.after or {}
    what = (
        f"the roster of station {row.get('station')}"
        if change.section == "roster"
        else f"the officer of group {change.key}"
    )
    return f"replaced a console edit of {what} (by {username} at {at:%Y-%m-%d %H:%M} UTC)"


def _cipher_if_configured(args: argparse.Namespace) -> Any:
    """The PII cipher when ``security.pii_key`` is set (officers' phone numbers), else None."""
    from bot.pii import PiiCipher
    from bot.settings import decode_key, secret_value

    security = settings_of(args, require_secrets=False).security
    if not secret_value(security.pii_key):
        return None
    try:
        return PiiCipher(
            decode_key(secret_value(security.pii_key)),
            [decode_key(secret_value(k)) for k in security.pii_previous_keys],
        )
    except ValueError as exc:
        print(f"lianxin: security.pii_key: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_token_create(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.services.tokens import TokenError, create_token

    now = SystemClock().now()
    try:
        token = in_transaction(
            args, lambda s: create_token(s, role=args.role, name=args.name or "", now=now)
        )
    except TokenError as exc:
        print(f"lianxin: nothing created: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from bot.services.tokens import list_tokens

    tz = settings_of(args, require_secrets=False).tz

    async def rows(session: Any) -> list[str]:
        return [
            f"{t.id}\t{t.role}\t{t.name or '-'}\tcreated {when(t.created_at, tz)}"
            + (f"\trevoked {when(t.revoked_at, tz)}" if t.revoked_at else "")
            for t in await list_tokens(session)
        ]

    lines = in_transaction(args, rows)
    print("\n".join(lines) if lines else "no tokens")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.services.tokens import revoke_token

    now = SystemClock().now()
    if not in_transaction(args, lambda s: revoke_token(s, args.id, now=now)):
        print(f"lianxin: no live token {args.id} (see `lianxin token list`)", file=sys.stderr)
        return 1
    print(f"token {args.id} revoked")
    return 0


def cmd_keys_generate(_args: argparse.Namespace) -> int:
    print(base64.urlsafe_b64encode(os.urandom(32)).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="lianxin", description="Lianxin police–resident chatbot")
    parser.add_argument("--config", help="config file (default $LIANXIN_CONFIG or ./config.yaml)")
    # A deployment script checks what it installed before it migrates.
    parser.add_argument("--version", action="version", version=f"lianxin {bot.version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhook server, scheduler and delivery worker")
    serve.add_argument("--config", default=argparse.SUPPRESS)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo", help="the whole product on a throw-away database, with /simulator"
    )
    demo.add_argument("--port", type=_port, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--script", action="store_true", help="play the scripted scenario and exit")
    demo.set_defaults(func=_cmd_demo)

    register_classify(sub)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("--config", default=argparse.SUPPRESS)
    up.set_defaults(func=cmd_db_upgrade)

    directory = sub.add_parser("directory", help="the organisation directory")
    dir_sub = directory.add_subparsers(dest="directory_command", required=True)
    load = dir_sub.add_parser("load", help="load or update the directory from a YAML file")
    load.add_argument("file")
    load.add_argument("--config", default=argparse.SUPPRESS)
    load.set_defaults(func=cmd_directory_load)

    token = sub.add_parser("token", help="API tokens")
    tok_sub = token.add_subparsers(dest="token_command", required=True)
    create = tok_sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", choices=["admin", "officer"], required=True)
    create.add_argument("--name", default="")
    create.add_argument("--config", default=argparse.SUPPRESS)
    create.set_defaults(func=cmd_token_create)
    listing = tok_sub.add_parser("list", help="list tokens (ids, roles, names; never the tokens)")
    listing.add_argument("--config", default=argparse.SUPPRESS)
    listing.set_defaults(func=cmd_token_list)
    revoke = tok_sub.add_parser("revoke", help="revoke a token by its id (from `token list`)")
    revoke.add_argument("id", type=_row_id)
    revoke.add_argument("--config", default=argparse.SUPPRESS)
    revoke.set_defaults(func=cmd_token_revoke)

    keys = sub.add_parser("keys", help="encryption keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="print a new random 32-byte key (base64)")
    gen.set_defaults(func=cmd_keys_generate)
    register_people(sub)
    register_bulletins(sub)
    register_purge(sub)
    register_accounts(sub)
    register_report(sub)
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.script:
        from bot.demo.script import run_script

        return run_script()
    from bot.demo import run_demo

    return run_demo(port=args.port, host=args.host)


def _port(text: str) -> int:
    """A TCP port for argparse: 1–65535, else a one-line usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1–65535, got {port}")
    return port


def _row_id(text: str) -> int:
    """A row id for argparse: a positive number that fits the database's integer column."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"not a token id: {text!r} (see `lianxin token list`)")
    return int(text)


def _database_problem(exc: BaseException) -> str:
    """One line for an unreachable or unusable database, without the password."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"cannot use the database: {reason[0] if reason else type(exc).__name__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lianxin`` console script."""
    from sqlalchemy.exc import DBAPIError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `lianxin classify … | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0
    except (DBAPIError, ConnectionError, TimeoutError) as exc:
        # PostgreSQL down, a wrong password or database name, an SQLite file in a folder that
        # does not exist: an operator's problem to fix, not a traceback to read.
        print(f"lianxin: {_database_problem(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
