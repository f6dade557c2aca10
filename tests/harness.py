"""A test harness around the real app: signed bridge events, WeChat requests built with
wechatpy as the peer, a manual clock, the delivery worker driven step by step."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import itertools
import json
import os
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app, make_worker
from bot.channels.bridge import signed_headers
from bot.channels.http_lanes import lane_client
from bot.clock import ManualClock
from bot.db import sqlite_file
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.services.deadlines import sweep
from bot.services.directory import load_directory_file
from bot.settings import Settings, load_settings
from bot.texts import Texts
from bot.wiring import build_runtime
from broadcasts.outbox_worker import OutboxWorker
from handlers.classify import Classifier
from models.people import Binding, GroupMember, Member
from models.tickets import Ticket, TicketEvent
from tests.fakes import FakeWorld

DIRECTORY = Path(__file__).parent / "data" / "directory.yaml"

# CONTRACT §1: at least 32 characters (a shorter one stops start-up).
BRIDGE_SECRET = "test-bridge-secret-of-32-characters-or-more"
WECHAT_TOKEN = "testtoken"
WECHAT_APP_ID = "wx1234567890abcdef"
WECHAT_AES_KEY = base64.b64encode(os.urandom(32)).decode()[:43]
ACCOUNT = "gh_lianxin_test"
API_SEND = "/cgi-bin/message/custom/send"

_counter = itertools.count(1)


def test_settings(db_url: str, world: FakeWorld, **overrides: Any) -> Settings:
    """Settings pointing every outside call at the fake world."""
    base: dict[str, Any] = {
        "database": {"url": db_url},
        "bridge": {
            "secret": BRIDGE_SECRET,
            "send_url": f"{world.base_url}/send",
            "send_interval_s": 0,
            # Generous: on a loaded machine (two workers, other jobs) the fake in its thread
            # once took over 2 s to answer. The one timeout test sets its own (test_outbox).
            "timeout_s": 10,
        },
        "wechat": {
            "token": WECHAT_TOKEN,
            "encoding_aes_key": WECHAT_AES_KEY,
            "app_id": WECHAT_APP_ID,
            "app_secret": "test-app-secret",
            "original_id": ACCOUNT,
            "api_base_url": world.base_url,
        },
        "security": {"pii_key": base64.b64encode(os.urandom(32)).decode()},
        "sms": {"provider": "http", "url": f"{world.base_url}/sms"},
    }
    # The WeChat reply mode the suite runs in: `passive` (the default) or, with this variable,
    # `api` (every reply through the customer-service API); run both (docs/wechat.md).
    base["wechat"]["reply_mode"] = os.environ.get("LIANXIN_TEST_REPLY_MODE", "passive")
    for section, values in overrides.items():
        if isinstance(values, dict):
            base.setdefault(section, {}).update(values)
        else:
            base[section] = values
    # Not ./config.yaml: the tests' settings do not depend on where pytest runs (and parsing it
    # in pure-Python YAML cost ~50 ms in every test's set-up).
    return load_settings(None, environ={}, overrides=base, read_file=False)


class SettledTransport(httpx.ASGITransport):
    """The app in process; after each response, its inbound pipeline processes every event
    journaled so far. Events are handled behind the answer (bot/pipeline.py): draining here,
    deterministically, lets a test see what its request led to, as it did when the request
    itself ran the handlers."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        pipeline = getattr(self.app.state, "pipeline", None)  # type: ignore[attr-defined]
        if pipeline is not None:
            await pipeline.drain()
        return response


def in_process(app: Any) -> httpx.AsyncClient:
    """A client for ``app`` in process that waits for the inbound processing of each request."""
    return httpx.AsyncClient(transport=SettledTransport(app=app), base_url="http://lianxin")


@functools.cache
def shared_data() -> tuple[Classifier, Texts]:
    """The packaged classifier and texts, loaded once per test session.

    Both are read-only after loading, so every harness shares them instead of paying for the
    weights file and the text tables in each test's set-up.
    """
    return Classifier.from_file(), Texts.load()


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context, made once: loading the CA bundle takes ~50 ms a time."""
    return httpx.create_ssl_context()


def make_runtime(settings: Settings, **kwargs: Any) -> Runtime:
    """``build_runtime`` with the shared classifier and texts (and TLS context)."""
    classifier, texts = shared_data()
    # The client build_runtime would make, but with the shared TLS context; the fakes answer
    # on plain HTTP, so it only ever serves a test that reaches for https.
    kwargs.setdefault("http", lane_client(timeout=settings.bridge.timeout_s, verify=_tls()))
    return build_runtime(settings, classifier=classifier, texts=texts, **kwargs)


@dataclass
class Harness:
    runtime: Runtime
    client: httpx.AsyncClient
    world: FakeWorld
    clock: ManualClock
    worker: OutboxWorker

    @classmethod
    def build(
        cls,
        db_url: str,
        world: FakeWorld,
        *,
        settings: Settings | None = None,
        clock: ManualClock | None = None,
        **overrides: Any,
    ) -> Harness:
        world.state.bridge_secret = BRIDGE_SECRET
        clock = clock or ManualClock(datetime.fromtimestamp(time.time()).astimezone())
        settings = settings or test_settings(db_url, world, **overrides)
        runtime = make_runtime(settings, clock=clock)
        app = create_app(runtime, background=False)
        return cls(runtime, in_process(app), world, clock, make_worker(runtime))

    async def restart(self) -> Harness:
        """A new runtime and app on the same database, as after a process restart."""
        await self.close()
        return Harness.build(
            self.runtime.settings.database.url,
            self.world,
            settings=self.runtime.settings,
            clock=self.clock,
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.runtime.aclose()

    @contextlib.asynccontextmanager
    async def database_gone(self) -> AsyncIterator[None]:
        """While inside, SQLite cannot open this harness's database: its file is replaced by
        a folder (root opens any file, whatever its mode), and the pooled connection, which
        would keep the old file open, is closed. Every statement then fails as on a database
        that is down (OperationalError, "unable to open database file"); afterwards the file
        is back as it was."""
        path = sqlite_file(self.runtime.settings.database.url)
        assert path is not None, "SQLite only"
        await self.runtime.engine.dispose()
        away = path.with_name(path.name + ".away")
        path.rename(away)
        path.mkdir()
        try:
            yield
        finally:
            path.rmdir()
            away.rename(path)

    # --- the bridge -------------------------------------------------------------------------
    def bridge_body(
        self,
        text: str = "你好",
        *,
        group: str | None = "grp-qiaozhen-01",
        sender: str = "wxid_yang",
        nickname: str = "楊某某",
        event_id: str | None = None,
        type: str = "message",
        **message: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event_id": event_id or f"evt-{next(_counter)}-{os.urandom(3).hex()}",
            "type": type,
            "timestamp": int(self.clock.now().timestamp()),
            "group": None if group is None else {"id": group, "name": "測試群"},
            "sender": {"id": sender, "nickname": nickname},
        }
        if type == "message":
            body["message"] = {"type": "text", "text": text, "mentions": [], "media_url": None}
            body["message"].update(message)
        return body

    async def post_bridge(
        self,
        body: dict[str, Any] | bytes,
        *,
        secret: str = BRIDGE_SECRET,
        at: datetime | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        signed = signed_headers(secret, raw, at or self.clock.now())
        if headers is not None:
            signed = headers
        return await self.client.post("/bridge/events", content=raw, headers=signed)

    async def say(self, text: str, **kwargs: Any) -> httpx.Response:
        """A bridge message; asserts it was accepted."""
        response = await self.post_bridge(self.bridge_body(text, **kwargs))
        assert response.status_code == 200, response.text
        return response

    # --- WeChat -----------------------------------------------------------------------------
    def wechat_text_xml(
        self, text: str, *, openid: str = "o_resident", msg_id: int | None = None
    ) -> str:
        ts = int(self.clock.now().timestamp())
        msg_id = msg_id or next(_counter) + 10_000_000
        return (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )

    def wechat_crypto(self, aes_key: str = WECHAT_AES_KEY) -> WeChatCrypto:
        return WeChatCrypto(WECHAT_TOKEN, aes_key, WECHAT_APP_ID)

    async def post_wechat_safe(
        self,
        xml: str,
        *,
        aes_key: str = WECHAT_AES_KEY,
        tamper: bool = False,
        at: datetime | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """POST a message encrypted by wechatpy, as WeChat's servers would (through ``client``
        when given, e.g. one that does not process the queue after the response)."""
        ts = str(int((at or self.clock.now()).timestamp()))
        nonce = os.urandom(4).hex()
        encrypted = self.wechat_crypto(aes_key).encrypt_message(xml, nonce, ts)
        import xmltodict

        doc = xmltodict.parse(encrypted)["xml"]
        signature = doc["MsgSignature"]
        envelope = doc["Encrypt"]
        if tamper:
            flipped = "A" if envelope[10] != "A" else "B"
            envelope = envelope[:10] + flipped + envelope[11:]
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{envelope}]]></Encrypt></xml>"
        )
        sent_before = len(self.world.state.by_path(API_SEND))
        response = await (client or self.client).post(
            "/wechat/callback",
            params={
                "signature": _sha1(WECHAT_TOKEN, ts, nonce),
                "timestamp": ts,
                "nonce": nonce,
                "encrypt_type": "aes",
                "msg_signature": signature,
            },
            content=body.encode(),
        )
        # For decrypt_reply in `api` reply mode: who wrote, and what the API had sent before.
        sender = re.search(r"<FromUserName><!\[CDATA\[(.*?)\]\]>", xml)
        response.extensions["lianxin_sender"] = sender.group(1) if sender else ""
        response.extensions["lianxin_sent_before"] = sent_before
        return response

    @property
    def passive(self) -> bool:
        """Whether WeChat messages are answered in the response (`wechat.reply_mode`)."""
        return self.runtime.settings.wechat.reply_mode == "passive"

    async def reply_to(self, response: httpx.Response) -> dict[str, Any]:
        """The answer to a WeChat message, whichever way it went: the passive reply decrypted
        (`passive` reply mode), or in `api` mode the first customer-service message to the
        sender after it (the delivery worker is run for it), in the passive reply's shape."""
        if self.passive:
            return self.decrypt_reply(response)
        assert response.text == "success", response.text
        await self.drain()
        sender = response.extensions["lianxin_sender"]
        sends = self.world.state.by_path(API_SEND)[response.extensions["lianxin_sent_before"] :]
        for send in sends:
            body = send.json()
            if body.get("touser") == sender and body.get("msgtype") == "text":
                return {
                    "ToUserName": sender,
                    "FromUserName": ACCOUNT,
                    "MsgType": "text",
                    "Content": body["text"]["content"],
                }
        raise AssertionError(f"no reply to {sender} through the API")

    def decrypt_reply(self, response: httpx.Response) -> dict[str, Any]:
        """Decrypt a passive safe-mode reply with wechatpy, checking its signature."""
        import xmltodict

        doc = xmltodict.parse(response.text)["xml"]
        plain = self.wechat_crypto().decrypt_message(
            response.text, doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"]
        )
        return dict(xmltodict.parse(plain)["xml"])

    # --- seeding and reading state ---------------------------------------------------------
    async def load_directory(self, path: Path = DIRECTORY) -> None:
        """Load a directory file, as ``lianxin directory load`` does."""
        async with self.runtime.sessions.begin() as session:
            await load_directory_file(session, path, cipher=self.runtime.cipher)

    async def bind(
        self,
        sender_id: str,
        *,
        channel: str = "bridge",
        name: str = "楊某某",
        phone: str = "13912345678",
        group: str | None = None,
    ) -> int:
        """Give a resident a verified binding directly (for tests about what comes after)."""
        cipher = self.runtime.cipher
        now = self.clock.now()
        async with self.runtime.sessions.begin() as session:
            member = await session.scalar(
                select(Member).where(Member.channel == channel, Member.sender_id == sender_id)
            )
            if member is None:
                member = Member(
                    channel=channel, sender_id=sender_id, first_seen_at=now, last_seen_at=now
                )
                session.add(member)
                await session.flush()
            session.add(
                Binding(
                    member_id=member.id,
                    name_enc=cipher.encrypt(name),
                    phone_enc=cipher.encrypt(phone),
                    phone_hash=cipher.lookup_hash(phone),
                    verified_at=now,
                )
            )
            if group:
                session.add(GroupMember(group_id=group, member_id=member.id, joined_at=now))
            return member.id

    async def tickets(self) -> list[Ticket]:
        async with self.runtime.sessions() as session:
            return list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())

    async def timeline(self, ticket: Ticket) -> list[str]:
        async with self.runtime.sessions() as session:
            rows = await session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
            return [r.kind for r in rows]

    async def sent(self) -> list[dict[str, Any]]:
        """Deliver everything due, then return what the bridge delivered (in order)."""
        await self.drain()
        return self.world.state.delivered()

    def to_user(self, user_id: str) -> list[str]:
        """Texts the bridge delivered privately to ``user_id``."""
        return [d["text"] for d in self.world.state.delivered() if d["user_id"] == user_id]

    def to_group(self, group_id: str) -> list[dict[str, Any]]:
        """Messages the bridge delivered into ``group_id``."""
        return [d for d in self.world.state.delivered() if d["group_id"] == group_id]

    async def sweep(self) -> int:
        """One pass of the deadline sweep at the current clock."""
        return await sweep(self.runtime)

    async def drain(self) -> list[Any]:
        """Run the delivery worker until nothing is due."""
        return await self.worker.drain()

    @property
    def pipeline(self) -> Pipeline:
        """The inbound pipeline of the app this harness's client talks to."""
        transport = self.client._transport  # the app behind the client, for its pipeline
        assert isinstance(transport, httpx.ASGITransport)
        return transport.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()
