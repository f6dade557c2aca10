"""One scheduler across instances: leader election on PostgreSQL (issue 12, "Scale-out").

Two app instances share one database, one clock and one set of settings, as two ``lianxin
serve`` processes behind a load balancer would. Each election round is driven by calling
``Leadership.check`` (what the background task does every few seconds), and the scheduler's
jobs are the very functions ``build_scheduler`` schedules.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from bot.app import create_app
from bot.leadership import LOCK_KEY
from bot.scheduler import build_scheduler
from bot.services.tokens import create_token
from models.bulletins import BulletinRun
from models.outbox import OutboxMessage
from models.tickets import JobRun, TicketEvent
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
MON_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # Monday: off-wang on duty at qiaozhen

T = TypeVar("T", bound=Callable[..., Any])


def on_postgresql(test: T) -> T:
    """Run ``test`` on PostgreSQL only: the election is PostgreSQL's advisory lock."""
    test = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)(test)
    return pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="leader election needs PostgreSQL (advisory locks): set TEST_DATABASE_URL",
    )(test)


@pytest.fixture
async def pair(harness: Harness) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two instances on one database: same settings (and PII key), same clock."""
    other = Harness.build(
        harness.runtime.settings.database.url,
        harness.world,
        settings=harness.runtime.settings,
        clock=harness.clock,
    )
    yield harness, other
    await other.close()


async def lock_holders(h: Harness) -> list[tuple[int, str]]:
    """(pid, application_name) of every session holding the scheduler's lock in this database."""
    hi, lo = divmod(LOCK_KEY, 1 << 32)
    async with h.runtime.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT l.pid, a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi"
                " AND l.objid = :lo AND l.objsubid = 1 AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": hi, "lo": lo},
        )
        return [(int(pid), str(name)) for pid, name in rows.all()]


async def run_scheduled_jobs(h: Harness) -> None:
    """Run, once, every job this instance's scheduler would run."""
    for job in build_scheduler(h.runtime).get_jobs():
        await job.func(*job.args)


async def readyz(h: Harness) -> dict[str, Any]:
    response = await h.client.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def counts(h: Harness) -> dict[str, int]:
    """What the scheduled jobs leave behind: outbox rows, reminders, digests, bulletin runs."""
    async with h.runtime.sessions() as s:

        async def count(query: Any) -> int:
            return int(await s.scalar(query) or 0)

        return {
            "outbox": await count(select(func.count()).select_from(OutboxMessage)),
            "reminded": await count(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.kind.in_(("reminded", "escalated")))
            ),
            "digest": await count(
                select(func.count()).select_from(JobRun).where(JobRun.job == "digest")
            ),
            "bulletin_runs": await count(select(func.count()).select_from(BulletinRun)),
        }


# --- SQLite: one process, always the leader ---------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_one_process_always_leads(harness: Harness) -> None:
    leadership = harness.runtime.leadership
    assert leadership.is_leader and leadership.url is None
    assert await leadership.check() is True
    assert (await readyz(harness))["scheduler"] == "leader"
    await leadership.close()  # nothing to release: still the only process
    assert leadership.is_leader


# --- PostgreSQL: one leader among instances -------------------------------------------------
@on_postgresql
async def test_two_instances_elect_exactly_one_leader(
    pair: tuple[Harness, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    caplog.set_level(logging.INFO, logger="lianxin.leadership")
    assert (await readyz(a))["scheduler"] == "standby"  # no election yet: nobody acts
    for _ in range(3):  # concurrent rounds, as two processes' timers would run
        results = await asyncio.gather(a.runtime.leadership.check(), b.runtime.leadership.check())
        assert sorted(results) == [False, True]
    leader, standby = (a, b) if a.runtime.leadership.is_leader else (b, a)
    assert [r["scheduler"] for r in (await readyz(leader), await readyz(standby))] == [
        "leader",
        "standby",
    ]
    [(_, application)] = await lock_holders(a)  # one session holds the lock, a dedicated one
    assert application == "lianxin-scheduler-lock"
    gained = [r for r in caplog.records if "leadership gained" in r.getMessage()]
    assert len(gained) == 1 and gained[0].levelno == logging.INFO


@on_postgresql
async def test_due_step_digest_and_bulletin_fire_once_across_two_instances(
    pair: tuple[Harness, Harness],
) -> None:
    a, b = pair
    a.runtime.settings.deadlines.digest_at = "10:30"  # shared settings: both instances
    await a.load_directory()
    a.clock.set(MON_10)
    await a.bind("wxid_yang", group=GROUP)
    await a.say("我家的摩托车被人偷了", group=GROUP, sender="wxid_yang")  # P2: ack by 10:30
    await a.sent()
    async with a.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=a.clock.now())
    created = await b.client.post(
        "/api/v1/bulletins",
        json={
            "title": "防詐騙提醒",
            "category": "anti-fraud",
            "text": "不要向陌生賬戶轉賬。",
            "targets": {"groups": [GROUP]},
            "schedule": {"at": (MON_10 + timedelta(minutes=30)).isoformat()},
        },
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert created.status_code == 201, created.text

    assert await a.runtime.leadership.check() is True
    assert await b.runtime.leadership.check() is False
    a.clock.set(MON_10 + timedelta(minutes=30))  # the reminder, the digest, the bulletin: due
    before = await counts(a)

    await run_scheduled_jobs(b)  # the standby alone does nothing at all
    assert await counts(a) == before

    # Both instances' timers fire at once: the leader does the work, once.
    await asyncio.gather(run_scheduled_jobs(a), run_scheduled_jobs(b))
    await asyncio.gather(run_scheduled_jobs(b), run_scheduled_jobs(a))
    after = await counts(a)
    assert after["reminded"] - before["reminded"] == 1
    assert after["digest"] - before["digest"] == 1
    assert after["bulletin_runs"] - before["bulletin_runs"] == 1
    # The reminder and the digest to off-wang, the bulletin into the group: three messages.
    assert after["outbox"] - before["outbox"] == 3
    await a.sent()
    to_wang = a.to_user("wxid_wang")
    assert sum("⏰" in m for m in to_wang) == 1 and sum("每日提醒" in m for m in to_wang) == 1
    assert [m["text"] for m in a.to_group(GROUP)].count("【防詐騙提醒】\n不要向陌生賬戶轉賬。") == 1


@on_postgresql
async def test_when_the_leader_exits_a_standby_takes_over(
    pair: tuple[Harness, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    caplog.set_level(logging.INFO, logger="lianxin.leadership")
    assert await a.runtime.leadership.check() is True
    assert await b.runtime.leadership.check() is False
    await a.runtime.aclose()  # the leader's process stops: its connections close
    assert await lock_holders(b) == []  # PostgreSQL released the lock with the session
    assert await b.runtime.leadership.check() is True
    assert (await readyz(b))["scheduler"] == "leader"
    messages = [r.getMessage() for r in caplog.records]
    assert any("leadership released" in m for m in messages)
    assert sum("leadership gained" in m for m in messages) == 2  # a, then b


@on_postgresql
async def test_a_leader_whose_connection_breaks_steps_down_and_another_takes_over(
    pair: tuple[Harness, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    caplog.set_level(logging.INFO, logger="lianxin.leadership")
    assert await a.runtime.leadership.check() is True
    assert await b.runtime.leadership.check() is False
    [(pid, _)] = await lock_holders(a)
    async with a.runtime.engine.connect() as conn:  # the session is cut from the server's side
        assert await conn.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    assert a.runtime.leadership.is_leader  # it cannot know before its next check

    assert await b.runtime.leadership.check() is True  # the lock went with the session
    assert await a.runtime.leadership.check() is False  # the broken connection is noticed
    assert not a.runtime.leadership.is_leader
    assert (await readyz(a))["scheduler"] == "standby"
    before = await counts(a)
    await run_scheduled_jobs(a)
    assert await counts(a) == before
    lost = [r for r in caplog.records if "leadership lost" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno >= logging.INFO
    assert "lock connection failed" in lost[0].getMessage()

    # The old leader is a standby now, on a new connection; it leads again when b goes.
    assert await a.runtime.leadership.check() is False
    await b.runtime.leadership.close()
    assert await a.runtime.leadership.check() is True
    [(new_pid, _)] = await lock_holders(a)
    assert new_pid != pid


@on_postgresql
async def test_serve_elects_at_start_and_releases_at_stop(pair: tuple[Harness, Harness]) -> None:
    a, b = pair
    app = create_app(a.runtime, background=True, close_runtime=False)
    async with app.router.lifespan_context(app):
        assert a.runtime.leadership.is_leader  # elected before the first job was due
        assert await b.runtime.leadership.check() is False
        [_] = await lock_holders(b)
    assert not a.runtime.leadership.is_leader
    assert await b.runtime.leadership.check() is True  # released at the stop, not at exit


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_scheduled_jobs_log_a_database_outage_once_then_a_line_a_minute(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a newcomer: the deadline sweep (every 15 s) and the bulletin tick (every 10 s)
    # logged a full traceback every run while the database was away.
    caplog.set_level(logging.INFO, logger="lianxin.scheduler")
    jobs = [j for j in build_scheduler(harness.runtime).get_jobs() if j.id != "retention-purge"]

    def lines(words: str) -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.name == "lianxin.scheduler" and words in r.getMessage()
        ]

    async with harness.database_gone():
        for _ in range(5):
            for job in jobs:
                await job.func(*job.args)
        first = lines("failed")
        assert sorted(r.getMessage() for r in first) == [
            "bulletin tick failed",
            "deadline sweep failed",
            "upload sweep failed",
        ]
        assert all(r.exc_info for r in first)
        harness.clock.advance(61)
        for job in jobs:
            await job.func(*job.args)
        still = lines("still failing")
        assert len(still) == 3 and not any(r.exc_info for r in still)
    for job in jobs:
        await job.func(*job.args)
    assert len(lines("works again")) == 3
    assert len(lines("")) == 9  # and nothing more
