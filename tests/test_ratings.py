"""滿意 / 不滿意 after a close, end to end through the bridge: who an unsatisfied ticket is
reopened to, the ways residents actually write a rating, and which ticket it rates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
GROUP = "grp-qiaozhen-01"
HEXI = "grp-hexi-01"  # 河西: a station without a leader, below the county
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # off-wang's day shift


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    harness.clock.set(MONDAY_10)
    return harness


async def _closed(h: Harness, text: str, group: str | None, officer: str) -> str:
    """A ticket of wxid_huang's, closed by ``officer`` and waiting for a rating: its code."""
    await h.say(text, group=group, sender="wxid_huang")
    code = (await h.tickets())[-1].code
    await h.say(f"結案 #{code} 已答覆", group=None, sender=officer)
    return code


async def test_unsatisfied_at_a_station_without_a_leader_reaches_the_one_above(
    h: Harness,
) -> None:
    # A newcomer's trial: at 河西 (no leader) 不滿意 reopened the ticket to nobody, and the
    # resident read "交由-督辦".
    await h.bind("wxid_huang", group=HEXI)
    code = await _closed(h, "請問戶口遷回來要帶什麼材料", HEXI, "wxid_chen")
    await h.say("不滿意 說了等於沒說，窗口幾點開門都沒講", group=HEXI, sender="wxid_huang")
    [t] = await h.tickets()
    assert (t.satisfaction, t.status, t.assigned_officer_id) == (
        "unsatisfied",
        "escalated",
        "off-county",
    )
    await h.sent()
    [page] = [m for m in h.to_user("wxid_county") if f"#{code}" in m]
    assert "窗口幾點開門都沒講" in page and "陳警官" in page
    reply = h.to_group(HEXI)[-1]["text"]
    assert "縣局值班室" in reply and "-" not in reply


async def test_unsatisfied_with_nobody_above_goes_back_to_the_holder_unnamed(h: Harness) -> None:
    # Privately, with no group: the county desk holds it, and there is nobody above it.
    await h.bind("wxid_huang")
    code = await _closed(h, "請問戶口遷回來要帶什麼材料", None, "wxid_county")
    await h.say("不滿意 沒講清楚", group=None, sender="wxid_huang")
    [t] = await h.tickets()
    assert (t.status, t.assigned_officer_id) == ("escalated", "off-county")
    await h.sent()
    assert any(f"#{code}" in m and "沒講清楚" in m for m in h.to_user("wxid_county"))
    reply = h.to_user("wxid_huang")[-1]
    assert f"#{code} 已重新開啟" in reply and "交由" not in reply  # not "to" the one who had it


async def test_the_leader_holding_a_ticket_is_not_handed_it_back(h: Harness) -> None:
    await h.bind("wxid_huang", group=GROUP)
    await _closed(h, "建议在村口装个路灯,晚上太黑了", GROUP, "wxid_wang")
    await h.say("不满意", group=GROUP, sender="wxid_huang")
    [t] = await h.tickets()
    assert t.assigned_officer_id == "off-zhao"
    await h.say(f"结案 #{t.code} 已报镇政府", group=None, sender="wxid_zhao")
    await h.say("不满意 还是没装", group=GROUP, sender="wxid_huang")
    [t] = await h.tickets()
    assert (t.status, t.assigned_officer_id) == ("escalated", "off-county")
    await h.sent()
    assert "縣局值班室" in h.to_group(GROUP)[-1]["text"]
