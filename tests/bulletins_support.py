"""Shared helpers for the bulletin and alert tests: the harness app with the bulletin router and
the alert handlers wired in locally (until they are wired in ``create_app`` and the registry)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from bot.app import create_app
from bot.services.tokens import create_token
from broadcasts.bulletins import TickResult, bulletin_tick
from handlers.alerts_chat import alert_commands, alert_replies
from handlers.context import Handler
from handlers.intake import intake
from handlers.registry import default_handlers
from models.bulletins import BulletinDelivery, BulletinRun
from models.outbox import OutboxMessage
from tests.harness import Harness, SettledTransport

TZ = ZoneInfo("Asia/Shanghai")
GROUPS = ["grp-hexi-01", "grp-qiaozhen-01", "grp-qiaozhen-02"]


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    """An aware Asia/Shanghai time."""
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def chain() -> list[Handler]:
    """The default chain with the alert handlers where they belong."""
    handlers = default_handlers()
    if alert_commands not in handlers:
        handlers.insert(0, alert_commands)  # before officer_commands, which takes every officer
    if alert_replies not in handlers:
        handlers.insert(handlers.index(intake), alert_replies)
    return handlers


@dataclass
class Bench:
    """A harness plus an API client on an app that includes the bulletin router."""

    h: Harness
    api: httpx.AsyncClient
    admin: dict[str, str]
    officer: dict[str, str]

    @classmethod
    async def build(cls, h: Harness, *, at: datetime | None = None) -> Bench:
        await h.load_directory()
        if at is not None:
            h.clock.set(at)
        app = create_app(h.runtime, handlers=chain(), background=False, close_runtime=False)
        api = httpx.AsyncClient(transport=SettledTransport(app=app), base_url="http://lianxin")
        # Bridge events go through the same app, so the alert handlers see them.
        await h.client.aclose()
        h.client = api
        async with h.runtime.sessions.begin() as s:
            admin = await create_token(s, role="admin", name="ops", now=h.clock.now())
            officer = await create_token(s, role="officer", name="desk", now=h.clock.now())
        return cls(
            h,
            api,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {officer}"},
        )

    async def create(self, **body: Any) -> int:
        payload = {
            "title": "防詐騙提醒",
            "category": "anti-fraud",
            "text": "不要向陌生賬戶轉賬。",
            "targets": {"groups": ["grp-qiaozhen-01"]},
        } | body
        r = await self.api.post("/api/v1/bulletins", json=_jsonable(payload), headers=self.admin)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def tick(self) -> TickResult:
        return await bulletin_tick(self.h.runtime)

    async def get(self, path: str) -> Any:
        r = await self.api.get(path, headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    async def post(self, path: str, body: Any = None, *, status: int = 200) -> Any:
        r = await self.api.post(path, json=_jsonable(body), headers=self.admin)
        assert r.status_code == status, r.text
        return r.json()

    async def deliveries(self, bulletin_id: int) -> list[dict[str, Any]]:
        return list(await self.get(f"/api/v1/bulletins/{bulletin_id}/deliveries"))

    async def runs(self, bulletin_id: int) -> list[dict[str, Any]]:
        return list(await self.get(f"/api/v1/bulletins/{bulletin_id}/runs"))

    async def rows(self) -> tuple[list[BulletinRun], list[BulletinDelivery], list[OutboxMessage]]:
        async with self.h.runtime.sessions() as s:
            runs = list((await s.scalars(select(BulletinRun).order_by(BulletinRun.id))).all())
            ds = list(
                (await s.scalars(select(BulletinDelivery).order_by(BulletinDelivery.id))).all()
            )
            ob = list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())
        return runs, ds, ob


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))
