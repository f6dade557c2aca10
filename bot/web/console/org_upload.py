"""組織 · 上傳目錄檔: an admin uploads a directory file in the format of ``lianxin directory
load`` (CONTRACT §4), sees what it would add, change and remove — by name, with the console
edits it would undo — and applies exactly that.

The preview applies the file in a transaction that is rolled back
(bot/services/directory_changes.py, the loader's own code). The confirm form carries the file's
text and a token binding it to the directory as it was previewed: if either changed since,
nothing is applied and the new preview is shown instead. Each rendered confirm form applies
once. A file the loader refuses comes back with the loader's reason in Chinese, and nothing is
applied."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot.runtime import Runtime
from bot.services import audit
from bot.services.console_sessions import tokens_match, use_form
from bot.services.directory_changes import (
    DIRECTORY_LOADED,
    Change,
    DirectoryError,
    Preview,
    StalePreview,
    apply_previewed,
    preview_directory,
)
from bot.web.console.org import BASE, directory_reason
from bot.web.console.ui import Ui, not_found, page
from bot.web.console.uploads import UploadForm, read_upload_form
from bot.web.console.viewer import CsrfRefused, Viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()
# A county's directory is a few hundred kilobytes of text at most.
MAX_FILE_BYTES = 1024 * 1024
FILE_FIELD = "file"


async def posted_directory(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> tuple[Viewer, UploadForm]:
    """The upload or confirm form, after its CSRF check; not read at all for a non-admin."""
    if not who.is_admin:
        return who, UploadForm()
    form = await read_upload_form(
        request,
        file_field=FILE_FIELD,
        file_limit=MAX_FILE_BYTES,
        # The confirm form carries the file's text (base64) as a field.
        field_limit=2 * MAX_FILE_BYTES,
        hard_limit=3 * MAX_FILE_BYTES,
    )
    if not tokens_match(who.csrf_token, form.get("csrf_token") or None):
        raise CsrfRefused(who.script)
    return who, form


class Words:
    """A preview's changes in words: entries by name (never by id), changed fields with
    their old and new values (names, roles, tags; never a number or an account)."""

    SHOWN = ("name", "parent", "station", "officer", "role", "tags", "days", "date", "from", "to")

    def __init__(self, ui: Ui, preview: Preview) -> None:
        self.ui, self.preview = ui, preview

    def _name(self, section: str, key: str | None) -> str:
        if not key:
            return self.ui.t("none_mark")
        for snap in (self.preview.after, self.preview.before):
            if key in snap[section]:
                return str(snap[section][key]["name"])
        return key

    def _value(self, field: str, value: Any) -> str:
        if value is None or value == []:
            return self.ui.t("none_mark")
        if field in ("parent", "station"):
            return self._name("stations", value)
        if field == "officer":
            return self._name("officers", value)
        if field == "role":
            return self.ui.t(f"org_role_{value}")
        if field == "days":
            return "、".join(self.ui.t(f"org_day_{d}") for d in value)
        if field == "tags":
            return "、".join(map(str, value))
        return str(value)

    def describe(self, change: Change) -> str:
        """The entry a change is about, by name."""
        row = change.after or change.before or {}
        if change.section == "stations":
            return str(row["name"])
        if change.section in ("officers", "groups"):
            return f"{row['name']}({self._name('stations', row['station'])})"
        when = self._value("days", row["days"]) if "days" in row else str(row.get("date"))
        return " · ".join(
            (
                self._name("stations", row["station"]),
                self._name("officers", row["officer"]),
                when,
                f"{row['from']}–{row['to']}",
            )
        )

    def changed_fields(self, change: Change) -> str:
        """What changes: ``民警:王警官 → 李警官``; numbers and accounts only by name."""
        before, after = change.before or {}, change.after or {}
        parts = []
        for name in change.fields:
            label = self.ui.t(f"org_field_{name}")
            if name in self.SHOWN:
                old, new = self._value(name, before.get(name)), self._value(name, after.get(name))
                parts.append(f"{label}:{old} → {new}")
            else:
                parts.append(label)
        return ";".join(parts)


def _render(
    ui: Ui,
    who: Viewer,
    *,
    preview: Preview | None = None,
    text: str = "",
    error: str = "",
    note: str = "",
    status_code: int = 200,
) -> Response:
    words = Words(ui, preview) if preview else None
    return page(
        "org_upload.html",
        ui=ui,
        viewer=who,
        active="organisation",
        here=f"{BASE}/upload",
        preview=preview,
        encoded=base64.b64encode(text.encode()).decode() if preview else "",
        error=error,
        note=note,
        max_kb=MAX_FILE_BYTES // 1024,
        describe=words.describe if words else None,
        changed_fields=words.changed_fields if words else None,
        status_code=status_code,
    )


@router.get("/organisation/upload", include_in_schema=False)
async def upload_form(
    who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The upload form (admins)."""
    ui = Ui(runtime, who.script, runtime.clock.now())
    if not who.is_admin:
        return not_found(ui, who)
    return _render(ui, who)


def _decode(form: UploadForm) -> tuple[str | None, str]:
    """The uploaded or confirmed file's text, or the key of why there is none."""
    if form.get("step") == "apply":
        try:
            return base64.b64decode(form.get("text"), validate=True).decode("utf-8"), ""
        except (binascii.Error, UnicodeDecodeError):
            return None, "org_upload_bad_confirm"
    upload = form.file
    if upload is None or upload.size == 0:
        return None, "org_upload_no_file"
    if upload.size > MAX_FILE_BYTES:
        return None, "org_upload_too_big"
    try:
        return upload.data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return None, "dir_not_utf8"


@router.post("/organisation/upload", include_in_schema=False)
async def upload(
    posted: tuple[Viewer, UploadForm] = Depends(posted_directory),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """``step=preview``: what the file would change; ``step=apply``: apply it if the
    directory is still as previewed (else the new preview, 409)."""
    who, form = posted
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    if not who.is_admin:
        return not_found(ui, who)
    text, problem = _decode(form)
    if text is None:
        reason = ui.t(problem, kb=MAX_FILE_BYTES // 1024)
        return _render(ui, who, error=reason, status_code=400)
    if form.get("step") == "apply":
        try:
            async with runtime.sessions.begin() as session:
                if not await use_form(
                    session, nonce=form.get("nonce")[:64], account_id=who.account.id, now=now
                ):
                    return RedirectResponse(f"{BASE}?done=duplicate", status_code=303)
                summary = await apply_previewed(
                    session, text, form.get("token")[:64], cipher=runtime.cipher
                )
                audit.record(
                    session,
                    now=now,
                    action=DIRECTORY_LOADED,
                    account=who.account,
                    target="directory",
                    detail=(
                        f"stations={summary.stations} officers={summary.officers} "
                        f"groups={summary.groups} roster={summary.roster}"
                    ),
                    ip=who.ip,
                )
            return RedirectResponse(f"{BASE}?done=loaded", status_code=303)
        except StalePreview:
            note, status_code = ui.t("org_upload_stale"), 409
        except DirectoryError as exc:
            return _render(ui, who, error=directory_reason_line(ui, exc), status_code=400)
    else:
        note, status_code = "", 200
    try:
        preview = await preview_directory(runtime.sessions, text, cipher=runtime.cipher)
    except DirectoryError as exc:
        return _render(ui, who, error=directory_reason_line(ui, exc), status_code=400)
    return _render(ui, who, preview=preview, text=text, note=note, status_code=status_code)


def directory_reason_line(ui: Ui, exc: DirectoryError) -> str:
    """``第5行 · 群 g2:找不到單位「nowhere」``: the loader's refusal in the viewer's script."""
    parts = []
    if exc.line is not None:
        parts.append(ui.t("dir_line", line=exc.line))
    if exc.kind:
        parts.append(ui.t(f"dir_kind_{exc.kind}", ident=exc.ident))
    return " · ".join([*parts, directory_reason(ui, exc)])
