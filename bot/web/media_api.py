"""``POST /api/v1/media`` (an admin's upload for a bulletin or a notice) and the public
``GET /media/{name}`` that bridges fetch it from."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from bot.channels.body import read_capped_body
from bot.runtime import Runtime
from bot.web.auth import ADMIN_QUERY, Caller, require_admin
from bot.web.deps import errors, get_runtime
from broadcasts.media import EXT_TYPES, MediaRefused, media_file, save_upload

router = APIRouter(tags=["bulletins"])

# Room for a multipart body's boundaries and part headers around the file.
MULTIPART_SLACK = 64 * 1024


class MediaOut(BaseModel):
    url: str
    type: str
    bytes: int


def _from_multipart(ctype_header: str, body: bytes) -> bytes:
    """The first file part of a multipart/form-data body.

    Parsed with the standard library's MIME parser, so the API needs no extra dependency. The
    part's declared type and its file name are not looked at: the bytes say what it is.
    """
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + ctype_header.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise HTTPException(422, "multipart body without parts")
    for part in message.iter_parts():
        if part.get_filename():
            payload = part.get_payload(decode=True)  # a leaf part decodes to bytes (None if empty)
            return payload if isinstance(payload, bytes) else b""
    raise HTTPException(422, [{"type": "missing", "loc": ["body", "file"], "msg": "no file part"}])


@router.post(
    "/api/v1/media",
    status_code=201,
    response_model=MediaOut,
    dependencies=[ADMIN_QUERY],
    responses=errors(401, 403, 413, 415),
    # The body is read by hand (no multipart dependency): described here for the API's page.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_media(
    request: Request,
    _: Caller = Depends(require_admin),
    runtime: Runtime = Depends(get_runtime),
) -> MediaOut:
    """Store an image, video or PDF; answers its stable URL ``/media/<sha256>.<ext>``.

    Send ``multipart/form-data`` with a file part, or the raw bytes. What the file is comes
    from its bytes (JPEG, PNG, GIF, WebP, MP4, MOV, PDF), never from its name or the declared
    Content-Type; anything else is ``415`` saying what it looks like. The same file uploaded
    twice gets the same URL.
    """
    options = runtime.settings.bulletins
    # A multipart body carries a little more than the file: its boundaries and headers.
    body = await read_capped_body(
        request,
        options.max_upload_bytes + MULTIPART_SLACK,
        refusal=f"upload larger than {options.max_upload_bytes} bytes",
    )
    ctype_header = request.headers.get("content-type", "")
    data = (
        _from_multipart(ctype_header, body)
        if ctype_header.startswith("multipart/form-data")
        else body
    )
    try:
        stored = await save_upload(
            data,
            folder=options.media_folder,
            limit=options.max_upload_bytes,
            now=runtime.clock.now(),
        )
    except MediaRefused as refused:
        status = {"too_large": 413, "empty": 422}.get(refused.code, 415)
        raise HTTPException(status, str(refused)) from None
    return MediaOut(url=stored.url, type=stored.kind, bytes=stored.size)


@router.get(
    "/media/{name}",
    responses={
        200: {
            "description": "the file, with its type's Content-Type",
            "content": {t: {} for t in sorted(set(EXT_TYPES.values()))},
        },
        **errors(404),
    },
)
async def get_media(name: str, runtime: Runtime = Depends(get_runtime)) -> FileResponse:
    """An uploaded file. Public (bridges fetch it); names are content hashes."""
    path = media_file(runtime.settings.bulletins.media_folder, name)
    if path is None:
        raise HTTPException(404, "no such media")
    return FileResponse(
        path,
        media_type=EXT_TYPES[path.suffix[1:]],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
