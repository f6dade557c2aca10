"""Security headers on every response (a pure ASGI middleware: no per-request task or copy).

Every response: ``X-Content-Type-Options: nosniff`` (a browser never runs an upload or a JSON
answer as a script) and ``Referrer-Policy: no-referrer`` (links out of the console or the
simulator do not carry our URLs). HTML responses also refuse to be framed
(``X-Frame-Options: DENY`` for old browsers, CSP ``frame-ancestors 'none'`` for new ones), so a
page of ours cannot be overlaid on another site to trick a click. A header a route set itself
is kept.

A crash too: an exception that reaches this middleware before its response started is answered
here with a plain ``500 Internal Server Error`` carrying these headers (and a CSP that allows
nothing, ``no-store``), then raised again, so that Starlette's outermost error handler and the
server still log it. That handler's own 500 is written outside every added middleware and
carried none of them; it now only logs, the response having started.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
HTML_ONLY: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
# The answer to a crash: a fixed text that runs nothing, is framed nowhere and is not kept.
CRASH_BODY = b"Internal Server Error"
CRASH_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(CRASH_BODY)).encode()),
    *ALWAYS,
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """Adds the headers above to each ``http.response.start``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                wanted = ALWAYS + (HTML_ONLY if content_type.startswith(b"text/html") else ())
                headers.extend((n, v) for n, v in wanted if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await send(
                    {"type": "http.response.start", "status": 500, "headers": list(CRASH_HEADERS)}
                )
                await send({"type": "http.response.body", "body": CRASH_BODY})
            raise
