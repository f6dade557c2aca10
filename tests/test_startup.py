"""What a serving process loads at start-up (issue 17: peak memory of the fan-out): libraries
that only some commands use are imported when used, and nothing at start-up takes a large
moment of memory that it then gives back (the high-water mark is what a host must provide)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from bot.db import head_by_reading, head_revision, migrate_url

ROOT = Path(__file__).resolve().parents[1]

# cmd_serve's start-up (bot/cli.py) on a database already migrated, then what it loaded.
_SERVE_START = """
import asyncio, json, sys
import bot.cli
from bot.app import create_app
from bot.db import migrate_url
from bot.settings import load_settings
from bot.wiring import build_runtime

settings = load_settings(sys.argv[1])
asyncio.run(migrate_url(settings.database.url))
app = create_app(build_runtime(settings))
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
print(json.dumps({
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
    "rss_kb": int(status["VmRSS"].split()[0]),
    "peak_kb": int(status["VmHWM"].split()[0]),
}))
"""


def test_the_migrations_head_is_read_without_alembic_as_alembic_reads_it() -> None:
    assert head_by_reading() == head_revision()


def test_serving_loads_no_migration_report_or_password_work_at_start_up(tmp_path: Path) -> None:
    db = tmp_path / "lianxin.db"
    asyncio.run(migrate_url(f"sqlite+aiosqlite:///{db}"))
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{db}\nsms:\n  provider: log\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANXIN")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "LIANXIN__SECURITY__PII_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    out = subprocess.run(
        [sys.executable, "-c", _SERVE_START, str(config)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    started = json.loads(out.splitlines()[-1])
    # Alembic (and its Mako) only when there is something to migrate; openpyxl only for the
    # month's report.
    assert {"alembic", "mako", "openpyxl"} & set(started["modules"]) == set()
    # Hashing the console's dummy password at import took argon2's 64 MiB for a moment.
    assert started["peak_kb"] - started["rss_kb"] < 8 * 1024, started
