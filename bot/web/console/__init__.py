"""The bureau console (CONTRACT §7): server-rendered pages under ``/console/``.

``install(app)`` adds the routes, the static files (``/console/static/``: the stylesheet and
htmx, no build step) and the answers for "not signed in" (``303`` to the sign-in page) and "form
without a valid CSRF token" (``403``). Pages: ``auth_routes`` (sign-in and out), ``overview``
(總覽), ``tickets`` (工單), ``disputes`` (糾紛台賬), ``bulletins_page`` (公告), ``alerts_page``
(緊急通報), ``stats_page`` (統計), ``households`` and ``household_visits`` (住戶: roster,
visits, plans, 待訪), ``org`` and ``org_upload`` (組織: the tree, a station's roster week,
edits, the directory upload), ``audit_page`` (審計), ``api_docs`` (the admin API's page for
admins); ``coming`` holds the places of pages not
built yet, listed in ``ui.NAV``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bot.web.console import (
    alerts_page,
    api_docs,
    audit_page,
    auth_routes,
    bulletin_suggest,
    bulletins_page,
    coming,
    disputes,
    household_visits,
    households,
    org,
    org_upload,
    overview,
    stats_page,
    tickets,
)
from bot.web.console.ui import STATIC, Ui, not_found, page
from bot.web.console.viewer import LOGIN_PATH, CsrfRefused, SignInRequired, resolve

router = APIRouter(prefix="/console")
for module in (
    auth_routes,
    overview,
    tickets,
    disputes,
    bulletin_suggest,  # before bulletins_page: /bulletins/suggest is not a bulletin's id
    bulletins_page,
    alerts_page,
    stats_page,
    household_visits,  # before households: /households/due is not a household's number
    households,
    org_upload,
    org,
    audit_page,
    api_docs,
    coming,
):
    router.include_router(module.router)


async def _sign_in(request: Request, exc: Exception) -> Response:
    return RedirectResponse(LOGIN_PATH, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    runtime = request.app.state.runtime
    script = exc.script if isinstance(exc, CsrfRefused) else "hant"
    return page(
        "error.html",
        ui=Ui(runtime, script, runtime.clock.now()),
        viewer=None,
        title="error_csrf_title",
        text="error_csrf_text",
        status_code=403,
    )


async def address_not_understood(request: Request) -> Response:
    """A console address with a part that cannot be read (``/console/tickets/export.csv``,
    ``/console/households/abc``): the console's own 404 in the viewer's script, as for a page
    that does not exist (it was FastAPI's 422 in English JSON); signed out, the sign-in."""
    runtime = request.app.state.runtime
    try:
        viewer = await resolve(request, runtime, touch=False)
    except SignInRequired:
        return RedirectResponse(LOGIN_PATH, status_code=303)
    return not_found(Ui(runtime, viewer.actor.script, runtime.clock.now()), viewer)


def install(app: FastAPI) -> None:
    """Serve the console from ``app``."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    # Last of every route (``install`` is the app's last step): any other console address is
    # answered as a page that does not exist, the sign-in first for a visitor without a
    # session (CONTRACT §7: every console page without one answers 303; a plain 404 told a
    # visitor which addresses are pages).
    app.add_api_route(
        "/console/{rest:path}",
        address_not_understood,
        methods=["GET", "POST"],
        include_in_schema=False,
    )
