"""The admin API's page (Swagger UI) for an admin signed in to the console.

``/docs`` asks for an admin token, which a browser cannot send when it opens a page, and the
console's session cookie is sent only under ``/console``: so the same page is served here, to
admins (anyone else gets the console's 404), with the OpenAPI document beside it. Calls made
from the page still need a token (its **Authorize** button).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from bot.runtime import Runtime
from bot.web.console.ui import Ui, not_found
from bot.web.console.viewer import Viewer, viewer
from bot.web.deps import get_runtime
from bot.web.docs import swagger_page

router = APIRouter()
SCHEMA_PATH = "/console/api-docs/openapi.json"


@router.get("/api-docs", include_in_schema=False)
async def api_docs(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """Swagger UI over :data:`SCHEMA_PATH`, with the app's own copy of its files."""
    if not who.is_admin:
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return swagger_page(request, SCHEMA_PATH)


@router.get("/api-docs/openapi.json", include_in_schema=False)
async def api_schema(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The OpenAPI document, as ``/openapi.json`` gives it to an admin token."""
    if not who.is_admin:
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    return JSONResponse(request.app.openapi())
