"""``/wechat/callback`` with wechatpy as the real crypto peer (CONTRACT §2)."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.cli_common import setup_logging
from bot.settings import ConfigError
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from models.tickets import Ticket
from tests.fakes import FakeWorld
from tests.harness import ACCOUNT, API_SEND, DIRECTORY, WECHAT_TOKEN, Harness, make_runtime

# Every test here runs in both WeChat reply modes (tests/conftest.py, issue 17).
pytestmark = pytest.mark.both_reply_modes


MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # 王警官's shift


def _sig(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def _journal_count(h: Harness) -> int:
    async with h.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(InboundEvent)) or 0)


async def test_url_verification_echoes_when_signature_holds(harness: Harness) -> None:
    ts, nonce = str(int(harness.clock.now().timestamp())), "n0nce"
    r = await harness.client.get(
        "/wechat/callback",
        params={
            "signature": _sig(WECHAT_TOKEN, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": "echo-123",
        },
    )
    assert r.status_code == 200
    assert r.text == "echo-123"


async def test_url_verification_bad_signature_is_403(harness: Harness) -> None:
    ts, nonce = str(int(harness.clock.now().timestamp())), "n0nce"
    r = await harness.client.get(
        "/wechat/callback",
        params={
            "signature": _sig("other-token", ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": "echo-123",
        },
    )
    assert r.status_code == 403
    assert "echo-123" not in r.text
    r = await harness.client.get("/wechat/callback", params={"echostr": "x"})
    assert r.status_code == 403


async def test_safe_mode_message_gets_encrypted_passive_reply(harness: Harness) -> None:
    xml = harness.wechat_text_xml("你好", openid="o_abc")
    r = await harness.post_wechat_safe(xml)
    assert r.status_code == 200
    reply = await harness.reply_to(r)
    assert reply["ToUserName"] == "o_abc"
    assert reply["MsgType"] == "text"
    assert "110" in reply["Content"]
    assert await _journal_count(harness) == 1
    async with harness.runtime.sessions() as s:
        row = await s.scalar(select(OutboxMessage))
    assert row is not None and row.status == "sent"
    if harness.passive:
        # Answered passively: nothing left for the worker to send through the API.
        assert row.sent_via == "passive"
        assert await harness.drain() == []
        assert harness.world.state.by_path("/cgi-bin/message/custom/send") == []
    else:  # reply_mode api: the one answer went through the customer-service API
        assert row.sent_via == "api"
        assert len(harness.world.state.by_path("/cgi-bin/message/custom/send")) == 1


async def test_a_reply_is_counted_sent_once_whichever_way_it_went(harness: Harness) -> None:
    # A passive reply was never counted (only the delivery worker counted its sends).
    from bot.services.tokens import create_token

    async with harness.runtime.sessions.begin() as s:
        admin = await create_token(s, role="admin", name="ops", now=harness.clock.now())
    reply = await harness.reply_to(await harness.post_wechat_safe(harness.wechat_text_xml("你好")))
    assert reply["Content"]
    r = await harness.client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert 'lianxin_outbox_sent_total{channel="wechat"} 1.0' in r.text


async def test_tampered_ciphertext_is_403_and_stores_nothing(harness: Harness) -> None:
    r = await harness.post_wechat_safe(harness.wechat_text_xml("你好"), tamper=True)
    assert r.status_code == 403
    assert await _journal_count(harness) == 0


async def test_wrong_aes_key_is_400_and_stores_nothing(harness: Harness) -> None:
    other_key = os.urandom(32).hex()[:43]
    r = await harness.post_wechat_safe(harness.wechat_text_xml("你好"), aes_key=other_key)
    assert r.status_code == 400
    assert await _journal_count(harness) == 0


async def test_broken_xml_is_400(harness: Harness) -> None:
    ts, nonce = str(int(harness.clock.now().timestamp())), "abc"
    r = await harness.client.post(
        "/wechat/callback",
        params={
            "timestamp": ts,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": "x" * 40,
            "signature": _sig(WECHAT_TOKEN, ts, nonce),
        },
        content=b"<xml><Encrypt>not closed",
    )
    assert r.status_code == 400
    assert await _journal_count(harness) == 0


async def test_decrypted_but_malformed_inner_xml_is_400(harness: Harness) -> None:
    # Valid envelope and signature around a message with no MsgType.
    inner = "<xml><ToUserName>gh_lianxin_test</ToUserName><FromUserName>o_x</FromUserName></xml>"
    r = await harness.post_wechat_safe(inner)
    assert r.status_code == 400
    # The answer (and the log) names what is missing, never quoting the message: it said
    # only "KeyError" or "ValueError".
    assert r.text == "malformed message (missing MsgType)"
    no_content = (
        harness.wechat_text_xml("你好").replace("<Content>", "<X>").replace("</Content>", "</X>")
    )
    r = await harness.post_wechat_safe(no_content)
    assert (r.status_code, r.text) == (400, "malformed message (text without Content)")
    assert await _journal_count(harness) == 0


async def test_stale_timestamp_is_403(harness: Harness) -> None:
    xml = harness.wechat_text_xml("你好")
    r = await harness.post_wechat_safe(xml, at=harness.clock.now() - timedelta(seconds=400))
    assert r.status_code == 403
    assert await _journal_count(harness) == 0


async def test_plain_mode_refused_when_safe_mode_configured(harness: Harness) -> None:
    ts, nonce = str(int(harness.clock.now().timestamp())), "abc"
    r = await harness.client.post(
        "/wechat/callback",
        params={"signature": _sig(WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce},
        content=harness.wechat_text_xml("你好").encode(),
    )
    assert r.status_code == 403


async def test_plain_mode_needs_allow_plain_mode_and_then_works(
    db_url: str, world: FakeWorld
) -> None:
    # Without an EncodingAESKey the signature covers the URL, not the message: refused at
    # start-up unless the operator says they accept that.
    with pytest.raises(ConfigError, match=r"wechat\.allow_plain_mode: true"):
        Harness.build(db_url, world, wechat={"encoding_aes_key": None})
    h = Harness.build(db_url, world, wechat={"encoding_aes_key": None, "allow_plain_mode": True})
    try:
        ts, nonce = str(int(h.clock.now().timestamp())), "abc"
        r = await h.client.post(
            "/wechat/callback",
            params={"signature": _sig(WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce},
            content=h.wechat_text_xml("你好", openid="o_plain").encode(),
        )
        assert r.status_code == 200
        if h.passive:
            assert "<ToUserName><![CDATA[o_plain]]></ToUserName>" in r.text and "110" in r.text
        else:
            assert r.text == "success"
            await h.drain()
            (send,) = h.world.state.by_path("/cgi-bin/message/custom/send")
            assert send.json()["touser"] == "o_plain" and "110" in send.json()["text"]["content"]
        assert await _journal_count(h) == 1
    finally:
        await h.close()


async def test_retry_of_same_msgid_has_one_effect(harness: Harness) -> None:
    xml = harness.wechat_text_xml("你好", openid="o_retry", msg_id=987654321)
    first = await harness.post_wechat_safe(xml)
    second = await harness.post_wechat_safe(xml)
    third = await harness.post_wechat_safe(xml)
    assert first.status_code == second.status_code == third.status_code == 200
    # WeChat only retries when our answer did not reach it, so each retry gets the same answer.
    assert (await harness.reply_to(second))["Content"] == (await harness.reply_to(first))["Content"]
    assert await _journal_count(harness) == 1
    async with harness.runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_oversized_body_is_413(harness: Harness) -> None:
    r = await harness.client.post(
        "/wechat/callback", params={"timestamp": "1", "nonce": "1"}, content=b"x" * 70000
    )
    assert r.status_code == 413


async def test_wrong_account_is_refused(harness: Harness) -> None:
    xml = harness.wechat_text_xml("你好").replace("gh_lianxin_test", "gh_someone_else")
    r = await harness.post_wechat_safe(xml)
    assert r.status_code == 403
    assert await _journal_count(harness) == 0


async def test_late_answer_goes_through_customer_service_api(harness: Harness) -> None:
    """When the reply misses the passive window the worker sends it via the API."""
    xml = harness.wechat_text_xml("你好", openid="o_late")
    harness.clock.step = timedelta(seconds=5)  # every clock reading costs 5 s: a slow path
    r = await harness.post_wechat_safe(xml)
    harness.clock.step = timedelta(0)
    assert r.status_code == 200
    assert r.text == "success"
    async with harness.runtime.sessions() as s:
        row = await s.scalar(select(OutboxMessage))
    assert row is not None and row.status == "pending"
    outcomes = await harness.drain()
    assert [o.status for o in outcomes] == ["sent"]
    sends = harness.world.state.by_path("/cgi-bin/message/custom/send")
    assert len(sends) == 1 and sends[0].json()["touser"] == "o_late"
    assert "110" in sends[0].json()["text"]["content"]


async def test_access_token_cached_and_refreshed_on_expiry(harness: Harness) -> None:
    api = harness.runtime.senders["wechat"]
    payload = {"text": "測試"}
    await api.send(idempotency_key="k1", group_id=None, user_id="o_1", payload=payload)
    await api.send(idempotency_key="k2", group_id=None, user_id="o_1", payload=payload)
    state = harness.world.state
    assert len(state.by_path("/cgi-bin/token")) == 1  # cached
    state.valid_tokens.clear()  # WeChat invalidates it: next call answers 40001
    await api.send(idempotency_key="k3", group_id=None, user_id="o_1", payload=payload)
    assert len(state.by_path("/cgi-bin/token")) == 2  # refreshed once, then sent
    sends = state.by_path("/cgi-bin/message/custom/send")
    assert [s.headers["x-fake-accepted"] for s in sends] == ["1", "1", "0", "1"]


async def test_a_token_another_process_fetched_is_taken_from_the_database(
    harness: Harness,
) -> None:
    # Each process keeps the token it used. When another process (the second `serve`, or the
    # processing process after a restart) fetched a newer one and WeChat refuses ours, ours is
    # read again from the database, not fetched a third time.
    api = harness.runtime.senders["wechat"]
    payload = {"text": "測試"}
    state = harness.world.state
    await api.send(idempotency_key="k1", group_id=None, user_id="o_1", payload=payload)
    ours = state.by_path("/cgi-bin/message/custom/send")[0].query["access_token"]
    other = make_runtime(harness.runtime.settings, clock=harness.clock)
    try:
        newer = await other.senders["wechat"].access_token(stale=ours)
    finally:
        await other.aclose()
    assert newer != ours
    state.valid_tokens.discard(ours)  # WeChat retires ours
    await api.send(idempotency_key="k2", group_id=None, user_id="o_1", payload=payload)
    await api.send(idempotency_key="k3", group_id=None, user_id="o_1", payload=payload)
    assert len(state.by_path("/cgi-bin/token")) == 2
    sends = state.by_path("/cgi-bin/message/custom/send")
    assert [s.query["access_token"] for s in sends] == [ours, ours, newer, newer]
    assert [s.headers["x-fake-accepted"] for s in sends] == ["1", "0", "1", "1"]


async def test_a_token_rejected_again_after_a_refresh_is_retried_later(harness: Harness) -> None:
    # Another process fetched a token meanwhile: our fresh one is refused too. That is worth
    # another try with backoff, not a permanent failure after one attempt.
    from bot.messages import SendError

    api = harness.runtime.senders["wechat"]
    await api.send(idempotency_key="k1", group_id=None, user_id="o_1", payload={"text": "測試"})
    harness.world.state.custom_send_script.extend([40001, 40001])
    with pytest.raises(SendError) as failure:
        await api.send(idempotency_key="k2", group_id=None, user_id="o_1", payload={"text": "測試"})
    assert failure.value.retryable and "40001" in failure.value.reason
    await api.send(idempotency_key="k2", group_id=None, user_id="o_1", payload={"text": "測試"})
    sends = harness.world.state.by_path("/cgi-bin/message/custom/send")
    assert [s.headers["x-fake-accepted"] for s in sends] == ["1", "0", "0", "1"]


async def test_following_the_account_gets_a_welcome_once(harness: Harness) -> None:
    ts = int(harness.clock.now().timestamp())
    xml = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[o_newcomer]]></FromUserName><CreateTime>{ts}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"
    )
    first = await harness.post_wechat_safe(xml)
    reply = await harness.reply_to(first)
    assert reply["ToUserName"] == "o_newcomer" and "实名 姓名 手机号" in reply["Content"]
    again = await harness.post_wechat_safe(xml)  # WeChat's retry: the same answer, once
    if harness.passive:
        assert (await harness.reply_to(again))["Content"] == reply["Content"]
    else:  # the welcome went through the API already: the retry sends nothing more
        assert again.text == "success"
        await harness.drain()
        sends = harness.world.state.by_path("/cgi-bin/message/custom/send")
        assert [s.json()["touser"] for s in sends] == ["o_newcomer"]
    assert await _journal_count(harness) == 1


async def test_app_secret_and_access_token_never_reach_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # WeChat's API carries both in the query string, and httpx logs every URL at INFO.
    setup_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    api = harness.runtime.senders["wechat"]
    await api.send(idempotency_key="k1", group_id=None, user_id="o_1", payload={"text": "測試"})
    assert harness.world.state.by_path("/cgi-bin/token")  # the token was fetched and used
    assert "test-app-secret" not in caplog.text and "tok-" not in caplog.text


async def test_non_ascii_signature_and_huge_timestamp_are_403(harness: Harness) -> None:
    r = await harness.client.get(
        "/wechat/callback",
        params={"signature": "中", "timestamp": "1", "nonce": "n", "echostr": "e"},
    )
    assert r.status_code == 403
    r = await harness.client.post(
        "/wechat/callback",
        params={"timestamp": "9" * 300, "nonce": "n", "encrypt_type": "aes", "msg_signature": "x"},
        content=b"<xml><Encrypt>abc</Encrypt></xml>",
    )
    assert r.status_code == 403


def _event_xml(harness: Harness, openid: str, event: str, extra: str = "") -> str:
    ts = int(harness.clock.now().timestamp())
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


async def test_following_through_a_qr_code_gets_the_welcome_too(harness: Harness) -> None:
    # wechatpy renames a subscribe that carries a QR scene to subscribe_scan.
    extra = "<EventKey><![CDATA[qrscene_123]]></EventKey><Ticket><![CDATA[T]]></Ticket>"
    r = await harness.post_wechat_safe(_event_xml(harness, "o_scanner", "subscribe", extra))
    assert "实名 姓名 手机号" in (await harness.reply_to(r))["Content"]


async def test_two_events_in_one_second_are_two_events(harness: Harness) -> None:
    await harness.post_wechat_safe(_event_xml(harness, "o_quick", "subscribe"))
    r = await harness.post_wechat_safe(_event_xml(harness, "o_quick", "unsubscribe"))
    assert r.text == "success"  # not the welcome again, as a "retry" of the subscribe
    assert await _journal_count(harness) == 2


async def test_a_msgid_is_one_users_own(harness: Harness) -> None:
    # The same MsgId from another user is another message: it never gets the first user's
    # passive reply (with their ticket code) back.
    first = await harness.post_wechat_safe(
        harness.wechat_text_xml("请问身份证怎么补办", openid="o_a", msg_id=4242)
    )
    second = await harness.post_wechat_safe(
        harness.wechat_text_xml("你好", openid="o_b", msg_id=4242)
    )
    assert (await harness.reply_to(first))["ToUserName"] == "o_a"
    assert second.text == "success" or (await harness.reply_to(second))["ToUserName"] == "o_b"
    assert await _journal_count(harness) == 2


@pytest.mark.parametrize(
    ("create_time", "sender", "content"),
    [
        (None, "o_resident", None),  # a text message without Content
        ("0", "o_resident", "你好"),
        ("-5", "o_resident", "你好"),
        (None, "o" * 5000, "你好"),  # wider than any id column: refused, not a 500
    ],
)
async def test_messages_that_cannot_be_kept_are_400(
    harness: Harness, create_time: str | None, sender: str, content: str | None
) -> None:
    ts = create_time or str(int(harness.clock.now().timestamp()))
    body = f"<Content><![CDATA[{content}]]></Content>" if content is not None else ""
    xml = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName><CreateTime>{ts}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType>{body}<MsgId>77001</MsgId></xml>"
    )
    r = await harness.post_wechat_safe(xml)
    assert r.status_code == 400, r.text
    assert await _journal_count(harness) == 0


async def test_a_timestamp_in_other_digits_is_403(harness: Harness) -> None:
    r = await harness.client.post(
        "/wechat/callback",
        params={"timestamp": "²", "nonce": "n", "encrypt_type": "aes", "msg_signature": "x"},
        content=b"<xml><Encrypt>abc</Encrypt></xml>",
    )
    assert r.status_code == 403


WANG_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # as WeChat gives them: 28 characters


async def _wang_on_the_account(h: Harness, tmp_path: Path) -> None:
    """The directory with 王警官's wechat_id an OpenID of the account; Monday 10:00."""
    assert len(WANG_OPENID) == 28
    text = DIRECTORY.read_text(encoding="utf-8").replace(
        "wechat_id: wxid_wang,", f"wechat_id: {WANG_OPENID},"
    )
    (tmp_path / "directory.yaml").write_text(text, encoding="utf-8")
    await h.load_directory(tmp_path / "directory.yaml")
    h.clock.set(MONDAY_10)


@pytest.mark.both_reply_modes
async def test_an_officer_on_the_official_account_is_answered_and_paged_there(
    harness: Harness, tmp_path: Path
) -> None:
    # Found by a newcomer: an officer whose wechat_id is the account's OpenID sent 待辦 and
    # 接單 there; every answer, and the P1 page, went to the bridge, which cannot reach him.
    h = harness
    await _wang_on_the_account(h, tmp_path)
    openid = WANG_OPENID
    await h.say("着火了!三楼冒烟了,快来人", group="grp-qiaozhen-01", sender="wxid_resident")
    await h.drain()
    pages = [r.json() for r in h.world.state.by_path(API_SEND) if r.json().get("touser") == openid]
    assert any("P1" in p["text"]["content"] for p in pages), "the page reached him on the account"
    assert not [d for d in h.world.state.delivered() if d["user_id"] == openid]  # not the bridge
    todo = await h.reply_to(await h.post_wechat_safe(h.wechat_text_xml("待辦", openid=openid)))
    assert "#" in todo["Content"] and "P1" in todo["Content"]


async def test_a_todo_list_over_wechats_2048_bytes_reaches_the_officer_in_parts(
    harness: Harness, tmp_path: Path
) -> None:
    # WeChat refuses a text over 2,048 bytes (errcode 45002, as the fake does): an officer with
    # sixty open tickets asking 待辦 on the account got nothing, the list failed whole.
    h = harness
    await _wang_on_the_account(h, tmp_path)
    openid = WANG_OPENID
    codes = [f"T{n:04d}" for n in range(60)]
    async with h.runtime.sessions.begin() as s:
        for code in codes:
            s.add(
                Ticket(
                    code=code,
                    category="help",
                    priority=3,
                    status="acknowledged",
                    channel="bridge",
                    station_id="qiaozhen",
                    assigned_officer_id="off-wang",
                    text_enc=h.runtime.cipher.encrypt("…"),
                    created_at=MONDAY_10,
                    updated_at=MONDAY_10,
                    acknowledged_at=MONDAY_10,
                    ack_due_at=MONDAY_10,
                    answer_due_at=MONDAY_10 + timedelta(days=1),
                )
            )
    before = len(h.world.state.by_path(API_SEND))
    r = await h.post_wechat_safe(h.wechat_text_xml("待辦", openid=openid))
    assert r.status_code == 200 and r.text == "success"  # too long for a passive reply too
    await h.drain()
    parts = [
        s.json()["text"]["content"]
        for s in h.world.state.by_path(API_SEND)[before:]
        if s.json()["touser"] == openid and s.headers["x-fake-accepted"] == "1"
    ]
    assert len(parts) >= 2 and all(len(p.encode()) <= 2048 for p in parts)
    whole = "\n".join(parts)
    assert [c for c in codes if f"#{c}" not in whole] == []
    assert whole.index(f"#{codes[0]}") < whole.index(f"#{codes[-1]}")  # in order
    async with h.runtime.sessions() as s:
        statuses = (await s.scalars(select(OutboxMessage.status))).all()
    assert "failed" not in statuses


async def test_a_menu_button_tapped_is_answered(harness: Harness) -> None:
    # Found in a newcomer's trial: a tap on the account's menu (a CLICK event) got `success`
    # and nothing, so the button looked broken; a location report (LOCATION) stays silent.
    xml = _event_xml(harness, "o_tap", "CLICK", "<EventKey><![CDATA[MENU_REPORT]]></EventKey>")
    reply = await harness.reply_to(await harness.post_wechat_safe(xml))
    assert "连心" in reply["Content"] and "110" in reply["Content"]
    harness.clock.advance(timedelta(seconds=1))
    located = "<Latitude>34.7</Latitude><Longitude>113.6</Longitude><Precision>30</Precision>"
    response = await harness.post_wechat_safe(_event_xml(harness, "o_tap", "LOCATION", located))
    assert response.text == "success"
