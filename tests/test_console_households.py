"""The console's 住戶 page over the ASGI app: the roster of each role's scope by group with the
last visit, masked names in the list; add, edit and (leaders, admins) delete through
bot/visits.py, each once per rendered form and audited; a household of another station is 404;
bad input is refused beside the field and nothing is written."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

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
    assert deleted.detail == "1 visit(s) kept"
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
    ):
        answer = await wang.post("/console/households", data={**form, "address": "", **fields})
        assert answer.status_code == 400, fields
        assert words in visible_text(answer.text)
        assert f'value="{fields["name"]}"' in answer.text  # what was typed is kept
    assert await count_households(h) == before
    assert await audit_rows(h, "household_added") == []
    # An officer may not delete: the form is not offered and the route refuses.
    theirs = household_ids(page.text)[0]
    details = await wang.get(f"/console/households/{theirs}")
    assert f"/console/households/{theirs}/delete" not in details.text
    edit = form_of(details.text, f"/console/households/{theirs}/edit")
    refused = await wang.post(
        f"/console/households/{theirs}/delete", data={**edit, "confirm": "yes"}
    )
    assert refused.status_code == 404
    assert await count_households(h) == before
