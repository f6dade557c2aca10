"""Which instance runs the scheduler's jobs: one leader among processes sharing a database.

PostgreSQL: the leader holds a session-level advisory lock (``pg_try_advisory_lock``) on a
connection of its own, kept open for as long as it leads. Every ``interval_s`` seconds each
instance checks: a standby tries to take the lock, the leader makes sure its session still holds
it. When the leader's process dies its connection closes, PostgreSQL releases the lock, and a
standby takes it at its next check. When the leader's connection breaks (the server restarted,
the network dropped it, an operator ended the session), its next check fails: it stops acting as
leader at once and tries again as a standby.

SQLite: one process by design (docs/operations.md), so that process always leads.

Leadership is the outer guard only. The jobs keep their own once-only claims (the conditional
update of a deadline step, the ``job_runs`` row of a digest, a bulletin run's status), which
still hold in the few seconds where a lost leader has not noticed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger("lianxin.leadership")

# The lock every instance asks for: "lianxin" in ASCII and a 1, so pg_locks shows it as
# classid 0x6c69616e, objid 0x78696e01. Advisory locks are per database, so deployments on
# other databases of the same server do not compete.
LOCK_KEY = 0x6C69616E78696E01
DEFAULT_INTERVAL_S = 5.0
DEFAULT_TIMEOUT_S = 10.0
# The server probes an idle lock connection after 10 s and drops it after 3 failed probes 5 s
# apart, or 25 s after an answer it sent went unacknowledged: a leader whose host lost power or
# network frees the lock in about 25 s instead of the operating system's default of minutes to
# hours. A process that exits closes its socket at once.
_SERVER_SETTINGS = {
    "application_name": "lianxin-scheduler-lock",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "25000",
}
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_STILL_HELD = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1)"
)

Role = Literal["leader", "standby"]


class Leadership:
    """This instance's part in the election; ``is_leader`` gates the scheduler's jobs."""

    def __init__(
        self,
        url: str | None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        key: int = LOCK_KEY,
    ) -> None:
        """``url``: the PostgreSQL database to elect on; None for a single process (SQLite).

        ``interval_s`` is how often ``run_forever`` checks, so a standby takes over at most
        that long after the leader's lock is released; ``timeout_s`` bounds one check (a hung
        network counts as a lost connection).
        """
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be positive")
        self.url = url
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.key = key
        self._leader = url is None
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    @classmethod
    def for_url(cls, url: str, *, interval_s: float = DEFAULT_INTERVAL_S) -> Leadership:
        """Elect on PostgreSQL; a SQLite database has one process, which always leads."""
        return cls(None if url.startswith("sqlite") else url, interval_s=interval_s)

    @property
    def is_leader(self) -> bool:
        """True while this instance runs the scheduler's jobs."""
        return self._leader

    @property
    def role(self) -> Role:
        """``leader`` or ``standby``, as ``/readyz`` shows it."""
        return "leader" if self._leader else "standby"

    async def check(self) -> bool:
        """One round of the election: take the lock if free, or confirm it is still held.

        Never raises for a database problem: a failed check means standby (logged when it ends
        a leadership) and the connection is dropped, to be opened afresh next time.
        """
        if self.url is None:
            return True
        try:
            held = await asyncio.wait_for(self._round(), self.timeout_s)
            reason = "the lock is no longer held by this session"
        except Exception as exc:  # a broken or hung connection: not the leader any more
            held = False
            reason = f"lock connection failed: {type(exc).__name__}"
            await self._drop(graceful=False)
            if not self._leader:
                log.debug("scheduler election: %s", reason)
        if held and not self._leader:
            log.info("scheduler leadership gained: deadlines, bulletins and the digest run here")
        elif self._leader and not held:
            log.warning("scheduler leadership lost (%s): scheduled jobs stop here", reason)
        self._leader = held
        return held

    async def run_forever(self) -> None:
        """Check every ``interval_s`` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """Give up leadership (closing the session releases the lock for the others)."""
        if self.url is None:
            return
        was_leader, self._leader = self._leader, False
        await self._drop(graceful=True)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if was_leader:
            log.info("scheduler leadership released")

    async def _round(self) -> bool:
        if self._conn is None:
            self._conn = await self._connect()
        if self._leader:
            hi, lo = divmod(self.key, 1 << 32)
            return bool(await self._conn.scalar(_STILL_HELD, {"hi": hi, "lo": lo}))
        return bool(await self._conn.scalar(_TRY_LOCK, {"key": self.key}))

    async def _connect(self) -> AsyncConnection:
        if self._engine is None:
            assert self.url is not None
            # A connection of its own, outside the app's pool: it stays checked out for as
            # long as this instance leads. Autocommit: a session lock needs no transaction,
            # and an idle open transaction would hold back vacuum.
            self._engine = create_async_engine(
                self.url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
                connect_args={"server_settings": _SERVER_SETTINGS},
            )
        return await self._engine.connect()

    async def _drop(self, *, graceful: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if graceful:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.timeout_s)
                return
        # Broken, hung, or interrupted mid-query: close the socket without a goodbye (the
        # server ends the session, and so releases the lock, when it sees it closed).
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()
