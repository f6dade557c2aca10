"""``lianxin purge [--dry-run]``: blank texts older than ``retention.*`` days
(bot/services/purge.py).

Wired into ``bot.cli.build_parser`` with ``register(sub)``.
"""

from __future__ import annotations

import argparse
import asyncio

from bot.cli_people import _settings_and_cipher


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``purge``; calling it twice adds nothing twice."""
    if "purge" in subparsers.choices:
        return
    purge = subparsers.add_parser(
        "purge",
        help="blank journal, outbox and closed-ticket texts older than retention.* days",
    )
    purge.add_argument("--dry-run", action="store_true", help="count what would go, change nothing")
    purge.add_argument("--config", default=argparse.SUPPRESS)
    purge.set_defaults(func=cmd_purge)


def cmd_purge(args: argparse.Namespace) -> int:
    """Print one line per kind: how many rows were (or, dry, would be) blanked."""
    from bot.clock import SystemClock
    from bot.db import make_engine, make_sessions
    from bot.services.purge import purge

    # The blanks are ciphertexts of the empty text: the PII key is needed, as for rotation.
    # Refuses a missing or unmigrated database, as every command but serve and db upgrade.
    settings, cipher = _settings_and_cipher(args)
    retention = settings.retention
    if not retention.configured:
        print(
            "nothing to purge: no retention.journal_days, outbox_days or closed_ticket_days "
            "is set (config.yaml, docs/operations.md)"
        )
        return 0

    async def run() -> int:
        engine = make_engine(settings.database.url)
        try:
            report = await purge(
                make_sessions(engine),
                cipher,
                retention,
                SystemClock().now(),
                dry_run=args.dry_run,
            )
        finally:
            await engine.dispose()
        for line in report.lines():
            print(line)
        if args.dry_run:
            print("dry run: nothing was changed")
        return 0

    return asyncio.run(run())
