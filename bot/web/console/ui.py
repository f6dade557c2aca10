"""Rendering console pages: Jinja2 templates, the console's texts in the account's script,
times in the configured timezone, and the navigation that later pages slot into."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.texts import Script, Texts

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.web.console.viewer import Viewer

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Console pages run only our own files: no inline script, no inline style, nothing from
# elsewhere, forms post only to us, and no page of ours inside another site's frame.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
ALL_ROLES = ("admin", "leader", "officer")


@dataclass(frozen=True)
class NavItem:
    """A page in the navigation; ``ready`` False lists it as coming."""

    key: str
    path: str
    roles: tuple[str, ...] = ALL_ROLES
    ready: bool = True


NAV = (
    NavItem("overview", "/console/"),
    NavItem("tickets", "/console/tickets"),
    NavItem("disputes", "/console/disputes"),
    NavItem("stats", "/console/stats"),
    NavItem("households", "/console/households"),
    NavItem("bulletins", "/console/bulletins"),
    NavItem("alerts", "/console/alerts"),
    NavItem("organisation", "/console/organisation"),
    NavItem("audit", "/console/audit", roles=("admin",)),
)


@functools.cache
def console_texts() -> Texts:
    """The console's sentences (``texts*.yaml`` beside this module), both scripts."""
    return Texts.load(HERE)


@functools.cache
def environment() -> Environment:
    """The template environment: autoescaped HTML, and a missing variable is an error."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def asset_version() -> str:
    """A digest of the static files, appended to their URLs so that browsers fetch new ones
    after an upgrade and may cache them otherwise."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


class Ui:
    """What templates use: sentences in the viewer's script, categories and statuses in
    words, local times and ages."""

    def __init__(self, runtime: Runtime, script: Script, now: datetime) -> None:
        self.runtime = runtime
        self.script: Script = script
        self.now = now
        self.tz = runtime.settings.tz
        self._texts = console_texts()

    def t(self, key: str, /, **values: Any) -> str:
        """A console sentence."""
        return self._texts.render(key, self.script, **values)

    def has(self, key: str) -> bool:
        return key in self._texts

    def cat(self, label: str) -> str:
        """A ticket category in words (the chat's vocabulary)."""
        key = f"cat_{label}"
        return self.runtime.texts.render(key, self.script) if key in self.runtime.texts else label

    def status(self, status: str) -> str:
        """A ticket status in words."""
        key = f"status_{status}"
        return self.runtime.texts.render(key, self.script) if key in self.runtime.texts else status

    def _chat_word(self, key: str, fallback: str) -> str:
        texts = self.runtime.texts
        return texts.render(key, self.script) if key in texts else fallback

    def colour(self, colour: str) -> str:
        """A dispute's risk colour in words (紅色; the chat's vocabulary)."""
        return self._chat_word(f"colour_{colour}", colour)

    def level(self, level: str) -> str:
        """A mediation level in words (村(社區)調解)."""
        return self._chat_word(f"level_{level}", level)

    def dstatus(self, status: str) -> str:
        """A dispute case's status in words (調解中, 已達成協議)."""
        return self._chat_word(f"dispute_status_{status}", status)

    def bcat(self, category: str) -> str:
        """A bulletin category in words (the chat's vocabulary, as the monthly report's)."""
        return self._chat_word(f"bcat_{category}", category)

    def local(self, at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """``at`` in the configured timezone (``—`` for none)."""
        if at is None:
            return self.t("none_mark")
        return at.astimezone(self.tz).strftime(fmt)

    def hm(self, at: datetime | None) -> str:
        """Hours and minutes in local time."""
        return self.local(at, "%H:%M")

    def age(self, delta: timedelta) -> str:
        """``35分鐘``, ``3小時``, ``2天``."""
        minutes = max(0, int(delta.total_seconds() // 60))
        if minutes < 60:
            return self.t("age_minutes", n=minutes)
        if minutes < 48 * 60:
            return self.t("age_hours", n=minutes // 60)
        return self.t("age_days", n=minutes // 1440)

    def since(self, at: datetime) -> str:
        """How long ago ``at`` was."""
        return self.age(self.now - at)


def new_nonce() -> str:
    """A random value for one rendered action form (see models.console.ConsoleFormUse)."""
    return secrets.token_urlsafe(16)


def page(
    name: str,
    *,
    ui: Ui,
    viewer: Viewer | None,
    active: str = "",
    here: str = "/console/",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a template into an answer that no cache keeps (pages may show personal data).
    ``here`` is the page's own path and query, where the script switch returns to."""
    nav = [item for item in NAV if viewer is not None and viewer.role in item.roles]
    html = (
        environment()
        .get_template(name)
        .render(
            ui=ui,
            viewer=viewer,
            nav=nav,
            active=active,
            here=here,
            asset=asset_version(),
            nonce=new_nonce,
            refresh_s=int(ui.runtime.settings.console.refresh_s),
            **context,
        )
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store", **(headers or {})},
    )


def not_found(ui: Ui, viewer: Viewer) -> HTMLResponse:
    """The console's 404: the same for a page that does not exist and for one that is not
    the viewer's to see (another station's ticket), so that codes cannot be probed."""
    return page(
        "error.html",
        ui=ui,
        viewer=viewer,
        title="error_not_found_title",
        text="error_not_found_text",
        status_code=404,
    )
