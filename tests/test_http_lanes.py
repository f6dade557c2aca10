"""The process's HTTP client (bot/channels/http_lanes.py): requests side by side, each on a
lane of its own (one keep-alive connection), never more lanes to an origin than allowed, and a
lane freed whatever became of its request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request

from bot.channels.http_lanes import LaneTransport, lane_client
from tests.fakes import LoopbackServer, free_port


class Peer(LoopbackServer):
    """Records the client port of each request; ``/together?n=N`` answers only once N requests
    are waiting there at the same time."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.waiting = 0
        self.holding = threading.Event()
        app = FastAPI()
        arrived: dict[int, asyncio.Event] = {}

        @app.get("/port")
        async def port(request: Request) -> dict[str, int]:
            assert request.client is not None
            self.ports.append(request.client.port)
            return {"port": request.client.port}

        @app.get("/together")
        async def together(request: Request, n: int) -> dict[str, int]:
            assert request.client is not None
            self.ports.append(request.client.port)
            self.waiting += 1
            self.holding.set()
            everyone = arrived.setdefault(n, asyncio.Event())
            if self.waiting >= n:
                everyone.set()
            await everyone.wait()
            return {"port": request.client.port}

        super().__init__(app)


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer().start()
    yield server
    server.stop()


async def test_requests_in_flight_each_get_a_connection(peer: Peer) -> None:
    # Six requests are answered only when all six are at the peer at once: they are sent side
    # by side, on six connections.
    async with lane_client(timeout=5, lanes=6) as client:
        answers = await asyncio.gather(
            *(client.get(f"{peer.base_url}/together", params={"n": 6}) for _ in range(6))
        )
    assert [a.status_code for a in answers] == [200] * 6
    assert len(set(peer.ports)) == 6


async def test_never_more_connections_than_lanes_and_they_are_kept(peer: Peer) -> None:
    async with lane_client(timeout=5, lanes=2) as client:
        for _ in range(3):
            answers = await asyncio.gather(
                *(client.get(f"{peer.base_url}/port") for _ in range(10))
            )
            assert [a.status_code for a in answers] == [200] * 10
    # Thirty requests, ten at a time, over two keep-alive connections.
    assert len(peer.ports) == 30
    assert len(set(peer.ports)) == 2


async def test_a_request_waits_no_longer_than_the_pool_timeout(peer: Peer) -> None:
    timeout = httpx.Timeout(5, pool=0)
    async with lane_client(timeout=5, lanes=1) as client:
        held = asyncio.create_task(client.get(f"{peer.base_url}/together", params={"n": 2}))
        # The one lane is taken once the peer holds that request.
        assert await asyncio.to_thread(peer.holding.wait, 5)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"{peer.base_url}/port", timeout=timeout)
        # A second client's request frees the first; its lane then serves again.
        async with httpx.AsyncClient(timeout=5) as other:
            await other.get(f"{peer.base_url}/together", params={"n": 2})
        assert (await held).status_code == 200
        assert (await client.get(f"{peer.base_url}/port", timeout=timeout)).status_code == 200


async def test_a_failed_request_frees_its_lane() -> None:
    nobody = f"http://127.0.0.1:{free_port()}/"
    transport = LaneTransport(lanes=1)
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        for _ in range(3):  # with the lane kept by the first failure, the second would wait
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get(nobody), 5)
