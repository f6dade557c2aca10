"""註銷實名 cuts the account link (issue 12, finding 8), through the real surfaces.

Bridge events and WeChat callbacks go into the ASGI app with the whole handler chain; the fake
bridge and WeChat API receive what is sent. After the deletion no row of any table — every
string column, and every encrypted column read with the key — holds the resident's id, while
their tickets stay open with their texts and timelines.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import LargeBinary, select

from bot.pii import PSEUDONYM_PREFIX
from bot.services.keyrotation import encrypted_columns
from models.base import Base
from models.journal import InboundEvent
from models.people import Binding, GroupMember, Member
from models.tickets import TicketReporter
from tests.harness import Harness
from tests.test_verification import bind, dm, sms_to

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # off-wang's day shift
PHONE = "13812345678"


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    return harness


def code_in(text: str) -> str:
    match = re.search(r"#([A-Z]\d{4,6})", text)
    assert match, text
    return match.group(1)


async def holders_of(h: Harness, needle: str) -> list[str]:
    """``table.column#id`` of every value holding ``needle``: every column of every table of
    the models (a table added later is covered too), encrypted columns read with the key."""
    encrypted_columns()  # imports every model module, so that every table is on the metadata
    cipher = h.runtime.cipher
    found = []
    async with h.runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if value is None:
                        continue
                    if isinstance(column.type, LargeBinary):
                        try:
                            value = cipher.decrypt(value)
                        except ValueError:
                            continue  # not a ciphertext of ours
                    if needle in str(value):
                        found.append(f"{table.name}.{column.name}#{row.get('id', '?')}")
    return found


async def one(h: Harness, model: type, *where: Any) -> Any:
    async with h.runtime.sessions() as session:
        return (await session.scalars(select(model).where(*where))).one()


async def all_of(h: Harness, model: type, *where: Any) -> list[Any]:
    async with h.runtime.sessions() as session:
        return list((await session.scalars(select(model).where(*where))).all())


async def test_unbinding_cuts_every_link_and_keeps_the_matter(h: Harness) -> None:
    # A verified resident in a group: a report there and one privately, a neighbour and the
    # officer @-mentioning them, an answer still waiting to be sent when they delete.
    await h.post_bridge(h.bridge_body(type="member_joined", sender="wxid_yang", group=GROUP))
    await bind(h, name="杨某某", phone=PHONE)
    await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    in_group = code_in(h.to_group(GROUP)[-1]["text"])
    await h.say("我想咨询一下办理居住证需要什么材料", group=None, sender="wxid_yang")
    await h.sent()
    private = code_in(h.to_user("wxid_yang")[-1])
    await h.say("我也看到了小偷", group=GROUP, sender="wxid_neighbour", mentions=["wxid_yang"])
    await h.say(f"#{in_group} 已调取监控,请到派出所做笔录", group=None, sender="wxid_wang")
    await h.sent()
    assert [m["mentions"] for m in h.to_group(GROUP) if "调取监控" in m["text"]] == [["wxid_yang"]]
    await h.say(f"#{private} 带身份证和租房合同到户籍窗口办理", group=None, sender="wxid_county")
    await h.say(f"#{in_group} 民警下午到您家", group=None, sender="wxid_wang")
    before = await holders_of(h, "wxid_yang")
    tables = {place.split(".")[0] for place in before}
    assert {"members", "inbound_events", "outbox", "ticket_reporters"} <= tables, before

    # Two answers are still waiting: they reach them, then forget them.
    answers = await dm(h, "註銷實名")
    assert any("带身份证" in a for a in answers), answers
    assert [m["mentions"] for m in h.to_group(GROUP) if "下午到您家" in m["text"]] == [
        ["wxid_yang"]
    ]
    [done] = [a for a in answers if "已註銷實名" in a]
    assert f"#{in_group}" in done and f"#{private}" in done and "不會再發給您" in done

    assert await holders_of(h, "wxid_yang") == []
    assert await all_of(h, Binding) == []
    tickets = {t.code: t for t in await h.tickets()}
    assert set(tickets) == {in_group, private}
    for ticket in tickets.values():
        assert ticket.status in ("answered", "new", "acknowledged")
        assert "reporter_left" in await h.timeline(ticket)
    assert h.runtime.cipher.decrypt(tickets[in_group].text_enc) == "我家的电动车昨晚在楼下被偷了"
    reporters = await all_of(h, TicketReporter)
    assert len(reporters) == 2
    assert all((r.sender_id or "").startswith(PSEUDONYM_PREFIX) for r in reporters)
    assert len({r.sender_id for r in reporters}) == 1  # one person, one pseudonym
    old = await one(h, Member, Member.sender_id == reporters[0].sender_id)
    assert old.nickname_enc is None  # a nickname would tie them again
    theirs = await all_of(h, InboundEvent, InboundEvent.sender_id == old.sender_id)
    assert len(theirs) >= 5
    payloads = [h.runtime.cipher.decrypt_json(e.payload_enc) for e in theirs]
    assert all(p.get("nickname") is None for p in payloads)
    assert any("电动车" in (p.get("text") or "") for p in payloads)  # their words stay
    [membership] = await all_of(h, GroupMember, GroupMember.member_id == old.id)
    assert membership.left_at is not None  # not counted twice when they write again
    # The officer holding them hears it once, naming both tickets.
    assert {t.assigned_officer_id for t in tickets.values()} == {"off-wang"}
    [told] = [m for m in h.to_user("wxid_wang") if "无法再送达" in m]
    assert f"#{in_group}" in told and f"#{private}" in told

    # Writing again, they are a new, unbound member; the old tickets no longer reach them.
    assert "还没有实名认证" in (await dm(h, "我的信息"))[0]
    new = await one(h, Member, Member.sender_id == "wxid_yang")
    assert new.id != old.id
    sent_before = len(h.world.state.delivered())
    await h.say(f"#{in_group} 嫌疑人已抓获", group=None, sender="wxid_wang")
    await h.sent()
    new_messages = h.world.state.delivered()[sent_before:]
    assert [m["user_id"] for m in new_messages] == ["wxid_wang"]
    assert "报事人已注销实名" in new_messages[0]["text"] and "无法送达" in new_messages[0]["text"]
    assert (await h.tickets())[0].status == "answered"
    query = await dm(h, f"查询 #{in_group}")
    assert query and f"#{in_group}" in query[0] and "嫌疑人" not in query[0]


@pytest.mark.both_reply_modes
async def test_unbinding_on_the_official_account_forgets_the_openid(h: Harness) -> None:
    # The passive reply is sent in the HTTP response; WeChat's de-duplication keys name the
    # sender ("msg:<openid>:<MsgId>").
    await h.bind("o_resident", channel="wechat", phone=PHONE)
    r = await h.post_wechat_safe(
        h.wechat_text_xml("我想咨询一下办理居住证需要什么材料", openid="o_resident")
    )
    code = code_in((await h.reply_to(r))["Content"])
    r = await h.post_wechat_safe(h.wechat_text_xml("注销实名", openid="o_resident"))
    reply = (await h.reply_to(r))["Content"]
    assert "已注销实名" in reply and f"#{code}" in reply
    await h.drain()
    assert await holders_of(h, "o_resident") == []
    [ticket] = await h.tickets()
    assert "reporter_left" in await h.timeline(ticket)


@pytest.mark.both_reply_modes
async def test_a_retry_after_unbinding_is_still_handled_once(h: Harness) -> None:
    # Found by a newcomer: WeChat retried a fire message after the sender's 注销实名; the
    # rewritten key no longer matched, and the fire got a second P1 and a second page.
    await h.bind("o_resident", channel="wechat", phone=PHONE)
    fire = h.wechat_text_xml("着火了!楼道里全是烟", openid="o_resident", msg_id=77_000_001)
    await h.post_wechat_safe(fire)
    await h.post_wechat_safe(h.wechat_text_xml("注销实名", openid="o_resident"))
    await h.drain()
    pages = len([m for m in h.to_user("wxid_wang") if "P1" in m])
    await h.post_wechat_safe(fire)  # the same MsgId again
    await h.drain()
    assert len(await h.tickets()) == 1
    assert len([m for m in h.to_user("wxid_wang") if "P1" in m]) == pages
    # The forgotten rows' keys name nobody; only the retry's own row (a new sender's) does.
    async with h.runtime.sessions() as session:
        keys = (
            await session.scalars(select(InboundEvent.dedup_key).order_by(InboundEvent.id))
        ).all()
    assert keys[0].startswith("forgotten:") and keys[1].startswith("forgotten:")
    assert keys[2] == "msg:o_resident:77000001"
    # A new message from the same account is a new sender's, handled as usual.
    await h.post_wechat_safe(h.wechat_text_xml("又着火了,二楼也冒烟了", openid="o_resident"))
    await h.drain()
    assert len(await h.tickets()) == 2


async def test_binding_and_deleting_twice_leaves_two_pseudonyms(h: Harness) -> None:
    await bind(h, phone=PHONE)
    assert "已注销实名" in (await dm(h, "注销实名"))[0]
    h.clock.advance(3600)
    await dm(h, f"实名 张三 {PHONE}")
    assert "成功" in (await dm(h, re.findall(r"\d{6}", sms_to(h.world)[-1])[0]))[0]
    assert "已注销实名" in (await dm(h, "注销实名"))[0]
    members = await all_of(h, Member, Member.sender_id.startswith(PSEUDONYM_PREFIX))
    assert len(members) == 2 and members[0].sender_id != members[1].sender_id
    assert await holders_of(h, "wxid_yang") == []


async def test_deleting_without_a_binding_keeps_the_link(h: Harness) -> None:
    # Nothing real-name to delete: the command says so, and a held report stays theirs.
    await h.say("我想咨询一下办理居住证需要什么材料", group=None, sender="wxid_yang")
    await h.sent()
    assert "无需注销" in (await dm(h, "注销实名"))[0]
    assert await one(h, Member, Member.sender_id == "wxid_yang")
    assert await all_of(h, Member, Member.sender_id.startswith(PSEUDONYM_PREFIX)) == []


async def test_no_event_may_speak_as_a_pseudonym(h: Harness) -> None:
    await bind(h, phone=PHONE)
    await dm(h, "注销实名")
    [old] = await all_of(h, Member, Member.sender_id.startswith(PSEUDONYM_PREFIX))
    response = await h.post_bridge(h.bridge_body("我的信息", group=None, sender=old.sender_id))
    assert response.status_code == 422 and "reserved" in response.text
