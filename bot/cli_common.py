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

    from bot.pii import PiiCipher

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


def in_transaction(
    args: argparse.Namespace,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    cipher: PiiCipher | None = None,
) -> T:
    """Run ``await work(session)`` in one transaction on the configured, migrated database.
    With ``cipher`` (the work reads or writes personal data), the personal data already
    stored must open with it first (:func:`require_key_opens_data`)."""
    from bot.cli_database import require_current_database
    from bot.db import make_engine, make_sessions

    settings = settings_of(args, require_secrets=False)
    require_current_database(settings, getattr(args, "config", None))
    if cipher is not None:
        require_key_opens_data(settings.database.url, cipher)

    async def run() -> T:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def unopened_refusal(columns: list[str]) -> str:
    """The one line refusing a ``security.pii_key`` that does not open ``columns``
    (``table.column``), for ``serve`` and for every command that reads or writes personal
    data."""
    return (
        "security.pii_key does not open personal data already stored "
        f"({', '.join(columns)}): use the key that wrote it, or list that key in "
        "LIANXIN__SECURITY__PII_PREVIOUS_KEYS and run `lianxin keys rotate` "
        "(docs/verification.md)"
    )


def require_key_opens_data(url: str, cipher: PiiCipher) -> None:
    """Exit 2 with :func:`unopened_refusal` unless ``cipher`` opens the personal data already
    stored at ``url`` (a migrated database). A command run with another key would otherwise
    store rows that no later ``serve`` can read beside the old ones (``serve`` then refuses
    to start), blank texts with a key nobody has, or stop half-way with a traceback."""
    from bot.db import make_engine, make_sessions
    from bot.services.keyrotation import unopened_columns

    async def check() -> list[str]:
        engine = make_engine(url)
        try:
            return await unopened_columns(make_sessions(engine), cipher)
        finally:
            await engine.dispose()

    unopened = asyncio.run(check())
    if unopened:
        print(f"lianxin: {unopened_refusal(unopened)}", file=sys.stderr)
        raise SystemExit(2)


def when(at: datetime, tz: tzinfo) -> str:
    """``at`` on the bureau's wall clock (the settings' ``timezone``), offset shown:
    ``2026-12-08 00:51 +0800``. Every time a command prints reads the same way."""
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M %z}"
