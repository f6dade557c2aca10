"""Turns for the database (bot/turns.py): in order, urgent work first, then held requests,
none lost."""

from __future__ import annotations

import asyncio

from bot.turns import Turns


async def _holder(
    turns: Turns,
    name: str,
    log: list[str],
    release: asyncio.Event,
    *,
    urgent: bool = False,
    request: bool = False,
) -> None:
    async with turns.take(urgent=urgent, request=request):
        log.append(name)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_are_served_in_order_urgent_ones_first_then_requests() -> None:
    turns, log = Turns(1), []
    names = ("first", "a", "request 1", "b", "request 2", "urgent")
    gates = {name: asyncio.Event() for name in names}
    tasks = []
    for name in names:  # queued in this order, each while "first" holds the only turn
        kind = {"urgent": name == "urgent", "request": name.startswith("request")}
        tasks.append(asyncio.create_task(_holder(turns, name, log, gates[name], **kind)))
        await _settle()
    assert log == ["first"]  # one turn at a time
    for name in ("first", "urgent", "request 1", "request 2", "a", "b"):
        gates[name].set()
        await _settle()
    await asyncio.gather(*tasks)
    assert log == ["first", "urgent", "request 1", "request 2", "a", "b"]


async def test_several_slots_and_a_cancelled_waiter_loses_no_turn() -> None:
    turns, log = Turns(2), []
    hold = asyncio.Event()
    holders = [asyncio.create_task(_holder(turns, f"h{i}", log, hold)) for i in range(2)]
    await _settle()
    assert log == ["h0", "h1"]
    gone = asyncio.create_task(_holder(turns, "gone", log, hold))
    later = asyncio.create_task(_holder(turns, "later", log, hold))
    await _settle()
    gone.cancel()
    await _settle()
    hold.set()
    await asyncio.wait_for(asyncio.gather(*holders, later), 5)
    assert log == ["h0", "h1", "later"]
    # Every turn came back: two can be taken at once again.
    async with turns.take(), turns.take():
        pass


async def test_a_waiter_cancelled_as_it_is_handed_the_turn_passes_it_on() -> None:
    turns, log = Turns(1), []
    hold = asyncio.Event()
    first = asyncio.create_task(_holder(turns, "first", log, hold))
    await _settle()
    handed = asyncio.create_task(_holder(turns, "handed", log, hold))
    after = asyncio.create_task(_holder(turns, "after", log, hold))
    await _settle()
    hold.set()
    await asyncio.sleep(0)  # "first" releases: the turn is handed to the next waiter ...
    handed.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(asyncio.gather(first, after), 5)
    assert "after" in log
