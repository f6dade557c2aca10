"""Configuration: YAML plus environment overrides, validated, secrets required by channel."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import ConfigError, load_settings

KEY = base64.b64encode(os.urandom(32)).decode()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, "utf-8")
    return path


def test_env_overrides_file_and_parses_scalars(tmp_path: Path) -> None:
    path = _write(tmp_path, "bridge:\n  send_url: http://a/send\n  send_interval_s: 3\n")
    env = {
        "LIANXIN__BRIDGE__SEND_INTERVAL_S": "0.5",
        "LIANXIN__BRIDGE__SECRET": "0" + "123456789" * 4,  # numeric-looking: stays a string
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__DATABASE__URL": "sqlite+aiosqlite:///./other.db",
    }
    s = load_settings(path, environ=env)
    assert s.bridge.send_interval_s == 0.5
    assert (
        s.bridge.secret is not None and s.bridge.secret.get_secret_value() == "0" + "123456789" * 4
    )
    assert s.database.url.endswith("other.db")
    assert s.timezone == "Asia/Shanghai"


@pytest.mark.parametrize("secret", ["012345", "0777", "on", "12:30", "1_000", "#hash", "null-ish"])
def test_env_secrets_are_taken_exactly_as_written(tmp_path: Path, secret: str) -> None:
    # YAML would read these as an octal number, a boolean, a sexagesimal number, an integer
    # with a separator, and a comment: the signature would then be checked with another secret.
    path = _write(tmp_path, "wechat:\n  app_id: wx1\n")
    env = {
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__BRIDGE__SECRET": secret,
        "LIANXIN__WECHAT__TOKEN": secret,
    }
    s = load_settings(path, environ=env, require_secrets=False)
    assert s.bridge.secret is not None and s.bridge.secret.get_secret_value() == secret
    assert s.wechat.token is not None and s.wechat.token.get_secret_value() == secret


def test_env_values_still_reach_typed_settings(tmp_path: Path) -> None:
    env = {
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__OUTBOX__MAX_ATTEMPTS": "7",
        "LIANXIN__BRIDGE__SEND_INTERVAL_S": "1.5",
        "LIANXIN__BULLETINS__QUIET_HOURS": "null",
        "LIANXIN__BRIDGE__SELF_IDS": "[wxid_bot, wxid_bot2]",
    }
    s = load_settings(_write(tmp_path, ""), environ=env)
    assert s.outbox.max_attempts == 7 and s.bridge.send_interval_s == 1.5
    assert s.bulletins.quiet_hours is None
    assert list(s.bridge.self_ids) == ["wxid_bot", "wxid_bot2"]


def test_an_env_override_inside_a_default_map_merges_into_it(tmp_path: Path) -> None:
    # Without a config file that lists visits.plan_reasons, the override replaced the whole
    # map with one entry holding every_days alone: "living_alone.hant: Field required".
    env = {
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__VISITS__PLAN_REASONS__LIVING_ALONE__EVERY_DAYS": "7",
        "LIANXIN__VISITS__PLAN_REASONS__DRUG_REHAB": "{hant: 社區戒毒人員, hans: 社区戒毒人员}",
        "LIANXIN__VISITS__REMIND_AFTER_DAYS": "3",
    }
    reasons = load_settings(_write(tmp_path, ""), environ=env).visits.plan_reasons
    assert reasons["living_alone"].every_days == 7
    assert reasons["living_alone"].hant == "獨居老人" and reasons["living_alone"].hans == "独居老人"
    assert reasons["drug_rehab"].hans == "社区戒毒人员"
    assert {"left_behind_children", "severely_ill", "keep_in_touch"} <= set(reasons)
    # The shipped config.yaml lists them: the same.
    shipped = Path(__file__).resolve().parents[1] / "config.yaml"
    assert load_settings(shipped, environ=env).visits.plan_reasons == reasons
    # A file that sets its own list replaces the defaults, and so does a whole map given in
    # one variable.
    own = "visits:\n  plan_reasons:\n    elderly: {hant: 老人, hans: 老人}\n"
    with pytest.raises(
        ConfigError,
        match=r"plan_reasons\.living_alone\.hant \(from \S+config\.yaml\): Field required",
    ):
        load_settings(_write(tmp_path, own), environ=env)
    whole = {
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__VISITS__PLAN_REASONS": "{a: {hant: 甲, hans: 甲}}",
    }
    assert list(load_settings(_write(tmp_path, ""), environ=whole).visits.plan_reasons) == ["a"]


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("bridge:\n  secret: s3cret\n", "LIANXIN__BRIDGE__SECRET"),
        ("security:\n  pii_key: abc\n", "LIANXIN__SECURITY__PII_KEY"),
        ("wechat:\n  app_secret: abc\n", "LIANXIN__WECHAT__APP_SECRET"),
        # Values YAML reads as false-ish were let through, and 0 became the token "0".
        ("wechat:\n  token: 0\n  app_id: wx1\n", "LIANXIN__WECHAT__TOKEN"),
        ("bridge:\n  secret: 0\n", "LIANXIN__BRIDGE__SECRET"),
        ("wecom:\n  encoding_aes_key: false\n", "LIANXIN__WECOM__ENCODING_AES_KEY"),
        ("sms:\n  access_key_secret: 0.0\n", "LIANXIN__SMS__ACCESS_KEY_SECRET"),
        ("security:\n  pii_previous_keys: {}\n", "LIANXIN__SECURITY__PII_PREVIOUS_KEYS"),
    ],
)
def test_a_secret_in_the_config_file_is_refused(tmp_path: Path, text: str, variable: str) -> None:
    # CONTRACT §1: secrets may come from the environment only.
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text), environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert variable in str(err.value) and "environment only" in str(err.value)


def test_missing_secret_of_configured_channel_names_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "bridge:\n  send_url: http://a/send\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert "bridge.secret" in str(err.value) and "LIANXIN__BRIDGE__SECRET" in str(err.value)


def test_missing_pii_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"security\.pii_key"):
        load_settings(_write(tmp_path, "timezone: Asia/Shanghai\n"), environ={})


def test_wechat_needs_token_and_app_secret(tmp_path: Path) -> None:
    path = _write(tmp_path, "wechat:\n  app_id: wx123\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert "wechat.token" in str(err.value) and "wechat.app_secret" in str(err.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bridge:\n  send_interval_s: soon\n", "bridge.send_interval_s"),
        ("timezone: Mars/Olympus\n", "timezone"),
        ("bulletins:\n  quiet_hours: 'late'\n", "bulletins.quiet_hours"),
        ("databse:\n  url: x\n", "databse"),
        ("sms:\n  provider: pigeon\n", "sms.provider"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text), environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert key in str(err.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "LIANXIN__DATABASE__URL",
            "not a url",
            "database.url (from $LIANXIN__DATABASE__URL): not a database URL",
        ),
        ("LIANXIN__DATABASE__URL", "mysql://x/y", "unsupported database 'mysql'"),
        ("LIANXIN__DATABASE__URL", "sqlite+pysqlcipher:///x.db", "sqlite+aiosqlite"),
        ("LIANXIN__DATABASE__URL", "sqlite+aiosqlite://", "SQLite needs a file"),
        ("LIANXIN__WECHAT__ENCODING_AES_KEY", "short", "must be 43 characters"),
        ("LIANXIN__WECHAT__ENCODING_AES_KEY", "!" * 43, "is not an EncodingAESKey"),
        ("LIANXIN__WECOM__ENCODING_AES_KEY", "?" * 43, "wecom.encoding_aes_key"),
        # URLs without http(s):// or a host were accepted, and every send then failed.
        (
            "LIANXIN__BRIDGE__SEND_URL",
            "bridge.internal/send",
            "bridge.send_url (from $LIANXIN__BRIDGE__SEND_URL): must",
        ),
        ("LIANXIN__BRIDGE__SEND_URL", "localhost:9000/send", "must start with http://"),
        (
            "LIANXIN__SMS__URL",
            "ftp://sms.internal/send",
            "sms.url (from $LIANXIN__SMS__URL): must start",
        ),
        (
            "LIANXIN__SMS__API_BASE_URL",
            "https://",
            "sms.api_base_url (from $LIANXIN__SMS__API_BASE_URL): has no host",
        ),
        ("LIANXIN__WECHAT__API_BASE_URL", "api.weixin.qq.com", "wechat.api_base_url"),
        ("LIANXIN__BULLETINS__PUBLIC_BASE_URL", "lianxin.example.gov.cn", "public_base_url"),
        ("LIANXIN__BULLETINS__WECOM_WEBHOOK_URL", "http://h:99999/x", "not a number from 0"),
    ],
)
def test_bad_environment_value_names_the_key(variable: str, value: str, expected: str) -> None:
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, variable: value}
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=env, read_file=False, require_secrets=False)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("postgresql://u:pw@db/lx", "postgresql+asyncpg://u:pw@db/lx"),
        ("postgresql+asyncpg://u@db/lx", "postgresql+asyncpg://u@db/lx"),
    ],
)
def test_database_url_without_the_async_driver_gets_it(given: str, used: str) -> None:
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__DATABASE__URL": given}
    assert load_settings(None, environ=env, read_file=False).database.url == used


def test_unreachable_database_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "x.db"
    monkeypatch.setenv("LIANXIN__DATABASE__URL", f"sqlite+aiosqlite:///{missing}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["db", "upgrade"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lianxin: cannot use the database") and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "is a folder: give the file in it"),
        ("timezone: Asia/Shanghai\n# 配置\n".encode("gb18030"), "not UTF-8 text (line 2)"),
        (b"sms:\n  provider: [log\n", "not valid YAML: expected ',' or ']'"),
    ],
    ids=["folder", "gb18030", "bad-yaml"],
)
def test_a_config_that_cannot_be_read_is_one_line_naming_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    expected: str,
) -> None:
    # A folder gave IsADirectoryError's traceback, a file saved as GB18030 UnicodeDecodeError's
    # (both exit 1), bad YAML several lines.
    config = tmp_path / "conf"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "db", "upgrade"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("lianxin: ") and str(config) in err and expected in err


def test_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "99999"])
    assert exit_.value.code == 2 and "port must be 1–65535" in capsys.readouterr().err


def test_bad_pii_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"security\.pii_key: must be 32 bytes"):
        load_settings(_write(tmp_path, ""), environ={"LIANXIN__SECURITY__PII_KEY": "tooshort"})


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "timezone: Asia/Urumqi\n")
    s = load_settings(
        None, environ={"LIANXIN_CONFIG": str(path), "LIANXIN__SECURITY__PII_KEY": KEY}
    )
    assert s.timezone == "Asia/Urumqi"


def test_serve_refuses_to_start_without_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/x.db\n")
    monkeypatch.delenv("LIANXIN__SECURITY__PII_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(path)])
    assert exit_info.value.code == 2
    assert "security.pii_key" in capsys.readouterr().err


def test_db_upgrade_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'x.db'}\n", "utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "upgraded from empty to " in capsys.readouterr().out
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "already at the latest revision" in capsys.readouterr().out


def test_serve_refuses_a_key_that_does_not_open_stored_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started with a new key by mistake, the server would answer 500 to every resident it
    # knows, emergencies included (their nickname cannot be read): it must not start.
    import asyncio
    import os
    from datetime import UTC, datetime

    from bot.db import make_engine, make_sessions
    from bot.pii import PiiCipher
    from models.people import Member

    old, new = os.urandom(32), os.urandom(32)
    path = _write(tmp_path, f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/x.db\n")
    assert main(["--config", str(path), "db", "upgrade"]) == 0

    async def a_resident_stored_with_the_old_key() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/x.db")
        now = datetime.now(UTC)
        async with make_sessions(engine).begin() as s:
            s.add(
                Member(
                    channel="bridge",
                    sender_id="wxid_yang",
                    nickname_enc=PiiCipher(old).encrypt("楊某某"),
                    first_seen_at=now,
                    last_seen_at=now,
                )
            )
        await engine.dispose()

    asyncio.run(a_resident_stored_with_the_old_key())
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(a))
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", new.hex())
    assert main(["serve", "--config", str(path), "--port", "18998"]) == 2
    err = capsys.readouterr().err
    assert "does not open personal data already stored" in err and "members.nickname_enc" in err
    assert started == []
    # With the old key kept as a previous one (as while rotating) it starts.
    monkeypatch.setenv("LIANXIN__SECURITY__PII_PREVIOUS_KEYS", f'["{old.hex()}"]')
    assert main(["serve", "--config", str(path), "--port", "18998"]) == 0
    assert len(started) == 1


# --- settings that would work but leave a door open (issue 12, finding 6) --------------------
def _serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, **env: str
) -> tuple[int, list[object]]:
    """``lianxin serve`` with ``config`` up to the point where uvicorn would take over."""
    path = _write(tmp_path, f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/x.db\n{config}")
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", KEY)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append(k))
    try:
        code = main(["serve", "--config", str(path), "--port", "18997"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, started


def test_a_url_without_its_scheme_stops_start_up_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It started, and every send to the bridge failed with httpx's UnsupportedProtocol.
    code, started = _serve(
        tmp_path,
        monkeypatch,
        "",
        LIANXIN__BRIDGE__SEND_URL="bridge.internal/send",
        LIANXIN__BRIDGE__SECRET="b" * 32,
    )
    assert code == 2 and started == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert (
        "bridge.send_url (from $LIANXIN__BRIDGE__SEND_URL): must start with http:// or https://"
        in err
    )
    # Written as it should be, it starts.
    code, started = _serve(
        tmp_path,
        monkeypatch,
        "",
        LIANXIN__BRIDGE__SEND_URL=" http://bridge.internal/send ",
        LIANXIN__BRIDGE__SECRET="b" * 32,
    )
    assert code == 0 and len(started) == 1


@pytest.mark.parametrize("secret", ["Q", "s3cret!", "Q" * 31])
def test_a_bridge_secret_under_32_characters_stops_start_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    secret: str,
) -> None:
    # CONTRACT §1: it is generated, never typed; a short one can be guessed, and with it anyone
    # posts events as any resident or officer.
    code, started = _serve(
        tmp_path,
        monkeypatch,
        "bridge:\n  send_url: http://127.0.0.1:9/send\n",
        LIANXIN__BRIDGE__SECRET=secret,
    )
    assert code == 2 and started == []
    err = capsys.readouterr().err
    assert f"bridge.secret is too short ({len(secret)} characters; at least 32" in err
    assert "lianxin keys generate" in err and "LIANXIN__BRIDGE__SECRET" in err
    assert secret not in err


def test_a_generated_bridge_secret_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the refusal tells the operator to run makes a secret that passes.
    assert main(["keys", "generate"]) == 0
    generated = capsys.readouterr().out.strip()
    path = _write(tmp_path, "bridge:\n  send_url: http://127.0.0.1:9/send\n")
    for secret in (generated, "b" * 32):
        env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__BRIDGE__SECRET": secret}
        s = load_settings(path, environ=env)
        assert s.bridge.secret is not None and s.bridge.secret.get_secret_value() == secret


WECHAT = "wechat:\n  app_id: wx1234567890abcdef\n"
WECHAT_ENV = {"LIANXIN__WECHAT__TOKEN": "token", "LIANXIN__WECHAT__APP_SECRET": "app-secret"}


def test_wechat_plain_mode_stops_start_up_unless_allowed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Plain mode signs the query string, not the message: one captured request carries any
    # message for the replay window.
    code, started = _serve(tmp_path, monkeypatch, WECHAT, **WECHAT_ENV)
    assert code == 2 and started == []
    err = capsys.readouterr().err
    assert "wechat.encoding_aes_key is not set" in err
    assert "LIANXIN__WECHAT__ENCODING_AES_KEY" in err and "wechat.allow_plain_mode: true" in err

    # Allowed explicitly: it starts, and says at WARNING what that costs.
    caplog.set_level(logging.WARNING, logger="lianxin")
    code, started = _serve(
        tmp_path, monkeypatch, WECHAT + "  allow_plain_mode: true\n", **WECHAT_ENV
    )
    assert code == 0 and len(started) == 1
    [warning] = [r for r in caplog.records if "allow_plain_mode" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "forged" in warning.getMessage()


def test_safe_mode_starts_without_the_plain_mode_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lianxin")
    aes_key = base64.b64encode(os.urandom(32)).decode()[:43]
    code, started = _serve(
        tmp_path,
        monkeypatch,
        WECHAT,
        LIANXIN__WECHAT__ENCODING_AES_KEY=aes_key,
        **WECHAT_ENV,
    )
    assert code == 0 and len(started) == 1
    assert not [r for r in caplog.records if "plain" in r.getMessage()]
    # Nor the banner naming the server software (uvicorn's "server: uvicorn").
    assert started[0]["server_header"] is False  # type: ignore[index]


def test_a_bad_key_is_named_with_where_its_value_came_from(tmp_path: Path) -> None:
    # An operator told "databse: Extra inputs are not permitted" looked in config.yaml for a
    # key that a misspelt variable had made.
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__DATABSE__URL": "x"}
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=env, read_file=False)
    assert str(err.value) == (
        "invalid configuration: databse (from $LIANXIN__DATABSE__URL): unknown setting"
    )
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__BRIDGE__SEND_INTERVAL_S": "soon"}
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, "timezone: Asia/Shanghai\n"), environ=env)
    assert "bridge.send_interval_s (from $LIANXIN__BRIDGE__SEND_INTERVAL_S): " in str(err.value)
    file = _write(tmp_path, "bulletins:\n  quiet_hours: late\n")
    with pytest.raises(ConfigError) as err:
        load_settings(file, environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert f"bulletins.quiet_hours (from {file}): must look like" in str(err.value)
    assert "Value error" not in str(err.value)
    # An empty value where none can be: said so, not "Input should be a valid string".
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__TIMEZONE": ""}
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ=env, read_file=False)
    assert str(err.value) == (
        "invalid configuration: timezone (from $LIANXIN__TIMEZONE): is empty and cannot be: "
        "give a value, or unset the variable for the default"
    )
