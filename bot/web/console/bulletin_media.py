"""The console forms' video or picture (公告, 緊急通報): a new upload stored at once under its
content hash (as ``POST /api/v1/media`` stores it), or the file kept from an earlier submission
of the form, or (for a bulletin's edit) the bulletin's own media given by address."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from bot.settings import BulletinSettings
from bot.web.console.bulletin_form import BulletinForm, media_error
from bot.web.console.ui import Ui
from bot.web.console.uploads import UploadForm
from broadcasts.media import MediaRefused, StoredMedia, check_upload, save_upload, stored_media
from models.bulletins import Bulletin


def kept_media(
    form: BulletinForm, bulletin: Bulletin | None, options: BulletinSettings
) -> StoredMedia | None:
    """The form's kept file; for an edit also the bulletin's own media given by address
    (``PATCH`` and the API take any https URL), which stays unless removed or replaced."""
    if not form.media_url:
        return None
    kept = stored_media(options.media_folder, form.media_url)
    own = (bulletin.media or {}) if bulletin is not None else {}
    if kept is None and own.get("url") == form.media_url and not form.media_url.startswith("/"):
        return StoredMedia(url=form.media_url, kind=own.get("type", "file"), ctype="", size=0)
    return kept


class _MediaForm(Protocol):
    media_url: str


async def receive_media(
    posted: UploadForm,
    form: _MediaForm,
    options: BulletinSettings,
    ui: Ui,
    *,
    kept: StoredMedia | None,
    kinds: Collection[str] | None = None,
    wrong_kind: str | None = None,
) -> tuple[StoredMedia | None, str | None]:
    """A console form's video or picture: a new upload (judged by its bytes; stored only when
    it is of ``kinds``, when given), or ``kept``, the file of an earlier submission; and why
    it was refused, if it was. 公告 and 緊急通報 both take their media here."""
    upload = posted.file
    if upload is not None:
        try:
            if upload.size > options.max_upload_bytes:
                raise MediaRefused("too_large", size=upload.size, limit=options.max_upload_bytes)
            # save_upload sniffs again and refuses what is no media at all; this asks only
            # whether the kind is one this form takes, before anything is stored.
            limit = options.max_upload_bytes
            if kinds is not None and check_upload(upload.data, limit=limit).kind not in kinds:
                return kept, wrong_kind
            stored = await save_upload(
                upload.data,
                folder=options.media_folder,
                limit=options.max_upload_bytes,
                now=ui.now,
            )
        except MediaRefused as refused:
            return kept, media_error(refused, ui)
        form.media_url = stored.url
        return stored, None
    if not form.media_url:
        return None, None
    if kept is None:
        form.media_url = ""
        return None, ui.t("bf_media_gone")
    if kinds is not None and kept.kind not in kinds:
        form.media_url = ""  # e.g. a bulletin's PDF named by hand in a notice's form
        return None, wrong_kind
    return kept, None


async def form_media(
    posted: UploadForm,
    form: BulletinForm,
    options: BulletinSettings,
    ui: Ui,
    editing: Bulletin | None = None,
) -> tuple[StoredMedia | None, str | None]:
    """The 公告 form's video or picture (:func:`receive_media`); for an edit the bulletin's
    own media given by address stays too."""
    return await receive_media(posted, form, options, ui, kept=kept_media(form, editing, options))
