"""Signing in and out of the console, and the account's choice of script.

``GET /console/login`` shows the form (``username``, ``password``, a hidden ``csrf_token`` that
must match a cookie set with the form: a page elsewhere cannot sign a browser in to an account
of its choosing). ``POST /console/login`` answers ``303`` to ``/console/`` with a new session
cookie, or the form again with one message for every kind of failure.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from bot.runtime import Runtime
from bot.services import audit, login_throttle
from bot.services.accounts import (
    LOCK_FOR,
    MAX_FAILURES,
    MAX_PASSWORD,
    authenticate,
    find_account,
)
from bot.services.console_sessions import (
    end_session,
    new_token,
    open_session,
    resume_session,
    tokens_match,
    why_ended,
)
from bot.web.console.ui import Ui, page
from bot.web.console.viewer import (
    COOKIE,
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_PATH,
    CsrfRefused,
    Viewer,
    client_ip,
    https,
    posted_form,
    read_form,
)
from bot.web.deps import get_runtime
from models.console import ConsoleAccount

router = APIRouter()


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=https(request),
    )


def _login_page(
    request: Request,
    runtime: Runtime,
    *,
    token: str,
    message: str | None = None,
    message_values: dict[str, str] | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    ui = Ui(runtime, "hant", runtime.clock.now())
    headers = {}
    if request.headers.get("hx-request"):
        # An htmx refresh whose session ended was redirected here: reload the whole window.
        headers["HX-Redirect"] = LOGIN_PATH
    response = page(
        "login.html",
        ui=ui,
        viewer=None,
        csrf_token=token,
        message=message,
        message_values=message_values or {},
        username=username,
        status_code=status_code,
        headers=headers,
    )
    _cookie(response, request, LOGIN_COOKIE, token)
    return response


def _login_token(request: Request) -> str:
    """The sign-in form's token: the browser's, if it has a sound one (two tabs open at the
    sign-in page both work), else a new one."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if 32 <= len(current) <= 64 and current.isascii() else new_token()


def _throttled_page(
    request: Request, runtime: Runtime, until: datetime, *, username: str, now: datetime
) -> Response:
    """429 with the local time the address may try again (nothing was checked or counted)."""
    ui = Ui(runtime, "hant", now)
    response = _login_page(
        request,
        runtime,
        token=_login_token(request),
        message="login_throttled",
        message_values={"until": ui.hm(until)},
        username=username,
        status_code=429,
    )
    response.headers["Retry-After"] = str(max(1, int((until - now).total_seconds())))
    return response


@router.get("/login", include_in_schema=False)
async def login_form(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """The sign-in form (a browser still signed in goes on to the overview)."""
    raw = request.cookies.get(COOKIE)
    async with runtime.sessions() as session:
        live = await resume_session(session, raw=raw, now=runtime.clock.now(), touch=False)
        ended = await why_ended(session, raw=raw)
    if live is not None and not live.expired and not request.headers.get("hx-request"):
        return RedirectResponse("/console/", status_code=303)
    message = None
    if ended == "idle":
        message = "login_expired"
    elif ended == "old":
        # Not "idle": someone busy all day would be told they had left the screen.
        message = "login_expired_old"
    elif request.query_params.get("signed_out"):
        message = "login_signed_out"
    response = _login_page(request, runtime, token=_login_token(request), message=message)
    if raw:
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def _text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@router.post("/login", include_in_schema=False)
async def login(request: Request, runtime: Runtime = Depends(get_runtime)) -> Response:
    """Check the credentials; on success a new session and ``303`` to ``/console/``."""
    form = await read_form(request, runtime.settings.server.max_body_bytes)
    token = form.get("csrf_token")
    if not tokens_match(
        request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
    ):
        raise CsrfRefused()
    username = _text(form, "username", 64).strip()
    password = _text(form, "password", MAX_PASSWORD + 1)
    if not username or not password:
        return _login_page(
            request,
            runtime,
            token=_login_token(request),
            message="login_missing",
            username=username,
            status_code=400,
        )
    now = runtime.clock.now()
    ip = client_ip(request)
    limits = runtime.settings.console
    async with runtime.sessions.begin() as session:
        throttle = await login_throttle.check(
            session, cipher=runtime.cipher, settings=limits, ip=ip, now=now
        )
        if throttle.throttled and throttle.first_this_minute:
            audit.record(
                session,
                now=now,
                action="login_throttled",
                account=await find_account(session, username),
                detail=f"failures={limits.login_failures_per_address}",
                ip=ip,
            )
    if throttle.throttled:
        return _throttled_page(request, runtime, throttle.until, username=username, now=now)
    async with runtime.sessions.begin() as session:
        # Signing in again ends the session this browser had (another account's, perhaps).
        await end_session(session, raw=request.cookies.get(COOKIE), now=now)
        result = await authenticate(
            session, username=username, password=password, now=now, hasher=runtime.passwords
        )
        account = result.account if result.outcome not in ("unknown",) else None
        if result.outcome == "ok":
            assert result.account is not None
            raw, _ = await open_session(session, account=result.account, now=now)
            audit.record(session, now=now, action="login", account=result.account, ip=ip)
        else:
            detail = {
                "unknown": "unknown_user",
                "disabled": "disabled",
                "locked": "while_locked",
            }.get(result.outcome)
            audit.record(
                session, now=now, action="login_failed", account=account, detail=detail, ip=ip
            )
            if result.locked_now:
                audit.record(session, now=now, action="locked", account=account, ip=ip)
            await login_throttle.count_failure(
                session, cipher=runtime.cipher, settings=limits, ip=ip, now=now
            )
    if result.outcome != "ok":
        # One message for every failure: a wrong password, an unknown or disabled account and
        # a locked one look alike from outside (saying "locked" only when locked would tell,
        # after five tries, whether a username exists). So the one message names the lock-out,
        # its length and its remedy, for everyone.
        return _login_page(
            request,
            runtime,
            token=_login_token(request),
            message="login_failed",
            message_values={
                "failures": str(MAX_FAILURES),
                "minutes": str(int(LOCK_FOR.total_seconds() // 60)),
            },
            username=username,
        )
    response = RedirectResponse("/console/", status_code=303)
    # The sign-in form's cookie stays: another tab's form still works.
    _cookie(response, request, COOKIE, raw)
    return response


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request,
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """End the session; ``303`` to the sign-in page."""
    who, _ = posted
    now = runtime.clock.now()
    async with runtime.sessions.begin() as session:
        await end_session(session, raw=request.cookies.get(COOKIE), now=now)
        audit.record(session, now=now, action="logout", account=who.account, ip=who.ip)
    response = RedirectResponse(f"{LOGIN_PATH}?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def safe_next(value: object, default: str = "/console/") -> str:
    """A console path to return to (never another site: ``//evil`` or ``https://…``)."""
    if (
        isinstance(value, str)
        and value.startswith("/console/")
        and "//" not in value
        and "\\" not in value
        and len(value) <= 2000
    ):
        return value
    return default


@router.post("/account/script", include_in_schema=False)
async def switch_script(
    posted: tuple[Viewer, FormData] = Depends(posted_form),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Switch the account between Traditional and Simplified script; back to the page."""
    who, form = posted
    async with runtime.sessions.begin() as session:
        account = await session.get(ConsoleAccount, who.account.id)
        assert account is not None
        account.script = "hant" if account.script == "hans" else "hans"
    return RedirectResponse(safe_next(form.get("next")), status_code=303)
