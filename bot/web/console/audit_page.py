"""審計: the audit log, for admins only (anyone else gets the same 404 as for no page)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from bot.runtime import Runtime
from bot.services import audit
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.viewer import Viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()
PAGE_SIZE = 100


@router.get("/audit", include_in_schema=False)
async def audit_log(
    action: str = Query("", max_length=32),
    account: str = Query("", max_length=64),
    page_no: int = Query(1, alias="page", ge=1, le=100_000),
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The newest entries first, filtered by action or account."""
    if not who.is_admin:
        return not_found(Ui(runtime, who.script, runtime.clock.now()), who)
    async with runtime.sessions() as session:
        rows, total = await audit.entries(
            session,
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
            action=action or None,
            username=account or None,
        )
        actions = await audit.actions(session)
    pages = max(1, -(-total // PAGE_SIZE))
    query = urlencode({"action": action, "account": account})
    return page(
        "audit.html",
        ui=Ui(runtime, who.script, runtime.clock.now()),
        viewer=who,
        active="audit",
        here=f"/console/audit?{query}&page={page_no}",
        rows=rows,
        total=total,
        actions=actions,
        action=action,
        account=account,
        page_no=page_no,
        pages=pages,
        query=query,
    )
