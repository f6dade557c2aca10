"""The frames between the server and its processing process (bot/frames.py), over a real
socket pair: every object arrives once, whole and in order, however the bytes are cut."""

from __future__ import annotations

import asyncio
import pickle
import socket
from typing import Any

from bot.frames import FrameProtocol


async def _pair() -> tuple[FrameProtocol, list[Any], asyncio.Future[None]]:
    """A sending protocol and what the other end has received (and when it is closed)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    received: list[Any] = []
    closed: asyncio.Future[None] = loop.create_future()
    await loop.create_connection(
        lambda: FrameProtocol(received.append, lambda _: closed.set_result(None)), sock=theirs
    )
    _, sender = await loop.create_connection(
        lambda: FrameProtocol(lambda _: None, lambda _: None), sock=ours
    )
    return sender, received, closed


async def test_frames_arrive_whole_and_in_order_small_and_large() -> None:
    sender, received, closed = await _pair()
    frames: list[Any] = [("accept", i, {"text": "電梯壞了" * (i % 7)}) for i in range(2000)]
    frames.insert(1000, ("large", 0, "字" * 3_000_000))  # far more than one read
    for frame in frames:
        assert sender.send(frame)
    sender.close()  # what was queued is sent first
    await asyncio.wait_for(closed, 10)
    assert received == frames


async def test_a_frame_cut_anywhere_is_read_once_it_is_whole() -> None:
    got: list[Any] = []
    protocol = FrameProtocol(got.append, lambda _: None)
    frames = [("ok", 1, "甲"), ("ok", 2, None), ("error", 3, "x" * 300)]
    wire = b"".join(len(p).to_bytes(4, "big") + p for p in (pickle.dumps(f) for f in frames))
    for i in range(len(wire)):  # one byte at a time
        protocol.data_received(wire[i : i + 1])
    assert got == frames
    protocol.data_received(wire[:7])
    protocol.data_received(wire[7:])  # the rest at once: three more
    assert got == frames * 2


async def test_sending_after_the_other_end_is_gone_says_so() -> None:
    sender, _, _ = await _pair()
    sender.close()
    assert not sender.send(("accept", 1, None))
