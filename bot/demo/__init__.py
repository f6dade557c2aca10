"""``lianxin demo``: the real server on a throw-away SQLite file with a simulated bridge."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import tempfile
from pathlib import Path

from bot.channels.simulated import SimulatedBridge
from bot.clock import SystemClock
from bot.settings import Settings, load_settings

DEMO_DIRECTORY = Path(__file__).with_name("directory.yaml")


def demo_settings(folder: Path) -> Settings:
    """Settings for a demo: a fresh SQLite file, generated secrets, no outside services."""
    return load_settings(
        None,
        environ={},
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'lianxin-demo.db'}"},
            "bridge": {
                "secret": base64.urlsafe_b64encode(os.urandom(24)).decode(),
                "send_url": "http://simulated.invalid/send",
                "send_interval_s": 0,
            },
            "security": {"pii_key": base64.urlsafe_b64encode(os.urandom(32)).decode()},
            "sms": {"provider": "log"},
        },
    )


async def prepare(settings: Settings) -> None:
    """Migrate the demo database and load the demo directory."""
    from bot.db import make_engine, make_sessions, migrate
    from bot.directory import load_directory_file

    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        async with make_sessions(engine).begin() as session:
            await load_directory_file(session, DEMO_DIRECTORY)
    finally:
        await engine.dispose()


def run_demo(*, port: int, host: str = "127.0.0.1", script: bool = False) -> int:
    """Run the demo server (or, with ``script``, the scripted scenario) and return an exit code."""
    import uvicorn

    from bot.app import create_app
    from bot.cli import setup_logging
    from bot.runtime import build_runtime

    if script:
        print("lianxin demo --script: the scripted scenario is not built yet", file=sys.stderr)
        return 1
    setup_logging()
    with tempfile.TemporaryDirectory(prefix="lianxin-demo-") as tmp:
        settings = demo_settings(Path(tmp))
        asyncio.run(prepare(settings))
        clock = SystemClock()
        bridge = SimulatedBridge(clock=clock)
        runtime = build_runtime(settings, clock=clock, senders={"bridge": bridge})
        runtime.extras["simulated_bridge"] = bridge
        app = create_app(runtime)
        print(f"Lianxin demo on http://{host}:{port}/  (database {settings.database.url})")
        print(f"  API docs:  http://{host}:{port}/docs")
        print(f"  health:    http://{host}:{port}/readyz")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
