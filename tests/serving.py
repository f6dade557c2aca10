"""A real ``lianxin`` server process on loopback, for the tests that need one (uvicorn's
banner, file modes, the processing process ``serve`` starts)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    ready: str = "/healthz",
    own_group: bool = False,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``lianxin ARGS --port P`` started as its own process (its output in ``cwd/server.log``);
    yields its base URL and process once ``ready`` answers 200, and stops it afterwards.
    ``own_group``: in a process group of its own, as a service manager starts it."""
    port = free_port()
    log = (cwd / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=own_group,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not answers(f"{base}{ready}"):
            assert process.poll() is None, (cwd / "server.log").read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
