"""總覽: the day at a glance, refreshing itself with htmx (``/console/overview/panel``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from bot.runtime import Runtime
from bot.web.console.overview_data import AGE_BUCKETS, read_overview
from bot.web.console.ui import Ui, page
from bot.web.console.viewer import Viewer, passive_viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()


async def _render(who: Viewer, runtime: Runtime, template: str) -> Response:
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        data = await read_overview(session, runtime, scope=who.scope, now=now)
    return page(
        template,
        ui=Ui(runtime, who.script, now),
        viewer=who,
        active="overview",
        here="/console/",
        view=data,
        buckets=AGE_BUCKETS,
    )


@router.get("/", include_in_schema=False)
async def overview(
    who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The overview page."""
    return await _render(who, runtime, "overview.html")


@router.get("/overview/panel", include_in_schema=False)
async def overview_panel(
    who: Viewer = Depends(passive_viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The overview's content alone, for its periodic refresh (which does not count as use
    of the session: an unattended screen still signs out after 30 minutes)."""
    return await _render(who, runtime, "_overview_panel.html")
