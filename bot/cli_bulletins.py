"""CLI commands for bulletins: ``lianxin bulletin add FILE``, ``list``, ``pause|resume|cancel ID``.

Wired into ``bot.cli.build_parser`` with ``register(sub)`` (``sub``: the top-level subparsers).
``add`` reads YAML or JSON with the same fields as ``POST /api/v1/bulletins`` and checks them
the same way (unknown groups, a past ``at``, a bad cron), so a file that loads here would have
been accepted by the API and the other way round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.cli_database import require_current_database
from bot.settings import ConfigError, Settings, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bulletin`` command group; calling it twice adds nothing twice."""
    if "bulletin" in subparsers.choices:
        return
    bulletin = subparsers.add_parser("bulletin", help="scheduled safety bulletins")
    sub = bulletin.add_subparsers(dest="bulletin_command", required=True)
    add = sub.add_parser("add", help="schedule a bulletin from a YAML or JSON file")
    add.add_argument("file", help="title, category, text, media?, cover?, targets, schedule")
    add.add_argument("--by", default="cli", help="recorded as the author (default: cli)")
    add.add_argument("--config", default=argparse.SUPPRESS)
    add.set_defaults(func=cmd_bulletin_add)
    ls = sub.add_parser("list", help="list bulletins with status and next due time")
    ls.add_argument("--config", default=argparse.SUPPRESS)
    ls.set_defaults(func=cmd_bulletin_list)
    for action in ("pause", "resume", "cancel"):
        p = sub.add_parser(action, help=f"{action} a bulletin")
        p.add_argument("id", type=int)
        p.add_argument("--config", default=argparse.SUPPRESS)
        p.set_defaults(func=cmd_bulletin_action, action=action)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, for a database that exists and is migrated (else exit 2, creating nothing)."""
    config = getattr(args, "config", None)
    try:
        settings = load_settings(config, require_secrets=False)
    except ConfigError as exc:
        print(f"lianxin: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    require_current_database(settings, config)
    return settings


def read_spec_file(path: Path) -> dict[str, Any]:
    """A bulletin file as a mapping (JSON by extension, else YAML, which also reads JSON)."""
    raw = path.read_text(encoding="utf-8")
    data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ValueError("top level must be a mapping with title, category, text, …")
    return data


def cmd_bulletin_add(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.db import make_engine, make_sessions
    from broadcasts.bulletins import BulletinSpec, Problem, create_bulletin

    settings = _settings(args)
    path = Path(args.file)
    try:
        spec = BulletinSpec.model_validate(read_spec_file(path))
    except FileNotFoundError:
        print(f"lianxin: {path}: no such file", file=sys.stderr)
        return 1
    except (ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, ValidationError):
            lines = [
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            ]
            message = "; ".join(lines)
        else:
            message = str(exc)
        print(f"lianxin: {path}: nothing added: {message}", file=sys.stderr)
        return 1

    async def run() -> tuple[int, datetime | None] | str:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine).begin() as session:
                bulletin = await create_bulletin(
                    session,
                    spec=spec,
                    tz=settings.tz,
                    created_by=f"cli:{args.by}",
                    now=SystemClock().now(),
                    media_dir=settings.bulletins.media_folder,
                )
                return bulletin.id, bulletin.next_run_at
        except Problem as exc:
            return str(exc)
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    if isinstance(result, str):
        print(f"lianxin: {path}: nothing added: {result}", file=sys.stderr)
        return 1
    bulletin_id, next_run = result
    when = next_run.astimezone(settings.tz).isoformat() if next_run else "-"
    print(f"bulletin {bulletin_id} scheduled; next run {when}")
    return 0


def cmd_bulletin_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.db import make_engine, make_sessions
    from models.bulletins import Bulletin

    settings = _settings(args)

    async def run() -> list[Bulletin]:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessions(engine)() as session:
                return list((await session.scalars(select(Bulletin).order_by(Bulletin.id))).all())
        finally:
            await engine.dispose()

    for b in asyncio.run(run()):
        when = b.next_run_at.astimezone(settings.tz).isoformat() if b.next_run_at else "-"
        schedule = b.cron if b.schedule_kind == "cron" else "once"
        print(f"{b.id}\t{b.status}\t{b.category}\t{schedule}\t{when}\t{b.title}")
    return 0


def cmd_bulletin_action(args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.db import make_engine, make_sessions
    from broadcasts.bulletins import Conflict, cancel_bulletin, pause_bulletin, resume_bulletin
    from models.bulletins import Bulletin

    settings = _settings(args)

    async def run() -> str | None:
        engine = make_engine(settings.database.url)
        now = SystemClock().now()
        try:
            async with make_sessions(engine).begin() as session:
                bulletin = await session.get(Bulletin, args.id)
                if bulletin is None:
                    return f"no bulletin {args.id}"
                if args.action == "pause":
                    await pause_bulletin(session, bulletin=bulletin, now=now)
                elif args.action == "resume":
                    await resume_bulletin(session, bulletin=bulletin, tz=settings.tz, now=now)
                else:
                    await cancel_bulletin(session, bulletin=bulletin, now=now)
        except Conflict as exc:
            return str(exc)
        finally:
            await engine.dispose()
        return None

    problem = asyncio.run(run())
    if problem:
        print(f"lianxin: {problem}", file=sys.stderr)
        return 1
    print(f"bulletin {args.id}: {args.action} done")
    return 0
