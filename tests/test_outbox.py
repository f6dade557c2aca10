"""The outbox worker against the fake bridge on loopback: retries, backoff, restarts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.messages import OutboundMessage
from broadcasts.outbox import enqueue
from models.outbox import OutboxMessage
from tests.fakes import FakeWorld
from tests.harness import Harness


async def _enqueue(h: Harness, text: str = "通知", **kwargs: object) -> int:
    async with h.runtime.sessions.begin() as s:
        row = enqueue(
            s,
            OutboundMessage(channel="bridge", text=text, group_id="grp-qiaozhen-01", **kwargs),  # type: ignore[arg-type]
            cipher=h.runtime.cipher,
            now=h.clock.now(),
        )
        await s.flush()
        return row.id


async def _row(h: Harness, outbox_id: int) -> OutboxMessage:
    async with h.runtime.sessions() as s:
        row = await s.get(OutboxMessage, outbox_id)
        assert row is not None
        return row


async def test_retry_after_503_then_success_delivers_once_with_same_key(harness: Harness) -> None:
    harness.world.state.send_script.extend([503])
    oid = await _enqueue(harness, "防詐騙提醒")
    first = await harness.drain()
    assert [o.status for o in first] == ["pending"]
    row = await _row(harness, oid)
    assert row.attempts == 1 and row.last_error == "HTTP 503"
    # Not due again until the backoff has passed.
    assert await harness.drain() == []
    harness.clock.advance(row.next_attempt_at - harness.clock.now() + timedelta(seconds=1))
    second = await harness.drain()
    assert [o.status for o in second] == ["sent"]
    sends = harness.world.state.sends()
    assert len(sends) == 2
    assert sends[0]["idempotency_key"] == sends[1]["idempotency_key"]
    delivered = harness.world.state.delivered()
    assert len(delivered) == 1 and delivered[0]["text"] == "防詐騙提醒"
    row = await _row(harness, oid)
    assert row.status == "sent" and row.attempts == 2 and row.sent_at is not None


async def test_a_message_queued_before_an_upgrade_still_sends_its_failure_notice(
    harness: Harness,
) -> None:
    # Rows queued by the previous release hold the notice itself under "on_failure".
    harness.world.state.send_script.extend([400])
    notice = {"channel": "bridge", "group_id": None, "user_id": "wxid_wang", "text": "未送达"}
    await _enqueue(harness, "答复", extra={"on_failure": notice})
    assert [o.status for o in await harness.drain()] == ["failed", "sent"]
    delivered = harness.world.state.delivered()
    assert [(d["user_id"], d["text"]) for d in delivered] == [("wxid_wang", "未送达")]


async def test_backoff_grows_exponentially(harness: Harness) -> None:
    harness.world.state.send_script.extend([500, 429, 502])
    oid = await _enqueue(harness)
    delays = []
    for _ in range(3):
        before = harness.clock.now()
        await harness.drain()
        row = await _row(harness, oid)
        delays.append((row.next_attempt_at - before).total_seconds())
        harness.clock.set(row.next_attempt_at)
    assert delays[0] < delays[1] < delays[2]
    assert 2 <= delays[0] <= 2.5 and 8 <= delays[2] <= 10
    assert [o.status for o in await harness.drain()] == ["sent"]


async def test_other_4xx_fails_for_good_with_reason(harness: Harness) -> None:
    harness.world.state.send_script.extend([400])
    oid = await _enqueue(harness)
    assert [o.status for o in await harness.drain()] == ["failed"]
    row = await _row(harness, oid)
    assert row.status == "failed" and row.last_error == "HTTP 400"
    harness.clock.advance(3600)
    assert await harness.drain() == []


async def test_gives_up_after_max_attempts_and_a_day(harness: Harness) -> None:
    harness.runtime.settings.outbox.max_attempts = 3
    harness.world.state.send_script.extend([503] * 30)
    oid = await _enqueue(harness)
    for _ in range(3):
        await harness.drain()
        harness.clock.advance(3600)
    # Three tries in three hours: still tried (a bridge down for five minutes used to lose
    # its P1 pages and answers for good after eight tries in about four minutes).
    row = await _row(harness, oid)
    assert row.status == "pending" and row.attempts == 3 and row.last_error == "HTTP 503"
    harness.clock.advance(timedelta(hours=21))
    await harness.drain()
    row = await _row(harness, oid)
    assert row.status == "failed" and row.attempts == 4 and row.last_error == "HTTP 503"


async def test_an_outage_of_an_hour_loses_nothing_and_keeps_each_chats_order(
    harness: Harness,
) -> None:
    harness.world.state.send_script.extend([503] * 12)  # the bridge is down for the first 12
    first = await _enqueue(harness, "第一條")
    await harness.drain()  # fails: backing off
    harness.world.state.send_script.clear()  # the bridge is back, before the first is due
    second = await _enqueue(harness, "第二條")
    for _ in range(40):
        await harness.drain()
        harness.clock.advance(timedelta(minutes=2))
    assert [(await _row(harness, oid)).status for oid in (first, second)] == ["sent", "sent"]
    # The second, due while the first waited to be tried again, did not overtake it.
    assert [d["text"] for d in harness.world.state.delivered()] == ["第一條", "第二條"]


async def test_a_throttled_send_waits_the_time_named_without_spending_an_attempt_or_health(
    harness: Harness,
) -> None:
    # Three 429s in a row used to mark the bridge down (and /readyz 503) and spend attempts.
    harness.world.state.send_script.extend(["429:42"] * 5)
    oid = await _enqueue(harness)
    for _ in range(5):
        await harness.drain()
        row = await _row(harness, oid)
        assert row.next_attempt_at == harness.clock.now() + timedelta(seconds=42)
        harness.clock.advance(42)
    assert (row.status, row.attempts) == ("pending", 0)
    assert not harness.worker.health.is_down("bridge")
    assert [o.status for o in await harness.drain()] == ["sent"]


async def test_pending_row_is_sent_after_a_restart(harness: Harness) -> None:
    oid = await _enqueue(harness, "重启之前排队的消息")
    restarted = await harness.restart()
    try:
        outcomes = await restarted.drain()
        assert [o.status for o in outcomes] == ["sent"]
        assert [d["text"] for d in restarted.world.state.delivered()] == ["重启之前排队的消息"]
        assert (await _row(restarted, oid)).status == "sent"
    finally:
        await restarted.close()
    harness.runtime = restarted.runtime  # the fixture closes it again harmlessly


async def test_crash_between_send_and_record_resends_with_same_key(harness: Harness) -> None:
    """A worker that died after sending leaves the row 'sending'; once its lease runs out the
    next worker sends again under the same key, so the bridge delivers it once."""
    oid = await _enqueue(harness, "只送一次")
    claimed = await harness.worker._claim()
    assert [row.id for row in claimed] == [oid]
    row = await _row(harness, oid)
    payload = harness.runtime.cipher.decrypt_json(row.payload_enc)
    await harness.runtime.senders["bridge"].send(
        idempotency_key=row.idempotency_key, group_id=row.group_id, user_id=None, payload=payload
    )
    # ... and the process dies here, before recording. Another worker, before the lease expires:
    assert await harness.drain() == []
    harness.clock.advance(harness.runtime.settings.outbox.lease_s + 1)
    assert [o.status for o in await harness.drain()] == ["sent"]
    sends = harness.world.state.sends()
    assert len(sends) == 2 and sends[0]["idempotency_key"] == sends[1]["idempotency_key"]
    assert len(harness.world.state.delivered()) == 1


async def test_urgent_rows_go_first(harness: Harness) -> None:
    await _enqueue(harness, "普通公告", priority=9)
    await _enqueue(harness, "紧急寻人", priority=0)
    await harness.drain()
    assert [s["text"] for s in harness.world.state.sends()] == ["紧急寻人", "普通公告"]


async def test_outbox_payload_encrypted_at_rest(harness: Harness) -> None:
    oid = await _enqueue(harness, "张三的电话13812345678")
    async with harness.runtime.sessions() as s:
        raw = await s.scalar(select(OutboxMessage.payload_enc).where(OutboxMessage.id == oid))
    assert raw is not None and b"13812345678" not in raw


async def test_timeout_is_retried(db_url: str, world: FakeWorld) -> None:
    # The fake answers a "hang" after 5 s; a short client timeout finds that out sooner than
    # the harness's 10 s would.
    harness = Harness.build(db_url, world, bridge={"timeout_s": 0.3})
    try:
        harness.world.state.send_script.extend(["hang"])
        oid = await _enqueue(harness)
        outcomes = await harness.drain()
        assert [o.status for o in outcomes] == ["pending"]
        assert (await _row(harness, oid)).last_error == "timeout"
    finally:
        await harness.close()


async def test_undecryptable_row_fails_instead_of_sticking(harness: Harness) -> None:
    from sqlalchemy import update

    oid = await _enqueue(harness, "无法解密")
    async with harness.runtime.sessions.begin() as s:
        await s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == oid)
            .values(payload_enc=b"\x01garbage" + bytes(40))
        )
    later = await _enqueue(harness, "后面的消息")
    outcomes = await harness.drain()
    assert {(o.outbox_id, o.status) for o in outcomes} == {(oid, "failed"), (later, "sent")}
    assert (await _row(harness, oid)).last_error == "undecryptable payload"
