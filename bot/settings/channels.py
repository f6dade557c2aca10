"""Channel settings: WeChat, the group bridge, SMS gateways and their templates, WeCom."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bot.settings.base import Section, check_http_url, check_required_http_url, secret_value
from bot.sms_templates import TEMPLATE_VALUES


class WeChatSettings(Section):
    token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    app_id: str | None = None
    app_secret: SecretStr | None = None
    original_id: str | None = None
    api_base_url: str = "https://api.weixin.qq.com"
    # WeChat waits 5 s; leave room for the network on the way back.
    passive_reply_budget_s: float = Field(4.0, gt=0)
    # passive: the request waits for its event's processing (up to passive_reply_budget_s) and
    # answers with the first reply; what is not ready goes through the customer-service API.
    # api: answer `success` at once and send every reply through the API (verified service
    # accounts: a subscription account without the API could not answer at all).
    reply_mode: Literal["passive", "api"] = "passive"
    # Plain mode signs the query string but not the body: whoever sees one signed request can
    # send any message under it for replay_window_s. Refused unless explicitly allowed.
    allow_plain_mode: bool = False

    @property
    def plain_mode(self) -> bool:
        """No EncodingAESKey: messages would arrive unencrypted, their bodies unsigned."""
        return not secret_value(self.encoding_aes_key)

    @property
    def configured(self) -> bool:
        return any(
            secret_value(v) for v in (self.token, self.encoding_aes_key, self.app_secret)
        ) or bool(self.app_id)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        return check_encoding_aes_key(value, "WeChat")

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_required_http_url(value)


class BridgeSettings(Section):
    secret: SecretStr | None = None
    send_url: str | None = None
    # The bot's own account id(s) in the groups: their events are journaled, never answered.
    self_ids: list[str] = Field(default_factory=list)
    # Pacing between sends to one chat (group or person); different chats go side by side.
    send_interval_s: float = Field(3.0, ge=0)
    timeout_s: float = Field(10.0, gt=0)
    # A cap on the bridged account as a whole, across all chats (None: none). Urgent messages
    # (safety replies, P1 pages, urgent notices) are never held by it.
    account_per_minute: int | None = Field(None, ge=1)
    # Deliveries in a row failing with timeouts, 429 or 5xx that mark the bridge down.
    down_after_failures: int = Field(3, ge=1)

    @property
    def configured(self) -> bool:
        return bool(secret_value(self.secret) or self.send_url)

    @field_validator("send_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)


class SmsTemplate(Section):
    """A template registered with the SMS gateway, and how our values fill it (docs/sms.md)."""

    # Alibaba Cloud: the TemplateCode (SMS_123456789); Tencent Cloud: the TemplateId (1234567).
    id: str = Field(min_length=1)
    # The template's parameter name → our value name (bot/sms_templates.py). Tencent's
    # parameters are positional ({1}, {2}): a list [code, minutes] means {"1": code, "2": minutes}.
    params: dict[str, str] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Tencent's template ids are numbers, and YAML reads them as such.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("params", mode="before")
    @classmethod
    def _positional(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(i): v for i, v in enumerate(value, start=1)}
        if isinstance(value, dict):  # YAML reads {1: code} with a number as the key
            if any(isinstance(k, bool) for k in value):
                # YAML 1.1 reads the words yes, no, on, off as true/false, also as keys.
                raise ValueError(
                    "a parameter name was read as true/false (yes, no, on, off): quote it"
                )
            return {str(k): v for k, v in value.items()}
        return value


# Where each gateway's API answers; tests point ``sms.api_base_url`` at a loopback fake.
SMS_API_BASE_URLS = {
    "aliyun": "https://dysmsapi.aliyuncs.com",
    "tencent": "https://sms.tencentcloudapi.com",
}
_ALIYUN_PARAM = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class SmsSettings(Section):
    # log: the server log; http: POST {"phone", "text"} to url; aliyun / tencent: the gateways.
    provider: Literal["log", "http", "aliyun", "tencent"] = "log"
    url: str | None = None
    api_base_url: str | None = None  # default: the provider's public endpoint
    # Alibaba Cloud: AccessKey ID / Secret; Tencent Cloud: SecretId / SecretKey (env only).
    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    sign_name: str | None = None  # the approved signature, without 【】
    app_id: str | None = None  # Tencent Cloud: the SmsSdkAppId
    region: str = "ap-guangzhou"  # Tencent Cloud: X-TC-Region
    timeout_s: float = Field(10.0, gt=0)
    templates: dict[str, SmsTemplate] = Field(default_factory=dict)

    @field_validator("url", "api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @field_validator("app_id", "access_key_id", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("templates")
    @classmethod
    def _known_kinds_and_values(cls, value: dict[str, SmsTemplate]) -> dict[str, SmsTemplate]:
        for kind, template in value.items():
            allowed = TEMPLATE_VALUES.get(kind)
            if allowed is None:
                raise ValueError(f"unknown kind {kind!r} (kinds: {', '.join(TEMPLATE_VALUES)})")
            for param, our in template.params.items():
                if our not in allowed:
                    raise ValueError(
                        f"{kind}.params.{param}: unknown value {our!r} "
                        f"({kind} has: {', '.join(allowed)})"
                    )
        return value

    @property
    def gateway(self) -> bool:
        return self.provider in SMS_API_BASE_URLS

    @property
    def base_url(self) -> str:
        """The gateway's API base URL."""
        return (self.api_base_url or SMS_API_BASE_URLS.get(self.provider, "")).rstrip("/")

    @model_validator(mode="after")
    def _params_fit_the_provider(self) -> SmsSettings:
        """Tencent's template parameters are positional, Alibaba Cloud's named."""
        problems = self._template_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _template_problems(self) -> list[str]:
        problems: list[str] = []
        for kind, template in self.templates.items():
            names = list(template.params)
            if self.provider == "tencent" and set(names) != {
                str(i) for i in range(1, len(names) + 1)
            }:
                problems.append(
                    f"sms.templates.{kind}.params: Tencent's parameters are positional ({{1}}, "
                    f"{{2}}, …): give a list [value, …] or keys 1..n, not {', '.join(names)}"
                )
            if self.provider == "aliyun":
                bad = [n for n in names if not _ALIYUN_PARAM.fullmatch(n)]
                if bad:
                    problems.append(
                        f"sms.templates.{kind}.params: Alibaba Cloud's parameters are named "
                        f"(${{code}}): {', '.join(bad)} is not a parameter name"
                    )
        return problems

    # A P1 page or an emergency's safety reply still unsent this long after it was queued
    # (or at once while its channel is marked down): the ticket's officers are paged by SMS.
    fallback_after_s: int = Field(60, gt=0)


class WeComSettings(BaseModel):
    """The ``wecom`` configuration section (smart robot in API mode)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    # The robot's display name, as it appears after "@" in group texts; stripped from them.
    robot_name: str | None = None
    # When set, callbacks whose ``aibotid`` differs are refused (like ``wechat.original_id``).
    aibot_id: str | None = None
    # Not used by smart robots (their ReceiveId is empty); kept for WeCom self-built apps.
    corp_id: str | None = None
    # How long a passive reply may take before it is left to the outbox instead.
    passive_reply_budget_s: float = Field(4.0, gt=0)

    @property
    def configured(self) -> bool:
        """True when the callback can run (both secrets present)."""
        return bool(secret_value(self.token) and secret_value(self.encoding_aes_key))

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        return check_encoding_aes_key(value, "WeCom")


def check_encoding_aes_key(value: SecretStr | None, platform: str) -> SecretStr | None:
    """A pydantic check of an EncodingAESKey (a ``SecretStr`` or None): 43 characters of base64
    for 32 bytes. wechatpy only asserts this, deep inside, on the first message."""
    key = value.get_secret_value() if value is not None else ""
    if not key:
        return value
    if len(key) != 43:
        raise ValueError(f"must be 43 characters ({platform}'s EncodingAESKey)")
    try:
        raw = base64.b64decode(key + "=", validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "is not an EncodingAESKey (43 characters of base64: A–Z, a–z, 0–9, + and /)"
        )
    return value
