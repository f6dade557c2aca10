"""Database engine, sessions and migrations (Alembic, run on the app's own connection)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc, inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.sqlite_inline import InlineConnection, inline_creator

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (about 9 MB with Mako) is imported by the functions that migrate, not here: a server
# started on a database already at the newest revision never needs it (docs/performance.md,
# "Fan-out, second pass").

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "models" / "migrations"
# How long a statement waits for another process's SQLite write lock. The wait pauses the
# server's event loop (statements run inline), so it is short; a longer lock fails the event,
# which the sender retries.
SQLITE_BUSY_S = 5.0


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        # Statements run on the event loop's thread (see bot.sqlite_inline for why and the cost).
        kwargs["async_creator"] = _private_file_first(
            _sqlite_path(url), inline_creator(_sqlite_path(url), timeout_s=SQLITE_BUSY_S)
        )
        # SQLite has one writer. With one pooled connection, requests queue in the pool (fair,
        # cheap) instead of spinning in SQLite's busy handler, which made p99 latency explode.
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("use a file for SQLite: the worker and the web app share it")
    return database


def _private_file_first(
    path: str, connect: Callable[[], Awaitable[InlineConnection]]
) -> Callable[[], Awaitable[InlineConnection]]:
    """``connect``, after creating the database file readable by its owner only.

    SQLite would create it with the process's umask (usually 0644: readable by every local
    account), and gives its -wal and -shm files the database file's mode; the file holds
    ciphertext, but also every id, time and status in clear.
    """

    async def connect_private() -> InlineConnection:
        # Already there: left as it is. Any other failure (no such folder, no permission) is
        # left for the connect below to report as SQLite's own one-line error.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return await connect()

    return connect_private


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_S * 1000)}")
    cursor.close()


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit (handlers read them back)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """An Alembic config pointing at ``models/migrations`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


class UnknownRevisionError(Exception):
    """The database is at a revision this version of the code does not know: a newer version
    migrated it (the software was rolled back). Alembic would say it "can't locate" it."""

    def __init__(self, revision: str) -> None:
        super().__init__(revision)
        self.revision = revision


async def migrate(engine: AsyncEngine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision`` on ``engine``; the revisions before and after.
    Raises :class:`UnknownRevisionError` for a database a newer version migrated."""

    if revision == "head":
        async with engine.connect() as conn:
            stamped = await conn.run_sync(_stamped_revisions)
        head = head_by_reading()
        if head is not None and stamped == [head]:
            return head, head  # nothing to do: Alembic stays unimported

    def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        before = MigrationContext.configure(connection).get_current_revision()
        if before is not None and before not in known_revisions():
            raise UnknownRevisionError(before)
        command.upgrade(cfg, revision)
        return before, MigrationContext.configure(connection).get_current_revision()

    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade)


def _stamped_revisions(connection: Connection) -> list[str]:
    """The revisions in Alembic's version table, without Alembic; none when there is none."""
    if not inspect(connection).has_table("alembic_version"):
        return []
    return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


def head_by_reading() -> str | None:
    """The newest migration, read from the ``revision`` and ``down_revision`` lines of
    ``models/migrations/versions`` without importing Alembic; None unless they form one line
    of descent with a single head (then Alembic itself is asked)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text("utf-8")
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(source)}
        revision, parent = found.get("revision", ""), found.get("down_revision", "None")
        if not re.fullmatch(r"['\"][\w-]+['\"]", revision):
            return None
        revisions.add(revision.strip("'\""))
        if parent != "None":
            if not re.fullmatch(r"['\"][\w-]+['\"]", parent):
                return None  # a merge (a tuple of parents), or something computed
            parents.add(parent.strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def head_revision() -> str | None:
    """The newest migration this version of the code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> set[str]:
    """Every migration this version of the code knows."""
    from alembic.script import ScriptDirectory

    return {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it was never migrated (or is empty)."""

    def _read(connection: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL, None for other databases."""
    return Path(_sqlite_path(url)) if url.startswith("sqlite") else None


async def migrate_url(url: str) -> tuple[str | None, str | None]:
    """Apply migrations to the database at ``url`` with a short-lived engine."""
    engine = make_engine(url)  # for SQLite, no aiosqlite thread left behind when it fails
    try:
        return await migrate(engine)
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


class DatabaseUnavailable(Exception):
    """The database could not take a statement just now (see :func:`unavailable`): nothing of
    it was stored, and the same request may succeed when it is tried again."""


# SQLSTATE classes of a database that is there but not usable now: connection exceptions,
# insufficient resources (too many connections, disk full), operator intervention (a backend
# terminated by pg_terminate_backend, a shutdown, a statement cancelled by its timeout).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57")


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be used (a connection refused, lost or
    killed, a SQLite file that cannot be opened or is locked past the busy timeout, the pool
    exhausted) rather than that a statement of ours was wrong (an integrity error, a bug):
    the first kind is worth a retry, the second fails the same way every time."""
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError | OSError):
        return True
    if isinstance(error, exc.DBAPIError):
        # No statement: it failed while connecting (PostgreSQL refusing connections to the
        # database, or too many of them), before anything of ours ran.
        if error.connection_invalidated or error.statement is None:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        return sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    return False


@contextlib.contextmanager
def reported_unavailable() -> Iterator[None]:
    """Raise :class:`DatabaseUnavailable` (the cause chained) for an error that
    :func:`unavailable` recognises; any other error passes as it is."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as error:
        if unavailable(error):
            raise DatabaseUnavailable(_one_line(error)) from error
        raise


def _one_line(error: BaseException) -> str:
    """The error's first line, without SQLAlchemy's background link (for a log line)."""
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}"[:300]


class FailureRun:
    """How a loop that tries again after every failure (the delivery workers, the inbound
    processor) logs a run of failures: the first with its traceback, then at most one short
    line every ``every_s`` saying it still fails (the error's class and message), and one when
    a pass works again. A database outage logged the full chained traceback of every pass of
    every loop: 43 KB a second with no traffic, drowning the lines an operator watches."""

    def __init__(
        self, logger: logging.Logger, what: str, now: Callable[[], datetime], every_s: float = 60
    ) -> None:
        self._log = logger
        self._what = what
        self._now = now
        self._every = timedelta(seconds=every_s)
        self._since: datetime | None = None  # when the run began; None: the last pass worked
        self._told_at: datetime | None = None
        self._failures = 0
        self._kinds: set[type[BaseException]] = set()

    def failed(self, error: BaseException) -> None:
        """A pass failed with ``error``."""
        now = self._now()
        self._failures += 1
        since = self._since = self._since or now
        # Another kind of error within the run (the database back, a bug behind it) is worth
        # its own traceback once.
        if type(error) not in self._kinds:
            self._kinds.add(type(error))
            self._told_at = now
            self._log.error("%s failed", self._what, exc_info=error)
        elif self._told_at is None or now - self._told_at >= self._every:
            self._told_at = now
            self._log.error(
                "%s still failing: %d failures in %.0f s (%s)",
                self._what,
                self._failures,
                (now - since).total_seconds(),
                _one_line(error),
            )

    def worked(self) -> None:
        """A pass worked: the end of a run of failures, if there was one."""
        if self._since is None:
            return
        self._log.info(
            "%s works again after %d failures in %.0f s",
            self._what,
            self._failures,
            (self._now() - self._since).total_seconds(),
        )
        self._since = self._told_at = None
        self._failures = 0
        self._kinds.clear()
