"""The server's processing process: ``python -m bot.processor_process --fd N``.

Started by ``lianxin serve`` (bot/pipeline_link.py), never by hand. It builds its own runtime
from the settings the server sends first over the socket (the server's own, as they were when
it started: an edited config file takes effect at the next start of the server, never half),
runs the inbound pipeline, the delivery workers and the scheduler (bot/app.py's
:func:`background_work`), and answers the server over the inherited socket. It ends when the
server closes the socket or dies, or TERM_GRACE_S after a SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from collections.abc import Sequence
from typing import Any

from bot.app import background_work, build_pipeline
from bot.cli_common import setup_logging
from bot.db import DatabaseUnavailable
from bot.frames import FrameProtocol
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.settings import Settings
from bot.wiring import build_runtime

log = logging.getLogger("lianxin.processor")
# How long a SIGTERM leaves the server to close the socket (see serve()).
TERM_GRACE_S = 10.0


class Answering:
    """Answers the server's frames from the pipeline (see bot/pipeline_link.py)."""

    def __init__(self, runtime: Runtime, pipeline: Pipeline, link: FrameProtocol) -> None:
        self.runtime = runtime
        self.pipeline = pipeline
        self.link = link
        self._tasks: set[asyncio.Future[Any]] = set()

    def on_frame(self, frame: tuple[Any, ...]) -> None:
        """One request of the server's. One that fails here is answered as failed (the
        server answers 500): raised, it would close the socket and end this process, and the
        sender's retries would end the next one."""
        try:
            self._take(frame)
        except Exception as exc:
            log.exception("a request from the server failed")
            self.link.send(("error", frame[1], f"{type(exc).__name__}: {exc}"))

    def _take(self, frame: tuple[Any, ...]) -> None:
        kind, request_id, *args = frame
        if kind == "accept":
            event, passive_until = args
            # No task per event: the answer is sent from the future's callback.
            self._answer(request_id, self.pipeline.submit(event, passive_until=passive_until))
        elif kind == "accept_reply":
            event, passive_until = args
            reply = self.pipeline.accept_with_reply(event, passive_until=passive_until)
            self._answer(request_id, asyncio.ensure_future(reply))
        elif kind == "metrics":
            self._answer(request_id, asyncio.ensure_future(self.pipeline.metrics_text()))
        elif kind == "ready":
            self._answer(request_id, asyncio.ensure_future(self.pipeline.readiness()))
        elif kind == "health":
            self.link.send(("ok", request_id, sorted(self.runtime.health.down())))
        elif kind == "wake":
            (self.runtime.urgent_wakeup if args[0] else self.runtime.outbox_wakeup).set()

    def _answer(self, request_id: int, future: asyncio.Future[Any]) -> None:
        self._tasks.add(future)
        future.add_done_callback(lambda f: self._send(request_id, f))

    def _send(self, request_id: int, future: asyncio.Future[Any]) -> None:
        self._tasks.discard(future)
        if future.cancelled():
            self.link.send(("error", request_id, "cancelled"))
        elif isinstance(exc := future.exception(), DatabaseUnavailable):
            # The server answers 503: the sender retries, as it would after a timeout.
            self.link.send(("unavailable", request_id, str(exc)))
        elif exc is not None:
            # The journal writer or the task logged it; the server answers 500.
            self.link.send(("error", request_id, f"{type(exc).__name__}: {exc}"))
        else:
            self.link.send(("ok", request_id, future.result()))


async def serve(fd: int) -> None:
    """Take the settings the server sends first on socket ``fd``, then answer the server
    until it closes the socket; then stop the background work."""
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    given: asyncio.Future[Settings] = loop.create_future()
    answering: list[Answering] = []  # set once the runtime is built

    def on_frame(frame: tuple[Any, ...]) -> None:
        if answering:
            answering[0].on_frame(frame)
        elif frame[0] == "settings" and not given.done():
            given.set_result(frame[2])

    def on_lost(_: Exception | None) -> None:
        if not given.done():
            given.set_exception(EOFError())
        if not closed.done():
            closed.set_result(None)

    def on_term() -> None:
        # A service manager stops the whole group at once: the server, stopping too, finishes
        # the requests it has begun (they wait for this process) and then closes the socket.
        # Ending now would fail them, and the server would start another one. Alone (the
        # server is not stopping), end after TERM_GRACE_S; a second SIGTERM ends it now.
        if terms:
            on_lost(None)
        terms.append(loop.call_later(TERM_GRACE_S, on_lost, None))

    terms: list[asyncio.TimerHandle] = []
    loop.add_signal_handler(signal.SIGTERM, on_term)
    _, link = await loop.create_connection(
        lambda: FrameProtocol(on_frame, on_lost), sock=socket.socket(fileno=fd)
    )
    try:
        settings = await given
    except EOFError:
        return  # the server went away before it sent them
    setup_logging(settings.server.log_level)
    runtime = build_runtime(settings)
    pipeline = build_pipeline(runtime)
    answering.append(Answering(runtime, pipeline, link))
    try:
        async with background_work(runtime, pipeline):
            link.send(("ready", 0, None))
            await closed
    finally:
        await runtime.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the processing process."""
    parser = argparse.ArgumentParser(prog="lianxin-processor")
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the server stops this process by closing the
    # socket, after its last requests are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve(args.fd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
