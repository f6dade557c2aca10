"""編輯 a scheduled bulletin from its console page: the form comes back filled in as the bulletin
was made, goes through the same preview and confirmation as 新增公告 and the same service as
``PATCH /api/v1/bulletins/ID``; later runs send the edit; bad input, scope, CSRF and double
submits are refused as for a new bulletin; a cancelled bulletin cannot be edited. And the
files of forms never confirmed go ``bulletins.unused_upload_days`` after their last upload,
by the injected clock, while files a bulletin names stay."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy import select

from bot.scheduler import build_scheduler, upload_sweep_job
from broadcasts.bulletins import bulletin_tick
from models.console import AuditEntry
from tests.bulletin_form_support import (
    MP4,
    PNG,
    WEEKLY,
    Desk,
    desk,
    field_errors,
    preview_and_save,
    preview_runs,
    section,
    submit,
)
from tests.bulletins_support import local
from tests.console_support import hidden, visible_text

_ = desk  # the fixture


def saved_id(response: httpx.Response) -> int:
    assert response.status_code == 303, visible_text(response.text)[:2000]
    found = re.fullmatch(r"/console/bulletins/(\d+)\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def filled(page: str, path: str) -> dict[str, Any]:
    """What a browser would send of the form at ``path`` as shown (hidden fields aside): the
    typed values, the ticked boxes and chosen radios, the selected option, the text."""
    form = re.search(rf'<form method="post" action="{re.escape(path)}".*?</form>', page, re.S)
    assert form, f"no form for {path}"
    body = form.group(0)
    out: dict[str, Any] = {}
    for tag in re.findall(r"<input [^>]*>", body):
        name = re.search(r'name="([^"]+)"', tag)
        kind = (re.search(r'type="([^"]+)"', tag) or re.search("()", "")).group(1) or "text"
        value = re.search(r'value="([^"]*)"', tag)
        if not name or kind in ("hidden", "file"):
            continue
        if kind in ("checkbox", "radio"):
            if " checked" not in tag:
                continue
            if kind == "checkbox" and name.group(1) != "media_remove":
                out.setdefault(name.group(1), []).append(html.unescape(value.group(1)))
                continue
        out[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        out[name] = html.unescape(chosen.group(1)) if chosen else ""
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', body, re.S):
        out[name] = html.unescape(text)
    return out


async def open_edit(client: httpx.AsyncClient, bid: int) -> tuple[str, dict[str, Any]]:
    page = await client.get(f"/console/bulletins/{bid}/edit")
    assert page.status_code == 200, visible_text(page.text)[:1000]
    return page.text, filled(page.text, f"/console/bulletins/{bid}/edit")


async def test_an_edit_is_previewed_then_saved_and_later_runs_send_it(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client()
    bid = saved_id((await preview_and_save(admin, WEEKLY))[1])
    page = await admin.get(f"/console/bulletins/{bid}")
    assert f'href="/console/bulletins/{bid}/edit"' in page.text

    shown, fields = await open_edit(admin, bid)
    assert "編輯公告" in shown
    # The form as the bulletin was made.
    assert {k: fields[k] for k in WEEKLY} == WEEKLY
    edited = {
        **fields,
        "title": "防詐騙提醒(週一、週四)",
        "text": "接到自稱客服的退款電話,請先掛斷再撥打官方電話核實。",
        "days": ["1", "4"],
        "time": "08:00",
        "target_kind": "groups",
        "groups": ["grp-qiaozhen-01"],
    }
    path = f"/console/bulletins/{bid}/edit"
    preview = await submit(admin, edited, page=shown, path=path)
    assert preview.status_code == 200, visible_text(preview.text)[:2000]
    assert preview_runs(preview.text)[:3] == [
        "2026-12-03 週四 08:00",
        "2026-12-07 週一 08:00",
        "2026-12-10 週四 08:00",
    ]
    [unchanged] = await desk.bulletins()  # nothing saved by the preview
    assert (unchanged.title, unchanged.cron) == (WEEKLY["title"], "0 9 * * 1")

    saved = await submit(admin, edited, page=preview.text, step="save", path=path)
    assert saved.headers["location"] == f"/console/bulletins/{bid}?done=edited"
    assert "公告已修改" in (await admin.get(saved.headers["location"])).text
    [bulletin] = await desk.bulletins()
    assert (bulletin.id, bulletin.title, bulletin.cron) == (bid, edited["title"], "0 8 * * 1,4")
    assert bulletin.targets == {"groups": ["grp-qiaozhen-01"]}
    api = (await h.client.get(f"/api/v1/bulletins/{bid}", headers=desk.api)).json()
    assert api["schedule"]["cron"] == "0 8 * * 1,4" and api["title"] == edited["title"]
    async with h.runtime.sessions() as session:
        audited = list(
            await session.scalars(
                select(AuditEntry.target).where(AuditEntry.action == "bulletin_edited")
            )
        )
    assert audited == [f"bulletin:{bid}"]

    # Thursday 08:00: the edit goes out, with the new text, to the one group.
    h.clock.set(local(2026, 12, 3, 8, 0))
    await bulletin_tick(h.runtime)
    sent = await h.sent()
    assert [d["group_id"] for d in sent] == ["grp-qiaozhen-01"]
    assert "請先掛斷再撥打官方電話核實" in sent[0]["text"]


async def test_a_bad_edit_comes_back_beside_its_field_and_changes_nothing(desk: Desk) -> None:
    admin = await desk.client()
    bid = saved_id((await preview_and_save(admin, WEEKLY))[1])
    shown, fields = await open_edit(admin, bid)
    path = f"/console/bulletins/{bid}/edit"
    for change, reason in (
        ({"title": ""}, "這一項必須填寫"),
        ({"days": []}, "請至少勾選星期幾中的一天"),
        ({"schedule": "once", "date": "2026-11-29", "time": "09:00"}, "這個時間已經過去了"),
    ):
        refused = await submit(admin, {**fields, **change}, page=shown, path=path, step="save")
        assert refused.status_code == 400, change
        assert field_errors(refused.text) and reason in " ".join(field_errors(refused.text))
        assert (await desk.bulletins())[0].title == WEEKLY["title"]
    assert await desk.used_forms() == 1  # the creation's only


async def test_an_edit_keeps_its_upload_or_drops_it(desk: Desk) -> None:
    admin = await desk.client()
    bid = saved_id((await preview_and_save(admin, WEEKLY, file=("fraud.mp4", MP4, "video/mp4")))[1])
    [made] = await desk.bulletins()
    video = made.media["url"] if made.media else ""
    shown, fields = await open_edit(admin, bid)
    assert "已上傳" in section(shown, "media-kept")
    path = f"/console/bulletins/{bid}/edit"
    preview = await submit(admin, {**fields, "text": "新的文字,視頻不變。"}, page=shown, path=path)
    saved = await submit(
        admin, {**fields, "text": "新的文字,視頻不變。"}, page=preview.text, path=path, step="save"
    )
    assert saved.status_code == 303
    [bulletin] = await desk.bulletins()
    assert bulletin.media and bulletin.media["url"] == video and bulletin.text.startswith("新的")

    shown, fields = await open_edit(admin, bid)
    dropped = {**fields, "media_remove": "1"}
    preview = await submit(admin, dropped, page=shown, path=path)
    assert (
        await submit(admin, dropped, page=preview.text, path=path, step="save")
    ).status_code == 303
    [bulletin] = await desk.bulletins()
    assert bulletin.media is None


async def test_who_may_edit_and_what(desk: Desk) -> None:
    zhao = await desk.client("zhao")  # leads 橋鎮派出所
    mine = {**WEEKLY, "target_kind": "groups", "groups": ["grp-qiaozhen-01"]}
    bid = saved_id((await preview_and_save(zhao, mine))[1])
    path = f"/console/bulletins/{bid}/edit"
    shown, fields = await open_edit(zhao, bid)
    # Not to another station's group: refused beside the field, nothing changed.
    refused = await submit(zhao, {**fields, "groups": ["grp-hexi-01"]}, page=shown, path=path)
    assert refused.status_code == 400
    assert "河西村警民群 不在您的範圍內" in " ".join(field_errors(refused.text))
    assert (await desk.bulletins())[0].targets == {"groups": ["grp-qiaozhen-01"]}

    chen = await desk.client("chen")  # leads 河西: not theirs
    wang = await desk.client("wang")  # an officer at 橋鎮: reads, changes nothing
    for other in (chen, wang):
        assert (await other.get(path)).status_code == 404
        token = hidden((await other.get("/console/")).text, "csrf_token")
        posted = await other.post(
            path,
            data={**fields, "csrf_token": token, "nonce": "n-9", "step": "save"},
            files={"media_file": ("", b"", "application/octet-stream")},
        )
        assert posted.status_code == 404
    assert 'href="' + path + '"' not in (await wang.get(f"/console/bulletins/{bid}")).text

    # Without the form's CSRF token: 403, nothing changed.
    forged = await zhao.post(
        path,
        data={**fields, "title": "偽造", "csrf_token": "x", "nonce": "n-8", "step": "save"},
        files={"media_file": ("", b"", "application/octet-stream")},
    )
    assert forged.status_code == 403
    # Saved twice from one preview: once.
    edited = {**fields, "title": "改過一次"}
    preview = await submit(zhao, edited, page=shown, path=path)
    first = await submit(zhao, edited, page=preview.text, path=path, step="save")
    second = await submit(zhao, edited, page=preview.text, path=path, step="save")
    assert first.headers["location"].endswith("done=edited")
    assert second.headers["location"] == f"/console/bulletins/{bid}?done=duplicate"
    assert (await desk.bulletins())[0].title == "改過一次"

    # A cancelled bulletin is not edited.
    page = await zhao.get(f"/console/bulletins/{bid}")
    cancelled = await zhao.post(
        f"/console/bulletins/{bid}/cancel",
        data={"csrf_token": hidden(page.text, "csrf_token"), "nonce": hidden(page.text, "nonce")},
    )
    assert cancelled.status_code == 303
    assert (await zhao.get(path)).status_code == 404
    assert (
        await submit(zhao, edited, page=preview.text, path=path, step="save")
    ).status_code == 404


async def test_uploads_of_forms_never_saved_go_after_their_days(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client()
    abandoned = await submit(admin, WEEKLY, file=("fraud.mp4", MP4, "video/mp4"))
    assert abandoned.status_code == 200  # previewed, never confirmed
    kept_form = {**WEEKLY, "title": "保存了的"}
    bid = saved_id((await preview_and_save(admin, kept_form, file=("p.png", PNG, "image/png")))[1])
    [saved] = await desk.bulletins()
    picture = (saved.media or {})["url"].removeprefix("/media/")
    [video] = [name for name in desk.stored_files() if name.endswith(".mp4")]
    assert build_scheduler(h.runtime).get_job("upload-sweep") is not None

    h.clock.advance(6 * 86400)
    assert await upload_sweep_job(h.runtime) == []
    # Uploaded again (another form, the same bytes): its days count from now.
    admin = await desk.client()  # signed in again: days have passed
    again = await submit(admin, WEEKLY, file=("same.mp4", MP4, "video/mp4"))
    assert again.status_code == 200
    h.clock.advance(2 * 86400)  # 8 days after the first upload, 2 after the second
    assert await upload_sweep_job(h.runtime) == []
    assert sorted(desk.stored_files()) == sorted([video, picture])

    h.clock.advance(6 * 86400)
    assert await upload_sweep_job(h.runtime) == [video]
    # The saved bulletin's picture stays, however old, and its page still shows it.
    assert desk.stored_files() == [picture]
    admin = await desk.client()
    assert (await admin.get(f"/media/{picture}")).status_code == 200
    assert (await admin.get(f"/console/bulletins/{bid}")).status_code == 200
    # A form still holding the swept file says so beside the field instead of saving.
    kept = f"/media/{video}"
    assert f'name="media_url" value="{kept}"' in abandoned.text
    late = await submit(admin, {**WEEKLY, "media_url": kept}, step="save")
    assert late.status_code == 400
    assert "之前上傳的檔案找不到了" in " ".join(field_errors(late.text))
    assert len(await desk.bulletins()) == 1
