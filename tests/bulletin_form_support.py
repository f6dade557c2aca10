"""Helpers for the console's 公告 tests: a county on a Monday morning with the console's
accounts, and filling in the bulletin form as a browser does (multipart, the file input
always present, the form's own hidden fields)."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.services.tokens import create_token
from models.bulletins import Bulletin
from models.console import ConsoleFormUse
from tests.bulletins_support import local
from tests.console_support import add_accounts, hidden, signed_in, visible_text
from tests.fakes import FakeWorld
from tests.harness import Harness

MON_10 = local(2026, 11, 30, 10)  # Monday 30 November 2026, 10:00 in Asia/Shanghai
NEW = "/console/bulletins/new"
# A few bytes of each kind, as their files begin: what is sniffed.
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 2000
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 500
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 500
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 500

# The form as a newcomer fills it in for the usual case: weekly anti-fraud for one town.
WEEKLY = {
    "title": "每週防詐騙提醒",
    "category": "anti-fraud",
    "text": "不要向陌生賬戶轉賬,接到自稱公檢法的電話請先撥打110核實。",
    "target_kind": "stations",
    "stations": ["qiaozhen"],
    "schedule": "weekly",
    "days": ["1"],
    "time": "09:00",
}


@dataclass
class Desk:
    """The county, its console accounts, an admin API token, the media folder."""

    h: Harness
    api: dict[str, str]
    media: Path

    async def client(self, username: str = "admin") -> httpx.AsyncClient:
        return await signed_in(self.h, username)

    async def bulletins(self) -> list[Bulletin]:
        async with self.h.runtime.sessions() as session:
            return list(await session.scalars(select(Bulletin).order_by(Bulletin.id)))

    async def used_forms(self) -> int:
        async with self.h.runtime.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(ConsoleFormUse)) or 0)

    def stored_files(self) -> list[str]:
        return sorted(p.name for p in self.media.glob("*")) if self.media.exists() else []


@pytest.fixture
async def desk(db_url: str, world: FakeWorld, tmp_path: Path) -> AsyncIterator[Desk]:
    h = Harness.build(db_url, world, clock=ManualClock(MON_10))
    try:
        await h.load_directory()
        await add_accounts(h)
        media = tmp_path / "media"
        h.runtime.settings.bulletins.media_dir = str(media)
        async with h.runtime.sessions.begin() as session:
            token = await create_token(session, role="admin", name="ops", now=h.clock.now())
        yield Desk(h, {"Authorization": f"Bearer {token}"}, media)
    finally:
        await h.close()


def form_fields(page: str, path: str = NEW) -> dict[str, str]:
    """The bulletin form's hidden fields as the page carries them (token, nonce, the kept
    upload, the preview's fingerprint); ``path``: where the form posts (an edit's own)."""
    found = re.search(rf'<form method="post" action="{re.escape(path)}".*?</form>', page, re.S)
    assert found, "no bulletin form in the page"
    return {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0))
    }


async def submit(
    client: httpx.AsyncClient,
    fields: dict[str, Any],
    *,
    page: str | None = None,
    step: str = "preview",
    file: tuple[str, bytes, str] | None = None,
    path: str = NEW,
) -> httpx.Response:
    """Post the bulletin form at ``path`` (new, or a bulletin's ``/edit``): ``page`` is the
    form last shown (its hidden fields are sent, as a browser sends them), else a fresh one is
    opened."""
    if page is None:
        opened = await client.get(path)
        assert opened.status_code == 200, opened.text
        page = opened.text
    data = {**form_fields(page, path), **fields, "step": step}
    # A browser sends the file input even when no file was chosen: no name, no bytes.
    upload = file or ("", b"", "application/octet-stream")
    return await client.post(path, data=data, files={"media_file": upload})


async def preview_and_save(
    client: httpx.AsyncClient, fields: dict[str, Any], *, file: tuple[str, bytes, str] | None = None
) -> tuple[httpx.Response, httpx.Response]:
    """Preview the form, then save what was previewed; returns both answers."""
    preview = await submit(client, fields, file=file)
    assert preview.status_code == 200, visible_text(preview.text)[:2000]
    saved = await submit(client, fields, page=preview.text, step="save")
    return preview, saved


def section(page: str, element_id: str) -> str:
    """The visible text of the element with ``id`` (up to its closing tag of the same kind)."""
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} in the page"
    return " ".join(visible_text(found.group(2)).split())


def field_errors(page: str) -> list[str]:
    """The reasons shown beside fields."""
    return [visible_text(m).strip() for m in re.findall(r'class="field-error"[^>]*>(.*?)<', page)]


def preview_runs(page: str) -> list[str]:
    return [
        visible_text(t)
        for t in re.findall(r"<time>(.*?)</time>", section_html(page, "preview-runs"))
    ]


def section_html(page: str, element_id: str) -> str:
    found = re.search(rf'<(\w+)[^>]*id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} in the page"
    return found.group(2)


__all__ = ["hidden"]
