"""``lianxin serve`` with its processing process (issue 17, bot/pipeline_link.py): the real
server on loopback, the fake world as the bridge and WeChat's API, wechatpy as WeChat.

The server accepts; its child journals, processes, delivers. What a user of the server can
tell: events are answered and handled as in one process, passive replies still ride in the
response, ``/readyz`` and ``/metrics`` speak for the child, and the child's death costs a few
503s that the senders' retries make good, never an event.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.messages import InboundMessage
from bot.pipeline_link import ProcessorFailed, ProcessorLink, ProcessorUnavailable
from bot.services.tokens import create_token
from models.journal import InboundEvent
from models.tickets import Ticket
from tests.console_support import add_accounts, sign_in
from tests.fakes import FakeWorld
from tests.harness import API_SEND, Harness
from tests.serving import answers, running

ROOT = Path(__file__).resolve().parents[1]
GROUP = "grp-qiaozhen-01"


def _env_of(h: Harness, **extra: str) -> dict[str, str]:
    """The harness's settings as ``lianxin serve`` reads them: from the environment."""
    s = h.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIANXIN")}
    values = {
        "database.url": s.database.url,
        "bridge.secret": s.bridge.secret.get_secret_value(),
        "bridge.send_url": s.bridge.send_url,
        "bridge.send_interval_s": "0",
        "security.pii_key": s.security.pii_key.get_secret_value(),
        "wechat.token": s.wechat.token.get_secret_value(),
        "wechat.encoding_aes_key": s.wechat.encoding_aes_key.get_secret_value(),
        "wechat.app_id": s.wechat.app_id,
        "wechat.app_secret": s.wechat.app_secret.get_secret_value(),
        "wechat.original_id": s.wechat.original_id,
        "wechat.api_base_url": s.wechat.api_base_url,
        "wechat.reply_mode": s.wechat.reply_mode,
        "sms.provider": "http",
        "sms.url": str(s.sms.url),
    }
    for name, value in values.items():
        section, key = name.split(".")
        env[f"LIANXIN__{section.upper()}__{key.upper()}"] = str(value)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@contextmanager
def _serving(
    h: Harness, cwd: Path, *, own_group: bool = False, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real ``lianxin serve`` on the harness's database; yields its URL once ready.
    ``own_group``: in a process group of its own, as a service manager starts it."""
    with running(["serve"], cwd, _env_of(h, **env), ready="/readyz", own_group=own_group) as served:
        yield served


def _ready(base: str) -> bool:
    return answers(f"{base}/readyz")


def _wait(
    condition: Callable[[], bool],
    message: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, message
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


async def _until(condition: Callable[[], Any], message: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.05)


async def _count(h: Harness, statement: Any) -> int:
    async with h.runtime.sessions() as s:
        return int(await s.scalar(statement) or 0)


async def _post_until_taken(h: Harness, client: httpx.AsyncClient, body: dict[str, Any]) -> int:
    """Post as the bridge does: again after a 503 (or a refused connection), until taken.
    Returns how many times it was refused."""
    refused = 0
    while True:
        try:
            response = await _post(h, client, body)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            return refused
        assert response is None or response.status_code == 503, response.text
        refused += 1
        await asyncio.sleep(0.2)


async def _post(h: Harness, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    import json

    from bot.channels.bridge import signed_headers
    from tests.harness import BRIDGE_SECRET

    raw = json.dumps(body, ensure_ascii=False).encode()
    return await client.post(
        "/bridge/events", content=raw, headers=signed_headers(BRIDGE_SECRET, raw, h.clock.now())
    )


async def _directory_and_admin(h: Harness) -> str:
    """Load the test directory; an admin token for the API."""
    await h.load_directory()
    async with h.runtime.sessions.begin() as s:
        return await create_token(s, role="admin", name="ops", now=h.clock.now())


async def test_the_child_processes_and_delivers_and_the_status_routes_speak_for_it(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    h = harness
    admin = await _directory_and_admin(h)
    with _serving(h, tmp_path) as (base, server):
        (child,) = _children(server.pid)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            ready = (await client.get("/readyz")).json()
            assert ready["processor"] == "up" and ready["database"] == "up", ready
            body = h.bridge_body("小区门口有人持刀打人，快来", group=GROUP)
            response = await _post(h, client, body)
            assert response.status_code == 200, response.text
            # The emergency's safety reply reaches the group through the child's urgent lane.
            await _until(
                lambda: _async(bool(h.to_group(GROUP))),
                f"no reply to {GROUP}: {world.state.sends()}",
            )
            assert await _count(h, select(func.count()).select_from(Ticket)) == 1
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
            assert metrics.status_code == 200
            assert 'lianxin_events_received_total{channel="bridge"} 1.0' in metrics.text
            assert 'lianxin_events_processed_total{channel="bridge",status="handled"} 1.0' in (
                metrics.text
            )
            # The journal was written by the child: it runs the emergency check.
            async with h.runtime.sessions() as s:
                flagged = await s.scalar(select(InboundEvent.emergency))
            assert flagged is True
    # Stopping the server stops its child.
    _wait(
        lambda: not Path(f"/proc/{child}").exists(), f"child {child} outlived the server", None, 20
    )


async def _async(value: Any) -> Any:
    return value


async def test_a_killed_child_costs_retries_never_an_event(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    h = harness
    await h.load_directory()
    with _serving(h, tmp_path) as (base, server):
        (first,) = _children(server.pid)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            bodies = [h.bridge_body(f"第{i}号楼电梯坏了好几天了", group=GROUP) for i in range(120)]
            taken: list[int] = []  # how often each was refused before it was taken

            async def bridge(mine: list[dict[str, Any]]) -> None:
                for body in mine:
                    taken.append(await _post_until_taken(h, client, body))
                    if len(taken) == 40:  # mid-stream: the others are posting now
                        os.kill(first, signal.SIGKILL)

            await asyncio.gather(*(bridge(bodies[i::4]) for i in range(4)))
            assert sum(taken) >= 1, "no request met the restart"
            # Started again: a new child, ready.
            _wait(lambda: _ready(base), "the child was not started again", server)
            (second,) = _children(server.pid)
            assert second != first
            journaled = select(func.count()).select_from(InboundEvent)
            unprocessed = journaled.where(InboundEvent.processed_at.is_(None))
            await _until(
                lambda: _count_is(h, unprocessed, 0), "events left unprocessed after the restart"
            )
            # Every event once: retried events are not journaled twice.
            assert await _count(h, journaled) == len(bodies)
        assert "the processing process ended" in (tmp_path / "server.log").read_text()


async def _count_is(h: Harness, statement: Any, n: int) -> bool:
    return await _count(h, statement) == n


@pytest.mark.both_reply_modes
async def test_a_wechat_message_is_answered_through_the_child(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    h = harness
    await h.load_directory()
    with _serving(h, tmp_path) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            response = await h.post_wechat_safe(h.wechat_text_xml("你好"), client=client)
            assert response.status_code == 200, response.text
            if h.passive:
                reply = h.decrypt_reply(response)
                assert reply["ToUserName"] == "o_resident" and reply["Content"]
            else:
                assert response.text == "success"
                await _until(
                    lambda: _async(
                        any(
                            r.json()["touser"] == "o_resident"
                            for r in world.state.by_path(API_SEND)
                        )
                    ),
                    "no reply through the customer-service API",
                )


async def test_a_channel_the_child_marks_down_shows_in_the_servers_console_and_readiness(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    h = harness
    await h.load_directory()
    await add_accounts(h)
    with _serving(h, tmp_path) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await sign_in(client, "zhao")).status_code == 303
            world.state.send_script.extend([503] * 20)
            for sender, text in (
                ("wxid_yang", "請問晚上派出所有人值班嗎"),
                ("wxid_liu", "請問辦證要多久"),
            ):
                body = h.bridge_body(text, sender=sender, group=GROUP)
                assert (await _post(h, client, body)).status_code == 200
            body = h.bridge_body("請問在哪裡交罰款", sender="wxid_he", group="grp-hexi-01")
            assert (await _post(h, client, body)).status_code == 200

            async def marked_down() -> bool:
                ready = await client.get("/readyz")
                # Named, still 200: a channel down does not take the instance out.
                return ready.status_code == 200 and ready.json().get("bridge") == "down"

            # The child sends and sees the failures; /readyz asks it.
            await _until(marked_down, "the bridge was not marked down")

            async def shown_down() -> bool:
                panel = (await client.get("/console/overview/panel")).text
                return '<tr class="channel down" data-channel="bridge">' in panel

            # This process's console shows the child's view within a second or so.
            await _until(shown_down, "the console did not show the bridge down", within_s=10)


async def test_a_message_the_server_queues_is_sent_by_the_child_at_once(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    # The child's delivery worker would look for it only after its 30 s poll: the server's
    # wake-up reaches it over the link.
    h = harness
    admin = await _directory_and_admin(h)
    with _serving(h, tmp_path, LIANXIN__OUTBOX__POLL_INTERVAL_S="30") as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await client.post(
                "/api/v1/alerts",
                json={"scope": {"groups": [GROUP]}, "text": "寻找走失儿童"},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert created.status_code == 201, created.text
            await _until(lambda: _async(bool(h.to_group(GROUP))), "the notice waited", within_s=10)


async def test_a_processing_process_that_cannot_start_stops_the_server_start(
    harness: Harness,
) -> None:
    link = ProcessorLink(
        harness.runtime, [sys.executable, "-c", "import sys; sys.exit(3)"], start_timeout_s=30
    )
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        await link.start()
    assert time.monotonic() - started < 20  # at its exit, not after the whole timeout
    assert link.pid is not None and link._process is not None
    assert link._process.returncode == 3


# The real processing process, as `serve` starts it: it takes the harness's settings from the
# link, whatever the environment or the working folder hold.
CHILD = [sys.executable, "-m", "bot.processor_process"]


@asynccontextmanager
async def _linked(h: Harness, **options: Any) -> AsyncIterator[ProcessorLink]:
    """A started :class:`ProcessorLink` over the harness's runtime, stopped afterwards."""
    link = ProcessorLink(h.runtime, CHILD, **options)
    await link.start()
    try:
        yield link
    finally:
        await link.stop()


async def test_a_retry_after_the_child_died_gets_the_passive_reply_already_committed(
    harness: Harness, world: FakeWorld
) -> None:
    # The child committed a reply as passive (status sent, sent_via passive) and its answer did
    # not reach WeChat (the child died, the connection broke). WeChat retries: the retry, taken
    # by a new child, is answered with that same reply; nothing else would send it.
    h = harness
    await h.load_directory()
    async with _linked(h, restart_after_s=0.1) as link:
        now = datetime.now().astimezone()
        event = InboundMessage(
            channel="wechat",
            dedup_key="wechat:msg-1",
            kind="message",
            sender_id="o_resident",
            occurred_at=now,
            text="你好",
        )
        until = now + timedelta(seconds=60)
        first = await link.accept_with_reply(event, passive_until=until)
        assert first is not None and first.sent_via == "passive"
        assert link.pid is not None
        os.kill(link.pid, signal.SIGKILL)
        retry = None
        for _ in range(200):  # until the new child takes it
            try:
                retry = await link.accept_with_reply(event, passive_until=until)
                break
            except ProcessorUnavailable:
                await asyncio.sleep(0.1)
        assert retry is not None, "the committed passive reply was not answered again"
        assert retry.id == first.id
        assert h.runtime.cipher.decrypt_json(retry.payload_enc)["text"]


async def test_a_request_in_flight_when_the_whole_group_is_stopped_is_still_answered(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    # A service manager (systemd's default) sends SIGTERM to every process of the service at
    # once. The server finishes the requests it has begun before it closes the socket; its
    # processing process must still be there to journal them, and must not be started again.
    import json

    from bot.channels.bridge import signed_headers
    from tests.harness import BRIDGE_SECRET

    h = harness
    await h.load_directory()
    raw = json.dumps(h.bridge_body("請問辦證要多久", group=GROUP), ensure_ascii=False).encode()
    headers = signed_headers(BRIDGE_SECRET, raw, h.clock.now())
    with _serving(h, tmp_path, own_group=True) as (base, server):
        (child,) = _children(server.pid)
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST /bridge/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(raw)}\r\n"
            f"{head}\r\n".encode()
            + raw[:10]
        )
        await writer.drain()
        await asyncio.sleep(0.5)  # the server is reading the body
        os.killpg(server.pid, signal.SIGTERM)
        await asyncio.sleep(2)  # longer than the server waits before starting a child again
        writer.write(raw[10:])
        await writer.drain()
        status = (await asyncio.wait_for(reader.readline(), 20)).decode()
        writer.close()
        assert " 200 " in status, status
        # Then both end (uvicorn ends by the signal it was sent), the child first.
        await asyncio.get_running_loop().run_in_executor(None, server.wait, 20)
        _wait(lambda: not Path(f"/proc/{child}").exists(), f"child {child} outlived it", None, 1)
    log = (tmp_path / "server.log").read_text()
    assert "starting it again" not in log, log
    assert await _count(h, select(func.count()).select_from(InboundEvent)) == 1


async def test_a_child_stopped_alone_is_started_again(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    # Sent to the child alone, SIGTERM ends it (a second one at once, the first after a
    # grace), and the server, which is not stopping, starts a new one.
    h = harness
    await h.load_directory()
    with _serving(h, tmp_path) as (base, server):
        (first,) = _children(server.pid)
        os.kill(first, signal.SIGTERM)
        await asyncio.sleep(0.5)  # two signals at once would arrive as one
        os.kill(first, signal.SIGTERM)
        started = time.monotonic()
        _wait(lambda: _children(server.pid) not in ([], [first]), "not started again", server)
        assert time.monotonic() - started < 5  # not after the grace
        _wait(lambda: _ready(base), "the new child is not ready", server)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await _post(h, client, h.bridge_body("你好", group=GROUP))).status_code == 200


async def test_a_stuck_child_is_killed_and_started_again(harness: Harness) -> None:
    # Its event loop held (SIGSTOP here): every request would wait for it without end.
    async with _linked(harness, hang_after_s=1.0, restart_after_s=0.1) as link:
        stuck = link.pid
        assert stuck is not None
        os.kill(stuck, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while link.pid == stuck or not link._ready.is_set():
            assert time.monotonic() < deadline, "the stuck child was not replaced"
            await asyncio.sleep(0.1)
        assert _gone(stuck)
        metrics = (await link.metrics_text()).decode()
        assert "lianxin_processor_restarts_total 1.0" in metrics
        assert "lianxin_processor_up 1.0" in metrics


def _gone(pid: int) -> bool:
    """No such process, or only its zombie."""
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


async def test_while_the_child_restarts_metrics_say_so_instead_of_failing(
    harness: Harness,
) -> None:
    async with _linked(harness, restart_after_s=30) as link:
        assert link.pid is not None
        assert "lianxin_events_received" in (await link.metrics_text()).decode()  # the child's
        os.kill(link.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while link._ready.is_set():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        metrics = (await link.metrics_text()).decode()
        assert "lianxin_processor_up 0.0" in metrics
        assert "lianxin_processor_restarts_total 1.0" in metrics
        assert "lianxin_events_received" not in metrics  # no child to count them
        ready = await link.readiness()
        assert ready["ok"] is False and ready["processor"] == "down"


async def test_a_child_started_again_runs_on_the_servers_settings_not_the_edited_file(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    # An operator edits config.yaml for the next start; the child started again after a crash
    # must not pick it up half-way (here: a value that does not load at all).
    h = harness
    await h.load_directory()
    config = tmp_path / "config.yaml"
    config.write_text("inbound:\n  gather_ms: 1.5\n", "utf-8")
    with _serving(h, tmp_path, LIANXIN_CONFIG=str(config)) as (base, server):
        (first,) = _children(server.pid)
        config.write_text("inbound:\n  gather_ms: -5\n", "utf-8")
        os.kill(first, signal.SIGKILL)
        _wait(lambda: _children(server.pid) not in ([], [first]) and _ready(base), "no restart")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            body = h.bridge_body("小区门口有人持刀打人，快来", group=GROUP)
            assert (await _post(h, client, body)).status_code == 200
            await _until(lambda: _async(bool(h.to_group(GROUP))), "not processed")


async def test_a_request_that_fails_in_the_child_fails_alone(harness: Harness) -> None:
    # Raised from the socket's callback it would have ended the child, and every retry of the
    # same event would end the next one.
    async with _linked(harness) as link:
        child = link.pid
        with pytest.raises(ProcessorFailed):
            await link._ask("accept", None, None)  # no event at all
        assert link.pid == child and link._ready.is_set()
        assert (await link.readiness())["processor"] == "up"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_database_the_child_cannot_write_is_a_503_to_retry_from_the_server(
    harness: Harness, world: FakeWorld, tmp_path: Path
) -> None:
    # The child's journal write failed and the server answered text/plain 500, as for a bug.
    # Here another process holds SQLite's write lock past the child's busy timeout, as a
    # database that cannot take the write: the server says so, and the retry is kept.
    import sqlite3

    from bot.db import SQLITE_BUSY_S, sqlite_file

    h = harness
    admin = await _directory_and_admin(h)
    path = sqlite_file(h.runtime.settings.database.url)
    assert path is not None
    body = h.bridge_body("請問辦證要多久", group=GROUP)
    with _serving(h, tmp_path) as (base, server):
        (child,) = _children(server.pid)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            holder = sqlite3.connect(path, isolation_level=None)
            try:
                holder.execute("BEGIN IMMEDIATE")
                started = time.monotonic()
                response = await _post(h, client, body)
                assert time.monotonic() - started >= SQLITE_BUSY_S * 0.9  # it waited for it
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert response.status_code == 503, response.text
            assert response.json() == {"ok": False, "error": "database unavailable, retry"}
            assert response.headers["retry-after"] == "5"
            assert _children(server.pid) == [child]  # no reason to start another
            response = await _post(h, client, body)
            assert (response.status_code, response.json()) == (200, {"ok": True})
            # Counted by the server, which answered; received by the child, once.
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
            refused = 'lianxin_requests_refused_total{endpoint="bridge",status="503"} 1.0'
            assert refused in metrics.text, metrics.text
            assert 'lianxin_events_received_total{channel="bridge"} 1.0' in metrics.text
    assert await _count(h, select(func.count()).select_from(InboundEvent)) == 1
