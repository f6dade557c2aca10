"""Residents answering officers: follow-ups reach the ticket's officer (handlers.resident)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # off-wang's day shift


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    return harness


def code_in(text: str) -> str:
    match = re.search(r"#([A-Z]\d{4,6})", text)
    assert match, text
    return match.group(1)


async def _private_ticket(h: Harness, text: str, answer: str) -> str:
    """A verified resident reports privately; 王警官 answers; returns the code."""
    await h.bind("wxid_yang", name="楊某某", phone="13912345678", group=GROUP)
    await h.say(text, group=None, sender="wxid_yang")
    await h.sent()
    code = code_in(h.to_user("wxid_yang")[-1])
    await h.say(f"#{code} {answer}", group=None, sender="wxid_wang")
    await h.sent()
    assert answer in h.to_user("wxid_yang")[-1]
    return code


async def test_a_private_reply_to_an_officers_question_reaches_the_officer(h: Harness) -> None:
    code = await _private_ticket(
        h, "我被冒充客服的骗了,转了三千块", "请问您是哪家银行的卡?几点转的账?"
    )
    before = len(h.to_user("wxid_wang"))
    # A different kind of matter on its own would be a ticket; as the answer to a question
    # it is the resident's reply.
    await h.say("工商银行的卡,晚上九点转的,对方账户是6222开头", group=None, sender="wxid_yang")
    await h.sent()
    [forwarded] = h.to_user("wxid_wang")[before:]
    assert f"#{code}" in forwarded and "工商银行" in forwarded and "楊**" in forwarded
    assert "13912345678" not in forwarded
    assert f"#{code}" in h.to_user("wxid_yang")[-1]  # told it went to the officer
    assert len(await h.tickets()) == 1
    [ticket] = await h.tickets()
    assert (await h.timeline(ticket))[-1] == "followup"


async def test_thanks_after_an_answer_reaches_the_officer_not_the_greeting(h: Harness) -> None:
    await _private_ticket(h, "请问办居住证要带什么材料", "带身份证和租房合同到户籍窗口。")
    before = len(h.to_user("wxid_wang"))
    await h.say("好的,谢谢王警官", group=None, sender="wxid_yang")
    await h.sent()
    assert any("谢谢王警官" in t for t in h.to_user("wxid_wang")[before:])


async def test_a_new_matter_after_an_answer_is_a_ticket_of_its_own(h: Harness) -> None:
    await _private_ticket(h, "请问办居住证要带什么材料", "带身份证和租房合同到户籍窗口。")
    await h.say("我家电动车昨晚在楼下被偷了", group=None, sender="wxid_yang")
    await h.sent()
    assert sorted(t.category for t in await h.tickets()) == ["consultation", "report"]


async def test_a_reply_a_day_later_is_an_ordinary_message(h: Harness) -> None:
    await _private_ticket(h, "我被冒充客服的骗了,转了三千块", "请问是哪家银行的卡?")
    h.clock.advance(timedelta(hours=25).total_seconds())
    before = len(h.to_user("wxid_wang"))
    await h.say("好的", group=None, sender="wxid_yang")
    await h.sent()
    assert h.to_user("wxid_wang")[before:] == []


async def test_code_and_words_from_a_reporter_reach_the_officer_from_a_group(h: Harness) -> None:
    await h.bind("wxid_yang", name="楊某某", phone="13912345678", group=GROUP)
    await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    code = code_in(h.to_group(GROUP)[-1]["text"])
    before = len(h.to_user("wxid_wang"))
    await h.say(f"#{code} 车是红色的雅迪,车牌后三位是527", group=GROUP, sender="wxid_yang")
    await h.sent()
    [forwarded] = h.to_user("wxid_wang")[before:]
    assert f"#{code}" in forwarded and "雅迪" in forwarded
    assert len(await h.tickets()) == 1


async def test_someone_elses_code_is_an_ordinary_message(h: Harness) -> None:
    await h.bind("wxid_yang", name="楊某某", phone="13912345678", group=GROUP)
    await h.say("我家的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    code = code_in(h.to_group(GROUP)[-1]["text"])
    before = len(h.to_user("wxid_wang"))
    await h.say(f"#{code} 哈哈", group=GROUP, sender="wxid_li_resident")
    await h.sent()
    assert not any(f"#{code}" in t and "哈哈" in t for t in h.to_user("wxid_wang")[before:])


async def test_a_closed_tickets_code_says_it_is_closed(h: Harness) -> None:
    code = await _private_ticket(h, "请问办居住证要带什么材料", "带身份证到户籍窗口。")
    await h.say(f"结案 #{code} 已答复", group=None, sender="wxid_wang")
    await h.sent()
    await h.say(f"#{code} 还有一个问题", group=None, sender="wxid_yang")
    await h.sent()
    assert "已结案" in h.to_user("wxid_yang")[-1]


async def test_an_emergency_stranger_answers_the_officers_question(h: Harness) -> None:
    # Unverified and in private: the officer's "are you safe?" still gets its answer.
    await h.say("有人在我家門口打架,拿著棍子,快來人!", group=None, sender="wxid_stranger")
    await h.sent()
    [ticket] = await h.tickets()
    await h.say(f"#{ticket.code} 巡警已到場,請問您現在安全嗎?", group=None, sender="wxid_wang")
    await h.sent()
    before = len(h.to_user("wxid_wang"))
    await h.say("安全了,謝謝", group=None, sender="wxid_stranger")
    await h.sent()
    assert any("安全了" in t for t in h.to_user("wxid_wang")[before:])
