"""The console in a real headless Chromium (Debian's, driven by Playwright) against
`lianxin demo`: an admin signs in, filters the tickets, opens one and answers it; the answer
reaches the residents' group once. A leader opens the dispute register (糾紛台賬), finds the red
case on top, opens it and records a mediation. Screenshots go to ``test-artifacts/``.

Needs the ``playwright`` package and ``/usr/bin/chromium`` (``.ci/run`` installs it); skips
with the reason otherwise, as tests/test_browser.py does.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright package is not installed")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

import uvicorn  # noqa: E402
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from bot.demo import DemoAccount, build_demo_app  # noqa: E402
from tests.test_browser import CHROMIUM_ARGS, free_port  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
THEFT = "我家的電動車昨晚在樓下被偷了"
ANSWER = "已調取小區監控,請帶身份證到橋鎮派出所做筆錄"


@dataclass
class Demo:
    url: str
    accounts: dict[str, DemoAccount]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """`lianxin demo`'s server (worker and scheduler running) on a free loopback port."""
    app, _runtime = build_demo_app(tmp_path)
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
    yield Demo(f"http://127.0.0.1:{port}", {a.role: a for a in app.state.demo_accounts})
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def say(page: Page, base: str, who: str, group: str, text: str) -> None:
    """A resident writes in a group, through the simulator (a signed bridge event)."""
    answer = page.request.post(
        f"{base}/simulator/api/say",
        data=json.dumps({"as": who, "group_id": group, "text": text}),
        headers={"Content-Type": "application/json"},
    )
    assert answer.ok, answer.text()


def code_of(page: Page, base: str, text: str) -> str:
    tickets: list[dict[str, Any]] = page.request.get(f"{base}/simulator/api/tickets").json()
    return next(t["code"] for t in tickets if t["text"].startswith(text[:10]))


def bot_posts(page: Page, base: str, needle: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = page.request.get(f"{base}/simulator/api/history").json()
    return [e for e in history if e.get("kind") == "bot" and needle in (e.get("text") or "")]


def test_an_admin_signs_in_filters_opens_and_answers(demo: Demo, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # A script or style the page's CSP refused shows up as a console error.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    say(page, base, "wxid_yang", "grp-qiaozhen-01", THEFT)
    say(page, base, "wxid_liu", "grp-qiaozhen-01", "有人拿刀砍人,快來人")
    say(page, base, "wxid_yang", "grp-hexi-01", "請問辦身份證要帶什麼材料")
    say(page, base, "wxid_liu", "grp-qiaozhen-02", "小區門口的路燈壞了好幾天了,建議修一下")
    deadline = time.monotonic() + 10
    while len(page.request.get(f"{base}/simulator/api/tickets").json()) < 4:
        assert time.monotonic() < deadline, "the reports did not become tickets"
        time.sleep(0.1)
    code = code_of(page, base, THEFT)

    # Without a session the console sends the browser to the sign-in page.
    page.goto(f"{base}/console/tickets")
    expect(page).to_have_url(f"{base}/console/login")
    admin = demo.accounts["admin"]
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", admin.password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")
    expect(page.locator("#open-items .count")).to_have_text("4")
    expect(page.locator("#emergencies li")).to_have_count(1)
    assert page.evaluate("typeof htmx") == "object"
    page.screenshot(path=str(ARTIFACTS / "console-overview.png"), full_page=True)

    # 工單: reports (報警) of 橋鎮派出所.
    page.click("nav.nav >> text=工單")
    expect(page.locator("#ticket-rows tbody tr")).to_have_count(4)
    page.select_option("select[name=category]", "report")
    page.select_option("select[name=station]", label="橋鎮派出所")
    page.click("#filters button[type=submit]")
    rows = page.locator("#ticket-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-code="{code}"]')).to_contain_text("橋鎮村警民群")
    page.screenshot(path=str(ARTIFACTS / "console-tickets.png"), full_page=True)

    # Open the theft and answer it.
    page.click(f'tr[data-code="{code}"] a.code')
    expect(page).to_have_url(f"{base}/console/tickets/{code}")
    expect(page.locator("blockquote.words")).to_have_text(THEFT)
    page.fill("#answer textarea[name=text]", ANSWER)
    page.click("#answer button[type=submit]")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#timeline li[data-kind=answered]")).to_contain_text(ANSWER)
    page.screenshot(path=str(ARTIFACTS / "console-ticket.png"), full_page=True)

    # The residents' group gets the answer once, as `#CODE text` from the chat would put it.
    deadline = time.monotonic() + 10
    while not bot_posts(page, base, ANSWER):
        assert time.monotonic() < deadline, "the answer never reached the group"
        time.sleep(0.1)
    time.sleep(0.5)  # anything sent twice would have arrived by now
    [post] = bot_posts(page, base, ANSWER)
    assert post["text"].startswith(f"#{code} 民警縣局指揮中心答覆")
    assert post["group_id"] == "grp-qiaozhen-01"

    # The same console on a phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/")
    expect(page.locator(".menu-button")).to_be_visible()
    expect(page.locator("nav.nav")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "console-phone.png"), full_page=True)
    page.click(".menu-button")
    expect(page.locator("nav.nav")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-phone-menu.png"))
    assert problems == []
    page.close()


THREAT = "兩家為了宅基地鬧矛盾,對方放話要拼命,想請民警調解"  # 拼命: red suggested
LEAK = "樓上漏水泡了我家天花板,鄰居不肯賠,想請民警調解"
MEDIATION = "雙方到村委會當面溝通,約定下週再談"


def test_a_leader_opens_the_dispute_register_and_a_red_case(demo: Demo, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    say(page, base, "wxid_yang", "grp-qiaozhen-02", LEAK)
    say(page, base, "wxid_liu", "grp-qiaozhen-01", THREAT)
    deadline = time.monotonic() + 10
    while len(page.request.get(f"{base}/simulator/api/tickets").json()) < 2:
        assert time.monotonic() < deadline, "the reports did not become tickets"
        time.sleep(0.1)
    red = code_of(page, base, THREAT)
    blue = code_of(page, base, LEAK)

    page.goto(f"{base}/console/login")
    leader = demo.accounts["leader"]
    page.fill("input[name=username]", leader.username)
    page.fill("input[name=password]", leader.password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")

    # 糾紛台賬 from the navigation: both cases of 橋鎮, the red one on top.
    page.click("nav.nav >> text=糾紛台賬")
    expect(page).to_have_url(f"{base}/console/disputes")
    rows = page.locator("#dispute-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-code", red)
    expect(rows.first.locator(".badge.red")).to_have_text("紅色")
    expect(page.locator(f'tr[data-code="{blue}"]')).to_contain_text("橋鎮社區警民群")
    page.screenshot(path=str(ARTIFACTS / "console-disputes.png"), full_page=True)
    page.select_option("select[name=colour]", "red")
    page.click("#filters button[type=submit]")
    expect(rows).to_have_count(1)

    # The red case: its words, its history; a mediation recorded from the page.
    page.click(f'tr[data-code="{red}"] a.code')
    expect(page).to_have_url(f"{base}/console/disputes/{red}")
    expect(page.locator("#words blockquote.words")).to_have_text(THREAT)
    expect(page.locator("#history li[data-action=opened]")).to_be_visible()
    # Made red by its words when it opened: the page to 趙所長 is the system's act, not his.
    paged = page.locator("#history li[data-action=paged_leader]")
    expect(paged).to_contain_text("已通知所領導")
    expect(paged).not_to_contain_text("趙所長")
    page.fill("#mediate textarea[name=text]", MEDIATION)
    page.click("#mediate button[type=submit]")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#history li[data-action=mediated]")).to_contain_text(MEDIATION)
    page.screenshot(path=str(ARTIFACTS / "console-dispute.png"), full_page=True)

    # To its ticket and back.
    page.click("#ticket-link")
    expect(page).to_have_url(f"{base}/console/tickets/{red}")
    page.click("#dispute-link a")
    expect(page).to_have_url(f"{base}/console/disputes/{red}")

    # On a phone the register is one card per case.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/disputes")
    expect(page.locator("#dispute-rows tbody tr")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "console-disputes-phone.png"), full_page=True)
    assert problems == []
    page.close()


def test_a_leader_reads_the_statistics_charts(demo: Demo, browser: Browser) -> None:
    """統計 over the demo's seeded month: every chart drawn (a canvas), no script error or CSP
    refusal, a bar leads to the tickets behind it, the report downloads."""
    ARTIFACTS.mkdir(exist_ok=True)
    base = demo.url
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    page.goto(f"{base}/console/login")
    leader = demo.accounts["leader"]
    page.fill("input[name=username]", leader.username)
    page.fill("input[name=password]", leader.password)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{base}/console/")

    page.click("nav.nav >> text=統計")
    expect(page).to_have_url(f"{base}/console/stats")
    charts = page.locator("div.chart[data-chart]")
    expect(charts).to_have_count(5)
    for index in range(5):
        chart = charts.nth(index)
        expect(chart).to_have_attribute("data-drawn", "1")
        expect(chart.locator("canvas")).to_have_count(1)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    assert page.evaluate("typeof echarts") == "object"
    # The seeded month is not empty: visits and items were counted.
    assert int(page.locator('td[data-key="visits.count"]').inner_text()) > 0
    assert page.locator("#chart-coverage tbody tr").count() > 0
    page.screenshot(path=str(ARTIFACTS / "console-stats.png"), full_page=True)

    # Click the tallest bar of the first kind (the bottom of its stack): the 工單 list of that
    # week and kind.
    target = page.evaluate(
        """() => {
        const el = document.querySelector('#chart-items div.chart');
        const spec = JSON.parse(el.getAttribute('data-chart'));
        const chart = echarts.getInstanceByDom(el);
        const data = spec.series[0].data;
        const i = data.indexOf(Math.max(...data));
        if (!(data[i] > 0)) { return null; }
        const [x, y] = chart.convertToPixel({seriesIndex: 0}, [i, data[i] / 2]);
        return {x, y, link: spec.series[0].links[i]};
      }"""
    )
    if target is not None:
        page.locator("#chart-items div.chart").scroll_into_view_if_needed()
        box = page.locator("#chart-items div.chart").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
        page.wait_for_url(f"{base}{target['link']}")
        expect(page.locator("#ticket-rows tbody tr").first).to_be_visible()
        page.go_back()
        expect(page).to_have_url(f"{base}/console/stats")

    # The month's report.
    with page.expect_download() as download:
        page.click("#report-download")
    path = download.value.path()
    assert download.value.suggested_filename.startswith("lianxin-report-")
    from openpyxl import load_workbook

    assert len(load_workbook(io.BytesIO(path.read_bytes())).worksheets) == 5
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/stats")
    expect(page.locator("div.chart[data-drawn]")).to_have_count(5)
    page.screenshot(path=str(ARTIFACTS / "console-stats-phone.png"), full_page=True)
    assert problems == []
    page.close()
