"""Configuration: a YAML file plus ``LIANXIN__SECTION__KEY`` environment overrides.

Validated with pydantic at start-up. ``load_settings`` raises :class:`ConfigError` whose message
names the offending key, so ``lianxin serve`` can stop with a one-line explanation.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.channels.base import check_encoding_aes_key
from bot.channels.wecom import WeComSettings
from bot.sms_templates import TEMPLATE_VALUES

ENV_PREFIX = "LIANXIN__"
# CONTRACT §1: the bridge's HMAC key is generated, never typed.
MIN_BRIDGE_SECRET = 32


class ConfigError(Exception):
    """A configuration problem; the message names the key and says what is wrong."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The async drivers Lianxin runs on, and what a URL without one means.
_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///./lianxin.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        """SQLite or PostgreSQL through their async drivers; ``sqlite:///x.db`` and
        ``postgresql://…`` get the driver added."""
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (sqlite+aiosqlite:///./lianxin.db or "
                "postgresql+asyncpg://user@host/db)"
            ) from None
        backend = url.get_backend_name()
        if backend not in _DRIVERS:
            raise ValueError(f"unsupported database '{backend}': use SQLite or PostgreSQL")
        if "+" not in url.drivername:  # no driver named: the async one is meant
            url = url.set(drivername=f"{backend}+{_DRIVERS[backend]}")
            value = url.render_as_string(hide_password=False)
        if url.get_driver_name() != _DRIVERS[backend]:
            raise ValueError(
                f"use {backend}+{_DRIVERS[backend]}://… (not the {url.get_driver_name()} driver)"
            )
        if backend == "sqlite" and (not url.database or url.database == ":memory:"):
            raise ValueError("SQLite needs a file (the web app and the workers share it)")
        return value


class ServerSettings(_Section):
    max_body_bytes: int = Field(65536, gt=0)
    replay_window_s: int = Field(300, gt=0)
    # Logs never carry texts or personal data, at any level.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # /docs and /openapi.json map every admin route: by default only an admin token sees them.
    public_docs: bool = False
    # Reverse proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed. Empty: none, and every caller is the address that connected. Anyone else can
    # write those headers, so a caller's address (the console's sign-in throttle, the audit
    # log) would be whatever they claim.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8); "
                    "'*' is refused: it would let any caller choose its own address"
                ) from None
        return [entry.strip() for entry in value]


class WeChatSettings(_Section):
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
        return not _secret(self.encoding_aes_key)

    @property
    def configured(self) -> bool:
        return any(
            _secret(v) for v in (self.token, self.encoding_aes_key, self.app_secret)
        ) or bool(self.app_id)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        return check_encoding_aes_key(value, "WeChat")


class BridgeSettings(_Section):
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
        return bool(_secret(self.secret) or self.send_url)


class SmsTemplate(_Section):
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


class SmsSettings(_Section):
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


class SecuritySettings(_Section):
    pii_key: SecretStr | None = None
    # Keys that were current before a rotation; still used to read old ciphertexts.
    pii_previous_keys: list[SecretStr] = Field(default_factory=list)


class OutboxSettings(_Section):
    poll_interval_s: float = Field(1.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff_base_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)
    batch_size: int = Field(50, ge=1)
    # Sends in flight at once (to different chats; one chat gets one at a time).
    concurrency: int = Field(16, ge=1)


class BulletinSettings(_Section):
    quiet_hours: str | None = "21:30-07:30"
    daily_cap_per_group: int = Field(3, ge=0)
    missed_run_grace_s: int = Field(3600, ge=0)
    tick_interval_s: float = Field(10.0, gt=0)
    media_dir: str = "media"
    public_base_url: str | None = None
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    # Uploads no bulletin or notice names (a form previewed and never saved, an API upload
    # never used) are deleted this many days after their last upload; None keeps them.
    unused_upload_days: int | None = Field(7, ge=1, le=3650)
    wecom_webhook_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_format(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('must look like "21:30-07:30"')
        return value


class VerificationSettings(_Section):
    roster_match: bool = False
    code_ttl_s: int = Field(300, gt=0)
    max_tries: int = Field(5, ge=1)
    resend_after_s: int = Field(60, ge=0)
    max_requests_per_hour: int = Field(5, ge=1)


class DeadlineSettings(_Section):
    """Seconds to acknowledge per priority, and to answer; each rung of the ladder waits as long."""

    p1_ack_s: int = Field(300, gt=0)
    p2_ack_s: int = Field(1800, gt=0)
    p3_ack_s: int = Field(14400, gt=0)
    answer_s: int = Field(86400, gt=0)
    digest_at: str = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    sweep_interval_s: float = Field(15.0, gt=0)

    def ack_seconds(self, priority: int) -> int:
        return {1: self.p1_ack_s, 2: self.p2_ack_s}.get(priority, self.p3_ack_s)


class InboundSettings(_Section):
    """Accepting and processing inbound events (bot/pipeline.py, docs/performance.md)."""

    # The journal writer waits this long after the first event of a batch for others to join
    # its transaction (group commit), unless max_batch are already waiting.
    gather_ms: float = Field(1.5, ge=0)
    max_batch: int = Field(200, ge=1)
    # The processor claims up to process_batch events at a time and handles them in one
    # transaction, stopping early after slice_ms so that the journal writer gets its turn.
    process_batch: int = Field(16, ge=1)
    slice_ms: float = Field(50.0, gt=0)
    # While requests keep arriving, the processor takes at most this share of the event loop
    # (emergencies excepted): a burst is accepted first and its backlog processed after it.
    process_share: float = Field(0.4, gt=0, le=1)
    # How often an idle processor looks for events journaled by another process.
    poll_interval_s: float = Field(0.5, gt=0)


class IntakeSettings(_Section):
    # Reports of one incident by several residents of a group within this window merge.
    merge_window_s: int = Field(1800, ge=0)
    # The same resident writing again on the same matter within this window merges.
    same_resident_window_s: int = Field(86400, ge=0)
    # Emergency messages from a chat that merge into one ticket get one safety reply there
    # per this window, not one each (a flood must not queue thirty identical replies).
    safety_reply_repeat_s: int = Field(300, ge=0)


_DURATION = re.compile(r"^\s*(\d+)\s*([dhm]?)\s*$")


def parse_duration(value: str | int) -> timedelta:
    """``7d``, ``15d``, ``12h``, ``30m``, or seconds as a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration (7d, 15d, 12h, 30m)")
    unit = {"d": "days", "h": "hours", "m": "minutes", "": "seconds"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


class DisputeDeadlines(_Section):
    """三級調解: the time allowed at each level before a case moves up by itself."""

    village: str | int = "7d"
    station: str | int = "15d"
    county: str | int = "60d"

    @field_validator("village", "station", "county")
    @classmethod
    def _duration(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value


class DisputeSettings(_Section):
    deadlines: DisputeDeadlines = Field(default_factory=DisputeDeadlines)
    # 回訪 after an agreement: days after it, each one due in turn.
    follow_up_days: list[int] = Field(default_factory=lambda: [7, 30])

    @field_validator("follow_up_days")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value) or value != sorted(set(value)):
            raise ValueError("days after the agreement, ascending and positive (e.g. [7, 30])")
        return value


class PlanReason(_Section):
    """Why a household is on a visit plan, in both scripts, and how often it is visited unless
    the plan says otherwise."""

    hant: str = Field(min_length=1, max_length=40)
    hans: str = Field(min_length=1, max_length=40)
    every_days: int = Field(30, ge=1, le=366)


def _default_reasons() -> dict[str, PlanReason]:
    return {
        "living_alone": PlanReason(hant="獨居老人", hans="独居老人"),
        "left_behind_children": PlanReason(hant="留守兒童", hans="留守儿童"),
        "left_behind_elderly": PlanReason(hant="留守老人", hans="留守老人"),
        "severely_ill": PlanReason(hant="重病患者", hans="重病患者"),
        "keep_in_touch": PlanReason(hant="重點關注人員", hans="重点关注人员"),
    }


class VisitSettings(_Section):
    """入戶走訪: the reasons a household may be on a visit plan, when an overdue plan reminds
    the officer and then the station leader, how long a 走訪 choice waits for its answer."""

    plan_reasons: dict[str, PlanReason] = Field(default_factory=_default_reasons)
    remind_after_days: int = Field(7, ge=0, le=365)
    leader_after_days: int = Field(14, ge=0, le=365)
    choice_ttl_s: int = Field(600, ge=30, le=86400)

    @field_validator("plan_reasons")
    @classmethod
    def _reason_keys(cls, value: dict[str, PlanReason]) -> dict[str, PlanReason]:
        if not value:
            raise ValueError("at least one reason is needed")
        for key in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", key):
                raise ValueError(f"{key!r}: keys are lower-case letters, digits and _ (≤ 32)")
        return value

    @model_validator(mode="after")
    def _leader_after_officer(self) -> VisitSettings:
        if self.leader_after_days <= self.remind_after_days:
            raise ValueError("leader_after_days must be later than remind_after_days")
        return self


class LimitSettings(_Section):
    """How much one resident, or one group, may make the bot do (officers are not limited).

    Beyond a limit events are journaled and counted but open nothing new, and the sender is
    told at most once a minute; emergencies always pass. Counts are shared by all instances.
    """

    sender_per_minute: int = Field(12, ge=1)
    sender_per_hour: int = Field(120, ge=1)
    group_per_minute: int = Field(120, ge=1)


class RetentionSettings(_Section):
    """How long texts are kept (``lianxin purge``); None keeps them. Rows stay, texts go."""

    journal_days: int | None = Field(None, ge=1)
    outbox_days: int | None = Field(None, ge=1)
    closed_ticket_days: int | None = Field(None, ge=1)
    # Local time of the daily purge when any of the above is set.
    run_at: str = Field("03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    batch_size: int = Field(1000, ge=1, le=10000)  # ids per UPDATE: bound parameters

    @property
    def configured(self) -> bool:
        return any(
            days is not None
            for days in (self.journal_days, self.outbox_days, self.closed_ticket_days)
        )


class ConsoleSettings(_Section):
    """The bureau console (/console/). The per-account sign-in rules are fixed (CONTRACT §7):
    five failures lock an account for 15 minutes, a session ends after 30 minutes idle. The
    per-address throttle below is the project's own."""

    # How often the overview (總覽) refreshes itself; its refreshes do not count as use.
    refresh_s: int = Field(30, ge=5, le=3600)
    # Failed sign-ins from one address (an IPv6 /64) in one window, across all usernames,
    # after which that address may not try again until the window ends. Counted in the
    # database, so every instance sees the same count.
    login_failures_per_address: int = Field(20, ge=1, le=10000)
    login_window_s: int = Field(900, ge=60, le=86400)


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    timezone: str = "Asia/Shanghai"
    server: ServerSettings = Field(default_factory=ServerSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    bulletins: BulletinSettings = Field(default_factory=BulletinSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    disputes: DisputeSettings = Field(default_factory=DisputeSettings)
    visits: VisitSettings = Field(default_factory=VisitSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def check_secrets(self) -> None:
        """Fail when a configured channel lacks a secret it needs (never a silent default)."""
        missing: list[str] = []
        if not _secret(self.security.pii_key):
            missing.append("security.pii_key")
        else:
            for name, key in [("security.pii_key", self.security.pii_key)] + [
                (f"security.pii_previous_keys[{i}]", k)
                for i, k in enumerate(self.security.pii_previous_keys)
            ]:
                try:
                    decode_key(_secret(key))
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        if self.wechat.configured:
            if not _secret(self.wechat.token):
                missing.append("wechat.token")
            if not self.wechat.app_id:
                missing.append("wechat.app_id")
            if not _secret(self.wechat.app_secret):
                missing.append("wechat.app_secret")
        if _secret(self.wecom.token) or _secret(self.wecom.encoding_aes_key):
            if not _secret(self.wecom.token):
                missing.append("wecom.token")
            if not _secret(self.wecom.encoding_aes_key):
                missing.append("wecom.encoding_aes_key")
        if self.bridge.configured:
            if not _secret(self.bridge.secret):
                missing.append("bridge.secret")
            if not self.bridge.send_url:
                missing.append("bridge.send_url")
        if self.sms.provider == "http" and not self.sms.url:
            missing.append("sms.url")
        if self.sms.gateway:
            missing += self._sms_gateway_missing()
        if missing:
            hints = ", ".join(f"{k} (env {env_name(k)})" for k in missing)
            raise ConfigError(f"missing required setting: {hints}")
        self._check_unsafe()

    def _check_unsafe(self) -> None:
        """Refuse settings that would work but leave a channel open to forgery."""
        secret = _secret(self.bridge.secret)
        if secret and len(secret) < MIN_BRIDGE_SECRET:
            # Anyone who guesses it can post events as any resident or officer.
            raise ConfigError(
                f"bridge.secret is too short ({len(secret)} characters; at least "
                f"{MIN_BRIDGE_SECRET} are needed: it is generated, never typed): make one with "
                "`lianxin keys generate`, "
                f"set it in {env_name('bridge.secret')} and give the bridge the same"
            )
        if self.wechat.configured and self.wechat.plain_mode and not self.wechat.allow_plain_mode:
            raise ConfigError(
                "wechat.encoding_aes_key is not set: WeChat's plain mode signs the URL but not "
                "the message, so a captured request can carry a forged one; choose safe mode "
                "(安全模式) in the Official Account console and set "
                f"{env_name('wechat.encoding_aes_key')}, or accept the risk with "
                "wechat.allow_plain_mode: true"
            )

    def startup_warnings(self) -> list[str]:
        """Allowed but risky choices, for ``lianxin serve`` to log at WARNING when it starts."""
        warnings = []
        if self.wechat.configured and self.wechat.plain_mode and self.wechat.allow_plain_mode:
            warnings.append(
                "wechat.allow_plain_mode is true: WeChat messages arrive unencrypted and their "
                "signature does not cover the body, so a captured request can carry a forged "
                "message; switch the Official Account to safe mode (安全模式) and set "
                f"{env_name('wechat.encoding_aes_key')}"
            )
        if self.server.public_docs:
            warnings.append(
                "server.public_docs is true: /docs and /openapi.json answer without a token"
            )
        return warnings

    def _sms_gateway_missing(self) -> list[str]:
        """What an SMS gateway (aliyun, tencent) needs and is not set."""
        sms = self.sms
        needed = {
            "access_key_id": sms.access_key_id,
            "access_key_secret": _secret(sms.access_key_secret),
            "sign_name": sms.sign_name,
        }
        if sms.provider == "tencent":
            needed["app_id"] = sms.app_id
        missing = [f"sms.{key}" for key, value in needed.items() if not value]
        if "code" not in sms.templates:  # verification codes are what SMS is there for
            missing.append("sms.templates.code")
        return missing


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def secret_value(value: SecretStr | None) -> str:
    """The plain value of an optional secret, '' when unset."""
    return _secret(value)


def decode_key(text: str) -> bytes:
    """Decode a 32-byte key given as base64 (standard or URL-safe) or 64 hex digits."""
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    try:
        raw = base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("must be 32 bytes as base64 or 64 hex digits (lianxin keys generate)")
    return raw


def env_name(dotted: str) -> str:
    """``bridge.secret`` → ``LIANXIN__BRIDGE__SECRET``."""
    return ENV_PREFIX + "__".join(part.upper() for part in dotted.split("."))


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another override")
        node[path[-1]] = _env_value(raw)
    return tree


def _env_value(raw: str) -> Any:
    """An environment value as the settings should see it.

    Kept as the string it is, and pydantic converts it where a field wants a number or a
    boolean ("3", "true"). Read as YAML only for what a string cannot say: a list or mapping
    ("[a, b]") and "null" (clears a key). Reading every value as YAML changed secrets behind
    the operator's back: "012345" is the octal number 5349 to YAML, "0777", "on", "12:30" and
    "1_000" are not strings either, and a value starting with "#" is a comment.
    """
    text = raw.strip()
    if not text or text in ("null", "~"):
        return None
    if text[0] in "[{":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return raw
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


_SECRET_KEYS = {
    ("wechat", "token"),
    ("wechat", "encoding_aes_key"),
    ("wechat", "app_secret"),
    ("bridge", "secret"),
    ("wecom", "token"),
    ("wecom", "encoding_aes_key"),
    ("security", "pii_key"),
    ("sms", "access_key_secret"),
}


def _stringify_secrets(tree: dict[str, Any]) -> None:
    # A numeric-looking token must not turn into an int on the way through YAML.
    for section, key in _SECRET_KEYS:
        node = tree.get(section)
        if isinstance(node, dict) and node.get(key) is not None and not isinstance(node[key], str):
            node[key] = str(node[key])


def config_path(explicit: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$LIANXIN_CONFIG``, else ``./config.yaml`` when it exists."""
    if explicit:
        return Path(explicit)
    if environ.get("LIANXIN_CONFIG"):
        return Path(environ["LIANXIN_CONFIG"])
    default = Path("config.yaml")
    return default if default.exists() else None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    require_secrets: bool = True,
    read_file: bool = True,
) -> Settings:
    """Read the config file, apply environment and explicit overrides, validate.

    ``read_file=False`` ignores every config file (the demo runs on its own settings).
    """
    environ = os.environ if environ is None else environ
    file = config_path(path, environ) if read_file else None
    data: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: top level must be a mapping")
        data = loaded or {}
        for section, key in sorted({*_SECRET_KEYS, ("security", "pii_previous_keys")}):
            if isinstance(data.get(section), dict) and data[section].get(key):
                # CONTRACT §1: secrets come from the environment only. A config file is copied,
                # mailed and committed; the environment of the service is not.
                raise ConfigError(
                    f"{section}.{key} is set in {file}: secrets come from the environment only; "
                    f"remove it there and set {env_name(f'{section}.{key}')}"
                )
    data = _merge(data, _env_overrides(environ))
    if overrides:
        data = _merge(data, overrides)
    _stringify_secrets(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    if require_secrets:
        settings.check_secrets()
    return settings


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        parts.append(f"{key}: {err['msg']}")
    return "invalid configuration: " + "; ".join(parts)
