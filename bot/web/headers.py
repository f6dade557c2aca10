"""Security headers on every response (a pure ASGI middleware: no per-request task or copy).

Every response: ``X-Content-Type-Options: nosniff`` (a browser never runs an upload or a JSON
answer as a script) and ``Referrer-Policy: no-referrer`` (links out of the console or the
simulator do not carry our URLs). HTML responses also refuse to be framed
(``X-Frame-Options: DENY`` for old browsers, CSP ``frame-ancestors 'none'`` for new ones), so a
page of ours cannot be overlaid on another site to trick a click. A header a route set itself
is kept.

Not covered: the bare ``500 Internal Server Error`` that Starlette's outermost error handler
writes after a crash passes outside every added middleware (a fixed plain-text body).
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


class SecurityHeaders:
    """Adds the headers above to each ``http.response.start``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                wanted = ALWAYS + (HTML_ONLY if content_type.startswith(b"text/html") else ())
                headers.extend((n, v) for n, v in wanted if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
