"""Reading a request body with a size cap, before anything parses it."""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_capped_body(request: Request, limit: int) -> bytes:
    """Return the body, or raise 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"body larger than {limit} bytes")
        except ValueError:
            raise HTTPException(400, "bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
