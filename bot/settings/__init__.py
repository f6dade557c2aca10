"""Configuration: a YAML file plus ``LIANXIN__SECTION__KEY`` environment overrides.

Validated with pydantic at start-up. ``load_settings`` raises :class:`ConfigError` whose message
names the offending key, so ``lianxin serve`` can stop with a one-line explanation.

Split by concern: ``base`` (the shared model, secrets, keys), ``sections`` (the product's
sections), ``channels`` (WeChat, bridge, SMS, WeCom), ``root`` (``Settings``) and ``loading``.
Callers import from the package.
"""

from __future__ import annotations

from bot.settings.base import (
    ENV_PREFIX,
    MIN_BRIDGE_SECRET,
    ConfigError,
    Section,
    decode_key,
    env_name,
    secret_value,
)
from bot.settings.channels import (
    SMS_API_BASE_URLS,
    BridgeSettings,
    SmsSettings,
    SmsTemplate,
    WeChatSettings,
    WeComSettings,
    check_encoding_aes_key,
)
from bot.settings.loading import config_path, load_settings
from bot.settings.root import Settings
from bot.settings.sections import (
    BulletinSettings,
    ConsoleSettings,
    DatabaseSettings,
    DeadlineSettings,
    DisputeDeadlines,
    DisputeSettings,
    InboundSettings,
    IntakeSettings,
    LimitSettings,
    OutboxSettings,
    PlanReason,
    RetentionSettings,
    SecuritySettings,
    ServerSettings,
    VerificationSettings,
    VisitSettings,
    parse_duration,
)

__all__ = [
    "ENV_PREFIX",
    "MIN_BRIDGE_SECRET",
    "SMS_API_BASE_URLS",
    "BridgeSettings",
    "BulletinSettings",
    "ConfigError",
    "ConsoleSettings",
    "DatabaseSettings",
    "DeadlineSettings",
    "DisputeDeadlines",
    "DisputeSettings",
    "InboundSettings",
    "IntakeSettings",
    "LimitSettings",
    "OutboxSettings",
    "PlanReason",
    "RetentionSettings",
    "Section",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "SmsSettings",
    "SmsTemplate",
    "VerificationSettings",
    "VisitSettings",
    "WeChatSettings",
    "WeComSettings",
    "check_encoding_aes_key",
    "config_path",
    "decode_key",
    "env_name",
    "load_settings",
    "parse_duration",
    "secret_value",
]
