"""``lianxin demo``: the real server on a throw-away SQLite file with a simulated bridge."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from bot.channels.simulated import SimulatedBridge
from bot.clock import SystemClock
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.pii import PiiCipher
    from bot.runtime import Runtime

T = TypeVar("T")

DEMO_DIRECTORY = Path(__file__).with_name("directory.yaml")


def demo_settings(folder: Path) -> Settings:
    """Settings for a demo: a fresh SQLite file, generated secrets, no outside services."""
    return load_settings(
        None,
        environ={},
        read_file=False,
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'lianxin-demo.db'}"},
            "bridge": {
                "secret": base64.urlsafe_b64encode(os.urandom(24)).decode(),
                "send_url": "http://simulated.invalid/send",
                "send_interval_s": 0,
            },
            "security": {"pii_key": base64.urlsafe_b64encode(os.urandom(32)).decode()},
            "sms": {"provider": "log"},
            # The demo is for newcomers on their own machine: the API page is open to them.
            "server": {"public_docs": True},
        },
    )


async def prepare(settings: Settings) -> None:
    """Migrate the demo database and load the demo directory."""
    from bot.db import make_engine, make_sessions, migrate
    from bot.services.directory import load_directory_file

    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        async with make_sessions(engine).begin() as session:
            await load_directory_file(session, DEMO_DIRECTORY)
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class DemoResident:
    """A made-up resident of every demo group; ``name``/``phone`` set means already verified."""

    sender_id: str
    nickname: str
    name: str | None = None
    phone: str | None = None


DEMO_RESIDENTS = (
    DemoResident("wxid_yang", "楊大爺", "楊德勝", "13912345678"),
    DemoResident("wxid_liu", "劉阿姨", "劉秀英", "13887654321"),
    DemoResident("wxid_zhou", "小周"),  # not verified: try 「實名 周小明 13700001111」 privately
)


def server_settings(folder: Path) -> Settings:
    """Demo settings for the interactive server: bulletins go out at once, day or night, and
    uploads (the console's 公告 form) stay in the demo's temporary folder."""
    settings = demo_settings(folder)
    bulletins = settings.bulletins.model_copy(
        update={
            "quiet_hours": None,
            "daily_cap_per_group": 50,
            "media_dir": str(folder / "media"),
        }
    )
    return settings.model_copy(update={"bulletins": bulletins})


def demo_cipher(settings: Settings) -> PiiCipher:
    """The cipher the runtime will use, for seeding before the runtime exists."""
    from bot.pii import PiiCipher
    from bot.settings import decode_key, secret_value

    return PiiCipher(decode_key(secret_value(settings.security.pii_key)))


async def seed_residents(session: AsyncSession, cipher: PiiCipher, now: datetime) -> None:
    """Members of every demo group, two of them with verified real-name bindings."""
    from sqlalchemy import select

    from models.directory import Group
    from models.people import Binding, GroupMember, Member

    group_ids = list(await session.scalars(select(Group.id)))
    for resident in DEMO_RESIDENTS:
        member = Member(
            channel="bridge",
            sender_id=resident.sender_id,
            nickname_enc=cipher.encrypt(resident.nickname),
            first_seen_at=now,
            last_seen_at=now,
        )
        session.add(member)
        await session.flush()
        if resident.name and resident.phone:
            session.add(
                Binding(
                    member_id=member.id,
                    name_enc=cipher.encrypt(resident.name),
                    phone_enc=cipher.encrypt(resident.phone),
                    phone_hash=cipher.lookup_hash(resident.phone),
                    verified_at=now,
                )
            )
        for group_id in group_ids:
            session.add(GroupMember(group_id=group_id, member_id=member.id, joined_at=now))


@dataclass(frozen=True)
class DemoAccount:
    """A console account of the demo, its password made up at start and printed."""

    username: str
    password: str
    role: str
    who: str


# One console account of each role: the county's admin, the leader of 橋鎮派出所 (趙所長) and
# an officer there (王警官).
DEMO_ACCOUNTS = (
    ("admin", "admin", None, "縣局指揮中心"),
    ("zhao", "leader", "off-zhao", "趙所長"),
    ("wang", "officer", "off-wang", "王警官"),
)


async def seed_accounts(session: AsyncSession, now: datetime) -> list[DemoAccount]:
    """The demo's console accounts, with fresh random passwords."""
    from bot.services.accounts import create_account, generate_password

    made = []
    for username, role, officer, who in DEMO_ACCOUNTS:
        password = generate_password()
        await create_account(
            session,
            username=username,
            password=password,
            role=role,
            officer_id=officer,
            name=who if role == "admin" else "",
            now=now,
        )
        made.append(DemoAccount(username, password, role, who))
    return made


async def prepare_simulator(settings: Settings) -> tuple[str, list[DemoAccount]]:
    """Migrate, load the directory, seed the residents and the console accounts; return a
    new admin API token and the accounts."""
    from bot.db import make_engine, make_sessions
    from bot.demo.seed import seed_month
    from bot.services.tokens import create_token

    await prepare(settings)
    engine = make_engine(settings.database.url)
    now = SystemClock().now()
    try:
        async with make_sessions(engine).begin() as session:
            await seed_residents(session, demo_cipher(settings), now)
            # A month of visits, items, disputes and bulletins: /api/v1/stats is not empty.
            await seed_month(session, demo_cipher(settings), now=now)
            accounts = await seed_accounts(session, now)
            token = await create_token(session, role="admin", name="demo-simulator", now=now)
            return token, accounts
    finally:
        await engine.dispose()


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on its own event loop in a helper thread (works inside a running loop too)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def build_demo_app(folder: Path, *, background: bool = True) -> tuple[FastAPI, Runtime]:
    """The demo server: a fresh database in ``folder``, the simulated bridge, ``/simulator``."""
    from bot.app import create_app
    from bot.web import simulator
    from bot.wiring import build_runtime

    settings = server_settings(folder)
    token, accounts = run_blocking(prepare_simulator(settings))
    clock = SystemClock()
    bridge = SimulatedBridge(clock=clock)
    hub = simulator.SimulatorHub(clock=clock, bridge=bridge, admin_token=token, since=clock.now())
    hub.residents = [
        {"id": r.sender_id, "nickname": r.nickname, "verified": r.name is not None}
        for r in DEMO_RESIDENTS
    ]
    hub.people = {r.sender_id: r.nickname for r in DEMO_RESIDENTS}
    senders: dict[str, Any] = {"bridge": bridge, "sms": simulator.SmsInbox(hub)}
    runtime = build_runtime(settings, clock=clock, senders=senders)
    app = create_app(runtime, background=background)
    # Demo-only state lives on the app, not in the runtime every layer is handed.
    app.state.simulator = hub
    app.state.demo_accounts = accounts
    app.include_router(simulator.router)
    return app, runtime


def print_welcome(
    host: str,
    port: int,
    folder: Path,
    token: str | None,
    accounts: Sequence[DemoAccount] = (),
) -> None:
    """Tell the newcomer where to look."""
    base = f"http://{host}:{port}"
    print(f"Lianxin demo is running: open {base}/simulator", flush=True)
    print(f"  database:  {folder / 'lianxin-demo.db'} (deleted on exit)")
    print(f"  API docs:  {base}/docs   admin token: {token}")
    if accounts:
        print(f"  console:   {base}/console/   sign in as (username / password):")
        for account in accounts:
            line = f"{account.username} / {account.password}   {account.role}, {account.who}"
            print(f"             {line}")
    print("  residents: 楊大爺, 劉阿姨 (verified), 小周 (not yet: 「實名 周小明 13700001111」)")
    print("  officers:  王警官, 李警官, 陳警官; leader 趙所長.  Ctrl+C stops it.")
    print("  a month of made-up visits and items is seeded: as 王警官 try 「待訪」 and")
    print("  「走訪 3組 看望老人」; figures: /api/v1/stats?from=…&to=… (YYYY-MM-DD)", flush=True)


class StopDemo(Exception):
    """Raised by the demo's SIGTERM handler, so the temporary folder is still removed."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopDemo


def serve(app: FastAPI, runtime: Runtime, *, host: str, port: int) -> None:
    """Run uvicorn until Ctrl+C or SIGTERM; open simulator streams end at once on either."""
    import uvicorn

    from bot.web.simulator import hub_of

    found = hub_of(app)
    assert found is not None, "serve() runs the demo app, which has a simulator"
    hub = found  # narrowed, for the class below

    class DemoServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            hub.close_streams()

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=3,
        server_header=False,  # as in `lianxin serve`: no banner naming the server software
    )
    # uvicorn re-raises the signal after its graceful shutdown; these handlers turn it into an
    # exception instead of an abrupt exit, so the caller's clean-up still runs.
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        DemoServer(config).run()
    except (KeyboardInterrupt, StopDemo):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(*, port: int, host: str = "127.0.0.1") -> int:
    """Run the demo server and return an exit code (``lianxin demo --script`` runs
    bot/demo/script.py instead)."""
    from bot.cli_common import port_problem, setup_logging

    problem = port_problem(host, port)
    if problem:
        print(f"lianxin demo: {problem} (try --port)", file=sys.stderr)
        return 2
    setup_logging()
    with tempfile.TemporaryDirectory(prefix="lianxin-demo-") as tmp:
        app, runtime = build_demo_app(Path(tmp))
        print_welcome(
            host,
            port,
            Path(tmp),
            app.state.simulator.admin_token,
            app.state.demo_accounts,
        )
        serve(app, runtime, host=host, port=port)
    print("Lianxin demo stopped; its database is gone.")
    return 0
