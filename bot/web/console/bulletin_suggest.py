"""公告 form: a suggested title and text for a category (``texts_bulletin_suggestions.yaml``),
filled in by htmx when the admin picks a 類別 while both boxes are still empty. Nothing is
saved here; what is typed is never replaced; without JavaScript the form works the same."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from bot.runtime import Runtime
from bot.web.console import bulletin_views as views
from bot.web.console.bulletin_form import CATEGORIES
from bot.web.console.ui import Ui, page
from bot.web.console.viewer import Viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()


@dataclass(frozen=True)
class Suggestion:
    """A category's suggested title and text, in the viewer's script."""

    title: str
    text: str


def suggestion(category: str, ui: Ui) -> Suggestion | None:
    """The suggestion for ``category``, or None for a category without one (其他)."""
    if category not in CATEGORIES:
        return None
    title, text = f"bs_title_{category}", f"bs_text_{category}"
    if not (ui.has(title) and ui.has(text)):
        return None
    return Suggestion(ui.t(title), ui.t(text))


@router.get("/bulletins/suggest", include_in_schema=False)
async def suggest(
    category: str = Query("", max_length=40),
    title: str = Query("", max_length=200),
    text: str = Query("", max_length=4000),
    who: Viewer = Depends(viewer),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """The title and text boxes filled with the category's suggestion (swapped in out of
    band); ``204`` (nothing changes) when either box has text or there is no suggestion."""
    ui = Ui(runtime, who.script, runtime.clock.now())
    found = suggestion(category, ui)
    if not views.may_schedule(who) or title.strip() or text.strip() or found is None:
        return Response(status_code=204)
    return page("_bulletin_suggestion.html", ui=ui, viewer=who, form=found, errors={}, oob=True)
