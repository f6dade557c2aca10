"""The OpenAPI page, served with the app's own copy of Swagger UI (intranets have no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = Path(__file__).resolve().parent.parent / "static" / "docs"
_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for ``/openapi.json`` with local assets."""
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} — API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> FileResponse:
    """One of the two vendored Swagger UI files."""
    if name not in _FILES:
        raise HTTPException(404)
    return FileResponse(ASSETS / name, media_type=_FILES[name])
