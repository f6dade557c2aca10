"""The console's sign-in throttle by client address: one address failing across many usernames
is refused (429, a Chinese sentence with the time to try again, audited once a minute) until its
window ends, other addresses and the accounts themselves untouched; the count is shared by two
instances on one database; X-Forwarded-For is believed only from ``server.trusted_proxies``."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.app import create_app
from bot.settings import ConfigError, load_settings
from tests.console_support import add_accounts, audit_rows, sign_in, visible_text
from tests.fakes import FakeWorld
from tests.harness import Harness

LIMIT = 6
WINDOW = 900


def build(db_url: str, world: FakeWorld, proxies: list[str] | None = None) -> Harness:
    h = Harness.build(
        db_url,
        world,
        console={"login_failures_per_address": LIMIT, "login_window_s": WINDOW},
        server={"trusted_proxies": proxies or []},
    )
    # At the start of a window, so that the minutes a test moves on stay inside it.
    start = (int(h.clock.now().timestamp()) // WINDOW + 1) * WINDOW
    h.clock.set(datetime.fromtimestamp(start, UTC))
    return h


@pytest.fixture
async def h(db_url: str, world: FakeWorld) -> AsyncIterator[Harness]:
    harness = build(db_url, world)
    await harness.load_directory()
    await add_accounts(harness)
    yield harness
    await harness.close()


def from_address(h: Harness, address: str, **headers: str) -> httpx.AsyncClient:
    """A browser connecting from ``address`` (sending ``headers`` with every request)."""
    app = create_app(h.runtime, background=False, close_runtime=False)
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://lianxin", headers=headers)


# Signing in as a browser does, from wherever the client connects.
attempt = sign_in


async def fail_from(client: httpx.AsyncClient, times: int, **headers: str) -> None:
    """``times`` failures, each on another username (never enough to lock an account)."""
    names = ["admin", "zhao", "wang", "chen", "nobody", "root", "test"]
    for i in range(times):
        answer = await attempt(client, names[i % len(names)], "guessed-password", **headers)
        assert answer.status_code == 200, answer.status_code


async def test_one_address_failing_across_usernames_waits_for_its_window(h: Harness) -> None:
    attacker = from_address(h, "203.0.113.7")
    await fail_from(attacker, LIMIT)
    # Now even the right password is refused, before it is looked at.
    refused = await attempt(attacker, "zhao")
    assert refused.status_code == 429
    until = h.clock.now() + timedelta(seconds=WINDOW)
    local = until.astimezone(h.runtime.settings.tz).strftime("%H:%M")
    assert f"這個網絡位置登入失敗的次數太多,{local} 之前不能再登入" in visible_text(refused.text)
    assert refused.headers["retry-after"] == str(WINDOW)
    assert "lx_console=" not in refused.headers.get("set-cookie", "")
    [row] = await audit_rows(h, "login_throttled")
    assert (row.username, row.ip, row.detail) == ("zhao", "203.0.113.7", f"failures={LIMIT}")

    # Another address, and the accounts themselves, are untouched: zhao signs in from there.
    assert (await attempt(from_address(h, "198.51.100.2"), "zhao")).status_code == 303

    # Audited once a minute, not once per attempt (a flood must not flood the log).
    for name in ("nobody", "admin", "zhao"):
        assert (await attempt(attacker, name)).status_code == 429
    assert len(await audit_rows(h, "login_throttled")) == 1
    h.clock.advance(61)
    assert (await attempt(attacker, "nobody")).status_code == 429
    second = (await audit_rows(h, "login_throttled"))[-1]
    assert (second.username, second.ip) == ("-", "203.0.113.7")  # no such account: not kept
    # Throttled attempts counted nothing against the accounts.
    assert await audit_rows(h, "locked") == []

    h.clock.set(until)
    assert (await attempt(attacker, "zhao")).status_code == 303


async def test_the_window_rolls_and_failures_age_out_one_by_one(h: Harness) -> None:
    # Found by a newcomer: fixed 15-minute blocks let an address try twice the limit around a
    # block's end, and made a blocked address wait anything from nothing to fifteen minutes.
    attacker = from_address(h, "203.0.113.9")
    start = h.clock.now()
    h.clock.set(start + timedelta(minutes=14))
    await fail_from(attacker, LIMIT - 1)
    h.clock.set(start + timedelta(minutes=15, seconds=30))  # the next fixed block
    await fail_from(attacker, 1)
    refused = await attempt(attacker, "zhao")
    assert refused.status_code == 429
    # The five of minute 14 age out at minute 29: then it may try again, not before.
    assert refused.headers["retry-after"] == str(
        int(timedelta(minutes=13, seconds=30).total_seconds())
    )
    h.clock.set(start + timedelta(minutes=28, seconds=59))
    assert (await attempt(attacker, "zhao")).status_code == 429
    h.clock.set(start + timedelta(minutes=29))
    assert (await attempt(attacker, "zhao")).status_code == 303


async def test_an_ipv6_address_counts_with_its_64(h: Harness) -> None:
    for i in range(LIMIT):
        client = from_address(h, f"2001:db8:1:2::{i + 1:x}")
        await fail_from(client, 1)
    assert (await attempt(from_address(h, "2001:db8:1:2::ff"), "zhao")).status_code == 429
    assert (await attempt(from_address(h, "2001:db8:1:3::1"), "zhao")).status_code == 303


async def test_two_instances_share_the_count(h: Harness, world: FakeWorld) -> None:
    other = Harness.build(
        h.runtime.settings.database.url, world, settings=h.runtime.settings, clock=h.clock
    )
    try:
        await fail_from(from_address(h, "203.0.113.9"), LIMIT // 2)
        await fail_from(from_address(other, "203.0.113.9"), LIMIT - LIMIT // 2)
        assert (await attempt(from_address(h, "203.0.113.9"), "wang")).status_code == 429
        assert (await attempt(from_address(other, "203.0.113.9"), "wang")).status_code == 429
    finally:
        await other.close()


async def test_without_trusted_proxies_x_forwarded_for_is_not_believed(h: Harness) -> None:
    # A caller rotating the header it writes itself is still one address.
    client = from_address(h, "127.0.0.1")
    for i in range(LIMIT):
        await attempt(client, "nobody", "guessed-password", **{"X-Forwarded-For": f"10.9.0.{i}"})
    assert (await attempt(client, "zhao", **{"X-Forwarded-For": "10.9.0.200"})).status_code == 429
    assert {r.ip for r in await audit_rows(h, "login_failed")} == {"127.0.0.1"}
    # Nor X-Forwarded-Proto: the cookie is not marked Secure on a plain connection.
    answer = await attempt(from_address(h, "127.0.0.2"), "wang", **{"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303 and "secure" not in answer.headers["set-cookie"].lower()


async def test_a_configured_proxy_names_the_client(db_url: str, world: FakeWorld) -> None:
    h = build(db_url, world, proxies=["10.0.0.5", "10.1.0.0/16"])
    try:
        await h.load_directory()
        await add_accounts(h)
        proxy = from_address(h, "10.0.0.5")
        await fail_from(proxy, LIMIT, **{"X-Forwarded-For": "203.0.113.50"})
        behind = {"X-Forwarded-For": "203.0.113.50"}
        assert (await attempt(proxy, "zhao", **behind)).status_code == 429
        # Another client behind the same proxy is counted apart, and signs in.
        answer = await attempt(
            proxy, "zhao", **{"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
        )
        assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()
        assert {r.ip for r in await audit_rows(h, "login_failed")} == {"203.0.113.50"}
        assert [r.ip for r in await audit_rows(h, "login")] == ["198.51.100.9"]
        # A proxy in a configured network is believed too; a caller outside the list is not.
        other_proxy = from_address(h, "10.1.4.4")
        assert (await attempt(other_proxy, "wang", **behind)).status_code == 429
        stranger = from_address(h, "192.0.2.1")
        await attempt(stranger, "wang", **{"X-Forwarded-For": "198.51.100.77"})
        assert [r.ip for r in await audit_rows(h, "login")][-1] == "192.0.2.1"
    finally:
        await h.close()


@pytest.mark.parametrize("entry", ["*", "nginx.local", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_no_address_stops_start_up(entry: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f'server:\n  trusted_proxies: ["{entry}"]\n', "utf-8")
    env = {"LIANXIN__SECURITY__PII_KEY": base64.b64encode(os.urandom(32)).decode()}
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ=env)
    assert "server.trusted_proxies" in str(refused.value) and "IP address" in str(refused.value)
