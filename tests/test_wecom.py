"""``/wecom/bot/callback`` with wechatpy's enterprise crypto as the real peer (CONTRACT §3a)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy import select
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.utils import WeChatSigner, to_text

from bot.app import create_app
from bot.channels.wecom import WeComCallback, strip_mention
from bot.channels.wecom_reply import NO_SINGLE_PATH, WeComReplySender
from bot.channels.wecom_robot import WeComRobotSender
from bot.settings import WeComSettings
from bot.web import wecom_routes
from models.directory import Group
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from tests.fakes import FakeWorld
from tests.harness import DIRECTORY, Harness, SettledTransport

TOKEN = "wecomtoken"
AES_KEY = base64.b64encode(os.urandom(32)).decode()[:43]
ROBOT = "連心"
CHAT = "wrkSFfCgAAxyz-chat01"  # a WeCom chatid, registered as a group in the directory
PATH = wecom_routes.PATH
FIRE = "隔壁房子著火了,火很大,有人被困在裡面!"

_ids = itertools.count(1)


def _sig(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


class FakeRobot:
    """A WeCom group-robot webhook: records bodies, answers errcode 0."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append((request.url.params.get("key", ""), json.loads(request.content)))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})


@dataclass
class W:
    """The harness plus a WeCom peer that encrypts and signs as WeCom's servers would."""

    h: Harness
    robot: FakeRobot
    robot_client: httpx.AsyncClient
    sent_nonces: list[str] = field(default_factory=list)

    def peer(self, key: str = AES_KEY) -> WeChatCrypto:
        return WeChatCrypto(TOKEN, key, "")

    def message(
        self,
        text: str,
        *,
        chattype: str = "single",
        user: str = "zhangsan",
        msgid: str | None = None,
        chatid: str = CHAT,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgid": msgid or f"CAIQ{next(_ids)}{os.urandom(4).hex()}=",
            "aibotid": "AIBOTID",
            "chattype": chattype,
            "from": {"userid": user},
            "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=x",
            "msgtype": "text",
            "text": {"content": text},
        }
        if chattype == "group":
            body["chatid"] = chatid
        return body

    async def post(
        self,
        message: dict[str, Any] | str,
        *,
        key: str = AES_KEY,
        tamper: bool = False,
        at: datetime | None = None,
    ) -> httpx.Response:
        """POST ``message`` encrypted with wechatpy's enterprise crypto and an empty ReceiveId."""
        ts = str(int((at or self.h.clock.now()).timestamp()))
        nonce = os.urandom(4).hex()
        plain = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        doc = xmltodict.parse(self.peer(key).encrypt_message(plain, nonce, ts))["xml"]
        envelope, signature = doc["Encrypt"], doc["MsgSignature"]
        if tamper:
            flipped = "A" if envelope[10] != "A" else "B"
            envelope = envelope[:10] + flipped + envelope[11:]
        return await self.h.client.post(
            PATH,
            params={"msg_signature": signature, "timestamp": ts, "nonce": nonce},
            content=json.dumps({"encrypt": envelope}).encode(),
        )

    def decrypt_reply(self, response: httpx.Response) -> dict[str, Any]:
        """Check the reply's signature and decrypt it with wechatpy, as WeCom would."""
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"encrypt", "msgsignature", "timestamp", "nonce"}
        plain = self.peer().decrypt_message(
            {"Encrypt": body["encrypt"]}, body["msgsignature"], body["timestamp"], body["nonce"]
        )
        result: dict[str, Any] = json.loads(plain)
        return result

    async def journal(self) -> list[InboundEvent]:
        async with self.h.runtime.sessions() as s:
            return list((await s.scalars(select(InboundEvent).order_by(InboundEvent.id))).all())

    async def outbox(self, channel: str = "wecom") -> list[OutboxMessage]:
        async with self.h.runtime.sessions() as s:
            rows = await s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.channel == channel)
                .order_by(OutboxMessage.id)
            )
            return list(rows.all())

    async def add_group(self, webhook: str | None = "KEY-WECOM") -> None:
        await self.h.load_directory()
        async with self.h.runtime.sessions.begin() as s:
            s.add(
                Group(
                    id=CHAT,
                    name="橋鎮企微警民群",
                    station_id="qiaozhen",
                    officer_id="off-wang",
                    tags=["village"],
                    wecom_webhook=webhook,
                )
            )


@pytest.fixture
async def w(db_url: str, world: FakeWorld) -> AsyncIterator[W]:
    h = Harness.build(db_url, world)
    rt = h.runtime
    settings = WeComSettings.model_validate(
        {"token": TOKEN, "encoding_aes_key": AES_KEY, "robot_name": ROBOT}
    )
    rt.wecom = WeComCallback.from_settings(settings, window_s=rt.settings.server.replay_window_s)
    robot = FakeRobot()
    robot_client = httpx.AsyncClient(transport=httpx.MockTransport(robot))
    rt.senders["wecom_robot"] = WeComRobotSender(
        client=robot_client, base_url="https://robot.test/send"
    )
    rt.senders["wecom"] = WeComReplySender(robot=rt.senders["wecom_robot"], sessions=rt.sessions)
    app = create_app(rt, background=False)
    if not any(getattr(route, "path", None) == PATH for route in app.routes):
        app.include_router(wecom_routes.router)  # until bot/app.py includes it
    await h.client.aclose()
    h.client = httpx.AsyncClient(transport=SettledTransport(app=app), base_url="http://lianxin")
    yield W(h, robot, robot_client)
    await h.close()
    await robot_client.aclose()


# --- URL verification -----------------------------------------------------------------------
async def test_url_verification_answers_decrypted_echostr(w: W) -> None:
    ts, nonce = str(int(w.h.clock.now().timestamp())), "n0nce"
    echostr = to_text(PrpCrypto(w.peer().key).encrypt("echo-4711", ""))
    r = await w.h.client.get(
        PATH,
        params={
            "msg_signature": _sig(TOKEN, ts, nonce, echostr),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": echostr,
        },
    )
    assert r.status_code == 200
    assert r.text == "echo-4711"
    assert r.headers["content-type"].startswith("text/plain")


async def test_url_verification_bad_signature_is_403(w: W) -> None:
    ts, nonce = str(int(w.h.clock.now().timestamp())), "n0nce"
    echostr = to_text(PrpCrypto(w.peer().key).encrypt("echo-4711", ""))
    r = await w.h.client.get(
        PATH,
        params={
            "msg_signature": _sig("other-token", ts, nonce, echostr),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": echostr,
        },
    )
    assert r.status_code == 403
    assert "echo-4711" not in r.text
    assert (await w.h.client.get(PATH, params={"echostr": echostr})).status_code == 403
    r = await w.h.client.get(
        PATH, params={"msg_signature": "中", "timestamp": ts, "nonce": nonce, "echostr": "e"}
    )
    assert r.status_code == 403


async def test_url_verification_stale_timestamp_is_403(w: W) -> None:
    ts, nonce = str(int(w.h.clock.now().timestamp()) - 400), "n0nce"
    echostr = to_text(PrpCrypto(w.peer().key).encrypt("echo-4711", ""))
    r = await w.h.client.get(
        PATH,
        params={
            "msg_signature": _sig(TOKEN, ts, nonce, echostr),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": echostr,
        },
    )
    assert r.status_code == 403


# --- messages: refusals ---------------------------------------------------------------------
async def test_single_chat_message_gets_encrypted_stream_reply(w: W) -> None:
    r = await w.post(w.message("你好", user="lisi"))
    reply = w.decrypt_reply(r)
    assert reply["msgtype"] == "stream"
    assert reply["stream"]["finish"] is True
    assert "110" in reply["stream"]["content"]
    (row,) = await w.outbox()
    assert reply["stream"]["id"] == row.idempotency_key
    assert row.status == "sent" and row.sent_via == "passive" and row.user_id == "lisi"
    (event,) = await w.journal()
    assert (event.channel, event.sender_id, event.group_id) == ("wecom", "lisi", None)
    assert await w.h.drain() == []


async def test_tampered_ciphertext_is_403_and_stores_nothing(w: W) -> None:
    r = await w.post(w.message("你好"), tamper=True)
    assert r.status_code == 403
    assert await w.journal() == []


async def test_wrong_aes_key_is_400_and_stores_nothing(w: W) -> None:
    other = base64.b64encode(os.urandom(32)).decode()[:43]
    r = await w.post(w.message("你好"), key=other)
    assert r.status_code == 400
    assert await w.journal() == []


async def test_broken_json_is_400(w: W) -> None:
    ts, nonce = str(int(w.h.clock.now().timestamp())), "abc"
    r = await w.h.client.post(
        PATH,
        params={"msg_signature": "x" * 40, "timestamp": ts, "nonce": nonce},
        content=b'{"encrypt": "not closed',
    )
    assert r.status_code == 400
    r = await w.h.client.post(
        PATH,
        params={"msg_signature": "x" * 40, "timestamp": ts, "nonce": nonce},
        content=b'["encrypt"]',
    )
    assert r.status_code == 400
    # Correctly encrypted and signed, but the plaintext is not JSON.
    assert (await w.post("{not json")).status_code == 400
    assert await w.journal() == []


async def test_decrypted_but_malformed_message_is_400(w: W) -> None:
    no_sender = w.message("你好")
    del no_sender["from"]
    group_without_chat = w.message("你好", chattype="group")
    del group_without_chat["chatid"]
    wrong_type = w.message("你好")
    wrong_type["text"] = {"content": ["a", "list"]}
    cases = (
        (no_sender, "missing from"),
        (group_without_chat, "group message without chatid"),
        (wrong_type, "missing content"),
        ({**w.message("x"), "chattype": "x"}, "bad chattype"),
        ("[1, 2]", "not an object"),
    )
    for body, reason in cases:
        r = await w.post(body)
        # It said "malformed message (ValueError)" for each: our own words name the field.
        assert (r.status_code, r.text) == (400, f"malformed message ({reason})")
    # A sender's id too long for its column is named as that, not as the message id it
    # makes the de-duplication key too long for.
    r = await w.post(w.message("你好", user="u" * 200))
    assert (r.status_code, r.text) == (
        400,
        "malformed message (from.userid: at most 128 characters)",
    )
    assert await w.journal() == []


async def test_stale_timestamp_is_403(w: W) -> None:
    r = await w.post(w.message("你好"), at=w.h.clock.now() - timedelta(seconds=400))
    assert r.status_code == 403
    r = await w.post(w.message("你好"), at=w.h.clock.now() + timedelta(seconds=400))
    assert r.status_code == 403
    assert await w.journal() == []


async def test_missing_signature_is_403(w: W) -> None:
    ts = str(int(w.h.clock.now().timestamp()))
    r = await w.h.client.post(
        PATH, params={"timestamp": ts, "nonce": "n"}, content=b'{"encrypt": "abc"}'
    )
    assert r.status_code == 403
    r = await w.h.client.post(
        PATH,
        params={"msg_signature": "x", "timestamp": "9" * 300, "nonce": "n"},
        content=b'{"encrypt": "abc"}',
    )
    assert r.status_code == 403


async def test_oversized_body_is_413(w: W) -> None:
    r = await w.h.client.post(PATH, params={"timestamp": "1", "nonce": "1"}, content=b"x" * 70000)
    assert r.status_code == 413


async def test_refused_callbacks_are_counted_by_status(w: W) -> None:
    from bot.services.tokens import create_token

    async with w.h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=w.h.clock.now())
    assert (await w.post(w.message("你好"), tamper=True)).status_code == 403
    assert (await w.post(w.message("你好"), key="x" * 43)).status_code == 400
    big = await w.h.client.post(PATH, params={"timestamp": "1", "nonce": "1"}, content=b"x" * 70000)
    assert big.status_code == 413
    r = await w.h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    for status in (403, 400, 413):
        line = f'lianxin_requests_refused_total{{endpoint="wecom",status="{status}"}} 1.0'
        assert line in r.text, r.text


async def test_unconfigured_channel_is_404(w: W) -> None:
    w.h.runtime.wecom = None
    assert (await w.h.client.post(PATH, content=b"{}")).status_code == 404
    assert (await w.h.client.get(PATH)).status_code == 404


# --- duplicates, groups, emergencies --------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_database_that_cannot_be_opened_is_a_503_and_the_retry_is_answered(
    w: W,
) -> None:
    # It was a 500 from the server's error page; an empty 200 would mean "no reply" and the
    # message would be lost. A 503 with Retry-After: WeCom sends it again.
    message = w.message("請問辦證要多久")
    settled = w.h.client
    app = settled._transport.app  # type: ignore[attr-defined]
    w.h.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x")
    try:
        async with w.h.database_gone():
            r = await w.post(message)
            assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    finally:
        await w.h.client.aclose()
        w.h.client = settled
    assert await w.journal() == []
    assert w.decrypt_reply(await w.post(message))["msgtype"] == "stream"
    assert len(await w.journal()) == 1


async def test_retry_of_same_msgid_has_one_effect(w: W) -> None:
    message = w.message("你好", user="wangwu", msgid="CAIQretry0001=")
    responses = [await w.post(message) for _ in range(3)]
    contents = [w.decrypt_reply(r)["stream"] for r in responses]
    # WeCom retries only when our answer did not reach it: each retry gets the same answer.
    assert contents[0] == contents[1] == contents[2]
    assert len(await w.journal()) == 1
    assert len(await w.outbox()) == 1


async def test_group_mention_is_dispatched_with_chatid_and_answered_passively(w: W) -> None:
    await w.add_group()
    r = await w.post(w.message(f"@{ROBOT} {FIRE}", chattype="group", user="zhaoliu"))
    reply = w.decrypt_reply(r)
    assert reply["msgtype"] == "stream" and reply["stream"]["finish"] is True
    content = reply["stream"]["content"]
    assert "110" in content and "119" in content and "請立即撥打" in content
    (event,) = await w.journal()
    assert (event.channel, event.group_id, event.sender_id) == ("wecom", CHAT, "zhaoliu")
    assert event.status == "handled"
    payload = w.h.runtime.cipher.decrypt_json(event.payload_enc)
    assert payload["text"] == FIRE  # the @robot mention is stripped
    tickets = await w.h.tickets()
    assert len(tickets) == 1 and tickets[0].emergency
    rows = await w.outbox()
    assert rows[0].group_id == CHAT and rows[0].sent_via == "passive"
    assert rows[0].status == "sent"
    await w.h.drain()
    assert w.robot.bodies == []  # answered in the response, not again through the webhook
    # A retry gets the same passive answer and changes nothing.
    again = await w.post(
        {
            **w.message(f"@{ROBOT} {FIRE}", chattype="group", user="zhaoliu"),
            "msgid": event.dedup_key.rsplit(":", 1)[1],
        }
    )
    assert w.decrypt_reply(again)["stream"] == reply["stream"]
    assert len(await w.journal()) == 1 and len(await w.h.tickets()) == 1


async def test_a_passive_reply_is_counted_sent(w: W) -> None:
    # Only the delivery worker counted: a WeCom deployment's /metrics showed nothing sent.
    from bot.services.tokens import create_token

    async with w.h.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=w.h.clock.now())
    message = w.message("你好", user="lisi")
    for _ in range(2):  # a retry gets the same reply again: not a second message
        assert w.decrypt_reply(await w.post(message))["msgtype"] == "stream"
    r = await w.h.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert 'lianxin_outbox_sent_total{channel="wecom"} 1.0' in r.text, r.text


async def test_group_safety_replies_are_never_taken_by_a_busy_worker(w: W) -> None:
    # In production the delivery worker wakes the moment an event commits. The safety reply
    # must already be the response's by then: a group without a robot webhook has no other way
    # to receive it, so a worker that took it would fail it for good.
    await w.add_group(webhook=None)
    rt = w.h.runtime
    stop = False

    async def eager_worker() -> None:
        while not stop:
            await rt.outbox_wakeup.wait()
            rt.outbox_wakeup.clear()
            await w.h.worker.run_once()

    task = asyncio.create_task(eager_worker())
    try:
        for i in range(5):
            r = await w.post(w.message(f"@{ROBOT} {FIRE}{i}", chattype="group", user=f"u{i}"))
            assert "請立即撥打" in w.decrypt_reply(r)["stream"]["content"]
    finally:
        stop = True
        rt.outbox_wakeup.set()
        await task
    to_group = [row for row in await w.outbox() if row.group_id == CHAT]
    assert len(to_group) == 5
    assert {(row.status, row.sent_via) for row in to_group} == {("sent", "passive")}


async def test_an_unverified_residents_mention_is_answered_in_the_group(w: W) -> None:
    # Found by a newcomer: the reminder was queued as a private message, which a WeCom robot
    # cannot send (it failed for good), and the @-mention got an empty answer: nothing at all.
    # The reminder names nobody; it answers the mention where it was made.
    await w.add_group()
    r = await w.post(w.message(f"@{ROBOT} 我家電動車昨晚被偷了", chattype="group", user="u1"))
    assert r.status_code == 200
    assert "實名" in json.dumps(w.decrypt_reply(r), ensure_ascii=False)
    assert [row for row in await w.outbox() if row.group_id is None] == []


async def test_emergency_in_single_chat_gets_110_passively(w: W) -> None:
    r = await w.post(w.message(FIRE, user="sunqi"))
    content = w.decrypt_reply(r)["stream"]["content"]
    assert "110" in content and "119" in content
    (row, *_) = await w.outbox()
    assert row.user_id == "sunqi" and row.sent_via == "passive" and row.priority == 0


async def test_late_group_reply_goes_through_the_group_webhook(w: W) -> None:
    await w.add_group(webhook="KEY-WECOM")
    w.h.clock.step = timedelta(seconds=5)  # every clock reading costs 5 s: a slow path
    r = await w.post(w.message(f"@{ROBOT} {FIRE}", chattype="group", user="zhouba"))
    w.h.clock.step = timedelta(0)
    assert r.status_code == 200 and r.content == b""
    await w.h.drain()
    (row, *_) = await w.outbox()
    assert row.status == "sent" and row.sent_via == "api"
    key, body = w.robot.bodies[0]
    assert key == "KEY-WECOM"
    assert body["msgtype"] == "text" and "110" in body["text"]["content"]
    assert body["text"]["mentioned_list"] == ["zhouba"]


async def test_late_replies_without_a_send_path_fail_with_a_clear_reason(w: W) -> None:
    await w.add_group(webhook=None)
    w.h.clock.step = timedelta(seconds=5)
    await w.post(w.message(f"@{ROBOT} {FIRE}", chattype="group", user="wu"))
    await w.post(w.message("你好", user="zheng"))
    w.h.clock.step = timedelta(0)
    await w.h.drain()
    reasons = {(r.group_id, r.user_id): (r.status, r.last_error) for r in await w.outbox()}
    assert reasons[(CHAT, None)][0] == "failed"
    assert "no wecom_webhook" in (reasons[(CHAT, None)][1] or "")
    assert reasons[(None, "zheng")] == ("failed", NO_SINGLE_PATH)
    assert w.robot.bodies == []


async def test_enter_chat_event_is_journaled_and_stream_refresh_ignored(w: W) -> None:
    event = {
        "msgid": "CAIQevent01=",
        "create_time": int(w.h.clock.now().timestamp()),
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"corpid": "wpxxxx", "userid": "qian"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    }
    r = await w.post(event)
    assert r.status_code == 200 and r.content == b""
    refresh = {
        "msgid": "CAIQrefresh01=",
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "qian"},
        "msgtype": "stream",
        "stream": {"id": "lx-whatever"},
    }
    r = await w.post(refresh)
    assert r.status_code == 200 and r.content == b""
    (row,) = await w.journal()
    assert row.kind == "event" and row.dedup_key == "msg:qian:CAIQevent01="


async def test_aibot_id_is_checked_when_configured(w: W) -> None:
    settings = WeComSettings.model_validate(
        {"token": TOKEN, "encoding_aes_key": AES_KEY, "aibot_id": "OTHERBOT"}
    )
    w.h.runtime.wecom = WeComCallback.from_settings(settings, window_s=300)
    assert (await w.post(w.message("你好"))).status_code == 403
    assert await w.journal() == []


async def test_settings_model_and_mention_stripping() -> None:
    with pytest.raises(ValueError, match="43 characters"):
        WeComSettings.model_validate({"token": "t", "encoding_aes_key": "short"})
    with pytest.raises(ValueError):
        WeComSettings.model_validate({"token": "t", "unknown": 1})
    assert not WeComSettings().configured
    assert strip_mention("@連心 有人打架", "連心", group=True) == "有人打架"
    assert strip_mention("@連心\u2005有人打架", "連心", group=True) == "有人打架"
    assert strip_mention("@連心助手 有人打架", "連心", group=True) == "@連心助手 有人打架"
    assert strip_mention("@robot 有人打架", None, group=True) == "有人打架"
    assert strip_mention("@王警官 你好", None, group=False) == "@王警官 你好"


async def test_unknown_chat_is_journaled_as_such_and_emergency_still_answered(w: W) -> None:
    await w.h.load_directory()  # no group has this chatid
    r = await w.post(w.message(f"@{ROBOT} {FIRE}", chattype="group", chatid="wrkUnknownChat"))
    assert "110" in w.decrypt_reply(r)["stream"]["content"]
    (event,) = await w.journal()
    assert (event.group_id, event.status) == ("wrkUnknownChat", "unknown_group")


@pytest.mark.parametrize(
    ("field_path", "value"),
    [
        (("from", "userid"), "zhang\ud800"),
        (("text", "content"), "救命\ud800"),
        (("chatid",), "c\x00"),
    ],
)
async def test_fields_that_cannot_be_stored_are_400(
    w: W, field_path: tuple[str, ...], value: str
) -> None:
    # JSON escapes can carry lone surrogates and NUL; each was a 500 on every retry.
    message = w.message("有人拿刀砍人", chattype="group")
    target = message
    for key in field_path[:-1]:
        target = target[key]
    target[field_path[-1]] = value
    r = await w.post(json.dumps(message))  # ASCII escapes
    assert r.status_code == 400, r.text
    assert await w.journal() == []


async def test_an_officer_is_the_id_the_directory_names_on_that_channel(
    w: W, tmp_path: Path
) -> None:
    # A WeCom user whose id happens to equal an officer's WeChat id is a resident on WeCom:
    # their "结案 #CODE" is not an officer's command.
    await w.add_group()
    await w.h.bind("wxid_yang", group="grp-qiaozhen-01")
    await w.h.say("我家的电动车昨晚在楼下被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    [ticket] = await w.h.tickets()
    await w.post(
        w.message(f"@{ROBOT} 结案 #{ticket.code} 已处理", chattype="group", user="wxid_wang")
    )
    [after] = await w.h.tickets()
    assert after.status != "closed"
    # The officer's WeCom id, named in the directory, is the officer on WeCom.
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        DIRECTORY.read_text(encoding="utf-8").replace(
            "wechat_id: wxid_wang,", "wechat_id: wxid_wang, wecom_id: WangWei,"
        ),
        encoding="utf-8",
    )
    await w.h.load_directory(directory)
    await w.post(
        w.message(f"@{ROBOT} 结案 #{ticket.code} 已处理", chattype="group", user="WangWei")
    )
    [after] = await w.h.tickets()
    assert after.status == "closed"


async def test_an_officer_in_a_wecom_single_chat_is_answered_there(w: W, tmp_path: Path) -> None:
    # Found by a newcomer: 待辦 and 接單 from an officer's WeCom single chat got an empty
    # answer; the replies went to the bridge (his WeChat id), or with no WeChat id nowhere.
    await w.add_group()
    directory = tmp_path / "directory.yaml"
    directory.write_text(
        DIRECTORY.read_text(encoding="utf-8")
        .replace("wechat_id: wxid_wang,", "wechat_id: wxid_wang, wecom_id: WangWei,")
        .replace("wechat_id: wxid_li,", "wecom_id: LiNa,"),  # 李警官: WeCom only
        encoding="utf-8",
    )
    await w.h.load_directory(directory)
    await w.h.bind("wxid_yang", group="grp-qiaozhen-01")
    await w.h.say("我家的电动车昨晚在楼下被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    [ticket] = await w.h.tickets()
    todo = w.decrypt_reply(await w.post(w.message("待办", user="WangWei")))
    assert f"#{ticket.code}" in todo["stream"]["content"]
    taken = w.decrypt_reply(await w.post(w.message(f"接单 #{ticket.code}", user="LiNa")))
    assert f"#{ticket.code}" in taken["stream"]["content"]
    assert [t.assigned_officer_id for t in await w.h.tickets()] == ["off-li"]
    cipher = w.h.runtime.cipher
    bridged = [cipher.decrypt_json(r.payload_enc)["text"] for r in await w.outbox("bridge")]
    assert todo["stream"]["content"] not in bridged  # not also (or only) to his WeChat id


async def test_a_private_matter_asked_about_in_a_group_is_not_named_there(w: W) -> None:
    # Found in review: answers about a matter raised privately go to the writer privately,
    # which a WeCom robot cannot send (the row failed for good): they got nothing. The group
    # now hears a line that names nothing and asks them to write privately.
    await w.add_group()
    await w.post(w.message(FIRE, user="sunqi"))  # privately: a P1 of sunqi's
    [ticket] = await w.h.tickets()
    r = await w.post(w.message(f"@{ROBOT} 查询 #{ticket.code}", chattype="group", user="sunqi"))
    said = json.dumps(w.decrypt_reply(r), ensure_ascii=False)
    assert "私聊" in said and ticket.code not in said
    assert [
        row for row in await w.outbox() if row.group_id is None and row.sent_via != "passive"
    ] == []
