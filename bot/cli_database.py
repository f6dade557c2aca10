"""The CLI's guard for commands that work on an existing database.

Only ``db upgrade``, ``serve`` and ``demo`` create or migrate a database. Any other command run
in the wrong folder, or with a forgotten ``--config``, used to create an empty ``lianxin.db``
there and answer as if the county had no data; now it names the database it looked at and what
to run, exits 2 and creates nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from collections.abc import Mapping
from typing import IO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.settings import Settings, config_path, env_name


def database_problem(
    settings: Settings, config: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why the configured database cannot serve a command, or None when it is migrated to
    the newest revision. Never creates a file."""
    from bot.db import current_revision, head_revision, known_revisions, make_engine, sqlite_file

    environ = os.environ if environ is None else environ
    url = settings.database.url
    file = sqlite_file(url)
    where = _where(url)
    origin, advice = _origin(config, environ)
    misplaced = _beside_the_config(url, config, environ)
    if misplaced:
        return f"no database at {where} ({origin}): {misplaced}"
    if file is not None and not file.exists():
        return f"no database at {where} ({origin}): {advice}"

    async def read() -> str | None:
        engine = make_engine(url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        revision = asyncio.run(read())
    except (DBAPIError, OSError, TimeoutError) as exc:
        return f"cannot use the database at {where} ({origin}): {_unreachable(exc, url, advice)}"
    head = head_revision()
    if revision == head:
        return None
    if revision is None:
        return f"the database at {where} ({origin}) was never migrated: {advice}"
    if revision not in known_revisions():
        return _newer(where, origin, revision)
    return (
        f"the database at {where} ({origin}) is at revision {revision}, this version of "
        f"lianxin needs {head}: {advice}"
    )


def _where(url: str) -> str:
    """The database as messages name it: the SQLite file, or the URL without the password."""
    from bot.db import sqlite_file

    file = sqlite_file(url)
    return f"{file.resolve()}" if file else make_url(url).render_as_string(hide_password=True)


def _newer(where: str, origin: str, revision: str) -> str:
    return (
        f"the database at {where} ({origin}) is at revision {revision}, which this version "
        "of lianxin does not know (a newer version migrated it): use that version"
    )


def _beside_the_config(url: str, config: str | None, environ: Mapping[str, str]) -> str | None:
    """What to do when a relative SQLite path finds no database in the current folder but
    there is one beside the config file, or None. The path is taken from the folder the
    command runs in (as SQLite takes it), so ``--config /srv/lianxin/config.yaml`` from
    another folder pointed at another, empty database: the others refused it and told the
    operator to run ``db upgrade``, which made it, and ``serve`` made it on its own and went
    on with a county that had no data, no tokens and no accounts."""
    from bot.db import sqlite_file

    file = sqlite_file(url)
    given = config_path(config, environ)
    if file is None or file.is_absolute() or given is None or file.exists():
        return None
    beside = given.resolve().parent / file
    if beside.resolve() == file.resolve() or not beside.exists():
        return None
    return (
        f"database.url is the relative path {file}, taken from the folder you run lianxin in, "
        f"not from the config file's; the database beside {given} is {beside}: run the "
        f"command in {beside.parent}, or give database.url as an absolute path "
        f"(sqlite+aiosqlite:///{beside})"
    )


def refuse_a_misplaced_database(settings: Settings, config: str | None) -> None:
    """For ``db upgrade`` and ``serve``, which create a missing database: exit 2 with one line
    instead of creating an empty one in the current folder beside the real one in the config
    file's folder (see ``_beside_the_config``)."""
    misplaced = _beside_the_config(settings.database.url, config, os.environ)
    if misplaced:
        where = _where(settings.database.url)
        origin, _ = _origin(config, os.environ)
        print(f"lianxin: no database at {where} ({origin}): {misplaced}", file=sys.stderr)
        raise SystemExit(2)


def migrate_database(settings: Settings, config: str | None) -> tuple[str | None, str | None]:
    """Migrate the configured database (``db upgrade``, ``serve``): the revisions before and
    after. A database this version cannot migrate or reach ends the command with one line
    naming it and where its address came from, exit 2, as the other commands refuse it (was:
    Alembic's traceback, exit 1; or the driver's words alone, such as "unable to open database
    file", which left the operator to guess which database)."""
    from bot.db import UnknownRevisionError, migrate_url, sqlite_file

    url = settings.database.url
    origin, advice = _origin(config, os.environ)
    try:
        return asyncio.run(migrate_url(url))
    except UnknownRevisionError as exc:
        problem = _newer(_where(url), origin, exc.revision)
    except (DBAPIError, OSError, TimeoutError) as exc:
        file = sqlite_file(url)
        if file is not None and not file.parent.is_dir():
            # SQLite creates the file, never its folder, and says only "unable to open".
            reason = f"there is no folder {file.parent.resolve()}: create it, or fix database.url"
        else:
            reason = _unreachable(exc, url, advice)
        problem = f"cannot use the database at {_where(url)} ({origin}): {reason}"
    print(f"lianxin: {problem}", file=sys.stderr)
    raise SystemExit(2)


def _unreachable(exc: BaseException, url: str, advice: str) -> str:
    """The driver's first line, then what to do about it (never the password)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    parsed = make_url(url)
    if reason.startswith("database ") and "does not exist" in reason and parsed.database:
        host = f" -h {parsed.host}" if parsed.host else ""
        user = f" -U {parsed.username}" if parsed.username else ""
        return f"{reason}: create it (`createdb{host}{user} {parsed.database}`), then {advice}"
    if "password" in reason or "authentication" in reason or reason.startswith("role "):
        return f"{reason}: check the user and password in database.url"
    if isinstance(exc, OSError | TimeoutError) or "connect" in reason.lower():
        return f"{reason}: is the database server running, and reachable from here?"
    return reason


def _origin(config: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """Where ``database.url`` came from, and what to run (with the same config)."""
    file = config_path(config, environ)
    if file is None:
        advice = (
            "run `lianxin db upgrade` to create one here, or give this command the --config "
            "of your installation"
        )
    else:
        advice = f"run `lianxin db upgrade --config {file}`"
    if environ.get(env_name("database.url")):
        return f"database.url from ${env_name('database.url')}", advice
    if file is not None:
        return f"settings from {file}", advice
    return "the default: no --config given and no config.yaml in this folder", advice


def require_current_database(settings: Settings, config: str | None) -> None:
    """Exit 2 with a one-line message unless the configured database is ready for use."""
    problem = database_problem(settings, config)
    if problem:
        print(f"lianxin: {problem}", file=sys.stderr)
        raise SystemExit(2)


def hold_sqlite_alone(url: str) -> IO[str] | None:
    """For ``serve`` on SQLite: a lock beside the database file, held while the process lives,
    or exit 2 naming the file when another ``serve`` holds it. Two processes on one SQLite
    file each believed they led the scheduler (SQLite has no election: docs/operations.md);
    on PostgreSQL several serves are the design. None for other databases and ``:memory:``."""
    from bot.db import sqlite_file

    file = sqlite_file(url)
    if file is None or str(file) in ("", ":memory:"):
        return None
    # Owner-only, as the database's own files are; held open until the process exits.
    try:
        lock = os.fdopen(os.open(f"{file}.serve-lock", os.O_RDWR | os.O_CREAT, 0o600), "a+")
    except OSError:
        return None  # no such folder, not writable: opening the database says so, naming it
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        print(
            f"lianxin: another `lianxin serve` is using {file}: SQLite takes one serve "
            "(several share a PostgreSQL database: docs/operations.md)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return lock
