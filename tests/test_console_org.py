"""The console's 組織 pages over the ASGI app: the station tree and each station's week of
duty for every role; roster slots and a group's officer changed once per rendered form,
audited, within the editor's stations (another station's by URL is 404, officers read only),
and then used by routing (a resident's next item reaches the new officer); a directory file
uploaded, previewed by name (marking the console edits it would undo) and applied exactly as
previewed, refused when the directory changed in between, and refused with the loader's reason
in Chinese when it is wrong."""

from __future__ import annotations

import base64
import html
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from models.directory import Group, Officer, RosterEntry
from tests.console_support import add_accounts, audit_rows, signed_in, visible_text
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # a Monday
DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"
QIAOZHEN = "/console/organisation/stations/qiaozhen"
WANG_DAY = "qiaozhen|off-wang|days:mon,tue,wed,thu,fri|08:00-20:00"


@pytest.fixture
async def h(harness: Harness) -> Harness:
    harness.clock.set(MONDAY_10)
    await harness.load_directory()
    async with harness.runtime.sessions.begin() as session:
        await session.execute(
            update(Officer)
            .where(Officer.id == "off-wang")
            .values(phone_enc=harness.runtime.cipher.encrypt("13900000001"))
        )
    await add_accounts(harness)
    await harness.bind("wxid_yang", name="楊某某", phone="13912345678", group="grp-qiaozhen-01")
    return harness


def hidden_after(page: str, marker: str) -> dict[str, str]:
    """The hidden fields of the first form after ``marker`` in ``page``."""
    start = page.index(marker)
    body = page[start : page.index("</form>", start)]
    return {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)
    }


async def roster(h: Harness, station: str = "qiaozhen") -> set[str]:
    async with h.runtime.sessions() as session:
        return set(
            await session.scalars(
                select(RosterEntry.natural_key).where(RosterEntry.station_id == station)
            )
        )


async def group_officer(h: Harness, group: str) -> str | None:
    async with h.runtime.sessions() as session:
        return await session.scalar(select(Group.officer_id).where(Group.id == group))


async def new_item_goes_to(h: Harness, text: str = "我家的电动车昨晚在楼下被偷了") -> str | None:
    """A resident's report in 橋鎮村警民群 now; the officer its ticket went to."""
    before = {t.id for t in await h.tickets()}
    await h.say(text, group="grp-qiaozhen-01", sender="wxid_yang")
    (ticket,) = [t for t in await h.tickets() if t.id not in before]
    return ticket.assigned_officer_id


def slot_form(page: str, key: str) -> dict[str, str]:
    return hidden_after(page, f'<details class="org-slot-edit" data-slot="{html.escape(key)}">')


async def test_each_role_sees_its_tree_with_duty_and_masked_numbers(h: Harness) -> None:
    admin = await signed_in(h, "admin")
    county = await admin.get("/console/organisation")
    assert county.status_code == 200
    text = visible_text(county.text)
    stations = re.findall(r'data-station="([^"]+)"', county.text)
    assert stations == ["county", "qiaozhen", "hexi"]  # the county, then below it by name
    for name in ("甘泉縣調解中心", "橋鎮派出所", "河西派出所", "王警官", "橋鎮村警民群", "village"):
        assert name in text
    assert "139****0001" in text and "13900000001" not in county.text
    assert 'id="upload-link"' in county.text
    # 王 is on duty on a Monday morning; 李's night shift is not.
    wang = re.search(r'<tr data-officer="off-wang">.*?</tr>', county.text, re.S)
    li = re.search(r'<tr data-officer="off-li">.*?</tr>', county.text, re.S)
    assert wang and "正在值班" in wang.group(0)
    assert li and "未值班" in li.group(0)

    zhao = await signed_in(h, "zhao")
    mine = await zhao.get("/console/organisation")
    assert re.findall(r'data-station="([^"]+)"', mine.text) == ["qiaozhen"]
    assert "河西" not in visible_text(mine.text) and 'id="upload-link"' not in mine.text
    wang_client = await signed_in(h, "wang")
    read_only = await wang_client.get("/console/organisation")
    assert re.findall(r'data-station="([^"]+)"', read_only.text) == ["qiaozhen"]
    assert "只能查看" in visible_text(read_only.text)
    chen = await signed_in(h, "chen")
    hexi = await chen.get("/console/organisation")
    assert re.findall(r'data-station="([^"]+)"', hexi.text) == ["hexi"]
    assert await audit_rows(h, "personal_data_shown") == []


async def test_a_stations_week_by_role_navigable_and_scoped(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    assert page.status_code == 200
    days = dict(
        re.findall(
            r'data-day="([\d-]+)">(.*?)</div>\s*(?=<div class="org-day|</div>)', page.text, re.S
        )
    )
    assert list(days) == [
        f"2026-{d}" for d in ("11-30", "12-01", "12-02", "12-03", "12-04", "12-05", "12-06")
    ]
    monday = visible_text(days["2026-11-30"])
    assert "08:00–20:00" in monday and "王警官" in monday
    assert "20:00–08:00 (次日)" in monday and "李警官" in monday
    assert "趙所長" not in monday and "趙所長" in visible_text(days["2026-12-05"])
    assert "2026-11-30 至 12-06" in visible_text(page.text)
    # Editors get the forms; an officer reads the same week without them.
    assert 'id="add-slot"' in page.text and "/groups/grp-qiaozhen-01/officer" in page.text
    wang = await signed_in(h, "wang")
    plain = await wang.get(QIAOZHEN)
    assert plain.status_code == 200 and "08:00–20:00" in visible_text(plain.text)
    assert 'id="add-slot"' not in plain.text and "/officer" not in plain.text
    # Weeks: the links, any day of a week, and a date that cannot be read.
    assert 'href="?week=2026-12-07"' in page.text and 'href="?week=2026-11-23"' in page.text
    later = await zhao.get(QIAOZHEN, params={"week": "2026-12-09"})
    assert "2026-12-07 至 12-13" in visible_text(later.text)
    bad = await zhao.get(QIAOZHEN, params={"week": "30/11"})
    assert bad.status_code == 400 and "看不懂這個日期" in visible_text(bad.text)
    # Another station by URL: 404 as for none; an admin opens it.
    assert (await zhao.get("/console/organisation/stations/hexi")).status_code == 404
    assert (await zhao.get("/console/organisation/stations/nowhere")).status_code == 404
    admin = await signed_in(h, "admin")
    assert (await admin.get("/console/organisation/stations/hexi")).status_code == 200
    # Numbers in clear only for editors on request, each showing audited.
    assert "139****0001" in visible_text(page.text)
    shown = await zhao.get(QIAOZHEN, params={"phones": "1"})
    assert "13900000001" in visible_text(shown.text)
    (row,) = await audit_rows(h, "personal_data_shown")
    assert (row.username, row.target, row.detail) == ("zhao", "station:qiaozhen", "officer_phones")
    refused = await wang.get(QIAOZHEN, params={"phones": "1"})
    assert (
        "13900000001" not in refused.text and len(await audit_rows(h, "personal_data_shown")) == 1
    )


async def test_a_roster_change_is_audited_once_and_routes_the_next_item(h: Harness) -> None:
    assert await new_item_goes_to(h) == "off-wang"
    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    form = slot_form(page.text, WANG_DAY)
    fields = {
        **form,
        "action": "change",
        "officer": "off-li",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "from": "08:00",
        "to": "20:00",
    }
    done = await zhao.post(f"{QIAOZHEN}/roster", data=fields)
    assert done.status_code == 303 and "done=roster_change" in done.headers["location"]
    after = await roster(h)
    assert WANG_DAY not in after and "qiaozhen|off-li|days:mon,tue,wed,thu,fri|08:00-20:00" in after
    (row,) = await audit_rows(h, "roster_edited")
    assert row.username == "zhao" and row.target == "station:qiaozhen"
    assert row.detail.startswith("change " + WANG_DAY)
    assert await new_item_goes_to(h, "小区门口的路灯坏了好几天了") == "off-li"
    # The same form again changes nothing twice.
    again = await zhao.post(f"{QIAOZHEN}/roster", data=fields)
    assert "done=duplicate" in again.headers["location"]
    assert await roster(h) == after and len(await audit_rows(h, "roster_edited")) == 1
    shown = await zhao.get(again.headers["location"])
    assert "已經提交過一次" in visible_text(shown.text)
    # Remove, from a freshly rendered page.
    page = await zhao.get(QIAOZHEN)
    key = "qiaozhen|off-zhao|days:sat,sun|08:00-20:00"
    removed = await zhao.post(
        f"{QIAOZHEN}/roster", data={**slot_form(page.text, key), "action": "remove"}
    )
    assert removed.status_code == 303 and key not in await roster(h)


async def test_bad_roster_input_is_refused_beside_the_field_and_nothing_saved(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    before = await roster(h)
    page = await zhao.get(QIAOZHEN)
    add = hidden_after(page.text, 'id="add-slot"')
    bad_time = await zhao.post(
        f"{QIAOZHEN}/roster",
        data={**add, "officer": "off-li", "days": ["sat"], "from": "25:00", "to": "20:00"},
    )
    assert bad_time.status_code == 400
    text = visible_text(bad_time.text)
    assert "時間要寫成 HH:MM" in text and "沒有保存" in text
    assert 'value="25:00"' in bad_time.text  # what was typed comes back
    neither = await zhao.post(
        f"{QIAOZHEN}/roster", data={**add, "officer": "off-li", "from": "08:00", "to": "09:00"}
    )
    assert neither.status_code == 400 and "兩者擇一" in visible_text(neither.text)
    bad_date = await zhao.post(
        f"{QIAOZHEN}/roster",
        data={**add, "officer": "off-li", "date": "2026-02-30", "from": "08:00", "to": "09:00"},
    )
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in visible_text(bad_date.text)
    outsider = await zhao.post(
        f"{QIAOZHEN}/roster",
        data={**add, "officer": "off-chen", "days": ["sat"], "from": "08:00", "to": "09:00"},
    )
    assert outsider.status_code == 400 and "沒有這個選項" in visible_text(outsider.text)
    assert await roster(h) == before and await audit_rows(h, "roster_edited") == []
    # The refused forms used no nonce: the same form, corrected, goes through once.
    good = await zhao.post(
        f"{QIAOZHEN}/roster",
        data={**add, "officer": "off-li", "date": "2026-12-01", "from": "08:00", "to": "12:00"},
    )
    assert good.status_code == 303
    assert "qiaozhen|off-li|date:2026-12-01|08:00-12:00" in await roster(h)
    week = await zhao.get(QIAOZHEN)
    assert "臨時" in visible_text(week.text)
    # Scope: another station's roster, an officer, a slot that is gone, and no CSRF token.
    hexi = await zhao.post("/console/organisation/stations/hexi/roster", data=add)
    assert hexi.status_code == 404
    wang = await signed_in(h, "wang")
    wang_page = await wang.get(QIAOZHEN)
    token = re.search(r'name="csrf_token" value="([^"]+)"', wang_page.text)
    assert token
    fields = {"csrf_token": token.group(1), "nonce": "x" * 20, "action": "remove", "slot": WANG_DAY}
    assert (await wang.post(f"{QIAOZHEN}/roster", data=fields)).status_code == 404
    no_csrf = await zhao.post(f"{QIAOZHEN}/roster", data={**add, "csrf_token": "nope"})
    assert no_csrf.status_code == 403
    gone = await zhao.post(
        f"{QIAOZHEN}/roster",
        data={**add, "nonce": "y" * 20, "action": "remove", "slot": "qiaozhen|nobody"},
    )
    assert gone.status_code == 400 and "已經不在值班表上" in visible_text(gone.text)
    assert WANG_DAY in await roster(h)


async def test_dates_outside_the_years_are_refused_for_the_week_and_a_one_off_shift(
    h: Harness,
) -> None:
    # The week before 0001-01-01 or after 9999-12-27 (the page's own links) overflowed into a
    # 500, and a one-off shift on such a day was stored.
    zhao = await signed_in(h, "zhao")
    for week in ("0001-01-01", "9999-12-27", "9999-12-31"):
        page = await zhao.get(QIAOZHEN, params={"week": week})
        assert page.status_code == 400, (week, page.text[:300])
        text = visible_text(page.text)
        assert "日期須在1971年至9998年之間,顯示的是本週" in text
        assert "2026-11-30 至 12-06" in text  # this week instead
    for week in ("1971-01-01", "9998-12-31"):  # the edges are weeks like any other
        assert (await zhao.get(QIAOZHEN, params={"week": week})).status_code == 200
    before = await roster(h)
    for day in ("9999-12-31", "0001-01-01", "1970-12-31"):
        page = await zhao.get(QIAOZHEN)
        add = hidden_after(page.text, 'id="add-slot"')
        refused = await zhao.post(
            f"{QIAOZHEN}/roster",
            data={**add, "officer": "off-li", "date": day, "from": "08:00", "to": "09:00"},
        )
        assert refused.status_code == 400, day
        # Beside the new slot's date field, with what was typed.
        form = refused.text[refused.text.index('id="add-slot"') :]
        field = re.search(r'name="date".*?</label>', form, re.S)
        assert field and "日期須在1971年至9998年之間" in visible_text(field.group(0)), day
        assert f'value="{day}"' in field.group(0)
    assert await roster(h) == before and await audit_rows(h, "roster_edited") == []


async def test_a_groups_new_officer_is_audited_and_takes_its_items(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    # 李 on the weekday day shift too: with two on duty the group's own officer is preferred.
    add = hidden_after(page.text, 'id="add-slot"')
    both = {**add, "officer": "off-li", "days": ["mon", "tue", "wed", "thu", "fri"]}
    assert (
        await zhao.post(f"{QIAOZHEN}/roster", data={**both, "from": "08:00", "to": "20:00"})
    ).status_code == 303
    assert await new_item_goes_to(h) == "off-wang"
    page = await zhao.get(QIAOZHEN)
    action = "/console/organisation/groups/grp-qiaozhen-01/officer"
    form = hidden_after(page.text, f'action="{action}"')
    outside = await zhao.post(action, data={**form, "officer": "off-chen"})
    assert outside.status_code == 400 and "沒有這個選項" in visible_text(outside.text)
    assert await group_officer(h, "grp-qiaozhen-01") == "off-wang"
    changed = await zhao.post(action, data={**form, "officer": "off-li"})
    assert changed.status_code == 303 and await group_officer(h, "grp-qiaozhen-01") == "off-li"
    (row,) = await audit_rows(h, "group_officer_changed")
    assert (row.target, row.detail) == ("group:grp-qiaozhen-01", "off-wang -> off-li")
    assert await new_item_goes_to(h, "小区门口的路灯坏了好几天了") == "off-li"
    replay = await zhao.post(action, data={**form, "officer": "off-zhao"})
    assert "done=duplicate" in replay.headers["location"]
    assert await group_officer(h, "grp-qiaozhen-01") == "off-li"
    # Another station's group by URL, and an officer: 404.
    other = await zhao.post(
        "/console/organisation/groups/grp-hexi-01/officer", data={**form, "officer": ""}
    )
    assert other.status_code == 404 and await group_officer(h, "grp-hexi-01") == "off-chen"
    wang = await signed_in(h, "wang")
    wang_page = await wang.get(QIAOZHEN)
    token = re.search(r'name="csrf_token" value="([^"]+)"', wang_page.text)
    assert token
    refused = await wang.post(
        action, data={"csrf_token": token.group(1), "nonce": "z" * 20, "officer": "off-wang"}
    )
    assert refused.status_code == 404 and await group_officer(h, "grp-qiaozhen-01") == "off-li"


def changed_directory() -> bytes:
    """The test directory with a new station and officer, 橋鎮社區警民群 given to 王, and
    the weekend day shift moved to 李; 河西's roster left as it is."""
    text = DIRECTORY.read_text(encoding="utf-8")
    text = text.replace(
        "  - {id: hexi, name: 河西派出所, parent: county}",
        "  - {id: hexi, name: 河西派出所, parent: county}\n"
        "  - {id: dongshan, name: 東山派出所, parent: county}",
    )
    text = text.replace(
        "  - {id: off-county,",
        "  - {id: off-sun, name: 孫警官, station: dongshan, wechat_id: wxid_sun, role: leader}\n"
        "  - {id: off-county,",
    )
    text = text.replace(
        "station: qiaozhen, officer: off-li, tags", "station: qiaozhen, officer: off-wang, tags"
    )
    text = text.replace("officer: off-zhao, days: [sat, sun]", "officer: off-li, days: [sat, sun]")
    return text.encode()


async def upload(client: httpx.AsyncClient, content: bytes, name: str = "d.yaml") -> httpx.Response:
    page = await client.get("/console/organisation/upload")
    assert page.status_code == 200
    form = hidden_after(page.text, 'id="upload-form"')
    return await client.post(
        "/console/organisation/upload", data=form, files={"file": (name, content, "text/yaml")}
    )


async def apply(client: httpx.AsyncClient, preview: httpx.Response) -> httpx.Response:
    form = hidden_after(preview.text, 'id="apply-form"')
    return await client.post(
        "/console/organisation/upload",
        data=form,
        files={"file": ("", b"", "application/octet-stream")},
    )


async def test_an_upload_is_previewed_by_name_then_applied_exactly_once(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    form = hidden_after(page.text, 'action="/console/organisation/groups/grp-qiaozhen-02/officer"')
    await zhao.post(
        "/console/organisation/groups/grp-qiaozhen-02/officer", data={**form, "officer": "off-zhao"}
    )
    admin = await signed_in(h, "admin")
    preview = await upload(admin, changed_directory())
    assert preview.status_code == 200, preview.text
    text = visible_text(preview.text)
    changes = re.findall(r'data-kind="(\w+)" data-key="([^"]+)"', preview.text)
    assert ("added", "dongshan") in changes and ("added", "off-sun") in changes
    assert ("changed", "grp-qiaozhen-02") in changes
    assert ("removed", "qiaozhen|off-zhao|days:sat,sun|08:00-20:00") in changes
    assert ("added", "qiaozhen|off-li|days:sat,sun|08:00-20:00") in changes
    # The file has no number for 王: loading it clears the one set in the database.
    assert ("changed", "off-wang") in changes and re.search(
        r"王警官\(橋鎮派出所\)\s*\(手機號\)", text
    )
    assert len(changes) == 6  # nothing else: 河西 and the unchanged entries stay as they are
    assert "東山派出所" in text and "孫警官(東山派出所)" in text
    assert "負責民警:趙所長 → 王警官" in text
    assert "橋鎮派出所 · 趙所長 · 週六、週日 · 08:00–20:00" in text
    # 趙's console change of that group's officer is what the load undoes, and it says so.
    assert "有 1 處會蓋過在控制台做的修改" in text and "蓋過控制台的修改" in text
    for raw in ("dongshan", "off-sun", "grp-qiaozhen-02", "wxid_sun"):
        assert raw not in text
    assert await group_officer(h, "grp-qiaozhen-02") == "off-zhao"  # nothing applied yet
    applied = await apply(admin, preview)
    assert applied.status_code == 303 and "done=loaded" in applied.headers["location"]
    assert await group_officer(h, "grp-qiaozhen-02") == "off-wang"
    assert "qiaozhen|off-li|days:sat,sun|08:00-20:00" in await roster(h)
    (row,) = await audit_rows(h, "directory_loaded")
    assert row.username == "admin" and "stations=4 " in row.detail
    tree = await admin.get(applied.headers["location"])
    assert "目錄檔已載入" in visible_text(tree.text) and "東山派出所" in visible_text(tree.text)
    # The same confirm form again applies nothing twice.
    replay = await apply(admin, preview)
    assert "done=duplicate" in replay.headers["location"]
    assert len(await audit_rows(h, "directory_loaded")) == 1
    # The same file again: nothing to change.
    again = await upload(admin, changed_directory())
    assert "載入不會改動任何內容" in visible_text(again.text)


async def test_a_stale_preview_is_shown_again_and_nothing_applied(h: Harness) -> None:
    admin = await signed_in(h, "admin")
    preview = await upload(admin, changed_directory())
    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    form = hidden_after(page.text, 'action="/console/organisation/groups/grp-qiaozhen-01/officer"')
    await zhao.post(
        "/console/organisation/groups/grp-qiaozhen-01/officer", data={**form, "officer": "off-zhao"}
    )
    stale = await apply(admin, preview)
    assert stale.status_code == 409
    assert "預覽之後目錄已有變動,沒有載入" in visible_text(stale.text)
    assert await group_officer(h, "grp-qiaozhen-02") == "off-li"  # nothing of the file applied
    assert await audit_rows(h, "directory_loaded") == []
    # The new preview shows the console edit the file would now undo, and applies.
    assert re.findall(r'data-kind="changed" data-key="(grp-[^"]+)"', stale.text) == [
        "grp-qiaozhen-01",
        "grp-qiaozhen-02",
    ]
    assert (await apply(admin, stale)).status_code == 303
    assert await group_officer(h, "grp-qiaozhen-01") == "off-wang"
    # A tampered text is as stale as a changed directory.
    preview = await upload(admin, DIRECTORY.read_bytes())
    form = hidden_after(preview.text, 'id="apply-form"')

    form["text"] = base64.b64encode(changed_directory()).decode()
    tampered = await admin.post(
        "/console/organisation/upload", data=form, files={"file": ("", b"", "text/plain")}
    )
    assert tampered.status_code == 409


async def test_a_wrong_file_gets_the_loaders_reason_in_chinese_and_nothing_applied(
    h: Harness,
) -> None:
    admin = await signed_in(h, "admin")
    broken = DIRECTORY.read_text(encoding="utf-8").replace(
        "station: hexi, officer: off-chen, tags", "station: nowhere, officer: off-chen, tags"
    )
    refused = await upload(admin, broken.encode())
    assert refused.status_code == 400
    text = visible_text(refused.text)
    assert "第14行 · 群 grp-hexi-01 · 找不到單位「nowhere」。" in text
    assert 'id="apply-form"' not in refused.text
    times = await upload(admin, DIRECTORY.read_bytes().replace(b'"20:00"', b"20:00", 1))
    assert times.status_code == 400 and "時間要寫成 HH:MM" in visible_text(times.text)
    picture = await upload(admin, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "d.yaml")
    assert picture.status_code == 400 and "不是 UTF-8 文字檔" in visible_text(picture.text)
    empty = await upload(admin, b"")
    assert empty.status_code == 400 and "請選擇一個目錄檔" in visible_text(empty.text)
    assert await audit_rows(h, "directory_loaded") == []
    async with h.runtime.sessions() as session:
        assert (
            await session.scalar(select(Group.station_id).where(Group.id == "grp-hexi-01"))
            == "hexi"
        )
    # Only admins upload: a leader gets 404 for the page and the post alike.
    zhao = await signed_in(h, "zhao")
    assert (await zhao.get("/console/organisation/upload")).status_code == 404
    page = await zhao.get("/console/organisation")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    posted = await zhao.post(
        "/console/organisation/upload",
        data={"csrf_token": token.group(1), "step": "preview"},
        files={"file": ("d.yaml", changed_directory(), "text/yaml")},
    )
    assert posted.status_code == 404


async def test_the_pages_in_simplified_script(h: Harness) -> None:
    from bot.services.accounts import create_account
    from tests.console_support import PASSWORD

    async with h.runtime.sessions.begin() as session:
        await create_account(
            session,
            username="liu",
            password=PASSWORD,
            role="leader",
            officer_id="off-zhao",
            now=h.clock.now(),
            script="hans",
        )
    liu = await signed_in(h, "liu")
    page = await liu.get(QIAOZHEN)
    text = visible_text(page.text)
    assert "值班表" in text and "周一" in text and "正在值班" in text


async def test_a_command_line_load_says_which_console_edits_it_replaced(h: Harness) -> None:
    from bot.cli import _undone
    from bot.services.directory import load_directory_file
    from bot.services.directory_changes import load_noting_undone

    zhao = await signed_in(h, "zhao")
    page = await zhao.get(QIAOZHEN)
    action = "/console/organisation/groups/grp-qiaozhen-02/officer"
    await zhao.post(
        action, data={**hidden_after(page.text, f'action="{action}"'), "officer": "off-zhao"}
    )
    async with h.runtime.sessions.begin() as session:
        _, undone = await load_noting_undone(
            session, lambda: load_directory_file(session, DIRECTORY, cipher=h.runtime.cipher)
        )
    assert [(c.section, c.key) for c in undone] == [("groups", "grp-qiaozhen-02")]
    assert _undone(undone[0]).startswith(
        "replaced a console edit of the officer of group grp-qiaozhen-02 (by zhao at "
    )
    assert await group_officer(h, "grp-qiaozhen-02") == "off-li"
