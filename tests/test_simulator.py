"""The demo's ``/simulator`` through the ASGI app: real signed bridge events in, the simulated
bridge and the event stream out, the SMS inbox, and a page that loads nothing from elsewhere."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import create_app, make_worker
from bot.channels.simulated import SimulatedBridge
from bot.demo import build_demo_app
from bot.runtime import Runtime
from bot.web.simulator import SimulatorHub, event_stream, hub_of
from tests.harness import Harness, SettledTransport

GROUP = "grp-qiaozhen-01"
REPORT = "我家的電動車昨晚在樓下被偷了"


class Demo:
    """The demo app over ASGI, its runtime, and the delivery worker driven by hand."""

    def __init__(self, folder: Path) -> None:
        self.app, self.runtime = build_demo_app(folder, background=False)
        self.client = httpx.AsyncClient(
            transport=SettledTransport(app=self.app), base_url="http://demo"
        )
        self.worker = make_worker(self.runtime)

    @property
    def bridge(self) -> SimulatedBridge:
        return self.hub.bridge

    @property
    def hub(self) -> SimulatorHub:
        hub = hub_of(self.app)
        assert hub is not None
        return hub

    async def say(self, sender: str, text: str, group: str | None = GROUP) -> dict[str, Any]:
        """Type as ``sender`` on the page, then let the worker deliver the bot's answers."""
        r = await self.client.post(
            "/simulator/api/say", json={"as": sender, "group_id": group, "text": text}
        )
        assert r.status_code == 200, r.text
        await self.worker.drain()
        return r.json()  # type: ignore[no-any-return]

    async def officer_on(self, code: str) -> str:
        """The wechat id of the officer a ticket is assigned to (the roster follows the clock)."""
        tickets = (await self.client.get("/simulator/api/tickets")).json()
        people = (await self.client.get("/simulator/api/people")).json()
        [ticket] = [t for t in tickets if t["code"] == code]
        [officer] = [o for o in people["officers"] if o["nickname"] == ticket["assignee"]]
        return str(officer["id"])


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    d = Demo(tmp_path)
    yield d
    await d.client.aclose()
    await d.runtime.aclose()


def code_in(text: str) -> str:
    match = re.search(r"#([A-Z]\d{4,6})", text)
    assert match, text
    return match.group(1)


async def never_disconnected() -> bool:
    return False


async def next_bot_event(stream: AsyncIterator[str], group: str) -> dict[str, Any]:
    """Read server-sent events until the bot says something in ``group``."""
    import json

    while True:
        chunk = await asyncio.wait_for(anext(stream), 5)
        if chunk.startswith("data: "):
            event = json.loads(chunk[len("data: ") :])
            if event["kind"] == "bot" and event["group_id"] == group:
                return event  # type: ignore[no-any-return]


async def test_report_is_acknowledged_with_code_and_officer_answer_reaches_group(
    demo: Demo,
) -> None:
    answer = await demo.say("wxid_yang", REPORT)
    assert answer["status"] == 200 and answer["bridge"] == {"ok": True}  # real check passed
    [ack] = [s for s in demo.bridge.sent if s.group_id == GROUP]
    assert ack.payload["mentions"] == ["wxid_yang"]
    code = code_in(ack.payload["text"])
    history = (await demo.client.get("/simulator/api/history")).json()
    assert [e["kind"] for e in history if e["group_id"] == GROUP] == ["user", "bot"]
    assert history[0]["sender"] == {"id": "wxid_yang", "nickname": "楊大爺"}

    [ticket] = (await demo.client.get("/simulator/api/tickets")).json()
    assert (ticket["code"], ticket["status"], ticket["priority"]) == (code, "new", 2)
    assert ticket["assignee"] in {"王警官", "李警官"} and ticket["ack_due_at"]

    stream = event_stream(demo.hub, never_disconnected)
    assert await anext(stream) == "retry: 2000\n\n"  # subscribed from here on
    officer = await demo.officer_on(code)
    await demo.say(officer, f"#{code} 已調取監控,請到派出所做筆錄", group=None)
    event = await next_bot_event(stream, GROUP)
    assert f"#{code}" in event["text"] and "調取監控" in event["text"]
    assert event["mentions"] == ["wxid_yang"]
    await stream.aclose()
    assert demo.hub.listeners == []  # a closed stream unsubscribes
    [ticket] = (await demo.client.get("/simulator/api/tickets")).json()
    assert ticket["status"] == "answered"


async def test_unverified_resident_verifies_with_code_from_sms_inbox(demo: Demo) -> None:
    await demo.say("wxid_zhou", "我家的雞被人偷了三隻")
    assert (await demo.client.get("/simulator/api/tickets")).json() == []  # held until verified
    await demo.say("wxid_zhou", "實名 周小明 13700001111", group=None)
    [sms] = [e for e in demo.hub.history if e["kind"] == "sms"]
    assert sms["phone"] == "137****1111" and "13700001111" not in sms["text"]
    code = re.search(r"\d{6}", sms["text"])
    assert code, sms
    await demo.say("wxid_zhou", code.group(0), group=None)
    private = [s.payload["text"] for s in demo.bridge.sent if s.user_id == "wxid_zhou"]
    assert any("成功" in text for text in private), private


async def test_newcomer_and_bad_input(demo: Demo) -> None:
    r = await demo.client.post(
        "/simulator/api/say",
        json={"as": "wxid_new_x1", "nickname": "新鄰居1", "group_id": GROUP, "text": "大家好"},
    )
    assert r.status_code == 200 and r.json()["status"] == 200
    assert demo.hub.people["wxid_new_x1"] == "新鄰居1"
    bad = await demo.client.post("/simulator/api/say", json={"as": "a b", "text": "x"})
    assert bad.status_code == 422
    empty = await demo.client.post("/simulator/api/say", json={"as": "wxid_yang", "text": ""})
    assert empty.status_code == 422


async def test_people_lists_directory_and_demo_residents(demo: Demo) -> None:
    people = (await demo.client.get("/simulator/api/people")).json()
    assert {g["id"] for g in people["groups"]} == {
        "grp-qiaozhen-01",
        "grp-qiaozhen-02",
        "grp-hexi-01",
    }
    assert {o["id"] for o in people["officers"]} >= {"wxid_wang", "wxid_zhao"}
    verified = {r["nickname"]: r["verified"] for r in people["residents"]}
    assert verified == {"楊大爺": True, "劉阿姨": True, "小周": False}
    assert set(people["bulletins"]) == {"enabled", "note"}


async def test_bulletin_button_schedules_through_admin_api_or_explains(demo: Demo) -> None:
    status = (await demo.client.get("/simulator/api/people")).json()["bulletins"]
    r = await demo.client.post("/simulator/api/bulletin")
    if status["enabled"]:
        assert r.status_code == 200, r.text
        assert r.json()["id"]
    else:
        assert r.status_code == 409 and r.json()["detail"] == status["note"]


async def test_page_and_assets_are_served_with_nothing_from_elsewhere(demo: Demo) -> None:
    page = await demo.client.get("/simulator")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', page.text) if r != "data:,"]
    assert refs and all(ref.startswith("/simulator/static/") for ref in refs), refs
    bodies = [page.text]
    for ref in refs:
        asset = await demo.client.get(ref)
        assert asset.status_code == 200, ref
        bodies.append(asset.text)
    assert any("EventSource" in b for b in bodies)
    for body in bodies:
        assert not re.search(r"https?://", body), "the simulator must not load anything remote"
        assert "//cdn" not in body and "@import" not in body
    assert (await demo.client.get("/simulator/static/..%2Fweb%2Fapi.py")).status_code == 404
    assert (await demo.client.get("/simulator/static/secret.txt")).status_code == 404


async def test_serve_does_not_mount_the_simulator(harness: Harness) -> None:
    for path in ("/simulator", "/simulator/api/people", "/simulator/api/stream"):
        assert (await harness.client.get(path)).status_code == 404


async def test_runtime_has_no_simulator_outside_the_demo(harness: Harness) -> None:
    runtime: Runtime = harness.runtime
    assert hub_of(create_app(runtime, background=False, close_runtime=False)) is None
