"""Events processed together (bot/dispatcher.py ``Batch``) end as they would one at a time:
the members, memberships and rate counters a batch writes at once before its events are
handled, and what it takes back for the events it leaves to the next batch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

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
    if h.runtime.settings.inbound.slice_ms < 1:
        # Left to the next batch, the message is read again from the journal, where the
        # cut already put the pseudonym in its sender's place (as before batches shared work).
        pytest.skip("the second message must be read in the cut's batch")
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
