"""Reading a request body with a size cap, before anything parses it."""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_capped_body(request: Request, limit: int, *, refusal: str | None = None) -> bytes:
    """Return the body, or raise 413 as soon as it exceeds ``limit`` bytes (``refusal``: the
    413's words, when the limit callers should hear of is not ``limit`` itself)."""
    refusal = refusal or f"body larger than {limit} bytes"
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, refusal)
        except ValueError:
            raise HTTPException(400, "bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, refusal)
        chunks.append(chunk)
    return b"".join(chunks)
