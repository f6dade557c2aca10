"""What an operator does to console accounts after creating them, through the ``lianxin``
console script on the harness's database, judged by signing in over the app: a new password
(from stdin or ``--generate``) ends the account's sessions; ``enable`` undoes ``disable``;
``unlock`` lifts a lock-out; each is audited; bad input is refused with nothing changed."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import secret_value
from tests.console_support import PASSWORD, add_accounts, audit_rows, browser, sign_in, signed_in
from tests.harness import Harness


@pytest.fixture
async def h(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    await harness.load_directory()
    await add_accounts(harness)
    for name in list(os.environ):
        if name.startswith("LIANXIN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LIANXIN__DATABASE__URL", harness.runtime.settings.database.url)
    monkeypatch.setenv(
        "LIANXIN__SECURITY__PII_KEY", secret_value(harness.runtime.settings.security.pii_key)
    )
    monkeypatch.chdir(tmp_path)
    return harness


async def lianxin(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """The console script in a thread of its own (it runs its own event loop): exit code,
    standard output, standard error."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(argv))
                except SystemExit as exit_:
                    code = int(exit_.code or 0)
        finally:
            sys.stdin = old_stdin
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


async def test_a_new_password_from_stdin_ends_the_sessions_and_replaces_the_old_one(
    h: Harness,
) -> None:
    client = await signed_in(h, "wang")
    assert (await client.get("/console/")).status_code == 200
    code, out, err = await lianxin("account", "password", "WANG", stdin="a-brand-new-secret\n")
    assert (code, err) == (0, "")
    assert "new password set; its sessions are ended" in out
    assert "a-brand-new-secret" not in out
    # The browser that was signed in is sent to the sign-in page.
    assert (await client.get("/console/")).status_code == 303
    assert (await sign_in(browser(h), "wang")).status_code == 200  # the old one fails
    assert (await sign_in(browser(h), "wang", "a-brand-new-secret")).status_code == 303
    [row] = await audit_rows(h, "password_reset")
    assert (row.username, row.target, row.detail) == ("wang", "account:wang", "lianxin account")
    assert "secret" not in str(row.detail)


async def test_a_generated_password_is_printed_once_and_works(h: Harness) -> None:
    code, out, _ = await lianxin("account", "password", "zhao", "--generate")
    assert code == 0
    found = re.search(r"^password: (\S+)$", out, re.M)
    assert found and len(found.group(1)) >= 16
    assert (await sign_in(browser(h), "zhao", found.group(1))).status_code == 303
    assert (await sign_in(browser(h), "zhao")).status_code == 200


async def test_a_bad_new_password_or_an_unknown_account_changes_nothing(h: Harness) -> None:
    client = await signed_in(h, "wang")
    code, _, err = await lianxin("account", "password", "wang", stdin="short\n")
    assert code == 1 and "password unchanged" in err and "at least 10 characters" in err
    code, _, err = await lianxin("account", "password", "nobody", stdin="a-long-password\n")
    assert code == 1 and "no account 'nobody'" in err
    # Still signed in, still the old password.
    assert (await client.get("/console/")).status_code == 200
    assert (await sign_in(browser(h), "wang")).status_code == 303
    assert await audit_rows(h, "password_reset") == []


async def test_a_new_password_lifts_a_lock_out(h: Harness) -> None:
    client = browser(h)
    for _ in range(5):
        await sign_in(client, "wang", "not-the-password")
    assert (await sign_in(client, "wang")).status_code == 200  # locked
    assert (await lianxin("account", "password", "wang", stdin="another-password\n"))[0] == 0
    assert (await sign_in(client, "wang", "another-password")).status_code == 303


async def test_enable_undoes_disable_with_the_old_password(h: Harness) -> None:
    client = await signed_in(h, "zhao")
    assert (await lianxin("account", "disable", "zhao"))[0] == 0
    assert (await client.get("/console/")).status_code == 303
    assert (await sign_in(browser(h), "zhao")).status_code == 200
    code, out, _ = await lianxin("account", "list")
    assert "disabled" in next(line for line in out.splitlines() if line.startswith("zhao"))

    code, out, _ = await lianxin("account", "enable", "Zhao")
    assert code == 0 and "enabled" in out
    assert (await sign_in(browser(h), "zhao")).status_code == 303
    code, out, _ = await lianxin("account", "list")
    assert "active" in next(line for line in out.splitlines() if line.startswith("zhao"))
    # Enabling an account that is not disabled, or none at all, says so.
    for name in ("zhao", "nobody"):
        code, _, err = await lianxin("account", "enable", name)
        assert code == 1 and f"no disabled account {name!r}" in err
    assert [r.action for r in await audit_rows(h) if r.target == "account:zhao"] == [
        "account_disabled",
        "account_enabled",
    ]


async def test_unlock_lifts_a_lock_out_before_its_15_minutes(h: Harness) -> None:
    client = browser(h)
    for _ in range(5):
        await sign_in(client, "wang", "not-the-password")
    assert (await sign_in(client, "wang")).status_code == 200
    code, out, _ = await lianxin("account", "list")
    locked = next(line for line in out.splitlines() if line.startswith("wang"))
    assert re.search(r"locked until \d{4}-\d\d-\d\d \d\d:\d\d \+0800", locked), locked

    code, out, _ = await lianxin("account", "unlock", "wang")
    assert (code, out.strip()) == (0, "account wang unlocked")
    assert (await sign_in(client, "wang", PASSWORD)).status_code == 303
    # The count starts again: four failures do not lock it.
    for _ in range(4):
        await sign_in(browser(h), "wang", "not-the-password")
    assert (await sign_in(browser(h), "wang")).status_code == 303

    code, out, _ = await lianxin("account", "unlock", "zhao")
    assert code == 0 and "was not locked" in out
    code, _, err = await lianxin("account", "unlock", "nobody")
    assert code == 1 and "no account 'nobody'" in err
    assert [r.username for r in await audit_rows(h, "account_unlocked")] == ["wang", "zhao"]


async def test_a_name_no_column_or_listing_can_hold_is_refused(h: Harness) -> None:
    # SQLite kept a 300-character --name that PostgreSQL refused as "cannot use the
    # database" (exit 2); a line break would split the account's line in `account list`.
    for name, problem in (("名" * 201, "at most 200 characters"), ("a\nb", "no tabs, line breaks")):
        code, out, err = await lianxin(
            "account", "create", "newadmin", "--role", "admin", "--name", name, stdin=PASSWORD
        )
        assert (code, out) == (1, ""), err
        assert f"nothing created: --name: {problem}" in err
    code, out, _ = await lianxin("account", "list")
    assert code == 0 and "newadmin" not in out
