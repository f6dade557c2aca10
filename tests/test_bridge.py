"""``/bridge/events`` through the ASGI app: what each kind of request gets."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.bridge import sign
from bot.clock import ManualClock
from models.journal import InboundEvent
from models.outbox import OutboxMessage
from tests.fakes import FakeWorld
from tests.harness import Harness


async def _count(h: Harness, model: type) -> int:
    async with h.runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_good_event_is_journaled_and_answered_ok(harness: Harness) -> None:
    r = await harness.post_bridge(harness.bridge_body("你好", group=None))
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert await _count(harness, InboundEvent) == 1


async def test_bad_signature_is_401_and_stores_nothing(harness: Harness) -> None:
    r = await harness.post_bridge(harness.bridge_body("hi"), secret="wrong-secret")
    assert r.status_code == 401
    assert r.json()["error"] == "bad signature"
    assert await _count(harness, InboundEvent) == 0


async def test_missing_signature_headers_is_401(harness: Harness) -> None:
    r = await harness.post_bridge(harness.bridge_body("hi"), headers={})
    assert r.status_code == 401
    assert await _count(harness, InboundEvent) == 0


async def test_stale_timestamp_is_401(harness: Harness) -> None:
    from datetime import timedelta

    body = harness.bridge_body("hi")
    r = await harness.post_bridge(body, at=harness.clock.now() - timedelta(seconds=301))
    assert r.status_code == 401
    assert r.json()["error"] == "stale timestamp"
    r = await harness.post_bridge(body, at=harness.clock.now() + timedelta(seconds=301))
    assert r.status_code == 401
    # Just inside the window is fine.
    r = await harness.post_bridge(body, at=harness.clock.now() - timedelta(seconds=299))
    assert r.status_code == 200
    assert await _count(harness, InboundEvent) == 1


async def test_duplicate_event_id_changes_nothing(harness: Harness) -> None:
    body = harness.bridge_body("请问身份证怎么办", group=None, event_id="evt-dup-1")
    first = await harness.post_bridge(body)
    second = await harness.post_bridge(body)
    assert first.json() == {"ok": True}
    assert second.status_code == 200
    assert second.json() == {"ok": True, "duplicate": True}
    assert await _count(harness, InboundEvent) == 1
    replies = await _count(harness, OutboxMessage)
    third = await harness.post_bridge(body)
    assert third.json()["duplicate"] is True
    assert await _count(harness, OutboxMessage) == replies


async def test_malformed_json_is_422_saying_so(harness: Harness) -> None:
    r = await harness.post_bridge(b'{"event_id": "x", ')
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["error"]
    assert await _count(harness, InboundEvent) == 0


async def test_missing_field_is_422_naming_it(harness: Harness) -> None:
    body = harness.bridge_body("hi")
    del body["sender"]
    r = await harness.post_bridge(body)
    assert r.status_code == 422
    assert "sender" in r.json()["error"]
    body = harness.bridge_body("hi")
    body["message"]["type"] = "sticker"
    r = await harness.post_bridge(body)
    assert r.status_code == 422
    assert "message.type" in r.json()["error"]
    assert await _count(harness, InboundEvent) == 0


async def test_message_event_without_message_is_422(harness: Harness) -> None:
    body = harness.bridge_body("hi")
    del body["message"]
    r = await harness.post_bridge(body)
    assert r.status_code == 422
    assert r.json()["error"] == "message: required when type is 'message'"


async def test_oversized_body_is_413_and_stores_nothing(harness: Harness) -> None:
    body = harness.bridge_body("长" * 30000)  # ~90 KB of UTF-8, over the 64 KiB cap
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert len(raw) > 65536
    r = await harness.post_bridge(raw)
    assert r.status_code == 413
    assert await _count(harness, InboundEvent) == 0


async def test_unknown_group_is_accepted_journaled_and_flagged(harness: Harness) -> None:
    r = await harness.post_bridge(harness.bridge_body("大家好", group="grp-nowhere"))
    assert r.status_code == 200
    assert r.json() == {"ok": True, "unknown_group": True}
    async with harness.runtime.sessions() as s:
        row = await s.scalar(select(InboundEvent))
    assert row is not None and row.status == "unknown_group"


async def test_journal_text_is_encrypted_at_rest(harness: Harness) -> None:
    await harness.post_bridge(harness.bridge_body("我家门口有可疑的人", group=None))
    async with harness.runtime.sessions() as s:
        row = await s.scalar(select(InboundEvent))
    assert row is not None
    assert "可疑".encode() not in row.payload_enc
    assert harness.runtime.cipher.decrypt_json(row.payload_enc)["text"] == "我家门口有可疑的人"


async def test_malformed_headers_and_fields_are_answered_not_crashed(harness: Harness) -> None:
    from bot.channels.bridge import SIGNATURE_HEADER, TIMESTAMP_HEADER

    raw = json.dumps(harness.bridge_body("hi")).encode()
    huge = {TIMESTAMP_HEADER: "9" * 400, SIGNATURE_HEADER: "00"}
    assert (await harness.post_bridge(raw, headers=huge)).status_code == 401
    ts = str(int(harness.clock.now().timestamp()))
    odd = {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: "é".encode()}
    assert (await harness.post_bridge(raw, headers=odd)).status_code == 401
    body = harness.bridge_body("hi")
    body["timestamp"] = int(harness.clock.now().timestamp() * 1000)  # milliseconds by mistake
    r = await harness.post_bridge(body)
    assert r.status_code == 422 and "timestamp" in r.json()["error"]
    assert await _count(harness, InboundEvent) == 0


@pytest.mark.parametrize(
    ("stamp", "said"),
    [
        (lambda s: s * 1000, "timestamp: Unix seconds expected, got {ms} (milliseconds?"),
        (lambda s: str(s), "timestamp: Unix seconds as a JSON integer expected (not a string"),
        (lambda s: -1, "timestamp: Unix seconds expected, got -1"),
    ],
)
async def test_a_wrong_timestamp_is_explained_in_the_bridges_terms(
    harness: Harness, stamp: Callable[[int], object], said: str
) -> None:
    """Found by a newcomer writing a bridge: milliseconds were answered "timestamp: Input
    should be less than 100000000000"."""
    seconds = int(harness.clock.now().timestamp())
    body = harness.bridge_body("hi")
    body["timestamp"] = stamp(seconds)
    r = await harness.post_bridge(body)
    assert r.status_code == 422
    assert r.json()["error"].startswith(said.format(ms=seconds * 1000)), r.json()
    assert await _count(harness, InboundEvent) == 0


async def test_own_messages_echoed_by_the_bridge_are_never_answered(harness: Harness) -> None:
    await harness.load_directory()
    await harness.say("救命!有人拿刀在村口砍人!", group="grp-qiaozhen-01", sender="wxid_x")
    delivered = await harness.sent()
    [reply] = [d for d in delivered if d["group_id"] == "grp-qiaozhen-01"]
    before = await _count(harness, OutboxMessage)
    # The bridge forwards the bot's own group message back, rendered with the @-mention.
    echo = "@路人 " + reply["text"]
    r = await harness.post_bridge(
        harness.bridge_body(echo, group="grp-qiaozhen-01", sender="wxid_bot")
    )
    assert r.status_code == 200
    assert await _count(harness, OutboxMessage) == before
    async with harness.runtime.sessions() as s:
        statuses = (await s.scalars(select(InboundEvent.status).order_by(InboundEvent.id))).all()
    assert statuses[-1] == "own_message"


async def test_configured_self_id_is_never_answered(db_url: str, world: object) -> None:
    from tests.harness import Harness as H

    h = H.build(db_url, world, bridge={"self_ids": ["wxid_bot"]})  # type: ignore[arg-type]
    try:
        await h.say("你好,请问身份证怎么办理", group=None, sender="wxid_bot")
        assert await _count(h, OutboxMessage) == 0
    finally:
        await h.close()


async def test_text_message_without_text_is_422(harness: Harness) -> None:
    body = harness.bridge_body("hi")
    del body["message"]["text"]
    r = await harness.post_bridge(body)
    assert r.status_code == 422 and "message.text" in r.json()["error"]


async def test_oversized_answer_has_the_bridge_shape(harness: Harness) -> None:
    r = await harness.post_bridge(b"x" * 70000)
    assert r.status_code == 413 and r.json()["ok"] is False and "65536" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("message", "mentions"), ["wxid_bot\ud800"], "message.mentions"),
        (("message", "media_url"), "https://example.com/\ud800.jpg", "message.media_url"),
        (("sender", "id"), "wxid_\u0000e", "sender.id"),  # PostgreSQL refuses NUL
        (("group", "id"), "grp-qiaozhen-01\nERROR forged log line", "group.id"),
        (("event_id",), "evt\u0000", "event_id"),
    ],
)
async def test_ids_and_texts_that_cannot_be_stored_are_422_naming_the_field(
    harness: Harness, path: tuple[str, ...], value: Any, named: str
) -> None:
    # Each used to be a 500 on every retry (encryption or the database failing), so the event
    # was lost; a 422 tells the bridge why at once.
    body = harness.bridge_body("救命 有人拿刀砍人")
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    r = await harness.post_bridge(json.dumps(body).encode())  # ASCII escapes keep surrogates
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(named)
    assert await _count(harness, InboundEvent) == 0
    assert (await harness.post_bridge(harness.bridge_body("你好"))).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mentions", ["wxid_\u0000bot"]),
        ("mentions", ["wxid_bot\nERROR forged log line"]),
        ("mentions", ["w" * 60_000]),
        ("mentions", [""]),
        ("mentions", ["m"] * 12_000),
        ("media_url", "https://example.com/" + "a" * 60_000),
    ],
)
async def test_mentions_and_media_urls_are_held_to_their_rules_and_named(
    harness: Harness, field: str, value: Any
) -> None:
    # Each was answered 200 and kept with the event: ids with control characters, an id or a
    # URL of 60,000 characters, 12,000 mentions in one message.
    body = harness.bridge_body("你好")
    body["message"][field] = value
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) < 65536  # refused for what it says, not for its size
    r = await harness.post_bridge(raw)
    assert r.status_code == 422, r.text
    assert r.json()["ok"] is False and r.json()["error"].startswith(f"message.{field}")
    assert await _count(harness, InboundEvent) == 0


async def test_mentions_within_their_rules_or_null_are_kept(harness: Harness) -> None:
    # null means none, as leaving the field out does (it used to be a 422).
    most = [f"wxid_{i:03d}_" + "m" * 119 for i in range(100)]  # 100 ids of 128 characters
    for mentions, kept in ((None, []), (most, most)):
        body = harness.bridge_body("你好", media_url="https://example.com/" + "a" * 1980)
        body["message"]["mentions"] = mentions
        r = await harness.post_bridge(body)
        assert r.status_code == 200, r.text
        async with harness.runtime.sessions() as s:
            row = await s.scalar(
                select(InboundEvent).where(InboundEvent.dedup_key == body["event_id"])
            )
        assert row is not None
        assert harness.runtime.cipher.decrypt_json(row.payload_enc)["mentions"] == kept


# Control characters a text may not carry (C0 but tab and line breaks, DEL, C1).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


async def test_control_characters_are_removed_from_texts_and_the_message_kept(
    db_url: str, world: FakeWorld
) -> None:
    # A Monday morning in Beijing: the group's officer is on duty to be paged.
    h = Harness.build(db_url, world, clock=ManualClock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC)))
    await h.load_directory()
    try:
        body = h.bridge_body(
            "有人拿刀\x00砍人\x07快來\x1b[31m\x7f\x85\n在\t三樓",
            nickname="楊\x1b[2J某某\x00",
        )
        body["group"]["name"] = "測試\x00群"
        r = await h.post_bridge(body)
        assert r.status_code == 200 and r.json() == {"ok": True}, r.text

        async with h.runtime.sessions() as s:
            row = (await s.scalars(select(InboundEvent))).one()
        stored = h.runtime.cipher.decrypt_json(row.payload_enc)
        # The words stay, line breaks and tabs too; the controls are gone.
        assert stored["text"] == "有人拿刀砍人快來[31m\n在\t三樓"
        assert stored["nickname"] == "楊[2J某某" and stored["group_name"] == "測試群"

        delivered = await h.sent()
        page = [d["text"] for d in delivered if "有人拿刀砍人快來" in d["text"]]
        assert page, delivered  # the emergency was paged with the resident's words
        assert not any(_CONTROLS.search(d["text"]) for d in delivered)
    finally:
        await h.close()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id": "e", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # RecursionError
        b'{"event_id": "e", "timestamp": ' + b"9" * 5000 + b"}",  # int too long to convert
    ],
)
async def test_json_the_parser_cannot_take_is_422(harness: Harness, raw: bytes) -> None:
    r = await harness.post_bridge(raw)
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"]
    assert await _count(harness, InboundEvent) == 0


@pytest.mark.parametrize("stamp", [True, "1764380000", 1764380000.0])
async def test_a_timestamp_that_is_not_an_integer_is_422(harness: Harness, stamp: Any) -> None:
    body = harness.bridge_body("hi")
    body["timestamp"] = stamp
    r = await harness.post_bridge(body)
    assert r.status_code == 422 and "timestamp" in r.json()["error"]


async def test_a_header_timestamp_in_other_digits_is_401(harness: Harness) -> None:
    from bot.channels.bridge import SIGNATURE_HEADER, TIMESTAMP_HEADER

    raw = json.dumps(harness.bridge_body("hi")).encode()
    # "²".isdigit() is True, int("²") raises: this used to be a 500 without credentials.
    for stamp in ("²", "1764380000¹"):  # sent as Latin-1 bytes, as HTTP headers are read
        headers = {TIMESTAMP_HEADER: stamp.encode("latin-1"), SIGNATURE_HEADER: b"00"}
        r = await harness.client.post("/bridge/events", content=raw, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "bad timestamp"


INTERFACES = Path(__file__).resolve().parents[1] / "docs" / "interfaces.md"


def _documented_snippet() -> str:
    """The Python signing code of docs/interfaces.md §3.1."""
    doc = INTERFACES.read_text("utf-8")
    return doc.split("In Python:\n\n```python\n", 1)[1].split("```", 1)[0]


def _documented_example() -> tuple[str, str, bytes, str]:
    """The signing example of docs/interfaces.md §3.1: secret, timestamp, body, signature."""
    doc = INTERFACES.read_text("utf-8")
    section = doc.split("Worked example.", 1)[1].split("In Python:", 1)[0]
    secret = re.search(r"- secret `([^`]+)`", section)
    timestamp = re.search(r"- timestamp `(\d+)`", section)
    body = re.search(r"```json\n(.+)\n```", section)
    signature = re.search(r"X-Lianxin-Signature: ([0-9a-f]{64})", section)
    assert secret and timestamp and body and signature, "the example's layout changed"
    return secret[1], timestamp[1], body[1].encode(), signature[1]


async def test_the_documented_signing_example_is_accepted(db_url: str, world: FakeWorld) -> None:
    # A bridge author checks their code against the example: it must be right to the byte.
    secret, timestamp, body, signature = _documented_example()
    assert len(secret) >= 32
    assert sign(secret, timestamp, body) == signature
    # The page's Python snippet, as a bridge author would paste it, agrees.
    pasted: dict[str, Any] = {}
    exec(_documented_snippet(), pasted)
    assert pasted["sign"](secret, timestamp, body) == signature
    fresh = str(int(datetime.now(UTC).timestamp()))
    headers = {"X-Lianxin-Timestamp": fresh, "X-Lianxin-Signature": sign(secret, fresh, body)}
    assert pasted["verify"](secret, headers, body)
    assert not pasted["verify"](secret, {**headers, "X-Lianxin-Timestamp": timestamp}, body)
    clock = ManualClock(datetime.fromtimestamp(int(timestamp), UTC))
    h = Harness.build(db_url, world, clock=clock, bridge={"secret": secret})
    try:
        headers = {
            "X-Lianxin-Timestamp": timestamp,
            "X-Lianxin-Signature": signature,
            "Content-Type": "application/json",
        }
        r = await h.client.post("/bridge/events", content=body, headers=headers)
        assert r.status_code == 200 and r.json()["ok"] is True
        assert await _count(h, InboundEvent) == 1
    finally:
        await h.close()
