"""A small county with matters in it, made through the real surfaces (residents writing in
their groups over the bridge), for the console's page and action tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.clock import ManualClock
from models.tickets import Ticket
from tests.console_support import add_accounts
from tests.fakes import FakeWorld
from tests.harness import Harness

# Wednesday 2 December 2026, 10:00 in Asia/Shanghai: 王警官 is on duty at 橋鎮, 陳警官 at 河西.
START = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
THEFT = "我家的電動車昨晚在樓下被偷了"
KNIFE = "有人拿刀砍人"


@dataclass
class County:
    h: Harness
    theft: Ticket  # 橋鎮, P2, reported by 楊
    knife: Ticket  # 橋鎮, P1 emergency, reported by 劉
    hexi: Ticket  # 河西, P2

    async def refresh(self) -> County:
        by_id = {t.id: t for t in await self.h.tickets()}
        self.theft, self.knife, self.hexi = (
            by_id[self.theft.id],
            by_id[self.knife.id],
            by_id[self.hexi.id],
        )
        return self


async def make_county(h: Harness) -> County:
    await h.load_directory()
    await add_accounts(h)
    await h.bind("wxid_yang", name="楊某某", phone="13912345678", group="grp-qiaozhen-01")
    await h.bind("wxid_liu", name="劉某某", phone="13887654321", group="grp-qiaozhen-01")
    await h.bind("wxid_he", name="何某某", phone="13700001111", group="grp-hexi-01")
    await h.say(THEFT, sender="wxid_yang", group="grp-qiaozhen-01")
    await h.say(KNIFE, sender="wxid_liu", group="grp-qiaozhen-01")
    await h.say(THEFT, sender="wxid_he", group="grp-hexi-01")
    theft, knife, hexi = await h.tickets()
    assert (theft.station_id, theft.priority, theft.assigned_officer_id) == (
        "qiaozhen",
        2,
        "off-wang",
    )
    assert (knife.station_id, knife.priority, knife.emergency) == ("qiaozhen", 1, True)
    assert (hexi.station_id, hexi.assigned_officer_id) == ("hexi", "off-chen")
    await h.drain()
    h.world.state.reset()
    return County(h, theft, knife, hexi)


@pytest.fixture
async def county(db_url: str, world: FakeWorld) -> AsyncIterator[County]:
    h = Harness.build(db_url, world, clock=ManualClock(START))
    try:
        yield await make_county(h)
    finally:
        await h.close()
