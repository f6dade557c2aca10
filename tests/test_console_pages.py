"""The console's pages as each role sees them: every page renders for every role, in both
scripts, with names and local times and never raw ids; scopes hold by URL; the overview and
the ticket list show what is so; every showing of personal data is audited."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from bot.services.tokens import create_token
from tests.console_support import ACCOUNTS, audit_rows, form_of, hidden, signed_in, visible_text
from tests.console_world import THEFT, County, county

_ = county  # the fixture
IDS = ("off-", "grp-", "qiaozhen", "hexi", "county", "wxid", "None")


def own_ticket(c: County, username: str) -> str:
    return c.hexi.code if username == "chen" else c.theft.code


async def test_every_page_renders_for_every_role_in_both_scripts(county: County) -> None:
    c = county
    for username in ACCOUNTS:
        client = await signed_in(c.h, username)
        for script, marker in (("hant", "總覽"), ("hans", "总览")):
            pages = [
                "/console/",
                "/console/overview/panel",
                "/console/tickets",
                "/console/tickets?status=all",
                f"/console/tickets/{own_ticket(c, username)}",
                "/console/bulletins",
                "/console/alerts",
                "/console/organisation",
                "/console/stats",
                "/console/households",
                "/console/audit",
            ]
            for path in pages:
                page = await client.get(path)
                expected = 404 if path == "/console/audit" and username != "admin" else 200
                assert page.status_code == expected, (username, path, page.text[:500])
                text = visible_text(page.text)
                for raw in IDS:
                    assert raw not in text, (username, script, path, raw)
                if path != "/console/overview/panel":
                    assert marker in text, (username, script, path)
            exported = await client.get("/console/tickets.csv")
            assert exported.status_code == 200
            assert not any(raw in exported.text for raw in IDS)
            # Switch to the other script for the second round.
            page = await client.get("/console/")
            await client.post(
                "/console/account/script",
                data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/console/"},
            )


async def test_another_stations_ticket_is_404_by_url_exactly_like_no_ticket(
    county: County,
) -> None:
    c = county
    chen = await signed_in(c.h, "chen")  # leads 河西
    theirs = await chen.get(f"/console/tickets/{c.theft.code}")
    nothing = await chen.get("/console/tickets/Z0000")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.text == nothing.text
    assert (await chen.get(f"/console/tickets/{c.hexi.code}")).status_code == 200

    # An action on it by URL, with a valid token, changes nothing either.
    token = hidden((await chen.get("/console/")).text, "csrf_token")
    for action, fields in (("answer", {"text": "我來答"}), ("close", {"note": "結"})):
        refused = await chen.post(
            f"/console/tickets/{c.theft.code}/{action}",
            data={"csrf_token": token, "nonce": f"n-{action}", **fields},
        )
        assert refused.status_code == 404
    await c.refresh()
    assert c.theft.status == "new" and await c.h.sent() == []

    # The list holds only 河西's; asking for 橋鎮 is refused, not widened.
    listed = await chen.get("/console/tickets?status=all")
    assert c.hexi.code in listed.text and c.theft.code not in listed.text
    asked = await chen.get("/console/tickets?station=qiaozhen")
    assert "沒有這個選項" in asked.text and c.theft.code not in asked.text

    wang = await signed_in(c.h, "wang")
    assert (await wang.get(f"/console/tickets/{c.hexi.code}")).status_code == 404
    admin = await signed_in(c.h, "admin")
    for code in (c.theft.code, c.knife.code, c.hexi.code):
        assert (await admin.get(f"/console/tickets/{code}")).status_code == 200


async def test_an_address_that_cannot_be_read_is_the_consoles_404_not_json(
    county: County,
) -> None:
    # Found by a newcomer: /console/tickets/export.csv answered FastAPI's 422 in English JSON.
    c = county
    wang = await signed_in(c.h, "wang")
    nothing = await wang.get("/console/tickets/Z0000")
    for path in ("/console/tickets/export.csv", "/console/tickets/%3Cb%3E"):
        answer = await wang.get(path)
        assert answer.status_code == 404 and answer.text == nothing.text, path
        assert "找不到這個頁面" in visible_text(answer.text)
    # Signed out, the sign-in comes first, as for every console page.
    c.h.client.cookies.clear()
    assert (await c.h.client.get("/console/tickets/export.csv")).status_code == 303


async def test_an_admin_reads_the_api_page_in_the_console_and_nobody_else(
    county: County,
) -> None:
    # Found by a newcomer: /docs asks for a bearer token, which a browser cannot send, and the
    # console's cookie is not sent outside /console: no admin could open the API page.
    c = county
    admin = await signed_in(c.h, "admin")
    page = await admin.get("/console/api-docs")
    assert page.status_code == 200 and "/console/api-docs/openapi.json" in page.text
    schema = await admin.get("/console/api-docs/openapi.json")
    assert schema.status_code == 200 and "/api/v1/bulletins" in schema.json()["paths"]
    zhao = await signed_in(c.h, "zhao")
    for path in ("/console/api-docs", "/console/api-docs/openapi.json"):
        assert (await zhao.get(path)).status_code == 404, path
    c.h.client.cookies.clear()
    assert (await c.h.client.get("/console/api-docs")).status_code == 303


async def test_an_officer_sees_their_own_items_first(county: County) -> None:
    c = county
    # The leader hands the theft and the emergency to 李警官 from the chat.
    for code in (c.theft.code, c.knife.code):
        await c.h.say(f"轉派 #{code} off-li", sender="wxid_zhao", group=None)
    await c.h.say("我家門口的路燈壞了,能不能修一下", sender="wxid_yang", group="grp-qiaozhen-01")
    mine = (await c.h.tickets())[-1]
    assert mine.assigned_officer_id == "off-wang"

    wang = await signed_in(c.h, "wang")
    rows = re.findall(r'data-code="(\w+)"', (await wang.get("/console/tickets")).text)
    assert rows == [mine.code, c.knife.code, c.theft.code]
    admin = await signed_in(c.h, "admin")
    rows = re.findall(r'data-code="(\w+)"', (await admin.get("/console/tickets")).text)
    assert rows[0] == c.knife.code and set(rows) == {
        mine.code,
        c.knife.code,
        c.theft.code,
        c.hexi.code,
    }


async def test_filters_search_local_time_and_csv(county: County) -> None:
    c = county
    c.h.clock.advance(timedelta(days=1))  # Thursday 3 December
    await c.h.say("請問辦身份證要帶什麼材料", sender="wxid_yang", group="grp-qiaozhen-01")
    question = (await c.h.tickets())[-1]
    await c.h.say(f"結案 #{c.theft.code} 已找回", sender="wxid_wang", group=None)
    admin = await signed_in(c.h, "admin")

    async def codes(query: str) -> list[str]:
        page = await admin.get(f"/console/tickets?{query}")
        assert page.status_code == 200
        return re.findall(r'data-code="(\w+)"', page.text)

    assert set(await codes("")) == {c.knife.code, c.hexi.code, question.code}  # open ones
    assert set(await codes("status=all")) == {
        c.theft.code,
        c.knife.code,
        c.hexi.code,
        question.code,
    }
    assert await codes("status=closed") == [c.theft.code]
    assert await codes("category=consultation") == [question.code]
    assert await codes("priority=1") == [c.knife.code]
    assert set(await codes("station=hexi&status=all")) == {c.hexi.code}
    assert set(await codes("officer=off-chen")) == {c.hexi.code}
    assert set(await codes("status=all&from=2026-12-03")) == {question.code}
    assert set(await codes("status=all&to=2026-12-02")) == {c.theft.code, c.knife.code, c.hexi.code}
    assert await codes(f"status=all&code=%23{c.knife.code}") == [c.knife.code]
    assert await codes(f"status=all&code={c.knife.code.lower()}") == [c.knife.code]
    assert c.knife.code in await codes(f"status=all&code={c.knife.code[1:]}")  # the digits

    bad = await admin.get(
        "/console/tickets?status=bogus&from=2026-13-01&to=2026-12-01&code=!!&officer=off-x"
    )
    text = visible_text(bad.text)
    for reason in ("沒有這個選項", "日期應寫作 年-月-日", "編號是一個字母加4至6位數字"):
        assert reason in text
    assert "2026-13-01" in bad.text  # what was typed stays in the form
    backwards = await admin.get("/console/tickets?from=2026-12-03&to=2026-12-01")
    assert "起始日期晚於截止日期" in backwards.text

    # Local time (Asia/Shanghai): reported at 02:00 UTC, shown as 10:00.
    listed = visible_text((await admin.get("/console/tickets?status=all")).text)
    assert "2026-12-02 10:00" in listed and "2026-12-02 02:00" not in listed

    exported = await admin.get("/console/tickets.csv?status=all&station=qiaozhen")
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["編號", "優先級", "類別", "狀態"]
    by_code = {r[0]: r for r in rows[1:]}
    assert set(by_code) == {c.theft.code, c.knife.code, question.code}
    theft = by_code[c.theft.code]
    assert theft[3] == "已結案" and theft[5] == "橋鎮派出所" and theft[6] == "王警官"
    assert theft[7] == "橋鎮村警民群" and theft[8] == "2026-12-02 10:00"
    assert THEFT not in exported.text  # no residents' words in an export
    [export] = await audit_rows(c.h, "export")
    assert export.username == "admin" and "station=qiaozhen" in (export.detail or "")


async def test_dates_outside_the_years_are_refused_beside_the_field_not_a_500(
    county: County,
) -> None:
    # A day either side of 0001-01-01 or 9999-12-31 overflowed when it became an instant.
    c = county
    admin = await signed_in(c.h, "admin")
    everything = {c.theft.code, c.knife.code, c.hexi.code}
    for query in (
        "from=0001-01-01&to=9999-12-31",
        "to=9999-12-31",
        "from=0001-01-01",
        "from=1970-12-31&to=9999-01-01",
    ):
        page = await admin.get(f"/console/tickets?status=all&{query}")
        assert page.status_code == 200, (query, page.text[:300])
        text = visible_text(page.text)
        assert text.count("日期須在1971年至9998年之間") == query.count("="), query
        # The refused dates are not applied (the list is every ticket) and stay in the form.
        assert set(re.findall(r'data-code="(\w+)"', page.text)) == everything, query
        assert query.split("=")[1].split("&")[0] in page.text
        exported = await admin.get(f"/console/tickets.csv?status=all&{query}")
        assert exported.status_code == 400, query
        assert exported.headers["content-type"].startswith("text/plain")
        assert exported.text.endswith("日期須在1971年至9998年之間。\n"), exported.text
    # The first and last days of those years are dates like any other.
    widest = await admin.get("/console/tickets?status=all&from=1971-01-01&to=9998-12-31")
    assert set(re.findall(r'data-code="(\w+)"', widest.text)) == everything
    assert "1971年至9998年" not in visible_text(widest.text)
    # In the account's script.
    await admin.post(
        "/console/account/script",
        data={"csrf_token": hidden(widest.text, "csrf_token"), "next": "/console/"},
    )
    simplified = await admin.get("/console/tickets?to=9999-12-31")
    assert "日期须在1971年至9998年之间" in visible_text(simplified.text)
    assert (await admin.get("/console/tickets.csv?to=9999-12-31")).text == (
        "to: 日期须在1971年至9998年之间。\n"
    )


async def test_the_overview_shows_items_overdue_emergencies_bulletins_and_channels(
    county: County,
) -> None:
    c = county
    h = c.h
    zhao = await signed_in(h, "zhao")
    panel = visible_text((await zhao.get("/console/overview/panel")).text)
    assert "沒有逾期事項" in panel

    # 王警官 takes the emergency three minutes after it came in.
    h.clock.advance(timedelta(minutes=3))
    await h.say(f"接單 #{c.knife.code}", sender="wxid_wang", group=None)
    h.clock.advance(timedelta(minutes=28))  # 31 minutes: both P2 thefts are overdue
    zhao = await signed_in(h, "zhao")  # (the first session has been idle too long)
    chen = await signed_in(h, "chen")
    page = await zhao.get("/console/")
    emergencies = re.search(r'id="emergencies".*?</section>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert c.knife.code in emergencies
    assert "接單 10:03(3分鐘後)" in visible_text(emergencies)
    overdue = re.search(r'id="overdue".*?</section>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert c.theft.code in overdue and c.hexi.code not in overdue  # 河西 is not 趙所長's
    assert "未接單" in visible_text(overdue) and "逾期1分鐘" in visible_text(overdue)
    matrix = re.search(r'id="open-items".*?</section>', page.text, re.S).group(0)  # type: ignore[union-attr]
    assert re.search(r'<span class="count">2</span>', matrix)
    chens = await chen.get("/console/")
    assert c.hexi.code in chens.text and c.theft.code not in chens.text

    # A bulletin due within 24 hours for a 橋鎮 group, another in two days.
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="admin", name="ops", now=h.clock.now())
    for title, hours in (("防詐騙提醒", 3), ("下週的提醒", 48)):
        made = await h.client.post(
            "/api/v1/bulletins",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "title": title,
                "category": "anti-fraud",
                "text": "公檢法不會電話辦案。",
                "targets": {"groups": ["grp-qiaozhen-01"]},
                "schedule": {"at": (h.clock.now() + timedelta(hours=hours)).isoformat()},
            },
        )
        assert made.status_code == 201, made.text
    bulletins = re.search(
        r'id="bulletins".*?</section>', (await zhao.get("/console/")).text, re.S
    ).group(0)  # type: ignore[union-attr]
    text = visible_text(bulletins)
    assert "防詐騙提醒" in text and "下週的提醒" not in text
    assert "橋鎮村警民群" in text and "防詐騙" in text and "2026-12-02 13:31" in text
    assert "防詐騙提醒" not in (await chen.get("/console/")).text  # not a 河西 group

    # The bridge refuses everything: after three failures in a row it is marked down.
    channels = re.search(
        r'id="channels".*?</section>', (await zhao.get("/console/")).text, re.S
    ).group(0)  # type: ignore[union-attr]
    assert 'data-channel="bridge"' in channels and "正常" in visible_text(channels)
    h.world.state.send_script.extend([503] * 20)
    await h.say("請問晚上派出所有人值班嗎", sender="wxid_yang", group="grp-qiaozhen-01")
    await h.say("請問辦證要多久", sender="wxid_liu", group="grp-qiaozhen-01")
    await h.say("請問在哪裡交罰款", sender="wxid_he", group="grp-hexi-01")
    await h.drain()
    assert h.runtime.health.is_down("bridge")
    panel = await zhao.get("/console/overview/panel")
    row = re.search(r'<tr class="channel down" data-channel="bridge">.*?</tr>', panel.text, re.S)
    assert row, panel.text
    assert "中斷" in visible_text(row.group(0))
    backlog = re.findall(r"<td[^>]*>(\d+)</td>", row.group(0))
    assert int(backlog[0]) >= 3


async def test_the_overview_refreshes_itself_with_htmx(county: County) -> None:
    admin = await signed_in(county.h, "admin")
    page = await admin.get("/console/")
    assert 'hx-get="/console/overview/panel"' in page.text
    assert 'hx-trigger="every 30s"' in page.text and 'hx-swap="outerHTML"' in page.text
    panel = await admin.get("/console/overview/panel", headers={"HX-Request": "true"})
    assert panel.text.lstrip().startswith('<div id="overview"') and "<html" not in panel.text


# Bidi embeddings, overrides and isolates, and the zero-width space.
HIDDEN = re.compile("[\u200b\u202a-\u202e\u2066-\u2069]")


async def test_bidi_controls_from_residents_never_reach_the_officers_page(
    county: County,
) -> None:
    # A right-to-left override shows the resident's number and house number reversed on the
    # officer's screen: "\u202e12號3棟" reads as "棟3號21".
    c = county
    words = (
        "\u202e12號3棟\u202c門口的路燈壞了好幾天,電話\u2067139\u200b1234\u20695678,"
        "\u202a左\u202b右\u202d鄰\u2066居\u2068都\u202c摔倒過👨\u200d👩\u200d👧"
    )
    body = c.h.bridge_body(words, sender="wxid_yang", nickname="楊\u202e某某")
    body["group"]["name"] = "橋鎮\u2066群"
    assert (await c.h.post_bridge(body)).status_code == 200
    ticket = (await c.h.tickets())[-1]
    clean = "12號3棟門口的路燈壞了好幾天,電話13912345678,左右鄰居都摔倒過👨\u200d👩\u200d👧"
    assert c.h.runtime.cipher.decrypt(ticket.text_enc) == clean  # the family keeps its joiners
    admin = await signed_in(c.h, "admin")
    page = await admin.get(f"/console/tickets/{ticket.code}")
    assert page.status_code == 200 and clean in page.text
    assert not HIDDEN.search(page.text)


async def test_every_showing_of_personal_data_is_audited(county: County) -> None:
    c = county
    admin = await signed_in(c.h, "admin")
    await admin.get("/console/tickets")  # a list shows no personal data
    assert await audit_rows(c.h, "personal_data_shown") == []
    for _ in range(2):
        page = await admin.get(f"/console/tickets/{c.theft.code}")
        assert THEFT in page.text and "楊**" in page.text
        assert "楊某某" not in page.text and "13912345678" not in page.text
    rows = await audit_rows(c.h, "personal_data_shown")
    assert [(r.username, r.target, r.detail) for r in rows] == [
        ("admin", f"ticket:{c.theft.code}", "words")
    ] * 2

    # The reporters' names and numbers: for the holder and the station's leader, on request.
    assert 'id="contacts"' not in page.text  # an admin without an officer is neither
    zhao = await signed_in(c.h, "zhao")
    page = await zhao.get(f"/console/tickets/{c.theft.code}")
    action = f"/console/tickets/{c.theft.code}/contacts"
    shown = await zhao.post(action, data=form_of(page.text, action))
    assert shown.status_code == 200
    assert "楊某某" in shown.text and "13912345678" in shown.text
    [contacts] = [r for r in await audit_rows(c.h, "personal_data_shown") if r.detail == "contacts"]
    assert (contacts.username, contacts.target) == ("zhao", f"ticket:{c.theft.code}")
    assert "contact_shown" in await c.h.timeline(c.theft)

    token = hidden((await admin.get("/console/")).text, "csrf_token")
    refused = await admin.post(action, data={"csrf_token": token, "nonce": "n1"})
    assert refused.status_code == 409 and "13912345678" not in refused.text
    assert "聯繫方式只提供給負責民警和本所領導" in refused.text


async def test_a_neighbours_clue_shows_on_the_timeline_as_theirs(county: County) -> None:
    c = county
    # 劉 is in the theft's group but did not report it.
    await c.h.say(
        f"#{c.theft.code} 我好像看到過有人推走", sender="wxid_liu", group="grp-qiaozhen-01"
    )
    admin = await signed_in(c.h, "admin")
    page = await admin.get(f"/console/tickets/{c.theft.code}")
    assert "群友(非報案人)" in page.text and "我好像看到過有人推走" in page.text
