"""The console's 公告 page: the form's schedule choices give the right send times across an
Asia/Shanghai week on a manual clock, the preview is what is saved (and what the API says),
bad input comes back beside its field with nothing saved, uploads are judged by their bytes,
scopes hold by URL, forms need their CSRF token and act once, cancel withdraws what waits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.web.console.ui import console_texts
from broadcasts.bulletins import bulletin_tick
from models.bulletins import BULLETIN_CATEGORIES, BulletinRun
from models.console import AuditEntry
from tests.bulletin_form_support import (
    EXE,
    HEIC,
    MON_10,
    MP4,
    NEW,
    PNG,
    WEEKLY,
    Desk,
    desk,
    field_errors,
    form_fields,
    preview_and_save,
    preview_runs,
    section,
    submit,
)
from tests.bulletins_support import TZ, local
from tests.console_support import hidden, visible_text

_ = desk  # the fixture
IDS = ("off-", "grp-", "qiaozhen", "hexi", "county", "wxid", "None", "anti-fraud")


def saved_id(response: Any) -> int:
    assert response.status_code == 303, visible_text(response.text)[:2000]
    found = re.fullmatch(r"/console/bulletins/(\d+)\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


# --- schedules: the form's choices, their preview and the runs that follow ----------------------
@pytest.mark.parametrize(
    ("choice", "cron", "expected"),
    [
        (
            {"schedule": "weekly", "days": ["1", "3", "5"], "time": "09:00"},
            "0 9 * * 1,3,5",
            ["2026-12-02 週三 09:00", "2026-12-04 週五 09:00", "2026-12-07 週一 09:00",
             "2026-12-09 週三 09:00", "2026-12-11 週五 09:00"],
        ),
        (
            {"schedule": "weekly", "days": ["0"], "time": "20:00"},
            "0 20 * * 0",
            ["2026-12-06 週日 20:00", "2026-12-13 週日 20:00", "2026-12-20 週日 20:00",
             "2026-12-27 週日 20:00", "2027-01-03 週日 20:00"],
        ),
        (
            {"schedule": "daily", "time": "08:30"},
            "30 8 * * *",
            ["2026-12-01 週二 08:30", "2026-12-02 週三 08:30", "2026-12-03 週四 08:30",
             "2026-12-04 週五 08:30", "2026-12-05 週六 08:30"],
        ),
        (
            {"schedule": "daily", "time": "10:00"},  # 10:00 today has just come: tomorrow on
            "0 10 * * *",
            ["2026-11-30 週一 10:00", "2026-12-01 週二 10:00", "2026-12-02 週三 10:00",
             "2026-12-03 週四 10:00", "2026-12-04 週五 10:00"],
        ),
        (
            {"schedule": "monthly", "month_day": "1", "time": "09:00"},
            "0 9 1 * *",
            ["2026-12-01 週二 09:00", "2027-01-01 週五 09:00", "2027-02-01 週一 09:00",
             "2027-03-01 週一 09:00", "2027-04-01 週四 09:00"],
        ),
        (
            {"schedule": "monthly", "month_day": "31", "time": "18:00"},
            "0 18 31 * *",
            ["2026-12-31 週四 18:00", "2027-01-31 週日 18:00", "2027-03-31 週三 18:00",
             "2027-05-31 週一 18:00", "2027-07-31 週六 18:00"],
        ),
        (
            {"schedule": "once", "date": "2026-12-03", "time": "08:15"},
            None,
            ["2026-12-03 週四 08:15"],
        ),
        (
            {"schedule": "cron", "cron": "30 7 * * 1-5"},
            "30 7 * * 1-5",
            ["2026-12-01 週二 07:30", "2026-12-02 週三 07:30", "2026-12-03 週四 07:30",
             "2026-12-04 週五 07:30", "2026-12-07 週一 07:30"],
        ),
        (
            {"schedule": "daily", "time": "12:00", "start": "2026-12-05", "end": "2026-12-06"},
            "0 12 * * *",
            ["2026-12-05 週六 12:00", "2026-12-06 週日 12:00"],
        ),
    ],
)  # fmt: skip
async def test_schedule_choices_give_these_send_times_and_the_runs_follow_them(
    desk: Desk, choice: dict[str, Any], cron: str | None, expected: list[str]
) -> None:
    admin = await desk.client()
    preview, saved = await preview_and_save(admin, {**WEEKLY, **choice})
    assert preview_runs(preview.text) == expected
    bid = saved_id(saved)
    [bulletin] = await desk.bulletins()
    assert bulletin.id == bid and bulletin.status == "active"
    if cron is None:
        assert bulletin.schedule_kind == "at"
        assert bulletin.run_at == local(2026, 12, 3, 8, 15)
    else:
        assert (bulletin.schedule_kind, bulletin.cron) == ("cron", cron)
    page = await admin.get(f"/console/bulletins/{bid}")
    assert preview_runs(page.text) == expected  # the saved bulletin's own preview

    # Walk the manual clock through the week (half-hour ticks, as the scheduler's would be
    # every 10 s): the runs are due exactly at the previewed times that fall in it.
    h = desk.h
    week_end = MON_10 + timedelta(days=7)
    while h.clock.now() < week_end:
        h.clock.advance(timedelta(minutes=30))
        await bulletin_tick(h.runtime)
    async with h.runtime.sessions() as session:
        due = [
            r.due_at.astimezone(TZ)
            for r in await session.scalars(select(BulletinRun).order_by(BulletinRun.due_at))
        ]
    previewed = [_local(e) for e in expected]
    within = [t for t in previewed if t <= week_end]
    assert due[: len(within)] == within
    if previewed[-1] > week_end or len(previewed) < 5:
        assert due == within  # nothing else ran that week
    else:
        # More runs in the week than the preview lists (daily): one a day at the time.
        assert all(t.time() == previewed[0].time() for t in due)
        assert len({t.date() for t in due}) == len(due)


def _local(shown: str) -> datetime:
    """``2026-12-02 週三 09:00`` as an aware local time (its weekday checked)."""
    day, weekday, hm = shown.split()
    at = datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=TZ)
    assert _weekday(at.isoweekday()) == weekday, shown
    return at


def _weekday(iso: int) -> str:
    return "週" + "一二三四五六日"[iso - 1]


# --- the preview is what is saved --------------------------------------------------------------
async def test_the_preview_is_what_is_saved_and_what_the_api_says(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client()
    preview, saved = await preview_and_save(
        admin, WEEKLY, file=("防詐騙短片.mp4", MP4, "video/mp4")
    )
    bid = saved_id(saved)
    shown_groups = section(preview.text, "preview-groups")
    assert shown_groups.replace(" ", "") == "橋鎮派出所:橋鎮村警民群、橋鎮社區警民群"
    shown_runs = preview_runs(preview.text)
    assert shown_runs[0] == "2026-12-07 週一 09:00" and len(shown_runs) == 5
    message = section(preview.text, "preview-message")
    assert message == "【每週防詐騙提醒】 " + WEEKLY["text"]

    [bulletin] = await desk.bulletins()
    [stored] = desk.stored_files()
    assert bulletin.title == WEEKLY["title"] and bulletin.text == WEEKLY["text"]
    assert bulletin.category == "anti-fraud"
    assert bulletin.targets == {"stations": ["qiaozhen"]}
    assert bulletin.media == {"type": "video", "url": f"/media/{stored}", "title": WEEKLY["title"]}
    assert stored.endswith(".mp4")
    assert bulletin.created_by == "console:admin"

    # The API's preview of the saved bulletin, and of the same body as a draft, agree.
    api = await h.client.get(f"/api/v1/bulletins/{bid}/preview", headers=desk.api)
    assert api.status_code == 200
    body = api.json()
    assert [m["group_name"] for m in body["messages"]] == ["橋鎮村警民群", "橋鎮社區警民群"]
    assert [f"{t.astimezone(TZ):%Y-%m-%d %H:%M}" for t in map(_parse, body["next_runs"])] == [
        r[:10] + r[13:] for r in shown_runs
    ]
    assert {m["text"] for m in body["messages"]} == {"【每週防詐騙提醒】\n" + WEEKLY["text"]}
    saved_json = (await h.client.get(f"/api/v1/bulletins/{bid}", headers=desk.api)).json()
    draft = {k: saved_json[k] for k in ("title", "category", "text", "media", "targets")}
    draft["schedule"] = {"cron": saved_json["schedule"]["cron"]}
    again = await h.client.post("/api/v1/bulletins/preview", json=draft, headers=desk.api)
    assert again.status_code == 200 and again.json()["next_runs"] == body["next_runs"]
    assert again.json()["messages"] == body["messages"]
    # Nothing but the one bulletin was stored by previewing.
    assert len(await desk.bulletins()) == 1

    # Monday 09:00: both groups get it, with the video; the list says so per group.
    h.clock.set(local(2026, 12, 7, 9, 0))
    await bulletin_tick(h.runtime)
    sent = await h.sent()
    assert sorted(m["group_id"] for m in sent) == ["grp-qiaozhen-01", "grp-qiaozhen-02"]
    assert all(m["media"]["url"] == f"/media/{stored}" for m in sent)
    admin = await desk.client()  # a week later: signed in again
    listing = await admin.get("/console/bulletins")
    row = section(listing.text, "bulletin-rows")
    assert "每週防詐騙提醒" in row and "每週一 09:00" in row
    assert "橋鎮村警民群 已送達" in row and "橋鎮社區警民群 已送達" in row
    assert "2026-12-14 週一 09:00" in row  # the next send time, local
    runs = section((await admin.get(f"/console/bulletins/{bid}")).text, "runs")
    assert "已全部發出" in runs  # the run's state in an urgent notice's words
    for raw in IDS:
        assert raw not in visible_text(listing.text), raw
        assert raw not in visible_text((await admin.get(f"/console/bulletins/{bid}")).text), raw


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- bad input: the reason beside the field, what was typed kept, nothing saved ---------------
@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"title": ""}, "title", "這一項必須填寫。"),
        ({"title": "   "}, "title", "這一項必須填寫。"),
        ({"text": "轉" * 4001}, "text", "太長了,最多4000個字。"),
        ({"category": ""}, "category", "請從列表中選擇。"),
        ({"category": "gossip"}, "category", "請從列表中選擇。"),
        ({"stations": []}, "targets", "請至少選一個發送對象。"),
        ({"target_kind": "groups"}, "targets", "請至少選一個發送對象。"),
        ({"stations": ["mars"]}, "targets", "所選的對象已不在名錄中,請重新選擇。"),
        ({"days": []}, "days", "請至少勾選星期幾中的一天。"),
        ({"days": ["1", "8"]}, "days", "請從列表中選擇。"),
        ({"time": "25:00"}, "time", "請填寫時間,例如 09:00。"),
        ({"time": ""}, "time", "請填寫時間,例如 09:00。"),
        ({"schedule": "once"}, "date", "請選擇日期。"),
        ({"schedule": "once", "date": "2026-11-30", "time": "09:59"}, "date", "這個時間已經過去了(現在是 2026-11-30 10:00),請選以後的時間。"),
        ({"schedule": "once", "date": "2026-02-30"}, "date", "日期不正確,請用日曆選擇。"),
        ({"schedule": "monthly", "month_day": "32"}, "month_day", "請填1到31之間的數字。"),
        ({"schedule": "cron", "cron": "61 9 * * *"}, "cron", "不是有效的 cron 表達式"),
        ({"schedule": "cron", "cron": ""}, "cron", "這一項必須填寫。"),
        ({"start": "2026-12-10", "end": "2026-12-05"}, "end", "結束日期要在開始日期之後。"),
        ({"end": "2026-11-29"}, "end", "按這個排程以後不會再發送,請檢查日期和時間。"),
        ({"schedule": "fortnightly"}, "schedule", "請從列表中選擇。"),
        ({"title": "防火\u0000"}, "title", "含有無法保存的字元,請刪掉後再試。"),
    ],
)  # fmt: skip
async def test_bad_input_comes_back_beside_its_field_and_nothing_is_saved(
    desk: Desk, change: dict[str, Any], field: str, reason: str
) -> None:
    admin = await desk.client()
    typed = {**WEEKLY, "text": "冬季用火注意安全,出門記得關電源。", **change}
    for step in ("preview", "save"):
        refused = await submit(admin, typed, step=step)
        assert refused.status_code == 400, (step, visible_text(refused.text)[:1500])
        [shown] = field_errors(refused.text)
        assert shown.startswith(reason), shown
        # Beside its field: the reason follows the field's input in the page.
        marker = {"targets": 'name="target_kind"', "days": 'name="days"'}.get(
            field, f'name="{field}"'
        )
        assert refused.text.index(marker) < refused.text.index(shown)
        assert "沒有保存任何內容" in refused.text
        # What was typed is still there.
        if typed["title"].strip() and "\u0000" not in typed["title"]:
            assert f'value="{typed["title"]}"' in refused.text
        if len(typed["text"]) < 100:
            assert typed["text"] in refused.text
        assert 'value="qiaozhen" checked' in refused.text or "stations" in change
    assert await desk.bulletins() == [] and await desk.used_forms() == 0

    # Corrected, the same form goes through.
    page = (await submit(admin, typed)).text
    fixed = await submit(admin, WEEKLY, page=page)
    assert fixed.status_code == 200
    saved_id(await submit(admin, WEEKLY, page=fixed.text, step="save"))
    assert len(await desk.bulletins()) == 1


async def test_several_mistakes_are_all_named_at_once(desk: Desk) -> None:
    admin = await desk.client()
    refused = await submit(
        admin, {**WEEKLY, "title": "", "category": "", "stations": [], "days": []}
    )
    assert refused.status_code == 400
    assert field_errors(refused.text) == [
        "這一項必須填寫。",
        "請從列表中選擇。",
        "請至少選一個發送對象。",
        "請至少勾選星期幾中的一天。",
    ]
    assert "有4處需要修改" in refused.text


# --- uploads: judged by their bytes ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "data", "ctype", "kind"),
    [
        ("clip.txt", MP4, "text/plain", "視頻"),  # an MP4 whatever its name says
        ("poster.mp4", PNG, "video/mp4", "圖片"),  # a PNG called .mp4
        ("影片", MP4, "application/octet-stream", "視頻"),
    ],
)
async def test_an_upload_is_what_its_bytes_say(
    desk: Desk, name: str, data: bytes, ctype: str, kind: str
) -> None:
    admin = await desk.client()
    preview = await submit(admin, WEEKLY, file=(name, data, ctype))
    assert preview.status_code == 200, visible_text(preview.text)[:1500]
    assert f"已上傳:{kind}" in section(preview.text, "media-kept")
    [stored] = desk.stored_files()
    assert stored.endswith(".mp4" if kind == "視頻" else ".png")
    # The kept upload rides along: saving needs no second upload.
    saved_id(await submit(admin, WEEKLY, page=preview.text, step="save"))
    [bulletin] = await desk.bulletins()
    assert bulletin.media == {
        "type": "video" if kind == "視頻" else "image",
        "url": f"/media/{stored}",
        "title": WEEKLY["title"],
    }
    served = await desk.h.client.get(f"/media/{stored}")
    assert served.status_code == 200 and served.content == data


@pytest.mark.parametrize(
    ("name", "data", "ctype", "reason"),
    [
        ("video.mp4", EXE, "video/mp4", "看內容是一個程式"),
        ("photo.jpg", HEIC, "image/jpeg", "看內容是iPhone 的 HEIC 照片,請先轉成 JPG"),
        ("notice.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg", "看內容是文字或網頁"),
        ("clip.mp4", b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 100, "video/mp4", "AVI 視頻,請先轉成 MP4"),
        ("empty.mp4", b"", "video/mp4", "這個檔案是空的。"),
    ],
)  # fmt: skip
async def test_an_upload_of_the_wrong_kind_is_refused_with_its_reason(
    desk: Desk, name: str, data: bytes, ctype: str, reason: str
) -> None:
    admin = await desk.client()
    refused = await submit(admin, WEEKLY, file=(name, data, ctype))
    assert refused.status_code == 400
    [shown] = field_errors(refused.text)
    assert reason in shown
    assert refused.text.index('name="media_file"') < refused.text.index(shown)
    assert f'value="{WEEKLY["title"]}"' in refused.text and WEEKLY["text"] in refused.text
    assert desk.stored_files() == [] and await desk.bulletins() == []


async def test_an_upload_over_the_limit_is_refused_with_its_size_and_the_form_kept(
    desk: Desk,
) -> None:
    desk.h.runtime.settings.bulletins.max_upload_bytes = 1024 * 1024  # 1 MB
    admin = await desk.client()
    big = MP4 + b"\x00" * (3 * 1024 * 1024)
    refused = await submit(admin, WEEKLY, file=("long.mp4", big, "video/mp4"))
    assert refused.status_code == 400
    [shown] = field_errors(refused.text)
    assert shown.startswith("檔案有 3 MB,超過上限 1 MB。"), shown
    assert f'value="{WEEKLY["title"]}"' in refused.text and WEEKLY["text"] in refused.text
    assert desk.stored_files() == []
    # A kept upload survives a refused replacement.
    kept = await submit(admin, WEEKLY, file=("ok.mp4", MP4, "video/mp4"))
    again = await submit(admin, WEEKLY, page=kept.text, file=("long.mp4", big, "video/mp4"))
    assert again.status_code == 400 and "已上傳:視頻" in again.text
    assert len(desk.stored_files()) == 1


async def test_the_api_upload_sniffs_the_same_way(desk: Desk) -> None:
    api = desk.h.client
    exe = await api.post(
        "/api/v1/media", content=EXE, headers=desk.api | {"Content-Type": "video/mp4"}
    )
    assert exe.status_code == 415 and "program" in exe.text
    named = await api.post(
        "/api/v1/media", files={"file": ("x.txt", MP4, "text/plain")}, headers=desk.api
    )
    assert named.status_code == 201 and named.json()["type"] == "video"
    assert named.json()["url"].endswith(".mp4")


# --- scope -------------------------------------------------------------------------------------
async def test_a_leader_schedules_for_their_own_station_only(desk: Desk) -> None:
    zhao = await desk.client("zhao")  # leads 橋鎮派出所
    form = (await zhao.get(NEW)).text
    picker = visible_text(form)
    assert "橋鎮派出所" in picker and "橋鎮村警民群" in picker
    assert "河西" not in picker and "甘泉縣調解中心" not in picker
    assert 'value="tags"' not in form and 'value="all"' not in form
    for change, reason in (
        ({"target_kind": "groups", "groups": ["grp-hexi-01"]}, "河西村警民群 不在您的範圍內"),
        ({"stations": ["county"]}, "甘泉縣調解中心"),
        ({"target_kind": "tags", "tags": ["village"]}, "只有管理員可以使用"),
        ({"target_kind": "all"}, "只有管理員可以使用"),
    ):
        refused = await submit(zhao, {**WEEKLY, **change})
        assert refused.status_code == 400, change
        [shown] = field_errors(refused.text)
        assert reason in shown, (change, shown)
    mine = {**WEEKLY, "target_kind": "groups", "groups": ["grp-qiaozhen-01"]}
    bid = saved_id((await preview_and_save(zhao, mine))[1])

    chen = await desk.client("chen")  # leads 河西: not theirs
    assert "每週防詐騙提醒" not in (await chen.get("/console/bulletins")).text
    theirs = await chen.get(f"/console/bulletins/{bid}")
    nothing = await chen.get("/console/bulletins/999")
    assert theirs.status_code == nothing.status_code == 404 and theirs.text == nothing.text
    token = hidden((await chen.get("/console/")).text, "csrf_token")
    refused = await chen.post(
        f"/console/bulletins/{bid}/cancel", data={"csrf_token": token, "nonce": "n-1"}
    )
    assert refused.status_code == 404
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "active"

    wang = await desk.client("wang")  # an officer at 橋鎮: sees it, changes nothing
    listing = await wang.get("/console/bulletins")
    assert "每週防詐騙提醒" in listing.text and 'href="/console/bulletins/new"' not in listing.text
    page = await wang.get(f"/console/bulletins/{bid}")
    assert page.status_code == 200 and "/cancel" not in page.text
    assert (await wang.get(NEW)).status_code == 404
    token = hidden(page.text, "csrf_token")
    posted = await wang.post(
        NEW,
        data={**WEEKLY, "csrf_token": token, "nonce": "n-0", "step": "save"},
        files={"media_file": ("a.mp4", MP4, "video/mp4")},
    )
    assert posted.status_code == 404 and desk.stored_files() == []
    token = hidden(page.text, "csrf_token")
    for action in ("cancel", "pause"):
        posted = await wang.post(
            f"/console/bulletins/{bid}/{action}", data={"csrf_token": token, "nonce": "n-2"}
        )
        assert posted.status_code == 404
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "active"


async def test_a_leader_sees_a_county_bulletin_but_cannot_cancel_it(desk: Desk) -> None:
    admin = await desk.client()
    bid = saved_id((await preview_and_save(admin, {**WEEKLY, "target_kind": "all"}))[1])
    zhao = await desk.client("zhao")
    page = await zhao.get(f"/console/bulletins/{bid}")
    assert page.status_code == 200 and "全縣所有群" in page.text and "/cancel" not in page.text
    posted = await zhao.post(
        f"/console/bulletins/{bid}/cancel",
        data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": "n-3"},
    )
    assert posted.status_code == 404
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "active"


# --- CSRF, double submits, changes after the preview -------------------------------------------
async def test_a_form_without_its_csrf_token_changes_nothing(desk: Desk) -> None:
    admin = await desk.client()
    page = (await admin.get(NEW)).text
    fields = {**form_fields(page), **WEEKLY, "csrf_token": "forged", "step": "preview"}
    refused = await admin.post(NEW, data=fields, files={"media_file": ("a.mp4", MP4, "video/mp4")})
    assert refused.status_code == 403 and "表單已失效" in refused.text
    assert desk.stored_files() == [] and await desk.bulletins() == []
    bid = saved_id((await preview_and_save(admin, WEEKLY))[1])
    nonce_page = (await admin.get(f"/console/bulletins/{bid}")).text
    for token in ("", "forged"):
        refused = await admin.post(
            f"/console/bulletins/{bid}/cancel",
            data={"csrf_token": token, "nonce": hidden(nonce_page, "nonce")},
        )
        assert refused.status_code == 403
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "active"


async def test_a_double_submit_creates_one_bulletin(desk: Desk) -> None:
    admin = await desk.client()
    preview = await submit(admin, WEEKLY)
    first = await submit(admin, WEEKLY, page=preview.text, step="save")
    second = await submit(admin, WEEKLY, page=preview.text, step="save")
    saved_id(first)
    assert second.status_code == 303
    assert second.headers["location"] == "/console/bulletins?done=duplicate"
    assert "這個表單已經提交過一次" in (await admin.get(second.headers["location"])).text
    assert len(await desk.bulletins()) == 1
    async with desk.h.runtime.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions.count("bulletin_created") == 1


async def test_a_form_changed_after_its_preview_is_previewed_again_not_saved(desk: Desk) -> None:
    admin = await desk.client()
    preview = await submit(admin, WEEKLY)
    changed = {**WEEKLY, "days": ["1", "4"]}
    again = await submit(admin, changed, page=preview.text, step="save")
    assert again.status_code == 200 and await desk.bulletins() == []
    assert "表單在預覽後改過" in section(again.text, "preview-notice")
    assert preview_runs(again.text)[:2] == ["2026-12-03 週四 09:00", "2026-12-07 週一 09:00"]
    saved_id(await submit(admin, changed, page=again.text, step="save"))
    [bulletin] = await desk.bulletins()
    assert bulletin.cron == "0 9 * * 1,4"


# --- cancel, pause, resume ---------------------------------------------------------------------
async def test_cancel_withdraws_what_waits_and_says_so_per_group(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client()
    tonight = {**WEEKLY, "schedule": "once", "date": "2026-11-30", "time": "22:00"}
    preview = await submit(admin, tonight)
    assert "接下來1次中有1次落在免打擾時段(21:30-07:30),這幾次會等到07:30才發出。" in section(
        preview.text, "preview-warnings"
    )
    bid = saved_id(await submit(admin, tonight, page=preview.text, step="save"))
    h.clock.set(local(2026, 11, 30, 22, 0))
    await bulletin_tick(h.runtime)
    assert await h.sent() == []  # quiet hours: waits for the morning
    admin = await desk.client()
    page = await admin.get(f"/console/bulletins/{bid}")
    runs = section(page.text, "runs")
    assert "橋鎮村警民群 延後發送 免打擾時段,12-01 07:30發出" in runs
    assert "等候發送時段" in runs and "已全部發出" not in runs  # the run, not yet out
    cancelled = await admin.post(
        f"/console/bulletins/{bid}/cancel",
        data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": hidden(page.text, "nonce")},
    )
    assert cancelled.headers["location"] == f"/console/bulletins/{bid}?done=cancelled"
    page = await admin.get(cancelled.headers["location"])
    assert "公告已取消" in page.text and "/cancel" not in page.text
    assert "橋鎮村警民群 已取消" in section(page.text, "runs")
    assert "已全部發出" not in section(page.text, "runs")
    h.clock.set(local(2026, 12, 1, 8, 0))
    assert await h.sent() == []  # nothing went out in the morning
    listing = await (await desk.client()).get("/console/bulletins?status=cancelled")
    assert "已取消" in section(listing.text, "bulletin-rows")
    async with h.runtime.sessions() as session:
        audited = list(
            await session.scalars(
                select(AuditEntry.target).where(AuditEntry.action == "bulletin_cancelled")
            )
        )
    assert audited == [f"bulletin:{bid}"]


async def test_pause_and_resume_from_the_page(desk: Desk) -> None:
    admin = await desk.client()
    bid = saved_id((await preview_and_save(admin, WEEKLY))[1])
    page = await admin.get(f"/console/bulletins/{bid}")
    paused = await admin.post(
        f"/console/bulletins/{bid}/pause",
        data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": hidden(page.text, "nonce")},
    )
    page = await admin.get(paused.headers["location"])
    assert "公告已暫停" in page.text and f'action="/console/bulletins/{bid}/resume"' in page.text
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "paused"
    nonce = re.search(
        r'action="/console/bulletins/\d+/resume">.*?name="nonce" value="([^"]+)"', page.text, re.S
    )
    assert nonce
    resumed = await admin.post(
        f"/console/bulletins/{bid}/resume",
        data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": nonce.group(1)},
    )
    assert resumed.headers["location"].endswith("done=resumed")
    [bulletin] = await desk.bulletins()
    assert bulletin.status == "active"


# --- warnings ----------------------------------------------------------------------------------
async def test_the_preview_warns_of_media_nobody_outside_can_open(desk: Desk) -> None:
    admin = await desk.client()
    video = ("a.mp4", MP4, "video/mp4")
    preview = await submit(admin, WEEKLY, file=video)
    warning = section(preview.text, "preview-warnings")
    # It says whether the form still works, and who must do what where (not this browser).
    assert "仍可保存和發送" in warning and "群成員打不開" in warning
    assert "伺服器運維人員" in warning and "bulletins.public_base_url" in warning
    assert "請管理員" not in warning
    desk.h.runtime.settings.bulletins.public_base_url = "http://127.0.0.1:8000"
    preview = await submit(admin, WEEKLY, file=video)
    assert "指向本機" in section(preview.text, "preview-warnings")
    desk.h.runtime.settings.bulletins.public_base_url = "https://lianxin.example.gov.cn"
    preview = await submit(admin, WEEKLY, file=video)
    assert 'id="preview-warnings"' not in preview.text


async def test_the_preview_warns_of_the_daily_cap(desk: Desk) -> None:
    h = desk.h
    h.runtime.settings.bulletins.daily_cap_per_group = 1
    admin = await desk.client()
    soon = {**WEEKLY, "target_kind": "groups", "groups": ["grp-qiaozhen-01"], "schedule": "once",
            "date": "2026-11-30", "time": "11:00"}  # fmt: skip
    saved_id((await preview_and_save(admin, soon))[1])
    h.clock.set(local(2026, 11, 30, 11, 0))
    await bulletin_tick(h.runtime)
    admin = await desk.client()
    later = {**soon, "time": "15:00"}
    preview = await submit(admin, later)
    warnings = section(preview.text, "preview-warnings")
    assert "橋鎮村警民群 在 2026-11-30 已有1條公告" in warnings
    assert "橋鎮村警民群:當天已達上限,2026-12-01 週二 07:30發出" in section(
        preview.text, "preview-waits"
    )
    hourly = {**soon, "schedule": "cron", "cron": "0 10-16 * * *"}
    preview = await submit(admin, hourly)
    assert "要發5次,超過每群每天1條的上限" in section(preview.text, "preview-warnings")


# --- both scripts, no raw ids ------------------------------------------------------------------
async def test_the_form_in_simplified_script_without_raw_ids(desk: Desk) -> None:
    admin = await desk.client()
    page = await admin.get("/console/")
    await admin.post(
        "/console/account/script",
        data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/console/"},
    )
    form = await admin.get(NEW)
    text = visible_text(form.text)
    assert "新增公告" in text and "预览" in text and "每周" in text and "防诈骗" in text
    preview = await submit(admin, WEEKLY)
    assert preview_runs(preview.text)[0] == "2026-12-07 周一 09:00"
    for page_text in (form.text, preview.text):
        for raw in IDS:
            assert raw not in visible_text(page_text), raw


# --- suggestions per category ------------------------------------------------------------------
async def test_a_category_picked_with_empty_boxes_suggests_a_title_and_text(desk: Desk) -> None:
    admin = await desk.client()
    form = await admin.get("/console/bulletins/new")
    assert 'hx-get="/console/bulletins/suggest"' in form.text  # the select asks on change
    empty = {"category": "anti-fraud", "title": "", "text": ""}
    filled = await admin.get("/console/bulletins/suggest", params=empty)
    assert filled.status_code == 200
    assert 'id="bf-title" value="每週防詐騙提醒"' in filled.text
    assert 'hx-swap-oob="true"' in filled.text and "96110" in filled.text
    # What was typed is never replaced; a category without a suggestion changes nothing.
    for params in (
        {**empty, "title": "我的標題"},
        {**empty, "text": "我寫的內容"},
        {**empty, "category": "other"},
        {**empty, "category": "no-such"},
    ):
        assert (await admin.get("/console/bulletins/suggest", params=params)).status_code == 204
    # Nothing was saved by asking.
    assert await desk.bulletins() == []
    # Every category but 其他 has one, in both scripts.
    texts = console_texts()
    for category in BULLETIN_CATEGORIES:
        if category != "other":
            for script in ("hant", "hans"):
                assert texts.render(f"bs_title_{category}", script), category
                assert texts.render(f"bs_text_{category}", script), category
