"""The 公告 form's video or picture: a new upload stored at once under its content hash (as
``POST /api/v1/media`` stores it), or the file kept from an earlier submission of the form,
or (for an edit) the bulletin's own media given by address."""

from __future__ import annotations

from pathlib import Path

from bot.settings import BulletinSettings
from bot.web.console.bulletin_form import BulletinForm, media_error
from bot.web.console.ui import Ui
from bot.web.console.uploads import UploadForm
from broadcasts.media import MediaRefused, StoredMedia, save_upload, stored_media
from models.bulletins import Bulletin


def kept_media(
    form: BulletinForm, bulletin: Bulletin | None, options: BulletinSettings
) -> StoredMedia | None:
    """The form's kept file; for an edit also the bulletin's own media given by address
    (``PATCH`` and the API take any https URL), which stays unless removed or replaced."""
    if not form.media_url:
        return None
    kept = stored_media(Path(options.media_dir), form.media_url)
    own = (bulletin.media or {}) if bulletin is not None else {}
    if kept is None and own.get("url") == form.media_url and not form.media_url.startswith("/"):
        return StoredMedia(url=form.media_url, kind=own.get("type", "file"), ctype="", size=0)
    return kept


async def form_media(
    posted: UploadForm,
    form: BulletinForm,
    options: BulletinSettings,
    ui: Ui,
    editing: Bulletin | None = None,
) -> tuple[StoredMedia | None, str | None]:
    """The form's video or picture: a new upload (stored now, judged by its bytes), or the
    one kept from an earlier submission; and why it was refused, if it was."""
    upload = posted.file
    if upload is not None:
        try:
            if upload.size > options.max_upload_bytes:
                raise MediaRefused("too_large", size=upload.size, limit=options.max_upload_bytes)
            stored = await save_upload(
                upload.data,
                folder=Path(options.media_dir),
                limit=options.max_upload_bytes,
                now=ui.now,
            )
        except MediaRefused as refused:
            return kept_media(form, editing, options), media_error(refused, ui)
        form.media_url = stored.url
        return stored, None
    if not form.media_url:
        return None, None
    kept = kept_media(form, editing, options)
    if kept is None:
        form.media_url = ""
        return None, ui.t("bf_media_gone")
    return kept, None
