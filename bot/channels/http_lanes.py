"""Many HTTP requests in flight at the CPU cost of one (issue 17: the bulletin fan-out).

httpcore's connection pool, on every request and again when its response is closed, walks every
connection it holds: it asks each idle one's socket whether it is readable (a system call) and
counts the pool's connections once per connection. One pool with 16 connections in use therefore
spent about twice the CPU per request of a pool with one (docs/performance.md, "Fan-out, second
pass"), and the delivery worker, which sends to many chats side by side, paid it on every
message. :class:`LaneTransport` keeps single-connection pools ("lanes") per origin instead and
gives each request a free one, so a request costs what it costs on a lone keep-alive connection
however many are in flight.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

# httpx's own default: at most this many connections to one origin at once.
MAX_LANES = 100


@dataclass
class _Origin:
    """The lanes to one scheme, host and port: a slot per lane, the idle ones on a stack."""

    slots: asyncio.Semaphore
    idle: list[httpx.AsyncHTTPTransport] = field(default_factory=list)
    every: list[httpx.AsyncHTTPTransport] = field(default_factory=list)


class _LaneStream(httpx.AsyncByteStream):
    """A response body that frees its lane once closed (httpx closes it after reading it)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class LaneTransport(httpx.AsyncBaseTransport):
    """An httpx transport over single-connection pools, up to ``lanes`` per origin.

    A request takes the lane used last (its connection is the likeliest still open), or opens a
    new one, or waits for one to be freed, in arrival order, within the request's pool timeout.
    Timeouts, retries of a dropped keep-alive connection and TLS are httpx's own, lane by lane;
    one TLS context (made on the first ``https`` request, so that a server talking only to a
    loopback bridge never loads the CA bundle) serves every lane."""

    def __init__(
        self,
        *,
        lanes: int = MAX_LANES,
        keepalive_expiry: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._lanes = lanes
        self._limits = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=keepalive_expiry
        )
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._origins: dict[tuple[str, str, int | None], _Origin] = {}

    def _new_lane(self, scheme: str) -> httpx.AsyncHTTPTransport:
        verify: ssl.SSLContext | bool = False
        if scheme == "https":
            if self._tls is None:
                self._tls = (
                    self._verify
                    if isinstance(self._verify, ssl.SSLContext)
                    else httpx.create_ssl_context(verify=self._verify)
                )
            verify = self._tls
        return httpx.AsyncHTTPTransport(verify=verify, limits=self._limits, trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a free lane of its origin; the lane is freed when the response
        body is closed, or at once if sending fails."""
        url = request.url
        key = (url.scheme, url.host, url.port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(asyncio.Semaphore(self._lanes))
        if origin.slots.locked():  # every lane busy: wait, within httpx's pool timeout
            timeout = request.extensions.get("timeout", {}).get("pool")
            try:
                await asyncio.wait_for(origin.slots.acquire(), timeout)
            except TimeoutError:
                raise httpx.PoolTimeout("no free lane", request=request) from None
        else:
            await origin.slots.acquire()
        if origin.idle:
            lane = origin.idle.pop()
        else:
            lane = self._new_lane(url.scheme)
            origin.every.append(lane)

        def release() -> None:
            origin.idle.append(lane)
            origin.slots.release()

        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _LaneStream(response.stream, release)
        return response

    async def aclose(self) -> None:
        """Close every lane's connection."""
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            for lane in origin.every:
                await lane.aclose()


def lane_client(
    *, timeout: float, lanes: int = MAX_LANES, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """The process's HTTP client: httpx's, over a :class:`LaneTransport`."""
    return httpx.AsyncClient(timeout=timeout, transport=LaneTransport(lanes=lanes, verify=verify))
