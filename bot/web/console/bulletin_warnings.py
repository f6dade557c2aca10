"""A bulletin's preview as the 公告 pages show it: the groups reached by station, the next
five send times with their weekdays, the exact message, when a group's copy would wait and
why, and the service's warnings in words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.settings import BulletinSettings
from bot.web.console.bulletin_form import when
from bot.web.console.ui import Ui
from broadcasts.bulletin_preview import Preview, PreviewWarning, media_warnings
from models.bulletins import Bulletin


@dataclass
class PreviewView:
    """What the preview panel shows."""

    stations: list[tuple[str, list[str]]] = field(default_factory=list)
    groups: int = 0
    runs: list[str] = field(default_factory=list)
    text: str = ""
    media: dict[str, Any] | None = None
    waits: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def warning_words(warning: PreviewWarning, ui: Ui) -> str:
    """A preview warning in words (``bw_<code>`` in texts_bulletins.yaml)."""
    values = dict(warning.values)
    if "groups" in values:
        values["groups"] = "、".join(values["groups"])
    if "day" in values:
        values["day"] = values["day"].isoformat()
    key = f"bw_{warning.code}"
    return ui.t(key, **values) if ui.has(key) else warning.text


def media_warning_words(urls: list[str], options: BulletinSettings, ui: Ui) -> list[str]:
    """The media-reachability warnings for an urgent notice's photo or video, in the same
    words as the 公告 preview's (one rule: :func:`broadcasts.bulletin_preview.media_warnings`)."""
    return [warning_words(w, ui) for w in media_warnings(urls, options)]


def _wait_words(reason: str | None, not_before: Any, ui: Ui) -> str | None:
    head = (reason or "").split(":", 1)[0]
    if head in ("quiet_hours", "daily_cap"):
        return ui.t(f"bw_wait_{head}", time=when(not_before, ui))
    return None


def preview_view(
    preview: Preview, bulletin: Bulletin | None, ui: Ui, names: dict[str, str]
) -> PreviewView:
    """The preview of a draft or a saved bulletin, in words."""
    out = PreviewView(groups=len(preview.messages))
    by_station: dict[str, list[str]] = {}
    for m in preview.messages:
        by_station.setdefault(names.get(m.station_id, ""), []).append(m.group_name)
        words = _wait_words(m.reason, m.not_before, ui)
        if words:
            out.waits.append((m.group_name, words))
    out.stations = sorted(by_station.items())
    out.runs = [when(r, ui) for r in preview.next_runs]
    if preview.messages:
        out.text = preview.messages[0].text
    if bulletin is not None and bulletin.media:
        # The console shows its own copy (/media/…), whatever address the channels get.
        out.media = dict(bulletin.media)
    out.warnings = [warning_words(w, ui) for w in preview.warnings]
    return out
