"""審計: the audit log, for admins only (anyone else gets the same 404 as for no page)."""

from __future__ import annotations

import re
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
# A detail written as ``name=value`` pairs (counts, never personal data) is put into words.
_PAIR = re.compile(r"([a-z_]+)=(\S+)")


def action_words(action: str, ui: Ui) -> str:
    """An audit action in Chinese; a name without a label (an old row) stays as it is."""
    key = f"audit_action_{action}"
    return ui.t(key) if ui.has(key) else action


def detail_words(action: str, detail: str | None, ui: Ui) -> str:
    """A row's detail in words: a named thing (``words``, ``while_locked``), or counts
    written as ``name=value`` pairs through ``audit_detail_<action>``; otherwise as kept."""
    if not detail:
        return ""
    if ui.has(f"audit_detail_{detail}"):
        return ui.t(f"audit_detail_{detail}")
    pairs = _PAIR.findall(detail)
    key = f"audit_detail_{action}"
    if pairs and " ".join(f"{k}={v}" for k, v in pairs) == detail and ui.has(key):
        try:
            return ui.t(key, **dict(pairs))
        except KeyError:  # an older row with other names: shown as it was written
            return detail
    return detail


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
        action_words=action_words,
        detail_words=detail_words,
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
