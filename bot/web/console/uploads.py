"""Reading a console form that carries one file (the 公告 form's video or picture).

The body is parsed as it streams in (python-multipart). Text fields are kept, as for every
console form, up to ``server.max_body_bytes`` each; the file is kept up to its limit and only
counted beyond it. So a file that is too large is refused with its size beside the field
while everything typed comes back — a browser cannot refill a file input, but it can be
given its text back. Bodies beyond ``hard_limit`` (declared up front) are refused with 413
before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELDS = 100


@dataclass
class UploadedFile:
    """The form's file: its name as the browser sent it, its bytes (all of them when
    ``size`` is within the limit, else only the beginning) and its full size."""

    filename: str
    data: bytes
    size: int


@dataclass
class UploadForm:
    """A parsed form: text fields in order, and the file if one was chosen."""

    items: list[tuple[str, str]] = field(default_factory=list)
    file: UploadedFile | None = None

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name``."""
        return next((v for k, v in self.items if k == name), default)

    def getlist(self, name: str) -> list[str]:
        """Every value of ``name`` (checkboxes)."""
        return [v for k, v in self.items if k == name]


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    size: int = 0


class _Collector:
    """python-multipart callbacks that fill an :class:`UploadForm`."""

    def __init__(self, *, file_field: str, file_limit: int, field_limit: int) -> None:
        self.form = UploadForm()
        self.file_field = file_field
        self.file_limit = file_limit
        self.field_limit = field_limit
        self.part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise HTTPException(400, "a form part without a name")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if self.part.name != self.file_field or self.form.file is not None:
                raise HTTPException(400, "one file, in its own field")
            self.part.filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.form.items) >= MAX_FIELDS:
            raise HTTPException(400, "too many form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        self.part.size += len(chunk)
        if self.part.filename is not None:
            # Beyond the limit the file is only counted: its size is all the answer needs.
            room = self.file_limit + 1 - len(self.part.data)
            if room > 0:
                self.part.data += chunk[:room]
        elif self.part.size > self.field_limit:
            raise HTTPException(413, f"a form field larger than {self.field_limit} bytes")
        else:
            self.part.data += chunk

    def on_part_end(self) -> None:
        part = self.part
        if part.filename is None:
            self.form.items.append((part.name, part.data.decode("utf-8", "replace")))
        elif part.filename or part.size:
            # A file input left empty still sends a part, without a name or bytes.
            self.form.file = UploadedFile(part.filename, bytes(part.data), part.size)


async def read_upload_form(
    request: Request, *, file_field: str, file_limit: int, field_limit: int, hard_limit: int
) -> UploadForm:
    """The posted ``multipart/form-data`` form with at most one file, in ``file_field``."""
    declared = request.headers.get("content-length")
    if declared is None:
        raise HTTPException(411, "Content-Length required")
    if not declared.isdigit():
        raise HTTPException(400, "bad Content-Length")
    if int(declared) > hard_limit:
        raise HTTPException(413, f"form larger than {hard_limit} bytes")
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, "expected multipart/form-data")
    collector = _Collector(file_field=file_field, file_limit=file_limit, field_limit=field_limit)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise HTTPException(400, "malformed multipart body") from None
    return collector.form
