"""Bulletin options read from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.runtime import Runtime

BULLETIN_PRIORITY = 9
# A service down for long with a frequent cron: record at most this many missed runs per tick.
MAX_CATCH_UP = 100


@dataclass(frozen=True)
class BulletinOptions:
    """Bulletin settings, including keys proposed for ``BulletinSettings`` (read if present)."""

    quiet_hours: str | None
    daily_cap_per_group: int
    missed_run_grace_s: int
    tick_interval_s: float = 10.0
    media_dir: Path = Path("media")
    public_base_url: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    wecom_webhook_url: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

    @classmethod
    def of(cls, runtime: Runtime) -> BulletinOptions:
        """From ``settings.bulletins``; ``runtime.extras["bulletins.<key>"]`` overrides (tests,
        the demo), and keys the settings do not have yet take their defaults."""
        s = runtime.settings.bulletins

        def pick(name: str, default: Any) -> Any:
            key = f"bulletins.{name}"
            value = runtime.extras[key] if key in runtime.extras else getattr(s, name, None)
            return default if value is None else value

        return cls(
            quiet_hours=s.quiet_hours,
            daily_cap_per_group=s.daily_cap_per_group,
            missed_run_grace_s=s.missed_run_grace_s,
            tick_interval_s=float(pick("tick_interval_s", 10.0)),
            media_dir=Path(pick("media_dir", "media")),
            public_base_url=pick("public_base_url", None),
            max_upload_bytes=int(pick("max_upload_bytes", 20 * 1024 * 1024)),
            wecom_webhook_url=pick("wecom_webhook_url", cls.wecom_webhook_url),
        )
