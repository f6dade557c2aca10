"""The simulator in a real headless Chromium: report as a resident, answer as the officer.

Needs the ``playwright`` Python package and a Chromium at ``/usr/bin/chromium`` (Debian's
``chromium`` package; Playwright's own browser download is never used). Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

import uvicorn  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from bot.demo import build_demo_app  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORT = "我家的電動車昨晚在樓下被偷了"
ANSWER = "已調取監控,請到派出所做筆錄"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo_url(tmp_path: Path) -> Iterator[str]:
    """The demo server (worker and scheduler running) on a free loopback port."""
    app, _ = build_demo_app(tmp_path)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "demo server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def officer_for(page: Page, base: str, code: str) -> str:
    """The wechat id of the officer the ticket went to (the roster depends on the hour)."""
    tickets: list[dict[str, Any]] = page.request.get(f"{base}/simulator/api/tickets").json()
    people: dict[str, Any] = page.request.get(f"{base}/simulator/api/people").json()
    [ticket] = [t for t in tickets if t["code"] == code]
    return next(o["id"] for o in people["officers"] if o["nickname"] == ticket["assignee"])


def test_report_and_answer_in_the_browser(demo_url: str, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-TW")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{demo_url}/simulator")
    expect(page.locator("#live.ok")).to_be_visible(timeout=10_000)

    # A verified resident reports in the village group.
    page.select_option("#group-as", "wxid_yang")
    page.fill("#group-text", REPORT)
    page.click("#group-form button[type=submit]")
    group = page.locator("#group-messages")
    expect(group.locator(".msg.mine .bubble", has_text=REPORT)).to_be_visible()
    ack = group.locator(".from-bot .bubble", has_text="編號")
    expect(ack).to_be_visible(timeout=10_000)
    code = re.search(r"#([A-Z]\d{4,6})", ack.inner_text())
    assert code, ack.inner_text()
    expect(ack.locator(".mention")).to_have_text("@楊大爺")
    expect(page.locator("#tickets .ticket .code").first).to_have_text(f"#{code.group(1)}")

    # The officer on duty answers privately with #CODE; the answer lands in the group.
    page.select_option("#private-as", officer_for(page, demo_url, code.group(1)))
    expect(page.locator("#private-messages .from-bot .bubble", has_text="新事項")).to_be_visible()
    page.fill("#private-text", f"#{code.group(1)} {ANSWER}")
    page.click("#private-form button[type=submit]")
    answer = group.locator(".from-bot .bubble", has_text=ANSWER)
    expect(answer).to_be_visible(timeout=10_000)
    expect(answer).to_contain_text(f"#{code.group(1)}")
    expect(page.locator("#tickets .ticket .status").first).to_have_text("已答覆", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "simulator.png"))

    # The same page on a phone: tabs between group chat, private chat and tickets.
    page.set_viewport_size({"width": 375, "height": 812})
    expect(page.locator(".tabs")).to_be_visible()
    expect(answer).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "simulator-phone.png"))
    page.click(".tabs button[data-tab=side]")
    expect(page.locator("#side-pane")).to_be_visible()
    expect(page.locator("#group-pane")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "simulator-phone-tickets.png"))
    assert errors == []
    page.close()
