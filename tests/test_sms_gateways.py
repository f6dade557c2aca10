"""SMS through Alibaba Cloud and Tencent Cloud: signing, templates, answers, start-up checks.

The gateways are loopback fakes (tests/fake_sms_gateways.py) that recompute each request's
signature the way the real services describe it and refuse a wrong one. End to end, a resident
asks for a code over the bridge and binds with the digits the fake gateway received.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.sms import make_sms_sender, sms_warnings
from bot.channels.sms_gateways import aliyun, tencent
from bot.cli import main
from bot.clock import ManualClock
from bot.messages import SendError
from bot.settings import ConfigError, Settings, load_settings
from bot.sms_templates import sms_message
from models.outbox import OutboxMessage
from tests.fake_sms_gateways import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    SIGN_NAME,
    TENCENT_APP_ID,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    FakeGateways,
    GatewayState,
)
from tests.fakes import FakeWorld
from tests.harness import Harness
from tests.test_verification import PHONE, build_harness, dm

KEY = base64.b64encode(os.urandom(32)).decode()
PROVIDERS = ["aliyun", "tencent"]


@pytest.fixture(scope="module")
def gateways() -> Iterator[FakeGateways]:
    server = FakeGateways().start()
    yield server
    server.stop()


@pytest.fixture
def gw(gateways: FakeGateways) -> GatewayState:
    gateways.state.reset()
    return gateways.state


def sms_section(provider: str, base_url: str, **over: Any) -> dict[str, Any]:
    """``sms`` settings for ``provider`` pointing at the fake, with its credentials."""
    if provider == "aliyun":
        section: dict[str, Any] = {
            "provider": "aliyun",
            "access_key_id": ALIYUN_KEY_ID,
            "access_key_secret": ALIYUN_SECRET,
            "templates": {
                "code": {"id": "SMS_100001", "params": {"code": "code"}},
                "page": {
                    "id": "SMS_100002",
                    "params": {"ticket": "ticket", "category": "category", "number": "number"},
                },
            },
        }
    else:
        section = {
            "provider": "tencent",
            "access_key_id": TENCENT_SECRET_ID,
            "access_key_secret": TENCENT_SECRET_KEY,
            "app_id": TENCENT_APP_ID,
            "templates": {
                "code": {"id": "1000001", "params": ["code", "minutes"]},
                "page": {"id": "1000002", "params": ["ticket", "category"]},
            },
        }
    section.update(sign_name=SIGN_NAME, api_base_url=base_url, timeout_s=2)
    section.update(over)
    return section


def gateway_settings(provider: str, base_url: str, **over: Any) -> Settings:
    return load_settings(
        None,
        environ={},
        read_file=False,
        overrides={
            "security": {"pii_key": KEY},
            "sms": sms_section(provider, base_url, **over),
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def send(
    settings: Settings, payload: dict[str, Any], *, clock: ManualClock | None = None
) -> None:
    """One send through the configured gateway sender, as the outbox worker makes it."""
    async with httpx.AsyncClient() as client:
        sender = make_sms_sender(settings, client, clock or ManualClock(_now()))
        await sender.send(
            idempotency_key="lx-test-1", group_id=None, user_id="138****5678", payload=payload
        )


def quiet_like_serve(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything at DEBUG, with httpx and httpcore at WARNING as ``lianxin serve``
    sets them (``setup_logging``): httpx logs every URL, and Alibaba's SendSms takes its
    parameters in the query string by the API's own definition."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.WARNING, logger=name)


def code_payload(phone: str = PHONE, code: str = "246810") -> dict[str, Any]:
    message = sms_message(
        "code", text=f"验证码 {code}", phone=phone, values={"code": code, "minutes": 5}
    )
    return message.payload()


# --- the published examples --------------------------------------------------------------------


def test_aliyun_signature_matches_the_published_example() -> None:
    # Alibaba Cloud's V3 signature document: RunInstances at ecs.cn-shanghai with these values
    # signs to 06563a9e… (a wrong encoding, order or header set gives another value).
    query = aliyun.canonical_query(
        {
            "RegionId": "cn-shanghai",
            "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        }
    )
    assert (
        query == "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
    )
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    auth = aliyun.authorization(
        method="POST",
        path="/",
        query=query,
        headers=headers,
        key_id="YourAccessKeyId",
        secret="YourAccessKeySecret",
    )
    assert auth == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_aliyun_encodes_as_rfc3986() -> None:
    assert aliyun.percent_encode("a b*c+d/e~f") == "a%20b%2Ac%2Bd%2Fe~f"
    assert aliyun.percent_encode("连心") == "%E8%BF%9E%E5%BF%83"


def test_tencent_signing_matches_the_published_example() -> None:
    # Tencent Cloud's Signature v3 document: DescribeInstances at cvm, timestamp 1551113065.
    # Its SecretKey is masked there, so the published values that can be checked are the
    # canonical request's hash and the string to sign.
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Host": "cvm.tencentcloudapi.com",
        "X-TC-Action": "DescribeInstances",
    }
    canonical = tencent.canonical_request(headers=headers, payload=payload)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    assert digest == "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
    to_sign = tencent.string_to_sign(timestamp=1551113065, canonical=canonical, service="cvm")
    assert to_sign == f"TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n{digest}"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("13812345678", "+8613812345678"),
        ("+8613812345678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
    ],
)
def test_tencent_gets_e164_numbers(given: str, sent: str) -> None:
    assert tencent.e164(given) == sent


# --- end to end: a verification code ------------------------------------------------------------


@pytest.fixture(params=PROVIDERS)
async def sh(
    request: pytest.FixtureRequest, db_url: str, world: FakeWorld, gateways: FakeGateways
) -> AsyncIterator[Harness]:
    gateways.state.reset()
    h = await build_harness(db_url, world, sms=sms_section(request.param, gateways.base_url))
    yield h
    await h.close()


def _gateway_code(gw: GatewayState, provider: str) -> str:
    [call] = gw.accepted(provider)
    return str(call.params["code"] if provider == "aliyun" else call.params[0])


async def _sms_rows(h: Harness) -> list[OutboxMessage]:
    async with h.runtime.sessions() as session:
        return list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "sms"))
        )


async def test_verification_code_goes_out_through_the_gateway(
    sh: Harness, gateways: FakeGateways, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_like_serve(caplog)
    provider = sh.runtime.settings.sms.provider
    gw = gateways.state
    answers = await dm(sh, f"实名 张三 {PHONE}")
    assert "138****5678" in answers[0]
    [call] = gw.calls
    assert call.accepted, call.error
    assert call.sign_name == SIGN_NAME
    if provider == "aliyun":
        assert call.phone == PHONE and call.template == "SMS_100001"
        assert list(call.params) == ["code"]
    else:
        assert call.phone == "+86" + PHONE and call.template == "1000001"
        assert call.params[1] == "5"  # {2}: minutes
    code = _gateway_code(gw, provider)
    assert len(code) == 6 and code.isdigit()
    [row] = await _sms_rows(sh)
    assert call.reference == row.idempotency_key  # OutId / SessionContext: the receipt's key

    answers = await dm(sh, code)
    assert "成功" in answers[-1], answers
    # Once sent, the row keeps neither the number nor the code (nor the template's values).
    [row] = await _sms_rows(sh)
    payload = sh.runtime.cipher.decrypt_json(row.payload_enc)
    assert row.status == "sent" and "sms_values" not in payload["extra"]
    assert payload["extra"]["phone"] == "138****5678" and code not in str(payload)
    assert PHONE not in caplog.text and code not in caplog.text


@pytest.mark.parametrize(
    ("provider", "refusal"),
    [("aliyun", "SignatureDoesNotMatch"), ("tencent", "AuthFailure.SignatureFailure")],
)
async def test_a_wrong_secret_is_refused_and_reported(
    provider: str,
    refusal: str,
    db_url: str,
    world: FakeWorld,
    gateways: FakeGateways,
    gw: GatewayState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_like_serve(caplog)
    sms = sms_section(provider, gateways.base_url, access_key_secret="not-the-secret")
    h = await build_harness(db_url, world, sms=sms)
    try:
        await dm(h, f"实名 张三 {PHONE}")
        [row] = await _sms_rows(h)
    finally:
        await h.close()
    # The gateway refused the signature. A wrong secret will not get better by waiting: failed
    # at once, the reason naming the environment variable to fix.
    assert [c.error for c in gw.calls] == [refusal]
    assert row.status == "failed" and row.attempts == 1
    assert refusal in (row.last_error or "")
    assert "LIANXIN__SMS__ACCESS_KEY_SECRET" in (row.last_error or "")
    assert refusal in caplog.text  # the worker's warning
    assert PHONE not in caplog.text


async def test_throttling_is_retried(sh: Harness, gateways: FakeGateways) -> None:
    provider = sh.runtime.settings.sms.provider
    gw = gateways.state
    gw.script.append("throttle")
    await dm(sh, f"实名 张三 {PHONE}")
    [row] = await _sms_rows(sh)
    assert row.status == "pending" and row.attempts == 1
    assert "limit" in (row.last_error or "")
    assert gw.accepted(provider) == []

    sh.clock.advance(timedelta(seconds=10))  # past the first backoff
    await sh.drain()
    [row] = await _sms_rows(sh)
    assert row.status == "sent" and row.attempts == 2
    first, second = gw.calls
    assert first.error and not first.accepted and second.accepted
    answers = await dm(sh, _gateway_code(gw, provider))
    assert "成功" in answers[-1]


# --- answers sorted into retry / give up --------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("case", "retryable", "reason"),
    [
        ("throttle", True, "limit"),
        ("unavailable", True, "503"),
        ("hang", True, "timeout"),
        ("bad number", False, "does not accept this number"),
        ("unknown template", False, "sms.templates.code"),
        ("wrong key id", False, "sms.access_key_id"),
        ("clock off", False, "clock"),
        ("no page template", False, "sms.templates.page is not configured"),
        ("free text", False, "cannot send free text"),
    ],
)
async def test_gateway_answers_decide_retry_or_failure(
    provider: str,
    case: str,
    retryable: bool,
    reason: str,
    gateways: FakeGateways,
    gw: GatewayState,
) -> None:
    over: dict[str, Any] = {}
    payload = code_payload()
    clock = ManualClock(_now())
    if case in ("throttle", "unavailable", "hang"):
        gw.script.append(case)
    if case == "hang":
        over["timeout_s"] = 0.3
    if case == "bad number":
        payload = code_payload(phone="12345678901")
    if case == "unknown template":
        code_template = sms_section(provider, "")["templates"]["code"]
        over["templates"] = {"code": {**code_template, "id": "999"}}
    if case == "wrong key id":
        over["access_key_id"] = "somebody-else"
    if case == "clock off":
        clock = ManualClock(_now() - timedelta(minutes=20))
    if case == "no page template":
        over["templates"] = {"code": sms_section(provider, "")["templates"]["code"]}
        payload = sms_message(
            "page", text="P1", phone=PHONE, values={"ticket": "A1023", "category": "报警"}
        ).payload()
    if case == "free text":
        payload = {"text": "你好", "extra": {"phone": PHONE}}
    settings = gateway_settings(provider, gateways.base_url, **over)
    with pytest.raises(SendError) as err:
        await send(settings, payload, clock=clock)
    assert err.value.retryable is retryable, err.value.reason
    assert reason in err.value.reason
    assert PHONE not in err.value.reason and "246810" not in err.value.reason


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_urgent_page_fills_the_page_template(
    provider: str, gateways: FakeGateways, gw: GatewayState
) -> None:
    # The contract for P1 pages to officers: queue them with sms_message("page", …).
    officer_phone = "13900000001"
    message = sms_message(
        "page",
        text="🚨【紧急 P1 #A1023】报警 …",
        phone=officer_phone,
        values={"ticket": "A1023", "category": "报警", "number": "110", "minutes": 5},
        priority=0,
    )
    assert message.user_id == "139****0001"
    await send(gateway_settings(provider, gateways.base_url), message.payload())
    [call] = gw.accepted(provider)
    if provider == "aliyun":
        assert call.template == "SMS_100002"
        assert call.params == {"ticket": "A1023", "category": "报警", "number": "110"}
    else:
        assert call.template == "1000002" and call.params == ["A1023", "报警"]


def test_sms_message_refuses_unknown_kinds_and_values() -> None:
    with pytest.raises(ValueError, match="unknown SMS kind"):
        sms_message("hello", text="x", phone=PHONE, values={})
    with pytest.raises(ValueError, match="no value"):
        sms_message("code", text="x", phone=PHONE, values={"pin": "1"})


# --- start-up -----------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, "utf-8")
    return path


ALIYUN_YAML = """\
sms:
  provider: aliyun
  access_key_id: LTAI5tExample
  sign_name: 连心
  templates:
    code: {id: SMS_100001, params: {code: code}}
"""
TENCENT_YAML = """\
sms:
  provider: tencent
  access_key_id: AKIDExample
  app_id: 1400000001
  sign_name: 连心
  templates:
    code: {id: 1000001, params: [code, minutes]}
"""


@pytest.mark.parametrize("text", [ALIYUN_YAML, TENCENT_YAML])
def test_a_gateway_without_its_secret_does_not_start(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert "sms.access_key_secret" in str(err.value)
    assert "LIANXIN__SMS__ACCESS_KEY_SECRET" in str(err.value)
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__SMS__ACCESS_KEY_SECRET": "0123"}
    settings = load_settings(path, environ=env)
    secret = settings.sms.access_key_secret
    assert secret is not None and secret.get_secret_value() == "0123"  # as written
    assert settings.sms.templates["code"].id in ("SMS_100001", "1000001")


def test_the_secret_in_the_config_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, ALIYUN_YAML + "  access_key_secret: s3cret\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"LIANXIN__SECURITY__PII_KEY": KEY})
    assert "environment only" in str(err.value)
    assert "LIANXIN__SMS__ACCESS_KEY_SECRET" in str(err.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            TENCENT_YAML.replace("  app_id: 1400000001\n", ""),
            ["sms.app_id", "LIANXIN__SMS__APP_ID"],
        ),
        (ALIYUN_YAML.replace("  sign_name: 连心\n", ""), ["sms.sign_name"]),
        (ALIYUN_YAML.split("  templates:")[0], ["sms.templates.code"]),
        (ALIYUN_YAML.replace("access_key_id: LTAI5tExample", "region: x"), ["sms.access_key_id"]),
    ],
)
def test_a_gateway_missing_a_setting_names_it(tmp_path: Path, text: str, named: list[str]) -> None:
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__SMS__ACCESS_KEY_SECRET": "s"}
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text), environ=env)
    for name in named:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ALIYUN_YAML.replace("params: {code: code}", "params: {code: pin}"),
            "code.params.code: unknown value 'pin' (code has: code, minutes)",
        ),
        (ALIYUN_YAML.replace("    code: {", "    welcome: {"), "unknown kind 'welcome'"),
        (
            TENCENT_YAML.replace("params: [code, minutes]", "params: {code: code}"),
            "Tencent's parameters are positional",
        ),
        (
            ALIYUN_YAML.replace("params: {code: code}", "params: [code]"),
            "Alibaba Cloud's parameters are named",
        ),
        (
            ALIYUN_YAML.replace("params: {code: code}", "params: {no: code}"),
            "read as true/false (yes, no, on, off): quote it",
        ),
        ("sms:\n  provider: huawei\n", "sms.provider"),
    ],
)
def test_a_template_that_cannot_work_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    env = {"LIANXIN__SECURITY__PII_KEY": KEY, "LIANXIN__SMS__ACCESS_KEY_SECRET": "s"}
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text), environ=env)
    assert expected in str(err.value)


def test_a_gateway_can_be_set_up_from_the_environment_alone() -> None:
    env = {
        "LIANXIN__SECURITY__PII_KEY": KEY,
        "LIANXIN__SMS__PROVIDER": "tencent",
        "LIANXIN__SMS__ACCESS_KEY_ID": "AKIDExample",
        "LIANXIN__SMS__ACCESS_KEY_SECRET": "s",
        "LIANXIN__SMS__APP_ID": "1400000001",
        "LIANXIN__SMS__SIGN_NAME": "连心",
        "LIANXIN__SMS__TEMPLATES__CODE__ID": "1000001",
        "LIANXIN__SMS__TEMPLATES__CODE__PARAMS": "[code, minutes]",
    }
    settings = load_settings(None, environ=env, read_file=False)
    assert settings.sms.templates["code"].params == {"1": "code", "2": "minutes"}
    assert settings.sms.base_url == "https://sms.tencentcloudapi.com"
    # No page template: it runs, and says that pages cannot go out by SMS.
    assert any("sms.templates.page" in w for w in sms_warnings(settings))


def test_serve_refuses_a_gateway_without_its_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, f"database:\n  url: sqlite+aiosqlite:///{tmp_path}/x.db\n{ALIYUN_YAML}")
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", KEY)
    monkeypatch.delenv("LIANXIN__SMS__ACCESS_KEY_SECRET", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(path)])
    assert exit_info.value.code == 2
    assert "LIANXIN__SMS__ACCESS_KEY_SECRET" in capsys.readouterr().err
