"""``/simulator``: a WeChat-like group chat in the browser, for ``lianxin demo`` only.

The page speaks to the bot exactly as a bridge would: ``POST /simulator/api/say`` builds a bridge
event, signs it with the bridge secret and posts it to the app's own ``/bridge/events`` (in
process, through :class:`httpx.ASGITransport`), so the real signature check, journal, dispatcher
and handlers run. What the bot sends comes back from the :class:`SimulatedBridge` and reaches every
open page as server-sent events, together with what people typed and the SMS the bot sent.

The router is mounted by :func:`bot.demo.build_demo_app` and never by ``lianxin serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.channels.bridge import signed_headers
from bot.channels.simulated import SimulatedBridge, SimulatedSend
from bot.channels.sms import recipient
from bot.clock import Clock
from bot.pii import mask_phone
from bot.runtime import Runtime
from bot.settings import secret_value
from bot.web.deps import get_runtime
from models.directory import Group, Officer, Station
from models.tickets import Ticket

log = logging.getLogger("lianxin.simulator")
router = APIRouter(prefix="/simulator", include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {
    "simulator.css": "text/css; charset=utf-8",
    "simulator.js": "text/javascript; charset=utf-8",
}
KEEPALIVE_S = 15.0
BULLETIN_DELAY_S = 10
BULLETIN_VIDEO = {
    "type": "video",
    "url": "https://media.demo.invalid/anti-fraud-2026.mp4",
    "title": "警惕冒充客服退款詐騙(2分鐘)",
}


# --- the hub: what people typed and the SMS the bot sent ---------------------------------------


@dataclass
class SimulatorHub:
    """Events the simulator adds to the bot's own sends, kept briefly and fanned out live."""

    clock: Clock
    bridge: SimulatedBridge
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    listeners: list[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=list)
    people: dict[str, str] = field(default_factory=dict)  # sender id → nickname
    residents: list[dict[str, Any]] = field(default_factory=list)
    admin_token: str | None = None
    # The ticket panel shows what happens from here on, not the month the demo seeded before.
    since: datetime | None = None
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def publish(self, event: dict[str, Any]) -> None:
        """Keep ``event`` and hand it to every open stream."""
        self.history.append(event)
        for queue in list(self.listeners):
            queue.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue for one open stream; ``None`` on it means the server is stopping."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.listeners.append(queue)
        return queue

    def close_streams(self) -> None:
        """End every open stream (from any thread, e.g. a signal handler), so a shutdown
        does not wait for browser tabs to go away."""
        if self._loop is None or self._loop.is_closed():
            return
        for queue in list(self.listeners):
            self._loop.call_soon_threadsafe(queue.put_nowait, None)

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Close one stream's queue."""
        if queue in self.listeners:
            self.listeners.remove(queue)

    def everything(self) -> list[dict[str, Any]]:
        """The bot's sends and the hub's own events, oldest first."""
        merged = [bot_event(s) for s in self.bridge.sent] + list(self.history)
        return sorted(merged, key=lambda e: (e["at"], e["kind"] == "bot"))


def bot_event(send: SimulatedSend) -> dict[str, Any]:
    """A bridge send as the page shows it."""
    payload = send.payload
    return {
        "kind": "bot",
        "id": f"b:{send.idempotency_key}",
        "group_id": send.group_id,
        "user_id": None if send.group_id else send.user_id,
        "text": payload.get("text", ""),
        "mentions": list(payload.get("mentions") or []),
        "media": payload.get("media"),
        "at": send.at.isoformat(),
    }


@dataclass
class SmsInbox:
    """The demo's SMS "gateway": every text lands in the simulator's SMS inbox panel."""

    hub: SimulatorHub

    async def send(
        self,
        *,
        idempotency_key: str,
        group_id: str | None,
        user_id: str | None,
        payload: dict[str, Any],
    ) -> None:
        """Record one SMS (same signature as every channel sender)."""
        phone = recipient(user_id, payload)
        log.info("demo sms to %s [%s]", mask_phone(phone), idempotency_key)
        self.hub.publish(
            {
                "kind": "sms",
                "id": f"s:{idempotency_key}",
                "phone": mask_phone(phone),
                "text": payload.get("text", ""),
                "at": self.hub.clock.now().isoformat(),
            }
        )


def hub_of(app: FastAPI) -> SimulatorHub | None:
    """The demo's hub, which the demo puts on ``app.state.simulator``; None outside the demo."""
    hub = getattr(app.state, "simulator", None)
    return hub if isinstance(hub, SimulatorHub) else None


async def get_hub(request: Request) -> SimulatorHub:
    """The demo's hub (the simulator is mounted only where one exists)."""
    hub = hub_of(request.app)
    if hub is None:
        raise HTTPException(404, "simulator not enabled")
    return hub


# --- the page and its assets -------------------------------------------------------------------


@router.get("")
async def page() -> FileResponse:
    """The simulator page."""
    return FileResponse(STATIC / "simulator.html", media_type="text/html; charset=utf-8")


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    """One of the page's own assets (nothing comes from a CDN)."""
    if name not in ASSETS:
        raise HTTPException(404, "no such asset")
    return FileResponse(STATIC / name, media_type=ASSETS[name])


# --- who is who ----------------------------------------------------------------------------------


@router.get("/api/people")
async def people(
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    hub: SimulatorHub = Depends(get_hub),
) -> dict[str, Any]:
    """Groups, officers and demo residents; whether bulletins can be scheduled."""
    async with runtime.sessions() as session:
        stations = {s.id: s.name for s in await session.scalars(select(Station))}
        officers = (await session.scalars(select(Officer).order_by(Officer.id))).all()
        groups = (await session.scalars(select(Group).order_by(Group.name))).all()
    names = {o.id: o.name for o in officers}
    return {
        "timezone": runtime.settings.timezone,
        "groups": [
            {
                "id": g.id,
                "name": g.name,
                "station": stations.get(g.station_id, g.station_id),
                "officer": names.get(g.officer_id or "", ""),
            }
            for g in groups
        ],
        "officers": [
            {
                "id": o.wechat_id,
                "nickname": o.name,
                "role": o.role,
                "station": stations.get(o.station_id, o.station_id),
            }
            for o in officers
            if o.wechat_id
        ],
        "residents": hub.residents,
        "bulletins": bulletin_status(hub),
    }


def bulletin_status(hub: SimulatorHub) -> dict[str, Any]:
    """Whether the bulletin button works, and why not when it does not."""
    if not hub.admin_token:
        return {"enabled": False, "note": "示範未建立管理員令牌。"}
    return {"enabled": True, "note": f"{BULLETIN_DELAY_S}秒後以管理員身份推送到全部群組(附視頻)。"}


# --- saying something ----------------------------------------------------------------------------


class Say(BaseModel):
    """What one person types into a group (``group_id``) or privately to the bot."""

    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="as", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    nickname: str | None = Field(default=None, max_length=40)
    group_id: str | None = Field(default=None, max_length=128)
    text: str = Field(min_length=1, max_length=2000)


def bridge_event(say: Say, nickname: str, group_name: str | None, now_ts: int) -> dict[str, Any]:
    """The bridge's JSON for one message (CONTRACT §3)."""
    return {
        "event_id": f"sim-{now_ts}-{secrets.token_hex(4)}",
        "type": "message",
        "timestamp": now_ts,
        "group": None if say.group_id is None else {"id": say.group_id, "name": group_name},
        "sender": {"id": say.sender, "nickname": nickname},
        "message": {"type": "text", "text": say.text, "mentions": [], "media_url": None},
    }


async def post_in_process(
    request: Request, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST to this very app through ASGI: every middleware, check and handler runs."""
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
        return await client.post(path, content=body, headers=headers)


async def group_name(runtime: Runtime, group_id: str | None) -> str | None:
    """The directory name of a group, if it is one."""
    if group_id is None:
        return None
    async with runtime.sessions() as session:
        group = await session.get(Group, group_id)
    return group.name if group else group_id


def echo(hub: SimulatorHub, event: dict[str, Any], at: str) -> None:
    """Show what someone typed on every open page (a real group shows it to everyone too)."""
    sender, group = event["sender"], event["group"]
    hub.publish(
        {
            "kind": "user",
            "id": f"u:{event['event_id']}",
            "group_id": group["id"] if group else None,
            "user_id": None if group else sender["id"],
            "sender": sender,
            "text": event["message"]["text"],
            "at": at,
        }
    )


@router.post("/api/say")
async def say(
    body: Say,
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    hub: SimulatorHub = Depends(get_hub),
) -> dict[str, Any]:
    """Echo the message to every page, then deliver it as a signed bridge event."""
    nickname = body.nickname or hub.people.get(body.sender) or body.sender
    hub.people.setdefault(body.sender, nickname)
    now = runtime.clock.now()
    name = await group_name(runtime, body.group_id)
    event = bridge_event(body, nickname, name, int(now.timestamp()))
    echo(hub, event, now.isoformat())
    raw = json.dumps(event, ensure_ascii=False).encode()
    secret = secret_value(runtime.settings.bridge.secret)
    headers = signed_headers(secret, raw, now)
    response = await post_in_process(request, "/bridge/events", raw, headers)
    return {
        "status": response.status_code,
        "bridge": response.json(),
        "event_id": event["event_id"],
    }


# --- the live stream -----------------------------------------------------------------------------


@router.get("/api/history")
async def history(hub: SimulatorHub = Depends(get_hub)) -> list[dict[str, Any]]:
    """Everything so far (the page loads this once, then follows the stream)."""
    return hub.everything()


async def _forward(source: asyncio.Queue[SimulatedSend], target: asyncio.Queue[Any]) -> None:
    while True:
        target.put_nowait(bot_event(await source.get()))


async def event_stream(
    hub: SimulatorHub, is_disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Server-sent events: the bot's sends and the hub's events, as they happen."""
    queue = hub.subscribe()
    sends = hub.bridge.subscribe()
    pump = asyncio.create_task(_forward(sends, queue))
    try:
        yield "retry: 2000\n\n"
        while not await is_disconnected():
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is None:  # the server is stopping
                return
            yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        hub.bridge.unsubscribe(sends)
        hub.unsubscribe(queue)


@router.get("/api/stream")
async def stream(request: Request, hub: SimulatorHub = Depends(get_hub)) -> StreamingResponse:
    """``text/event-stream`` of everything said from now on."""
    return StreamingResponse(
        event_stream(hub, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- tickets and bulletins -----------------------------------------------------------------------


def ticket_row(ticket: Ticket, runtime: Runtime, names: dict[str, str]) -> dict[str, Any]:
    """One ticket for the side panel (the demo shows the text; its data is made up)."""
    texts = runtime.texts
    text = runtime.cipher.decrypt(ticket.text_enc) or ""
    return {
        "code": ticket.code,
        "category": texts.render(f"cat_{ticket.category}", "hant"),
        "status": ticket.status,
        "status_label": texts.render(f"status_{ticket.status}", "hant"),
        "priority": ticket.priority,
        "emergency": ticket.emergency,
        "assignee": names.get(ticket.assigned_officer_id or "", "—"),
        "group": names.get(ticket.group_id, ticket.group_id) if ticket.group_id else "私聊",
        "text": text[:80],
        "created_at": ticket.created_at.isoformat(),
        "ack_due_at": ticket.ack_due_at.isoformat(),
        "answer_due_at": ticket.answer_due_at.isoformat(),
        "answered_at": ticket.answered_at.isoformat() if ticket.answered_at else None,
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        "escalation_level": ticket.escalation_level,
        "satisfaction": ticket.satisfaction,
    }


@router.get("/api/tickets")
async def tickets(
    runtime: Runtime = Depends(get_runtime), hub: SimulatorHub = Depends(get_hub)
) -> list[dict[str, Any]]:
    """The newest tickets of this session with status, priority, assignee and deadlines."""
    query = select(Ticket).order_by(Ticket.id.desc()).limit(50)
    if hub.since is not None:
        query = query.where(Ticket.created_at >= hub.since)
    async with runtime.sessions() as session:
        rows = (await session.scalars(query)).all()
        names = {o.id: o.name for o in await session.scalars(select(Officer))}
        names |= {g.id: g.name for g in await session.scalars(select(Group))}
    return [ticket_row(t, runtime, names) for t in rows]


@router.post("/api/bulletin")
async def bulletin(
    request: Request,
    runtime: Runtime = Depends(get_runtime),
    hub: SimulatorHub = Depends(get_hub),
) -> dict[str, Any]:
    """Schedule an anti-fraud bulletin with a video for every group, due in 10 seconds."""
    status = bulletin_status(hub)
    if not status["enabled"]:
        raise HTTPException(409, status["note"])
    due = runtime.clock.now() + timedelta(seconds=BULLETIN_DELAY_S)
    body = {
        "title": "防詐騙提醒",
        "category": "anti-fraud",
        "text": "近期有人冒充網購客服,以「退款」「理賠」為由索要銀行卡號和驗證碼。"
        "凡是索要驗證碼的都是詐騙!請轉告家中老人。",
        "media": BULLETIN_VIDEO,
        "targets": {"all": True},
        "schedule": {"at": due.isoformat()},
    }
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {hub.admin_token}", "Content-Type": "application/json"}
    response = await post_in_process(request, "/api/v1/bulletins", raw, headers)
    if response.status_code >= 300:
        raise HTTPException(502, f"bulletin API answered {response.status_code}: {response.text}")
    return {"id": response.json().get("id"), "at": due.isoformat()}
