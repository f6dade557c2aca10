"""``lianxin report --month YYYY-MM [--station ID] [--output FILE.xlsx]`` (CONTRACT §1): the
month's report for the bureau as an Excel workbook (bot/services/report.py).

A month like ``2026-13`` or a station that does not exist is a one-line error and exit 2, and
so is a missing or unmigrated database (nothing is created); the workbook is written only when
every figure is in it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.services.stats import StatsInputError, parse_month

if TYPE_CHECKING:
    from openpyxl import Workbook


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``."""
    report = subparsers.add_parser("report", help="the month's report for the bureau (Excel)")
    report.add_argument("--month", required=True, help="YYYY-MM, local time")
    report.add_argument("--station", help="a station id: it and the stations below it")
    report.add_argument("--output", help="the .xlsx file (default lianxin-report-YYYY-MM.xlsx)")
    report.add_argument(
        "--script",
        choices=["hans", "hant"],
        default="hans",
        help="Simplified (default) or Traditional Chinese",
    )
    report.add_argument("--config", default=argparse.SUPPRESS)
    report.set_defaults(func=cmd_report)


def _fail(message: str, code: int = 2) -> int:
    print(f"lianxin: {message}", file=sys.stderr)
    return code


def default_output(month: str, station: str | None) -> Path:
    """``lianxin-report-2026-11.xlsx``, or ``…-2026-11-qiaozhen.xlsx`` for a station."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in station or "")
    return Path(f"lianxin-report-{month}{'-' + safe if safe else ''}.xlsx")


def cmd_report(args: argparse.Namespace) -> int:
    """Write the workbook; exit 2 on a bad month or station, 1 when the file cannot be written."""
    from bot.cli_people import _settings_and_cipher
    from bot.clock import SystemClock
    from bot.db import make_engine, make_sessions
    from bot.services.report import build_report
    from bot.services.stats import make_period
    from bot.texts import Texts

    try:
        first, last = parse_month(args.month)
    except StatsInputError as exc:
        return _fail(f"--month {exc.message}")
    output = Path(args.output) if args.output else default_output(args.month, args.station)
    if output.suffix.lower() != ".xlsx":
        return _fail(f"--output {output}: the report is an Excel workbook, name it *.xlsx")
    if not output.parent.is_dir():
        return _fail(f"--output {output}: no folder {output.parent}")
    settings, cipher = _settings_and_cipher(args)
    today = SystemClock().now().astimezone(settings.tz).date()

    async def run() -> tuple[Workbook, dict[str, Any]] | str:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine)() as session:
                try:
                    period = await make_period(
                        session,
                        timezone=settings.timezone,
                        first=first,
                        last=last,
                        station=args.station,
                    )
                except StatsInputError as exc:
                    return f"--{exc.field} {args.station}: no such station (see the directory)"
                return await build_report(
                    session,
                    cipher=cipher,
                    texts=Texts.load(),
                    timezone=settings.timezone,
                    period=period,
                    script=args.script,
                    generated_at=SystemClock().now(),
                )
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    if isinstance(result, str):
        return _fail(result)
    book, stats = result
    try:
        book.save(output)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc.strerror}", 1)
    print(
        f"report for {first:%Y-%m}{' ' + args.station if args.station else ''} written to "
        f"{output}: {sum(stats['items'].values())} items, {stats['visits']['count']} visits"
    )
    if first > today:
        # Most likely a typo (2099 for 2026): the empty workbook alone would not say so.
        print(
            f"lianxin: warning: {first:%Y-%m} has not begun (today is {today:%Y-%m-%d}): "
            "the report counts nothing",
            file=sys.stderr,
        )
    return 0


__all__ = ["cmd_report", "default_output", "register"]
