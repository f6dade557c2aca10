"""CLI commands about people's data: ``households load FILE.csv`` and ``keys rotate``.

Wired into ``bot.cli.build_parser`` with ``register(sub)``, where ``sub`` is the top-level
subparsers action. ``keys rotate`` joins the existing ``keys`` command group.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.cli_common import require_key_opens_data
from bot.cli_database import require_current_database
from bot.pii import PiiCipher
from bot.settings import ConfigError, Settings, decode_key, env_name, load_settings, secret_value


def subparsers_of(
    parser: argparse.ArgumentParser,
) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    """The subparsers action of ``parser``, if it has one (argparse offers no public getter)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``households load`` and ``keys rotate``; calling it twice adds nothing twice."""
    if "households" not in subparsers.choices:
        households = subparsers.add_parser("households", help="the household roster")
        hh_sub = households.add_subparsers(dest="households_command", required=True)
        load = hh_sub.add_parser("load", help="load or update households from a CSV file")
        load.add_argument("file", help="CSV with columns name, mobile, address, group_id")
        load.add_argument("--config", default=argparse.SUPPRESS)
        load.set_defaults(func=cmd_households_load)
    keys = subparsers.choices.get("keys") or subparsers.add_parser("keys", help="encryption keys")
    keys_sub = subparsers_of(keys) or keys.add_subparsers(dest="keys_command", required=True)
    if "rotate" not in keys_sub.choices:
        rotate = keys_sub.add_parser(
            "rotate", help="re-encrypt personal data with security.pii_key (see docs)"
        )
        rotate.add_argument("--batch-size", type=int, default=500)
        rotate.add_argument("--config", default=argparse.SUPPRESS)
        rotate.set_defaults(func=cmd_keys_rotate)


def _fail(message: str, code: int = 2) -> SystemExit:
    print(f"lianxin: {message}", file=sys.stderr)
    return SystemExit(code)


def _settings_and_cipher(args: argparse.Namespace) -> tuple[Settings, PiiCipher]:
    """Settings without channel secrets, but with a usable PII key (every command here reads
    or writes personal data), for a database that exists and is migrated and whose personal
    data the key opens, as ``serve`` checks (else exit 2, creating and changing nothing)."""
    try:
        settings = load_settings(getattr(args, "config", None), require_secrets=False)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    sec = settings.security
    if not secret_value(sec.pii_key):
        key = "security.pii_key"
        raise _fail(f"missing required setting: {key} (env {env_name(key)})")
    try:
        cipher = PiiCipher(
            decode_key(secret_value(sec.pii_key)),
            [decode_key(secret_value(k)) for k in sec.pii_previous_keys],
        )
    except ValueError as exc:
        raise _fail(f"security keys: {exc}") from None
    require_current_database(settings, getattr(args, "config", None))
    require_key_opens_data(settings.database.url, cipher)
    return settings, cipher


def cmd_households_load(args: argparse.Namespace) -> int:
    """``lianxin households load FILE.csv``: all or nothing; errors name the line."""
    from bot.db import make_engine, make_sessions
    from bot.services.households import HouseholdError, load_households_file

    settings, cipher = _settings_and_cipher(args)

    async def run() -> int:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine).begin() as session:
                summary = await load_households_file(session, Path(args.file), cipher)
        except HouseholdError as exc:
            print(f"lianxin: nothing loaded: {exc}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        print(
            f"households loaded: {summary.created} new, {summary.updated} updated, "
            f"{summary.unchanged} unchanged"
        )
        return 0

    return asyncio.run(run())


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """``lianxin keys rotate``: re-encrypt everything with the current key; prints counts."""
    from bot.db import make_engine, make_sessions
    from bot.services.keyrotation import RotationError, rotate_keys

    settings, cipher = _settings_and_cipher(args)
    if args.batch_size < 1:
        raise _fail("--batch-size must be at least 1")

    async def run() -> int:
        engine = make_engine(settings.database.url)
        try:
            summary = await rotate_keys(make_sessions(engine), cipher, batch_size=args.batch_size)
        except RotationError as exc:
            print(f"lianxin: rotation stopped: {exc}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        for line in summary.lines():
            print(line)
        print("done: every ciphertext uses the current key; old keys can be removed")
        return 0

    return asyncio.run(run())
