"""Disputes the county's way (issue 14): red/yellow/blue risk control and three levels of
mediation with deadlines, through the bridge and the admin API, on the manual clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.services.dispute_cases import suggest_colour
from bot.services.tokens import create_token
from models.disputes import DisputeCase, DisputeEvent
from models.tickets import Ticket
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
GROUP = "grp-qiaozhen-01"
NOISE = "邻居家装修天天吵到半夜,跟他说了也不听,想请民警帮忙调解"
REPEATED = "隔壁老王又把垃圾堆到我家门口,吵了好几次了"
LAND = "鄰居占了我家的地,想請派出所調解一下"


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    return harness


async def _dispute(h: Harness, text: str = NOISE) -> tuple[Ticket, DisputeCase]:
    await h.bind("wxid_yang", group=GROUP)
    await h.say(text, group=GROUP, sender="wxid_yang")
    await h.sent()
    [ticket] = await h.tickets()
    assert ticket.category == "dispute"
    return ticket, await _case(h)


async def _case(h: Harness) -> DisputeCase:
    async with h.runtime.sessions() as session:
        [case] = (await session.scalars(select(DisputeCase))).all()
        return case


async def _actions(h: Harness) -> list[str]:
    async with h.runtime.sessions() as session:
        rows = await session.scalars(select(DisputeEvent.action).order_by(DisputeEvent.id))
        return list(rows.all())


async def test_a_dispute_starts_at_village_level_with_a_week_and_a_suggested_colour(
    h: Harness,
) -> None:
    ticket, case = await _dispute(h, REPEATED)
    assert (case.level, case.status) == ("village", "open")
    assert case.level_deadline == h.clock.now() + timedelta(days=7)
    assert (case.suggested_colour, case.colour) == ("yellow", "yellow")  # repeated: could escalate
    told = h.to_user("wxid_wang")[-1]
    assert f"#{ticket.code}" in told and "建议定级:黄色" in told
    assert h.runtime.cipher.decrypt(case.summary_enc) == REPEATED
    assert h.runtime.cipher.decrypt(case.parties_enc) == '["楊某某"]'  # encrypted at rest


async def test_red_pages_the_leader_once_and_heads_his_todo_until_downgraded(h: Harness) -> None:
    ticket, case = await _dispute(h)
    assert case.colour == "blue"
    before = len(h.to_user("wxid_zhao"))
    await h.say(f"定级 #{ticket.code} 红 扬言要动刀", group=None, sender="wxid_wang")
    await h.say(f"定級 #{ticket.code} 紅", group=None, sender="wxid_wang")  # again: no new page
    await h.sent()
    pages = [t for t in h.to_user("wxid_zhao")[before:] if "红色纠纷" in t or "紅色糾紛" in t]
    assert len(pages) == 1 and f"#{ticket.code}" in pages[0]
    await h.say("待办", group=None, sender="wxid_zhao")
    await h.sent()
    todo = h.to_user("wxid_zhao")[-1]
    assert todo.startswith("🔴") and f"#{ticket.code}" in todo.splitlines()[1]
    # The 08:00 digest of the next day opens with it too, for the leader and the holder.
    h.clock.set(MONDAY_10 + timedelta(hours=22, minutes=5))
    await h.sweep()
    await h.sent()
    assert h.to_user("wxid_zhao")[-1].startswith("🔴")
    await h.say(f"定级 #{ticket.code} 蓝 已缓和", group=None, sender="wxid_wang")
    await h.say("待办", group=None, sender="wxid_zhao")
    await h.sent()
    assert f"#{ticket.code}" not in h.to_user("wxid_zhao")[-1]


async def test_deadlines_move_a_case_up_telling_the_right_people_once_even_after_a_restart(
    h: Harness,
) -> None:
    ticket, _ = await _dispute(h)
    # The matter itself is answered; the mediation runs on its own deadlines.
    await h.say(f"#{ticket.code} 已联系双方,安排到村委会调解", group=None, sender="wxid_wang")
    h.clock.advance(timedelta(days=7, minutes=1))
    await h.sweep()
    await h.sent()
    case = await _case(h)
    assert case.level == "station"
    assert case.level_deadline == h.clock.now() + timedelta(days=15)
    leader = [t for t in h.to_user("wxid_zhao") if "派出所调解" in t and f"#{ticket.code}" in t]
    assert len(leader) == 1 and "期限已过" in leader[0]
    assert any("已转到派出所调解" in t for t in h.to_user("wxid_wang"))
    assert any("已转由橋鎮派出所继续调解" in d["text"] for d in h.to_group(GROUP))
    # A restart and another sweep at the same instant change nothing and tell nobody again.
    sent_before = len(h.world.state.delivered())
    h2 = await h.restart()
    try:
        await h2.sweep()
        await h2.sent()
        assert len(h2.world.state.delivered()) == sent_before
        h2.clock.advance(timedelta(days=15, minutes=1))
        await h2.sweep()
        await h2.sent()
        case = await _case(h2)
        assert case.level == "county"
        assert case.level_deadline == h2.clock.now() + timedelta(days=60)
        county = [t for t in h2.to_user("wxid_county") if f"#{ticket.code}" in t]
        assert len(county) == 1 and "县调解中心" in county[0]
        assert any("甘泉縣調解中心" in d["text"] for d in h2.to_group(GROUP))
        # Past the county's own deadline: reminded once to refer, and the level stays.
        h2.clock.advance(timedelta(days=60, minutes=1))
        await h2.sweep()
        await h2.sweep()
        await h2.sent()
        overdue = [t for t in h2.to_user("wxid_county") if "期限已过" in t and "转介" in t]
        assert len(overdue) == 1
        overdue_case = await _case(h2)
        assert overdue_case.level == "county"
        # Found by a newcomer: the passed deadline was wiped, so an overdue case looked like
        # one that never had a deadline (API null, 期限 —, a blank in the report).
        assert overdue_case.level_deadline is not None
        assert overdue_case.level_deadline < h2.clock.now()
        h2.clock.advance(timedelta(days=1))
        await h2.sweep()  # and still reminds only once
        actions = await _actions(h2)
        assert actions.count("auto_escalated") == 2 and actions.count("county_overdue") == 1
    finally:
        await h2.close()


async def test_a_dispute_under_mediation_is_not_overdue_in_the_morning_digest(h: Harness) -> None:
    # A trial (2026-12-08): a case taken up (接单) and under mediation was listed every
    # morning as the officer's overdue item ("已接单 已69天"), though the answer ladder stands
    # down for it and its level's deadlines move it up.
    ticket, _ = await _dispute(h)
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_wang")
    await h.say("建议在村口装个路灯,晚上太黑了", group=GROUP, sender="wxid_yang")
    lamp = (await h.tickets())[-1]
    await h.say(f"接单 #{lamp.code}", group=None, sender="wxid_wang")
    h.clock.set(MONDAY_10 + timedelta(days=2, hours=-2, minutes=5))  # Wednesday 08:05
    await h.sweep()
    await h.sent()
    [digest] = [t for t in h.to_user("wxid_wang") if "每日提醒" in t]
    assert f"#{lamp.code}" in digest and f"#{ticket.code}" not in digest
    # Not yet taken up, it is overdue as any ticket is.
    await h.say(LAND, group=GROUP, sender="wxid_yang")
    land = (await h.tickets())[-1]
    h.clock.advance(timedelta(days=1))
    await h.sweep()
    await h.sent()
    digest = [t for t in h.to_user("wxid_wang") if "每日提醒" in t][-1]
    assert f"#{land.code}" in digest and f"#{ticket.code}" not in digest


async def test_an_agreement_resolves_at_its_level_and_follow_ups_fall_due(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"调解 #{ticket.code} 双方到村委会当面沟通", group=None, sender="wxid_wang")
    await h.say(f"升级 #{ticket.code} 村里调不下来", group=None, sender="wxid_wang")
    await h.say(
        f"协议 #{ticket.code} 装修只在白天进行,晚上八点后停工", group=None, sender="wxid_zhao"
    )
    await h.sent()
    case = await _case(h)
    assert (case.status, case.resolved_level) == ("resolved", "station")
    assert case.follow_up_at == h.clock.now() + timedelta(days=7)
    [told] = [d["text"] for d in h.to_group(GROUP) if "晚上八点后停工" in d["text"]]
    assert "满意" in told  # the residents hear the terms and are asked to rate (disputes.md)
    [closed] = await h.tickets()
    assert closed.status == "closed"
    # A photo of the signed agreement, sent privately within the hour, is attached.
    photo = h.bridge_body("", group=None, sender="wxid_zhao")
    photo["message"].update(type="image", media_url="https://x/agreement.jpg")
    assert (await h.post_bridge(photo)).status_code == 200
    assert "photo" in await _actions(h)
    # Bad input: 協議 and 升級 on a resolved case change nothing.
    await h.say(f"协议 #{ticket.code} 另一个协议", group=None, sender="wxid_zhao")
    await h.say(f"升级 #{ticket.code}", group=None, sender="wxid_zhao")
    await h.sent()
    assert all("已达成协议,不能再" in t for t in h.to_user("wxid_zhao")[-2:])
    # The ticket's holder sees the follow-up in 待辦 when it is due, not before.
    await h.say("待办", group=None, sender="wxid_wang")
    await h.sent()
    assert "回访到期" not in h.to_user("wxid_wang")[-1]
    h.clock.advance(timedelta(days=7, hours=1))
    await h.say("待办", group=None, sender="wxid_wang")
    await h.sent()
    assert (
        "回访到期" in h.to_user("wxid_wang")[-1] and f"#{ticket.code}" in h.to_user("wxid_wang")[-1]
    )
    await h.say(
        f"回访 #{ticket.code} 双方遵守协议,没有再次发生争吵", group=None, sender="wxid_wang"
    )
    await h.sent()
    case = await _case(h)
    assert case.status == "resolved" and case.follow_ups_done == 1
    assert case.follow_up_at == case.resolved_at + timedelta(days=30)
    # Thirty days on, the second visit finds the conflict back: the case reopens at station.
    h.clock.advance(timedelta(days=23))
    await h.say(f"回访 #{ticket.code} 对方反悔了,昨晚又吵起来", group=None, sender="wxid_wang")
    await h.sent()
    case = await _case(h)
    assert (case.status, case.level) == ("open", "station")
    assert case.level_deadline == h.clock.now() + timedelta(days=15)
    assert "重新开启" in h.to_user("wxid_wang")[-1]
    [reopened] = await h.tickets()
    assert reopened.status == "acknowledged"


async def test_officers_of_another_station_cannot_grade_or_resolve(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"定级 #{ticket.code} 红", group=None, sender="wxid_chen")
    await h.say(f"协议 #{ticket.code} 和解", group=None, sender="wxid_chen")
    await h.sent()
    case = await _case(h)
    assert (case.colour, case.status) == ("blue", "open")
    assert all("其他派出所" in t for t in h.to_user("wxid_chen")[-2:])


async def test_bad_input_gets_a_clear_answer_in_the_senders_script(h: Harness) -> None:
    ticket, _ = await _dispute(h, LAND)
    await h.say(f"定級 #{ticket.code} 綠", group=None, sender="wxid_wang")
    await h.sent()
    assert re.search("紅.*黃.*藍", h.to_user("wxid_wang")[-1])
    await h.say(f"調解 #{ticket.code}", group=None, sender="wxid_wang")  # no record
    await h.sent()
    assert "請寫上內容" in h.to_user("wxid_wang")[-1]
    for _ in range(2):
        await h.say(f"升級 #{ticket.code}", group=None, sender="wxid_wang")
    await h.say(f"升級 #{ticket.code}", group=None, sender="wxid_county")
    await h.sent()
    assert "無法再升級" in h.to_user("wxid_county")[-1] and "轉介" in h.to_user("wxid_county")[-1]
    assert (await _case(h)).level == "county"
    await h.say(f"轉介 #{ticket.code} 已引導當事人向法院起訴", group=None, sender="wxid_county")
    await h.sent()
    assert (await _case(h)).status == "referred"
    # Mediation is over: the ticket closes and the resident hears where it went.
    referred = next(t for t in await h.tickets() if t.code == ticket.code)
    assert (referred.status, referred.next_check_at) == ("closed", None)
    assert any(
        ticket.code in m["text"] and "已轉介:已引導當事人向法院起訴" in m["text"]
        for m in h.to_group(GROUP)
    )
    # A dispute command on a matter that is not a dispute.
    await h.say("我家电动车被偷了", group=GROUP, sender="wxid_yang")
    await h.sent()
    theft = next(t for t in await h.tickets() if t.category == "report")
    await h.say(f"定級 #{theft.code} 紅", group=None, sender="wxid_wang")
    await h.sent()
    assert "不是糾紛" in h.to_user("wxid_wang")[-1]
    # A resident typing one is told it is the officers'.
    await h.say(f"协议 #{ticket.code} 我同意", group=GROUP, sender="wxid_yang")
    await h.sent()
    assert "民警的调解指令" in h.to_group(GROUP)[-1]["text"]


async def test_reclassifying_a_ticket_as_a_dispute_opens_a_case(h: Harness) -> None:
    await h.bind("wxid_yang", group=GROUP)
    await h.say("请问宅基地的事归谁管", group=GROUP, sender="wxid_yang")
    [ticket] = await h.tickets()
    assert ticket.category != "dispute"
    await h.say(f"分類 #{ticket.code} 糾紛", group=None, sender="wxid_wang")
    case = await _case(h)
    assert (case.level, case.status) == ("village", "open")


async def test_a_ticket_filed_as_a_dispute_next_month_counts_in_the_month_it_was_raised(
    h: Harness,
) -> None:
    # A trial (2026-12-08): raised on 30 November, filed as a dispute on 1 December, it was a
    # November item and a December dispute, so neither month's totals agreed.
    await h.bind("wxid_yang", group=GROUP)
    h.clock.set(datetime(2026, 11, 30, 23, 30, tzinfo=TZ))
    await h.say("请问一下 宅基地边界跟人有争议 归哪个部门管的", group=GROUP, sender="wxid_yang")
    [ticket] = await h.tickets()
    h.clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    await h.say(f"分类 #{ticket.code} 纠纷", group=None, sender="wxid_wang")
    case = await _case(h)
    assert case.opened_at == ticket.created_at
    assert case.level_deadline == h.clock.now() + timedelta(days=7)  # the level's time from now
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    auth = {"Authorization": f"Bearer {admin}"}
    for first, last, count in (("2026-11-01", "2026-11-30", 1), ("2026-12-01", "2026-12-31", 0)):
        params = {"from": first, "to": last}
        stats = (await h.client.get("/api/v1/stats", params=params, headers=auth)).json()
        assert stats["items"]["dispute"] == sum(stats["disputes"]["by_colour"].values()) == count
    [listed] = (await h.client.get("/api/v1/disputes", headers=auth)).json()
    assert listed["opened_at"].startswith("2026-11-30T15:30")


async def test_the_api_lists_disputes_by_colour_and_level_with_history(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"定级 #{ticket.code} 红", group=None, sender="wxid_wang")
    await h.say(f"升级 #{ticket.code}", group=None, sender="wxid_wang")
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
        officer = await create_token(s, role="officer", name="w", now=h.clock.now())
    auth = {"Authorization": f"Bearer {admin}"}
    assert (await h.client.get("/api/v1/disputes")).status_code == 401
    assert (
        await h.client.get("/api/v1/disputes", headers={"Authorization": f"Bearer {officer}"})
    ).status_code == 403
    red = (await h.client.get("/api/v1/disputes?colour=red&level=station", headers=auth)).json()
    assert [d["code"] for d in red] == [ticket.code]
    assert set(red[0]) == {
        "code",
        "colour",
        "level",
        "status",
        "station",
        "opened_at",
        "level_deadline",
        "resolved_at",
    }
    assert (await h.client.get("/api/v1/disputes?colour=blue", headers=auth)).json() == []
    assert (await h.client.get("/api/v1/disputes?colour=green", headers=auth)).status_code == 422
    one = (await h.client.get(f"/api/v1/disputes/{ticket.code}", headers=auth)).json()
    assert [s["action"] for s in one["history"]] == [
        "opened",
        "graded",
        "paged_leader",
        "escalated",
    ]
    assert (
        one["history"][-1]["level"] == "station" and one["history"][-1]["by"] == "officer:off-wang"
    )
    # The page is credited to whoever made the case red, not to the leader it went to.
    assert [s["by"] for s in one["history"] if s["action"] in ("graded", "paged_leader")] == [
        "officer:off-wang",
        "officer:off-wang",
    ]
    assert (await h.client.get("/api/v1/disputes/Z9999", headers=auth)).status_code == 404
    # A station takes those below it, as /visits and /stats do; an unknown one is named.
    for station, found in (("qiaozhen", [ticket.code]), ("county", [ticket.code]), ("hexi", [])):
        listed = await h.client.get(f"/api/v1/disputes?station={station}", headers=auth)
        assert [d["code"] for d in listed.json()] == found, station
    unknown = await h.client.get("/api/v1/disputes?station=nope", headers=auth)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "station"]


async def test_a_withdrawn_request_ends_mediation_and_leaves_the_deadlines(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"撤回调解 #{ticket.code}", group=None, sender="wxid_wang")  # no reason
    await h.sent()
    assert "请写上内容" in h.to_user("wxid_wang")[-1] and (await _case(h)).status == "open"
    await h.say(
        f"撤回调解 #{ticket.code} 双方已私下和解,不再要求调解", group=None, sender="wxid_wang"
    )
    await h.say(f"协议 #{ticket.code} 补一个协议", group=None, sender="wxid_wang")
    await h.sent()
    case = await _case(h)
    assert (case.status, case.level_deadline, case.follow_up_at) == ("withdrawn", None, None)
    # Nothing was resolved: no resolved_at in the API (a trial found the withdrawal's time).
    async with h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
    auth = {"Authorization": f"Bearer {admin}"}
    [listed] = (await h.client.get("/api/v1/disputes", headers=auth)).json()
    assert (listed["status"], listed["resolved_at"]) == ("withdrawn", None)
    said = h.to_user("wxid_wang")[-1]
    assert "#" + ticket.code + " 的纠纷已撤回" in said and "不能再记录协议" in said
    # The ticket is over too (found open, its deadline running, by a newcomer), and the
    # resident who asked for mediation hears it ended.
    [after] = await h.tickets()
    assert (after.status, after.next_check_at) == ("closed", None)
    told = [m["text"] for m in h.to_group(GROUP) if ticket.code in m["text"]]
    assert any("已撤回调解申请" in t and "私下和解" in t for t in told)
    before = len(h.world.state.delivered())
    h.clock.advance(timedelta(days=8))
    await h.sweep()
    assert (await _case(h)).level == "village"  # nothing climbs
    assert "withdrawn" in await _actions(h)
    assert (await h.sent())[before:] == []  # no reminder, no escalation of a closed matter


@pytest.mark.parametrize(
    ("words", "colour"),
    [
        # Farm tools as weapons and threats of a beating are red (a newcomer's trial: yellow).
        ("隔壁老王說再來就拿鋤頭打我,這事沒完", "red"),
        ("为了宅基地吵了好几次 今天差点动手 两家都拿着锄头 我看要出事", "red"),
        # Not every 打我 or 没完 is a threat.
        ("他老是打我电话吵架", "yellow"),
        ("邻居天天吵个没完没了", "blue"),
    ],
)
def test_the_suggested_colour_reads_weapons_and_threats(words: str, colour: str) -> None:
    assert suggest_colour(words) == colour


# --- found by a newcomer's month of disputes (trial of 2026-12-07) ------------------------------
async def _admin_api(h: Harness) -> dict[str, str]:
    async with h.runtime.sessions.begin() as s:
        token = await create_token(s, role="admin", name="t", now=h.clock.now())
    return {"Authorization": f"Bearer {token}"}


async def test_a_dispute_filed_as_something_else_stops_climbing_and_counting(h: Harness) -> None:
    ticket, _ = await _dispute(h, REPEATED)  # yellow: weekly checks too
    await h.say(f"分類 #{ticket.code} 諮詢", group=None, sender="wxid_wang")
    await h.say(f"#{ticket.code} 已告知可向住建部门咨询", group=None, sender="wxid_wang")
    await h.sent()
    before = len(h.world.state.delivered())
    h.clock.advance(timedelta(days=8))
    await h.sweep()
    await h.sent()
    about = [d for d in h.world.state.delivered()[before:] if f"#{ticket.code}" in d["text"]]
    assert about == [], about  # no level change, no weekly check, to nobody
    case = await _case(h)
    assert (case.level, case.status) == ("village", "set_aside")
    api = await _admin_api(h)
    listed = await h.client.get("/api/v1/disputes?status=", headers=api)
    assert listed.json() == []
    assert (await h.client.get(f"/api/v1/disputes/{ticket.code}", headers=api)).status_code == 404
    day = MONDAY_10.date().isoformat()
    stats = (await h.client.get(f"/api/v1/stats?from={day}&to={day}", headers=api)).json()
    assert sum(stats["disputes"]["by_colour"].values()) == 0
    # Filed as a dispute again, it resumes where it was, with its level's full time.
    await h.say(f"分類 #{ticket.code} 糾紛", group=None, sender="wxid_wang")
    case = await _case(h)
    assert (case.level, case.status) == ("village", "open")
    assert case.level_deadline == h.clock.now() + timedelta(days=7)
    assert (await _actions(h))[-2:] == ["set_aside", "resumed"]


async def test_a_transferred_dispute_takes_its_case_to_the_new_station(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"转派 #{ticket.code} 陳警官", group=None, sender="wxid_county")
    await h.say(f"定级 #{ticket.code} 红 对方扬言报复", group=None, sender="wxid_chen")
    await h.sent()
    case = await _case(h)
    assert case.station_id == "hexi"
    # 河西 has no leader: the red page goes to whoever leads for it above (the county desk).
    pages = [t for t in h.to_user("wxid_county") if f"#{ticket.code}" in t and "红色" in t]
    assert len(pages) == 1, h.to_user("wxid_county")
    assert not [t for t in h.to_user("wxid_zhao") if "红色" in t and f"#{ticket.code}" in t]
    # Its deadline takes it to 河西's station level, whose leader is the county desk too.
    h.clock.advance(timedelta(days=7, minutes=1))
    await h.sweep()
    await h.sent()
    case = await _case(h)
    assert (case.level, case.station_id) == ("station", "hexi")
    assert [d for d in h.to_group(GROUP) if "河西派出所" in d["text"]]
    assert any("派出所调解" in t and f"#{ticket.code}" in t for t in h.to_user("wxid_county"))
    await h.say(f"调解 #{ticket.code} 双方到所里谈", group=None, sender="wxid_zhao")
    await h.sent()
    assert "其他派出所" in h.to_user("wxid_zhao")[-1]


async def test_a_rejected_agreement_opens_the_case_again(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"协议 #{ticket.code} 对方同意月底前还清", group=None, sender="wxid_wang")
    await h.say("不满意 他根本不会还", group=GROUP, sender="wxid_yang")
    await h.sent()
    case = await _case(h)
    assert (case.status, case.level, case.resolved_at) == ("open", "village", None)
    assert case.level_deadline == h.clock.now() + timedelta(days=7)
    assert (await _actions(h))[-1] == "agreement_rejected"
    await h.say(f"调解 #{ticket.code} 再约双方面谈", group=None, sender="wxid_zhao")
    await h.sent()
    assert "不能再" not in h.to_user("wxid_zhao")[-1]


async def test_the_county_centre_hears_its_agreement_was_rejected(h: Harness) -> None:
    # A trial (2026-12-08): the county centre's agreement, rejected, reopened the case at the
    # county level but went to the station's leader alone; the centre heard nothing until the
    # ticket ladder paged it days later.
    ticket, _ = await _dispute(h, LAND)
    await h.say(f"升級 #{ticket.code}", group=None, sender="wxid_wang")
    await h.say(f"升級 #{ticket.code} 分歧太大", group=None, sender="wxid_zhao")
    await h.say(f"協議 #{ticket.code} 按測量結果拆除越界圍牆", group=None, sender="wxid_county")
    await h.sent()
    before = len(h.to_user("wxid_county"))
    await h.say("不是很满意 他家拆墙拖着不动", group=GROUP, sender="wxid_yang")
    await h.sent()
    case = await _case(h)
    assert (case.status, case.level) == ("open", "county")
    [told] = h.to_user("wxid_county")[before:]
    assert f"#{ticket.code}" in told and "縣調解中心" in told and "拆墙拖着不动" in told
    assert any(f"#{ticket.code}" in t and "拆墙拖着不动" in t for t in h.to_user("wxid_zhao"))


async def test_mediation_under_way_is_not_escalated_by_the_answer_ladder(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"调解 #{ticket.code} 老刘承认欠款,约定下周再谈", group=None, sender="wxid_wang")
    await h.sent()
    [taken] = await h.tickets()
    assert taken.acknowledged_at is not None and taken.next_check_at is None
    before = len(h.to_user("wxid_zhao"))
    h.clock.advance(timedelta(days=6))
    await h.sweep()
    await h.sent()
    # Six days without a "#CODE answer": still the village's week, nobody above is told.
    assert [t for t in h.to_user("wxid_zhao")[before:] if f"#{ticket.code}" in t] == []
    assert [t for t in h.to_user("wxid_county") if f"#{ticket.code}" in t] == []
    assert (await _case(h)).level == "village"


async def test_the_station_leader_hears_when_a_case_leaves_his_level(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"升级 #{ticket.code}", group=None, sender="wxid_wang")
    await h.sent()
    before = len(h.to_user("wxid_zhao"))
    h.clock.advance(timedelta(days=15, minutes=1))
    await h.sweep()
    await h.sent()
    assert (await _case(h)).level == "county"
    told = [t for t in h.to_user("wxid_zhao")[before:] if f"#{ticket.code}" in t]
    assert len(told) == 1 and "已转到" in told[0], told


async def test_a_referred_case_says_mediation_is_over_without_sending_the_officer_round(
    h: Harness,
) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"升级 #{ticket.code}", group=None, sender="wxid_wang")
    await h.say(f"升级 #{ticket.code}", group=None, sender="wxid_zhao")
    await h.say(f"转介 #{ticket.code} 已引导当事人向法院起诉", group=None, sender="wxid_county")
    for command in ("协议 #{code} 和解", "回访 #{code} 看看", "调解 #{code} 再谈"):
        await h.say(command.format(code=ticket.code), group=None, sender="wxid_county")
        await h.sent()
        said = h.to_user("wxid_county")[-1]
        # Not "record a follow-up to reopen it", nor "no agreement yet": it went to court.
        assert "调解已经结束" in said and "请发" not in said, said
        assert "尚未达成协议" not in said
    assert (await _case(h)).status == "referred"


async def test_grading_without_a_colour_asks_for_one(h: Harness) -> None:
    ticket, _ = await _dispute(h)
    await h.say(f"定级 #{ticket.code}", group=None, sender="wxid_wang")
    await h.sent()
    said = h.to_user("wxid_wang")[-1]
    assert "请写上风险等级" in said and "“-”" not in said, said
