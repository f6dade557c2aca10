"""What a running server shows a stranger (issue 12, finding 7): no banner naming the server
software, security headers on every answer, the API page only for admins (except in the demo),
and a SQLite database only its owner can read.

The server tests start the real ``lianxin serve`` and ``lianxin demo`` processes on loopback:
uvicorn's banner and the file modes are only visible there.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text

from bot.db import make_engine
from tests.serving import free_port, running

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(folder: Path, pattern: str = "lianxin.db*") -> dict[str, int]:
    """The permission bits of the database's files in ``folder``."""
    return {p.name: _mode(p) for p in folder.glob(pattern)}


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    # With the usual umask SQLite made them 0644: every local account could copy the ids, times
    # and statuses in clear (and the ciphertexts, for later).
    path = tmp_path / "lianxin.db"
    with _umask(0o022):
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (x INTEGER)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
            files = _modes(tmp_path)
        finally:
            await engine.dispose()
    assert set(files) >= {"lianxin.db", "lianxin.db-wal", "lianxin.db-shm"}, files
    assert files == dict.fromkeys(files, 0o600), {k: oct(v) for k, v in files.items()}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANXIN")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def _assert_hardened(r: httpx.Response, *, html: bool) -> None:
    assert "server" not in r.headers, r.headers  # uvicorn's banner
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    if html:
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_serve_shows_no_banner_keeps_its_api_page_and_its_files_private(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'lianxin.db'}\n")
    env = _env(LIANXIN__SECURITY__PII_KEY=base64.b64encode(os.urandom(32)).decode())
    with _umask(0o022), running(["serve", "--config", str(config)], tmp_path, env) as (base, _):
        health = httpx.get(f"{base}/healthz")
        _assert_hardened(health, html=False)
        for path in ("/docs", "/openapi.json"):
            refused = httpx.get(f"{base}{path}")
            assert refused.status_code == 401, path
            _assert_hardened(refused, html=False)
        modes = _modes(tmp_path)
    # No public address for uploads: said once at start, not only in each bulletin's preview.
    said = (tmp_path / "server.log").read_text()
    assert said.count("bulletins.public_base_url is not set") == 1, said
    assert set(modes) >= {"lianxin.db", "lianxin.db-wal", "lianxin.db-shm"}, modes
    assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}


def test_serve_warns_of_officers_no_configured_channel_reaches(tmp_path: Path) -> None:
    # Found by a newcomer: with no bridge, every P1 page to a wxid_… officer went to the
    # Official Account's API, which refuses any id that is no OpenID (errcode 40003).
    import subprocess
    import sys

    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'lianxin.db'}\n")
    env = _env(LIANXIN__SECURITY__PII_KEY=base64.b64encode(os.urandom(32)).decode())
    directory = ROOT / "tests" / "data" / "directory.yaml"
    upgraded = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade", "--config", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    loaded = subprocess.run(
        [sys.executable, "-m", "bot", "directory", "load", str(directory), "--config", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    with running(["serve", "--config", str(config)], tmp_path, env):
        pass
    said = (tmp_path / "server.log").read_text()
    assert said.count("no bridge is configured and 5 officer(s)") == 1, said
    assert "off-wang" in said


def test_a_second_serve_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    # Found by a newcomer: both said "scheduler": "leader" on /readyz; SQLite has no election.
    import subprocess
    import sys

    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'lianxin.db'}\n")
    env = _env(LIANXIN__SECURITY__PII_KEY=base64.b64encode(os.urandom(32)).decode())
    with running(["serve", "--config", str(config)], tmp_path, env):
        port = str(free_port())
        second = subprocess.run(
            [sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", port],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert second.returncode == 2, second.stderr
    assert "another `lianxin serve` is using" in second.stderr
    assert str(tmp_path / "lianxin.db") in second.stderr


def test_demo_shows_no_banner_and_its_api_page_is_open(tmp_path: Path) -> None:
    with running(["demo"], tmp_path, _env()) as (base, _):
        page = httpx.get(f"{base}/simulator")
        assert page.status_code == 200
        _assert_hardened(page, html=True)
        docs = httpx.get(f"{base}/docs")  # the demo is for newcomers: no token needed
        assert docs.status_code == 200
        _assert_hardened(docs, html=True)
        assert "/api/v1/tickets" in httpx.get(f"{base}/openapi.json").json()["paths"]
