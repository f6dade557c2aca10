"""入戶走訪 from the chat (issue 15): visits matched, ambiguous and new; bad input; visit plans
falling due and reminding once; who sees plans; deleting a household on request. Through the
signed bridge, on the manual clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.services.households import apply_households, parse_households
from bot.services.visits import (
    VisitError,
    address_contains,
    address_key,
    delete_household,
    households_by_id,
    list_households,
    officer_scope,
    plans_in_view,
    put_on_plan,
    record_visit,
    update_household,
)
from models.directory import Officer
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.people import Household
from models.visits import HouseholdEvent, Visit, VisitChoice, VisitPlan
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
ROSTER = """name,mobile,address,group_id
楊德勝,13912345678,橋鎮村3組12號,grp-qiaozhen-01
劉秀英,13887654321,橋鎮村3組15號,grp-qiaozhen-01
張三,13812345678,橋鎮村2組5號,grp-qiaozhen-01
王五,13700001111,橋鎮社區3組12號,grp-qiaozhen-02
陳六,13600002222,河西村1組1號,grp-hexi-01
"""


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    async with harness.runtime.sessions.begin() as session:
        await apply_households(session, parse_households(ROSTER.encode()), harness.runtime.cipher)
    return harness


async def officer_says(h: Harness, who: str, text: str, group: str | None = None) -> str:
    """An officer's message; returns what the bot told them privately (the last message)."""
    before = len(h.to_user(who))
    await h.say(text, group=group, sender=who)
    await h.sent()
    told = h.to_user(who)[before:]
    assert len(told) == 1, told
    return told[0]


async def visits(h: Harness) -> list[Visit]:
    async with h.runtime.sessions() as session:
        return list((await session.scalars(select(Visit).order_by(Visit.id))).all())


async def household(h: Harness, name: str) -> Household:
    cipher = h.runtime.cipher
    async with h.runtime.sessions() as session:
        for row in (await session.scalars(select(Household))).all():
            if cipher.decrypt(row.name_enc) == name:
                return row
    raise AssertionError(f"no household {name}")


# --- matching ---------------------------------------------------------------------------------


def test_addresses_compare_across_scripts_widths_and_separators() -> None:
    assert address_key("橋鎮村 3組-12號") == address_key("桥镇村３组12号")
    assert address_contains(address_key("橋鎮村3組12號"), address_key("3組12號"))
    assert not address_contains(address_key("橋鎮村3組112號"), address_key("12號"))
    assert not address_contains(address_key("橋鎮村3組12號"), address_key("3組1"))


async def test_a_visit_by_address_is_recorded_with_its_note_encrypted(h: Harness) -> None:
    told = await officer_says(h, "wxid_wang", "走訪 橋鎮村3組12號 老人身體尚好,已提醒防詐騙")
    assert "已记录走访" not in told and "已記錄走訪" in told  # answered in the officer's script
    assert "楊**" in told and "楊德勝" not in told and "橋鎮村警民群" in told
    [visit] = await visits(h)
    yang = await household(h, "楊德勝")
    assert (visit.household_id, visit.officer_id) == (yang.id, "off-wang")
    assert (visit.group_id, visit.station_id) == ("grp-qiaozhen-01", "qiaozhen")
    assert visit.at == h.clock.now()
    assert "身體".encode() not in visit.note_enc
    assert h.runtime.cipher.decrypt(visit.note_enc) == "老人身體尚好,已提醒防詐騙"
    # The journal keeps the command word only; the outbox keeps no names once it is sent.
    cipher = h.runtime.cipher
    async with h.runtime.sessions() as session:
        journal = [
            cipher.decrypt_json(p) for p in await session.scalars(select(InboundEvent.payload_enc))
        ]
        sent = [
            cipher.decrypt_json(p) for p in await session.scalars(select(OutboxMessage.payload_enc))
        ]
    assert [j["text"] for j in journal] == ["走訪 …"]
    assert all("楊" not in p["text"] and "3組12號" not in p["text"] for p in sent)


async def test_a_visit_by_name_in_either_script_and_part_of_an_address(h: Harness) -> None:
    await officer_says(h, "wxid_wang", "走访 张三 送去防诈宣传单")
    await officer_says(h, "wxid_wang", "走訪 2組5號,家中無人,留了聯繫卡")
    zhang = await household(h, "張三")
    assert [v.household_id for v in await visits(h)] == [zhang.id, zhang.id]


async def test_the_same_visit_sent_twice_is_recorded_once(h: Harness) -> None:
    # Found by a newcomer: a resend a minute later counted two visits in visits.count.
    await officer_says(h, "wxid_wang", "走访 张三 看望")
    h.clock.advance(timedelta(minutes=1))
    told = await officer_says(h, "wxid_wang", "走访 张三 看望")
    assert "已经记录过了" in told
    assert len(await visits(h)) == 1
    # Other words, or the same words later on, are another visit.
    await officer_says(h, "wxid_wang", "走访 张三 送去防诈宣传单")
    h.clock.advance(timedelta(minutes=30))
    await officer_says(h, "wxid_wang", "走访 张三 看望")
    assert len(await visits(h)) == 3


async def test_the_group_written_in_decides_between_households_of_two_groups(h: Harness) -> None:
    # 3組12號 is in both of the station's groups: written in the community group, it is 王五's.
    told = await officer_says(h, "wxid_li", "走訪 3組12號 已走訪", group="grp-qiaozhen-02")
    assert "王*" in told
    # Privately the officer's own groups come first: 王警官's is 橋鎮村.
    told = await officer_says(h, "wxid_wang", "走訪 3組12號 已走訪")
    assert "楊**" in told
    wang, yang = await household(h, "王五"), await household(h, "楊德勝")
    assert [v.household_id for v in await visits(h)] == [wang.id, yang.id]


async def test_several_matches_ask_to_choose_and_the_answer_records_the_chosen(h: Harness) -> None:
    told = await officer_says(h, "wxid_wang", "走訪 3組 看望兩位老人")
    lines = told.splitlines()
    assert "對應 2 戶" in lines[0] and "走訪 序號" in lines[0]
    assert lines[1].startswith("1. 楊**") and lines[2].startswith("2. 劉**")
    assert await visits(h) == []
    told = await officer_says(h, "wxid_wang", "走訪 5")
    assert "1 到 2" in told and await visits(h) == []
    told = await officer_says(h, "wxid_wang", "走訪 2")
    assert "劉**" in told
    [visit] = await visits(h)
    assert visit.household_id == (await household(h, "劉秀英")).id
    assert h.runtime.cipher.decrypt(visit.note_enc) == "看望兩位老人"
    # The choice is used up.
    told = await officer_says(h, "wxid_wang", "走訪 1")
    assert "沒有等待您選擇" in told and len(await visits(h)) == 1


async def test_a_choice_expires(h: Harness) -> None:
    await officer_says(h, "wxid_wang", "走訪 3組 看望")
    h.clock.advance(timedelta(minutes=11))
    told = await officer_says(h, "wxid_wang", "走訪 1")
    assert "沒有等待您選擇" in told and await visits(h) == []
    # The sweep drops choices nobody answered (they hold what the officer wrote).
    await officer_says(h, "wxid_wang", "走訪 3組 看望")
    h.clock.advance(timedelta(minutes=11))
    await h.sweep()
    async with h.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(VisitChoice)) == 0


async def test_a_leader_without_groups_chooses_among_the_whole_station(h: Harness) -> None:
    told = await officer_says(h, "wxid_zhao", "走訪 3組12號 所長走訪")
    assert "對應 2 戶" in told and "橋鎮社區警民群" in told and "橋鎮村警民群" in told


async def test_an_address_not_on_the_roster_offers_to_add_the_household(h: Harness) -> None:
    told = await officer_says(h, "wxid_wang", "走訪 橋鎮村9組1號 新搬來的一戶,三口人")
    assert "名冊中沒有" in told and "1. 加入橋鎮村警民群" in told
    assert await visits(h) == []
    told = await officer_says(h, "wxid_wang", "走訪 1")  # no name: asked for it, nothing added
    assert "戶主姓名" in told and await visits(h) == []
    told = await officer_says(h, "wxid_wang", "走訪 1 周大勇 137 0000 9999")
    assert "已把 周** 加入橋鎮村警民群" in told and "已記錄走訪" in told
    zhou = await household(h, "周大勇")
    cipher = h.runtime.cipher
    assert cipher.decrypt(zhou.address_enc) == "橋鎮村9組1號"
    assert cipher.decrypt(zhou.phone_enc) == "13700009999" and zhou.group_id == "grp-qiaozhen-01"
    [visit] = await visits(h)
    assert visit.household_id == zhou.id
    assert cipher.decrypt(visit.note_enc) == "新搬來的一戶,三口人"
    async with h.runtime.sessions() as session:
        audit = (await session.scalars(select(HouseholdEvent))).all()
    assert [(a.household_id, a.action, a.actor) for a in audit] == [
        (zhou.id, "added", "officer:off-wang")
    ]


async def test_households_added_without_a_phone_and_a_known_phone_refused(h: Harness) -> None:
    told = await officer_says(h, "wxid_wang", "走訪 吳小花 獨居,身體一般")
    assert "名冊中沒有戶主" in told
    await officer_says(h, "wxid_wang", "走訪 1")
    told = await officer_says(h, "wxid_wang", "走訪 鄭大山 初次走訪")
    told = await officer_says(h, "wxid_wang", "走訪 1 橋鎮村8組2號 13912345678")  # 楊德勝's number
    assert "另一戶" in told
    told = await officer_says(h, "wxid_wang", "走訪 1 橋鎮村8組2號")
    assert "已記錄走訪" in told
    wu, zheng = await household(h, "吳小花"), await household(h, "鄭大山")
    assert (wu.phone_enc, wu.phone_hash, wu.address_enc) == (None, None, None)
    assert (
        zheng.phone_hash is None and h.runtime.cipher.decrypt(zheng.address_enc) == "橋鎮村8組2號"
    )
    assert len(await visits(h)) == 2
    # In the database too: any number of households without a number, a known number once.
    zhang = await household(h, "張三")
    async with h.runtime.sessions() as session:
        session.add(Household(name_enc=b"x", name_hash="x", phone_hash=wu.phone_hash))
        await session.flush()
        session.add(Household(name_enc=b"y", name_hash="y", phone_hash=zhang.phone_hash))
        with pytest.raises(IntegrityError):
            await session.flush()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("走訪", "記錄走訪:「走訪 地址或戶主 情況」"),
        ("走訪 楊德勝", "請在地址或戶主後寫上走訪情況"),
        ("走訪 3", "沒有等待您選擇"),
        ("出冊", "出冊 地址或戶主"),
        ("入冊 楊德勝", "理由:"),
        ("入冊 楊德勝 愛打麻將", "不是走訪計畫的理由"),
        ("入冊 楊德勝 獨居 偶爾", "看不懂"),
        # The start of two reasons: which one (a newcomer was told it was no reason at all).
        ("入冊 楊德勝 留守 每週", "「留守」可以是:留守兒童、留守老人"),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_records_nothing(
    h: Harness, text: str, expected: str
) -> None:
    told = await officer_says(h, "wxid_wang", text)
    assert expected in told
    assert await visits(h) == []
    async with h.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(VisitPlan)) == 0


async def test_a_household_nobody_can_identify_and_nowhere_to_add_it(h: Harness) -> None:
    # The county desk has no group of its own to add a household to.
    told = await officer_says(h, "wxid_county", "走訪 幸福路99號 路過看看")
    assert "名冊中沒有「幸福路99號」" in told and "沒有您可以把住戶加入的警民群" in told
    assert await visits(h) == []
    assert "沒有等待您選擇" in await officer_says(h, "wxid_county", "走訪 1 張三")


async def test_the_note_is_kept_as_written_full_width_and_all(h: Harness) -> None:
    await officer_says(h, "wxid_wang", "@連心 走訪　橋鎮村３組１２號，老人說：身體還好")
    [visit] = await visits(h)
    assert visit.household_id == (await household(h, "楊德勝")).id
    assert h.runtime.cipher.decrypt(visit.note_enc) == "老人說：身體還好"


async def test_another_station_s_households_are_not_found(h: Harness) -> None:
    told = await officer_says(h, "wxid_chen", "走訪 楊德勝 路過")
    assert "名冊中沒有戶主" in told and "加入河西村警民群" in told  # his own group only
    assert "楊*" not in told


async def test_a_resident_writing_zoufang_is_not_taken_for_an_officer(h: Harness) -> None:
    await h.bind("wxid_yang", group="grp-qiaozhen-01")
    await h.say("走访 我家门锁被人撬了,请民警来看看", group="grp-qiaozhen-01", sender="wxid_yang")
    await h.sent()
    assert await visits(h) == []
    assert len(await h.tickets()) == 1  # an ordinary item for the officer


# --- plans ------------------------------------------------------------------------------------


async def test_a_plan_falls_due_lists_in_daifang_and_reminds_once_then_the_leader(
    h: Harness,
) -> None:
    told = await officer_says(h, "wxid_wang", "入冊 楊德勝 獨居 每月")
    assert "列入走訪計畫:獨居老人,每30天" in told and "負責:王警官" in told
    # Never visited: due at once.
    told = await officer_says(h, "wxid_wang", "待訪")
    assert "待訪 1 戶" in told and "楊** · 橋鎮村3組12號 · 獨居老人 · 每30天" in told
    await officer_says(h, "wxid_wang", "走訪 楊德勝 身體好")
    assert "沒有到期" in await officer_says(h, "wxid_wang", "待訪")
    # A month on it is due again; a week after that the officer hears it once.
    h.clock.advance(timedelta(days=30, hours=1))
    assert "待訪 1 戶" in await officer_says(h, "wxid_wang", "待訪")
    before = len(h.to_user("wxid_wang"))
    h.clock.advance(timedelta(days=7))
    await h.sweep()
    await h.sweep()
    await h.sent()
    reminders = [t for t in h.to_user("wxid_wang")[before:] if "⏰" in t]
    assert len(reminders) == 1 and "楊** · 橋鎮村3組12號 · 獨居老人" in reminders[0]
    assert not [t for t in h.to_user("wxid_zhao") if "⏰" in t]
    # A leader's 待訪 shows his station's overdue plans.
    assert "所轄逾期超過7天" in await officer_says(h, "wxid_zhao", "待訪")
    # After a restart, another week: the station leader, once; the officer not again.
    h = await h.restart()
    try:
        h.clock.advance(timedelta(days=7))
        await h.sweep()
        await h.sweep()
        await h.sent()
        to_leader = [t for t in h.to_user("wxid_zhao") if "⏰" in t]
        assert len(to_leader) == 1 and "王警官" in to_leader[0] and "楊**" in to_leader[0]
        assert len([t for t in h.to_user("wxid_wang") if "⏰" in t]) == 1
        # The outbox keeps neither list once sent.
        cipher = h.runtime.cipher
        async with h.runtime.sessions() as session:
            texts = [
                cipher.decrypt_json(p)["text"]
                for p in await session.scalars(select(OutboxMessage.payload_enc))
            ]
        assert not [t for t in texts if "楊" in t or "3組12號" in t]
        # A visit puts the plan back to zero: due in 30 days, nothing reminded.
        await officer_says(h, "wxid_wang", "走訪 楊德勝 補訪")
        async with h.runtime.sessions() as session:
            plan = await session.scalar(select(VisitPlan))
            assert plan is not None and plan.reminded == 0
            assert plan.next_due_at == h.clock.now() + timedelta(days=30)
            shown = await session.scalar(
                select(func.count())
                .select_from(HouseholdEvent)
                .where(HouseholdEvent.action == "plan_shown")
            )
        assert shown == 5  # 待訪 twice for 王, once for 趙, the officer's reminder, the leader's
    finally:
        await h.close()


async def test_plans_are_seen_by_the_station_s_officers_and_leaders_only(h: Harness) -> None:
    await officer_says(h, "wxid_wang", "入冊 楊德勝 留守老人")
    # Another station's officer cannot put it on or off a plan (he does not find it at all).
    assert "名冊中沒有" in await officer_says(h, "wxid_chen", "出冊 楊德勝")
    async with h.runtime.sessions.begin() as session:
        officers = {o.id: o for o in (await session.scalars(select(Officer))).all()}
        seen = {
            who: len(
                await plans_in_view(
                    session,
                    h.runtime.cipher,
                    viewer=officers[who],
                    now=h.clock.now(),
                    purpose="test",
                )
            )
            for who in ("off-wang", "off-li", "off-zhao", "off-chen", "off-county")
        }
    # 李 (same station), 趙 (its leader), the county's leader (above it); not 陳 of 河西.
    assert seen == {"off-wang": 1, "off-li": 1, "off-zhao": 1, "off-chen": 0, "off-county": 1}
    h.clock.advance(timedelta(hours=2))
    await officer_says(h, "wxid_wang", "走訪 楊德勝 看看")
    async with h.runtime.sessions.begin() as session:
        [line] = await plans_in_view(
            session, h.runtime.cipher, viewer=officers["off-li"], now=h.clock.now(), purpose="t"
        )
    assert (line.name, line.reason, line.last_visit_at) == (
        "楊德勝",
        "left_behind_elderly",
        h.clock.now(),
    )
    assert "移出走訪計畫" in await officer_says(h, "wxid_li", "出冊 楊德勝")


# --- deletion on request ----------------------------------------------------------------------


async def test_deleting_a_household_removes_its_personal_data_and_keeps_the_counts(
    h: Harness,
) -> None:
    await officer_says(h, "wxid_wang", "走訪 楊德勝 老人說兒子在外地打工")
    await officer_says(h, "wxid_wang", "入冊 楊德勝 獨居")
    await officer_says(h, "wxid_wang", "待訪")
    await officer_says(h, "wxid_wang", "走訪 3組 又去看了")  # a choice naming him, unanswered
    yang = await household(h, "楊德勝")
    async with h.runtime.sessions.begin() as session:
        deleted = await delete_household(
            session, household_id=yang.id, actor="admin:console", now=h.clock.now()
        )
    assert deleted is not None and (deleted.visits_kept, deleted.plan_removed) == (1, True)
    cipher = h.runtime.cipher
    async with h.runtime.sessions() as session:
        assert await session.get(Household, yang.id) is None
        [visit] = (await session.scalars(select(Visit))).all()
        assert (visit.household_id, visit.note_enc, visit.officer_id) == (None, None, "off-wang")
        assert await session.scalar(select(func.count()).select_from(VisitPlan)) == 0
        assert await session.scalar(select(func.count()).select_from(VisitChoice)) == 0
        events = (
            await session.scalars(
                select(HouseholdEvent).where(HouseholdEvent.household_id == yang.id)
            )
        ).all()
        # Nothing anywhere still says his name, number or address: journal, outbox, notes.
        blobs = [
            *(await session.scalars(select(InboundEvent.payload_enc))),
            *(await session.scalars(select(OutboxMessage.payload_enc))),
        ]
    assert events[-1].action == "deleted" and events[-1].actor == "admin:console"
    assert "1 visit(s) kept" in (events[-1].detail or "")
    plain = " ".join(cipher.decrypt(b) or "" for b in blobs)
    for secret in ("楊德勝", "13912345678", "3組12號", "兒子在外地"):
        assert secret not in plain
    # Deleting again: nothing to delete.
    async with h.runtime.sessions.begin() as session:
        assert (
            await delete_household(session, household_id=yang.id, actor="x", now=h.clock.now())
            is None
        )


# --- what the console calls -------------------------------------------------------------------


async def test_console_functions_list_edit_and_record_backdated_visits(h: Harness) -> None:
    cipher = h.runtime.cipher
    now = h.clock.now()
    await officer_says(h, "wxid_wang", "走訪 張三 送宣傳單")
    yang = await household(h, "楊德勝")
    async with h.runtime.sessions.begin() as session:
        wang = await session.get(Officer, "off-wang")
        assert wang is not None
        scope = await officer_scope(session, officer=wang)
        # Never visited first, then the least recently visited; one group only when asked.
        listed = await list_households(session, cipher, scope=scope, group_id="grp-qiaozhen-01")
        assert [line.name for line in listed] == ["楊德勝", "劉秀英", "張三"]
        assert (listed[2].visits, listed[2].last_visit_at) == (1, now)
        chen = await session.get(Officer, "off-chen")
        assert chen is not None
        theirs = await list_households(
            session, cipher, scope=await officer_scope(session, officer=chen)
        )
        assert [line.name for line in theirs] == ["陳六"]
        # A plan, then a visit entered the next day for the day before: due a month after it.
        await put_on_plan(
            session,
            settings=h.runtime.settings.visits,
            household_id=yang.id,
            reason="living_alone",
            every_days=None,
            officer_id=None,
            by="admin:console",
            now=now,
        )
        await record_visit(
            session,
            cipher,
            household_id=yang.id,
            officer=wang,
            note="補錄",
            at=now - timedelta(days=1),
            now=now,
            source="console",
        )
        with pytest.raises(VisitError) as caught:
            await record_visit(
                session, cipher, household_id=yang.id, officer=wang, note="x",
                at=now + timedelta(hours=1), now=now,
            )  # fmt: skip
        assert caught.value.key == "visit_in_future"
        plan = await session.scalar(select(VisitPlan))
        assert plan is not None and plan.officer_id == "off-wang"  # the group's officer
        assert plan.next_due_at == now - timedelta(days=1) + timedelta(days=30)
        # Edits: a number added, then one another household has refused; the address removed.
        await update_household(
            session, cipher, household_id=yang.id, actor="admin:console", now=now, phone=None
        )
        assert (await session.get(Household, yang.id)).phone_hash is None  # type: ignore[union-attr]
        with pytest.raises(VisitError) as caught:
            await update_household(
                session, cipher, household_id=yang.id, actor="a", now=now, phone="13812345678"
            )
        assert caught.value.key == "visit_phone_known"
        await update_household(
            session, cipher, household_id=yang.id, actor="a", now=now,
            name="楊德盛", address=None, phone="13500001234",
        )  # fmt: skip
        [found] = await households_by_id(session, cipher, [yang.id])
        assert (found.name, found.address) == ("楊德盛", None)
    async with h.runtime.sessions() as session:
        visit = await session.scalar(select(Visit).where(Visit.source == "console"))
        assert visit is not None and visit.at == now - timedelta(days=1)
        actions = list(
            await session.scalars(
                select(HouseholdEvent.action).where(HouseholdEvent.household_id == yang.id)
            )
        )
    assert actions == ["plan_added", "edited", "edited"]
