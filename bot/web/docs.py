"""The OpenAPI page, served with the app's own copy of Swagger UI (intranets have no CDN).

``/docs`` and ``/openapi.json`` map every admin route and its parameters: they answer an admin
token only, unless ``server.public_docs`` opens them (the demo does). The two Swagger UI files
under ``/docs/assets/`` are the same for everyone and stay public.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from bot.runtime import Runtime
from bot.web.auth import bearer, require_admin
from bot.web.deps import get_runtime

ASSETS = Path(__file__).resolve().parent.parent / "static" / "docs"
_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False)


async def docs_allowed(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    runtime: Runtime = Depends(get_runtime),
) -> None:
    """Let the request through when the docs are public or it carries an admin token."""
    if not runtime.settings.server.public_docs:
        await require_admin(credentials=credentials, runtime=runtime)


def swagger_page(request: Request, openapi_url: str) -> HTMLResponse:
    """Swagger UI for the OpenAPI document at ``openapi_url``, with the local assets (here and
    in the console's admin page)."""
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} — API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


@router.get("/docs", dependencies=[Depends(docs_allowed)])
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for ``/openapi.json`` with local assets."""
    return swagger_page(request, OPENAPI_URL)


@router.get(OPENAPI_URL, dependencies=[Depends(docs_allowed)])
async def openapi_schema(request: Request) -> JSONResponse:
    """The OpenAPI document of the app (FastAPI builds it once and caches it)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> FileResponse:
    """One of the two vendored Swagger UI files."""
    if name not in _FILES:
        raise HTTPException(404)
    return FileResponse(ASSETS / name, media_type=_FILES[name])
