"""A size cap on the admin API's request bodies (a pure ASGI middleware).

FastAPI reads a JSON body whole before it validates it: a 10 MB body would be read, parsed and
echoed back in a 422. Here a body over ``server.max_body_bytes`` is refused with ``413`` as soon
as its declared length or the bytes read so far say so (docs/interfaces.md, "Admin API").
Uploads (``POST /api/v1/media``) have their own, larger limit, checked by their route; the
webhooks and the console read their bodies with :func:`bot.channels.body.read_capped_body`.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/api/"
OWN_LIMIT = ("/api/v1/media",)


class ApiBodyCap:
    """``413`` for an ``/api/…`` request body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(API_PREFIX) or path in OWN_LIMIT:
            await self.app(scope, receive, send)
            return
        limit, read = self.limit, 0
        declared = dict(scope["headers"]).get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > limit

        async def capped() -> Message:
            # FastAPI passes an HTTPException raised while it reads the body on to its handler
            # (any other error would become a 400): the caller gets the 413 as JSON.
            nonlocal read
            if too_large:
                raise HTTPException(413, f"body larger than {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise HTTPException(413, f"body larger than {limit} bytes")
            return message

        await self.app(scope, capped, send)
