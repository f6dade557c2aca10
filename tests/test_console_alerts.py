"""The console's 緊急通報 page: a leader previews the groups a notice reaches and sends it (with
a photo judged by its bytes), sees each group's delivery (sent, waiting, failed with the
error) as the worker goes, the clue tickets residents' answers open (words audited), and
recalls it; scopes hold by URL, officers only read, bad input comes back beside its field
with nothing sent, and forms act once. The same service as the chat and the API decides."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy import func, select

from models.bulletins import Alert
from models.outbox import OutboxMessage
from tests.bulletin_form_support import (
    EXE,
    PNG,
    Desk,
    desk,
    field_errors,
    section,
    section_html,
)
from tests.console_support import audit_rows, browser, form_of, hidden, visible_text

_ = desk  # the fixture
NEW = "/console/alerts/new"
QZ1, QZ2, HX = "grp-qiaozhen-01", "grp-qiaozhen-02", "grp-hexi-01"
LOST = "尋找走失兒童:男孩,6歲,穿紅色外套,下午3點在橋鎮廣場走失。"
QIAOZHEN = {"scope_kind": "stations", "stations": ["qiaozhen"], "text": LOST}
PDF = b"%PDF-1.7\n" + b"\x00" * 300
IDS = ("off-", "grp-", "qiaozhen", "hexi", "wxid", "None", "console:", "officer:")


def alert_form(page: str) -> dict[str, str]:
    """The hidden fields of the notice form (token, nonce, kept upload, fingerprint)."""
    found = re.search(r'<form method="post" action="/console/alerts/new".*?</form>', page, re.S)
    assert found, "no alert form in the page"
    return {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0))
    }


async def submit(
    client: httpx.AsyncClient,
    fields: dict[str, Any],
    *,
    page: str | None = None,
    step: str = "preview",
    file: tuple[str, bytes, str] | None = None,
) -> httpx.Response:
    """Post the notice form as a browser does (multipart, the file input always there)."""
    if page is None:
        opened = await client.get(NEW)
        assert opened.status_code == 200, opened.text
        page = opened.text
    data = {**alert_form(page), **fields, "step": step}
    upload = file or ("", b"", "application/octet-stream")
    return await client.post(NEW, data=data, files={"media_file": upload})


async def send(
    client: httpx.AsyncClient,
    fields: dict[str, Any],
    *,
    file: tuple[str, bytes, str] | None = None,
) -> tuple[httpx.Response, int]:
    """Preview, then send what was previewed; the preview's answer and the notice's id."""
    preview = await submit(client, fields, file=file)
    assert preview.status_code == 200, visible_text(preview.text)[:2000]
    sent = await submit(client, fields, page=preview.text, step="send")
    assert sent.status_code == 303, visible_text(sent.text)[:2000]
    found = re.fullmatch(r"/console/alerts/(\d+)\?done=sent", sent.headers["location"])
    assert found, sent.headers["location"]
    return preview, int(found.group(1))


async def alerts(desk: Desk) -> list[Alert]:
    """The notices (not their corrections and recall notices), oldest first."""
    async with desk.h.runtime.sessions() as session:
        query = select(Alert).where(Alert.kind == "alert").order_by(Alert.id)
        return list(await session.scalars(query))


def states(page: str) -> dict[str, str]:
    """Group name → its delivery as the panel words it."""
    rows = re.findall(r'<tr class="gs (\w+)".*?class="gname">(.*?)</td>', page, re.S)
    return {name: status for status, name in rows}


async def recall_form(client: httpx.AsyncClient, alert_id: int) -> dict[str, str]:
    page = await client.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200
    return form_of(page.text, f"/console/alerts/{alert_id}/recall")


# --- sending --------------------------------------------------------------------------------
async def test_a_leader_previews_the_groups_then_sends_and_watches_each_group(
    desk: Desk,
) -> None:
    h = desk.h
    zhao = await desk.client("zhao")
    form = await zhao.get(NEW)
    picker = visible_text(section(form.text, "af-scope"))
    assert "橋鎮派出所" in picker and "河西" not in picker  # only the leader's stations
    assert 'value="all"' not in form.text  # 全縣 is for admins

    preview = await submit(zhao, QIAOZHEN)
    assert preview.status_code == 200
    reached = section(preview.text, "preview-groups")
    assert reached.count("橋鎮派出所") == 2 and "河西" not in reached
    assert "橋鎮村警民群" in reached and "橋鎮社區警民群" in reached
    assert "將發往 2 個群" in visible_text(preview.text)
    assert "【緊急通報 …】" in section(preview.text, "preview-message")
    assert await alerts(desk) == [] and h.world.state.sends() == []  # nothing sent yet

    sent = await submit(zhao, QIAOZHEN, page=preview.text, step="send")
    assert sent.status_code == 303
    alert_id = int(sent.headers["location"].split("/")[-1].split("?")[0])
    # The same rendered form again (a double click): one notice.
    again = await submit(zhao, QIAOZHEN, page=preview.text, step="send")
    assert again.headers["location"] == "/console/alerts?done=duplicate"
    [alert] = await alerts(desk)
    assert alert.id == alert_id and alert.created_by == "console:zhao"
    assert alert.scope == {"stations": ["qiaozhen"]}
    [row] = await audit_rows(h, "alert_sent")
    assert row.target == f"alert:{alert_id}" and row.detail == "groups=2"

    page = await zhao.get(sent.headers["location"])
    assert "緊急通報已發出" in visible_text(page.text)
    assert states(page.text) == {"橋鎮村警民群": "pending", "橋鎮社區警民群": "pending"}
    assert f'hx-get="/console/alerts/{alert_id}/panel"' in page.text

    # The worker sends them, ahead of everything: the panel's refresh shows them sent.
    await h.drain()
    panel = await zhao.get(f"/console/alerts/{alert_id}/panel")
    assert states(panel.text) == {"橋鎮村警民群": "sent", "橋鎮社區警民群": "sent"}
    assert "已送達2 · 等待0 · 失敗0" in visible_text(panel.text)
    delivered = {m["group_id"]: m for m in h.world.state.delivered()}
    assert set(delivered) == {QZ1, QZ2}
    assert delivered[QZ1]["text"].startswith(f"【緊急通報 {alert_id}】\n{LOST}")
    # The API, from the same service, says the same.
    api = await browser(h).get(f"/api/v1/alerts/{alert_id}", headers=desk.api)
    assert [(g["group_id"], g["status"]) for g in api.json()["groups"]] == [
        (QZ1, "sent"),
        (QZ2, "sent"),
    ]
    listing = await zhao.get("/console/alerts")
    text = visible_text(listing.text)
    assert f"緊急通報 {alert_id}" in text and "已全部發出" in text
    for raw in IDS:
        assert raw not in text and raw not in visible_text(page.text), raw


async def test_a_photo_from_the_browser_goes_out_with_the_notice(desk: Desk) -> None:
    h = desk.h
    zhao = await desk.client("zhao")
    preview, alert_id = await send(zhao, QIAOZHEN, file=("孩子.png", PNG, "image/png"))
    assert "已上傳:圖片" in section(preview.text, "media-kept")
    # The same reachability warning as the 公告 preview, from the same rule.
    warning = section(preview.text, "preview-warnings")
    assert "仍可保存和發送" in warning and "bulletins.public_base_url" in warning
    assert '<img src="/media/' in section_html(preview.text, "preview-media")
    [alert] = await alerts(desk)
    assert alert.media is not None and alert.media["type"] == "image"
    assert alert.media["url"] in {f"/media/{n}" for n in desk.stored_files()}
    await h.drain()
    [one, two] = h.world.state.delivered()
    assert one["media"]["type"] == two["media"]["type"] == "image"
    assert one["media"]["url"].endswith(alert.media["url"])
    page = await zhao.get(f"/console/alerts/{alert_id}")
    assert f'<img src="{alert.media["url"]}"' in page.text
    h.runtime.settings.bulletins.public_base_url = "https://lianxin.example.gov.cn"
    again = await submit(zhao, QIAOZHEN, file=("孩子.png", PNG, "image/png"))
    assert 'id="preview-warnings"' not in again.text


async def test_the_audit_log_names_what_was_done_in_chinese(desk: Desk) -> None:
    zhao = await desk.client("zhao")
    await send(zhao, QIAOZHEN)
    log = await (await desk.client()).get("/console/audit?action=alert_sent")
    rows = section_html(log.text, "audit-rows")
    # The label, with the raw name only as the tooltip; the detail in words.
    assert '<span class="action" title="alert_sent">發出緊急通報</span>' in rows
    assert "發往2個群" in visible_text(rows)
    shown = visible_text(log.text)
    assert "alert_sent" not in shown and "groups" not in shown
    assert '<option value="alert_sent" selected>發出緊急通報</option>' in log.text


async def test_a_failed_group_shows_its_error_and_a_retry_waits(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client("admin")
    h.world.state.send_script.append(400)  # refused for good
    _, refused = await send(admin, {"scope_kind": "groups", "groups": [HX], "text": LOST})
    await h.drain()
    h.world.state.send_script.append(503)  # to be tried again
    _, later = await send(admin, {"scope_kind": "groups", "groups": [QZ1], "text": LOST})
    await h.drain()
    panel = await admin.get(f"/console/alerts/{refused}/panel")
    assert states(panel.text) == {"河西村警民群": "failed"}
    assert "發送失敗 HTTP 400" in " ".join(visible_text(panel.text).split())
    panel = await admin.get(f"/console/alerts/{later}/panel")
    assert states(panel.text) == {"橋鎮村警民群": "pending"}
    assert "等待發送 已試1次,稍後重試 HTTP 503" in " ".join(visible_text(panel.text).split())
    listing = visible_text((await admin.get("/console/alerts")).text)
    assert "全部失敗" in listing and "發送中" in listing


# --- clues ------------------------------------------------------------------------------------
async def test_clues_are_linked_with_their_words_audited_and_officers_only_read(
    desk: Desk,
) -> None:
    h = desk.h
    zhao = await desk.client("zhao")
    _, alert_id = await send(zhao, QIAOZHEN)
    await h.drain()
    await h.say("我半小時前在橋頭看到一個穿紅衣服的小男孩往河邊走", group=QZ1, sender="wxid_c")
    [ticket] = await h.tickets()
    assert ticket.alert_id == alert_id

    panel = await zhao.get(f"/console/alerts/{alert_id}/panel")
    clues = section_html(panel.text, "clues")
    assert f'href="/console/tickets/{ticket.code}"' in clues
    assert "穿紅衣服的小男孩" in visible_text(clues)
    shown = [r for r in await audit_rows(h, "personal_data_shown") if r.username == "zhao"]
    assert [(r.target, r.detail) for r in shown] == [(f"ticket:{ticket.code}", "words")]
    # The panel's own refreshes re-show what is on the screen: not a new row each time.
    await zhao.get(f"/console/alerts/{alert_id}/panel")
    assert len([r for r in await audit_rows(h, "personal_data_shown") if r.username == "zhao"]) == 1
    # Opening the page is a showing, as on the ticket page.
    await zhao.get(f"/console/alerts/{alert_id}")
    assert len([r for r in await audit_rows(h, "personal_data_shown") if r.username == "zhao"]) == 2

    # An officer of the station sees the notice and its clues, and can neither send nor recall.
    wang = await desk.client("wang")
    listing = await wang.get("/console/alerts")
    assert f"緊急通報 {alert_id}" in visible_text(listing.text) and "new-alert" not in listing.text
    page = await wang.get(f"/console/alerts/{alert_id}")
    assert page.status_code == 200 and "穿紅衣服" in page.text
    assert "/recall" not in page.text
    assert (await wang.get(NEW)).status_code == 404
    token = hidden(page.text, "csrf_token")
    refused = await wang.post(
        NEW,
        data={"csrf_token": token, **QIAOZHEN, "step": "send"},
        files={"media_file": ("", b"", "application/octet-stream")},
    )
    assert refused.status_code == 404
    recall = await wang.post(
        f"/console/alerts/{alert_id}/recall",
        data={"csrf_token": token, "nonce": "wang-1", "confirm": "1"},
    )
    assert recall.status_code == 404
    assert [a.status for a in await alerts(desk)] == ["sent"]


async def test_another_stations_notice_is_404_by_url_exactly_like_none(desk: Desk) -> None:
    zhao = await desk.client("zhao")
    _, alert_id = await send(zhao, QIAOZHEN)
    chen = await desk.client("chen")  # leads 河西
    theirs = await chen.get(f"/console/alerts/{alert_id}")
    nothing = await chen.get("/console/alerts/99999")
    assert theirs.status_code == nothing.status_code == 404 and theirs.text == nothing.text
    assert (await chen.get(f"/console/alerts/{alert_id}/panel")).status_code == 404
    assert f"緊急通報 {alert_id}" not in visible_text((await chen.get("/console/alerts")).text)
    token = hidden(nothing.text, "csrf_token")
    refused = await chen.post(
        f"/console/alerts/{alert_id}/recall",
        data={"csrf_token": token, "nonce": "chen-1", "confirm": "1"},
    )
    assert refused.status_code == 404
    # A station of another's typed into the form by hand is refused beside the scope.
    forged = await submit(chen, {**QIAOZHEN, "stations": ["qiaozhen"]})
    assert forged.status_code == 400
    [error] = field_errors(forged.text)
    assert error.startswith("只能發給本所及下屬單位的群:橋鎮派出所") and error.endswith(
        "不在您的範圍內。"
    )
    assert [a.id for a in await alerts(desk)] == [alert_id]


# --- recall -----------------------------------------------------------------------------------
async def test_recall_withdraws_what_waits_and_tells_the_groups_that_had_it(desk: Desk) -> None:
    h = desk.h
    zhao = await desk.client("zhao")
    # Recalled before the worker ran: both copies stopped, nobody told.
    _, early = await send(zhao, {**QIAOZHEN, "text": "錯發的通報"})
    fields = await recall_form(zhao, early)
    done = await zhao.post(f"/console/alerts/{early}/recall", data={**fields, "confirm": "1"})
    assert done.headers["location"] == f"/console/alerts/{early}?done=recalled"
    assert await h.sent() == []
    page = await zhao.get(f"/console/alerts/{early}")
    assert states(page.text) == {"橋鎮村警民群": "cancelled", "橋鎮社區警民群": "cancelled"}
    assert "已撤回" in visible_text(page.text) and "recall-button" not in page.text

    # Recalled after it went out: a recall notice, with the reason, to each group.
    _, alert_id = await send(zhao, QIAOZHEN)
    await h.drain()
    fields = await recall_form(zhao, alert_id)
    unticked = await zhao.post(
        f"/console/alerts/{alert_id}/recall", data={**fields, "reason": "孩子已找到"}
    )
    assert unticked.status_code == 400
    assert field_errors(unticked.text) == ["請勾選確認後再撤回。"]
    assert 'value="孩子已找到"' in unticked.text  # what was typed is kept
    assert [a.status for a in await alerts(desk)] == ["recalled", "sent"]
    body = {**fields, "reason": "孩子已找到", "confirm": "1"}  # the same form: not used yet
    done = await zhao.post(f"/console/alerts/{alert_id}/recall", data=body)
    assert done.headers["location"] == f"/console/alerts/{alert_id}?done=recalled"
    twice = await zhao.post(f"/console/alerts/{alert_id}/recall", data=body)
    assert twice.headers["location"] == f"/console/alerts/{alert_id}?done=duplicate"
    recalls = [m for m in await h.sent() if "撤回" in m["text"]]
    assert sorted(m["group_id"] for m in recalls) == [QZ1, QZ2]
    assert all("原因:孩子已找到" in m["text"] for m in recalls)
    rows = await audit_rows(h, "alert_recalled")
    assert [r.target for r in rows] == [f"alert:{early}", f"alert:{alert_id}"]
    page = await zhao.get(f"/console/alerts/{alert_id}")
    assert "撤回通知" in section(page.text, "followups")
    # A recalled notice collects no more clues.
    await h.say("我在橋頭看到一個穿紅衣服的小男孩", group=QZ1, sender="wxid_c")
    assert all(t.alert_id is None for t in await h.tickets())


async def test_the_chat_recalls_by_the_same_rule_as_the_console(desk: Desk) -> None:
    h = desk.h
    admin = await desk.client("admin")
    _, alert_id = await send(admin, QIAOZHEN)  # reaches 橋鎮's groups only
    await h.drain()
    await h.say(f"撤回通報 {alert_id}", group=None, sender="wxid_chen")  # not 河西's: refused
    await h.drain()
    assert [a.status for a in await alerts(desk)] == ["sent"]
    # 趙所長 leads 橋鎮: every group it reached is his, so he may, in the chat as here.
    await h.say(f"撤回通報 {alert_id} 已找到", group=None, sender="wxid_zhao")
    await h.drain()
    [alert] = await alerts(desk)
    assert alert.status == "recalled"
    assert any("已撤回" in t for t in h.to_user("wxid_zhao"))


# --- bad input --------------------------------------------------------------------------------
async def test_bad_input_comes_back_beside_its_field_with_nothing_sent(desk: Desk) -> None:
    h = desk.h
    desk.h.runtime.settings.bulletins.max_upload_bytes = 1024 * 1024  # 1 MB
    zhao = await desk.client("zhao")
    empty = await submit(zhao, {"scope_kind": "stations", "text": "   "})
    assert empty.status_code == 400
    assert field_errors(empty.text) == ["請填寫通報內容。", "請選擇要發給哪些派出所或群。"]
    assert "有2處需要修改" in visible_text(empty.text) and "沒有發送任何內容" in empty.text

    typed = {"scope_kind": "groups", "groups": [QZ2], "text": LOST}
    for name, data, ctype, reason in [
        ("孩子.png", EXE, "image/png", "看內容是一個程式"),
        ("孩子.pdf", PDF, "application/pdf", "緊急通報只能附照片或視頻"),
        ("big.png", PNG + b"\x00" * (1024 * 1024), "image/png", "超過上限 1 MB"),
    ]:
        refused = await submit(zhao, typed, file=(name, data, ctype))
        assert refused.status_code == 400, name
        [error] = field_errors(refused.text)
        assert reason in error, (name, error)
        assert LOST in refused.text and f'value="{QZ2}" checked' in refused.text
    assert desk.stored_files() == []  # nothing refused was kept

    # A form changed after its preview is previewed again, not sent.
    preview = await submit(zhao, typed)
    changed = await submit(zhao, {**typed, "groups": [QZ1]}, page=preview.text, step="send")
    assert changed.status_code == 200 and "表單在預覽後改過了" in changed.text

    # Without its CSRF token: 403, nothing.
    forged = await zhao.post(
        NEW,
        data={**typed, "step": "send", "previewed": alert_form(preview.text)["previewed"]},
        files={"media_file": ("", b"", "application/octet-stream")},
    )
    assert forged.status_code == 403
    assert await alerts(desk) == []
    async with h.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert await desk.used_forms() == 0
