"""The 組織 page in a real headless Chromium (Debian's, driven by Playwright) against
`lianxin demo`: the leader of 橋鎮派出所 opens the tree and the station's week, adds a
Saturday duty slot and gives 橋鎮社區警民群 to 王警官; the admin then uploads a directory file,
sees its changes by name — with the leader's console edit it would undo marked — applies it and
finds the new station in the tree. Screenshots go to ``test-artifacts/``.

Needs the ``playwright`` package and ``/usr/bin/chromium``; skips with the reason otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from tests.test_browser import CHROMIUM_ARGS  # noqa: E402
from tests.test_console_browser import ARTIFACTS, Demo, demo  # noqa: E402

_ = demo  # the fixture
DEMO_DIRECTORY = Path(__file__).resolve().parents[1] / "bot" / "demo" / "directory.yaml"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")


def test_a_leader_edits_the_roster_and_an_admin_uploads_a_directory(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    leader = demo.accounts["leader"]
    sign_in(page, base, leader.username, leader.password)

    # 組織: the leader's station, its people (on duty or not) and groups.
    page.click("nav.nav >> text=組織")
    expect(page).to_have_url(f"{base}/console/organisation")
    tree = page.locator("#org-tree")
    expect(tree).to_contain_text("橋鎮派出所")
    expect(tree).not_to_contain_text("河西")
    expect(tree).to_contain_text("橋鎮社區警民群")
    expect(tree.locator(".badge.ok")).to_have_count(1)  # one officer on duty now
    page.screenshot(path=str(ARTIFACTS / "console-org-tree.png"), full_page=True)

    # The station's week; a Saturday morning slot for 李警官.
    page.click("#org-tree >> text=值班表和詳情")
    expect(page.locator("#week .org-day")).to_have_count(7)
    form = page.locator("#add-slot")
    form.locator("select[name=officer]").select_option(label="李警官(橋鎮派出所)")
    form.locator("label", has_text="週六").locator("input").check()
    form.locator("input[name=from]").fill("09:00")
    form.locator("input[name=to]").fill("12:00")
    form.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_contain_text("已新增班次")
    saturday = page.locator("#week .org-day").nth(5)
    expect(saturday).to_contain_text("09:00–12:00")
    expect(saturday).to_contain_text("李警官")

    # 橋鎮社區警民群 to 王警官.
    row = page.locator("#groups tr", has_text="橋鎮社區警民群")
    row.locator("select[name=officer]").select_option(label="王警官(橋鎮派出所)")
    row.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_contain_text("已更換群的負責民警")
    page.screenshot(path=str(ARTIFACTS / "console-org-week.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    # On a phone the header's account block folds away; the roster's names must not.
    slot = saturday.locator(".org-slot", has_text="09:00–12:00")
    expect(slot.get_by_text("李警官")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-org-week-phone.png"), full_page=True)

    # The admin uploads the demo's directory with a new station: the preview says that the
    # file puts 李警官 back on 橋鎮社區警民群, undoing the leader's edit.
    text = DEMO_DIRECTORY.read_text(encoding="utf-8").replace(
        "  - {id: hexi, name: 河西派出所, parent: county}",
        "  - {id: hexi, name: 河西派出所, parent: county}\n"
        "  - {id: dongshan, name: 東山派出所, parent: county}",
    )
    upload = tmp_path / "目錄.yaml"
    upload.write_text(text, encoding="utf-8")
    admin_page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    admin_page.on("pageerror", lambda exc: problems.append(str(exc)))
    admin = demo.accounts["admin"]
    sign_in(admin_page, base, admin.username, admin.password)
    admin_page.goto(f"{base}/console/organisation")
    admin_page.click("#upload-link")
    admin_page.set_input_files("#upload-form input[name=file]", str(upload))
    admin_page.click("#upload-form button[type=submit]")
    preview = admin_page.locator("#preview")
    expect(preview).to_contain_text("東山派出所")
    expect(preview).to_contain_text("負責民警:王警官 → 李警官")
    expect(preview).to_contain_text("橋鎮派出所 · 李警官 · 週六 · 09:00–12:00")
    expect(admin_page.locator("#undoes")).to_contain_text("會蓋過在控制台做的修改")
    admin_page.screenshot(path=str(ARTIFACTS / "console-org-upload-preview.png"), full_page=True)
    admin_page.click("#apply")
    expect(admin_page).to_have_url(f"{base}/console/organisation?done=loaded")
    expect(admin_page.locator("#org-tree")).to_contain_text("東山派出所")
    admin_page.screenshot(path=str(ARTIFACTS / "console-org.png"), full_page=True)
    assert problems == []
