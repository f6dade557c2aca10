"""A bulletin run's fan-out to many groups, a page at a time, and the outbox recording a
batch's outcomes together (issue 17, fan-out): one row per group, a crash between pages
resumes without a duplicate, every outcome of a concurrent batch recorded as it happened."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bot.messages import OutboundMessage
from broadcasts.bulletins import FanOut, bulletin_tick, fan_out_pages, materialise_runs
from broadcasts.outbox import enqueue
from models.bulletins import Bulletin, BulletinRun
from models.directory import Group, Station
from models.outbox import OutboxMessage
from tests.bulletins_support import GROUPS, TZ, Bench, local
from tests.harness import Harness

MON_10 = local(2026, 11, 30, 10)


@pytest.fixture
async def b(harness: Harness) -> Bench:
    return await Bench.build(harness, at=MON_10)


async def add_groups(b: Bench, n: int) -> list[str]:
    """``n`` more groups under the first station; every group id, sorted."""
    async with b.h.runtime.sessions.begin() as s:
        station = (await s.scalars(select(Station.id).order_by(Station.id))).first()
        ids = [f"grp-bulk-{i:04d}" for i in range(n)]
        await s.execute(
            insert(Group),
            [
                {"id": g, "name": f"警民群{i}", "station_id": station, "tags": []}
                for i, g in enumerate(ids)
            ],
        )
    return sorted([*GROUPS, *ids])


async def due_run(b: Bench) -> int:
    """A bulletin to every group, due now, its run created (not fanned out); the run's id."""
    at = MON_10 + timedelta(minutes=1)
    await b.create(schedule={"at": at}, targets={"all": True})
    b.h.clock.set(at)
    async with b.h.runtime.sessions.begin() as s:
        bid = (await s.scalars(select(Bulletin.id))).one()
        assert await materialise_runs(s, bulletin_id=bid, tz=TZ, grace=timedelta(hours=1), now=at)
        return (await s.scalars(select(BulletinRun.id))).one()


async def test_fan_out_to_many_groups_writes_one_row_per_group_a_page_at_a_time(b: Bench) -> None:
    groups = await add_groups(b, 1047)  # 1,050 in all
    run_id = await due_run(b)
    progress = [
        p
        async for p in fan_out_pages(b.h.runtime, run_id=run_id, now=b.h.clock.now(), page_size=200)
    ]
    # Six pages of at most 200 groups, each committed on its own, then the run marked sent.
    assert progress == [FanOut(n) for n in (200, 400, 600, 800, 1000, 1050)] + [
        FanOut(1050, done=True)
    ]
    runs, deliveries, outbox = await b.rows()
    assert [(r.status, r.groups) for r in runs] == [("sent", 1050)]
    assert sorted(d.group_id for d in deliveries) == groups
    assert sorted(o.group_id or "" for o in outbox) == groups
    assert {d.idempotency_key for d in deliveries} == {o.idempotency_key for o in outbox}
    assert {o.status for o in outbox} == {"pending"} and {o.priority for o in outbox} == {9}
    # A second pass over the same run writes nothing.
    assert [p async for p in fan_out_pages(b.h.runtime, run_id=run_id, now=b.h.clock.now())] == []


async def test_crash_between_pages_resumes_after_the_last_group_written(b: Bench) -> None:
    groups = await add_groups(b, 250)  # 253 in all
    run_id = await due_run(b)
    pages = fan_out_pages(b.h.runtime, run_id=run_id, now=b.h.clock.now(), page_size=100)
    assert [await anext(pages), await anext(pages)] == [FanOut(100), FanOut(200)]
    await pages.aclose()  # ... the process dies after two pages were committed
    runs, deliveries, outbox = await b.rows()
    assert [r.status for r in runs] == ["pending"] and (len(deliveries), len(outbox)) == (200, 200)
    # The outbox sends what was committed before the crash.
    assert len(await b.h.drain()) == 200
    restarted = await b.h.restart()
    try:
        result = await bulletin_tick(restarted.runtime)
        assert (result.fanned_out, result.deliveries) == (1, 253)
        assert (await bulletin_tick(restarted.runtime)).fanned_out == 0
        assert len(await restarted.drain()) == 53
        state = restarted.world.state
        # Every group once: no key sent twice, none of the first 200 written again.
        assert len(state.sends()) == 253
        assert sorted(d["group_id"] for d in state.delivered()) == groups
    finally:
        await restarted.close()
    b.h.runtime = restarted.runtime
    runs, deliveries, outbox = await b.rows()
    assert [(r.status, r.groups) for r in runs] == [("sent", 253)]
    assert Counter(d.group_id for d in deliveries) == Counter(groups)
    assert Counter(o.status for o in outbox) == {"sent": 253}


async def test_pause_between_pages_stops_the_fan_out_and_resume_finishes_it(b: Bench) -> None:
    groups = await add_groups(b, 150)
    run_id = await due_run(b)
    pages = fan_out_pages(b.h.runtime, run_id=run_id, now=b.h.clock.now(), page_size=100)
    assert await anext(pages) == FanOut(100)
    async with b.h.runtime.sessions() as s:
        bid = (await s.scalars(select(Bulletin.id))).one()
    await b.post(f"/api/v1/bulletins/{bid}/pause")
    with pytest.raises(StopAsyncIteration):
        await anext(pages)  # the paused bulletin's run stops where it was
    runs, deliveries, outbox = await b.rows()
    assert [r.status for r in runs] == ["pending"] and len(deliveries) == 100
    assert {o.status for o in outbox} == {"held"}
    assert await b.h.drain() == []
    await b.post(f"/api/v1/bulletins/{bid}/resume")
    assert (await b.tick()).deliveries == 153
    await b.h.drain()
    assert sorted(d["group_id"] for d in b.h.world.state.delivered()) == groups


async def test_a_concurrent_batch_records_each_outcome(harness: Harness) -> None:
    """Sends to different chats go out together and are recorded in one transaction: a
    success, a retry and a final failure each land on their own row."""
    runtime = harness.runtime
    now = harness.clock.now()
    async with runtime.sessions.begin() as s:
        for i in range(6):
            message = OutboundMessage(channel="bridge", text=f"第{i}條", group_id=f"grp-{i}")
            enqueue(s, message, cipher=runtime.cipher, now=now, idempotency_key=f"batch-{i}")
    harness.world.state.send_script.extend([503, 400])  # two of the six, whichever go first
    outcomes = await harness.worker.run_once()
    assert len(outcomes) == 6  # one batch: six chats, one message each
    assert Counter(o.status for o in outcomes) == {"sent": 4, "pending": 1, "failed": 1}
    async with runtime.sessions() as s:
        rows = {r.id: r for r in (await s.scalars(select(OutboxMessage))).all()}
    for o in outcomes:
        row = rows[o.outbox_id]
        assert (row.status, row.attempts, row.lease_until) == (o.status, 1, None)
        assert (row.sent_at is not None) == (o.status == "sent")
        assert row.last_error == o.reason
    assert {o.reason for o in outcomes} == {None, "HTTP 503", "HTTP 400"}
