"""Who is looking: the signed-in account behind a console request, its scope and its forms.

Every console page asks for a :class:`Viewer` (``Depends(viewer)``). Without a live session the
request ends in :class:`SignInRequired`, which answers ``303`` to ``/console/login``. A POST asks
for :func:`posted_form`, which also checks the form's ``csrf_token`` against the session's and
answers ``403`` (:class:`CsrfRefused`) when it does not match.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from bot.runtime import Runtime
from bot.services import audit
from bot.services.console_sessions import resume_session, tokens_match
from bot.services.ticket_service import COUNTY, Actor, Scope, officer_scope
from bot.texts import Script
from bot.web.deps import get_runtime
from models.console import ConsoleAccount, ConsoleSession
from models.directory import Officer

COOKIE = "lx_console"
LOGIN_COOKIE = "lx_console_login"
COOKIE_PATH = "/console"
LOGIN_PATH = "/console/login"
# Fields a console form may have, and the largest body (an answer, a closing note).
MAX_FIELDS = 50


class SignInRequired(Exception):
    """No live session: the answer is a redirect to the sign-in page."""


class CsrfRefused(Exception):
    """A POST whose ``csrf_token`` does not match its session (or sign-in page)."""

    def __init__(self, script: Script = "hant") -> None:
        super().__init__("csrf")
        self.script = script


@dataclass(frozen=True)
class Viewer:
    """A signed-in account: who they are, what they may see (``scope``) and how they act on
    tickets (``actor``, for bot/services/ticket_service.py)."""

    account: ConsoleAccount
    officer: Officer | None
    session: ConsoleSession
    actor: Actor
    ip: str | None

    @property
    def role(self) -> str:
        return self.account.role

    @property
    def script(self) -> Script:
        return "hans" if self.account.script == "hans" else "hant"

    @property
    def scope(self) -> Scope:
        return self.actor.scope

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    @property
    def is_admin(self) -> bool:
        return self.account.role == "admin"


def client_ip(request: Request) -> str | None:
    """The caller's address: the one that connected, or the client a proxy listed in
    ``server.trusted_proxies`` names in X-Forwarded-For (bot/app.py)."""
    return request.client.host if request.client else None


def https(request: Request) -> bool:
    """Whether the browser reached us over https (directly, or through a proxy listed in
    ``server.trusted_proxies`` that says so in X-Forwarded-Proto): cookies are Secure then."""
    return request.url.scheme == "https"


async def resolve(request: Request, runtime: Runtime, *, touch: bool) -> Viewer:
    """The viewer behind ``request``'s cookie, or :class:`SignInRequired`. An idle session is
    ended and audited here, in its own transaction, before the redirect."""
    now = runtime.clock.now()
    async with runtime.sessions.begin() as session:
        resumed = await resume_session(
            session, raw=request.cookies.get(COOKIE), now=now, touch=touch
        )
        if resumed is not None and resumed.expired:
            audit.record(
                session,
                now=now,
                action="session_expired",
                account=resumed.account,
                ip=client_ip(request),
            )
        if resumed is None or resumed.expired:
            viewer = None
        else:
            account = resumed.account
            officer = await session.get(Officer, account.officer_id) if account.officer_id else None
            if account.role == "admin":
                scope = COUNTY
            elif officer is not None:
                scope = await officer_scope(session, officer)
            else:
                # Their officer left the directory: nothing to see until an admin relinks.
                scope = Scope(stations=frozenset())
            name = account.name or (officer.name if officer else "") or account.username
            actor = Actor(
                key=f"console:{account.username}",
                name=name,
                officer=officer,
                scope=scope,
                script="hans" if account.script == "hans" else "hant",
                leader=account.role == "leader",
            )
            viewer = Viewer(account, officer, resumed.row, actor, client_ip(request))
    if viewer is None:
        raise SignInRequired
    return viewer


async def viewer(request: Request, runtime: Runtime = Depends(get_runtime)) -> Viewer:
    """A page's viewer; the request counts as use of the session (idle time starts again)."""
    return await resolve(request, runtime, touch=True)


async def passive_viewer(request: Request, runtime: Runtime = Depends(get_runtime)) -> Viewer:
    """A self-refreshing fragment's viewer: its polling does not keep an idle session alive."""
    return await resolve(request, runtime, touch=False)


async def read_form(request: Request, limit: int) -> FormData:
    """The posted form, refused with 411/413 when its body has no length or is too large (a
    browser always sends the length of a form)."""
    declared = request.headers.get("content-length")
    if declared is None:
        raise HTTPException(411, "Content-Length required")
    try:
        size = int(declared)
    except ValueError:
        raise HTTPException(400, "bad Content-Length") from None
    if size > limit:
        raise HTTPException(413, f"form larger than {limit} bytes")
    return await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=limit)


async def posted_form(
    request: Request,
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> tuple[Viewer, FormData]:
    """A POST's viewer and form, after checking the form's ``csrf_token``."""
    form = await read_form(request, runtime.settings.server.max_body_bytes)
    token = form.get("csrf_token")
    if not tokens_match(who.csrf_token, token if isinstance(token, str) else None):
        raise CsrfRefused(who.script)
    return who, form
