"""The duty roster and the fallback chain, on a real database."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.services.routing import Router
from models.directory import Group, Officer
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    # 2026-11-30 is a Monday.
    return datetime(2026, 11, 30, hour, minute, tzinfo=TZ) + timedelta(days=day)


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    return harness


async def _duty(h: Harness, station: str, when: datetime) -> list[str]:
    async with h.runtime.sessions() as s:
        return [o.id for o in await Router(s, "Asia/Shanghai").on_duty(station, when)]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (at(0, 10), ["off-wang"]),  # Monday day shift
        (at(0, 19, 59), ["off-wang"]),
        (at(0, 20), ["off-li"]),  # the night shift starts
        (at(1, 2), ["off-li"]),  # Tuesday 02:00 belongs to Monday's night shift
        (at(1, 7, 59), ["off-li"]),
        (at(1, 8), ["off-wang"]),
        (at(5, 10), ["off-zhao"]),  # Saturday: the leader's day
        (at(6, 3), ["off-li"]),  # Sunday 03:00: Saturday's night shift
    ],
)
async def test_roster_across_midnight_and_weekends(
    h: Harness, when: datetime, expected: list[str]
) -> None:
    assert await _duty(h, "qiaozhen", when) == expected


async def test_timezone_is_the_stations(h: Harness) -> None:
    # 02:30 UTC Monday is 10:30 in Shanghai: the day shift, not the night one.
    assert await _duty(h, "qiaozhen", datetime(2026, 11, 30, 2, 30, tzinfo=ZoneInfo("UTC"))) == [
        "off-wang"
    ]


async def test_one_off_override_replaces_the_weekly_pattern(h: Harness, tmp_path: Path) -> None:
    text = (Path(__file__).parent / "data" / "directory.yaml").read_text("utf-8")
    text += (
        '  - {station: qiaozhen, officer: off-zhao, date: 2026-12-01, from: "00:00", to: "24:00"}\n'
    )
    path = tmp_path / "d.yaml"
    path.write_text(text, "utf-8")
    await h.load_directory(path)
    assert await _duty(h, "qiaozhen", at(1, 10)) == ["off-zhao"]  # Tuesday 1 Dec: override
    assert await _duty(h, "qiaozhen", at(2, 10)) == ["off-wang"]  # Wednesday: weekly again


async def test_a_one_off_replaces_only_the_hours_it_covers(h: Harness, tmp_path: Path) -> None:
    # 趙所長 stands in for Tuesday's day shift: off-li's Tuesday night shift (20:00–08:00) stays,
    # in the evening and past midnight.
    text = (Path(__file__).parent / "data" / "directory.yaml").read_text("utf-8")
    text += (
        '  - {station: qiaozhen, officer: off-zhao, date: 2026-12-01, from: "08:00", to: "20:00"}\n'
    )
    path = tmp_path / "d.yaml"
    path.write_text(text, "utf-8")
    await h.load_directory(path)
    assert await _duty(h, "qiaozhen", at(1, 10)) == ["off-zhao"]
    assert await _duty(h, "qiaozhen", at(1, 7)) == ["off-li"]  # Monday's night shift, still on
    assert await _duty(h, "qiaozhen", at(1, 21)) == ["off-li"]
    assert await _duty(h, "qiaozhen", at(2, 1)) == ["off-li"]  # past midnight


async def test_an_officer_the_bot_cannot_reach_is_passed_over(h: Harness, tmp_path: Path) -> None:
    # On the roster and the group's own officer, but without a wechat_id: the ticket would sit
    # with somebody who never hears of it, so the chain goes on to the leader.
    path = tmp_path / "d.yaml"
    path.write_text(
        "stations:\n  - {id: east, name: 東所, parent: county}\n"
        "officers:\n  - {id: o-mute, name: 無號, station: east}\n"
        "  - {id: l-east, name: 東所長, station: east, wechat_id: wx_le, role: leader}\n"
        "groups:\n  - {id: g-east, name: 東群, station: east, officer: o-mute}\n"
        "roster:\n"
        "  - {station: east, officer: o-mute, days: [mon, tue, wed, thu, fri, sat, sun], from: '00:00', to: '24:00'}\n",
        "utf-8",
    )
    await h.load_directory(path)
    async with h.runtime.sessions() as s:
        router = Router(s, "Asia/Shanghai")
        got = await router.assign(
            station_id="east", group=await s.get(Group, "g-east"), at=at(0, 10)
        )
        assert got is not None and (got.officer.id, got.how) == ("l-east", "leader")
        # With nobody reachable at all, the unreachable officer still gets it: never nobody.
        await s.execute(update(Officer).values(wechat_id=None))
        got = await router.assign(
            station_id="east", group=await s.get(Group, "g-east"), at=at(0, 10)
        )
        assert got is not None and (got.officer.id, got.how) == ("o-mute", "roster")


async def test_fallback_chain_never_ends_empty(h: Harness, tmp_path: Path) -> None:
    # A station with nobody on the roster: the group's officer, then the leader, then the parent.
    path = tmp_path / "d.yaml"
    path.write_text(
        "stations:\n"
        "  - {id: county, name: 縣局}\n"
        "  - {id: east, name: 東所, parent: county}\n"
        "  - {id: west, name: 西所, parent: county}\n"
        "officers:\n"
        "  - {id: o-east, name: 東警官, station: east, wechat_id: wx_e}\n"
        "  - {id: l-east, name: 東所長, station: east, wechat_id: wx_le, role: leader}\n"
        "  - {id: o-west, name: 西警官, station: west, wechat_id: wx_w}\n"
        "  - {id: c-duty, name: 縣值班, station: county, wechat_id: wx_c}\n"
        "groups:\n"
        "  - {id: g-east, name: 東群, station: east, officer: o-east}\n"
        "  - {id: g-east-2, name: 東二群, station: east}\n"
        "  - {id: g-west, name: 西群, station: west}\n"
        "roster:\n"
        "  - {station: county, officer: c-duty, days: [mon, tue, wed, thu, fri, sat, sun], from: '00:00', to: '24:00'}\n",
        "utf-8",
    )
    await h.load_directory(path)
    async with h.runtime.sessions() as s:
        router = Router(s, "Asia/Shanghai")
        own = await router.assign(
            station_id="east", group=await s.get(Group, "g-east"), at=at(0, 10)
        )
        leader = await router.assign(
            station_id="east", group=await s.get(Group, "g-east-2"), at=at(0, 10)
        )
        parent = await router.assign(
            station_id="west", group=await s.get(Group, "g-west"), at=at(0, 10)
        )
        nowhere = await router.assign(station_id=None, group=None, at=at(0, 10))
    assert own is not None and (own.officer.id, own.how) == ("o-east", "group-officer")
    assert leader is not None and (leader.officer.id, leader.how) == ("l-east", "leader")
    assert parent is not None and (parent.officer.id, parent.how) == ("c-duty", "parent-roster")
    assert nowhere is not None and nowhere.officer.id == "c-duty"


async def test_a_private_matter_goes_to_the_group_last_written_in(h: Harness) -> None:
    # Found by a newcomer: a 橋鎮 resident who had once joined 河西's group later had every
    # private question routed to 河西's officer (the group joined last, not written in last).
    h.clock.set(at(0, 10))
    await h.bind("wxid_yang", group="grp-qiaozhen-01")
    await h.say("大家早", group="grp-qiaozhen-01", sender="wxid_yang")
    h.clock.advance(timedelta(minutes=5))
    await h.say("你好", group="grp-hexi-01", sender="wxid_yang")  # joins 河西's group: newest
    h.clock.advance(timedelta(minutes=5))
    await h.say("请问大家 村口修路要修到什么时候", group="grp-qiaozhen-01", sender="wxid_yang")
    h.clock.advance(timedelta(minutes=5))
    await h.say("我想问下 孙子的户口能不能落在我这里", group=None, sender="wxid_yang")
    private = [t for t in await h.tickets() if t.group_id is None]
    assert [t.station_id for t in private] == ["qiaozhen"]
