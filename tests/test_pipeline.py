"""The inbound pipeline (bot/pipeline.py): answered once journaled, processed behind.

These tests post through a plain in-process client (no drain after each response), so the
events wait in the journal until a test processes them, as they would behind a burst.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from bot.app import create_app, make_worker
from bot.channels.bridge import signed_headers
from bot.clock import ManualClock
from bot.pipeline import Pipeline
from bot.services.tokens import create_token
from handlers.context import HandlerContext
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from tests.fakes import FakeWorld
from tests.harness import API_SEND, BRIDGE_SECRET, Harness, make_runtime

GROUP = "grp-qiaozhen-01"
FIRE = "着火了!三楼冒烟了,快来人"
# A Monday, 10:00 in Beijing: off-wang is on duty for grp-qiaozhen-01 and off-zhao is the
# station's leader (tests/data/directory.yaml), whatever the hour the tests run at.
WEEKDAY_MORNING = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


class ProcessDied(BaseException):
    """Stands for the process being killed in the middle of processing (not an error the
    processor could catch and carry on from)."""


def plain_client(h: Harness, app: Any = None) -> httpx.AsyncClient:
    """A client that does not wait for processing after each response."""
    transport = httpx.ASGITransport(app=app or h.client._transport.app)  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://lianxin")


async def post(client: httpx.AsyncClient, h: Harness, text: str, **kw: Any) -> httpx.Response:
    raw = json.dumps(h.bridge_body(text, **kw), ensure_ascii=False).encode()
    r = await client.post(
        "/bridge/events", content=raw, headers=signed_headers(BRIDGE_SECRET, raw, h.clock.now())
    )
    assert r.status_code == 200, r.text
    return r


async def queued(h: Harness) -> int:
    async with h.runtime.sessions() as s:
        n = await s.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(InboundEvent.processed_at.is_(None))
        )
    return int(n or 0)


@pytest.fixture
async def h(db_url: str, world: FakeWorld) -> AsyncIterator[Harness]:
    harness = Harness.build(db_url, world, clock=ManualClock(WEEKDAY_MORNING))
    await harness.load_directory()
    yield harness
    await harness.close()


async def test_a_crash_after_the_answer_loses_nothing(
    db_url: str, world: FakeWorld, h: Harness
) -> None:
    async def dies(ctx: HandlerContext) -> bool:
        raise ProcessDied

    # A process whose handlers never finish: it answers, then dies while processing.
    doomed = make_runtime(h.runtime.settings, clock=h.clock)
    app = create_app(doomed, handlers=[dies], background=False)
    async with plain_client(h, app) as client:
        await post(client, h, FIRE, group=GROUP, sender="wxid_fire")
    pipeline: Pipeline = app.state.pipeline
    with pytest.raises(ProcessDied):
        await pipeline.drain()
    await doomed.aclose()
    assert await queued(h) == 1 and await h.tickets() == []

    # The next process picks the event up: the emergency is handled and answered once.
    await h.pipeline.drain()
    assert await queued(h) == 0
    (ticket,) = await h.tickets()
    assert ticket.emergency
    sent = await h.sent()
    assert [d["mentions"] for d in sent if d["group_id"] == GROUP] == [["wxid_fire"]]
    async with h.runtime.sessions() as s:
        (row,) = (await s.scalars(select(InboundEvent))).all()
    assert row.status == "handled" and row.processed_at is not None and row.emergency


async def test_per_chat_order_holds_across_batches(h: Harness) -> None:
    seen: list[tuple[str, str]] = []

    async def record(ctx: HandlerContext) -> bool:
        seen.append((ctx.event.group_id or ctx.event.sender_id, ctx.event.text))
        await asyncio.sleep(0)  # let the other chats' requests in between
        return True

    app = create_app(h.runtime, handlers=[record], background=False, close_runtime=False)
    chats = [GROUP, "grp-hexi-01", "grp-qiaozhen-02"]

    async with plain_client(h, app) as client:

        async def one_chat(chat: str) -> None:
            for i in range(25):  # each chat's messages one after the other, chats side by side
                # Different senders (one resident's 25 a minute would be over their limit).
                sender = f"wxid_{chat}_{i}"
                await post(client, h, f"{chat}:{i}", group=chat, sender=sender)

        await asyncio.gather(*(one_chat(c) for c in chats))
    await app.state.pipeline.drain()
    assert len(seen) == 75
    for chat in chats:
        assert [t for c, t in seen if c == chat] == [f"{chat}:{i}" for i in range(25)]


async def test_an_emergency_behind_2000_events_is_answered_first(h: Harness) -> None:
    async with plain_client(h) as client:
        for start in range(0, 2000, 100):  # side by side: the journal writer batches them
            await asyncio.gather(
                *(
                    post(client, h, "你好", group=None, sender=f"wxid_r{i}")
                    for i in range(start, start + 100)
                )
            )
        assert await queued(h) == 2000
        await post(client, h, FIRE, group=GROUP, sender="wxid_fire")
    # One batch of the processor: the emergency, committed on its own so that its replies do
    # not wait for a batch of ordinary events; all 2,000 of those still queued.
    assert await h.pipeline.process_once() == 1
    assert await queued(h) == 2000
    (ticket,) = await h.tickets()
    assert ticket.emergency
    # The processor woke the outbox's urgent lane; one round of it sends the safety reply and
    # the P1 pages, and nothing else.
    assert h.runtime.urgent_wakeup.is_set()
    outcomes = await make_worker(h.runtime, urgent=True).run_once()
    delivered = h.world.state.delivered()
    assert len(delivered) == len(outcomes)
    safety = [d for d in delivered if d["group_id"] == GROUP and d["mentions"] == ["wxid_fire"]]
    assert len(safety) == 1 and "119" in safety[0]["text"]
    pages = [d for d in delivered if d["user_id"] and "P1" in d["text"]]
    assert pages and len(safety) + len(pages) == len(delivered), delivered


async def test_emergencies_queued_together_are_processed_in_one_batch_whatever_the_slice(
    db_url: str, world: FakeWorld
) -> None:
    # A time slice shorter than any event: an ordinary batch stops after its first event. The
    # emergencies queued are all handled in the first batch, before the ordinary event.
    h = Harness.build(
        db_url, world, clock=ManualClock(WEEKDAY_MORNING), inbound={"slice_ms": 0.001}
    )
    await h.load_directory()
    try:
        async with plain_client(h) as client:
            await post(client, h, "你好", group=None, sender="wxid_first")
            for i in range(3):
                await post(client, h, FIRE, group=GROUP, sender=f"wxid_fire{i}")
        assert await h.pipeline.process_once() == 3
        async with h.runtime.sessions() as s:
            left = (
                await s.scalars(
                    select(InboundEvent.sender_id).where(InboundEvent.processed_at.is_(None))
                )
            ).all()
        assert left == ["wxid_first"]
    finally:
        await h.close()


async def test_an_urgent_row_behind_a_send_in_flight_is_looked_for_again_soon(
    h: Harness,
) -> None:
    # An answer to the officer on duty is in flight (leased by the ordinary worker, not yet
    # recorded) when a fire is reported in the group: the urgent lane sends the safety reply
    # and, finding the officer's P1 page waiting for that chat, marks itself blocked (it looks
    # again in 50 ms, not after the poll interval); once the chat is free it sends the page.
    async with plain_client(h) as client:
        await post(client, h, "你好", group=None, sender="wxid_wang")
        await h.pipeline.drain()
        ordinary = make_worker(h.runtime)
        (in_flight,) = await ordinary._claim()  # leased, not recorded
        assert in_flight.user_id == "wxid_wang"
        await post(client, h, FIRE, group=GROUP, sender="wxid_fire")
        await h.pipeline.drain()
    urgent = make_worker(h.runtime, urgent=True)
    while await urgent.run_once():
        pass
    assert urgent.blocked
    safety = [d for d in h.world.state.delivered() if d["mentions"] == ["wxid_fire"]]
    assert len(safety) == 1
    assert not [d for d in h.world.state.delivered() if d["user_id"] == "wxid_wang"]
    h.clock.advance(timedelta(seconds=h.runtime.settings.outbox.lease_s + 1))  # the chat free
    assert await urgent.run_once()
    assert not await urgent.run_once()
    assert not urgent.blocked
    (page,) = [d for d in h.world.state.delivered() if d["user_id"] == "wxid_wang"]
    assert "P1" in page["text"]


async def test_the_urgent_lane_records_each_send_as_it_ends(db_url: str, world: FakeWorld) -> None:
    # A fire's safety reply to the group and its P1 pages go out in one urgent batch; one page
    # hangs until the client's timeout. The safety reply is recorded sent while it hangs, so
    # the group's next urgent message need not wait for it.
    h = Harness.build(db_url, world, clock=ManualClock(WEEKDAY_MORNING), bridge={"timeout_s": 1.0})
    await h.load_directory()
    try:
        async with plain_client(h) as client:
            await post(client, h, FIRE, group=GROUP, sender="wxid_fire")
        await h.pipeline.drain()
        world.state.group_send_script[GROUP] = deque([200])
        world.state.send_script.extend(["hang:1.5"])  # the first page, past the timeout
        urgent = make_worker(h.runtime, urgent=True)
        sending = asyncio.create_task(urgent.run_once())
        recorded_while_hanging = False
        for _ in range(200):
            async with h.runtime.sessions() as s:
                status = await s.scalar(
                    select(OutboxMessage.status).where(OutboxMessage.group_id == GROUP)
                )
            if status == "sent":
                recorded_while_hanging = not sending.done()
                break
            await asyncio.sleep(0.01)
        outcomes = await sending
        assert recorded_while_hanging
        assert sorted(o.status for o in outcomes) == ["pending", "sent", "sent"]
    finally:
        await h.close()


async def test_the_servers_ordinary_worker_leaves_urgent_rows_to_the_urgent_lane(
    h: Harness,
) -> None:
    # The ordinary worker records a batch only when all of it is sent: had it taken the fire's
    # safety reply, the group's next urgent message would wait for its whole batch. Beside an
    # urgent lane it takes the ordinary rows and leaves the urgent ones.
    async with plain_client(h) as client:
        await post(client, h, FIRE, group=GROUP, sender="wxid_fire")
        await post(client, h, "你好", group=None, sender="wxid_hi")
    await h.pipeline.drain()
    ordinary = make_worker(h.runtime, beside_urgent=True)
    sent = await ordinary.drain()
    assert sent and all(o.status == "sent" for o in sent)
    assert [d for d in h.world.state.delivered() if d["user_id"] == "wxid_hi"]
    assert not [d for d in h.world.state.delivered() if d["mentions"] == ["wxid_fire"]]
    urgent = await make_worker(h.runtime, urgent=True).drain()
    assert len(urgent) >= 2  # the safety reply and the pages
    assert [d for d in h.world.state.delivered() if d["mentions"] == ["wxid_fire"]]


async def test_ordinary_processing_waits_while_urgent_sends_are_under_way(h: Harness) -> None:
    # The urgent lane's flag is up (a safety reply to send): the processor's next ordinary
    # batch waits for it to come down, but not for an emergency of its own, and not forever.
    pipeline = h.pipeline
    h.runtime.urgent_wakeup.set()
    waiting = asyncio.create_task(pipeline._yield_to_urgent_sends(30))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    h.runtime.urgent_wakeup.clear()  # the lane found nothing more to send
    await asyncio.wait_for(waiting, 5)
    h.runtime.urgent_wakeup.set()
    pipeline._urgent.set()  # an emergency journaled here goes first
    await asyncio.wait_for(pipeline._yield_to_urgent_sends(30), 5)
    pipeline._urgent.clear()
    await asyncio.wait_for(pipeline._yield_to_urgent_sends(0.01), 5)  # bounded


async def _answered_at_once_behind(
    db_url: str,
    world: FakeWorld,
    openid: str,
    queue: Callable[[Harness, httpx.AsyncClient], Awaitable[None]],
) -> None:
    """After ``queue`` (40 events posted, some of them processed), with the server's processor
    task running but busy (its turn held here), a passive WeChat request is answered at once
    and its reply goes through the API. A long budget: had the request waited it out, the
    wait_for below would give up first. No time slice: a batch takes 16 events whatever the
    machine's load (one cut short and a full one after it would leave less than a batch)."""
    h = Harness.build(
        db_url,
        world,
        wechat={"reply_mode": "passive", "passive_reply_budget_s": 60},
        inbound={"slice_ms": 60_000.0},
    )
    await h.load_directory()
    try:
        async with plain_client(h) as client:
            for i in range(40):
                await post(client, h, "你好", group=None, sender=f"wxid_q{i}")
            await queue(h, client)
            h.pipeline.start_processing()
            async with h.pipeline._turn:  # the processor is in the middle of a batch
                xml = h.wechat_text_xml("请问办居住证要带什么材料", openid=openid)
                response = await asyncio.wait_for(h.post_wechat_safe(xml, client=client), 5)
                assert response.text == "success"
        await h.pipeline.stop()
        await h.pipeline.drain()
        await h.worker.drain()
        sent = [r.json() for r in h.world.state.by_path(API_SEND)]
        assert [b for b in sent if b.get("touser") == openid], "sent through the API"
    finally:
        await h.close()


async def test_a_passive_request_far_behind_the_queue_answers_at_once(
    db_url: str, world: FakeWorld
) -> None:
    # An event queued more than a batch behind what the processor has done would wait out its
    # whole budget.
    async def a_batch_done(h: Harness, client: httpx.AsyncClient) -> None:
        done = 0
        while done < 16:  # the processor has done a batch or more of them
            done += await h.pipeline.process_once()

    await _answered_at_once_behind(db_url, world, "o_far_behind", a_batch_done)


async def test_an_emergency_processed_first_does_not_make_a_request_look_near_the_head(
    db_url: str, world: FakeWorld
) -> None:
    # Emergencies are processed before the events queued ahead of them. A request after one
    # is still behind everything queued (the rule had measured "behind" from the newest event
    # processed).
    async def an_emergency_done(h: Harness, client: httpx.AsyncClient) -> None:
        await post(client, h, "救命 有人持刀砍人", sender="wxid_sos")
        assert await h.pipeline.process_once() == 1  # the emergency, alone and first

    await _answered_at_once_behind(db_url, world, "o_behind_sos", an_emergency_done)


async def test_an_emergency_in_a_burst_still_gets_its_passive_safety_reply(
    db_url: str, world: FakeWorld
) -> None:
    # Found by a newcomer: behind a burst, an emergency's request was answered "success" at
    # once like any other, and on a subscription account (no API) its safety reply was lost.
    h = Harness.build(
        db_url,
        world,
        wechat={"reply_mode": "passive", "passive_reply_budget_s": 4.5},
        inbound={"slice_ms": 60_000.0},
    )
    await h.load_directory()
    try:
        async with plain_client(h) as client:
            for i in range(40):  # more than a batch queued ahead
                await post(client, h, "你好", group=None, sender=f"wxid_q{i}")
            h.pipeline.start_processing()
            xml = h.wechat_text_xml("有人拿刀砍人,在菜市场门口!", openid="o_sos_in_burst")
            async with h.pipeline._turn:  # the processor is in the middle of a batch
                request = asyncio.create_task(h.post_wechat_safe(xml, client=client))
                # Before, the burst rule answered at once; now the request waits for its reply.
                done, _ = await asyncio.wait([request], timeout=1.0)
                assert not done
            response = await asyncio.wait_for(request, 10)
            assert response.text != "success"
            assert "110" in h.decrypt_reply(response)["Content"], "the safety reply rides passively"
        await h.pipeline.stop()
    finally:
        await h.close()


async def test_catching_up_takes_larger_batches(db_url: str, world: FakeWorld) -> None:
    # With nobody waiting, the processor works through a backlog in batches of
    # inbound.catch_up_batch; otherwise in batches of inbound.process_batch.
    h = Harness.build(
        db_url,
        world,
        inbound={
            "process_batch": 5,
            "slice_ms": 60_000.0,
            "catch_up_batch": 30,
            "catch_up_slice_ms": 60_000.0,
        },
    )
    await h.load_directory()
    try:
        async with plain_client(h) as client:
            for start in range(0, 40, 10):
                await asyncio.gather(
                    *(
                        post(client, h, "你好", group=None, sender=f"wxid_c{i}")
                        for i in range(start, start + 10)
                    )
                )
        assert await h.pipeline.process_once() == 5
        assert await h.pipeline.process_once(catching_up=True) == 30
        assert await queued(h) == 5
    finally:
        await h.close()


async def test_a_retry_while_queued_is_one_event(h: Harness) -> None:
    body = h.bridge_body("路口的路燈壞了好幾天了", group=GROUP, sender="wxid_lamp")
    raw = json.dumps(body, ensure_ascii=False).encode()
    async with plain_client(h) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/bridge/events",
                    content=raw,
                    headers=signed_headers(BRIDGE_SECRET, raw, h.clock.now()),
                )
                for _ in range(3)
            )
        )
    assert sorted(json.dumps(r.json()) for r in answers) == sorted(
        [json.dumps({"ok": True})] + [json.dumps({"ok": True, "duplicate": True})] * 2
    )
    await h.pipeline.drain()
    async with h.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)) == 1
    assert len(await h.tickets()) <= 1


async def test_metrics_show_the_queue_and_its_lag(h: Harness) -> None:
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())

    async def scrape() -> dict[str, float]:
        r = await h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200
        found = re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M)
        return {name: float(value) for name, value in found}

    async with plain_client(h) as client:
        for i in range(3):
            await post(client, h, f"第{i}條", group=GROUP, sender=f"wxid_m{i}")
        h.clock.advance(30)
        # Scraped through the same app, without draining: the queue as it stands.
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    found = dict(re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M))
    assert float(found['lianxin_inbound_queued{channel="bridge"}']) == 3
    assert float(found["lianxin_inbound_lag_seconds"]) == 30
    assert float(found['lianxin_events_received_total{channel="bridge"}']) == 3
    assert 'lianxin_events_processed_total{channel="bridge",status="handled"}' not in found

    await h.pipeline.drain()
    m = await scrape()
    assert m['lianxin_inbound_queued{channel="bridge"}'] == 0
    assert m["lianxin_inbound_lag_seconds"] == 0
    assert m['lianxin_events_processed_total{channel="bridge",status="handled"}'] == 3


async def test_metrics_show_every_channels_counters_from_the_start(h: Harness) -> None:
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    r = await h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    found = dict(re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M))
    for name in ("events_received", "outbox_sent", "outbox_failed", "outbox_retried"):
        assert found[f'lianxin_{name}_total{{channel="bridge"}}'] == "0.0", name
    # Events come in on the three endpoints' channels; the send-only ones (sms, WeCom group
    # robots) received none and have no such series.
    received = {k for k in found if k.startswith("lianxin_events_received_total")}
    assert received == {
        f'lianxin_events_received_total{{channel="{c}"}}' for c in ("bridge", "wechat", "wecom")
    }
    assert found['lianxin_outbox_sent_total{channel="sms"}'] == "0.0"


async def test_an_event_whose_handlers_fail_is_counted_failed_under_its_channel(
    h: Harness,
) -> None:
    # It was counted under channel="-", which says nothing of where failing events come from.
    async def fails_on_a_bug(ctx: HandlerContext) -> bool:
        if "bug" in ctx.event.text:
            raise RuntimeError("a handler's bug")
        return False

    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    runtime = make_runtime(h.runtime.settings, clock=h.clock)
    app = create_app(runtime, handlers=[fails_on_a_bug], background=False)
    try:
        async with plain_client(h, app) as client:
            await post(client, h, "你好", group=GROUP)
            await post(client, h, "bug", group=GROUP, sender="wxid_m1")
            await app.state.pipeline.drain()
            r = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    finally:
        await runtime.aclose()
    found = dict(re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M))
    assert found['lianxin_events_processed_total{channel="bridge",status="failed"}'] == "1.0"
    assert found['lianxin_events_processed_total{channel="bridge",status="handled"}'] == "1.0"
    assert 'channel="-"' not in r.text


async def test_two_processors_share_the_queue_but_never_a_chat(h: Harness) -> None:
    if h.runtime.engine.dialect.name != "postgresql":
        pytest.skip("several processes share PostgreSQL; SQLite runs one")
    # Eight private chats, ten messages each, interleaved as they would arrive.
    async with plain_client(h) as client:
        for i in range(10):
            for chat in range(8):
                await post(client, h, f"{chat}:{i}", group=None, sender=f"wxid_c{chat}")
    log: list[tuple[str, str, int]] = []
    inside: dict[str, str] = {}  # chat → the processor handling one of its events just now
    # Each processor, once it holds a batch, waits until the other has handled an event too:
    # with its chats locked meanwhile, the other can only go on with other chats. Without the
    # wait, on a loaded machine the first processor could empty the queue before the second
    # starts, and "both take part" would be luck.
    seen: set[str] = set()
    both = asyncio.Event()

    def recorder(name: str) -> Any:
        async def record(ctx: HandlerContext) -> bool:
            chat, seq = ctx.event.text.split(":")
            assert inside.get(chat, name) == name, f"{chat} in two processors at once"
            inside[chat] = name
            log.append((name, chat, int(seq)))
            seen.add(name)
            if len(seen) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), timeout=60)
            await asyncio.sleep(0)  # the other processor's turn
            return True

        return record

    settings = h.runtime.settings
    small = settings.model_copy(
        update={"inbound": settings.inbound.model_copy(update={"process_batch": 4})}
    )
    runtimes = [make_runtime(small, clock=h.clock) for _ in "AB"]
    apps = [
        create_app(rt, handlers=[recorder(name)], background=False)
        for rt, name in zip(runtimes, "AB", strict=True)
    ]

    async def processor(app: Any, name: str) -> None:
        while await app.state.pipeline.process_once():
            for chat in [c for c, n in inside.items() if n == name]:
                del inside[chat]  # committed: its chats are free for the other processor
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(processor(app, name) for app, name in zip(apps, "AB", strict=True)))
    finally:
        for rt in runtimes:
            await rt.aclose()
    assert await queued(h) == 0
    assert sorted((chat, seq) for _, chat, seq in log) == sorted(
        (str(c), i) for c in range(8) for i in range(10)
    )
    for chat in map(str, range(8)):
        assert [seq for _, c, seq in log if c == chat] == list(range(10))
    assert {name for name, _, _ in log} == {"A", "B"}


def _signed(h: Harness, body: dict[str, Any]) -> dict[str, Any]:
    """``client.post``'s arguments for a bridge event, signed now."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    return {"content": raw, "headers": signed_headers(BRIDGE_SECRET, raw, h.clock.now())}


UNAVAILABLE = {"ok": False, "error": "database unavailable, retry"}


@pytest.mark.both_reply_modes
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_database_that_cannot_be_opened_is_a_503_to_retry_and_not_ready(
    h: Harness,
) -> None:
    # It was a text/plain "500 Internal Server Error" (the bridge could not tell what to do),
    # and WeChat's retries were welcome but not asked for. Nothing was journaled either way.
    client = plain_client(h)
    body = h.bridge_body("請問辦證要多久", group=GROUP)
    xml = h.wechat_text_xml("請問辦證要多久", msg_id=4711)
    async with h.database_gone():
        r = await client.post("/bridge/events", **_signed(h, body))
        assert (r.status_code, r.json()) == (503, UNAVAILABLE)
        assert r.headers["retry-after"] == "5"
        r = await h.post_wechat_safe(xml, client=client)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"  # WeChat sends again
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "down"
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "up"
    # The senders' retries are taken, each once.
    r = await client.post("/bridge/events", **_signed(h, body))
    assert (r.status_code, r.json()) == (200, {"ok": True})
    r = await h.post_wechat_safe(xml, client=client)
    assert r.status_code == 200
    async with h.runtime.sessions() as s:
        keys = (await s.scalars(select(InboundEvent.dedup_key))).all()
    assert sorted(keys) == sorted([body["event_id"], "msg:o_resident:4711"]), keys


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_events_the_database_did_not_take_are_not_counted_received(h: Harness) -> None:
    # They were counted as they arrived, so an outage's 503s (and their retries) inflated it.
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    body = h.bridge_body("請問辦證要多久", group=GROUP)
    async with plain_client(h) as client:
        async with h.database_gone():
            assert (await client.post("/bridge/events", **_signed(h, body))).status_code == 503
        for _ in range(2):  # the retry taken, then a retry of it
            assert (await client.post("/bridge/events", **_signed(h, body))).status_code == 200
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    found = dict(re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M))
    assert found['lianxin_events_received_total{channel="bridge"}'] == "2.0"
    assert found['lianxin_events_processed_total{channel="bridge",status="duplicate"}'] == "1.0"


def _loop_lines(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    """What the outbox and inbound loops logged with ``words`` in it."""
    return [
        r
        for r in caplog.records
        if r.name in ("lianxin.outbox", "lianxin.pipeline") and words in r.getMessage()
    ]


async def _until_logged(caplog: pytest.LogCaptureFixture, words: str, count: int) -> None:
    for _ in range(500):
        if len(_loop_lines(caplog, words)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never logged {count} times: {words}")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_database_outage_logs_one_traceback_a_loop_then_a_line_a_minute(
    db_url: str, world: FakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by a newcomer: while the database was down, every pass of every loop logged its
    # full chained traceback (43 KB a second with no traffic), and the processor said that a
    # batch of events had failed when none was waiting.
    fast = {"poll_interval_s": 0.01}
    h = Harness.build(db_url, world, clock=ManualClock(WEEKDAY_MORNING), outbox=fast, inbound=fast)
    caplog.set_level(logging.INFO)
    worker = make_worker(h.runtime)
    loop = asyncio.create_task(worker.run_forever())
    try:
        async with h.database_gone():
            h.pipeline.start_processing()
            await _until_logged(caplog, "failed", 2)
            await asyncio.sleep(0.3)  # tens of passes of each loop
            assert sorted(r.getMessage() for r in _loop_lines(caplog, "")) == [
                "inbound processing failed",
                "outbox pass failed",
            ]
            assert all(r.exc_info for r in _loop_lines(caplog, ""))  # the first: in full
            h.clock.advance(61)
            await _until_logged(caplog, "still failing", 2)
            await asyncio.sleep(0.1)
        await _until_logged(caplog, "works again", 2)
    finally:
        worker.stop()
        await loop
        await h.close()
    still = _loop_lines(caplog, "still failing")
    assert len(still) == 2 and not any(r.exc_info for r in still)
    assert all("OperationalError" in r.getMessage() for r in still), still
    assert all("unable to open database file" in r.getMessage() for r in still), still
    assert len(_loop_lines(caplog, "works again")) == 2
    assert not _loop_lines(caplog, "batch")  # no events were waiting
    assert len(_loop_lines(caplog, "")) == 6  # and nothing more


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_connection_killed_during_the_journal_write_is_a_503_and_the_retry_is_kept(
    h: Harness,
) -> None:
    # pg_terminate_backend in the middle of a burst: the journal write's connection is gone.
    # The INSERT is held by a lock until it is killed, so that it dies in the middle.
    from sqlalchemy.ext.asyncio import create_async_engine

    client = plain_client(h)
    admin = create_async_engine(h.runtime.settings.database.url, isolation_level="AUTOCOMMIT")
    body = h.bridge_body("請問辦證要多久", group=GROUP)
    try:
        async with admin.connect() as holder:
            await holder.execute(text("BEGIN"))
            await holder.execute(text("LOCK TABLE inbound_events IN ACCESS EXCLUSIVE MODE"))
            posting = asyncio.create_task(client.post("/bridge/events", **_signed(h, body)))
            async with admin.connect() as conn:
                for _ in range(400):
                    killed = (
                        await conn.execute(
                            text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                            )
                        )
                    ).all()
                    if killed:
                        break
                    await asyncio.sleep(0.05)
                assert killed, "the journal write never waited for the lock"
            await holder.execute(text("COMMIT"))
            r = await posting
        assert (r.status_code, r.json()) == (503, UNAVAILABLE)
        assert r.headers["retry-after"] == "5"
    finally:
        await admin.dispose()
    # The database itself answers (a killed connection is replaced), and the retry is kept.
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "up"
    r = await client.post("/bridge/events", **_signed(h, body))
    assert (r.status_code, r.json()) == (200, {"ok": True})
    async with h.runtime.sessions() as s:
        n = await s.scalar(
            select(func.count())
            .select_from(InboundEvent)
            .where(InboundEvent.dedup_key == body["event_id"])
        )
    assert n == 1
