"""The application factory: routes over a runtime, background work in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import bot
from bot.channels.wecom_robot import PER_MINUTE as WECOM_ROBOT_PER_MINUTE
from bot.dispatcher import Dispatcher
from bot.pipeline import Pipeline
from bot.pipeline_link import ProcessorLink, ProcessorUnavailable
from bot.runtime import Runtime
from bot.scheduler import build_scheduler
from bot.services.ticket_service import answer_undelivered
from bot.web import (
    alerts_api,
    api,
    bridge_routes,
    bulletins_api,
    console,
    disputes_api,
    docs,
    health,
    media_api,
    metrics_route,
    visits_api,
    wechat_routes,
    wecom_routes,
)
from bot.web.body_cap import ApiBodyCap
from bot.web.headers import SecurityHeaders
from broadcasts.outbox_worker import OutboxWorker
from broadcasts.pacing import Pace
from handlers.context import Handler
from handlers.registry import default_handlers, when_limited

log = logging.getLogger("lianxin")


def make_worker(
    runtime: Runtime, *, urgent: bool = False, beside_urgent: bool = False
) -> OutboxWorker:
    """The delivery worker for a runtime, with each channel's per-chat pacing. ``urgent``: the
    urgent lane, which sends only safety replies and P1 pages (priority ≤ 1), woken by the
    inbound processor the moment it commits one. ``beside_urgent``: an ordinary worker that
    leaves those to an urgent lane running beside it (the server's)."""
    return OutboxWorker(
        sessions=runtime.sessions,
        senders=runtime.senders,
        cipher=runtime.cipher,
        clock=runtime.clock,
        settings=runtime.settings.outbox,
        pacing={
            "bridge": Pace(runtime.settings.bridge.send_interval_s),
            # WeCom refuses a group robot's 21st message in a minute (errcode 45009).
            "wecom_robot": Pace(60 / WECOM_ROBOT_PER_MINUTE, burst=WECOM_ROBOT_PER_MINUTE),
        },
        account_pacing=(
            {"bridge": Pace(60 / runtime.settings.bridge.account_per_minute)}
            if runtime.settings.bridge.account_per_minute
            else {}
        ),
        wakeup=runtime.urgent_wakeup if urgent else runtime.outbox_wakeup,
        health=runtime.health,
        metrics=runtime.metrics,
        max_priority=1 if urgent else None,
        # The server's ordinary worker leaves safety replies and P1 pages to the urgent lane,
        # which records each as it is sent (see OutboxWorker.run_once).
        min_priority=2 if beside_urgent else 0,
        # The urgent lane's claims and records go before queued journal writes and batches.
        turn=(lambda: runtime.db_turn(urgent=True)) if urgent else runtime.db_turn,
        given_up=functools.partial(answer_undelivered, runtime),
        # A channel that works again makes its waiting urgent rows due: that lane sends them.
        urgent_wakeup=runtime.urgent_wakeup,
    )


def settle_heap() -> None:
    """Put what start-up built (the classifier's tables, the texts, every imported module) out
    of the cyclic garbage collector's reach, once, as the server starts.

    Those objects live as long as the process; without this every full collection walks them
    again, about a tenth of the CPU an inbound event costs (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def build_pipeline(runtime: Runtime, handlers: Sequence[Handler] | None = None) -> Pipeline:
    """The inbound pipeline over the handler chain (the default one unless given)."""
    if handlers is None:
        handlers = default_handlers()
    # A custom chain keeps, when limited, those of its handlers the default keeps.
    limited = {k: [h for h in v if h in handlers] for k, v in when_limited().items()}
    return Pipeline(runtime, Dispatcher(runtime, handlers, when_limited=limited))


@asynccontextmanager
async def background_work(runtime: Runtime, pipeline: Pipeline) -> AsyncIterator[None]:
    """While inside: the inbound processor, the delivery workers (ordinary and urgent), the
    scheduler's election and jobs. Run by the server, or by its processing process."""
    tasks: list[asyncio.Task[None]] = []
    worker = make_worker(runtime, beside_urgent=True)
    urgent = make_worker(runtime, urgent=True)
    scheduler = build_scheduler(runtime)
    settle_heap()
    try:
        # Events journaled before a restart (or by another process) are processed now.
        pipeline.start_processing()
        tasks.append(asyncio.create_task(worker.run_forever(), name="outbox-worker"))
        tasks.append(asyncio.create_task(urgent.run_forever(), name="outbox-urgent"))
        # Elect before the first jobs are due, so a lone instance does not skip them.
        await runtime.leadership.check()
        tasks.append(asyncio.create_task(runtime.leadership.run_forever(), name="election"))
        scheduler.start()
        yield
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        worker.stop()
        urgent.stop()
        await pipeline.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.leadership.close()  # at once: a standby need not wait for the exit


def create_app(
    runtime: Runtime,
    *,
    handlers: Sequence[Handler] | None = None,
    background: bool = True,
    close_runtime: bool = True,
    processor_command: Sequence[str] | None = None,
) -> FastAPI:
    """Build the ASGI app. ``background`` starts the processor, the delivery workers and the
    scheduler with the server: in this process, or with ``processor_command`` (the argv that
    starts bot/processor_process.py) in a processing process beside it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if not background:
                yield
            elif link is None:
                async with background_work(runtime, pipeline):
                    yield
            else:
                # Accepting here, processing, delivery and the scheduler in the processing
                # process (bot/pipeline_link.py): each has a core of its own.
                settle_heap()
                await link.start()
                app.state.pipeline = link
                try:
                    yield
                finally:
                    await link.stop()
        finally:
            await pipeline.stop()
            if close_runtime:
                await runtime.aclose()

    app = FastAPI(
        title="Lianxin",
        description="連心: police–resident chat groups; every matter answered and followed.",
        version=bot.version(),
        lifespan=lifespan,
        # Served by bot.web.docs with local assets, and only to admins unless server.public_docs.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = runtime
    pipeline = build_pipeline(runtime, handlers)
    link = None if processor_command is None else ProcessorLink(runtime, processor_command)
    # Its tasks outlive a request: stopped with the runtime when no lifespan runs.
    runtime.closers.append(pipeline.stop)
    app.state.pipeline = pipeline
    # Starlette types a handler as taking any Exception; ours takes the one it is registered for.
    app.add_exception_handler(RequestValidationError, _unprocessable)  # type: ignore[arg-type]
    app.add_exception_handler(ProcessorUnavailable, _unavailable)  # type: ignore[arg-type]
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ApiBodyCap, limit=runtime.settings.server.max_body_bytes)
    if runtime.settings.server.trusted_proxies:
        # Added last, so it runs first: every route, the console's sign-in throttle and the
        # audit log's addresses see the client the proxy names. Only the configured proxies
        # are believed (uvicorn's own proxy handling is off: `lianxin serve`).
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=runtime.settings.server.trusted_proxies
        )
    # The channels' callbacks first: a request is matched against the routes in order, and
    # they carry nearly all of the traffic.
    routers = (
        wechat_routes,
        bridge_routes,
        wecom_routes,
        health,
        api,
        bulletins_api,
        media_api,
        alerts_api,
        docs,
    )
    for module in (*routers, disputes_api, visits_api, metrics_route):
        app.include_router(module.router)
    console.install(app)
    return app


def _printable(value: Any) -> Any:
    """``value`` with every text made encodable: a lone surrogate the caller sent is shown as
    its escape instead of failing the answer that names it."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


async def _unprocessable(request: Request, exc: RequestValidationError) -> Response:
    """FastAPI's 422 with the same shape, but one that can always be sent; the console's pages
    answer an address they cannot read (a path or query part) with the console's 404."""
    address = all(e.get("loc", ("",))[0] in ("path", "query") for e in exc.errors())
    if request.url.path.startswith("/console/") and address:
        return await console.address_not_understood(request)
    return JSONResponse({"detail": _printable(jsonable_encoder(exc.errors()))}, status_code=422)


async def _unavailable(request: Request, exc: ProcessorUnavailable) -> JSONResponse:
    """The processing process is starting again: nothing was answered, so the sender's retry
    (WeChat's, the bridge's) is journaled once it is back."""
    return JSONResponse(
        {"detail": "processing is restarting; try again"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
