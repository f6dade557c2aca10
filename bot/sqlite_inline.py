"""SQLite for the async engine without a thread hop per call.

SQLAlchemy's ``sqlite+aiosqlite`` dialect talks to aiosqlite, which runs every call (cursor,
execute, fetch, close, commit) on its own thread and wakes the event loop for each answer. SQLite
itself answers in microseconds, so the hops cost several times the work: a trivial ``SELECT 1``
took 0.48 ms through aiosqlite and 0.07 ms through plain ``sqlite3`` on our machine, and an
inbound event runs a dozen such calls.

This module offers the small part of aiosqlite's interface that SQLAlchemy's adapter uses,
backed by a plain ``sqlite3`` connection called directly on the event loop's thread. It is passed
to ``create_async_engine(async_creator=…)``; the dialect, its SQL and its error handling stay
SQLAlchemy's own. The trade-off: while another *process* holds SQLite's write lock (a CLI
command, a second server, or ``lianxin serve``'s other process: the server writes for console
and API actions, its processing process for everything else), a statement waits in SQLite's
busy handler on the loop's thread, so the whole process pauses for that time (bounded by
``busy_timeout``). Within one process there is no such wait: the engine has a single pooled
connection. PostgreSQL is unaffected.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

# What sqlite3 binds: values by position or by name.
Parameters = Sequence[Any] | Mapping[str, Any]


class InlineCursor:
    """aiosqlite's ``Cursor`` interface over a ``sqlite3.Cursor``, without a thread."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Parameters | None = None) -> InlineCursor:
        """Run one statement."""
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Parameters]) -> InlineCursor:
        """Run one statement for each set of parameters."""
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        """The next row, or None."""
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` rows (the cursor's ``arraysize`` when None)."""
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        """Every remaining row."""
        return self._cursor.fetchall()

    async def close(self) -> None:
        """Close the cursor."""
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue: runs the call at once and settles its future.

    SQLAlchemy's adapter sets ``isolation_level`` by putting ``(future, fn)`` on that queue.
    """

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    """aiosqlite's ``Connection`` interface over a ``sqlite3.Connection``, without a thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        """A new cursor (SQLAlchemy enters it with ``__aenter__``)."""
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Parameters | None = None) -> InlineCursor:
        """Run one statement on a new cursor."""
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        """Commit the current transaction."""
        self._conn.commit()

    async def rollback(self) -> None:
        """Roll back the current transaction."""
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register a SQL function, as ``sqlite3.Connection.create_function``."""
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's forced terminate)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def inline_creator(path: str, *, timeout_s: float) -> Callable[[], Awaitable[InlineConnection]]:
    """An ``async_creator`` for ``create_async_engine`` opening ``path`` with plain sqlite3."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from another thread at exit.
        raw = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False)
        return InlineConnection(raw)

    return connect
