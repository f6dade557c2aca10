"""The console's 糾紛台賬 (issue 14): the register as each role sees it, its filters, a case's
page with its history (the residents' words audited), and actions that call the same service
as the chat's 定級 / 調解 / 協議 / 升級 / 轉介 / 回訪 — the same changes, the same people told.
Residents write over the bridge; accounts sign in through the sign-in form."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from models.disputes import DisputeCase, DisputeEvent
from models.tickets import Ticket
from tests.console_support import (
    add_accounts,
    audit_rows,
    form_of,
    hidden,
    post_form,
    signed_in,
    visible_text,
)
from tests.fakes import FakeWorld
from tests.harness import Harness

# Wednesday 2 December 2026, 10:00 in Asia/Shanghai.
START = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
NOISE = "邻居家装修天天吵到半夜,跟他说了也不听,想请民警帮忙调解"
LEAK = "楼上漏水泡了我家天花板,邻居不肯赔,想请民警调解"
THREAT = "两家为了宅基地闹矛盾,对方放话要拼命,想请民警调解"  # 拼命: red suggested
HEXI = "鄰居占了我家的地,想請派出所調解一下"
IDS = ("off-", "grp-", "qiaozhen", "hexi", "county", "wxid", "None", "village", "station")


@dataclass
class Disputes:
    h: Harness
    noise: Ticket  # 橋鎮, 橋鎮村警民群, blue, held by 王警官, reported by 楊
    leak: Ticket  # 橋鎮, 橋鎮村警民群, blue, held by 王警官, reported by 劉
    threat: Ticket  # 橋鎮, 橋鎮社區警民群, red (suggested)
    hexi: Ticket  # 河西, blue, held by 陳警官


@pytest.fixture
async def county(db_url: str, world: FakeWorld) -> AsyncIterator[Disputes]:
    h = Harness.build(db_url, world, clock=ManualClock(START))
    try:
        await h.load_directory()
        await add_accounts(h)
        await h.bind("wxid_yang", name="楊某某", phone="13912345678", group="grp-qiaozhen-01")
        await h.bind("wxid_liu", name="劉某某", phone="13887654321", group="grp-qiaozhen-01")
        await h.bind("wxid_ma", name="馬某某", phone="13600002222", group="grp-qiaozhen-02")
        await h.bind("wxid_he", name="何某某", phone="13700001111", group="grp-hexi-01")
        await h.say(NOISE, sender="wxid_yang", group="grp-qiaozhen-01")
        await h.say(LEAK, sender="wxid_liu", group="grp-qiaozhen-01")
        await h.say(THREAT, sender="wxid_ma", group="grp-qiaozhen-02")
        await h.say(HEXI, sender="wxid_he", group="grp-hexi-01")
        noise, leak, threat, hexi = await h.tickets()
        assert {t.category for t in (noise, leak, threat, hexi)} == {"dispute"}
        assert (noise.assigned_officer_id, leak.assigned_officer_id) == ("off-wang", "off-wang")
        assert (threat.station_id, hexi.station_id) == ("qiaozhen", "hexi")
        await h.drain()
        h.world.state.reset()
        yield Disputes(h, noise, leak, threat, hexi)
    finally:
        await h.close()


async def case_of(h: Harness, ticket: Ticket) -> DisputeCase:
    async with h.runtime.sessions() as session:
        found = await session.scalar(select(DisputeCase).where(DisputeCase.ticket_id == ticket.id))
        assert found is not None
        return found


async def history(h: Harness, ticket: Ticket) -> list[tuple[str, str]]:
    """(action, by) of the case's history, oldest first."""
    case = await case_of(h, ticket)
    async with h.runtime.sessions() as session:
        rows = await session.execute(
            select(DisputeEvent.action, DisputeEvent.by)
            .where(DisputeEvent.dispute_id == case.id)
            .order_by(DisputeEvent.id)
        )
        return [(a, b) for a, b in rows.all()]


def codes_listed(page: str) -> list[str]:
    table = page.split('id="dispute-rows"')[1] if 'id="dispute-rows"' in page else ""
    return re.findall(r'<tr class="[^"]*" data-code="([A-Z]\d+)"', table)


async def test_every_role_sees_its_scope_red_on_top_in_both_scripts(county: Disputes) -> None:
    c = county
    qiaozhen = {c.noise.code, c.leak.code, c.threat.code}
    expected = {
        "admin": qiaozhen | {c.hexi.code},
        "zhao": qiaozhen,
        "wang": qiaozhen,  # an officer sees their station's, as in the chat
        "chen": {c.hexi.code},
    }
    for username, codes in expected.items():
        client = await signed_in(c.h, username)
        for script, marker in (("hant", "糾紛台賬"), ("hans", "纠纷台账")):
            page = await client.get("/console/disputes")
            assert page.status_code == 200, page.text
            listed = codes_listed(page.text)
            assert set(listed) == codes, (username, listed)
            if c.threat.code in codes:
                assert listed[0] == c.threat.code  # red on top
            text = visible_text(page.text)
            assert marker in text and '<a href="/console/disputes" class="active"' in page.text
            for raw in IDS:
                assert raw not in text, (username, script, raw)
            # Each case's page opens, with names and never ids.
            for code in codes:
                one = await client.get(f"/console/disputes/{code}")
                assert one.status_code == 200, (username, code)
                assert not any(raw in visible_text(one.text) for raw in IDS), (username, code)
            await client.post(
                "/console/account/script",
                data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/console/"},
            )
    # The tally counts the scope's open cases by colour.
    chen = await signed_in(c.h, "chen")
    tally = visible_text((await chen.get("/console/disputes")).text.split('id="tally"')[1])
    assert "藍色 1" in tally and "紅色 0" in tally


async def test_filters_by_colour_level_station_and_status(county: Disputes) -> None:
    c = county
    admin = await signed_in(c.h, "admin")

    async def listed(query: str, client: httpx.AsyncClient = admin) -> list[str]:
        page = await client.get(f"/console/disputes?{query}")
        assert page.status_code == 200
        return codes_listed(page.text)

    assert await listed("colour=red") == [c.threat.code]
    assert set(await listed("colour=blue")) == {c.noise.code, c.leak.code, c.hexi.code}
    assert await listed("station=hexi") == [c.hexi.code]
    assert await listed("level=station") == []
    wang = await signed_in(c.h, "wang")
    await post_form(
        wang,
        f"/console/disputes/{c.leak.code}",
        f"/console/disputes/{c.leak.code}/escalate",
        reason="",
    )
    assert await listed("level=station") == [c.leak.code]
    await post_form(
        wang,
        f"/console/disputes/{c.noise.code}",
        f"/console/disputes/{c.noise.code}/agreement",
        text="装修只在白天进行",
    )
    assert c.noise.code not in await listed("")  # the default is the open cases
    assert await listed("status=resolved") == [c.noise.code]
    assert len(await listed("status=all")) == 4
    page = await admin.get("/console/disputes?status=all")
    resolved = visible_text(page.text.split('id="tally-resolved"')[1].split("</div>")[0])
    assert re.search(r"村\(社區\)調解\s*1", resolved)  # settled at the village level
    # A station outside the scope, or a colour that is none, is said and not applied.
    zhao = await signed_in(c.h, "zhao")
    page = await zhao.get("/console/disputes?station=hexi&colour=green")
    assert page.status_code == 200
    assert visible_text(page.text).count("沒有這個選項,未按此篩選") == 2
    assert set(codes_listed(page.text)) == {c.leak.code, c.threat.code}
    assert "河西派出所" not in page.text


async def test_a_case_page_shows_its_history_and_the_words_audited(county: Disputes) -> None:
    c = county
    await c.h.say(f"定級 #{c.noise.code} 黃 鄰里多次爭吵", group=None, sender="wxid_wang")
    zhao = await signed_in(c.h, "zhao")
    path = f"/console/disputes/{c.noise.code}"
    assert await audit_rows(c.h, "personal_data_shown") == []
    page = await zhao.get(path)
    assert page.status_code == 200
    text = visible_text(page.text)
    assert NOISE in text and "楊**" in text and "楊某某" not in text  # parties masked
    assert "橋鎮村警民群" in text
    history_text = visible_text(page.text.split('id="history"')[1])
    assert "登記為糾紛" in history_text and "定級" in history_text
    assert "王警官" in history_text and "鄰里多次爭吵" in history_text  # who, and the reason
    assert "黃色" in history_text and "村(社區)調解" in history_text
    [shown] = await audit_rows(c.h, "personal_data_shown")
    assert (shown.username, shown.target, shown.detail) == (
        "zhao",
        f"dispute:{c.noise.code}",
        "words",
    )
    # The register itself shows no words and audits nothing.
    await zhao.get("/console/disputes")
    assert len(await audit_rows(c.h, "personal_data_shown")) == 1
    # From the case to its ticket and back.
    assert f'href="/console/tickets/{c.noise.code}"' in page.text
    ticket_page = await zhao.get(f"/console/tickets/{c.noise.code}")
    assert f'href="/console/disputes/{c.noise.code}"' in ticket_page.text
    assert "黃色 · 村(社區)調解 · 調解中" in visible_text(ticket_page.text)
    # The admin reads it in the audit log, linked to the case.
    admin = await signed_in(c.h, "admin")
    log = await admin.get("/console/audit")
    assert f'href="/console/disputes/{c.noise.code}"' in log.text


async def test_a_withdrawn_case_is_not_told_as_settled(county: Disputes) -> None:
    # A trial (2026-12-08): a withdrawn case showed "化解 <time> · 村(社區)調解" on its page,
    # a resolved_at in the API and a time under 化解或轉介時間 in the report.
    c = county
    await c.h.say(f"撤回調解 #{c.noise.code} 雙方私下談妥", group=None, sender="wxid_wang")
    await c.h.say(f"升級 #{c.leak.code}", group=None, sender="wxid_wang")
    await c.h.say(f"升級 #{c.leak.code}", group=None, sender="wxid_zhao")
    await c.h.say(f"轉介 #{c.leak.code} 引導向法院起訴", group=None, sender="wxid_county")
    zhao = await signed_in(c.h, "zhao")

    async def facts(ticket: Ticket) -> str:
        page = (await zhao.get(f"/console/disputes/{ticket.code}")).text
        return visible_text(page.split('class="facts"')[1].split("</dl>")[0])

    withdrawn = await facts(c.noise)
    assert "撤回" in withdrawn and "化解" not in withdrawn
    assert (await case_of(c.h, c.noise)).resolved_at is None
    assert re.search(r"轉介\s*\d{4}-\d\d-\d\d", await facts(c.leak))


async def test_another_stations_case_is_404_by_url_and_cannot_be_acted_on(
    county: Disputes,
) -> None:
    c = county
    chen = await signed_in(c.h, "chen")
    theirs = await chen.get(f"/console/disputes/{c.threat.code}")
    nothing = await chen.get("/console/disputes/Z0000")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.text == nothing.text
    token = hidden((await chen.get("/console/disputes")).text, "csrf_token")
    for action, fields in (
        ("grade", {"colour": "blue", "reason": "不嚴重"}),
        ("agreement", {"text": "和解"}),
        ("escalate", {"reason": ""}),
    ):
        refused = await chen.post(
            f"/console/disputes/{c.threat.code}/{action}",
            data={"csrf_token": token, "nonce": f"n-{action}", **fields},
        )
        assert refused.status_code == 404
    case = await case_of(c.h, c.threat)
    assert (case.colour, case.level, case.status) == ("red", "village", "open")
    assert await c.h.sent() == []
    # A ticket that is not a dispute has no case page.
    await c.h.say("我家电动车被偷了", sender="wxid_he", group="grp-hexi-01")
    theft = next(t for t in await c.h.tickets() if t.category == "report")
    assert (await chen.get(f"/console/disputes/{theft.code}")).status_code == 404


async def test_csrf_and_double_submission_change_nothing(county: Disputes) -> None:
    c = county
    wang = await signed_in(c.h, "wang")
    path = f"/console/disputes/{c.noise.code}"
    page = await wang.get(path)
    form = form_of(page.text, f"{path}/grade")
    for token in (None, "not-the-token"):
        data = {**form, "colour": "red", "reason": "威脅"}
        if token is None:
            data.pop("csrf_token")
        else:
            data["csrf_token"] = token
        refused = await wang.post(f"{path}/grade", data=data)
        assert refused.status_code == 403 and "表單已失效" in refused.text
    assert (await case_of(c.h, c.noise)).colour == "blue"
    assert await c.h.sent() == []
    # The same rendered form twice (a double click): one grading, one page to the leader.
    first = await wang.post(f"{path}/grade", data={**form, "colour": "red", "reason": "威脅"})
    again = await wang.post(f"{path}/grade", data={**form, "colour": "red", "reason": "威脅"})
    assert first.headers["location"] == f"{path}?done=grade"
    assert again.headers["location"] == f"{path}?done=duplicate"
    assert [a for a, _ in await history(c.h, c.noise)].count("graded") == 1
    await c.h.drain()
    pages = [t for t in c.h.to_user("wxid_zhao") if "红色纠纷" in t]
    assert len(pages) == 1 and f"#{c.noise.code}" in pages[0]
    assert [r.target for r in await audit_rows(c.h, "dispute_graded")] == [
        f"dispute:{c.noise.code}"
    ]


async def test_the_chats_rules_refuse_on_the_page_too(county: Disputes) -> None:
    c = county
    h = c.h
    wang = await signed_in(h, "wang")
    path = f"/console/disputes/{c.noise.code}"
    token = hidden((await wang.get(path)).text, "csrf_token")

    async def post(action: str, nonce: str, **fields: str) -> httpx.Response:
        return await wang.post(
            f"{path}/{action}", data={"csrf_token": token, "nonce": nonce, **fields}
        )

    empty = await post("mediate", "m1", text="  ")
    assert empty.status_code == 400 and "請寫上調解記錄" in visible_text(empty.text)
    green = await post("grade", "g1", colour="green", reason="綠色理由")
    assert green.status_code == 400 and "紅、黃或藍" in visible_text(green.text)
    assert 'value="綠色理由"' in green.text  # what was typed is kept
    long = "很長" * 800
    too_long = await post("agreement", "a1", text=long)
    assert too_long.status_code == 400 and "不能超過1500字" in visible_text(too_long.text)
    assert f">{long}</textarea>" in too_long.text
    # The follow-up comes after an agreement, not before.
    early = await post("follow_up", "f1", text="雙方相安無事")
    assert early.status_code == 409 and "尚未達成協議" in visible_text(early.text)
    # A refused form was not used up: corrected, it goes through.
    assert (await post("mediate", "m1", text="雙方到村委會溝通")).status_code == 303
    for nonce in ("e1", "e2"):
        assert (await post("escalate", nonce, reason="")).status_code == 303
    page = await wang.get(path)
    assert f'action="{path}/escalate"' not in page.text and "不能再升級" in page.text
    at_county = await post("escalate", "e3", reason="")
    assert at_county.status_code == 409 and "司法確認" in visible_text(at_county.text)
    assert (await post("refer", "r1", text="已引導當事人向法院起訴")).status_code == 303
    again = await post("agreement", "a2", text="另一個協議")
    assert again.status_code == 409
    said = visible_text(again.text)
    assert f"#{c.noise.code} 的糾紛已轉介,調解已經結束,不能再記錄協議" in said
    case = await case_of(h, c.noise)
    assert (case.level, case.status) == ("county", "referred")
    assert [a for a, _ in await history(h, c.noise)] == [
        "opened",
        "mediated",
        "escalated",
        "escalated",
        "referred",
    ]


def _normalised(
    sent: list[dict[str, Any]], code: str, words: str, mentions: dict[str, str]
) -> list[tuple[Any, ...]]:
    """Messages with the ticket's code and words replaced, so that two cases compare."""
    return sorted(
        (
            d["user_id"] or "",
            d["group_id"] or "",
            d["text"].replace(code, "CODE").replace(words, "WORDS"),
            tuple(mentions.get(m, m) for m in d.get("mentions") or ()),
        )
        for d in sent
    )


async def test_an_action_on_the_page_does_what_the_chat_command_does(county: Disputes) -> None:
    """The same steps on two cases held by 王警官 — one by his chat commands, the other by his
    console account — change both cases alike and tell the same people the same things."""
    c = county
    h = c.h
    chat, page_case = c.noise, c.leak
    wang = await signed_in(h, "wang")
    path = f"/console/disputes/{page_case.code}"
    group = "grp-qiaozhen-01"
    # (the chat command, the page's form and its fields, who hears of it besides the actor)
    steps = [
        ("定级 #{code} 红 放话要动手", "grade", {"colour": "red", "reason": "放话要动手"}, {"wxid_zhao"}),
        ("调解 #{code} 双方到村委会沟通", "mediate", {"text": "双方到村委会沟通"}, set()),
        ("升级 #{code} 村里调不下来", "escalate", {"reason": "村里调不下来"}, {"wxid_zhao", group}),
        ("协议 #{code} 装修只在白天进行", "agreement", {"text": "装修只在白天进行"}, {group}),
        ("回访 #{code} 对方反悔了,又吵起来", "follow_up", {"text": "对方反悔了,又吵起来"}, {"wxid_zhao"}),
        # The station's leader, whose level it leaves, hears it too.
        ("升级 #{code}", "escalate", {"reason": ""}, {"wxid_county", "wxid_zhao", group}),
        ("转介 #{code} 已引导当事人向法院起诉", "refer", {"text": "已引导当事人向法院起诉"}, {group}),
    ]  # fmt: skip
    for command, action, fields, told in steps:
        h.clock.advance(timedelta(minutes=10))  # within the session's 30 idle minutes
        before = len(h.world.state.delivered())
        await h.say(command.format(code=chat.code), group=None, sender="wxid_wang")
        by_chat = (await h.sent())[before:]
        # The chat confirms to the officer privately; the page confirms on the page.
        assert any(d["user_id"] == "wxid_wang" for d in by_chat), command
        by_chat = [d for d in by_chat if d["user_id"] != "wxid_wang"]

        before = len(h.world.state.delivered())
        done = await post_form(wang, path, f"{path}/{action}", **fields)
        assert done.status_code == 303, (action, visible_text(done.text)[:300])
        by_page = (await h.sent())[before:]
        assert {d["user_id"] or d["group_id"] for d in by_page} == told, action
        assert _normalised(by_page, page_case.code, LEAK, {"wxid_liu": "wxid_yang"}) == (
            _normalised(by_chat, chat.code, NOISE, {})
        ), action
        a, b = await case_of(h, chat), await case_of(h, page_case)
        fields_of = ("colour", "level", "status", "resolved_level", "level_deadline")
        fields_of += ("follow_up_at", "follow_ups_done", "check_at")
        assert [getattr(a, f) for f in fields_of] == [getattr(b, f) for f in fields_of], action
        tickets = {t.id: t for t in await h.tickets()}
        assert tickets[chat.id].status == tickets[page_case.id].status, action
    chat_history, page_history = await history(h, chat), await history(h, page_case)
    assert [a for a, _ in chat_history] == [a for a, _ in page_history]
    assert {b for _, b in page_history} >= {"console:wang"}
    assert "officer:off-wang" not in {b for _, b in page_history}
    # The page names the account (王警官) in the history.
    page = await wang.get(path)
    assert "王警官" in visible_text(page.text.split('id="history"')[1])
    audited = [r.action for r in await audit_rows(h) if r.target == f"dispute:{page_case.code}"]
    assert [a for a in audited if a != "personal_data_shown"] == [
        "dispute_graded",
        "dispute_mediated",
        "dispute_escalated",
        "dispute_agreement",
        "dispute_followed_up",
        "dispute_escalated",
        "dispute_referred",
    ]


async def test_an_agreement_recorded_on_the_page_takes_the_officers_photo(
    county: Disputes,
) -> None:
    c = county
    h = c.h
    wang = await signed_in(h, "wang")
    path = f"/console/disputes/{c.leak.code}"
    page = await wang.get(path)
    assert "一小時內由您的微信私聊發給連心" in visible_text(page.text)
    await post_form(wang, path, f"{path}/agreement", text="樓上賠償維修費800元")
    photo = h.bridge_body("", group=None, sender="wxid_wang")
    photo["message"].update(type="image", media_url="https://x/agreement.jpg")
    assert (await h.post_bridge(photo)).status_code == 200
    assert ("photo", "officer:off-wang") in await history(h, c.leak)
    page = await wang.get(path)
    assert 'href="https://x/agreement.jpg"' in page.text
    assert "樓上賠償維修費800元" in visible_text(page.text.split('id="agreement"')[1][:200])
