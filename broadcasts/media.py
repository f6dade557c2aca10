"""Uploaded media for bulletins: what a file is (judged by its bytes, never by its name or the
type a browser claims), whether we take it, where it is stored and its URL.

``POST /api/v1/media`` and the console's 公告 form both call :func:`save_upload`, so a file is
accepted or refused by one rule. Files are content-addressed: ``<media_dir>/<sha256>.<ext>``,
served publicly at ``/media/<sha256>.<ext>`` (bridges fetch them); the same bytes give the same
URL, and a file once stored never changes. A file that no bulletin or urgent notice names goes
after ``bulletins.unused_upload_days`` (:func:`sweep_unused_uploads`, hourly): forms uploaded
to and never confirmed leave no files behind for good.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.bulletins import Alert, Bulletin

MediaKind = Literal["image", "video", "file"]

# What we take, by sniffed type: the extension it is stored under and its kind.
MEDIA_TYPES: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "application/pdf": "pdf",
}
EXT_TYPES: dict[str, str] = {ext: ctype for ctype, ext in MEDIA_TYPES.items()}
_MEDIA_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|gif|webp|mp4|mov|pdf)$")

# ISO base media files (MP4, MOV, HEIF…) say what they are in their first box, ``ftyp``: a
# major brand and compatible brands. HEIF pictures (iPhone photos) and 3GP/M4A share the
# container with MP4 but are not MP4 videos, so they are named, not taken.
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71",
    b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"MSNV", b"XAVC", b"f4v ", b"mmp4",
}  # fmt: skip
_HEIF_BRANDS = {
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
    b"msf1", b"avif", b"avis",
}  # fmt: skip
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}


@dataclass(frozen=True)
class Sniffed:
    """A file's type as its bytes show it."""

    ctype: str
    ext: str

    @property
    def kind(self) -> MediaKind:
        return media_kind(self.ctype)


def media_kind(ctype: str) -> MediaKind:
    """``image``, ``video`` or ``file`` (PDF) for a content type we take."""
    if ctype.startswith("image/"):
        return "image"
    if ctype.startswith("video/"):
        return "video"
    return "file"


def _iso_brands(data: bytes) -> tuple[bytes, set[bytes]] | None:
    """The major and compatible brands of an ISO base media file, or None."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[:4], "big")
    box = data[8 : max(12, min(size, len(data), 256))]
    compatible = {box[i : i + 4] for i in range(8, len(box) - 3, 4)}
    return data[8:12], compatible


def sniff(data: bytes) -> Sniffed | None:
    """The type of ``data`` if it is one we take (JPEG, PNG, GIF, WebP, MP4, MOV, PDF)."""
    head = data[:16]
    found: str | None = None
    if head.startswith(b"\xff\xd8\xff"):
        found = "image/jpeg"
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        found = "image/png"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        found = "image/gif"
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        found = "image/webp"
    elif head.startswith(b"%PDF-"):
        found = "application/pdf"
    elif (brands := _iso_brands(data)) is not None:
        major, compatible = brands
        if major == b"qt  ":
            found = "video/quicktime"
        elif major in _HEIF_BRANDS or major in _AUDIO_BRANDS or major.startswith(b"3g"):
            found = None
        elif major in _MP4_BRANDS or compatible & {b"isom", b"iso2", b"mp41", b"mp42"}:
            found = "video/mp4"
    return Sniffed(found, MEDIA_TYPES[found]) if found else None


def looks_like(data: bytes) -> str:
    """What a refused file appears to be, for the reason given: ``exe``, ``zip``, ``heic``,
    ``avi``, ``mkv``, ``text``… or ``unknown``."""
    head = data[:16]
    brands = _iso_brands(data)
    checks: tuple[tuple[bool, str], ...] = (
        (head.startswith(b"MZ") or head.startswith(b"\x7fELF"), "program"),
        (head.startswith((b"PK\x03\x04", b"Rar!", b"7z\xbc\xaf", b"\x1f\x8b")), "archive"),
        (brands is not None and (brands[0] in _HEIF_BRANDS), "heic"),
        (brands is not None and (brands[0] in _AUDIO_BRANDS), "audio"),
        (brands is not None and brands[0].startswith(b"3g"), "3gp"),
        (head[:4] == b"RIFF" and head[8:11] == b"AVI", "avi"),
        (head.startswith(b"\x1a\x45\xdf\xa3"), "mkv"),
        (head.startswith(b"FLV"), "flv"),
        (head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")), "mpeg"),
        (head.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"OggS", b"fLaC")), "audio"),
        (head.startswith(b"BM") and len(data) > 26, "bmp"),
        (head.startswith((b"II*\x00", b"MM\x00*")), "tiff"),
    )
    for matched, name in checks:
        if matched:
            return name
    sample = data[:4096]
    if b"\x00" in sample:
        return "unknown"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(sample) - 4:
            return "unknown"
    return "text" if data else "unknown"


class MediaRefused(Exception):
    """An upload we do not take: ``code`` is ``empty``, ``too_large`` (``size`` and ``limit``
    in bytes) or ``unsupported`` (``looks_like`` says what it seems to be)."""

    def __init__(self, code: str, *, size: int = 0, limit: int = 0, looks: str = "") -> None:
        detail = {
            "empty": "the file is empty",
            "too_large": f"the file has {size} bytes, more than the limit of {limit}",
            "unsupported": (
                f"not an image, video or PDF we take (it looks like: {looks}); "
                f"use one of {', '.join(MEDIA_TYPES)}"
            ),
        }[code]
        super().__init__(detail)
        self.code = code
        self.size = size
        self.limit = limit
        self.looks_like = looks


@dataclass(frozen=True)
class StoredMedia:
    """A stored upload: its public path, kind, content type and size."""

    url: str
    kind: MediaKind
    ctype: str
    size: int


def check_upload(data: bytes, *, limit: int, size: int | None = None) -> Sniffed:
    """The sniffed type of an upload we take, or :class:`MediaRefused` with the reason.
    ``size`` is the upload's full size when ``data`` holds only its beginning."""
    total = len(data) if size is None else size
    if total > limit:
        raise MediaRefused("too_large", size=total, limit=limit)
    if total == 0:
        raise MediaRefused("empty")
    found = sniff(data)
    if found is None:
        raise MediaRefused("unsupported", looks=looks_like(data))
    return found


def _write(folder: Path, name: str, data: bytes, at: float | None) -> None:
    """Write then rename: a reader never sees half a file under the final name. Its time is
    set to ``at`` (the upload's, by the runtime's clock; None: the file system's)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(target)
    # The same bytes again (content-addressed) are touched too: the sweep of unused uploads
    # counts from the last upload, not the first.
    os.utime(target, None if at is None else (at, at))


async def save_upload(
    data: bytes, *, folder: Path, limit: int, now: datetime | None = None
) -> StoredMedia:
    """Check an upload (:func:`check_upload`) and store it; the same bytes, the same URL.
    ``now`` (the runtime's clock) dates it for :func:`sweep_unused_uploads`."""
    found = check_upload(data, limit=limit)
    name = f"{hashlib.sha256(data).hexdigest()}.{found.ext}"
    at = now.timestamp() if now is not None else None
    await asyncio.to_thread(_write, folder, name, data, at)
    return StoredMedia(url=f"/media/{name}", kind=found.kind, ctype=found.ctype, size=len(data))


def media_file(folder: Path, name: str) -> Path | None:
    """The stored file behind ``/media/<name>``, or None (a name not ours, or no such file)."""
    if not _MEDIA_NAME.match(name):
        return None
    path = folder / name
    return path if path.is_file() else None


def stored_media(folder: Path, url: str) -> StoredMedia | None:
    """A stored upload named by its URL (``/media/<sha256>.<ext>``), or None."""
    if not url.startswith("/media/"):
        return None
    path = media_file(folder, url.removeprefix("/media/"))
    if path is None:
        return None
    ctype = EXT_TYPES[path.suffix[1:]]
    return StoredMedia(url=url, kind=media_kind(ctype), ctype=ctype, size=path.stat().st_size)


async def referenced_media(session: AsyncSession) -> set[str]:
    """The file names under ``/media/`` that a bulletin (its media or cover) or an urgent
    notice names, whatever its state: a cancelled bulletin's runs still show its video."""
    names: set[str] = set()
    rows = await session.execute(select(Bulletin.media, Bulletin.cover))
    urls = [((media or {}).get("url"), cover) for media, cover in rows.all()]
    alerts = await session.scalars(select(Alert.media).where(Alert.media.is_not(None)))
    urls += [((media or {}).get("url"), None) for media in alerts.all()]
    for pair in urls:
        for url in pair:
            if isinstance(url, str) and url.startswith("/media/"):
                names.add(url.removeprefix("/media/"))
    return names


def _unused(folder: Path, referenced: set[str], before: float) -> list[Path]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        ours = _MEDIA_NAME.match(path.name) or path.name.startswith(".upload-")
        unused = ours and path.name not in referenced and path.is_file()
        if unused and path.stat().st_mtime < before:
            found.append(path)
    return found


async def sweep_unused_uploads(
    session: AsyncSession, *, folder: Path, keep_for: timedelta, now: datetime
) -> list[str]:
    """Delete uploads nothing refers to that were last uploaded more than ``keep_for``
    before ``now`` (forms previewed and never confirmed, API uploads never used, half-written
    files of a crash); returns their names. Files a bulletin or notice names are never
    touched, however old."""
    referenced = await referenced_media(session)
    old = await asyncio.to_thread(_unused, folder, referenced, (now - keep_for).timestamp())
    for path in old:
        # Gone already (another instance's sweep): nothing to do.
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return sorted(p.name for p in old)
