"""Commands other than ``db upgrade``, ``serve`` and ``demo`` refuse a database that does not
exist or is not migrated: they name the database and what to run, exit 2, and create nothing.

Found by a new admin: ``lianxin bulletin list`` run in another folder without ``--config``
silently created an empty ``lianxin.db`` there and printed nothing.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.cli import main
from bot.db import head_revision, make_engine, migrate
from tests.conftest import BACKENDS, PG_URL

DATA = Path(__file__).parent / "data"
KEY = base64.b64encode(os.urandom(32)).decode()

# Every command that works on an existing database (the files need not exist: the database
# is checked first).
COMMANDS = [
    ["bulletin", "list"],
    ["bulletin", "add", "spec.yaml"],
    ["bulletin", "pause", "1"],
    ["token", "list"],
    ["token", "create", "--role", "admin"],
    ["token", "revoke", "1"],
    ["account", "list"],
    ["account", "create", "ops", "--role", "admin", "--generate"],
    ["account", "disable", "ops"],
    ["directory", "load", str(DATA / "directory.yaml")],
    ["households", "load", "roster.csv"],
    ["keys", "rotate"],
    ["report", "--month", "2026-11"],
]


def run(argv: list[str]) -> int:
    """``lianxin ARGV`` as the console script runs it: the exit code, whichever way it ends."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder as the working directory, with no configuration from the environment."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in list(os.environ):
        if name.startswith("LIANXIN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", KEY)
    return folder


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_command_in_a_folder_without_a_database_refuses_and_creates_nothing(
    elsewhere: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(command) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(f"lianxin: no database at {elsewhere.resolve() / 'lianxin.db'} ")
    assert "no --config given" in err and "`lianxin db upgrade`" in err and "--config" in err
    assert list(elsewhere.iterdir()) == []


def test_the_message_names_the_config_and_the_command_to_run(
    elsewhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "county" / "lianxin.db"
    db.parent.mkdir()
    config = tmp_path / "county.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{db}\n", "utf-8")
    assert run(["--config", str(config), "bulletin", "list"]) == 2
    err = capsys.readouterr().err
    assert f"no database at {db} (settings from {config})" in err
    assert f"run `lianxin db upgrade --config {config}`" in err
    assert not db.exists()
    # Doing what it says is enough.
    assert run(["--config", str(config), "db", "upgrade"]) == 0
    assert run(["--config", str(config), "bulletin", "list"]) == 0


def test_commands_that_need_no_database_still_run_anywhere(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keys", "generate"]) == 0
    assert len(base64.urlsafe_b64decode(capsys.readouterr().out.strip())) == 32
    assert list(elsewhere.iterdir()) == []


@pytest.fixture(params=BACKENDS)
async def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database that exists: an empty SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        path.touch()
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert PG_URL
    name = f"lx_cli_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _previous_of_head() -> str:
    from alembic.script import ScriptDirectory

    from bot.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
    assert head is not None and isinstance(head.down_revision, str)
    return head.down_revision


def test_an_unmigrated_or_stale_database_is_refused_until_upgraded(
    unmigrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LIANXIN__DATABASE__URL", unmigrated_url)
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    assert run(["token", "list"]) == 2
    err = capsys.readouterr().err
    assert "was never migrated" in err and "$LIANXIN__DATABASE__URL" in err
    assert "`lianxin db upgrade`" in err

    # One migration behind, as after installing a new version without upgrading.
    previous = _previous_of_head()

    async def migrate_to_previous() -> None:
        engine = make_engine(unmigrated_url)
        try:
            await migrate(engine, previous)
        finally:
            await engine.dispose()

    asyncio.run(migrate_to_previous())
    assert run(["directory", "load", str(DATA / "directory.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"is at revision {previous}, this version of lianxin needs {head_revision()}" in err
    assert run(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert run(["directory", "load", str(DATA / "directory.yaml")]) == 0
    assert "directory loaded" in capsys.readouterr().out


def test_a_database_from_a_newer_version_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("LIANXIN__DATABASE__URL", url)
    assert run(["db", "upgrade"]) == 0

    async def stamp_unknown() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0001'"))
        await engine.dispose()

    asyncio.run(stamp_unknown())
    capsys.readouterr()
    assert run(["bulletin", "list"]) == 2
    assert "revision f00dfeed0001, which this version of lianxin does not know" in (
        capsys.readouterr().err
    )


def _said(err: str) -> list[str]:
    """What a command said on stderr, without serve's start-up log lines (its warnings)."""
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if not line[:4].isdigit()]


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve"]], ids=" ".join)
def test_db_upgrade_and_serve_refuse_a_database_from_a_newer_version(
    elsewhere: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # After a rollback of the software: both printed Alembic's traceback ("Can't locate
    # revision identified by '0099'") and exited 1.
    db = elsewhere / "lianxin.db"
    assert run(["db", "upgrade"]) == 0

    async def stamp_unknown() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{db}")
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        await engine.dispose()

    asyncio.run(stamp_unknown())
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(a))
    capsys.readouterr()
    port = ["--port", str(_port_nobody_listens_on())] if command == ["serve"] else []
    assert run([*command, *port]) == 2
    out, err = capsys.readouterr()
    assert _said(err) == [
        f"lianxin: the database at {db} (the default: no --config given and no config.yaml in "
        "this folder) is at revision 0099, which this version of lianxin does not know (a "
        "newer version migrated it): use that version"
    ]
    assert out == "" and started == []


@pytest.mark.parametrize("command", [["db", "upgrade"], ["serve"]], ids=" ".join)
def test_db_upgrade_and_serve_name_a_database_they_cannot_use(
    elsewhere: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Both said only "cannot use the database: unable to open database file" (or "file is
    # not a database"), without saying which database.
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served"))
    port = ["--port", str(_port_nobody_listens_on())] if command == ["serve"] else []
    missing = elsewhere / "no-such-folder" / "lianxin.db"
    monkeypatch.setenv("LIANXIN__DATABASE__URL", f"sqlite+aiosqlite:///{missing}")
    assert run([*command, *port]) == 2
    assert _said(capsys.readouterr().err) == [
        f"lianxin: cannot use the database at {missing} (database.url from "
        f"$LIANXIN__DATABASE__URL): there is no folder {missing.parent}: create it, or fix "
        "database.url"
    ]
    junk = elsewhere / "junk.db"
    junk.write_text("not a database\n" * 100, "utf-8")
    config = elsewhere / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{junk}\n", "utf-8")
    monkeypatch.delenv("LIANXIN__DATABASE__URL")
    assert run([*command, *port]) == 2
    assert _said(capsys.readouterr().err) == [
        f"lianxin: cannot use the database at {junk} (settings from config.yaml): "
        "file is not a database"
    ]


def _port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_named_with_what_to_check(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _port_nobody_listens_on()
    monkeypatch.setenv(
        "LIANXIN__DATABASE__URL", f"postgresql+asyncpg://lianxin:s3cret-pw@127.0.0.1:{port}/county"
    )
    assert run(["token", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(
        f"lianxin: cannot use the database at postgresql+asyncpg://lianxin:***@127.0.0.1:{port}/"
        "county (database.url from $LIANXIN__DATABASE__URL): "
    )
    assert "is the database server running" in err and "s3cret-pw" not in err


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_postgresql_database_that_does_not_exist_says_how_to_create_it(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PG_URL
    name = f"lx_nosuch_{uuid.uuid4().hex[:8]}"
    url = make_url(PG_URL).set(database=name)
    monkeypatch.setenv("LIANXIN__DATABASE__URL", url.render_as_string(hide_password=False))
    assert run(["bulletin", "list"]) == 2
    err = capsys.readouterr().err
    assert f'database "{name}" does not exist: create it (`createdb -h {url.host}' in err
    assert f" {name}`), then run `lianxin db upgrade" in err


# --- the PII key: every command on personal data checks it as serve does -----------------------
# Found in a newcomer's trial: with another valid key, `households load` and `directory load`
# wrote rows beside the old ones (then `serve` refused to start), `purge` blanked texts with a
# key nobody had, and `report` died with a traceback.
PERSONAL_DATA_COMMANDS = [
    ["households", "load", str(DATA / "households.csv")],
    ["directory", "load", "phones.yaml"],
    ["purge"],
    ["report", "--month", "2026-11"],
    ["keys", "rotate"],
]


def _dump(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


@pytest.mark.parametrize("command", PERSONAL_DATA_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_command_on_personal_data_refuses_a_key_that_does_not_open_it(
    elsewhere: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An officer's phone number: what `directory load` encrypts.
    phones = (DATA / "directory.yaml").read_text("utf-8")
    phones = phones.replace("id: off-wang,", "id: off-wang, phone: '13800000001',", 1)
    assert "13800000001" in phones
    (elsewhere / "phones.yaml").write_text(phones, "utf-8")
    monkeypatch.setenv("LIANXIN__RETENTION__CLOSED_TICKET_DAYS", "1")
    assert run(["db", "upgrade"]) == 0
    assert run(["directory", "load", str(DATA / "directory.yaml")]) == 0
    assert run(["households", "load", str(DATA / "households.csv")]) == 0
    stored = _dump(elsewhere / "lianxin.db")
    capsys.readouterr()

    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", base64.b64encode(os.urandom(32)).decode())
    assert run(command) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(
        "lianxin: security.pii_key does not open personal data already stored "
        "(households.name_enc, households.phone_enc, households.address_enc): "
    )
    assert "LIANXIN__SECURITY__PII_PREVIOUS_KEYS" in err and "`lianxin keys rotate`" in err
    assert _dump(elsewhere / "lianxin.db") == stored
    assert not list(elsewhere.glob("*.xlsx"))

    # With the key that wrote them listed as a previous one (as while rotating), it runs.
    monkeypatch.setenv("LIANXIN__SECURITY__PII_PREVIOUS_KEYS", f'["{KEY}"]')
    assert run(command) == 0


def test_a_relative_database_beside_the_config_is_named_not_made_again(
    elsewhere: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found by a newcomer: with the shipped ``url: sqlite+aiosqlite:///./lianxin.db`` and
    ``$LIANXIN_CONFIG`` set, ``lianxin token list`` from another folder said to run ``db
    upgrade``, which made a second, empty database there (and ``serve`` made one itself)."""
    county = tmp_path / "county"
    county.mkdir()
    config = county / "config.yaml"
    config.write_text("database:\n  url: sqlite+aiosqlite:///./lianxin.db\n", "utf-8")
    monkeypatch.chdir(county)
    assert run(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("LIANXIN_CONFIG", str(config))
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("served"))
    serve = ["serve", "--port", str(_port_nobody_listens_on())]
    for command in (["token", "list"], ["db", "upgrade"], serve):
        assert run(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"the database beside {config} is {county / 'lianxin.db'}" in err
        assert f"run the command in {county}" in err
    assert list(elsewhere.iterdir()) == []
    # Where the file is, it is used as before.
    monkeypatch.chdir(county)
    assert run(["token", "list"]) == 0
