"""Residents asking after their matters, in a group and privately: what a group may be told
of a matter reported privately (a newcomer's trial, findings 6, 8 and 9)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from models.tickets import Ticket
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # off-wang's day shift
PRIVATE_MATTER = "我老公喝了酒经常打我,我不敢在群里说,想咨询一下能不能申请人身保护令"


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    return harness


async def _one_here_one_private(h: Harness) -> tuple[Ticket, Ticket]:
    """劉阿姨's street lamp raised in the group, and a matter she reported privately."""
    await h.bind("wxid_liu", name="劉某某", phone="13912340000", group=GROUP)
    await h.say("建议在村口装个路灯,晚上太黑了", group=GROUP, sender="wxid_liu")
    await h.say(PRIVATE_MATTER, group=None, sender="wxid_liu")
    lamp, private = await h.tickets()
    assert (lamp.group_id, private.group_id) == (GROUP, None)
    return lamp, private


def _said_in_group(h: Harness) -> str:
    return "\n".join(m["text"] for m in h.to_group(GROUP))


async def test_a_query_in_a_group_lists_only_that_groups_matters(h: Harness) -> None:
    # Found by a newcomer: 查询 in the village group announced "#T0831(报警)…", a report of
    # violence at home she had made privately.
    lamp, private = await _one_here_one_private(h)
    await h.sent()
    await h.say("查询", group=GROUP, sender="wxid_liu")
    await h.sent()
    said = _said_in_group(h)
    assert f"#{lamp.code}" in said and f"#{private.code}" not in said
    # One line says where the rest may be asked about, without counting or naming them.
    [hint] = [m for m in h.to_group(GROUP) if "私下反映" in m["text"]]
    assert "私聊" in hint["text"] and not any(c.isdigit() for c in hint["text"])
    # Asked about by its code in the group, it is answered privately.
    await h.say(f"查询 #{private.code}", group=GROUP, sender="wxid_liu")
    await h.sent()
    assert f"#{private.code}" not in _said_in_group(h)
    assert f"#{private.code}" in h.to_user("wxid_liu")[-1]
    # Privately, everything, as before.
    await h.say("查询", group=None, sender="wxid_liu")
    await h.sent()
    listed = h.to_user("wxid_liu")[-2:]
    assert all(any(f"#{t.code}" in m for m in listed) for t in (lamp, private))


async def test_a_query_in_a_group_without_its_matters_says_nothing_of_the_others(
    h: Harness,
) -> None:
    await h.bind("wxid_liu", name="劉某某", phone="13912340000", group=GROUP)
    await h.say(PRIVATE_MATTER, group=None, sender="wxid_liu")
    [private] = await h.tickets()
    await h.say("查询", group=GROUP, sender="wxid_liu")
    await h.sent()
    [answer] = h.to_group(GROUP)
    assert "本群" in answer["text"] and f"#{private.code}" not in answer["text"]


async def test_a_rating_in_a_group_of_a_private_matter_is_answered_privately(h: Harness) -> None:
    # Found by a newcomer: "满意，谢谢李警官" in the group got "#T0831 已记录为满意" there.
    _, private = await _one_here_one_private(h)
    await h.say(f"结案 #{private.code} 已告知申请办法", group=None, sender="wxid_wang")
    await h.sent()
    await h.say("不满意 说了等于没说", group=GROUP, sender="wxid_liu")
    await h.sent()
    [_, private] = await h.tickets()
    assert (private.satisfaction, private.status) == ("unsatisfied", "escalated")
    assert f"#{private.code}" not in _said_in_group(h)
    assert "重新开启" in h.to_user("wxid_liu")[-1]
    # Words on its code written in the group reach the officer; the answer comes privately.
    await h.say(f"#{private.code} 他昨天晚上又喝多了", group=GROUP, sender="wxid_liu")
    await h.sent()
    assert any("又喝多了" in m for m in h.to_user("wxid_zhao"))
    assert f"#{private.code}" in h.to_user("wxid_liu")[-1]
    await h.say(f"结案 #{private.code} 已联系妇联一起上门", group=None, sender="wxid_zhao")
    await h.say("满意，谢谢赵所长", group=GROUP, sender="wxid_liu")
    await h.sent()
    [_, private] = await h.tickets()
    assert private.satisfaction == "satisfied"
    assert f"#{private.code}" not in _said_in_group(h)
    assert "满意" in h.to_user("wxid_liu")[-1] and f"#{private.code}" in h.to_user("wxid_liu")[-1]


async def test_words_with_a_code_in_its_group_reach_the_officer_unless_bare_thanks(
    h: Harness,
) -> None:
    # Found by a newcomer: "#L0987 好的 我明天上午过去" from a reporter who had unbound, and a
    # neighbour's "#U8611 路灯已经修好了，谢谢", were dropped as chatter: no answer, no officer.
    await h.bind("wxid_zhou", name="周某某", phone="13700001111", group=GROUP)
    await h.say("我的电动车昨晚在楼下被偷了", group=GROUP, sender="wxid_zhou")
    [bike] = await h.tickets()
    await h.say(f"#{bike.code} 监控调了,你方便来所里做个笔录吗?", group=None, sender="wxid_wang")
    await h.say("注销实名", group=None, sender="wxid_zhou")
    await h.sent()
    before = len(h.to_user("wxid_wang"))
    await h.say(f"#{bike.code} 好的 我明天上午过去", group=GROUP, sender="wxid_zhou")
    await h.sent()
    [heard] = h.to_user("wxid_wang")[before:]
    assert f"#{bike.code}" in heard and "明天上午过去" in heard
    told = h.to_group(GROUP)[-1]
    assert told["mentions"] == ["wxid_zhou"] and "王警官" in told["text"]
    # A neighbour's news with thanks after it is news; thanks or OK alone are not.
    await h.say(f"#{bike.code} 车找到了,在村口河边,谢谢", group=GROUP, sender="wxid_ma")
    for bare in ("谢谢👍", "好的!", "收到🙏", "嗯嗯", "谢谢王警官"):
        await h.say(f"#{bike.code} {bare}", group=GROUP, sender="wxid_ma")
    await h.sent()
    heard_now = h.to_user("wxid_wang")[before + 1 :]
    assert len(heard_now) == 1 and "在村口河边" in heard_now[0] and "非报案人" in heard_now[0]
    assert len(await h.tickets()) == 1


async def test_asking_how_ones_matter_goes_is_answered_and_opens_nothing(h: Harness) -> None:
    # Found by a newcomer: "我的事情怎么样了？都三天了也没人回" and "我家鸡的事有进展没有啊"
    # became new consultations; nobody told the resident how their matter stood.
    lamp, private = await _one_here_one_private(h)
    await h.sent()
    await h.say("我的事情怎么样了？都三天了也没人回", group=GROUP, sender="wxid_liu")
    await h.sent()
    assert len(await h.tickets()) == 2
    said = _said_in_group(h)
    assert f"#{lamp.code}(建议)目前状态:待接单" in said and f"#{private.code}" not in said
    assert "私下反映" in h.to_group(GROUP)[-1]["text"]
    # Privately every open matter; in Traditional, answered in Traditional.
    await h.say("王警官，我家鸡的事有进展没有啊？？", group=None, sender="wxid_liu")
    await h.say("我反應的問題有結果了嗎", group=GROUP, sender="wxid_liu")
    await h.sent()
    assert len(await h.tickets()) == 2
    assert any(f"#{private.code}(报警)目前状态" in m for m in h.to_user("wxid_liu"))
    assert f"#{lamp.code}(建議)目前狀態" in h.to_group(GROUP)[-2]["text"]
    # Somebody with no open matter of the group asks: a message like any other, as before.
    await h.bind("wxid_ma", name="馬某某", phone="13600001234", group=GROUP)
    await h.say("我反映的问题有结果了吗", group=GROUP, sender="wxid_ma")
    await h.sent()
    assert "目前状态" not in h.to_group(GROUP)[-1]["text"]


async def test_the_acknowledgement_says_how_to_add_to_the_matter(h: Harness) -> None:
    await h.bind("wxid_huang", name="黃某某", phone="13912340001", group=GROUP)
    await h.say("建議在村口裝個路燈,晚上太黑了", group=GROUP, sender="wxid_huang")
    await h.say("请问护照怎么办理,需要什么材料", group=GROUP, sender="wxid_huang")
    await h.sent()
    hant, hans = (m["text"] for m in h.to_group(GROUP))
    first, second = await h.tickets()
    assert f"「#{first.code} 補充內容」" in hant and f"“#{second.code} 补充内容”" in hans
