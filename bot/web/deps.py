"""FastAPI dependencies that hand routes the runtime and dispatcher built at start-up.

They are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per request for a single attribute read.
"""

from __future__ import annotations

from fastapi import Request

from bot.dispatcher import Dispatcher
from bot.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime."""
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_dispatcher(request: Request) -> Dispatcher:
    """The app's dispatcher."""
    return request.app.state.dispatcher  # type: ignore[no-any-return]
