"""The console's door (CONTRACT §7): sign-in, lock-out, idle expiry, CSRF, sign-out, the
audit of all of it, and the accounts that `lianxin account` and `lianxin demo` make."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from bot.cli import main
from bot.services.accounts import MAX_PASSWORD, disable_account
from tests.console_support import (
    PASSWORD,
    add_accounts,
    audit_rows,
    browser,
    hidden,
    sign_in,
    signed_in,
)
from tests.fakes import FakeWorld
from tests.harness import DIRECTORY, Harness, SettledTransport

PAGES = [
    "/console/",
    "/console/overview/panel",
    "/console/tickets",
    "/console/tickets.csv",
    "/console/tickets/A1234",
    "/console/audit",
    "/console/bulletins",
    "/console/alerts",
    "/console/organisation",
]


@pytest.fixture
async def h(harness: Harness) -> AsyncIterator[Harness]:
    await harness.load_directory()
    await add_accounts(harness)
    yield harness


async def test_the_sign_in_form_and_a_session_cookie_that_opens_the_console(h: Harness) -> None:
    client = browser(h)
    form = await client.get("/console/login")
    assert form.status_code == 200
    for field in ('name="username"', 'name="password"', 'type="password"'):
        assert field in form.text
    token = hidden(form.text, "csrf_token")
    assert len(token) >= 32

    answer = await client.post(
        "/console/login",
        data={"username": "Admin", "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lx_console="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/console" in flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    # The cookie is a random id, nothing else (no username, no role).
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "admin" not in value and len(value) >= 40

    overview = await client.get("/console/")
    assert overview.status_code == 200
    assert "總覽" in overview.text and "縣局指揮中心" in overview.text
    [login] = await audit_rows(h, "login")
    assert login.username == "admin"


async def test_over_https_the_cookies_are_secure(h: Harness) -> None:
    client = browser(h, base_url="https://lianxin")
    form = await client.get("/console/login")
    assert "secure" in form.headers["set-cookie"].lower()
    answer = await sign_in(client, "zhao")
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("lx_console="))
    assert "secure" in cookie.lower()
    assert (await client.get("/console/tickets")).status_code == 200


async def test_without_a_session_every_page_answers_303_to_the_sign_in_page(h: Harness) -> None:
    client = browser(h)
    for path in PAGES:
        answer = await client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/console/login", path
    client.cookies.set("lx_console", "not-a-session", path="/console")
    for path in ("/console/", "/console/tickets"):
        assert (await client.get(path)).headers["location"] == "/console/login"
    # Forms too, before any CSRF check: there is nobody to check it for.
    for path in ("/console/logout", "/console/tickets/A1234/answer", "/console/account/script"):
        answer = await client.post(path, data={"csrf_token": "x"})
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    # An address that is no page: the sign-in too (a 404 told who had none which are pages);
    # signed in, the console's own 404.
    for path in ("/console/dashboard", "/console/tickets/A1234/nothing", "/console/x/y/z"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login", path
    assert (await client.post("/console/nothing", data={})).status_code == 303
    await sign_in(client, "wang")
    missing = await client.get("/console/dashboard")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert (await client.get("/console/static/console.css")).status_code == 200


def notice(page: str) -> str:
    """The sign-in page's message."""
    found = re.search(r'<p class="notice[^"]*" role="alert">(.*?)</p>', page, re.S)
    assert found, page[:2000]
    return found.group(1)


async def test_a_wrong_password_fails_and_the_fifth_failure_locks_the_account(h: Harness) -> None:
    client = browser(h)
    for _ in range(4):
        failed = await sign_in(client, "wang", "not-the-password")
        assert failed.status_code == 200
        assert "帳號或密碼錯誤" in failed.text
        assert "lx_console=" not in failed.headers.get("set-cookie", "")
    assert (await audit_rows(h, "locked")) == []
    await sign_in(client, "wang", "still-not-it")
    [locked] = await audit_rows(h, "locked")
    assert locked.username == "wang"

    # Locked: the right password fails too, with the same message, for 15 minutes.
    right = await sign_in(client, "wang")
    assert right.status_code == 200 and "帳號或密碼錯誤" in right.text
    # The message says that a lock-out may be why, for how long and who lifts it; but it is
    # the very message an unknown username gets, so it tells nobody which usernames exist.
    said = notice(right.text)
    assert "或帳號已被鎖定" in said and "連續輸錯5次即鎖定15分鐘" in said
    assert "密碼正確也無法登入" in said and "lianxin account unlock" in said
    h.clock.advance(timedelta(minutes=14, seconds=59))
    assert (await sign_in(client, "wang")).status_code == 200
    h.clock.advance(timedelta(seconds=2))
    assert (await sign_in(client, "wang")).status_code == 303

    failures = await audit_rows(h, "login_failed")
    assert len(failures) == 7
    assert [f.detail for f in failures[5:]] == ["while_locked", "while_locked"]
    # Other accounts were never locked by wang's failures.
    assert (await sign_in(browser(h), "zhao")).status_code == 303
    assert said == notice((await sign_in(browser(h), "nobody-here", PASSWORD)).text)


async def test_a_success_starts_the_count_of_failures_again(h: Harness) -> None:
    client = browser(h)
    for _ in range(4):
        await sign_in(client, "zhao", "wrong-password")
    assert (await sign_in(client, "zhao")).status_code == 303
    for _ in range(4):
        await sign_in(browser(h), "zhao", "wrong-password")
    assert (await sign_in(browser(h), "zhao")).status_code == 303
    assert await audit_rows(h, "locked") == []


async def test_unknown_and_disabled_accounts_fail_like_a_wrong_password(h: Harness) -> None:
    wrong = await sign_in(browser(h), "admin", "wrong-password")
    unknown = await sign_in(browser(h), "nobody-here", PASSWORD)
    assert "帳號或密碼錯誤" in unknown.text and unknown.status_code == wrong.status_code
    empty = await sign_in(browser(h), "", "")
    assert empty.status_code == 400 and "請輸入帳號和密碼" in empty.text
    rows = await audit_rows(h, "login_failed")
    # What was typed as a username that names nobody is not kept: it may be a password.
    assert [(r.username, r.detail) for r in rows] == [("admin", None), ("-", "unknown_user")]
    assert "nobody-here" not in str([(r.username, r.target, r.detail) for r in rows])


class CountingHasher(PasswordHasher):
    """argon2-cffi's own hasher, counting the verifications it runs."""

    verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


async def test_every_failed_sign_in_costs_the_same_argon2_work_whatever_the_name(
    h: Harness,
) -> None:
    # Timing told names apart: a locked account was refused before any hashing (5 ms against
    # 200 ms for an unknown name), and an over-long password skipped argon2 for a real account
    # but not for an unknown one. The work is counted here, not timed.
    hasher = CountingHasher.from_parameters(CHEAPEST)
    h.runtime.passwords = hasher
    async with h.runtime.sessions.begin() as session:
        await disable_account(session, username="chen", now=h.clock.now())
    for _ in range(5):
        await sign_in(browser(h), "zhao", "wrong-password")
    assert [r.username for r in await audit_rows(h, "locked")] == ["zhao"]

    async def verifications(username: str, password: str) -> int:
        before = hasher.verified
        answer = await sign_in(browser(h), username, password)
        assert answer.status_code == 200 and "帳號或密碼錯誤" in answer.text, username
        return hasher.verified - before

    too_long = "x" * (MAX_PASSWORD + 1)
    costs = {
        name: (await verifications(name, PASSWORD), await verifications(name, too_long))
        for name in ("nobody-here", "chen", "zhao")  # unknown, disabled, locked
    }
    costs["wang"] = (
        await verifications("wang", "wrong-password"),
        await verifications("wang", too_long),
    )
    # One verification for any password argon2 is given; none, for any name, for one too long.
    assert costs == dict.fromkeys(("nobody-here", "chen", "zhao", "wang"), (1, 0))
    before = hasher.verified
    assert (await sign_in(browser(h), "wang")).status_code == 303
    assert hasher.verified - before == 1


async def test_a_session_ends_after_30_minutes_idle(h: Harness) -> None:
    client = await signed_in(h, "zhao")
    h.clock.advance(timedelta(minutes=29))
    assert (await client.get("/console/tickets")).status_code == 200
    h.clock.advance(timedelta(minutes=29))  # 58 minutes in, but never 30 idle
    assert (await client.get("/console/")).status_code == 200
    h.clock.advance(timedelta(minutes=30, seconds=1))
    ended = await client.get("/console/")
    assert ended.status_code == 303 and ended.headers["location"] == "/console/login"
    login = await client.get("/console/login")
    assert "閒置超過30分鐘" in login.text
    [expired] = await audit_rows(h, "session_expired")
    assert expired.username == "zhao"
    # The same cookie never works again, even "within" a fresh half hour.
    assert (await client.get("/console/")).status_code == 303


async def test_the_overviews_own_refresh_does_not_keep_a_session_alive(h: Harness) -> None:
    client = await signed_in(h, "wang")
    for _ in range(4):
        h.clock.advance(timedelta(minutes=7))
        refresh = await client.get("/console/overview/panel", headers={"HX-Request": "true"})
        assert refresh.status_code == 200
    h.clock.advance(timedelta(minutes=7))  # 35 minutes since the last page that counted
    refresh = await client.get("/console/overview/panel", headers={"HX-Request": "true"})
    assert refresh.status_code == 303 and refresh.headers["location"] == "/console/login"
    # htmx follows the redirect to the sign-in page, which tells it to reload the window.
    login = await client.get("/console/login", headers={"HX-Request": "true"})
    assert login.headers["HX-Redirect"] == "/console/login"


async def test_a_session_ends_after_12_hours_however_busy(h: Harness) -> None:
    client = await signed_in(h, "admin")
    elapsed = timedelta()
    while (await client.get("/console/")).status_code == 200:
        assert elapsed < timedelta(hours=13), "the session never ended"
        h.clock.advance(timedelta(minutes=29))
        elapsed += timedelta(minutes=29)
    assert timedelta(hours=12) < elapsed <= timedelta(hours=12, minutes=29)
    # Never idle 30 minutes: the sign-in page says the 12 hours were up, not that it was left.
    said = notice((await client.get("/console/login")).text)
    assert "已登入滿12小時" in said and "閒置" not in said


async def test_a_post_without_a_valid_csrf_token_is_403_and_changes_nothing(h: Harness) -> None:
    # The sign-in form: its token must match the cookie set with the form.
    client = browser(h)
    await client.get("/console/login")
    for token in (None, "", "forged-token-forged-token-forged-token"):
        data = {"username": "admin", "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        refused = await client.post("/console/login", data=data)
        assert refused.status_code == 403
        assert "表單已失效" in refused.text
    assert await audit_rows(h, "login") == []

    # Signed in: a form without the session's token changes nothing.
    client = await signed_in(h, "admin")
    other = await signed_in(h, "zhao")
    other_token = hidden((await other.get("/console/")).text, "csrf_token")
    for data in ({}, {"csrf_token": "x" * 43}, {"csrf_token": other_token}):
        assert (await client.post("/console/logout", data=data)).status_code == 403
        assert (await client.post("/console/account/script", data=data)).status_code == 403
    page = await client.get("/console/")
    assert page.status_code == 200 and "總覽" in page.text  # still signed in, still Traditional
    assert await audit_rows(h, "logout") == []


async def test_sign_out_ends_the_session_for_good(h: Harness) -> None:
    client = await signed_in(h, "wang")
    page = await client.get("/console/")
    stolen = client.cookies.get("lx_console")
    out = await client.post("/console/logout", data={"csrf_token": hidden(page.text, "csrf_token")})
    assert out.status_code == 303 and out.headers["location"].startswith("/console/login")
    assert "已登出" in (await client.get(out.headers["location"])).text
    replay = browser(h)
    replay.cookies.set("lx_console", stolen or "", path="/console")
    assert (await replay.get("/console/")).status_code == 303
    assert [r.username for r in await audit_rows(h, "logout")] == ["wang"]


async def test_each_account_chooses_its_script(h: Harness) -> None:
    client = await signed_in(h, "wang")
    page = await client.get("/console/tickets")
    assert "工單" in page.text and "負責民警" in page.text
    switched = await client.post(
        "/console/account/script",
        data={"csrf_token": hidden(page.text, "csrf_token"), "next": "/console/tickets"},
    )
    assert switched.headers["location"] == "/console/tickets"
    page = await client.get("/console/tickets")
    assert "工单" in page.text and "负责民警" in page.text and "負責民警" not in page.text
    # Another account keeps its own.
    other = await signed_in(h, "zhao")
    assert "負責民警" in (await other.get("/console/tickets")).text
    # Never back to another site.
    away = await client.post(
        "/console/account/script",
        data={"csrf_token": hidden(page.text, "csrf_token"), "next": "//evil.example/x"},
    )
    assert away.headers["location"] == "/console/"


async def test_console_pages_run_only_our_own_scripts(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all(
        'src="/console/static/' in attrs and not body.strip() for attrs, body in scripts
    )
    htmx = await client.get(re.search(r'src="(/console/static/htmx[^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]


# --- the command line -------------------------------------------------------------------------


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    import contextlib
    import sys

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The test database as the CLI's configured one, with the test directory loaded."""
    import base64
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIANXIN__DATABASE__URL", db_url)
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", base64.b64encode(os.urandom(32)).decode())
    assert run(["directory", "load", str(DIRECTORY)])[0] == 0
    return db_url


def test_account_create_list_and_disable_from_the_command_line(
    cli_db: str, world: FakeWorld
) -> None:
    code, out, _ = run(
        ["account", "create", "Zhao", "--role", "leader", "--officer", "off-zhao"],
        "a-long-password\n",
    )
    assert (code, out.strip()) == (0, "account zhao created (leader)")
    code, out, _ = run(["account", "create", "ops", "--role", "admin", "--generate"])
    assert code == 0
    generated = re.search(r"^password: (\S+)$", out, re.M)
    assert generated and len(generated.group(1)) >= 16

    refusals = [
        (["account", "create", "li", "--role", "officer"], "a-long-password\n", "need --officer"),
        (
            ["account", "create", "li", "--role", "officer", "--officer", "off-nobody"],
            "a-long-password\n",
            "no officer 'off-nobody'",
        ),
        (["account", "create", "li", "--role", "admin"], "short\n", "at least 10 characters"),
        (["account", "create", "zhao", "--role", "admin"], "a-long-password\n", "exists already"),
        (["account", "create", "x y", "--role", "admin"], "a-long-password\n", "username"),
    ]
    for argv, stdin, reason in refusals:
        code, _, err = run(argv, stdin)
        assert code == 1 and reason in err, (argv, err)  # refused, nothing applied

    code, out, _ = run(["account", "list"])
    lines = out.strip().splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["zhao", "leader", "off-zhao 趙所長"],
        ["ops", "admin", "-"],
    ]
    assert "a-long-password" not in out and "argon2" not in out
    assert all("active" in line for line in lines)

    assert run(["account", "disable", "zhao"])[0] == 0
    assert run(["account", "disable", "zhao"])[0] == 1
    assert "disabled" in run(["account", "list"])[1].splitlines()[0]


async def test_a_disabled_account_is_signed_out_at_once(h: Harness) -> None:
    from bot.services.accounts import disable_account

    client = await signed_in(h, "wang")
    async with h.runtime.sessions.begin() as session:
        assert await disable_account(session, username="wang", now=h.clock.now())
    assert (await client.get("/console/")).status_code == 303
    assert (await sign_in(browser(h), "wang")).status_code == 200


async def test_the_demo_makes_one_account_of_each_role(tmp_path: Path) -> None:
    import httpx

    from bot.demo import build_demo_app

    app, runtime = build_demo_app(tmp_path, background=False)
    try:
        accounts = app.state.demo_accounts
        assert sorted(a.role for a in accounts) == ["admin", "leader", "officer"]
        for account in accounts:
            client = httpx.AsyncClient(transport=SettledTransport(app=app), base_url="http://demo")
            answer = await sign_in(client, account.username, account.password)
            assert answer.status_code == 303, account
            assert account.who in (await client.get("/console/")).text
    finally:
        await runtime.aclose()


async def test_signing_in_again_replaces_the_browsers_session(h: Harness) -> None:
    client = await signed_in(h, "zhao")
    first = client.cookies.get("lx_console")
    # Signed in, the sign-in page sends the browser on to the overview.
    again = await client.get("/console/login")
    assert again.status_code == 303 and again.headers["location"] == "/console/"
    # Signing in as someone else in the same browser (from a sign-in form left open in another
    # tab) ends zhao's session.
    login = await client.post(
        "/console/login",
        data={
            "username": "wang",
            "password": PASSWORD,
            "csrf_token": client.cookies.get("lx_console_login") or "",
        },
    )
    assert login.status_code == 303
    assert "王警官" in (await client.get("/console/")).text
    old = browser(h)
    old.cookies.set("lx_console", first or "", path="/console")
    assert (await old.get("/console/")).status_code == 303
