"""The 緊急通報 page in a real headless Chromium (Debian's, driven by Playwright) against
`lianxin demo`: a leader signs in, writes a lost-child notice with a photo chosen on this
computer, picks 橋鎮派出所 by name, sees the groups it will reach, sends it, and watches the
deliveries arrive on the page as it refreshes itself; a resident's clue appears linked to its
ticket; the leader recalls the notice. Screenshots go to ``test-artifacts/``.

Needs the ``playwright`` package and ``/usr/bin/chromium``; skips with the reason otherwise.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, expect, sync_playwright  # noqa: E402

from tests.test_browser import CHROMIUM_ARGS  # noqa: E402
from tests.test_console_browser import ARTIFACTS, Demo, demo, say  # noqa: E402

_ = demo  # the fixture
LOST = "尋找走失兒童:男孩,6歲,身高約1.1米,穿紅色外套、藍色褲子,下午3點在橋鎮廣場走失。"
CLUE = "我十分鐘前在橋頭看到一個穿紅色外套的男孩,一個人往河邊走"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def png(width: int, height: int) -> bytes:
    """A real PNG picture (a red coat on a grey ground), so that the page shows a photo."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            coat = width // 3 < x < 2 * width // 3 and height // 4 < y < 3 * height // 4
            row += bytes((200, 30, 40) if coat else (210, 214, 220))
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def test_a_leader_sends_a_notice_with_a_photo_and_watches_it_arrive(
    demo: Demo, browser: Browser, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    photo = tmp_path / "孩子照片.png"
    photo.write_bytes(png(160, 120))
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    page.goto(f"{base}/console/")
    leader = demo.accounts["leader"]
    page.fill("input[name=username]", leader.username)
    page.fill("input[name=password]", leader.password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")

    page.click("nav.nav >> text=緊急通報")
    expect(page).to_have_url(f"{base}/console/alerts")
    page.click("#new-alert")
    page.fill("textarea[name=text]", LOST)
    page.set_input_files("input[name=media_file]", str(photo))
    page.get_by_label("按派出所").check()
    expect(page.locator(".when-groups")).to_be_hidden()
    page.locator(".when-stations label", has_text="橋鎮派出所").locator("input").check()

    # The groups reached, before anything is sent.
    page.click("#preview-button")
    groups = page.locator("#preview-groups")
    expect(groups).to_contain_text("橋鎮村警民群")
    expect(groups).to_contain_text("橋鎮社區警民群")
    expect(groups).not_to_contain_text("河西")
    expect(page.locator("#preview-media img")).to_have_count(1)
    expect(page.locator("#media-kept")).to_contain_text("已上傳:圖片")
    page.screenshot(path=str(ARTIFACTS / "console-alert-preview.png"), full_page=True)

    page.click("#send-button")
    expect(page).to_have_url(re.compile(rf"{base}/console/alerts/\d+\?done=sent"))
    expect(page.locator("#done")).to_contain_text("緊急通報已發出")
    # The page refreshes itself: both groups turn to 已送達 without a reload.
    sent = page.locator("#delivery-rows tr.gs.sent")
    expect(sent).to_have_count(2, timeout=20_000)
    expect(page.locator("#alert-media img")).to_have_count(1)
    # Residents in the simulator's group chat see the photo itself, not a video card.
    chat = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-TW")
    chat.goto(f"{base}/simulator")
    card = chat.locator("#group-messages .from-bot .media", has=chat.locator("img.photo"))
    expect(card).to_have_count(1, timeout=10_000)
    expect(card.locator("img.photo")).to_have_js_property("complete", True)
    assert card.locator("img.photo").evaluate("i => i.naturalWidth") == 160
    expect(chat.locator("#group-messages .media")).not_to_contain_text("視頻")
    chat.screenshot(path=str(ARTIFACTS / "simulator-alert-photo.png"))
    chat.close()

    # A resident answers in the group: the clue appears, linked to its ticket.
    say(page, base, "wxid_clue", "grp-qiaozhen-01", CLUE)
    clue = page.locator("#clues li a.code")
    expect(clue).to_have_count(1, timeout=20_000)
    expect(page.locator("#clues")).to_contain_text("往河邊走")
    page.screenshot(path=str(ARTIFACTS / "console-alert.png"), full_page=True)
    code = clue.inner_text().lstrip("#")

    # Recall: the box must be ticked; the groups that had it are told why.
    page.fill("input[name=reason]", "孩子已經找到,感謝大家")
    page.check("input[name=confirm]")
    page.click("#recall-button")
    expect(page).to_have_url(re.compile(rf"{base}/console/alerts/\d+\?done=recalled"))
    expect(page.locator("h1 .astate")).to_have_text("已撤回")
    expect(page.locator("#followups")).to_contain_text("撤回通知")

    page.click(f"#clues a.code >> text=#{code}")
    expect(page).to_have_url(f"{base}/console/tickets/{code}")
    expect(page.locator("blockquote.words")).to_have_text(CLUE)
    assert problems == []
    page.close()
