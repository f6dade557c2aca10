"""Residents' real days in both channels (a newcomer's trial, 2026-12-08): what they met that
the earlier trials did not — a reporter leaving the group while their matter is open, a code
typed back the way elders type it, a forwarded scam text, a photo sent before its caption."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.channels.bridge import signed_headers
from tests.harness import BRIDGE_SECRET, Harness

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


async def test_a_reporter_who_left_the_group_gets_the_answer_privately(h: Harness) -> None:
    await h.bind("wxid_zhang", name="張秀英", phone="13812345678", group=GROUP)
    await h.say("昨晚我家电动车在楼下棚子里被人剪了锁偷走了", group=GROUP, sender="wxid_zhang")
    await h.sent()
    code = code_in(h.to_group(GROUP)[0]["text"])

    # She leaves the group (a new phone, a move) while the matter is open.
    await h.post_bridge(h.bridge_body(type="member_left", sender="wxid_zhang", group=GROUP))
    await h.sent()
    told = [t for t in h.to_user("wxid_wang") if "退出" in t]
    assert len(told) == 1 and f"#{code}" in told[0] and "私聊" in told[0]
    assert "报事人" in told[0]  # in the ticket's script, as its other notices

    posts_before = len(h.to_group(GROUP))
    await h.say(f"#{code} 调了监控,请问车是什么颜色", group=None, sender="wxid_wang")
    await h.sent()
    assert len(h.to_group(GROUP)) == posts_before  # nobody @-mentioned who is not there
    assert any("什么颜色" in t for t in h.to_user("wxid_zhang"))


async def _wx(h: Harness, text: str, openid: str = "o_liu") -> str:
    response = await h.post_wechat_safe(h.wechat_text_xml(text, openid=openid))
    assert response.status_code == 200, response.text
    return str((await h.reply_to(response))["Content"])


async def _sms_code(h: Harness, phone: str) -> str:
    await h.drain()
    (sms,) = [r.json()["text"] for r in h.world.state.by_path("/sms") if r.json()["phone"] == phone]
    match = re.search(r"\d{6}", sms)
    assert match, sms
    return match.group()


async def test_a_code_typed_back_among_words_or_short_of_a_digit_is_understood(
    h: Harness,
) -> None:
    assert "159****5678" in await _wx(h, "实名 刘桂兰 15912345678")
    code = await _sms_code(h, "15912345678")
    # One digit missed: told it is six digits, no try counted, not the greeting.
    short = await _wx(h, f"验证码是{code[:5]}")
    assert "6位" in short and "5位" in short and "有事请直接说明" not in short
    # The code with words around it, as elders type it.
    wrong = await _wx(h, f"唔該晒 {code[::-1] if code[::-1] != code else '000000'}")  # Cantonese
    assert "不正确" in wrong, wrong
    bound = await _wx(h, f"我的验证码是 {code} 谢谢")
    assert "实名认证成功" in bound, bound
    # Once bound, digits among words are no code any more: an ordinary message.
    assert "验证码" not in await _wx(h, "验证码是123456")


async def test_a_scam_text_pasted_into_the_group_gets_the_warning_and_an_officer(
    h: Harness,
) -> None:
    await h.bind("wxid_liu", name="劉大爺", phone="13712345678", group=GROUP)
    await h.say(
        "【重要通知】尊敬的医保用户您好,您的医保卡已被冻结,涉嫌违规套现,请在24小时内联系国家"
        "医保局专员处理,需要将资金转入安全账户进行核查,核查完成后原路退回。点击链接办理:"
        "http://ybj-gov.cn.xyz/verify 切勿告诉他人",
        group=GROUP,
        sender="wxid_liu",
    )
    await h.sent()
    said = [m["text"] for m in h.to_group(GROUP)]
    assert any("防诈提醒" in t for t in said), said
    [ticket] = await h.tickets()
    assert ticket.category == "consultation"


async def test_a_photo_sent_before_its_caption_reaches_the_officer_with_it(h: Harness) -> None:
    await h.bind("wxid_zhang", name="張秀英", phone="13812345678", group=GROUP)
    photo = "https://bridge.example/m/lock.jpg"
    body = h.bridge_body("", group=GROUP, sender="wxid_zhang", media_url=photo)
    body["message"]["type"] = "image"
    assert (await h.post_bridge(body)).status_code == 200
    await h.say(
        "这是我家门口的电动车被人剪了锁 昨晚停的早上就没了", group=GROUP, sender="wxid_zhang"
    )
    await h.sent()
    [notice] = h.to_user("wxid_wang")
    assert "剪了锁" in notice and photo in notice and "[图片]" in notice
    # Before a long message, the photo still reaches the officer (quotes are clipped at 500).
    await h.post_bridge(body | {"event_id": "evt-photo-2"})
    await h.say("另外说一下 " + "村口那段路晚上没有路灯 " * 60, group=GROUP, sender="wxid_zhang")
    await h.sent()
    assert photo in h.to_user("wxid_wang")[-1]
    # Only the photos just before: a later matter in words does not carry them again.
    await h.say("另外想问下 孩子办身份证要预约吗", group=GROUP, sender="wxid_zhang")
    await h.sent()
    assert photo not in h.to_user("wxid_wang")[-1]


async def test_the_same_matter_in_the_group_and_privately_is_one_ticket(h: Harness) -> None:
    said = "我家門口那條路的路燈壞了一個多禮拜了 晚上黑漆漆的 老人走路怕摔 能不能找人修一下"
    await h.bind("wxid_huang", name="黃美玲", phone="13712345678", group=GROUP)
    await h.say(said, group=GROUP, sender="wxid_huang")
    await h.sent()
    code = code_in(h.to_group(GROUP)[0]["text"])
    # The same words pasted into the private chat too, "in case".
    await h.say("警察同志 " + said, group=None, sender="wxid_huang")
    await h.sent()
    assert len(await h.tickets()) == 1
    # Acknowledged where she wrote it, with the code she already has; the group hears nothing.
    [merged] = h.to_user("wxid_huang")
    assert f"#{code}" in merged
    assert len(h.to_group(GROUP)) == 1
    # Told privately first and then in the group: the group's is its own (its acknowledgement
    # there must not name the private matter).
    private = "我想反映一下 隔壁老张家天天晚上在家里聚众赌博 我不敢在群里说"
    await h.say(private, group=None, sender="wxid_huang")
    await h.say("隔壁老张家天天晚上聚众赌博 吵得睡不着", group=GROUP, sender="wxid_huang")
    await h.sent()
    assert len(await h.tickets()) == 3


async def test_a_voice_or_photo_alone_privately_is_told_what_to_send_instead(h: Harness) -> None:
    # WeChat's speech-to-text off: a voice message without Recognition.
    voice = (
        f"<xml><ToUserName><![CDATA[{h.runtime.settings.wechat.original_id}]]></ToUserName>"
        "<FromUserName><![CDATA[o_elder]]></FromUserName>"
        f"<CreateTime>{int(h.clock.now().timestamp())}</CreateTime>"
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[v1]]></MediaId>"
        "<Format><![CDATA[amr]]></Format><MsgId>7700001</MsgId></xml>"
    )
    response = await h.post_wechat_safe(voice)
    answer = str((await h.reply_to(response))["Content"])
    assert "语音" in answer and "文字" in answer
    # A photo alone (no matter of theirs open): the words that follow take it along.
    body = h.bridge_body("", group=None, sender="wxid_qian", media_url="https://b.example/p.jpg")
    body["message"]["type"] = "image"
    await h.post_bridge(body)
    await h.sent()
    [told] = h.to_user("wxid_qian")
    assert "文字" in told and ("一併" in told or "一并" in told)


async def test_photos_of_a_matter_held_until_its_writer_verified_reach_the_officer(
    h: Harness,
) -> None:
    first, second = "https://b.example/m/wall.jpg", "https://b.example/m/car.jpg"
    # A captioned photo (its own matter), then a photo alone and the words that go with it.
    for event_id, url, caption in (
        ("evt-w1", second, "建议村口多装两个监控探头"),
        ("evt-w2", first, ""),
    ):
        body = h.bridge_body(caption, group=GROUP, sender="wxid_new", media_url=url)
        body["message"]["type"] = "image"
        body["event_id"] = event_id
        assert (await h.post_bridge(body)).status_code == 200
    await h.say("昨晚有人在我家院墙上乱涂乱画还砸了车", group=GROUP, sender="wxid_new")
    await h.sent()
    assert await h.tickets() == []  # held: not verified yet
    await h.say("实名 钱小红 13812340000", group=None, sender="wxid_new")
    await h.drain()
    code = await _sms_code(h, "13812340000")
    await h.say(code, group=None, sender="wxid_new")
    await h.sent()
    notices = [t for t in h.to_user("wxid_wang") if "新事" in t]
    assert any(first in t and "涂乱画" in t for t in notices), notices
    assert any(second in t and "监控探头" in t for t in notices), notices


async def test_a_reporter_answering_the_officers_question_in_the_group_reaches_the_officer(
    h: Harness,
) -> None:
    await h.bind("wxid_zhang", name="張秀英", phone="13812345678", group=GROUP)
    await h.say("我家门口的路灯坏了一个多星期了 晚上太黑", group=GROUP, sender="wxid_zhang")
    await h.sent()
    code = code_in(h.to_group(GROUP)[0]["text"])
    await h.say(
        f"#{code} 张阿姨您好,请问是哪一根电杆?门口还是路口?", group=GROUP, sender="wxid_wang"
    )
    await h.sent()
    # She answers where she was asked, without the code, as anyone would.
    await h.say("路口那根 靠小卖部的", group=GROUP, sender="wxid_zhang")
    await h.sent()
    assert len(await h.tickets()) == 1
    assert "路口那根" in h.to_user("wxid_wang")[-1] and f"#{code}" in h.to_user("wxid_wang")[-1]
    # Only the first words after the question: what she says next is her own again.
    await h.say("另外 村东头那家小卖部晚上老是卖烟给小孩子", group=GROUP, sender="wxid_zhang")
    await h.sent()
    assert len(await h.tickets()) == 2


async def test_a_photo_is_paired_with_its_words_by_when_they_were_sent(h: Harness) -> None:
    # Words sent a quarter of an hour after the photo are not about it (measured by when each
    # was sent, so a backlog processed late still pairs a photo with the words right after it).
    await h.bind("wxid_zhang", name="張秀英", phone="13812345678", group=GROUP)
    body = h.bridge_body("", group=GROUP, sender="wxid_zhang", media_url="https://b.example/x.jpg")
    body["message"]["type"] = "image"
    await h.post_bridge(body)
    h.clock.advance(timedelta(minutes=15))
    await h.say("村口的路灯坏了好几天了 晚上太黑", group=GROUP, sender="wxid_zhang")
    await h.sent()
    assert "x.jpg" not in h.to_user("wxid_wang")[-1]


async def test_a_backlog_worked_through_late_still_pairs_the_photo_with_its_words(
    h: Harness,
) -> None:
    await h.bind("wxid_zhang", name="張秀英", phone="13812345678", group=GROUP)
    app = h.client._transport.app  # type: ignore[attr-defined]
    # Accepted, not yet processed (the processing process was busy, or restarting).
    accepting = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lx")
    body = h.bridge_body("", group=GROUP, sender="wxid_zhang", media_url="https://b.example/y.jpg")
    body["message"]["type"] = "image"
    words = h.bridge_body("这是我家门口被人砸坏的车窗 昨晚的事", group=GROUP, sender="wxid_zhang")
    for event in (body, words):
        raw = json.dumps(event, ensure_ascii=False).encode()
        headers = signed_headers(BRIDGE_SECRET, raw, h.clock.now())
        assert (await accepting.post("/bridge/events", content=raw, headers=headers)).is_success
    h.clock.advance(timedelta(minutes=10))
    await app.state.pipeline.drain()
    await h.sent()
    assert "y.jpg" in h.to_user("wxid_wang")[-1]


async def test_an_unverified_residents_second_matter_privately_is_acknowledged(
    h: Harness,
) -> None:
    """Reminded once a day, an unverified resident's next matter privately met silence (their
    words kept, but nothing said they were): each is acknowledged now; in a group nothing
    more is said."""
    await h.say("大家好", group=GROUP, sender="wxid_new")  # a member of the village's group

    async def private(text: str) -> list[str]:
        before = len(h.to_user("wxid_new"))
        await h.say(text, group=None, sender="wxid_new")
        await h.sent()
        return h.to_user("wxid_new")[before:]

    first = await private("村口的路灯坏了好几天了,晚上走路很黑")
    assert len(first) == 1 and "实名 姓名 手机号" in first[0]  # the day's reminder
    second = await private("还有桥头的护栏也断了一截,小孩容易掉下去")
    assert len(second) == 1 and "也已收到" in second[0] and "实名" in second[0]
    third = await private("橋頭的護欄到現在也沒人修")
    assert len(third) == 1 and "也已收到" in third[0] and "實名" in third[0]  # their script
    before = len(h.world.state.delivered())
    await h.say("菜市场门口的井盖没了", group=GROUP, sender="wxid_new")
    await h.sent()
    assert h.world.state.delivered()[before:] == []
    from sqlalchemy import func, select

    from models.people import PendingItem

    async with h.runtime.sessions() as session:  # every one kept for the officer
        assert await session.scalar(select(func.count()).select_from(PendingItem)) == 4
