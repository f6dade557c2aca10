"""What the ``lianxin`` commands share: settings from ``--config``, logging, a free port, one
transaction on the configured database. Imported by bot/cli.py, the other bot/cli_*.py modules
and the demo, so that none of them imports another's entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

from bot.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def settings_of(args: argparse.Namespace, **kwargs: Any) -> Settings:
    """The settings ``--config`` names; a configuration error ends the command (exit 2)."""
    try:
        return load_settings(getattr(args, "config", None), **kwargs)
    except ConfigError as exc:
        print(f"lianxin: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def setup_logging(level: str = "INFO") -> None:
    """Plain logs on stderr. Message texts and personal data are never passed to a logger."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler reports every run of every job at INFO, Alembic its set-up on every start;
    # their warnings are what matter.
    for name in ("apscheduler", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # httpx logs every request's full URL at INFO, and WeChat's API puts the AppSecret
    # (/cgi-bin/token?secret=…) and the access token in the query string.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, or None when it can."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def in_transaction(args: argparse.Namespace, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``await work(session)`` in one transaction on the configured, migrated database."""
    from bot.cli_database import require_current_database
    from bot.db import make_engine, make_sessions

    settings = settings_of(args, require_secrets=False)
    require_current_database(settings, getattr(args, "config", None))

    async def run() -> T:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def when(at: datetime, tz: tzinfo) -> str:
    """``at`` on the bureau's wall clock (the settings' ``timezone``), offset shown:
    ``2026-12-08 00:51 +0800``. Every time a command prints reads the same way."""
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M %z}"
