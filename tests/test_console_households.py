"""The console's 住戶 page over the ASGI app: the roster of each role's scope by group with the
last visit, masked names in the list; add, edit and (leaders, admins) delete through
bot/services/visits.py, each once per rendered form and audited; a household of another station is 404;
bad input is refused beside the field and nothing is written. A visit recorded from a
household's page (as the account's officer), its plan put on and taken off, and the 待訪 view."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bot.services.tokens import create_token
from models.people import Household
from models.visits import HouseholdEvent, Visit
from tests.console_support import (
    add_accounts,
    audit_rows,
    form_of,
    post_form,
    signed_in,
    visible_text,
)
from tests.harness import Harness
from tests.stats_support import seed_month


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    async with harness.runtime.sessions.begin() as session:
        await seed_month(session, harness.runtime.cipher)
    await add_accounts(harness)
    return harness


def household_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-household="(\d+)"', page)]


async def count_households(h: Harness) -> int:
    async with h.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Household)) or 0)


async def test_each_role_sees_its_scope_by_group_with_the_last_visit(h: Harness) -> None:
    admin = await signed_in(h, "admin")
    county = await admin.get("/console/households")
    assert county.status_code == 200
    assert len(household_ids(county.text)) == 9  # every household, the ungrouped one too
    zhao = await signed_in(h, "zhao")
    mine = await zhao.get("/console/households")
    assert len(household_ids(mine.text)) == 6  # 橋鎮's groups
    one = await zhao.get("/console/households", params={"group": "grp-qiaozhen-02"})
    assert len(household_ids(one.text)) == 2
    refused = await zhao.get("/console/households", params={"group": "grp-hexi-01"})
    assert refused.status_code == 400
    assert "沒有這個選項" in visible_text(refused.text)
    # Never visited first; names masked in the list, no number or address.
    rows = re.findall(r"<tr data-household.*?</tr>", one.text, re.S)
    assert "從未走訪" in visible_text(rows[0]) and "從未走訪" not in visible_text(rows[-1])
    assert "**" in visible_text(rows[0])
    assert await audit_rows(h, "personal_data_shown") == []
    # Another station's household: 404 as for none.
    chen = await signed_in(h, "chen")
    hexi_page = await chen.get("/console/households")
    (theirs, _) = household_ids(hexi_page.text)
    assert (await zhao.get(f"/console/households/{theirs}")).status_code == 404
    assert (await zhao.get("/console/households/999999")).status_code == 404


async def test_add_edit_and_delete_once_each_and_audited(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    before = await count_households(h)
    added = await post_form(
        zhao,
        "/console/households",
        "/console/households",
        name="林秀英",
        phone="13800001111",
        address="橋鎮村3組12號",
        group="grp-qiaozhen-02",
    )
    assert added.status_code == 303
    assert await count_households(h) == before + 1
    page = await zhao.get(added.headers["location"])
    assert "已加入名冊" in visible_text(page.text)
    new_id = max(household_ids(page.text))
    (entry,) = await audit_rows(h, "household_added")
    assert entry.target == f"household:{new_id}" and "林" not in (entry.detail or "")

    # Its page shows the details in clear, audited; an edit goes through once.
    details = await zhao.get(f"/console/households/{new_id}")
    assert 'value="13800001111"' in details.text and "橋鎮村3組12號" in details.text
    assert (await audit_rows(h, "personal_data_shown"))[-1].target == f"household:{new_id}"
    form = {
        **form_of(details.text, f"/console/households/{new_id}/edit"),
        "name": "林秀英",
        "phone": "",
        "address": "橋鎮村3組14號",
        "group": "grp-qiaozhen-01",
    }
    first = await zhao.post(f"/console/households/{new_id}/edit", data=form)
    assert first.status_code == 303
    again = await zhao.post(f"/console/households/{new_id}/edit", data=form)
    assert again.headers["location"].endswith("done=duplicate")
    assert len(await audit_rows(h, "household_edited")) == 1
    async with h.runtime.sessions() as session:
        row = await session.get(Household, new_id)
        assert row is not None and row.group_id == "grp-qiaozhen-01" and row.phone_hash is None
        assert h.runtime.cipher.decrypt(row.address_enc) == "橋鎮村3組14號"

    # Deletion asks for the box, then removes the personal data; the visit still counts.
    async with h.runtime.sessions.begin() as session:
        session.add(
            Visit(
                household_id=new_id,
                officer_id="off-zhao",
                group_id="grp-qiaozhen-01",
                station_id="qiaozhen",
                at=h.clock.now(),
                note_enc=h.runtime.cipher.encrypt("獨居老人"),
                created_at=h.clock.now(),
            )
        )
    details = await zhao.get(f"/console/households/{new_id}")
    delete_form = form_of(details.text, f"/console/households/{new_id}/delete")
    unticked = await zhao.post(f"/console/households/{new_id}/delete", data=delete_form)
    assert unticked.status_code == 400 and "請勾選確認" in visible_text(unticked.text)
    assert await count_households(h) == before + 1
    gone = await zhao.post(
        f"/console/households/{new_id}/delete", data={**delete_form, "confirm": "yes"}
    )
    assert gone.status_code == 303
    assert await count_households(h) == before
    async with h.runtime.sessions() as session:
        visit = await session.scalar(select(Visit).where(Visit.officer_id == "off-zhao"))
        assert visit is not None and visit.household_id is None and visit.note_enc is None
        events = await session.scalars(
            select(HouseholdEvent.action).where(HouseholdEvent.household_id == new_id)
        )
        assert list(events) == ["added", "edited", "deleted"]
    (deleted,) = await audit_rows(h, "household_deleted")
    assert deleted.detail == "visits_kept=1"
    assert (await zhao.get(f"/console/households/{new_id}")).status_code == 404


async def test_bad_input_is_refused_beside_the_field_and_nothing_written(h: Harness) -> None:
    wang = await signed_in(h, "wang")
    before = await count_households(h)
    page = await wang.get("/console/households")
    assert "/delete" not in page.text
    form = form_of(page.text, "/console/households")
    for fields, words in (
        ({"name": "1", "phone": "", "group": "grp-qiaozhen-01"}, "不是姓名"),
        ({"name": "林秀英", "phone": "12345", "group": "grp-qiaozhen-01"}, "手機號不正確"),
        ({"name": "林秀英", "phone": "", "group": "grp-hexi-01"}, "請選擇您轄區內的警民群"),
        (
            {"name": "林秀英", "phone": "", "group": "grp-qiaozhen-01", "address": "村" * 201},
            "地址太長(最多 200 字)",
        ),
    ):
        answer = await wang.post("/console/households", data={**form, "address": "", **fields})
        assert answer.status_code == 400, fields
        assert words in visible_text(answer.text)
        assert f'value="{fields["name"]}"' in answer.text  # what was typed is kept
    assert await count_households(h) == before
    assert await audit_rows(h, "household_added") == []
    # The same householder at the same address of the same group is on the roster once: a
    # second form (a new one, not the same sent twice) is refused beside the name.
    same = {"name": "林秀英", "phone": "", "address": "橋鎮村3組12號", "group": "grp-qiaozhen-01"}
    for expected in (303, 400):
        fresh = form_of((await wang.get("/console/households")).text, "/console/households")
        answer = await wang.post("/console/households", data={**fresh, **same})
        assert answer.status_code == expected
    assert "已有這位戶主、這個地址" in visible_text(answer.text)
    assert await count_households(h) == before + 1
    # An officer may not delete: the form is not offered and the route refuses.
    theirs = household_ids(page.text)[0]
    details = await wang.get(f"/console/households/{theirs}")
    assert f"/console/households/{theirs}/delete" not in details.text
    edit = form_of(details.text, f"/console/households/{theirs}/edit")
    refused = await wang.post(
        f"/console/households/{theirs}/delete", data={**edit, "confirm": "yes"}
    )
    assert refused.status_code == 404
    assert await count_households(h) == before + 1  # 林秀英's, above


# --- visits, plans and 待訪 (household_visits.py) ---------------------------------------------


def local_input(h: Harness, at: datetime) -> str:
    """``at`` as a datetime-local field holds it (the configured timezone)."""
    return at.astimezone(h.runtime.settings.tz).strftime("%Y-%m-%dT%H:%M")


async def never_visited(h: Harness, client: httpx.AsyncClient) -> int:
    """A 橋鎮 household nobody has visited (the list puts those first)."""
    page = await client.get("/console/households", params={"group": "grp-qiaozhen-02"})
    rows = re.findall(r"<tr data-household.*?</tr>", page.text, re.S)
    assert "從未走訪" in visible_text(rows[0])
    return household_ids(page.text)[0]


async def api_visits(h: Harness) -> list[dict[str, object]]:
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="admin", name="t", now=h.clock.now())
    answer = await h.client.get("/api/v1/visits", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return list(answer.json())


async def test_a_visit_recorded_from_the_page_once_as_the_officer(h: Harness) -> None:
    wang = await signed_in(h, "wang")
    target = await never_visited(h, wang)
    path = f"/console/households/{target}"
    page = await wang.get(path)
    form = form_of(page.text, f"{path}/visit")
    assert f'value="{local_input(h, h.clock.now())}"' in page.text  # defaults to now
    when = h.clock.now() - timedelta(hours=3)
    fields = {**form, "at": local_input(h, when), "note": "老人身體尚好,已提醒防詐騙"}
    # A form without the session's CSRF token is refused and writes nothing.
    forged = await wang.post(f"{path}/visit", data={**fields, "csrf_token": "x"})
    assert forged.status_code == 403
    before = len(await api_visits(h))
    first = await wang.post(f"{path}/visit", data=fields)
    assert first.status_code == 303
    again = await wang.post(f"{path}/visit", data=fields)
    assert again.headers["location"].endswith("done=duplicate")
    listed = await api_visits(h)
    assert len(listed) == before + 1
    (mine,) = [v for v in listed if v["household"] == target]
    assert mine["officer"] == "off-wang" and mine["group_id"] == "grp-qiaozhen-02"
    async with h.runtime.sessions() as session:
        visit = await session.scalar(select(Visit).where(Visit.household_id == target))
        assert visit is not None and visit.source == "console"
        assert h.runtime.cipher.decrypt(visit.note_enc) == "老人身體尚好,已提醒防詐騙"
    shown = await wang.get(first.headers["location"])
    assert "已記錄走訪" in visible_text(shown.text)
    local = when.astimezone(h.runtime.settings.tz).strftime("%Y-%m-%d %H:%M")
    assert f'<span id="last-visit">{local}</span>' in shown.text
    roster = await wang.get("/console/households", params={"group": "grp-qiaozhen-02"})
    (row,) = re.findall(rf'<tr data-household="{target}">.*?</tr>', roster.text, re.S)
    assert local in visible_text(row)
    (entry,) = await audit_rows(h, "visit_recorded")
    assert entry.target == f"household:{target}" and "老人" not in (entry.detail or "")
    # An officer of another station: 404, as for a household that does not exist.
    chen = await signed_in(h, "chen")
    theirs = household_ids((await chen.get("/console/households")).text)[0]
    chen_form = form_of(
        (await chen.get(f"/console/households/{theirs}")).text,
        f"/console/households/{theirs}/visit",
    )
    refused = await chen.post(f"{path}/visit", data={**chen_form, "at": fields["at"], "note": "x"})
    assert refused.status_code == 404
    assert len(await api_visits(h)) == before + 1


async def test_bad_visit_input_comes_back_beside_the_field(h: Harness) -> None:
    wang = await signed_in(h, "wang")
    target = await never_visited(h, wang)
    path = f"/console/households/{target}"
    form = form_of((await wang.get(path)).text, f"{path}/visit")
    later = local_input(h, h.clock.now() + timedelta(days=1))
    for fields, words in (
        ({"at": later, "note": "已走訪"}, "走訪時間不能晚於現在"),
        ({"at": local_input(h, h.clock.now()), "note": "  "}, "請寫上走訪情況"),
        ({"at": "昨天", "note": "已走訪"}, "時間應寫作"),
        ({"at": "1900-01-01T10:00", "note": "已走訪"}, "不能早於一年前"),  # no range counts it
        # Before year 1 in UTC, and after 9998: were a 500 (found by a security trial).
        ({"at": "0001-01-01T00:00", "note": "已走訪"}, "不能早於一年前"),
        ({"at": "9999-12-31T23:59", "note": "已走訪"}, "走訪時間不能晚於現在"),
    ):
        answer = await wang.post(f"{path}/visit", data={**form, **fields})
        assert answer.status_code == 400, fields
        assert words in visible_text(answer.text)
        if fields["note"].strip():
            assert fields["note"] in answer.text  # what was typed is kept
    async with h.runtime.sessions() as session:
        assert await session.scalar(select(Visit).where(Visit.household_id == target)) is None
    # An admin without a linked officer is told so and cannot record one.
    admin = await signed_in(h, "admin")
    page = await admin.get(path)
    assert "沒有關聯民警" in visible_text(page.text)
    assert f"{path}/visit" not in page.text and f"{path}/plan" not in page.text
    answer = await admin.post(
        f"{path}/visit", data={**form_of(page.text, f"{path}/edit"), "at": later, "note": "x"}
    )
    assert answer.status_code == 400 and "沒有關聯民警" in visible_text(answer.text)
    assert await audit_rows(h, "visit_recorded") == []


async def test_a_plan_put_on_from_the_page_makes_the_household_due(h: Harness) -> None:
    zhao = await signed_in(h, "zhao")
    target = await never_visited(h, zhao)
    path = f"/console/households/{target}"
    assert target not in household_ids((await zhao.get("/console/households/due")).text)
    page = await zhao.get(path)
    assert "不在走訪計劃中" in visible_text(page.text)
    form = form_of(page.text, f"{path}/plan")
    for fields, words in (
        ({"reason": "no_such_reason", "every": ""}, "請從列表中選擇理由"),
        ({"reason": "living_alone", "every": "0"}, "頻次應為"),
        ({"reason": "living_alone", "every": "每月"}, "頻次應為"),
    ):
        answer = await zhao.post(f"{path}/plan", data={**form, **fields})
        assert answer.status_code == 400, fields
        assert words in visible_text(answer.text)
    assert await audit_rows(h, "plan_put_on") == []
    put = await zhao.post(f"{path}/plan", data={**form, "reason": "living_alone", "every": "14"})
    assert put.status_code == 303
    again = await zhao.post(f"{path}/plan", data={**form, "reason": "living_alone", "every": "14"})
    assert again.headers["location"].endswith("done=duplicate")
    assert len(await audit_rows(h, "plan_put_on")) == 1
    shown = await zhao.get(put.headers["location"])
    assert "每 14 天走訪一次" in visible_text(shown.text) and "獨居老人" in shown.text
    due = await zhao.get("/console/households/due")
    assert target in household_ids(due.text) and "獨居老人" in visible_text(due.text)
    # The officer of the station sees it due too; another station's leader neither sees it
    # nor may change it.
    wang = await signed_in(h, "wang")
    assert target in household_ids((await wang.get("/console/households/due")).text)
    chen = await signed_in(h, "chen")
    assert target not in household_ids((await chen.get("/console/households/due")).text)
    theirs = household_ids((await chen.get("/console/households")).text)[0]
    chen_form = form_of(
        (await chen.get(f"/console/households/{theirs}")).text, f"/console/households/{theirs}/plan"
    )
    assert (await chen.post(f"{path}/plan/off", data=chen_form)).status_code == 404
    async with h.runtime.sessions() as session:
        events = list(
            await session.scalars(
                select(HouseholdEvent.action).where(HouseholdEvent.household_id == target)
            )
        )
    assert events.count("plan_added") == 1 and "plan_shown" in events
    # A visit recorded from the page moves it off the due list; taking it off ends the plan.
    page = await wang.get(path)
    visit = form_of(page.text, f"{path}/visit")
    done = await wang.post(
        f"{path}/visit", data={**visit, "at": local_input(h, h.clock.now()), "note": "已走訪"}
    )
    assert done.status_code == 303
    assert target not in household_ids((await wang.get("/console/households/due")).text)
    off = await zhao.post(
        f"{path}/plan/off", data=form_of((await zhao.get(path)).text, f"{path}/plan/off")
    )
    assert off.status_code == 303
    assert "不在走訪計劃中" in visible_text((await zhao.get(path)).text)
    assert len(await audit_rows(h, "plan_taken_off")) == 1
    admin = await signed_in(h, "admin")
    assert "看不到走訪計劃" in visible_text((await admin.get("/console/households/due")).text)
