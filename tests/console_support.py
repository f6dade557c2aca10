"""Helpers for the console tests: accounts, a browser-like client per person (its own cookie
jar) over the same app, and reading forms out of the served HTML as a browser would."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy import select

from bot.app import create_app
from bot.services.accounts import create_account
from models.console import AuditEntry
from tests.harness import Harness, SettledTransport

PASSWORD = "correct-horse-battery"
# Accounts of every role over tests/data/directory.yaml: the county admin, the leader of
# 橋鎮派出所, an officer there, and an account leading 河西派出所 (linked to its officer).
ACCOUNTS = {
    "admin": ("admin", None),
    "zhao": ("leader", "off-zhao"),
    "wang": ("officer", "off-wang"),
    "chen": ("leader", "off-chen"),
}


async def add_accounts(h: Harness, **overrides: Any) -> None:
    """Create :data:`ACCOUNTS` (or the ``overrides`` ones: name → (role, officer))."""
    accounts = overrides or ACCOUNTS
    async with h.runtime.sessions.begin() as session:
        for username, (role, officer) in accounts.items():
            await create_account(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                officer_id=officer,
                now=h.clock.now(),
                name="縣局指揮中心" if role == "admin" else "",
            )


def browser(h: Harness, base_url: str = "http://lianxin") -> httpx.AsyncClient:
    """A new client with its own cookies, on an app over the harness's runtime."""
    app = create_app(h.runtime, background=False, close_runtime=False)
    return httpx.AsyncClient(transport=SettledTransport(app=app), base_url=base_url)


def hidden(page: str, name: str) -> str:
    """The value of the first hidden input ``name`` in ``page``."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return html.unescape(found.group(1))


def form_of(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to ``action`` (its csrf_token and nonce)."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', page, re.S)
    assert found, f"no form for {action}"
    return {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(1))
    }


def visible_text(page: str) -> str:
    """What a person reads: the page without its tags and attributes."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    """Fill in and send the sign-in form; returns the POST's answer (303 when it worked)."""
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post(
        "/console/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": hidden(form.text, "csrf_token"),
        },
    )


async def signed_in(h: Harness, username: str) -> httpx.AsyncClient:
    """A client signed in as ``username``."""
    client = browser(h)
    response = await sign_in(client, username)
    assert response.status_code == 303, response.text
    return client


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, **fields: str
) -> httpx.Response:
    """Open ``page_path``, then submit its form for ``action`` with ``fields`` filled in."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={**form_of(page.text, action), **fields})


async def audit_rows(h: Harness, action: str | None = None) -> list[AuditEntry]:
    """The audit log, oldest first."""
    async with h.runtime.sessions() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return list(await session.scalars(query))
