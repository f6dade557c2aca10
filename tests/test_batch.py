"""Events processed together (bot/dispatcher.py ``Batch``) end as they would one at a time:
the members, memberships and rate counters a batch writes at once before its events are
handled, and what it takes back for the events it leaves to the next batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models.bulletins import AlertAck
from models.journal import InboundEvent
from models.outbox import RateCounter
from models.people import GroupMember, Member
from tests.fakes import FakeWorld
from tests.harness import Harness
from tests.test_pipeline import plain_client, post

GROUP = "grp-qiaozhen-01"


@pytest.fixture(params=[60_000.0, 0.001], ids=["one batch", "sliced"])
async def h(
    request: pytest.FixtureRequest, db_url: str, world: FakeWorld
) -> AsyncIterator[Harness]:
    """A harness whose processor takes the whole queue in one batch, or (sliced) stops after
    each event and leaves the rest of what it claimed to the next batch."""
    h = Harness.build(
        db_url,
        world,
        limits={"sender_per_minute": 5},
        inbound={"process_batch": 64, "slice_ms": request.param},
    )
    await h.load_directory()
    yield h
    await h.close()


async def _statuses(h: Harness) -> dict[str, int]:
    async with h.runtime.sessions() as s:
        rows = await s.execute(
            select(InboundEvent.status, func.count()).group_by(InboundEvent.status)
        )
        return {status: int(n) for status, n in rows.all()}


async def test_a_flood_in_one_batch_is_limited_and_counted_as_one_by_one(h: Harness) -> None:
    await h.bind("wxid_yang", group=GROUP)
    client = plain_client(h)
    for i in range(12):
        await post(client, h, f"建议村口第{i}个路灯修一下", group=GROUP, sender="wxid_yang")
    await h.pipeline.drain()
    await client.aclose()
    assert await _statuses(h) == {"handled": 5, "rate_limited": 7}
    async with h.runtime.sessions() as s:
        counts = sorted((await s.scalars(select(RateCounter.count))).all())
    # sender per minute, per hour, the group per minute: every event once; the notices'
    # counter: every event over the limit (the first of the minute is told)
    assert counts == [7, 12, 12, 12]
    await h.sent()
    assert len([d for d in h.to_group(GROUP) if "太多" in d["text"]]) == 1


async def _membership(h: Harness, sender: str) -> GroupMember:
    async with h.runtime.sessions() as s:
        member = await s.scalar(select(Member).where(Member.sender_id == sender))
        assert member is not None
        row = await s.scalar(select(GroupMember).where(GroupMember.member_id == member.id))
        assert row is not None
        return row


async def test_joins_leaves_and_messages_in_one_batch_keep_their_order(h: Harness) -> None:
    client = plain_client(h)
    await post(client, h, "", type="member_joined", group=GROUP, sender="wxid_new")
    await post(client, h, "", type="member_left", group=GROUP, sender="wxid_new")
    await post(client, h, "大家好", group=GROUP, sender="wxid_new")  # speaks: in the group again
    await h.pipeline.drain()
    assert (await _membership(h, "wxid_new")).left_at is None

    await post(client, h, "大家好", group=GROUP, sender="wxid_new")
    await post(client, h, "", type="member_left", group=GROUP, sender="wxid_new")
    await h.pipeline.drain()
    await client.aclose()
    assert (await _membership(h, "wxid_new")).left_at is not None


async def test_a_resident_who_cuts_the_link_and_writes_again_in_one_batch_is_a_new_member(
    h: Harness,
) -> None:
    # Also when left to the next batch and read again from the journal: the cut gives the
    # pseudonym only to the rows up to its own, so the message still names its sender.
    await h.bind("wxid_yang", group=GROUP)
    client = plain_client(h)
    await post(client, h, "註銷實名", group=None, sender="wxid_yang")
    await post(client, h, "你好", group=GROUP, sender="wxid_yang")
    await h.pipeline.drain()
    await client.aclose()
    async with h.runtime.sessions() as s:
        members = (await s.scalars(select(Member).order_by(Member.id))).all()
    first, again = [m for m in members if m.id in (members[0].id, members[-1].id)]
    assert first.sender_id.startswith("anon:") and again.sender_id == "wxid_yang"
    row = await _membership(h, "wxid_yang")
    assert row.member_id == again.id and row.left_at is None


async def _status_of_last(h: Harness) -> str:
    async with h.runtime.sessions() as s:
        status = await s.scalar(select(InboundEvent.status).order_by(InboundEvent.id.desc()))
        assert status is not None
        return status


async def test_our_reply_queued_earlier_in_the_batch_counts_as_our_echo(h: Harness) -> None:
    greeting = h.runtime.texts.render("private_greeting", "hans")
    client = plain_client(h)
    await post(client, h, "你好", group=None, sender="wxid_a")  # answered with the greeting
    await post(client, h, greeting, group=None, sender="wxid_a")  # the greeting coming back
    await h.pipeline.drain()
    await client.aclose()
    assert await _status_of_last(h) == "own_message"
    assert await _statuses(h) == {"handled": 1, "own_message": 1}


async def test_after_a_cut_link_our_earlier_words_to_them_are_no_echo(h: Harness) -> None:
    greeting = h.runtime.texts.render("private_greeting", "hans")
    await h.bind("wxid_yang")
    await h.say("你好", group=None, sender="wxid_yang")  # processed: the greeting queued …
    await h.sent()  # … and sent: the row now names them
    client = plain_client(h)
    await post(client, h, "註銷實名", group=None, sender="wxid_yang")
    await post(client, h, greeting, group=None, sender="wxid_yang")  # a new member writes it
    await h.pipeline.drain()
    await client.aclose()
    # The greeting went to the account before the cut; the row now names the pseudonym.
    assert await _status_of_last(h) == "handled"


async def test_a_refused_answer_goes_out_once_when_the_resident_writes_twice_in_one_batch(
    db_url: str, world: FakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness.build(
        db_url,
        world,
        wechat={"reply_mode": "api"},
        inbound={"process_batch": 64, "slice_ms": 60_000.0},
    )
    try:
        await h.load_directory()
        await h.bind("o_resident", channel="wechat")
        await h.post_wechat_safe(
            h.wechat_text_xml("我想咨询一下办理居住证需要什么材料", openid="o_resident")
        )
        [ticket] = await h.tickets()
        h.clock.advance(timedelta(hours=49).total_seconds())
        h.world.state.custom_send_script.extend([45015])  # the resident's window has closed
        await h.say(f"#{ticket.code} 带身份证到户籍窗口办理", group=None, sender="wxid_county")
        await h.drain()
        h.clock.advance(timedelta(hours=30).total_seconds())
        settled, h.client = h.client, plain_client(h)  # both messages wait for one batch
        for text in ("你好,请问有结果了吗", "在吗"):
            await h.post_wechat_safe(h.wechat_text_xml(text, openid="o_resident"))
        await h.client.aclose()
        h.client = settled
        await h.pipeline.drain()
        h.clock.advance(10)
        await h.drain()
        # Queued again once, in the batch itself (not after the batch failed on a second copy
        # and its events were retried one by one).
        assert "one by one" not in caplog.text
        assert "failed" not in await _statuses(h)
        sends = h.world.state.by_path("/cgi-bin/message/custom/send")
        delivered = [
            s.json()["text"]["content"] for s in sends if s.headers["x-fake-accepted"] == "1"
        ]
        assert sum("户籍窗口" in t for t in delivered) == 1
    finally:
        await h.close()


async def test_an_alert_sent_by_chat_is_answered_in_the_same_batch(h: Harness) -> None:
    client = plain_client(h)
    await post(client, h, "大家好", group=GROUP, sender="wxid_b")  # asks: no alert went out
    await post(
        client,
        h,
        "紧急通报 橋鎮派出所 今晚有寒潮,请照顾好独居老人。",
        group=None,
        sender="wxid_zhao",
    )
    await post(client, h, "收到", group=GROUP, sender="wxid_a")  # answers the alert
    await h.pipeline.drain()
    await client.aclose()
    async with h.runtime.sessions() as s:
        acks = (await s.scalars(select(AlertAck.member_id))).all()
    assert len(acks) == 1


QUESTION = "已收到,请问是几路公交车？"


async def _reported_privately(h: Harness) -> str:
    """A bound resident reports a theft privately; returns the ticket's code."""
    await h.bind("wxid_yang", group=GROUP)
    await h.say("我的钱包在公交车上被偷了", group=None, sender="wxid_yang")
    await h.sent()
    [ticket] = await h.tickets()
    return ticket.code


async def _in_one_batch(h: Harness, messages: list[tuple[str, str]]) -> None:
    """Private (sender, text) messages journaled first and then processed together."""
    client = plain_client(h)
    for sender, text in messages:
        await post(client, h, text, group=None, sender=sender)
    await client.aclose()
    await h.pipeline.drain()
    await h.sent()


async def test_an_officers_question_and_the_residents_answer_in_one_batch_reach_the_officer(
    h: Harness,
) -> None:
    # The batch reads at once which private senders have a ticket answered lately (none here:
    # the question is in the batch itself); the officer's event makes it ask again.
    code = await _reported_privately(h)
    await _in_one_batch(h, [("wxid_wang", f"#{code} {QUESTION}"), ("wxid_yang", "23路")])
    forwarded = [t for t in h.to_user("wxid_wang") if "23路" in t]
    assert len(forwarded) == 1 and f"#{code}" in forwarded[0]
    assert len(await h.tickets()) == 1


async def test_two_answers_of_a_resident_in_one_batch_both_reach_the_officer(
    h: Harness,
) -> None:
    code = await _reported_privately(h)
    await h.say(f"#{code} {QUESTION}", group=None, sender="wxid_wang")
    await h.sent()
    await _in_one_batch(h, [("wxid_yang", "23路"), ("wxid_yang", "下午三点左右在车上")])
    forwarded = [t for t in h.to_user("wxid_wang") if f"#{code}" in t]
    assert sum("23路" in t for t in forwarded) == 1
    assert sum("下午三点" in t for t in forwarded) == 1
    assert len(await h.tickets()) == 1


async def test_an_alarm_and_its_reporters_update_in_one_batch_reach_the_officer(
    h: Harness,
) -> None:
    # The batch reads at once which group senders raised an emergency lately (none: it is in
    # the batch itself); the alarm's event makes it ask again for the update.
    client = plain_client(h)
    await post(client, h, "我家孩子不见了 快来人帮忙找", group=GROUP, sender="wxid_mum")
    await post(client, h, "孩子找到了!!在奶奶家 谢谢大家", group=GROUP, sender="wxid_mum")
    await post(client, h, "哈哈", group=GROUP, sender="wxid_mum")
    await client.aclose()
    await h.pipeline.drain()
    await h.sent()
    [ticket] = await h.tickets()
    assert ticket.emergency
    assert (await h.timeline(ticket)).count("followup") == 1  # the update, not the 哈哈
