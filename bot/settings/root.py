"""``Settings``: every section, and the checks that span sections (secrets a channel needs)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    field_validator,
)

from bot.settings.base import (
    MIN_BRIDGE_SECRET,
    ConfigError,
    Section,
    decode_key,
    env_name,
    secret_value,
)
from bot.settings.channels import BridgeSettings, SmsSettings, WeChatSettings, WeComSettings
from bot.settings.sections import (
    BulletinSettings,
    ConsoleSettings,
    DatabaseSettings,
    DeadlineSettings,
    DisputeSettings,
    InboundSettings,
    IntakeSettings,
    LimitSettings,
    OutboxSettings,
    RetentionSettings,
    SecuritySettings,
    ServerSettings,
    VerificationSettings,
    VisitSettings,
)


class Settings(Section):
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
        if not secret_value(self.security.pii_key):
            missing.append("security.pii_key")
        else:
            for name, key in [("security.pii_key", self.security.pii_key)] + [
                (f"security.pii_previous_keys[{i}]", k)
                for i, k in enumerate(self.security.pii_previous_keys)
            ]:
                try:
                    decode_key(secret_value(key))
                except ValueError as exc:
                    raise ConfigError(f"{name}: {exc}") from None
        if self.wechat.configured:
            if not secret_value(self.wechat.token):
                missing.append("wechat.token")
            if not self.wechat.app_id:
                missing.append("wechat.app_id")
            if not secret_value(self.wechat.app_secret):
                missing.append("wechat.app_secret")
        if secret_value(self.wecom.token) or secret_value(self.wecom.encoding_aes_key):
            if not secret_value(self.wecom.token):
                missing.append("wecom.token")
            if not secret_value(self.wecom.encoding_aes_key):
                missing.append("wecom.encoding_aes_key")
        if self.bridge.configured:
            if not secret_value(self.bridge.secret):
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
        secret = secret_value(self.bridge.secret)
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
        if not self.bulletins.public_base_url:
            warnings.append(
                "bulletins.public_base_url is not set: photos and videos uploaded for bulletins "
                "and urgent notices reach the groups as relative /media/ URLs that nobody "
                "outside can open"
            )
        return warnings

    def _sms_gateway_missing(self) -> list[str]:
        """What an SMS gateway (aliyun, tencent) needs and is not set."""
        sms = self.sms
        needed = {
            "access_key_id": sms.access_key_id,
            "access_key_secret": secret_value(sms.access_key_secret),
            "sign_name": sms.sign_name,
        }
        if sms.provider == "tencent":
            needed["app_id"] = sms.app_id
        missing = [f"sms.{key}" for key, value in needed.items() if not value]
        if "code" not in sms.templates:  # verification codes are what SMS is there for
            missing.append("sms.templates.code")
        return missing
