"""Bulletins (issue 5): schedules on the manual clock, quiet hours, the daily cap, restarts and
missed runs, retries and crashes through the outbox, the admin API, the CLI, media, WeCom robots."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.wecom_robot import WeComRobotSender, robot_bodies
from bot.cli import build_parser
from bot.cli_bulletins import register
from bot.messages import SendError
from broadcasts.bulletins import QuietHours, bulletin_tick, materialise_runs, plan_slot
from models.bulletins import Bulletin
from models.directory import Group
from tests.bulletins_support import GROUPS, TZ, Bench, local
from tests.harness import DIRECTORY, Harness

MON_10 = local(2026, 11, 30, 10)  # a Monday morning, outside quiet hours


@pytest.fixture
async def b(harness: Harness) -> Bench:
    return await Bench.build(harness, at=MON_10)


def texts_to(b: Bench, group: str) -> list[str]:
    return [m["text"] for m in b.h.to_group(group)]


# --- schedules ---------------------------------------------------------------------------------
async def test_one_off_goes_out_once_at_its_time_with_media(b: Bench) -> None:
    at = MON_10 + timedelta(hours=1)
    bid = await b.create(
        schedule={"at": at},
        media={"type": "video", "url": "https://example.org/v.mp4", "title": "短片"},
    )
    assert (await b.tick()).fanned_out == 0
    assert await b.h.sent() == []
    b.h.clock.set(at)
    result = await b.tick()
    assert (result.fanned_out, result.deliveries) == (1, 1)
    assert (await b.tick()).fanned_out == 0  # a second tick changes nothing
    [sent] = await b.h.sent()
    assert sent["group_id"] == "grp-qiaozhen-01"
    assert sent["text"] == "【防詐騙提醒】\n不要向陌生賬戶轉賬。"  # the admin's words, as written
    assert sent["media"] == {"type": "video", "url": "https://example.org/v.mp4", "title": "短片"}
    assert sent["idempotency_key"].startswith("bulletin-")
    [d] = await b.deliveries(bid)
    assert (d["group_id"], d["status"], d["attempts"]) == ("grp-qiaozhen-01", "sent", 1)
    assert d["sent_at"] is not None
    [run] = await b.runs(bid)
    assert run["status"] == "sent" and run["totals"]["sent"] == 1 and run["totals"]["pending"] == 0
    info = await b.get(f"/api/v1/bulletins/{bid}")
    assert info["status"] == "finished" and info["next_run_at"] is None


async def test_cron_is_evaluated_in_the_configured_timezone(b: Bench) -> None:
    b.h.runtime.settings.bulletins.quiet_hours = None
    bid = await b.create(schedule={"cron": "0 8 * * *"}, targets={"all": True})
    info = await b.get(f"/api/v1/bulletins/{bid}")
    # 08:00 in Shanghai (UTC+8, no daylight saving) is midnight UTC, the next day from 10:00.
    assert info["next_run_at"].startswith("2026-12-01T00:00:00")
    b.h.clock.set(local(2026, 12, 1, 7, 59))
    assert (await b.tick()).fanned_out == 0
    b.h.clock.set(local(2026, 12, 1, 8, 0))
    assert (await b.tick()).deliveries == 3
    await b.h.sent()  # the worker sends them (a run still waiting would absorb the next one)
    b.h.clock.set(
        local(
            2026,
            12,
            2,
            8,
            0,
        )
    )
    assert (await b.tick()).deliveries == 3
    runs = await b.runs(bid)
    assert [r["due_at"][:19] for r in runs] == ["2026-12-02T00:00:00", "2026-12-01T00:00:00"]
    await b.h.sent()
    assert len(texts_to(b, "grp-hexi-01")) == 2


async def test_cron_start_and_end_bound_the_runs(b: Bench) -> None:
    bid = await b.create(
        schedule={
            "cron": "0 9 * * *",
            "start": local(2026, 12, 2, 0).isoformat(),
            "end": local(2026, 12, 3, 12).isoformat(),
        }
    )
    info = await b.get(f"/api/v1/bulletins/{bid}")
    assert info["next_run_at"].startswith("2026-12-02T01:00:00")  # 09:00 local on the start day
    for day in (1, 2, 3, 4):
        b.h.clock.set(local(2026, 12, day, 9, 1))
        await b.tick()
    runs = await b.runs(bid)
    assert sorted(r["due_at"][:10] for r in runs) == ["2026-12-02", "2026-12-03"]
    assert (await b.get(f"/api/v1/bulletins/{bid}"))["status"] == "finished"


async def test_daily_cap_counts_local_days_across_midnight(b: Bench) -> None:
    """23:50 and 00:10 Shanghai time are one UTC day (15:50, 16:10) but two local days."""
    b.h.runtime.settings.bulletins.quiet_hours = None
    b.h.runtime.settings.bulletins.daily_cap_per_group = 1
    late = await b.create(schedule={"cron": "50 23 * * *"})
    early = await b.create(schedule={"cron": "10 0 * * *"}, title="夜間防盜")
    b.h.clock.set(local(2026, 11, 30, 23, 50))
    await b.tick()
    b.h.clock.set(local(2026, 12, 1, 0, 10))
    await b.tick()
    [d1] = await b.deliveries(late)
    [d2] = await b.deliveries(early)
    assert d1["status"] == "pending" and d2["status"] == "pending"  # neither held by the cap
    assert len(await b.h.sent()) == 2


# --- quiet hours and the cap -------------------------------------------------------------------
async def test_quiet_hours_hold_a_bulletin_until_morning(b: Bench) -> None:
    bid = await b.create(schedule={"at": local(2026, 11, 30, 22, 0)})
    b.h.clock.set(local(2026, 11, 30, 22, 0))
    await b.tick()
    assert await b.h.sent() == []
    [d] = await b.deliveries(bid)
    assert d["status"] == "deferred"
    assert d["reason"].startswith("quiet_hours") and "2026-12-01 07:30" in d["reason"]
    [run] = await b.runs(bid)
    assert run["status"] == "waiting"  # fanned out, and nothing has gone yet
    b.h.clock.set(local(2026, 12, 1, 7, 29))
    assert await b.h.sent() == []
    b.h.clock.set(local(2026, 12, 1, 7, 30))
    assert len(await b.h.sent()) == 1
    assert (await b.deliveries(bid))[0]["status"] == "sent"
    assert (await b.runs(bid))[0]["status"] == "sent"


async def test_night_runs_of_a_cron_bulletin_wait_as_one(b: Bench) -> None:
    # Every 30 minutes through the quiet hours: one copy waits for the morning, not one per run.
    b.h.clock.set(local(2026, 11, 30, 21, 45))
    bid = await b.create(schedule={"cron": "*/30 * * * *"})
    for minute in (0, 30, 60, 90):
        b.h.clock.set(local(2026, 11, 30, 22, 0) + timedelta(minutes=minute))
        await b.tick()
    deliveries = await b.deliveries(bid)
    assert [d["status"] for d in deliveries] == ["deferred", "cancelled", "cancelled", "cancelled"]
    assert all(d["reason"].startswith("merged") for d in deliveries[1:])
    b.h.clock.set(local(2026, 12, 1, 7, 30))
    await b.tick()
    assert len([m for m in await b.h.sent() if m["group_id"] == deliveries[0]["group_id"]]) == 1
    # The figures count the one run that went out, not the three merged into it.
    figures = await b.get("/api/v1/stats?from=2026-11-30&to=2026-11-30")
    assert figures["bulletins"] == {"runs": 1, "delivered": 1, "failed": 0}


def test_quiet_hours_maths() -> None:
    quiet = QuietHours.parse("21:30-07:30")
    assert quiet is not None
    free = lambda _d: 0  # noqa: E731
    slot = plan_slot(local(2026, 11, 30, 3, 0), tz=TZ, quiet=quiet, cap=3, taken=free)
    assert slot.not_before == local(2026, 11, 30, 7, 30) and slot.reason
    slot = plan_slot(local(2026, 11, 30, 21, 29), tz=TZ, quiet=quiet, cap=3, taken=free)
    assert slot.not_before == local(2026, 11, 30, 21, 29) and slot.reason is None
    lunch = QuietHours.parse("12:00-13:00")
    assert lunch is not None and lunch.contains(local(2026, 1, 1, 12, 30).time())
    assert QuietHours.parse(None) is None


async def test_fourth_bulletin_of_a_day_waits_for_the_next_day(b: Bench) -> None:
    ids = [
        await b.create(schedule={"at": MON_10 + timedelta(minutes=5)}, title=f"第{i}期")
        for i in range(4)
    ]
    b.h.clock.set(MON_10 + timedelta(minutes=5))
    assert (await b.tick()).deliveries == 4
    assert len(await b.h.sent()) == 3
    statuses = [(await b.deliveries(i))[0] for i in ids]
    assert [s["status"] for s in statuses] == ["sent", "sent", "sent", "deferred"]
    assert statuses[3]["reason"].startswith("daily_cap")
    # The next local day starts in quiet hours, so it goes when they end.
    assert "2026-12-01 07:30" in statuses[3]["reason"]
    [run] = await b.runs(ids[3])
    assert run["totals"]["deferred"] == 1 and run["totals"]["pending"] == 1
    b.h.clock.set(local(2026, 12, 1, 7, 30))
    assert len(await b.h.sent()) == 4


async def test_a_bulletin_that_failed_for_good_does_not_count_toward_the_cap(b: Bench) -> None:
    # Three the same morning: two reach the group, the third is refused for good.
    b.h.world.state.group_send_script["grp-qiaozhen-01"] = deque([200, 200, 400])
    for i in range(3):
        bid = await b.create(schedule={"at": MON_10 + timedelta(minutes=5)}, title=f"第{i}期")
    b.h.clock.set(MON_10 + timedelta(minutes=5))
    await b.tick()
    assert len(await b.h.sent()) == 2
    assert [r["status"] for r in await b.runs(bid)] == ["failed"]  # the third
    fourth = await b.create(schedule={"at": MON_10 + timedelta(minutes=10)}, title="第3期")
    b.h.clock.set(MON_10 + timedelta(minutes=10))
    await b.tick()
    [d] = await b.deliveries(fourth)
    assert d["status"] == "pending" and d["reason"] is None, d
    assert len(await b.h.sent()) == 3


# --- restarts, missed runs, retries, crashes ---------------------------------------------------
async def test_restart_with_a_run_pending_sends_it_once(b: Bench) -> None:
    at = MON_10 + timedelta(minutes=1)
    await b.create(schedule={"at": at}, targets={"all": True})
    b.h.clock.set(at)
    # The tick created the run, then the process died before fanning out.
    async with b.h.runtime.sessions.begin() as s:
        bid = (await s.scalars(select(Bulletin.id))).one()
        pending, missed = await materialise_runs(
            s, bulletin_id=bid, tz=TZ, grace=timedelta(hours=1), now=at
        )
    assert (pending, missed) == (1, 0)
    restarted = await b.h.restart()
    try:
        b.h.clock.advance(120)
        first = await bulletin_tick(restarted.runtime)
        again = await bulletin_tick(restarted.runtime)
        assert (first.fanned_out, first.deliveries, again.fanned_out) == (1, 3, 0)
        await restarted.drain()
        assert sorted(d["group_id"] for d in restarted.world.state.delivered()) == GROUPS
    finally:
        await restarted.close()
    b.h.runtime = restarted.runtime


async def test_missed_run_inside_the_grace_period_is_sent_on_start_up(b: Bench) -> None:
    at = MON_10 + timedelta(minutes=1)
    bid = await b.create(schedule={"at": at})
    b.h.clock.set(at + timedelta(minutes=50))  # the service was down for 50 minutes
    assert (await b.tick()).deliveries == 1
    assert len(await b.h.sent()) == 1
    assert (await b.runs(bid))[0]["status"] == "sent"


async def test_missed_run_outside_the_grace_period_is_recorded_not_sent(b: Bench) -> None:
    at = MON_10 + timedelta(minutes=1)
    bid = await b.create(schedule={"at": at})
    b.h.clock.set(at + timedelta(hours=2))
    result = await b.tick()
    assert (result.missed, result.deliveries) == (1, 0)
    assert await b.h.sent() == []
    [run] = await b.runs(bid)
    assert run["status"] == "missed" and "grace" in run["reason"]
    assert await b.deliveries(bid) == []


async def test_cron_after_an_outage_records_old_runs_missed_and_sends_the_recent_one(
    b: Bench,
) -> None:
    bid = await b.create(schedule={"cron": "0 * * * *"})
    b.h.clock.set(local(2026, 11, 30, 15, 30))  # down since 10:00 local: 10:00 … 15:00 were due
    result = await b.tick()
    assert (result.missed, result.deliveries) == (5, 1)
    runs = await b.runs(bid)
    # The recent one is fanned out and on its way (not delivered until the outbox sends it).
    assert [r["status"] for r in runs] == ["sending"] + ["missed"] * 5
    assert runs[0]["due_at"].startswith("2026-11-30T07:00:00")  # 15:00 local


async def test_run_pending_past_the_grace_period_becomes_missed(b: Bench) -> None:
    at = MON_10 + timedelta(minutes=1)
    bid = await b.create(schedule={"at": at})
    b.h.clock.set(at)
    async with b.h.runtime.sessions.begin() as s:
        await materialise_runs(s, bulletin_id=bid, tz=TZ, grace=timedelta(hours=1), now=at)
    b.h.clock.set(at + timedelta(hours=3))  # the process died and came back much later
    assert (await b.tick()).deliveries == 0
    assert (await b.runs(bid))[0]["status"] == "missed"


async def test_delivery_is_retried_after_a_503(b: Bench) -> None:
    bid = await b.create(schedule={"at": MON_10 + timedelta(minutes=1)})
    b.h.clock.set(MON_10 + timedelta(minutes=1))
    await b.tick()
    b.h.world.state.send_script.extend([503])
    assert await b.h.sent() == []
    [d] = await b.deliveries(bid)
    assert (d["status"], d["attempts"], d["reason"]) == ("pending", 1, "HTTP 503")
    [run] = await b.runs(bid)  # fanned out, and nothing delivered: not "sent"
    assert (run["status"], run["totals"]["pending"]) == ("sending", 1)
    b.h.clock.advance(60)
    assert len(await b.h.sent()) == 1
    [d] = await b.deliveries(bid)
    assert (d["status"], d["attempts"]) == ("sent", 2)
    sends = b.h.world.state.sends()
    assert len(sends) == 2 and sends[0]["idempotency_key"] == sends[1]["idempotency_key"]


async def test_crash_between_send_and_record_does_not_duplicate(b: Bench) -> None:
    await b.create(schedule={"at": MON_10 + timedelta(minutes=1)})
    b.h.clock.set(MON_10 + timedelta(minutes=1))
    await b.tick()
    [claimed] = await b.h.worker._claim()
    _, _, [row] = await b.rows()
    assert claimed.id == row.id
    payload = b.h.runtime.cipher.decrypt_json(row.payload_enc)
    await b.h.runtime.senders["bridge"].send(
        idempotency_key=row.idempotency_key, group_id=row.group_id, user_id=None, payload=payload
    )
    # ... the process dies before recording; after a restart the lease runs out:
    restarted = await b.h.restart()
    try:
        b.h.clock.advance(b.h.runtime.settings.outbox.lease_s + 1)
        assert (await bulletin_tick(restarted.runtime)).fanned_out == 0  # the run is not redone
        assert [o.status for o in await restarted.drain()] == ["sent"]
        assert len(restarted.world.state.sends()) == 2
        assert len(restarted.world.state.delivered()) == 1  # the bridge de-duplicates by key
    finally:
        await restarted.close()
    b.h.runtime = restarted.runtime


async def test_two_ticks_at_once_fan_out_once(b: Bench) -> None:
    import asyncio

    await b.create(schedule={"at": MON_10 + timedelta(minutes=1)}, targets={"all": True})
    b.h.clock.set(MON_10 + timedelta(minutes=1))
    results = await asyncio.gather(b.tick(), b.tick(), return_exceptions=True)
    total = sum(r.deliveries for r in results if not isinstance(r, BaseException))
    assert total == 3
    runs, deliveries, outbox = await b.rows()
    assert (len(runs), len(deliveries), len(outbox)) == (1, 3, 3)


# --- pause, resume, cancel, edit, preview ------------------------------------------------------
async def test_pause_holds_resume_releases_cancel_withdraws(b: Bench) -> None:
    bid = await b.create(schedule={"at": local(2026, 11, 30, 23, 0)}, targets={"all": True})
    b.h.clock.set(local(2026, 11, 30, 23, 0))
    await b.tick()  # quiet hours: queued for 07:30
    assert (await b.post(f"/api/v1/bulletins/{bid}/pause"))["status"] == "paused"
    assert {d["status"] for d in await b.deliveries(bid)} == {"held"}
    b.h.clock.set(local(2026, 12, 1, 8, 0))
    assert await b.h.sent() == []
    assert (await b.post(f"/api/v1/bulletins/{bid}/resume"))["status"] == "finished"
    assert len(await b.h.sent()) == 3
    # The resume again (a client's retry after a timeout): the same answer, nothing sent twice.
    assert (await b.post(f"/api/v1/bulletins/{bid}/resume"))["status"] == "finished"
    assert len(await b.h.sent()) == 3
    # Cancelling it now changes nothing: it went out in full, and its record says so (it
    # turned "cancelled", as if stopped before it was sent).
    assert (await b.post(f"/api/v1/bulletins/{bid}/cancel"))["status"] == "finished"
    assert {d["status"] for d in await b.deliveries(bid)} == {"sent"}

    cron = await b.create(schedule={"cron": "0 22 * * *"}, targets={"all": True})
    b.h.clock.set(local(2026, 12, 1, 22, 0))
    await b.tick()
    out = await b.post(f"/api/v1/bulletins/{cron}/cancel")
    assert out["status"] == "cancelled" and out["next_run_at"] is None
    assert {d["status"] for d in await b.deliveries(cron)} == {"cancelled"}
    b.h.clock.set(local(2026, 12, 2, 23, 0))
    assert (await b.tick()).fanned_out == 0
    b.h.clock.set(local(2026, 12, 3, 8, 0))
    assert len(await b.h.sent()) == 3  # nothing more
    r = await b.api.post(f"/api/v1/bulletins/{cron}/resume", headers=b.admin)
    assert r.status_code == 409


async def test_a_one_off_moved_to_a_later_time_survives_a_pause_and_resume(b: Bench) -> None:
    bid = await b.create(schedule={"at": MON_10 + timedelta(minutes=5)})
    b.h.clock.set(MON_10 + timedelta(minutes=5))
    await b.tick()
    assert len(await b.h.sent()) == 1
    again = MON_10 + timedelta(hours=2)
    r = await b.api.patch(
        f"/api/v1/bulletins/{bid}", json={"schedule": {"at": again.isoformat()}}, headers=b.admin
    )
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    await b.post(f"/api/v1/bulletins/{bid}/pause")
    resumed = await b.post(f"/api/v1/bulletins/{bid}/resume")
    assert resumed["status"] == "active" and resumed["next_run_at"].startswith("2026-11-30T04:00")
    b.h.clock.set(again)
    await b.tick()
    assert len(await b.h.sent()) == 2
    # Once its new time has been sent, a pause and resume leave it finished.
    await b.post(f"/api/v1/bulletins/{bid}/pause")
    assert (await b.post(f"/api/v1/bulletins/{bid}/resume"))["status"] == "finished"


async def test_patch_changes_text_and_schedule(b: Bench) -> None:
    bid = await b.create(schedule={"at": MON_10 + timedelta(hours=1)})
    r = await b.api.patch(
        f"/api/v1/bulletins/{bid}",
        json={"text": "新的內容", "schedule": {"at": (MON_10 + timedelta(hours=2)).isoformat()}},
        headers=b.admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "新的內容" and r.json()["next_run_at"].startswith("2026-11-30T04:00")
    b.h.clock.set(MON_10 + timedelta(hours=2))
    await b.tick()
    assert [m["text"] for m in await b.h.sent()] == ["【防詐騙提醒】\n新的內容"]
    # A null for a field a bulletin cannot be without is refused, naming it (it was a 200
    # that changed nothing); null still removes media.
    for field in ("title", "text", "category", "targets", "schedule"):
        r = await b.api.patch(f"/api/v1/bulletins/{bid}", json={field: None}, headers=b.admin)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, r.text
    r = await b.api.patch(f"/api/v1/bulletins/{bid}", json={"media": None}, headers=b.admin)
    assert r.status_code == 200 and r.json()["media"] is None


async def test_preview_shows_exact_messages_groups_and_timing(b: Bench) -> None:
    bid = await b.create(
        schedule={"cron": "0 22 * * 1"},  # Mondays 22:00: inside quiet hours
        targets={"stations": ["county"]},  # the county and every station below it
        cover="https://example.org/cover.jpg",
    )
    p = await b.get(f"/api/v1/bulletins/{bid}/preview")
    assert [m["group_id"] for m in p["messages"]] == GROUPS
    assert {m["text"] for m in p["messages"]} == {"【防詐騙提醒】\n不要向陌生賬戶轉賬。"}
    assert p["messages"][0]["media"]["url"] == "https://example.org/cover.jpg"
    assert p["next_runs"][0].startswith("2026-11-30T14:00:00")
    assert p["messages"][0]["reason"].startswith("quiet_hours")
    # A draft previews the same way without being stored.
    draft = {
        "title": "交通安全",
        "category": "traffic",
        "text": "过马路请走斑马线。",
        "targets": {"tags": ["community"]},
        "schedule": {"at": (MON_10 + timedelta(hours=1)).isoformat()},
    }
    p = await b.post("/api/v1/bulletins/preview", draft)
    assert [(m["group_id"], m["text"]) for m in p["messages"]] == [
        ("grp-qiaozhen-02", "【交通安全】\n过马路请走斑马线。")
    ]
    assert len(await b.get("/api/v1/bulletins")) == 1


async def test_targets_by_tag_and_station(b: Bench) -> None:
    village = await b.create(schedule={"at": MON_10}, targets={"tags": ["village"]})
    station = await b.create(schedule={"at": MON_10}, targets={"stations": ["qiaozhen"]})
    await b.tick()
    assert sorted(d["group_id"] for d in await b.deliveries(village)) == [
        "grp-hexi-01",
        "grp-qiaozhen-01",
    ]
    assert sorted(d["group_id"] for d in await b.deliveries(station)) == [
        "grp-qiaozhen-01",
        "grp-qiaozhen-02",
    ]


# --- the API: auth and validation --------------------------------------------------------------
async def test_api_needs_an_admin_token(b: Bench) -> None:
    body = {
        "title": "t",
        "category": "fire",
        "text": "x",
        "targets": {"all": True},
        "schedule": {"cron": "0 9 * * *"},
    }
    assert (await b.api.post("/api/v1/bulletins", json=body)).status_code == 401
    assert (await b.api.get("/api/v1/bulletins")).status_code == 401
    r = await b.api.post("/api/v1/bulletins", json=body, headers=b.officer)
    assert r.status_code == 403
    for path in ("/api/v1/bulletins", "/api/v1/bulletins/1/deliveries", "/api/v1/alerts"):
        assert (await b.api.get(path, headers=b.officer)).status_code == 403
    assert (await b.api.post("/api/v1/media", content=b"x", headers=b.officer)).status_code == 403
    r = await b.api.post("/api/v1/bulletins", json=body, headers=b.admin)
    assert r.status_code == 201 and set(r.json()) == {"id"}


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"schedule": {"cron": "61 9 * * *"}}, ["body", "schedule", "cron"], "cron"),
        ({"schedule": {"cron": "0 9 * *"}}, ["body", "schedule", "cron"], "five fields"),
        ({"schedule": {"at": "2026-11-30T09:00:00+08:00"}}, ["body", "schedule", "at"], "past"),
        ({"schedule": {"at": "2026-12-30T09:00:00"}}, ["body", "schedule", "at"], "offset"),
        ({"targets": {"tags": ["nope"]}}, ["body", "targets", "tags"], "nope"),
        ({"targets": {"groups": ["grp-x"]}}, ["body", "targets", "groups"], "grp-x"),
        ({"targets": {"stations": ["mars"]}}, ["body", "targets", "stations"], "mars"),
        ({"targets": {"groups": []}}, ["body", "targets"], "empty"),
        ({"targets": {}}, ["body", "targets"], "exactly one"),
        ({"category": "gossip"}, ["body", "category"], ""),
        ({"title": ""}, ["body", "title"], ""),
        ({"media": {"type": "video", "url": "ftp://x"}}, ["body", "media", "url"], "http"),
        ({"title": "防火\u0000"}, ["body", "title"], "NUL"),
        ({"text": "冬季\ud800"}, ["body", "text"], "unicode"),
        ({"targets": {"groups": ["g\ud800"]}}, ["body", "targets", "groups"], "surrogate"),
        ({"targets": {"groups": ["g\u0000"]}}, ["body", "targets", "groups"], "NUL"),
        ({"schedule": {"at": 1764380000}}, ["body", "schedule", "at"], "ISO-8601"),
    ],
)
async def test_validation_names_the_field(
    b: Bench, change: dict[str, Any], where: list[str], words: str
) -> None:
    body = {
        "title": "防火",
        "category": "fire",
        "text": "冬季用火注意安全",
        "targets": {"all": True},
        "schedule": {"cron": "0 9 * * *"},
    } | change
    # ASCII escapes: a lone surrogate travels in JSON as \ud800, as a careless client sends it.
    raw = json.dumps(body).encode()
    headers = b.admin | {"Content-Type": "application/json"}
    r = await b.api.post("/api/v1/bulletins", content=raw, headers=headers)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][: len(where)] == where and words in e["msg"] for e in errors), errors


async def test_unknown_bulletin_is_404(b: Bench) -> None:
    assert (await b.api.get("/api/v1/bulletins/999", headers=b.admin)).status_code == 404
    r = await b.api.get("/api/v1/bulletins/999/deliveries", headers=b.admin)
    assert r.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bulletins/2147483648",
        "/api/v1/bulletins/9223372036854775808/runs",
        "/api/v1/bulletins/1/deliveries?run_id=2147483648",
        "/api/v1/alerts/2147483648",
        "/api/v1/bulletins?offset=9223372036854775808",
        "/api/v1/tickets?offset=9223372036854775808",
    ],
)
async def test_numbers_beyond_any_row_are_422_not_500(b: Bench, path: str) -> None:
    r = await b.api.get(path, headers=b.admin)
    assert r.status_code == 422, r.text


# --- media -------------------------------------------------------------------------------------
async def test_media_upload_is_served_at_a_stable_url(b: Bench, tmp_path: Path) -> None:
    b.h.runtime.settings.bulletins.media_dir = str(tmp_path / "media")
    b.h.runtime.settings.bulletins.public_base_url = "https://lianxin.example.gov.cn"
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    r = await b.api.post(
        "/api/v1/media", files={"file": ("cover.png", png, "image/png")}, headers=b.admin
    )
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith("/media/") and url.endswith(".png") and r.json()["type"] == "image"
    again = await b.api.post(
        "/api/v1/media", content=png, headers=b.admin | {"Content-Type": "image/png"}
    )
    assert again.json()["url"] == url  # the same bytes, the same URL
    got = await b.api.get(url)
    assert got.status_code == 200 and got.content == png
    assert got.headers["content-type"] == "image/png"
    assert (await b.api.get("/media/../../etc/passwd")).status_code == 404
    bad = await b.api.post(
        "/api/v1/media", content=b"MZ", headers=b.admin | {"Content-Type": "application/x-exe"}
    )
    assert bad.status_code == 415
    await b.create(schedule={"at": MON_10}, media={"type": "image", "url": url, "title": "海報"})
    await b.tick()
    [sent] = await b.h.sent()
    assert sent["media"]["url"] == "https://lianxin.example.gov.cn" + url


async def test_a_media_url_must_name_an_upload_stored_here_of_its_type(
    b: Bench, tmp_path: Path
) -> None:
    b.h.runtime.settings.bulletins.media_dir = str(tmp_path / "media")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    uploaded = await b.api.post(
        "/api/v1/media", content=png, headers=b.admin | {"Content-Type": "image/png"}
    )
    url = uploaded.json()["url"]
    body = {
        "title": "防詐",
        "category": "anti-fraud",
        "text": "看視頻",
        "targets": {"all": True},
        "schedule": {"at": MON_10.isoformat()},
    }
    cases = [
        ({"type": "video", "url": "/media/" + "0" * 64 + ".mp4"}, "media.url", "no stored upload"),
        ({"type": "video", "url": url}, "media.type", "the upload is an image, not a video"),
    ]
    for media, field, words in cases:
        r = await b.api.post("/api/v1/bulletins", json=body | {"media": media}, headers=b.admin)
        assert r.status_code == 422, r.text
        [detail] = r.json()["detail"]
        assert ".".join(map(str, detail["loc"][1:])) == field and words in detail["msg"], detail
    gone = "/media/" + "1" * 64 + ".png"
    r = await b.api.post("/api/v1/bulletins", json=body | {"cover": gone}, headers=b.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][1:] == ["cover"]
    # An urgent notice's photo too; an upload of the right kind, and any http(s) link, pass.
    alert = {"scope": {"all": True}, "text": "尋人", "media": {"type": "image", "url": gone}}
    assert (await b.api.post("/api/v1/alerts", json=alert, headers=b.admin)).status_code == 422
    for media in ({"type": "image", "url": url}, {"type": "video", "url": "https://v.example/a"}):
        r = await b.api.post("/api/v1/bulletins", json=body | {"media": media}, headers=b.admin)
        assert r.status_code == 201, r.text


async def test_api_bodies_over_the_cap_are_413_and_uploads_name_their_own_limit(
    b: Bench, tmp_path: Path
) -> None:
    limit = b.h.runtime.settings.server.max_body_bytes
    huge = {
        "title": "防詐",
        "category": "anti-fraud",
        "text": "x" * (limit + 1),
        "targets": {"all": True},
        "schedule": {"at": MON_10.isoformat()},
    }
    r = await b.api.post("/api/v1/bulletins", json=huge, headers=b.admin)
    assert r.status_code == 413 and r.json() == {"detail": f"body larger than {limit} bytes"}
    assert len(r.content) < 100  # nothing of the body echoed back

    # Without a declared length too (a chunked body): counted as it is read.
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"scope": {"all": true}, "text": "', b"y" * limit, b'"}'):
            yield part

    r = await b.api.post("/api/v1/alerts", content=chunks(), headers=b.admin)
    assert r.status_code == 413
    assert await b.get("/api/v1/bulletins") == []  # nothing stored
    # Uploads have their own limit, and the refusal names it (not the slack of multipart).
    b.h.runtime.settings.bulletins.media_dir = str(tmp_path / "media")
    b.h.runtime.settings.bulletins.max_upload_bytes = 1000
    big = b"\x89PNG\r\n\x1a\n" + b"0" * 200_000
    r = await b.api.post(
        "/api/v1/media", content=big, headers=b.admin | {"Content-Type": "image/png"}
    )
    assert r.status_code == 413 and r.json()["detail"] == "upload larger than 1000 bytes"


# --- the CLI -----------------------------------------------------------------------------------
def test_cli_adds_a_bulletin_from_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    db = tmp_path / "x.db"
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{db}\n", "utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "directory", "load", str(DIRECTORY)]) == 0
    spec = tmp_path / "fire.yaml"
    spec.write_text(
        "title: 冬季防火\ncategory: fire\ntext: |\n  電暖器不要靠近窗簾。\n"
        "targets: {tags: [village]}\nschedule: {cron: '0 9 * * 1'}\n",
        "utf-8",
    )
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    register(sub)  # type: ignore[arg-type]
    args = parser.parse_args(["--config", str(config), "bulletin", "add", str(spec)])
    assert args.func(args) == 0
    assert "scheduled; next run" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "title": "x",
                "category": "fire",
                "text": "y",
                "targets": {"groups": ["grp-none"]},
                "schedule": {"cron": "0 9 * * 1"},
            }
        ),
        "utf-8",
    )
    args = parser.parse_args(["--config", str(config), "bulletin", "add", str(bad)])
    assert args.func(args) == 1
    assert "targets.groups: unknown group(s): grp-none" in capsys.readouterr().err
    args = parser.parse_args(["--config", str(config), "bulletin", "list"])
    assert args.func(args) == 0
    listing = capsys.readouterr().out
    assert "冬季防火" in listing and "0 9 * * 1" in listing


# --- WeCom group robots ------------------------------------------------------------------------
class FakeRobot:
    """WeCom's webhook endpoint as an httpx MockTransport: records bodies, scripted errcodes."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.errcodes: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append((request.url.params.get("key", ""), json.loads(request.content)))
        code = self.errcodes.pop(0) if self.errcodes else 0
        return httpx.Response(200, json={"errcode": code, "errmsg": "ok" if not code else "x"})


async def test_groups_with_a_robot_webhook_go_through_it(b: Bench) -> None:
    robot = FakeRobot()
    client = httpx.AsyncClient(transport=httpx.MockTransport(robot))
    b.h.runtime.senders["wecom_robot"] = WeComRobotSender(
        client=client, base_url="https://robot.test/send"
    )
    async with b.h.runtime.sessions.begin() as s:
        group = await s.get(Group, "grp-hexi-01")
        assert group is not None
        group.wecom_webhook = "KEY-HEXI"
    bid = await b.create(schedule={"at": MON_10}, targets={"all": True})
    await b.tick()
    robot.errcodes.append(45009)  # WeCom's own rate limit: retried later
    await b.h.drain()
    b.h.clock.advance(60)
    await b.h.drain()
    by_channel = {d["group_id"]: (d["channel"], d["status"]) for d in await b.deliveries(bid)}
    assert by_channel["grp-hexi-01"] == ("wecom_robot", "sent")
    assert by_channel["grp-qiaozhen-01"] == ("bridge", "sent")
    assert [k for k, _ in robot.bodies] == ["KEY-HEXI", "KEY-HEXI"]
    assert robot.bodies[-1][1] == {
        "msgtype": "text",
        "text": {"content": "【防詐騙提醒】\n不要向陌生賬戶轉賬。", "mentioned_list": []},
    }
    assert "grp-hexi-01" not in {m["group_id"] for m in b.h.world.state.delivered()}
    await client.aclose()


async def test_preview_says_a_long_bulletin_goes_to_a_robot_group_in_parts(b: Bench) -> None:
    async with b.h.runtime.sessions.begin() as s:
        group = await s.get(Group, "grp-hexi-01")
        assert group is not None
        group.wecom_webhook = "KEY-HEXI"
    draft = {
        "title": "防詐騙",
        "category": "anti-fraud",
        "text": "\n".join(["陌生來電說你涉嫌洗錢,要你轉賬到安全賬戶,一定是詐騙。"] * 100),
        "targets": {"all": True},
        "schedule": {"at": (MON_10 + timedelta(hours=1)).isoformat()},
    }
    p = await b.post("/api/v1/bulletins/preview", draft)
    (warning,) = [w for w in p["warnings"] if "WeCom" in w]
    assert warning.startswith("grp-hexi-01:") and "sent as 2 messages" in warning, warning


async def test_robot_sender_keeps_to_twenty_a_minute() -> None:
    robot = FakeRobot()
    now = [1000.0]
    sender = WeComRobotSender(
        client=httpx.AsyncClient(transport=httpx.MockTransport(robot)), monotonic=lambda: now[0]
    )
    payload = {"text": "x", "extra": {"webhook": "K"}}
    for _ in range(20):
        await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=payload)
    with pytest.raises(SendError) as exc:
        await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=payload)
    assert exc.value.retryable and "rate limit" in exc.value.reason
    other = {"text": "x", "extra": {"webhook": "OTHER"}}
    await sender.send(idempotency_key="k", group_id="g2", user_id=None, payload=other)
    now[0] += 60
    await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=payload)
    assert len(robot.bodies) == 22


def test_robot_body_uses_markdown_for_media_and_long_texts() -> None:
    (short,) = robot_bodies({"text": "短", "mentions": []})
    assert short["msgtype"] == "text"
    (media,) = robot_bodies(
        {"text": "看", "media": {"type": "video", "url": "https://v", "title": "片"}}
    )
    assert media == {"msgtype": "markdown", "markdown": {"content": "看\n[片](https://v)"}}
    (long,) = robot_bodies({"text": "字" * 1000})  # 3000 bytes > 2048
    assert long["msgtype"] == "markdown"


async def test_a_text_over_the_robots_4096_bytes_goes_as_several_messages() -> None:
    # It used to fail for good ("too long for a WeCom group robot"): the group got nothing.
    robot = FakeRobot()
    now = [1000.0]
    sender = WeComRobotSender(
        client=httpx.AsyncClient(transport=httpx.MockTransport(robot)), monotonic=lambda: now[0]
    )
    lines = [f"第{n}條:不要向陌生賬戶轉賬,不要點陌生鏈接。" for n in range(200)]
    payload = {"text": "\n".join(lines), "extra": {"webhook": "K"}}
    await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=payload)
    contents = [body["markdown"]["content"] for _, body in robot.bodies]
    assert len(contents) >= 3 and all(len(c.encode()) <= 4096 for c in contents)
    assert "\n".join(contents) == payload["text"]  # cut between lines, nothing lost
    # The parts count against the robot's 20 a minute, all of them or none.
    for _ in range(20 - len(contents) - 1):
        await sender.send(
            idempotency_key="k",
            group_id="g",
            user_id=None,
            payload={"text": "x", "extra": {"webhook": "K"}},
        )
    with pytest.raises(SendError) as exc:
        await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=payload)
    assert exc.value.retryable
    assert len(robot.bodies) == 19
    huge = {"text": "字\n" * 40_000, "extra": {"webhook": "K"}}  # 21 messages: never fits
    with pytest.raises(SendError) as exc:
        await sender.send(idempotency_key="k", group_id="g", user_id=None, payload=huge)
    assert not exc.value.retryable


@pytest.mark.parametrize(
    ("cron", "lacking"),
    [
        ("0 9 31 * *", [31]),
        ("0 9 29-31 * *", [29, 30, 31]),
        ("0 9 1,15,30 * *", [30]),
        ("0 9 30 1,3 *", []),  # January and March have a 30th
        ("0 9 29 2 *", [29]),  # only in leap years
        ("0 9 28 * *", []),
        ("0 9 * * 1", []),
        ("0 9 31 jan *", []),  # month names: not judged
    ],
)
def test_days_some_months_lack(cron: str, lacking: list[int]) -> None:
    from broadcasts.bulletins import days_some_months_lack

    assert days_some_months_lack(cron) == lacking


async def test_preview_warns_that_a_monthly_31st_skips_short_months(b: Bench) -> None:
    # Found by a newcomer: "每月31日" sent nothing in February, April, June… and nobody was told.
    bid = await b.create(schedule={"cron": "0 9 31 * *"}, targets={"all": True})
    p = await b.get(f"/api/v1/bulletins/{bid}/preview")
    (warning,) = [w for w in p["warnings"] if w.startswith("day 31")]
    assert "not in every month" in warning
    fine = await b.create(schedule={"cron": "0 9 28 * *"}, targets={"all": True})
    p = await b.get(f"/api/v1/bulletins/{fine}/preview")
    assert not [w for w in p["warnings"] if "every month" in w]


def test_cron_day_of_week_means_what_crontab_means() -> None:
    from broadcasts.bulletins import parse_cron

    monday_10 = MON_10.astimezone(UTC)
    fire = parse_cron("0 9 * * 1", TZ).get_next_fire_time(None, monday_10)
    assert fire is not None and fire.strftime("%a %H:%M") == "Mon 09:00"
    fire = parse_cron("0 9 * * 0", TZ).get_next_fire_time(None, monday_10)
    assert fire is not None and fire.strftime("%a") == "Sun"
    fire = parse_cron("0 9 * * 7", TZ).get_next_fire_time(None, monday_10)
    assert fire is not None and fire.strftime("%a") == "Sun"
    fire = parse_cron("0 9 * * 2-5", TZ).get_next_fire_time(None, monday_10)
    assert fire is not None and fire.strftime("%a") == "Tue"
    with pytest.raises(ValueError):
        parse_cron("0 9 * * 8", TZ)


async def test_runs_and_deliveries_come_in_pages(b: Bench) -> None:
    """A daily bulletin to every group makes a row per group per day: a year of it is thousands
    of rows, and a client had no way to read them but all at once."""
    b.h.runtime.settings.bulletins.quiet_hours = None
    bid = await b.create(schedule={"cron": "0 12 * * *"}, targets={"all": True})
    for day in range(3):
        b.h.clock.set(local(2026, 11, 30 + day, 12) if day == 0 else local(2026, 12, day, 12))
        await b.tick()
    runs = await b.runs(bid)
    deliveries = await b.deliveries(bid)
    assert (len(runs), len(deliveries)) == (3, 3 * len(GROUPS))
    paged_runs = [await b.get(f"/api/v1/bulletins/{bid}/runs?limit=1&offset={n}") for n in range(4)]
    assert [p[0]["id"] for p in paged_runs[:3]] == [r["id"] for r in runs] and paged_runs[3] == []
    # A page of runs carries the same totals as the whole list.
    assert [p[0]["totals"] for p in paged_runs[:3]] == [r["totals"] for r in runs]
    size = len(GROUPS)
    pages = [
        await b.get(f"/api/v1/bulletins/{bid}/deliveries?limit={size}&offset={n * size}")
        for n in range(4)
    ]
    assert [d for page in pages for d in page] == deliveries and pages[3] == []


async def test_a_retried_create_with_an_idempotency_key_creates_one_bulletin(b: Bench) -> None:
    """A client that timed out and sent its POST again created a second bulletin, and every
    group got the video twice."""
    body = {
        "title": "冬季防火",
        "category": "fire",
        "text": "天冷烤火注意通风，电热毯别整夜开着🔥",
        "targets": {"all": True},
        "schedule": {"at": (MON_10 + timedelta(hours=1)).isoformat()},
    }
    key = {**b.admin, "Idempotency-Key": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"}
    first = await b.api.post("/api/v1/bulletins", json=body, headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # The same request again, its keys in another order: the first answer, nothing new.
    again = await b.api.post("/api/v1/bulletins", json=dict(reversed(body.items())), headers=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(await b.get("/api/v1/bulletins")) == 1
    # The same key with another body is refused, saying why; nothing is created.
    changed = await b.api.post("/api/v1/bulletins", json=body | {"text": "改了"}, headers=key)
    assert changed.status_code == 409 and "another request" in changed.json()["detail"]
    assert len(await b.get("/api/v1/bulletins")) == 1
    # Without a key each POST creates one, as before.
    await b.create(**body)
    assert len(await b.get("/api/v1/bulletins")) == 2
    b.h.clock.set(MON_10 + timedelta(hours=1))
    await b.tick()
    assert len(await b.h.sent()) == 2 * len(GROUPS)  # the keyed one once, the other once


async def test_an_idempotency_key_stores_no_refusal_and_must_be_printable(b: Bench) -> None:
    body = {
        "title": "防盗提醒",
        "category": "anti-theft",
        "text": "最近有人偷电动车电瓶 晚上记得推进院子锁好",
        "targets": {"groups": ["grp-nowhere"]},
        "schedule": {"at": (MON_10 + timedelta(hours=1)).isoformat()},
    }
    key = {**b.admin, "Idempotency-Key": "retry-me-1"}
    refused = await b.api.post("/api/v1/bulletins", json=body, headers=key)
    assert refused.status_code == 422
    # A refusal is not remembered: the corrected request under the same key is created.
    fixed = body | {"targets": {"groups": ["grp-qiaozhen-01"]}}
    assert (await b.api.post("/api/v1/bulletins", json=fixed, headers=key)).status_code == 201
    for bad in ("has space", "x" * 201):
        r = await b.api.post(
            "/api/v1/bulletins", json=fixed, headers={**b.admin, "Idempotency-Key": bad}
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
            "header",
            "Idempotency-Key",
        ]


async def test_two_twins_racing_with_one_key_create_one_bulletin(b: Bench) -> None:
    body = {
        "title": "禁毒宣传",
        "category": "drugs",
        "text": "陌生人给的烟和饮料不要碰",
        "targets": {"all": True},
        "schedule": {"at": (MON_10 + timedelta(hours=1)).isoformat()},
    }
    key = {**b.admin, "Idempotency-Key": "twin"}
    answers = await asyncio.gather(
        *(b.api.post("/api/v1/bulletins", json=body, headers=key) for _ in range(2))
    )
    assert [r.status_code for r in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert len(await b.get("/api/v1/bulletins")) == 1


async def test_an_edit_never_rewrites_what_a_run_sent(b: Bench) -> None:
    """A PATCH of a bulletin that had gone out changed its text in the record, so the record
    said the groups got words they never got (and a one-off's queued copies still carried the
    old ones)."""
    # A one-off fanned out at 23:00, its copies waiting for quiet hours to end.
    bid = await b.create(schedule={"at": local(2026, 11, 30, 23, 0)}, text="晚上锁好电瓶车")
    b.h.clock.set(local(2026, 11, 30, 23, 0))
    await b.tick()
    assert {d["status"] for d in await b.deliveries(bid)} == {"deferred"}
    r = await b.api.patch(f"/api/v1/bulletins/{bid}", json={"text": "改过的"}, headers=b.admin)
    assert r.status_code == 409 and "went out at" in r.json()["detail"], r.text
    assert "text" in r.json()["detail"]
    assert (await b.get(f"/api/v1/bulletins/{bid}"))["text"] == "晚上锁好电瓶车"
    # The same words again are no change; sending it again at a new time may change them.
    same = await b.api.patch(
        f"/api/v1/bulletins/{bid}", json={"text": "晚上锁好电瓶车"}, headers=b.admin
    )
    assert same.status_code == 200, same.text
    b.h.clock.set(local(2026, 12, 1, 8, 0))
    assert [m["text"] for m in await b.h.sent()] == ["【防詐騙提醒】\n晚上锁好电瓶车"]
    again = local(2026, 12, 1, 9, 0)
    resend = {"text": "更正:晚上把电瓶车推进屋", "schedule": {"at": again.isoformat()}}
    r = await b.api.patch(f"/api/v1/bulletins/{bid}", json=resend, headers=b.admin)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    b.h.clock.set(again)
    await b.tick()
    assert [m["text"] for m in await b.h.sent()][1:] == ["【防詐騙提醒】\n更正:晚上把电瓶车推进屋"]
    # Each run says what it sent.
    runs = await b.runs(bid)
    assert [r["sent"]["text"] for r in runs] == ["更正:晚上把电瓶车推进屋", "晚上锁好电瓶车"]

    # A recurring one: the edit is for later runs; the runs before keep their words.
    b.h.runtime.settings.bulletins.quiet_hours = None
    cron = await b.create(schedule={"cron": "0 12 * * *"}, text="天干物燥 小心火烛")
    b.h.clock.set(local(2026, 12, 1, 12))
    await b.tick()
    r = await b.api.patch(
        f"/api/v1/bulletins/{cron}", json={"text": "烧秸秆违法 罚款"}, headers=b.admin
    )
    assert r.status_code == 200, r.text
    b.h.clock.set(local(2026, 12, 2, 12))
    await b.tick()
    runs = await b.runs(cron)
    assert [r["sent"]["text"] for r in runs] == ["烧秸秆违法 罚款", "天干物燥 小心火烛"]
    assert runs[0]["sent"]["targets"] == {"groups": ["grp-qiaozhen-01"]}
    # Once past its end it has no run left: a change of words is refused like a one-off's,
    # and a new schedule takes it up again.
    end = {"cron": "0 12 * * *", "end": local(2026, 12, 2, 23, 59).isoformat()}
    r = await b.api.patch(f"/api/v1/bulletins/{cron}", json={"schedule": end}, headers=b.admin)
    assert r.status_code == 200, r.text
    b.h.clock.set(local(2026, 12, 3, 12))
    await b.tick()
    assert (await b.get(f"/api/v1/bulletins/{cron}"))["status"] == "finished"
    r = await b.api.patch(f"/api/v1/bulletins/{cron}", json={"text": "又改"}, headers=b.admin)
    assert r.status_code == 409 and "no run to come" in r.json()["detail"], r.text


async def test_outbox_pending_counts_what_is_due_and_waiting_says_why_the_rest_waits(
    b: Bench,
) -> None:
    """A 23:00 bulletin to every group, waiting for quiet hours to end, showed as a backlog of
    ``lianxin_outbox_pending`` all night: an alert on it fired for rows held on purpose."""

    async def scrape() -> dict[str, float]:
        r = await b.api.get("/metrics", headers=b.admin)
        assert r.status_code == 200
        lines = (line.split(" ") for line in r.text.splitlines() if line.startswith("lianxin_"))
        return {name: float(value) for name, value in lines}

    def series(name: str, **labels: str) -> str:
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

    pending = series("lianxin_outbox_pending", channel="bridge")

    def waiting(reason: str) -> str:
        return series("lianxin_outbox_waiting", channel="bridge", reason=reason)

    bid = await b.create(schedule={"at": local(2026, 11, 30, 23, 0)}, targets={"all": True})
    b.h.clock.set(local(2026, 11, 30, 23, 0))
    await b.tick()
    m = await scrape()
    assert (m[pending], m[waiting("scheduled")], m[waiting("paused")]) == (0, len(GROUPS), 0)
    await b.post(f"/api/v1/bulletins/{bid}/pause")
    m = await scrape()
    assert (m[pending], m[waiting("scheduled")], m[waiting("paused")]) == (0, 0, len(GROUPS))
    # Resumed after quiet hours: due now, and counted as pending.
    b.h.clock.set(local(2026, 12, 1, 8, 0))
    await b.post(f"/api/v1/bulletins/{bid}/resume")
    m = await scrape()
    assert (m[pending], m[waiting("paused")]) == (len(GROUPS), 0)
    # A send that failed waits for its retry: not due until then.
    b.h.world.state.send_script.extend([503] * len(GROUPS))
    await b.h.worker.run_once()
    m = await scrape()
    assert m[waiting("retry")] >= 1 and m[pending] + m[waiting("retry")] == len(GROUPS)


async def test_deliveries_of_a_run_that_is_not_the_bulletins_is_422_not_an_empty_list(
    b: Bench,
) -> None:
    first = await b.create(schedule={"at": MON_10 + timedelta(hours=1)})
    other = await b.create(schedule={"at": MON_10 + timedelta(hours=1)})
    b.h.clock.set(MON_10 + timedelta(hours=1))
    await b.tick()
    [run] = await b.runs(first)
    assert len(await b.get(f"/api/v1/bulletins/{first}/deliveries?run_id={run['id']}")) == 1
    for bid, run_id in ((other, run["id"]), (first, 9999)):
        r = await b.api.get(f"/api/v1/bulletins/{bid}/deliveries?run_id={run_id}", headers=b.admin)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "run_id"], r.text
    # An empty status filter means none here too, as on the tickets and disputes lists.
    assert len(await b.get("/api/v1/bulletins?status=")) == 2
    assert (await b.api.get("/api/v1/outbox?status=", headers=b.admin)).status_code == 200


async def test_a_correction_sent_while_the_first_copy_waits_replaces_it(b: Bench) -> None:
    """A one-off sent again with corrected words while its first copy waited for quiet hours
    was "merged" into that copy: the group got the old words, the correction was dropped."""
    bid = await b.create(schedule={"at": local(2026, 11, 30, 23, 0)}, text="明早八点停水")
    b.h.clock.set(local(2026, 11, 30, 23, 0))
    await b.tick()
    again = local(2026, 11, 30, 23, 30)
    fix = {"text": "更正:明早九点停水 下午三点来水", "schedule": {"at": again.isoformat()}}
    r = await b.api.patch(f"/api/v1/bulletins/{bid}", json=fix, headers=b.admin)
    assert r.status_code == 200, r.text
    b.h.clock.set(again)
    await b.tick()
    by_run = {d["run_id"]: d for d in await b.deliveries(bid)}
    first, second = sorted(by_run)
    assert by_run[first]["status"] == "cancelled" and "replaced" in by_run[first]["reason"]
    assert by_run[second]["status"] == "deferred"
    b.h.clock.set(local(2026, 12, 1, 8, 0))
    assert [m["text"] for m in await b.h.sent()] == [
        "【防詐騙提醒】\n更正:明早九点停水 下午三点来水"
    ]


async def test_a_media_type_no_bridge_knows_is_refused(b: Bench) -> None:
    # "link" was accepted and sent on to bridges, whose contract names image, video and file.
    body = {
        "title": "防詐",
        "category": "anti-fraud",
        "text": "不要轉賬",
        "media": {"type": "link", "url": "https://example.org/a", "title": "a"},
        "targets": {"all": True},
        "schedule": {"cron": "0 9 * * *"},
    }
    r = await b.api.post("/api/v1/bulletins", json=body, headers=b.admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "media", "type"]
