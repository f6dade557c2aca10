"""Retention: ``lianxin purge`` and the scheduler's daily run (issue 12), on SQLite and PostgreSQL.

Rows are made through the real surfaces (bridge events into the ASGI app, the delivery worker
sending to the fake bridge) and aged with the manual clock; the purge then blanks what its
retention keeps no longer and leaves everything else — rows, statuses, times — as it was.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.cli import main as cli_main
from bot.scheduler import build_scheduler
from bot.services.keyrotation import unopened_columns
from bot.services.purge import JOURNAL_BLANK, OUTBOX_BLANK, PurgeReport, purge, retention_purge_job
from bot.settings import ConfigError, load_settings
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import PendingItem
from models.tickets import Ticket, TicketEvent
from tests.fakes import FakeWorld
from tests.harness import DIRECTORY, Harness

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # off-wang's day shift
DAY = 86400
RETENTION = {"journal_days": 30, "outbox_days": 2, "closed_ticket_days": 60}


@pytest.fixture
async def h(db_url: str, world: FakeWorld) -> AsyncIterator[Harness]:
    harness = Harness.build(db_url, world, retention=RETENTION)
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    yield harness
    await harness.close()


def code_in(text: str) -> str:
    match = re.search(r"#([A-Z]\d{4,6})", text)
    assert match, text
    return match.group(1)


async def rows(h: Harness, model: type, *where: Any) -> list[Any]:
    async with h.runtime.sessions() as session:
        return list((await session.scalars(select(model).where(*where).order_by(model.id))).all())


def opened(h: Harness, blob: bytes | None) -> Any:
    return None if blob is None else json.loads(h.runtime.cipher.decrypt(blob) or "null")


async def run(h: Harness, *, dry_run: bool = False) -> PurgeReport:
    rt = h.runtime
    return await purge(
        rt.sessions, rt.cipher, rt.settings.retention, h.clock.now(), dry_run=dry_run
    )


async def seed(h: Harness) -> dict[str, Any]:
    """A closed ticket with a resolution, an open one, a held message, a failed send."""
    await h.bind("wxid_yang", name="楊某某", phone="13912345678", group=GROUP)
    await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    closed = code_in(h.to_group(GROUP)[-1]["text"])
    await h.say(f"#{closed} 已调取监控,请到派出所做笔录", group=None, sender="wxid_wang")
    await h.say(f"结案 #{closed} 车已找回", group=None, sender="wxid_wang")
    await h.sent()
    h.world.state.send_script.extend([400])  # the bridge refuses this one for good
    await h.say("我想问一下居住证怎么办理", group=None, sender="wxid_unverified")
    await h.sent()
    [failed] = await rows(h, OutboxMessage, OutboxMessage.status == "failed")
    h.clock.advance(DAY)
    await h.say("门口的路灯坏了好几天了,晚上很黑", group=GROUP, sender="wxid_yang")
    await h.sent()
    first_event = (await rows(h, InboundEvent))[0]
    return {"closed": closed, "failed": failed.id, "first_event": first_event}


async def test_each_kind_goes_after_its_own_days_and_rows_stay(h: Harness) -> None:
    seeded = await seed(h)
    counts = {m: len(await rows(h, m)) for m in (InboundEvent, OutboxMessage, Ticket, TicketEvent)}
    sent_day0 = [
        r.id
        for r in await rows(h, OutboxMessage, OutboxMessage.status == "sent")
        if r.created_at < MONDAY_10 + timedelta(hours=1)
    ]
    assert sent_day0

    # Day 3: only outbox texts older than 2 days, and not the failed one (WeChat's refused
    # answers are sent again within 7 days). A dry run first: counts, changes nothing.
    h.clock.set(MONDAY_10 + timedelta(days=3))
    dry = await run(h, dry_run=True)
    assert dry.count("outbox_days") == len(sent_day0)
    assert dry.count("journal_days") == dry.count("closed_ticket_days") == 0
    assert all(opened(h, r.payload_enc) != OUTBOX_BLANK for r in await rows(h, OutboxMessage))
    states = {r.id: (r.status, r.sent_at, r.user_id) for r in await rows(h, OutboxMessage)}
    done = await run(h)
    assert done.count("outbox_days") == len(sent_day0)
    for row in await rows(h, OutboxMessage):
        blank = opened(h, row.payload_enc) == OUTBOX_BLANK
        assert blank == (row.id in sent_day0), row.id
        assert (row.echo_hash is None) == blank
        assert (row.status, row.sent_at, row.user_id) == states[row.id]  # the row stays
    assert (await run(h)).count("outbox_days") == 0  # idempotent

    h.clock.set(MONDAY_10 + timedelta(days=8))
    assert (await run(h)).count("outbox_days") > 0
    [failed] = await rows(h, OutboxMessage, OutboxMessage.id == seeded["failed"])
    assert failed.status == "failed" and opened(h, failed.payload_enc) == OUTBOX_BLANK

    # Day 31: the first day's journal payloads go; the second day's stay. The held message of
    # the unverified resident goes with its text.
    [held] = await rows(h, PendingItem)
    assert held.status == "held"
    h.clock.set(MONDAY_10 + timedelta(days=30, hours=12))
    report = await run(h)
    assert report.held_dropped == 1
    [held] = await rows(h, PendingItem)
    assert held.status == "dropped"
    journal = await rows(h, InboundEvent)
    day0 = [e for e in journal if e.received_at < MONDAY_10 + timedelta(hours=1)]
    assert day0 and report.count("journal_days") == len(day0)
    for event in journal:
        payload = opened(h, event.payload_enc)
        assert (payload == JOURNAL_BLANK) == (event in day0)
    first = seeded["first_event"]
    assert (journal[0].dedup_key, journal[0].status, journal[0].sender_id) == (
        first.dedup_key,
        first.status,
        first.sender_id,
    )
    # De-duplication still holds: the bridge repeating the first event changes nothing.
    repeat = h.bridge_body("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    repeat["event_id"] = first.dedup_key
    response = await h.post_bridge(repeat)
    assert response.status_code == 200 and response.json().get("duplicate") is True
    assert len(await rows(h, InboundEvent)) == counts[InboundEvent]

    # Day 61 after closing: the closed ticket's texts go; the open one keeps its own.
    [closed, still_open] = await h.tickets()
    assert closed.code == seeded["closed"] and closed.status == "closed"
    kinds_before = await h.timeline(closed)
    h.clock.set(closed.closed_at + timedelta(days=60, minutes=1))
    report = await run(h)
    assert report.count("closed_ticket_days") >= 1
    [closed, still_open] = await h.tickets()
    cipher = h.runtime.cipher
    assert cipher.decrypt(closed.text_enc) == "" and closed.resolution_enc is None
    assert (closed.status, closed.category, closed.closed_at is not None) == (
        "closed",
        "report",
        True,
    )
    assert await h.timeline(closed) == kinds_before
    assert all(
        e.note_enc is None for e in await rows(h, TicketEvent, TicketEvent.ticket_id == closed.id)
    )
    assert "路灯" in (cipher.decrypt(still_open.text_enc) or "")

    # Nothing was deleted; a second run finds nothing; the key check at start-up is content.
    for model, before in counts.items():
        assert len(await rows(h, model)) == before, model
    again = await run(h)
    assert [k.rows for k in again.kinds] == [0, 0, 0, 0] and again.held_dropped == 0
    assert await unopened_columns(h.runtime.sessions, h.runtime.cipher) == []


async def test_kinds_without_days_are_kept(db_url: str, world: FakeWorld) -> None:
    h = Harness.build(db_url, world, retention={"outbox_days": 2})
    try:
        await h.load_directory()
        h.clock.set(MONDAY_10)
        await seed(h)
        h.clock.set(MONDAY_10 + timedelta(days=400))
        report = await run(h)
        assert report.count("outbox_days") > 0
        assert "journal payloads: kept (retention.journal_days not set)" in report.lines()
        assert all(opened(h, e.payload_enc) != JOURNAL_BLANK for e in await rows(h, InboundEvent))
        assert all(t.resolution_enc is not None or t.status != "closed" for t in await h.tickets())
    finally:
        await h.close()


async def test_batches_cover_every_row(db_url: str, world: FakeWorld) -> None:
    h = Harness.build(db_url, world, retention={**RETENTION, "batch_size": 2})
    try:
        await h.load_directory()
        h.clock.set(MONDAY_10)
        for i in range(7):
            await h.say(f"第{i}条消息", group=GROUP, sender=f"wxid_r{i}")
        h.clock.advance(31 * DAY)
        assert (await run(h)).count("journal_days") == 7
        assert all(opened(h, e.payload_enc) == JOURNAL_BLANK for e in await rows(h, InboundEvent))
    finally:
        await h.close()


async def test_the_scheduled_purge_runs_once_a_day(h: Harness) -> None:
    job = build_scheduler(h.runtime).get_job("retention-purge")
    assert (
        job is not None and str(job.trigger.fields[5]) == "3" and str(job.trigger.fields[6]) == "30"
    )
    await seed(h)
    h.clock.set(MONDAY_10 + timedelta(days=3))
    first = await retention_purge_job(h.runtime)
    assert first is not None and first.count("outbox_days") > 0
    assert await retention_purge_job(h.runtime) is None  # the day is taken (another process)
    h.clock.advance(DAY)
    assert await retention_purge_job(h.runtime) is not None


async def test_no_scheduled_purge_without_retention(harness: Harness) -> None:
    assert build_scheduler(harness.runtime).get_job("retention-purge") is None


def test_cli_purge_on_a_database_file(
    tmp_path: Path,
    world: FakeWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    key = base64.b64encode(os.urandom(32)).decode()
    url = f"sqlite+aiosqlite:///{tmp_path / 'lianxin.db'}"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database:\n  url: {url}\nretention:\n  journal_days: 30\n  outbox_days: 7\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", key)
    assert cli_main(["--config", str(config), "db", "upgrade"]) == 0
    assert cli_main(["--config", str(config), "directory", "load", str(DIRECTORY)]) == 0
    capsys.readouterr()

    async def make_history() -> int:
        # Forty days ago, through the app, on the same file and key as the command uses.
        h = Harness.build(url, world, security={"pii_key": key})
        try:
            h.clock.set(datetime.now(TZ) - timedelta(days=40))
            await h.say("门口的路灯坏了好几天了", group=GROUP, sender="wxid_yang")
            await h.say("你好", group=None, sender="wxid_other")
            await h.drain()
            async with h.runtime.sessions() as session:
                return int(await session.scalar(select(func.count(InboundEvent.id))) or 0)
        finally:
            await h.close()

    events = asyncio.run(make_history())
    assert events == 2
    assert cli_main(["--config", str(config), "purge", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "journal payloads older than 30 days: 2 to blank" in out
    assert "closed tickets' texts: kept (retention.closed_ticket_days not set)" in out
    assert "dry run: nothing was changed" in out
    assert cli_main(["--config", str(config), "purge"]) == 0
    out = capsys.readouterr().out
    assert "journal payloads older than 30 days: 2 blanked" in out
    assert re.search(r"sent outbox texts older than 7 days: [1-9]\d* blanked", out), out
    assert cli_main(["--config", str(config), "purge"]) == 0
    assert "journal payloads older than 30 days: 0 blanked" in capsys.readouterr().out


def test_cli_purge_without_retention_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'x.db'}\n")
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", base64.b64encode(os.urandom(32)).decode())
    assert cli_main(["--config", str(config), "db", "upgrade"]) == 0
    assert cli_main(["--config", str(config), "purge"]) == 0
    assert "nothing to purge" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"journal_days": 0}, "retention.journal_days"),
        ({"outbox_days": -3}, "retention.outbox_days"),
        ({"run_at": "3:30"}, "retention.run_at"),
        ({"batch_size": 0}, "retention.batch_size"),
        ({"batch_size": 10001}, "retention.batch_size"),
    ],
)
def test_bad_retention_settings_name_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_settings(None, environ={}, overrides={"retention": values}, require_secrets=False)
