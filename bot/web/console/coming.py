"""Pages listed in the navigation but not built yet (none at present): each says how to do
the same today. A real page replaces its entry here and sets ``ready`` in ui.NAV."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from bot.runtime import Runtime
from bot.web.console.ui import NAV, Ui, page
from bot.web.console.viewer import Viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()


def _coming(key: str) -> None:
    async def show(
        who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
    ) -> Response:
        return page(
            "coming.html",
            ui=Ui(runtime, who.script, runtime.clock.now()),
            viewer=who,
            active=key,
            here=f"/console/{key}",
            key=key,
        )

    router.add_api_route(f"/{key}", show, methods=["GET"], include_in_schema=False)


for item in NAV:
    if not item.ready:
        _coming(item.key)
