"""``GET /api/v1/stats`` and ``GET /api/v1/visits`` against a hand-built month with known counts
and percentiles (tests/stats_support.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import case, literal, select, union_all

from bot.services.stats import StatsInputError, interpolate, make_period, parse_month, percentiles
from bot.services.tokens import create_token
from models.tickets import Ticket
from tests.harness import Harness
from tests.stats_support import COUNTY, QIAOZHEN, local, seed_month


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    async with harness.runtime.sessions.begin() as session:
        await seed_month(session, harness.runtime.cipher)
    return harness


async def admin(h: Harness) -> dict[str, str]:
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="admin", name="t", now=h.clock.now())
    return {"Authorization": f"Bearer {token}"}


async def test_the_county_s_month(h: Harness) -> None:
    response = await h.client.get(
        "/api/v1/stats", params={"from": "2026-11-01", "to": "2026-11-30"}, headers=await admin(h)
    )
    assert response.status_code == 200, response.text
    assert response.json() == COUNTY


async def test_a_station_s_month(h: Harness) -> None:
    response = await h.client.get(
        "/api/v1/stats",
        params={"from": "2026-11-01", "to": "2026-11-30", "station": "qiaozhen"},
        headers=await admin(h),
    )
    assert response.status_code == 200, response.text
    assert response.json() == QIAOZHEN


async def test_the_county_station_is_the_whole_county_but_for_the_ungrouped(h: Harness) -> None:
    response = await h.client.get(
        "/api/v1/stats",
        params={"from": "2026-11-01", "to": "2026-11-30", "station": "county"},
        headers=await admin(h),
    )
    body = response.json()
    # The desk's ticket without a station and the household in no group belong to no station.
    assert body["items"]["other"] == 0 and sum(body["items"].values()) == 7
    assert body["visits"]["households"] == 8


async def test_one_day_counts_that_local_day_only(h: Harness) -> None:
    response = await h.client.get(
        "/api/v1/stats", params={"from": "2026-11-01", "to": "2026-11-01"}, headers=await admin(h)
    )
    body = response.json()
    assert sum(body["items"].values()) == 1  # 00:30 local, 16:30 UTC the day before
    assert body["ack_minutes"] == {"p50": 2.0, "p90": 2.0}  # one value: both percentiles
    assert body["satisfaction"] == {"rated": 1, "satisfied": 1, "rate": 1.0}
    assert body["visits"]["count"] == 0 and body["visits"]["coverage"] == 0.0


async def test_an_empty_range_has_zeros_and_nulls(h: Harness) -> None:
    response = await h.client.get(
        "/api/v1/stats", params={"from": "2025-01-01", "to": "2025-01-31"}, headers=await admin(h)
    )
    body = response.json()
    assert body["ack_minutes"] == {"p50": None, "p90": None}
    assert body["satisfaction"] == {"rated": 0, "satisfied": 0, "rate": None}
    assert body["disputes"]["by_colour"] == {"red": 0, "yellow": 0, "blue": 0}
    assert body["bulletins"] == {"runs": 0, "delivered": 0, "failed": 0}


async def test_percentiles_interpolate_between_ranks(h: Harness) -> None:
    # The same query on known values, 0..10 with the 0 left out (numpy: p50 5.5, p90 9.1), and
    # a NULL-only column: PostgreSQL's percentile_cont and SQLite's path agree.
    async with h.runtime.sessions() as session:
        table = union_all(*(select(literal(n).label("x")) for n in range(11))).subquery()
        nothing = case((table.c.x < 0, table.c.x))
        got = await percentiles(
            session, {"x": table.c.x, "none": nothing}, [table.c.x > 0], (0, 50, 90, 100)
        )
    assert got["x"] == {0: 1.0, 50: 5.5, 90: pytest.approx(9.1), 100: 10.0}
    assert got["none"] == {0: None, 50: None, 90: None, 100: None}
    assert interpolate([], 50) is None and interpolate([7.0], 90) == 7.0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to"),
        ({"from": "2026-13-01", "to": "2026-12-31"}, "from"),
        ({"from": "2026-11-01", "to": "2026-02-30"}, "to"),
        ({"from": "2026-11-1", "to": "2026-11-30"}, "from"),
        ({"from": "1700000000", "to": "2026-11-30"}, "from"),
        ({"to": "2026-11-30"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-30", "station": "qiaozen"}, "station"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    h: Harness, params: dict[str, str], field: str
) -> None:
    response = await h.client.get("/api/v1/stats", params=params, headers=await admin(h))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", field]


async def test_the_routes_need_an_admin_token(h: Harness) -> None:
    assert (await h.client.get("/api/v1/stats?from=2026-11-01&to=2026-11-30")).status_code == 401
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="officer", name="o", now=h.clock.now())
    officer = {"Authorization": f"Bearer {token}"}
    for route in ("/api/v1/stats?from=2026-11-01&to=2026-11-30", "/api/v1/visits"):
        assert (await h.client.get(route, headers=officer)).status_code == 403


async def test_visits_list_newest_first_by_station_and_local_dates(h: Harness) -> None:
    headers = await admin(h)
    everything = (await h.client.get("/api/v1/visits", headers=headers)).json()
    assert len(everything) == 9
    assert [v["at"] for v in everything] == sorted((v["at"] for v in everything), reverse=True)
    assert set(everything[0]) == {"id", "officer", "household", "group_id", "at"}
    november = (
        await h.client.get(
            "/api/v1/visits",
            params={"station": "qiaozhen", "from": "2026-11-01", "to": "2026-11-30"},
            headers=headers,
        )
    ).json()
    assert len(november) == 6 and {v["officer"] for v in november} == {"off-wang"}
    assert [v["household"] for v in november].count(None) == 1  # deleted on request
    empty = await h.client.get("/api/v1/visits?station=&from=&to=", headers=headers)
    assert len(empty.json()) == 9
    paged = await h.client.get("/api/v1/visits?limit=2&offset=8", headers=headers)
    assert len(paged.json()) == 1
    bad = await h.client.get("/api/v1/visits?station=nowhere", headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "station"]


async def test_month_and_period_checks(h: Harness) -> None:
    assert parse_month("2026-02") == (local(2, 1).date(), local(2, 28).date())
    assert parse_month("2026-12")[1] == local(12, 31).date()
    for bad in ("2026-13", "2026-1", "26-01", "2026-00", ""):
        with pytest.raises(StatsInputError) as caught:
            parse_month(bad)
        assert caught.value.field == "month"
    async with h.runtime.sessions() as session:
        period = await make_period(
            session,
            timezone="Asia/Shanghai",
            first=local(11, 1).date(),
            last=local(11, 30).date(),
            station="qiaozhen",
        )
        # Tickets with no station at all never count for a station.
        assert period.stations == {"qiaozhen"}
        assert period.end - period.start == timedelta(days=30)
        ticket = await session.scalar(select(Ticket).where(Ticket.code == "S0000"))
        assert ticket is not None and period.start <= ticket.created_at < period.end


async def test_times_count_from_the_first_handling_when_a_resident_reopens_it(
    harness: Harness,
) -> None:
    h = harness
    await h.load_directory()
    h.clock.set(local(12, 1, 10))  # a Tuesday: 王警官 is on duty
    await h.bind("wxid_yang", group="grp-qiaozhen-01")
    await h.say("我家的电动车昨晚在楼下被偷了", group="grp-qiaozhen-01", sender="wxid_yang")
    [ticket] = await h.tickets()
    h.clock.advance(timedelta(minutes=30))
    await h.say(f"#{ticket.code} 已调取监控", group=None, sender="wxid_wang")  # acknowledges too
    await h.say(f"结案 #{ticket.code} 已答复", group=None, sender="wxid_wang")
    await h.say("不满意", group=None, sender="wxid_yang")  # reopened to the leader
    h.clock.advance(timedelta(minutes=10))
    await h.say(f"接单 #{ticket.code}", group=None, sender="wxid_zhao")
    [ticket] = await h.tickets()
    assert ticket.status != "closed" and ticket.answered_at is None  # its deadlines run again
    response = await h.client.get(
        "/api/v1/stats", params={"from": "2026-12-01", "to": "2026-12-01"}, headers=await admin(h)
    )
    body = response.json()
    assert body["ack_minutes"] == {"p50": 30.0, "p90": 30.0}  # not 40: the first handling
    assert body["answer_hours"] == {"p50": 0.5, "p90": 0.5}  # not left out
