"""The 公告 page in a real headless Chromium (Debian's, driven by Playwright) against
`lianxin demo`: an admin signs in, schedules a weekly anti-fraud video for one town (橋鎮派出所's
groups) with a file uploaded from the browser, sees the preview (the groups, the next five
Mondays, the message), saves, and finds it in the list. Screenshots go to ``test-artifacts/``;
how long the walk took is printed (a floor for a person doing the same: the test types
instantly and never hesitates).

Needs the ``playwright`` package and ``/usr/bin/chromium``; skips with the reason otherwise.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402

from tests.test_browser import CHROMIUM_ARGS  # noqa: E402
from tests.test_console_browser import ARTIFACTS, Demo, demo  # noqa: E402

_ = demo  # the fixture
TITLE = "每週防詐騙短片"
TEXT = "陌生來電自稱公檢法、要求轉賬到「安全賬戶」的,都是詐騙。請看短片,轉發給家人。"
# The start of an MP4 file (an ISO media "ftyp" box): what the server sniffs.
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 4096
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def next_mondays(count: int) -> list[str]:
    """The next ``count`` Mondays at 09:00 in Shanghai from now, as the page writes them."""
    now = datetime.now(SHANGHAI)
    day = now.replace(hour=9, minute=0, second=0, microsecond=0)
    while day.weekday() != 0 or day < now:
        day += timedelta(days=1)
    return [f"{day + timedelta(weeks=i):%Y-%m-%d} 週一 09:00" for i in range(count)]


def test_an_admin_schedules_a_weekly_video_for_one_town(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    video = tmp_path / "防詐騙短片.mp4"
    video.write_bytes(MP4)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    started = time.monotonic()
    page.goto(f"{base}/console/")
    admin = demo.accounts["admin"]
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", admin.password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")

    # 公告 → 新增公告.
    page.click("nav.nav >> text=公告")
    expect(page).to_have_url(f"{base}/console/bulletins")
    page.click("#new-bulletin")
    expect(page).to_have_url(f"{base}/console/bulletins/new")

    # 1. The content, with the video from this computer.
    # A 類別 picked while the boxes are empty fills in its suggestion, to edit or keep.
    page.select_option("select[name=category]", label="防詐騙")
    expect(page.locator("input[name=title]")).to_have_value("每週防詐騙提醒")
    expect(page.locator("textarea[name=text]")).to_contain_text("96110")
    page.fill("input[name=title]", TITLE)
    page.fill("textarea[name=text]", TEXT)
    # Once something is typed, another pick changes nothing that was typed.
    with page.expect_response(lambda r: "/console/bulletins/suggest" in r.url) as answered:
        page.select_option("select[name=category]", label="防火")
    assert answered.value.status == 204
    page.select_option("select[name=category]", label="防詐騙")
    expect(page.locator("input[name=title]")).to_have_value(TITLE)
    expect(page.locator("textarea[name=text]")).to_have_value(TEXT)
    page.set_input_files("input[name=media_file]", str(video))
    # 2. One town: 橋鎮派出所 (and so its groups), picked by name.
    page.get_by_label("按派出所").check()
    expect(page.locator(".when-groups")).to_be_hidden()  # only the chosen kind's picker
    page.locator(".when-stations label", has_text="橋鎮派出所").locator("input").check()
    # 3. Weekly, Mondays at 09:00.
    page.get_by_label("每週").check()
    expect(page.locator("input[name=date]")).to_be_hidden()
    page.locator("fieldset.days label", has_text="週一").locator("input").check()
    page.fill("input[name=time]", "09:00")
    page.screenshot(path=str(ARTIFACTS / "console-bulletin-form.png"), full_page=True)

    # The preview, before anything is saved.
    page.click("#preview-button")
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#preview-groups")).to_contain_text("橋鎮村警民群")
    expect(page.locator("#preview-groups")).to_contain_text("橋鎮社區警民群")
    expect(page.locator("#preview-groups")).not_to_contain_text("河西")
    expect(page.locator("#preview-runs time")).to_have_text(next_mondays(5))
    expect(page.locator("#preview-message")).to_contain_text(f"【{TITLE}】")
    expect(page.locator("#preview-media video")).to_have_count(1)
    expect(page.locator("#media-kept")).to_contain_text("已上傳:視頻")
    # The demo has no public address for uploads: the preview says so before saving.
    expect(page.locator("#preview-warnings")).to_contain_text("bulletins.public_base_url")
    page.screenshot(path=str(ARTIFACTS / "console-bulletin-preview.png"), full_page=True)

    page.click("#save-button")
    expect(page).to_have_url(re.compile(rf"{base}/console/bulletins/\d+\?done=created"))
    expect(page.locator("#done")).to_contain_text("公告已保存")
    expect(page.locator("#schedule")).to_have_text("每週一 09:00")
    elapsed = time.monotonic() - started
    page.screenshot(path=str(ARTIFACTS / "console-bulletin.png"), full_page=True)

    # The list: state, next send time, the groups it will reach.
    page.click("text=返回公告列表")
    row = page.locator("#bulletin-rows tbody tr").first
    expect(row).to_contain_text(TITLE)
    expect(row).to_contain_text("進行中")
    expect(row).to_contain_text(next_mondays(1)[0])
    expect(row).to_contain_text("橋鎮村警民群 等待首次發送")
    page.screenshot(path=str(ARTIFACTS / "console-bulletins.png"), full_page=True)

    # The same form on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/bulletins/new")
    expect(page.locator("#bf-schedule")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-bulletin-phone.png"), full_page=True)
    assert problems == []
    page.close()
    print(f"\nsigned in, scheduled and saved in {elapsed:.1f} s (the test's own speed)")
    assert elapsed < 120
