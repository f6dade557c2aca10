"""Holding under abuse and outages (issue 12): officers act only within their stations, one
group's flood never delays another chat's emergency, per-sender and per-group limits, a P1 page
by SMS when the chat cannot deliver it, and the bridge marked down and up again."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app import make_worker
from bot.clock import ManualClock
from bot.messages import OutboundMessage
from bot.services.tokens import create_token
from broadcasts.outbox import enqueue
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.tickets import Ticket, TicketEvent
from tests.fakes import FakeWorld
from tests.harness import DIRECTORY, Harness

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
GROUP, OTHER_GROUP = "grp-qiaozhen-01", "grp-hexi-01"
FIRE = "着火了!三楼冒烟了,快来人"


def _with_phones(tmp_path: Path) -> Path:
    """The test directory, with mobile numbers for the officers of 橋鎮."""
    text = DIRECTORY.read_text(encoding="utf-8")
    text = text.replace("wechat_id: wxid_wang,", 'wechat_id: wxid_wang, phone: "13900000001",')
    text = text.replace("wechat_id: wxid_zhao,", 'wechat_id: wxid_zhao, phone: "13900000003",')
    path = tmp_path / "directory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def h(harness: Harness, tmp_path: Path) -> Harness:
    await harness.load_directory(_with_phones(tmp_path))
    harness.clock.set(MONDAY_10)
    return harness


def code_in(text: str) -> str:
    match = re.search(r"#([A-Z]\d{4,6})", text)
    assert match, text
    return match.group(1)


async def _report(h: Harness) -> Ticket:
    await h.bind("wxid_yang", group=GROUP)
    await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    [ticket] = await h.tickets()
    return ticket


# --- 1. officers act only within their stations --------------------------------------------
async def test_an_officer_of_another_station_cannot_take_a_ticket_or_see_its_reporters(
    h: Harness,
) -> None:
    ticket = await _report(h)
    assert ticket.station_id == "qiaozhen" and ticket.assigned_officer_id == "off-wang"
    # 陳 is at 河西, a sibling station: 接單, 轉派 to himself and 聯繫 are all refused.
    for command in (
        f"接單 #{ticket.code}",
        f"转派 #{ticket.code} off-chen",
        f"联系 #{ticket.code}",
    ):
        await h.say(command, group=None, sender="wxid_chen")
    await h.sent()
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-wang" and after.acknowledged_at is None
    told = h.to_user("wxid_chen")
    assert len(told) == 3 and all("其他派出所" in t for t in told)
    assert not any("1391234" in t or "139****" in t for t in told)  # no number reached him
    assert "contact_shown" not in await h.timeline(after)


async def test_a_leader_cannot_transfer_out_of_his_subtree_and_the_county_can(h: Harness) -> None:
    ticket = await _report(h)
    await h.say(f"转派 #{ticket.code} off-chen", group=None, sender="wxid_zhao")
    await h.sent()
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-wang"
    assert re.search("不能[轉转]派", h.to_user("wxid_zhao")[-1])
    await h.say(f"转派 #{ticket.code} off-chen", group=None, sender="wxid_county")
    await h.sent()
    [after] = await h.tickets()
    assert (after.assigned_officer_id, after.station_id) == ("off-chen", "hexi")
    # The officer it was taken from hears so.
    assert any(f"#{ticket.code}" in t and "不再由您" in t for t in h.to_user("wxid_wang"))


async def test_an_officer_is_named_in_either_script(h: Harness) -> None:
    # Found by a newcomer: "转派 #… 赵所长" and "转派 #… 陈警官" (the directory writes 趙所長,
    # 陳警官) got 名册里没有民警.
    ticket = await _report(h)
    await h.say(f"转派 #{ticket.code} 赵所长", group=None, sender="wxid_wang")
    await h.sent()
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-zhao"
    await h.say(f"转派 #{ticket.code} 陈警官", group=None, sender="wxid_county")
    await h.sent()
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-chen"


async def test_a_transfer_by_name_to_another_stations_officer_says_why_not(h: Harness) -> None:
    # Found by a newcomer: 李警官's "轉派 #… 陳警官" (河西's) said 名冊裡沒有民警 陳警官, while
    # "轉派 #… off-chen" said, rightly, that 陳警官 is outside his stations.
    ticket = await _report(h)
    await h.say(f"轉派 #{ticket.code} 陳警官", group=None, sender="wxid_li")
    await h.sent()
    refused = h.to_user("wxid_li")[-1]
    assert "陳警官不在您所在派出所" in refused and "名冊" not in refused
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-wang"


async def test_the_previous_holder_is_told_when_a_colleague_takes_the_ticket(h: Harness) -> None:
    ticket = await _report(h)
    before = len(h.to_user("wxid_wang"))
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_li")  # same station: allowed
    await h.sent()
    [after] = await h.tickets()
    assert after.assigned_officer_id == "off-li" and after.acknowledged_at is not None
    taken = h.to_user("wxid_wang")[before:]
    assert len(taken) == 1 and "李警官" in taken[0] and f"#{ticket.code}" in taken[0]


async def test_the_previous_holder_hears_who_holds_the_ticket_now_in_one_script(
    h: Harness,
) -> None:
    # Found by a newcomer: after 趙所長's 轉派 to 王警官, 李警官 heard "已由趙所長接手,不再由您负责"
    # (the leader named as the holder; Traditional names in a Simplified sentence).
    ticket = await _report(h)  # written in Simplified, held by 王警官
    await h.say(f"轉派 #{ticket.code} 李警官", group=None, sender="wxid_zhao")
    await h.sent()
    [moved] = [t for t in h.to_user("wxid_wang") if "不再由您" in t]
    assert moved == f"#{ticket.code} 已由趙所長轉派給李警官,不再由您負責。"
    [given] = [t for t in h.to_user("wxid_li") if "轉派給您" in t]
    assert "報警" in given and "由趙所長轉派" in given and "转" not in given
    await h.say(f"转派 #{ticket.code} off-chen", group=None, sender="wxid_county")
    await h.sent()
    [moved] = [t for t in h.to_user("wxid_li") if "不再由您" in t]
    assert moved == f"#{ticket.code} 已由縣局值班室轉派給陳警官,不再由您負責。"


async def test_the_holder_is_told_when_someone_else_closes_the_ticket(h: Harness) -> None:
    # Found by a newcomer: 李警官 had taken it, 王警官 closed it; 李警官 heard nothing.
    ticket = await _report(h)
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_li")
    await h.sent()
    before = len(h.to_user("wxid_li"))
    await h.say(f"结案 #{ticket.code} 我来结", group=None, sender="wxid_wang")
    await h.sent()
    told = h.to_user("wxid_li")[before:]
    assert len(told) == 1 and "王警官" in told[0] and "结案" in told[0]
    # Closing one's own ticket tells nobody else (the closer gets only the confirmation).
    assert not [m for m in h.to_user("wxid_wang") if "由王警官结案" in m]


async def test_a_leader_sees_the_unacknowledged_p1_page_in_his_todo(h: Harness) -> None:
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    await h.sent()
    [ticket] = await h.tickets()
    assert any(f"#{ticket.code}" in t for t in h.to_user("wxid_zhao"))  # paged
    await h.say("待办", group=None, sender="wxid_zhao")
    await h.sent()
    todo = h.to_user("wxid_zhao")[-1]
    assert f"#{ticket.code}" in todo and "王警官" in todo and "沒有待辦" not in todo
    # Once acknowledged, it is the holder's again and leaves the leader's list.
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_wang")
    await h.say("待办", group=None, sender="wxid_zhao")
    await h.sent()
    assert f"#{ticket.code}" not in h.to_user("wxid_zhao")[-1]


# --- 2. no head-of-line blocking -------------------------------------------------------------
async def test_a_flood_in_one_group_never_delays_an_emergency_in_another(
    db_url: str, world: FakeWorld, tmp_path: Path
) -> None:
    h = Harness.build(db_url, world, bridge={"send_interval_s": 3})
    try:
        await h.load_directory(_with_phones(tmp_path))
        h.clock.set(MONDAY_10)
        for i in range(30):
            await h.say(f"{FIRE}{i}", group=GROUP, sender="wxid_flood")
        await h.say("河边有人落水了,快救人", group=OTHER_GROUP, sender="wxid_other")
        # One pass of the worker at the same instant: the other group's safety reply and the
        # page to its duty officer go out now, whatever is queued in the flooded group.
        await h.worker.run_once()
        delivered = h.world.state.delivered()
        assert any(d["group_id"] == OTHER_GROUP for d in delivered)
        assert any(d["user_id"] == "wxid_chen" for d in delivered)  # 河西's officer paged
        # The flood merged into one ticket and one safety reply; the group is paced.
        assert len([d for d in delivered if d["group_id"] == GROUP]) == 1
        async with h.runtime.sessions() as session:
            replies = await session.scalar(
                select(func.count()).where(OutboxMessage.group_id == GROUP)
            )
        assert replies == 1
        assert len(await h.tickets()) == 2
        # Pacing holds per chat: nothing more to that group until the interval has passed.
        await h.say("又着火了!二楼也冒烟了", group=GROUP, sender="wxid_other_neighbour")
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 1
        h.clock.advance(timedelta(seconds=3))
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 2
    finally:
        await h.close()


async def test_an_emergency_never_waits_for_an_ordinary_message_just_sent_to_its_chat(
    db_url: str, world: FakeWorld
) -> None:
    h = Harness.build(db_url, world, bridge={"send_interval_s": 3})
    try:
        await h.load_directory()
        h.clock.set(MONDAY_10)
        await h.bind("wxid_yang", group=GROUP)
        await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 1  # the acknowledgement
        # A second later, in the same group: the fire's safety reply goes out at once...
        h.clock.advance(timedelta(seconds=1))
        await h.say(FIRE, group=GROUP, sender="wxid_other")
        await h.say("我家门口的路灯坏了", group=GROUP, sender="wxid_yang")
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 2 and "119" in h.to_group(GROUP)[1]["text"]
        # ...and takes the next ordinary slot too: the acknowledgement's (3 s after the first)
        # goes to the fire, what is ordinary waits one interval more.
        h.clock.advance(timedelta(seconds=4.9))
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 2
        h.clock.advance(timedelta(seconds=0.2))
        await h.worker.run_once()
        assert len(h.to_group(GROUP)) == 3 and "建议" in h.to_group(GROUP)[2]["text"]  # 路灯
    finally:
        await h.close()


# --- 3. limits on what one resident sends ---------------------------------------------------
async def test_a_flooding_resident_opens_nothing_new_and_is_told_once_a_minute(h: Harness) -> None:
    await h.bind("wxid_yang", group=GROUP)
    for i in range(60):
        await h.say(f"建议村口第{i}个路灯修一下", group=GROUP, sender="wxid_yang")
    await h.sent()
    limit = h.runtime.settings.limits.sender_per_minute
    async with h.runtime.sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(InboundEvent.status, func.count()).group_by(InboundEvent.status)
                )
            ).all()
        )
        outgoing = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert statuses == {"handled": limit, "rate_limited": 60 - limit}  # all journaled
    assert len(await h.tickets()) <= limit
    assert outgoing is not None and outgoing <= 2 * limit + 1
    notices = [d for d in h.to_group(GROUP) if "太多" in d["text"]]
    assert len(notices) == 1
    # An emergency from the same resident still passes, at once.
    await h.say(FIRE, group=GROUP, sender="wxid_yang")
    await h.sent()
    assert "119" in h.to_group(GROUP)[-1]["text"]
    # The next minute they are told once more, and the hour's limit still holds.
    h.clock.advance(timedelta(minutes=1))
    await h.say("建议村口路灯修一下", group=GROUP, sender="wxid_yang")
    await h.sent()
    assert len([d for d in h.to_group(GROUP) if "太多" in d["text"]]) == 1


async def test_a_busy_group_keeps_answering_a_lost_child_notice_but_opens_nothing_else(
    db_url: str, world: FakeWorld
) -> None:
    h = Harness.build(db_url, world, limits={"group_per_minute": 5})
    try:
        await h.load_directory()
        h.clock.set(MONDAY_10)
        for i in range(8):
            await h.bind(f"wxid_r{i}", group=GROUP)
            await h.say(f"建议村口第{i}个路灯修一下", group=GROUP, sender=f"wxid_r{i}")
        async with h.runtime.sessions() as session:
            limited = await session.scalar(
                select(func.count()).where(InboundEvent.status == "rate_limited")
            )
        assert limited == 3
        # Officers are never limited.
        await h.say("待办", group=None, sender="wxid_wang")
        await h.say(FIRE, group=GROUP, sender="wxid_r0")
        await h.sent()
        assert any("119" in d["text"] for d in h.to_group(GROUP))
        notices = [d for d in h.to_group(GROUP) if "太多" in d["text"]]
        assert len(notices) == 1  # once a minute for the group, not once per resident
    finally:
        await h.close()


# --- SMS when the chat is down, bridge health ----------------------------------------------
async def test_a_p1_page_the_bridge_cannot_deliver_goes_by_sms_once(h: Harness) -> None:
    h.world.state.send_script.extend([503] * 50)
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    await h.drain()
    assert await h.sweep() == 0
    assert not h.world.state.by_path("/sms")  # not yet: 60 s have not passed
    h.clock.advance(timedelta(seconds=61))
    await h.sweep()
    await h.drain()
    sms = [r.json() for r in h.world.state.by_path("/sms")]
    [ticket] = await h.tickets()
    assert sorted(s["phone"] for s in sms) == ["13900000001", "13900000003"]  # 王 and 趙
    assert all(
        f"#{ticket.code}" in s["text"] and "119" not in s["text"].replace(ticket.code, "")
        for s in sms
    )
    timeline = await h.timeline(ticket)
    assert timeline.count("sms_page") == 1
    # Once: later sweeps and further undelivered messages page nobody again.
    h.clock.advance(timedelta(minutes=5))
    await h.say("火越来越大了", group=GROUP, sender="wxid_stranger")
    h.clock.advance(timedelta(seconds=61))
    await h.sweep()
    await h.drain()
    assert len(h.world.state.by_path("/sms")) == 2
    async with h.runtime.sessions() as session:
        detail = await session.scalar(
            select(TicketEvent.detail).where(TicketEvent.kind == "sms_page")
        )
    assert detail == "P1 page by SMS to off-wang, off-zhao"


async def test_an_answer_that_never_reaches_the_resident_is_chased_again(h: Harness) -> None:
    # It used to stand answered ("sent to 1 reporter") although the resident never heard it.
    ticket = await _report(h)
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_wang")
    await h.sent()
    h.world.state.group_send_script[GROUP] = deque([400])  # the group refuses it for good
    await h.say(f"#{ticket.code} 监控已调取，明天上午来所里认领", group=None, sender="wxid_wang")
    await h.sent()
    told = [t for t in h.to_user("wxid_wang") if "未能送达" in t]
    assert len(told) == 1 and f"#{ticket.code}" in told[0]
    [after] = await h.tickets()
    assert (after.status, after.answered_at) == ("acknowledged", None)
    assert after.next_check_at is not None
    assert (await h.timeline(after))[-1] == "answer_undelivered"
    # Nobody answers anew: the ladder climbs as for any unanswered ticket.
    h.clock.set(after.next_check_at + timedelta(seconds=1))
    assert await h.sweep() == 1
    # A new answer that arrives stands answered.
    await h.say(f"#{ticket.code} 已电话联系您，明天来所里认领", group=None, sender="wxid_wang")
    await h.sent()
    [answered] = await h.tickets()
    assert answered.status == "answered"
    assert any("已电话联系您" in d["text"] for d in h.to_group(GROUP))


async def test_an_urgent_message_refused_for_good_pages_by_sms_at_the_next_sweep(
    h: Harness,
) -> None:
    # Found by a newcomer: a page WeChat refused at once (the 48-hour window) still waited out
    # the 60 s before the SMS went.
    h.world.state.group_send_script[GROUP] = deque([400])
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    await h.drain()
    await h.sweep()
    await h.drain()
    assert len(h.world.state.by_path("/sms")) == 2


async def test_a_ticket_taken_in_the_chat_is_not_paged_by_sms(h: Harness) -> None:
    # Found by a newcomer: 王警官 had taken the ticket (接單) and still got "please take it".
    h.world.state.send_script.extend([503] * 50)
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    [ticket] = await h.tickets()
    await h.say(f"接單 #{ticket.code}", group=None, sender="wxid_wang")
    await h.drain()
    h.clock.advance(timedelta(seconds=61))
    await h.sweep()
    await h.drain()
    assert not h.world.state.by_path("/sms")


async def test_a_delivered_page_sends_no_sms(h: Harness) -> None:
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    await h.sent()
    h.clock.advance(timedelta(minutes=2))
    await h.sweep()
    await h.drain()
    assert not h.world.state.by_path("/sms")


async def test_the_bridge_is_marked_down_and_up_and_a_down_bridge_pages_by_sms_at_once(
    h: Harness,
) -> None:
    assert (await h.client.get("/readyz")).status_code == 200
    h.world.state.send_script.extend([502] * 40)
    await h.bind("wxid_yang", group=GROUP)
    await h.say("建议村口路灯修一下", group=GROUP, sender="wxid_yang")
    outcomes = await h.worker.run_once()  # the group's answer, the officer's notice
    assert {o.status for o in outcomes} == {"pending"}
    assert (await h.client.get("/readyz")).status_code == 200  # two failures: not yet
    h.clock.advance(timedelta(seconds=5))
    await h.worker.run_once()
    ready = await h.client.get("/readyz")
    # Named, but still ready: every instance shares the bridge, and taking them all out of
    # the load balancer would refuse residents' messages, emergencies included.
    assert ready.status_code == 200 and ready.json()["bridge"] == "down"
    # While it is down an emergency's page goes by SMS without waiting its 60 s.
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    await h.worker.run_once()
    await h.sweep()
    await h.drain()
    assert len(h.world.state.by_path("/sms")) == 2
    # The first success marks it up again.
    h.world.state.send_script.clear()
    h.clock.advance(timedelta(hours=1))
    await h.drain()
    ready = await h.client.get("/readyz")
    assert ready.status_code == 200 and "bridge" not in ready.json()


async def test_an_emergency_held_by_an_outage_goes_with_the_first_send_that_works_again(
    h: Harness,
) -> None:
    # Found by a newcomer: after a bridge outage the fire's safety reply and its P1 pages sat
    # out their backoff (22 s after two minutes down; up to backoff_max_s, ten minutes, after a
    # long outage) while ordinary messages went out.
    ordinary = make_worker(h.runtime, beside_urgent=True)
    urgent = make_worker(h.runtime, urgent=True)
    h.world.state.send_script.extend([503] * 20)
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    failed = await urgent.run_once()  # the safety reply and the pages to 王 and 趙
    assert len(failed) == 3 and {o.status for o in failed} == {"pending"}
    h.world.state.send_script.clear()
    h.runtime.urgent_wakeup.clear()
    await h.say("你好", group=None, sender="wxid_passer_by")
    assert [o.status for o in await ordinary.run_once()] == ["sent"]
    assert h.runtime.urgent_wakeup.is_set()  # the urgent lane is woken, not left to its poll
    # The clock has not moved: every one of them is still inside its backoff.
    assert sorted(o.status for o in await urgent.run_once()) == ["sent"] * 3
    [reply] = h.to_group(GROUP)
    assert "119" in reply["text"]
    assert len(h.to_user("wxid_wang")) == len(h.to_user("wxid_zhao")) == 1


async def test_two_instances_share_one_pace_per_chat(db_url: str, world: FakeWorld) -> None:
    # Two servers on one database: together they never send to a group faster than one may,
    # and a message is sent by one of them only.
    if not db_url.startswith("postgresql"):
        pytest.skip("several instances share a PostgreSQL database; SQLite runs one process")
    clock = ManualClock(MONDAY_10)
    a = Harness.build(db_url, world, clock=clock, bridge={"send_interval_s": 3})
    b = Harness.build(db_url, world, settings=a.runtime.settings, clock=clock)
    try:
        await a.load_directory()
        async with a.runtime.sessions.begin() as session:
            for i in range(4):
                enqueue(
                    session,
                    OutboundMessage(channel="bridge", text=f"第{i}條", group_id=GROUP),
                    cipher=a.runtime.cipher,
                    now=clock.now(),
                )
            enqueue(
                session,
                OutboundMessage(channel="bridge", text="另一群", group_id=OTHER_GROUP),
                cipher=a.runtime.cipher,
                now=clock.now(),
            )
        seen = []
        for _ in range(4):
            await asyncio.gather(a.worker.run_once(), b.worker.run_once())
            seen.append(len(world.state.delivered()))
            clock.advance(timedelta(seconds=1))
        # Second 0: one to each group; seconds 1 and 2: nothing; second 3: the next one.
        assert seen == [2, 2, 2, 3]
        assert [d["text"] for d in a.to_group(GROUP)] == ["第0條", "第1條"]
        assert len(world.state.sends()) == 3  # nobody sent anything twice
    finally:
        await a.close()
        await b.close()


async def test_metrics_show_events_deliveries_and_the_bridge_for_admins_only(h: Harness) -> None:
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
        officer = await create_token(s, role="officer", name="wang", now=h.clock.now())
    assert (await h.client.get("/metrics")).status_code == 401
    refused = await h.client.get("/metrics", headers={"Authorization": f"Bearer {officer}"})
    assert refused.status_code == 403

    async def scrape() -> dict[str, float]:
        r = await h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        return {
            name: float(value) for name, value in re.findall(r"^(lianxin_\S+) (\S+)$", r.text, re.M)
        }

    body = h.bridge_body("你好", group=GROUP, sender="wxid_yang")
    await h.post_bridge(body)
    await h.post_bridge(body)  # a retry
    await h.say(FIRE, group=GROUP, sender="wxid_stranger")
    m = await scrape()
    assert m['lianxin_events_received_total{channel="bridge"}'] == 3
    assert m['lianxin_events_processed_total{channel="bridge",status="duplicate"}'] == 1
    assert m['lianxin_outbox_pending{channel="bridge"}'] >= 2  # the safety reply and pages
    assert m['lianxin_channel_up{channel="bridge"}'] == 1
    await h.drain()
    h.world.state.send_script.extend([503] * 10)
    await h.say("建议村口路灯修一下", group=GROUP, sender="wxid_yang")
    for _ in range(3):
        await h.worker.run_once()
        h.clock.advance(timedelta(minutes=5))
    m = await scrape()
    assert m['lianxin_outbox_retried_total{channel="bridge"}'] >= 3
    assert m['lianxin_outbox_sent_total{channel="bridge"}'] >= 3
    assert m['lianxin_channel_up{channel="bridge"}'] == 0


async def test_metrics_count_refused_requests_by_endpoint_and_status(h: Harness) -> None:
    # A bridge with the wrong secret, a clock off, a broken bridge: each refusal was counted
    # nowhere, so an operator saw only that fewer events came in.
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    body = h.bridge_body("你好", group=GROUP)
    statuses = [
        (await h.post_bridge(body, secret="another-secret-of-32-characters-at-least")),
        (await h.post_bridge(body, at=h.clock.now() - timedelta(minutes=10))),
        (await h.post_bridge(b'{"event_id": ')),
        (await h.post_bridge(b"x" * 70_000)),
        (await h.post_wechat_safe(h.wechat_text_xml("你好"), tamper=True)),
        (await h.post_wechat_safe(h.wechat_text_xml("你好"), aes_key="x" * 43)),
    ]
    assert [r.status_code for r in statuses] == [401, 401, 422, 413, 403, 400]
    await h.say("你好", group=GROUP)  # taken: not counted
    r = await h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    refused = {
        labels: float(value)
        for labels, value in re.findall(
            r"^lianxin_requests_refused_total\{(.*)\} (\S+)$", r.text, re.M
        )
    }
    assert refused == {
        'endpoint="bridge",status="401"': 2,
        'endpoint="bridge",status="422"': 1,
        'endpoint="bridge",status="413"': 1,
        'endpoint="wechat",status="403"': 1,
        'endpoint="wechat",status="400"': 1,
    }


async def test_an_account_cap_holds_ordinary_messages_but_never_urgent_ones(
    db_url: str, world: FakeWorld
) -> None:
    h = Harness.build(db_url, world, bridge={"account_per_minute": 20})
    try:
        await h.load_directory()
        h.clock.set(MONDAY_10)
        async with h.runtime.sessions.begin() as session:
            for group in (GROUP, OTHER_GROUP, "grp-qiaozhen-02"):
                enqueue(
                    session,
                    OutboundMessage(
                        channel="bridge", text="本週防詐騙提示", group_id=group, priority=9
                    ),
                    cipher=h.runtime.cipher,
                    now=h.clock.now(),
                )
        await h.say(FIRE, group=OTHER_GROUP, sender="wxid_other")  # a safety reply and pages
        await h.worker.run_once()
        sent = h.world.state.delivered()
        # Every urgent message went at once; of the three bulletins only one (3 s apart).
        assert any("119" in d["text"] for d in sent)
        assert len([d for d in sent if d["text"] == "本週防詐騙提示"]) == 1
        h.clock.advance(timedelta(seconds=3))
        await h.worker.run_once()
        assert len([d for d in h.world.state.delivered() if d["text"] == "本週防詐騙提示"]) == 2
    finally:
        await h.close()


async def test_one_senders_flood_of_alarms_pages_three_times_and_answers_every_one(
    h: Harness,
) -> None:
    """A troll's fifteen different "emergencies" in a minute made eleven P1s and about twenty
    pages. Now one sender's open alarms in a chat page up to ``intake.alarms_per_sender``
    times; the next ones join the latest as follow-ups, each still answered at once with its
    own safety number; another resident's alarm meanwhile is a P1 of its own, paged."""
    alarms = [
        "有人打架了!拿着棍子在打人,快来",  # 110
        "着火了!村口柴房烧起来了",  # 119
        "有个老人倒在路边不动了,快叫救护车",  # 120
        "煤气泄漏了!整个楼道都是味,有人晕了",
        "救命!有小孩掉河里了",
    ]
    for text in alarms:
        await h.say(text, group=GROUP, sender="wxid_troll")
    await h.say("救命 我家着火了 快来人", group=GROUP, sender="wxid_neighbour")
    await h.sent()
    tickets = await h.tickets()
    theirs = [t for t in tickets if t.emergency]
    assert len(theirs) == 4  # three of the troll's, and the neighbour's
    pages = [m for m in h.to_user("wxid_wang") if "P1" in m]
    assert len(pages) == 4
    replies = [m["text"] for m in h.to_group(GROUP)]
    assert len(replies) == 6  # every alarm answered, its own number among them
    assert sum("119" in r[:20] for r in replies) == 2  # both fires, the troll's and hers
    third = sorted(theirs, key=lambda t: t.id)[2]
    timeline = await h.timeline(third)
    assert timeline.count("merged") == 2  # the fourth and fifth joined the third
    assert timeline.count("emergency_reply") == 3  # each answered all the same
    told = [m for m in h.to_user("wxid_wang") if f"#{third.code}" in m and "P1" not in m]
    assert len(told) == 2  # the holder reads them as follow-ups on the third
