"""Urgent notices (issue 5): ahead of queued bulletins, past quiet hours and caps, the leader's
chat command, residents' 收到 and clues (tickets linked to the alert), corrections and recalls."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models.bulletins import AlertAck
from models.directory import Group
from tests.bulletins_support import GROUPS, Bench, local
from tests.fakes import FakeWorld
from tests.harness import Harness

MON_10 = local(2026, 11, 30, 10)
QZ = "grp-qiaozhen-01"


@pytest.fixture
async def b(harness: Harness) -> Bench:
    return await Bench.build(harness, at=MON_10)


async def test_urgent_notice_jumps_ahead_of_queued_bulletins(b: Bench) -> None:
    await b.create(schedule={"at": MON_10}, targets={"all": True}, title="普通公告")
    await b.tick()  # three bulletin rows are queued now
    out = await b.post(
        "/api/v1/alerts", {"scope": {"all": True}, "text": "寻找走失儿童"}, status=201
    )
    assert out["groups"] == 3
    await b.h.drain()
    texts = [s["text"] for s in b.h.world.state.sends()]
    assert all("寻找走失儿童" in t for t in texts[:3])
    assert all("普通公告" in t for t in texts[3:]) and len(texts) == 6
    view = await b.get(f"/api/v1/alerts/{out['id']}")
    assert [(g["group_id"], g["status"]) for g in view["groups"]] == [(g, "sent") for g in GROUPS]
    assert view["totals"]["sent"] == 3 and view["text"] == "寻找走失儿童"


async def test_an_alert_s_status_says_what_its_copies_came_to(b: Bench) -> None:
    # The bridge answers 500: nothing has reached a group, and the status must not say "sent".
    script = b.h.world.state.group_send_script
    script[QZ] = deque([500])
    out = await b.post(
        "/api/v1/alerts", {"scope": {"groups": [QZ]}, "text": "暴雨预警"}, status=201
    )
    await b.h.drain()
    view = await b.get(f"/api/v1/alerts/{out['id']}")
    assert (view["status"], view["totals"]["pending"]) == ("sending", 1)
    b.h.clock.advance(timedelta(minutes=1))
    await b.h.drain()
    assert (await b.get(f"/api/v1/alerts/{out['id']}"))["status"] == "sent"
    script[QZ], script["grp-hexi-01"] = deque([400]), deque([400])  # refused for good
    some = await b.post("/api/v1/alerts", {"scope": {"all": True}, "text": "道路封闭"}, status=201)
    await b.h.drain()
    view = await b.get(f"/api/v1/alerts/{some['id']}")
    assert (view["status"], view["totals"]["sent"], view["totals"]["failed"]) == (
        "partly_failed",
        1,
        2,
    )
    script[QZ] = deque([400])
    none = await b.post("/api/v1/alerts", {"scope": {"groups": [QZ]}, "text": "停水"}, status=201)
    await b.h.drain()
    assert (await b.get(f"/api/v1/alerts/{none['id']}"))["status"] == "failed"


async def test_words_that_read_alike_in_both_scripts_take_each_group_name_s(b: Bench) -> None:
    async with b.h.runtime.sessions.begin() as session:  # one group named in Simplified
        group = await session.get(Group, "grp-qiaozhen-02")
        assert group is not None
        group.name = "桥镇社区警民群"
    await b.post("/api/v1/alerts", {"scope": {"all": True}, "text": "更正:已找到"}, status=201)
    await b.h.drain()
    by_group = {s["group_id"]: s["text"] for s in b.h.world.state.sends()}
    assert by_group["grp-qiaozhen-02"].startswith("【紧急通报 ")
    assert by_group["grp-qiaozhen-01"].startswith("【緊急通報 ")
    assert by_group["grp-hexi-01"].startswith("【緊急通報 ")


async def test_urgent_notice_ignores_quiet_hours_and_the_daily_cap(b: Bench) -> None:
    b.h.runtime.settings.bulletins.daily_cap_per_group = 1
    b.h.clock.set(local(2026, 11, 30, 23, 30))
    for _ in range(2):
        await b.post("/api/v1/alerts", {"scope": {"groups": [QZ]}, "text": "暴雨预警"}, status=201)
    sent = await b.h.sent()
    assert len(sent) == 2 and all(s["group_id"] == QZ for s in sent)
    assert sent[0]["text"].startswith("【紧急通报 ")


async def test_a_photo_nobody_outside_can_open_is_warned_about(b: Bench, tmp_path: Path) -> None:
    b.h.runtime.settings.bulletins.media_dir = str(tmp_path / "media")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    r = await b.api.post(
        "/api/v1/media", content=png, headers=b.admin | {"Content-Type": "image/png"}
    )
    photo = {"type": "image", "url": r.json()["url"]}
    body = {"scope": {"groups": [QZ]}, "text": "寻找走失儿童", "media": photo}
    out = await b.post("/api/v1/alerts", body, status=201)
    [warning] = out["warnings"]  # the words a bulletin's preview has
    assert "bulletins.public_base_url is not set" in warning and photo["url"] in warning
    b.h.runtime.settings.bulletins.public_base_url = "https://lianxin.example.gov.cn"
    assert (await b.post("/api/v1/alerts", body, status=201))["warnings"] == []
    link = body | {"media": {"type": "image", "url": "https://example.org/child.jpg"}}
    b.h.runtime.settings.bulletins.public_base_url = None
    assert (await b.post("/api/v1/alerts", link, status=201))["warnings"] == []


async def test_alert_api_auth_and_validation(b: Bench) -> None:
    body = {"scope": {"all": True}, "text": "x"}
    assert (await b.api.post("/api/v1/alerts", json=body)).status_code == 401
    assert (await b.api.post("/api/v1/alerts", json=body, headers=b.officer)).status_code == 403
    for bad, where in [
        ({"scope": {"stations": ["mars"]}, "text": "x"}, ["body", "scope", "stations"]),
        ({"scope": {"groups": []}, "text": "x"}, ["body", "scope"]),
        ({"scope": {"all": True}, "text": ""}, ["body", "text"]),
        ({"scope": {"tags": ["village"]}, "text": "x"}, ["body", "scope"]),
    ]:
        r = await b.api.post("/api/v1/alerts", json=bad, headers=b.admin)
        assert r.status_code == 422, (bad, r.text)
        assert any(e["loc"][: len(where)] == where for e in r.json()["detail"]), r.text


async def test_bidi_controls_never_reach_the_groups_from_a_notice_or_a_bulletin(b: Bench) -> None:
    # Found by a newcomer: a right-to-left override showed a notice's words reversed.
    await b.post(
        "/api/v1/alerts",
        {"scope": {"groups": [QZ]}, "text": "\u202e反向\u202c 寻找\u200b走失儿童"},
        status=201,
    )
    bid = await b.create(
        title="防\u2066詐騙\u2069", text="不要\u202e轉賬", schedule={"at": b.h.clock.now()}
    )
    await b.tick()
    texts = [m["text"] for m in await b.h.sent() if m["group_id"] == QZ]
    assert len(texts) == 2
    assert "反向 寻找走失儿童" in texts[0] and "【防詐騙】\n不要轉賬" in texts[1], texts
    assert (await b.get(f"/api/v1/bulletins/{bid}"))["title"] == "防詐騙"


async def test_leader_sends_by_chat_to_a_station_and_its_groups(b: Bench) -> None:
    await b.h.say(
        "紧急通报 橋鎮派出所 今晚有寒潮,请照顾好独居老人。", group=None, sender="wxid_zhao"
    )
    await b.h.sent()
    assert {m["group_id"] for m in b.h.to_group(QZ) + b.h.to_group("grp-qiaozhen-02")} == {
        QZ,
        "grp-qiaozhen-02",
    }
    assert b.h.to_group("grp-hexi-01") == []
    assert "寒潮" in b.h.to_group(QZ)[0]["text"]
    [confirm] = b.h.to_user("wxid_zhao")
    assert "已發往 2 個群組" in confirm  # answered in the script the leader wrote in


async def test_a_groups_robot_gets_the_notice_at_the_configured_webhook_address(
    db_url: str, world: FakeWorld
) -> None:
    # Found by a newcomer: bulletins.wecom_webhook_url was read and never used, so a group
    # robot's key always went to qyapi.weixin.qq.com, and a missing child's notice was lost.
    robots = f"{world.base_url}/cgi-bin/webhook/send"
    b = await Bench.build(Harness.build(db_url, world, bulletins={"wecom_webhook_url": robots}))
    try:
        async with b.h.runtime.sessions.begin() as session:
            group = await session.get(Group, "grp-qiaozhen-02")
            assert group is not None
            group.wecom_webhook = "k-qz03"
        await b.h.say("緊急通報 橋鎮 一名8歲男孩走失,穿紅色外套", group=None, sender="wxid_zhao")
        await b.h.sent()
        [robot] = world.state.by_path("/cgi-bin/webhook/send")
        assert robot.query == {"key": "k-qz03"}
        assert "男孩走失" in robot.json()["text"]["content"]
        assert b.h.to_group("grp-qiaozhen-02") == [] and len(b.h.to_group(QZ)) == 1
    finally:
        await b.h.close()


async def test_a_station_is_named_in_either_script(b: Bench) -> None:
    # Found by a newcomer: "紧急通报 桥镇 …" (the directory writes 橋鎮派出所) got 找不到范围.
    await b.h.say("紧急通报 桥镇 一名8岁男孩走失,穿红色外套", group=None, sender="wxid_zhao")
    await b.h.say("紧急通报 桥镇派出所 男孩已找到,谢谢大家", group=None, sender="wxid_zhao")
    await b.h.sent()
    sent = [m["text"] for m in b.h.to_group("grp-qiaozhen-02")]
    assert len(sent) == 2 and "红色外套" in sent[0] and "已找到" in sent[1]
    assert b.h.to_group("grp-hexi-01") == []
    assert all("已发往 2 个群组" in t for t in b.h.to_user("wxid_zhao"))


async def test_chat_command_is_for_leaders_only(b: Bench) -> None:
    await b.h.say("緊急通報 橋鎮 有人冒充民警", group=None, sender="wxid_wang")  # not a leader
    await b.h.say("紧急通报 火星 有人冒充民警", group=None, sender="wxid_zhao")
    await b.h.say("紧急通报", group=None, sender="wxid_zhao")
    await b.h.say("緊急通報 橋鎮 有人冒充民警", group=QZ, sender="wxid_yang")  # a resident
    await b.h.sent()
    assert all(m["group_id"] is None for m in b.h.world.state.delivered())
    assert "只有所長" in b.h.to_user("wxid_wang")[0]
    zhao = b.h.to_user("wxid_zhao")
    assert len(zhao) == 2 and "找不到范围" in zhao[0] and "用法" in zhao[1]
    # A station leader may reach the whole county (a lost child does not stay in one township).
    await b.h.say("紧急通报 全县 有人冒充民警诈骗,请勿转账", group=None, sender="wxid_zhao")
    await b.h.sent()
    assert {m["group_id"] for m in b.h.world.state.delivered() if m["group_id"]} == set(GROUPS)


async def test_residents_acknowledge_and_clues_become_linked_tickets(b: Bench) -> None:
    out = await _lost_child_alert(b)
    await b.h.say("收到", group=QZ, sender="wxid_a")
    await b.h.say("收到!", group=QZ, sender="wxid_a")  # once per resident
    await b.h.say("已收到", group="grp-qiaozhen-02", sender="wxid_b")
    assert await b.h.sent() == [] or all(m["group_id"] is None for m in b.h.to_group(QZ)[3:])
    before = len(b.h.world.state.delivered())
    await b.h.say("我半小时前在桥头看到一个穿红衣服的小男孩往河边走", group=QZ, sender="wxid_c")
    [ticket] = await b.h.tickets()
    assert ticket.alert_id == out["id"] and ticket.category == "help"
    await b.h.sent()
    ack = [m for m in b.h.world.state.delivered()[before:] if m["group_id"] == QZ]
    assert len(ack) == 1 and f"#{ticket.code}" in ack[0]["text"]  # the resident is answered
    told = [t for t in b.h.to_user("wxid_wang") if f"#{ticket.code}" in t]
    assert told  # the duty officer told, and that it answers urgent notice N
    assert any(f"紧急通报 {out['id']}】的回复" in t and "走失儿童" in t for t in told), told
    await b.h.say("谢谢", group=QZ, sender="wxid_d")  # chatter is not a clue
    await b.h.say("谢谢警察同志辛苦了", group=QZ, sender="wxid_d")
    assert len(await b.h.tickets()) == 1
    await b.h.say("那是我孫子!我馬上去廣場,謝謝警察同志", group="grp-qiaozhen-02", sender="wxid_e")
    assert [t.alert_id for t in await b.h.tickets()] == [out["id"], out["id"]]
    # Each clue's officer is told, privately, which urgent notice it answers (either script).
    await b.h.sent()
    notes = [
        m["text"]
        for m in b.h.world.state.delivered()
        if m["group_id"] is None
        and f"通報 {out['id']}】的回覆" in m["text"].replace("通报", "通報").replace("回复", "回覆")
    ]
    for t in await b.h.tickets():
        assert [n for n in notes if n.startswith(f"#{t.code} ")], (t.code, notes)
    view = await b.get(f"/api/v1/alerts/{out['id']}")
    assert view["acks"] == 2 and view["tickets"][0] == ticket.code and len(view["tickets"]) == 2
    assert {g["group_id"]: g["acks"] for g in view["groups"]} == {QZ: 1, "grp-qiaozhen-02": 1}
    async with b.h.runtime.sessions() as s:
        assert len((await s.scalars(select(AlertAck))).all()) == 2


async def test_replies_after_24_hours_are_ordinary_messages(b: Bench) -> None:
    await b.post("/api/v1/alerts", {"scope": {"groups": [QZ]}, "text": "注意"}, status=201)
    b.h.clock.advance(timedelta(hours=25))
    await b.h.say("收到", group=QZ, sender="wxid_a")
    async with b.h.runtime.sessions() as s:
        assert (await s.scalars(select(AlertAck))).all() == []


async def test_recall_before_sending_withdraws_and_after_sending_tells_the_groups(
    b: Bench,
) -> None:
    early = await b.post("/api/v1/alerts", {"scope": {"all": True}, "text": "错发"}, status=201)
    recalled = await b.post(f"/api/v1/alerts/{early['id']}/recall", {"reason": ""})
    assert recalled["groups"] == 0  # it never went out, so nobody needs to hear of it
    assert await b.h.sent() == []
    view = await b.get(f"/api/v1/alerts/{early['id']}")
    assert view["status"] == "recalled" and view["totals"]["cancelled"] == 3

    out = await b.post("/api/v1/alerts", {"scope": {"all": True}, "text": "桥梁封闭"}, status=201)
    await b.h.sent()
    fix = await b.post(f"/api/v1/alerts/{out['id']}/correct", {"text": "仅东桥封闭"}, status=201)
    assert fix["groups"] == 3
    await b.h.drain()
    notice = await b.post(f"/api/v1/alerts/{out['id']}/recall", {"reason": "已恢复通行"})
    assert notice["groups"] == 3
    texts = [m["text"] for m in await b.h.sent() if m["group_id"] == QZ]
    assert len(texts) == 3
    assert texts[1].startswith("【更正:紧急通报 ") and "仅东桥封闭" in texts[1]
    assert texts[2].startswith("【撤回:紧急通报 ") and "为准。原因:已恢复通行" in texts[2]
    again = await b.api.post(f"/api/v1/alerts/{out['id']}/recall", json={}, headers=b.admin)
    assert again.status_code == 409
    # A recalled alert no longer collects replies.
    await b.h.say("收到", group=QZ, sender="wxid_a")
    async with b.h.runtime.sessions() as s:
        assert (await s.scalars(select(AlertAck))).all() == []
    listing = await b.get("/api/v1/alerts")
    assert [a["kind"] for a in listing][:3] == ["recall", "correction", "alert"]


@contextlib.asynccontextmanager
async def _slow_bridge_alert(
    db_url: str, world: FakeWorld
) -> AsyncIterator[tuple[Harness, Bench, dict[str, Any]]]:
    """A notice to 橋鎮村 whose first send the bridge takes and answers too late: the fake
    answers a "hang" after 1 s, the client gives up at 0.3 (the bridge may well have posted it)."""
    h = Harness.build(db_url, world, bridge={"timeout_s": 0.3})
    try:
        b = await Bench.build(h, at=MON_10)
        world.state.group_send_script[QZ] = deque(["hang:1"])
        text = {"scope": {"groups": [QZ]}, "text": "嫌疑人驾驶白色面包车逃逸"}
        yield h, b, await b.post("/api/v1/alerts", text, status=201)
    finally:
        await h.close()


async def _recalled_and_told(
    b: Bench, world: FakeWorld, out: dict[str, Any], notice: dict[str, Any]
) -> None:
    """The bridge saw the notice once, then the recall; the copy shows maybe sent."""
    keys = [s["idempotency_key"] for s in world.state.sends()]
    assert keys == [f"alert-{out['id']}-{QZ}", f"alert-{notice['id']}-{QZ}"]
    [group] = (await b.get(f"/api/v1/alerts/{out['id']}"))["groups"]
    assert group["status"] == "cancelled" and group["maybe_sent"] is True


async def test_a_recall_while_a_copy_is_being_sent_stops_it_and_still_tells_the_group(
    db_url: str, world: FakeWorld
) -> None:
    async with _slow_bridge_alert(db_url, world) as (h, b, out):
        attempt = asyncio.ensure_future(h.worker.run_once())
        for _ in range(500):  # until the bridge has the notice and holds the answer
            if world.state.sends():
                break
            await asyncio.sleep(0.01)
        notice = await b.post(f"/api/v1/alerts/{out['id']}/recall", {"reason": "车辆信息有误"})
        assert notice["groups"] == 1  # the copy in flight may be there: the group is told
        assert [o.status for o in await attempt] == ["pending"]  # the timeout, tried no more
        assert await h.drain() == []  # the recall waits for that attempt's lease to end
        h.clock.advance(timedelta(minutes=2))
        await h.drain()
        await _recalled_and_told(b, world, out, notice)


async def test_a_recall_after_a_timed_out_attempt_still_tells_the_group(
    db_url: str, world: FakeWorld
) -> None:
    # Found in review: a copy whose attempt timed out (the bridge may have posted it) waited
    # to be tried again; the recall withdrew it as never sent, and the group heard nothing.
    async with _slow_bridge_alert(db_url, world) as (h, b, out):
        assert [o.status for o in await h.worker.run_once()] == ["pending"]
        notice = await b.post(f"/api/v1/alerts/{out['id']}/recall", {"reason": "车辆信息有误"})
        assert notice["groups"] == 1
        await h.drain()
        await _recalled_and_told(b, world, out, notice)


async def test_leader_recalls_by_chat_only_their_own(b: Bench) -> None:
    await b.h.say("紧急通报 qiaozhen 山体滑坡,请绕行", group=None, sender="wxid_zhao")
    await b.h.sent()
    alert_id = int(b.h.to_user("wxid_zhao")[0].split("紧急通报 ")[1].split(" ")[0])
    await b.h.say("撤回通报 999", group=None, sender="wxid_zhao")
    await b.h.say(f"撤回通报 {alert_id} 信息有误", group=None, sender="wxid_zhao")
    await b.h.sent()
    zhao = b.h.to_user("wxid_zhao")
    assert any("没有找到" in t for t in zhao) and any("已撤回" in t for t in zhao)
    recalls = [m for m in b.h.to_group(QZ) if "撤回" in m["text"]]
    assert len(recalls) == 1 and "信息有误" in recalls[0]["text"]
    view = await b.get(f"/api/v1/alerts/{alert_id}")
    assert view["status"] == "recalled" and view["followups"]


async def test_ordinary_matters_during_an_alert_still_go_through_intake(b: Bench) -> None:
    out = await b.post(
        "/api/v1/alerts",
        {"scope": {"all": True}, "text": "寻找走失儿童:男孩,6岁,穿红色外套。"},
        status=201,
    )
    await b.h.bind("wxid_yang", group=QZ)
    await b.h.say(
        "刚才有个自称公安局的人打电话,要我把钱转到安全账户,这是真的吗?",
        group=QZ,
        sender="wxid_yang",
    )
    await b.h.say("穿红色外套的男孩刚才在我家门口", group=QZ, sender="wxid_c")
    tickets = await b.h.tickets()
    assert [(t.category, t.alert_id) for t in tickets] == [
        ("consultation", None),
        ("help", out["id"]),
    ]


async def _lost_child_alert(b: Bench) -> dict[str, Any]:
    """The lost-child notice to 橋鎮's groups, delivered."""
    out = await b.post(
        "/api/v1/alerts",
        {"scope": {"stations": ["qiaozhen"]}, "text": "寻找走失儿童:男孩,6岁,穿红色外套。"},
        status=201,
    )
    await b.h.sent()
    return out


async def test_a_sighting_for_the_alert_is_a_clue_not_a_new_emergency(b: Bench) -> None:
    out = await _lost_child_alert(b)
    await b.h.say("我在桥头看到一个穿红色外套的男孩在哭,好像走失了", group=QZ, sender="wxid_c")
    [ticket] = await b.h.tickets()
    assert ticket.alert_id == out["id"] and ticket.category == "help"
    assert not any(
        re.search("[撥拨]打1[12][09]", m["text"])  # the safety reply (a code may hold "110")
        for m in await b.h.sent()
        if m["group_id"] == QZ and "走失儿童" not in m["text"]
    )


async def test_a_sighting_in_other_words_is_a_clue_and_plain_danger_still_an_emergency(
    b: Bench,
) -> None:
    # Found by a newcomer: a sighting sharing no words with the notice got the 110 reply.
    out = await _lost_child_alert(b)
    await b.h.say("剛才在橋頭好像看到一個小孩,穿紅衣服,一個人", group=QZ, sender="wxid_c")
    [clue] = await b.h.tickets()
    assert clue.alert_id == out["id"] and clue.category == "help"
    to_c = [m["text"] for m in await b.h.sent() if m["mentions"] == ["wxid_c"]]
    # No safety reply ("…撥打110…"): a clue. (A bare "110" would match a ticket code.)
    assert not any(re.search("[撥拨]打1[12][09]", t) for t in to_c), to_c
    # Danger named plainly is an emergency whatever the notice: the 110 (or 120) reply.
    await b.h.say("救命 看到一个小孩掉河里了", group=QZ, sender="wxid_d")
    assert any(t.emergency for t in await b.h.tickets())
    assert any(m["mentions"] == ["wxid_d"] for m in await b.h.sent())


async def test_danger_in_the_notices_own_words_is_still_an_emergency(b: Bench) -> None:
    # Found by a newcomer: "救命" with the notice's words became a P2 clue, no 110 reply, no page.
    out = await _lost_child_alert(b)
    await b.h.say("救命!有人拿刀砍那个穿红色外套的男孩,6岁", group=QZ, sender="wxid_c")
    await b.h.say(
        "救命!走失的男孩穿红色外套,掉河里了,在桥头", group="grp-qiaozhen-02", sender="wxid_d"
    )
    tickets = await b.h.tickets()
    assert [t.emergency for t in tickets] == [True, True]
    assert all(t.priority == 1 and t.alert_id == out["id"] for t in tickets)
    sent = await b.h.sent()
    for sender in ("wxid_c", "wxid_d"):
        to_them = [m["text"] for m in sent if m["mentions"] == [sender]]
        assert any(re.search("[撥拨]打1[12][09]", t) for t in to_them), to_them
    # A resident passing the notice on is no emergency and no clue.
    await b.h.say("转发:寻找走失儿童:男孩,6岁,穿红色外套。", group=QZ, sender="wxid_e")
    assert len(await b.h.tickets()) == 2


async def test_a_clue_is_not_folded_into_the_same_residents_other_matter(b: Bench) -> None:
    # Found by a newcomer: a sighting went into the writer's cow-theft ticket of minutes before.
    await b.h.bind("wxid_yang", group=QZ)
    await b.h.say("桥头小卖部门口我的电动车被偷了", group=QZ, sender="wxid_yang")
    [theft] = await b.h.tickets()
    out = await _lost_child_alert(b)
    b.h.clock.advance(timedelta(minutes=2))
    # Words shared with the theft (the place) do not make it the same matter.
    await b.h.say(
        "刚才在桥头小卖部门口看到一个穿红衣服的小男孩往河边走了", group=QZ, sender="wxid_yang"
    )
    tickets = await b.h.tickets()
    assert len(tickets) == 2
    clue = next(t for t in tickets if t.id != theft.id)
    assert (clue.alert_id, clue.category) == (out["id"], "help")
    view = await b.get(f"/api/v1/alerts/{out['id']}")
    assert view["tickets"] == [clue.code]


async def test_the_days_chatter_during_a_notice_is_no_clue(b: Bench) -> None:
    # Found by a newcomer: any message over ten characters became a P2 clue for the officer,
    # who would be buried under them after a notice to every group.
    await _lost_child_alert(b)
    await b.h.say("大家早上好,今天去赶集的人多吗", group=QZ, sender="wxid_c")
    await b.h.say("今天降温了大家出门多穿点衣服", group=QZ, sender="wxid_d")
    assert await b.h.tickets() == []
    # Words with a clue's signs still are one: a place and a moment, or a family's claim.
    await b.h.say("刚才在河边有个小孩一个人坐着", group=QZ, sender="wxid_e")
    await b.h.say("那是我孙子!我马上去广场,谢谢", group=QZ, sender="wxid_f")
    assert [t.category for t in await b.h.tickets()] == ["help", "help"]


async def test_each_scope_mistake_says_what_is_wrong(b: Bench) -> None:
    """A client got one generic ``value_error`` ("Value error, …") at ``scope`` for every
    mistake; each now has its own ``type`` and says what to send."""
    cases = [
        ({"groups": ["grp-nowhere"]}, ["body", "scope", "groups"], "unknown", "grp-nowhere"),
        ({"stations": ["mars"]}, ["body", "scope", "stations"], "unknown", "mars"),
        ({"groups": []}, ["body", "scope"], "scope_empty", "groups is empty"),
        ({}, ["body", "scope"], "scope_one", "got none"),
        ({"groups": [QZ], "all": True}, ["body", "scope"], "scope_one", "got groups, all"),
        ({"all": False}, ["body", "scope"], "scope_all", "all must be true"),
        ({"tags": ["village"]}, ["body", "scope"], "scope_tags", "tags are for bulletins"),
    ]
    for scope, loc, kind, said in cases:
        body = {"scope": scope, "text": "紧急寻人:一名老人走失,穿灰色棉袄"}
        r = await b.api.post("/api/v1/alerts", json=body, headers=b.admin)
        assert r.status_code == 422, (scope, r.text)
        [error] = r.json()["detail"]
        assert (error["loc"], error["type"]) == (loc, kind), (scope, error)
        assert said in error["msg"] and not error["msg"].startswith("Value error"), error


async def test_a_retried_notice_with_an_idempotency_key_reaches_each_group_once(b: Bench) -> None:
    body = {"scope": {"groups": [QZ]}, "text": "紧急寻人:8岁女孩 穿粉色羽绒服 下午在集市走散"}
    key = {**b.admin, "Idempotency-Key": "alert-2026-12-08-001"}
    first = await b.api.post("/api/v1/alerts", json=body, headers=key)
    again = await b.api.post("/api/v1/alerts", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(await b.get("/api/v1/alerts")) == 1
    assert len(await b.h.sent()) == 1
    other = await b.api.post("/api/v1/alerts", json=body | {"text": "已找到"}, headers=key)
    assert other.status_code == 409
    # A correction retried with its key goes out once too.
    fix = {"text": "更正:女孩穿的是红色羽绒服"}
    ckey = {**b.admin, "Idempotency-Key": "alert-2026-12-08-001-fix"}
    path = f"/api/v1/alerts/{first.json()['id']}/correct"
    once = await b.api.post(path, json=fix, headers=ckey)
    twice = await b.api.post(path, json=fix, headers=ckey)
    assert (once.status_code, twice.status_code) == (201, 201) and once.json() == twice.json()
    assert len(await b.get("/api/v1/alerts")) == 2 and len(await b.h.sent()) == 2


async def test_an_emergency_about_no_person_is_not_taken_for_the_notices_clue(b: Bench) -> None:
    # Found by a newcomer: a fire during a notice about a power cut reached the officer as
    # "a reply to urgent notice N, follow it up as a clue", filed under the notice.
    out = await b.post(
        "/api/v1/alerts",
        {"scope": {"stations": ["qiaozhen"]}, "text": "今晚停电检修 请大家关好门窗 注意防盗"},
        status=201,
    )
    await b.h.sent()
    await b.h.say("着火了 着火了 村东头老王家柴房烧起来了 火好大", group=QZ, sender="wxid_c")
    [fire] = await b.h.tickets()
    assert fire.emergency and fire.priority == 1 and fire.alert_id is None
    notices = [m["text"] for m in await b.h.sent() if m["user_id"]]
    assert notices and not any(
        f"通报 {out['id']}" in t or f"通報 {out['id']}" in t for t in notices
    )
    # A person in danger while a notice seeks one is still linked to it.
    lost = await _lost_child_alert(b)
    await b.h.say("救命 看到一个小孩掉河里了", group=QZ, sender="wxid_d")
    river = next(t for t in await b.h.tickets() if t.id != fire.id)
    assert river.emergency and river.alert_id == lost["id"]


async def test_a_neighbours_word_on_a_ticket_during_a_notice_goes_to_that_ticket(b: Bench) -> None:
    # Found by a newcomer: "#M9060 我刚路过看到消防车已经到了" from a neighbour, while a notice
    # was out, became a new ticket "replying to urgent notice 3" instead of M9060's clue.
    await b.post(
        "/api/v1/alerts",
        {"scope": {"stations": ["qiaozhen"]}, "text": "今晚停电检修 请大家关好门窗 注意防盗"},
        status=201,
    )
    await b.h.sent()
    await b.h.say("着火了 着火了 村东头老王家柴房烧起来了 火好大", group=QZ, sender="wxid_c")
    [fire] = await b.h.tickets()
    await b.h.say(f"#{fire.code} 我刚路过看到消防车已经到了 火小了", group=QZ, sender="wxid_d")
    assert [t.code for t in await b.h.tickets()] == [fire.code]
    to_officers = [m["text"] for m in await b.h.sent() if m["user_id"]]
    assert any("非报案人" in t and "消防车已经到了" in t for t in to_officers), to_officers
