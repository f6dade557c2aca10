"""The product's settings sections (database, server, security, outbox, bulletins, intake,
disputes, visits, limits, retention, console)."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.settings.base import Section, check_http_url, check_required_http_url

# The async drivers Lianxin runs on, and what a URL without one means.
_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


class DatabaseSettings(Section):
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


class ServerSettings(Section):
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


class SecuritySettings(Section):
    pii_key: SecretStr | None = None
    # Keys that were current before a rotation; still used to read old ciphertexts.
    pii_previous_keys: list[SecretStr] = Field(default_factory=list)


class OutboxSettings(Section):
    poll_interval_s: float = Field(1.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    # A message that failed for a passing reason (timeouts, 5xx) is given up only when it has
    # had max_attempts tries AND is this old: an outage of a few hours loses nothing.
    give_up_after_s: float = Field(24 * 3600, ge=0)
    backoff_base_s: float = Field(2.0, gt=0)
    backoff_max_s: float = Field(600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)
    batch_size: int = Field(50, ge=1)
    # Sends in flight at once (to different chats; one chat gets one at a time).
    concurrency: int = Field(16, ge=1)


class BulletinSettings(Section):
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

    @property
    def media_folder(self) -> Path:
        """Where uploads are stored (``media_dir``; relative to the working directory)."""
        return Path(self.media_dir)

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return check_http_url(value)

    @field_validator("wecom_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        return check_required_http_url(value)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_format(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('must look like "21:30-07:30"')
        return value


class VerificationSettings(Section):
    roster_match: bool = False
    code_ttl_s: int = Field(300, gt=0)
    max_tries: int = Field(5, ge=1)
    resend_after_s: int = Field(60, ge=0)
    max_requests_per_hour: int = Field(5, ge=1)
    max_requests_per_day: int = Field(10, ge=1)


class DeadlineSettings(Section):
    """Seconds to acknowledge per priority, and to answer; each rung of the ladder waits as long."""

    p1_ack_s: int = Field(300, gt=0)
    p2_ack_s: int = Field(1800, gt=0)
    p3_ack_s: int = Field(14400, gt=0)
    answer_s: int = Field(86400, gt=0)
    digest_at: str = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # 滿意 / 不滿意 count within this long after the close (docs/decisions.md).
    rating_window_s: int = Field(7 * 86400, gt=0)
    sweep_interval_s: float = Field(15.0, gt=0)

    def ack_seconds(self, priority: int) -> int:
        return {1: self.p1_ack_s, 2: self.p2_ack_s}.get(priority, self.p3_ack_s)


class InboundSettings(Section):
    """Accepting and processing inbound events (bot/pipeline.py, docs/performance.md)."""

    # The journal writer waits this long after the first event of a batch for others to join
    # its transaction (group commit), unless max_batch are already waiting or the events came
    # while the writer was busy with the last batch (they have waited already).
    gather_ms: float = Field(1.5, ge=0)
    max_batch: int = Field(200, ge=1)
    # The processor claims up to process_batch events at a time and handles them in one
    # transaction, stopping early after slice_ms so that the journal writer gets its turn.
    process_batch: int = Field(16, ge=1)
    # On SQLite a batch runs without yielding the event loop (statements run inline): every
    # request and send waits for the slice, so it is short (bench/wire.py, docs/performance.md:
    # 50 ms gave accept p99 160 ms on a loaded machine, 20 ms 120; with the share below at 0.25,
    # 10 ms gave 90-93 ms on a quiet one against 102-108 for 20 ms and 0.4).
    slice_ms: float = Field(10.0, gt=0)
    # While requests keep arriving, the processor takes at most this share of the event loop
    # (emergencies excepted): a burst is accepted first and its backlog processed after it.
    process_share: float = Field(0.25, gt=0, le=1)
    # Catching up on a backlog (no request for catch_up_after_s, none waiting for its reply,
    # no emergency or urgent send under way), batches are larger and run longer: nothing waits
    # for the event loop then, and a batch's own statements are spread over more events
    # (bench/wire.py, quiet: processing 0.124–0.133 of the floor without, 0.139–0.153 with;
    # after 0.05 s of quiet, batches of this size came back during bursts and raised p99).
    catch_up_after_s: float = Field(0.1, ge=0)
    catch_up_batch: int = Field(64, ge=1)
    catch_up_slice_ms: float = Field(60.0, gt=0)
    # How often an idle processor looks for events journaled by another process.
    poll_interval_s: float = Field(0.5, gt=0)
    # While the outbox's urgent lane has safety replies or P1 pages to send, ordinary
    # processing waits for it up to this long: each of the lane's sends takes several turns
    # of the event loop, and a batch in the loop makes every turn that much longer.
    urgent_yield_s: float = Field(0.5, ge=0)
    # `lianxin serve` accepts in its own process and journals, processes, delivers and runs
    # the scheduler in a second one it starts beside it (bot/pipeline_link.py): each has a
    # core of its own. False: all in one process (one core; `lianxin demo` always is).
    separate_process: bool = True


class IntakeSettings(Section):
    # Reports of one incident by several residents of a group within this window merge.
    merge_window_s: int = Field(1800, ge=0)
    # The same resident writing again on the same matter within this window merges.
    same_resident_window_s: int = Field(86400, ge=0)
    # Emergency messages from a chat that merge into one ticket get one safety reply there
    # per this window, not one each (a flood must not queue thirty identical replies).
    safety_reply_repeat_s: int = Field(300, ge=0)
    # One sender's open alarms in one chat within merge_window_s that are each a P1 with its
    # own pages; the next ones join the latest (its safety reply still goes at once): a sender
    # flooding different "emergencies" paged the duty officer and the leader twice each time.
    alarms_per_sender: int = Field(3, ge=1)


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


class DisputeDeadlines(Section):
    """三級調解: the time allowed at each level before a case moves up by itself."""

    village: str | int = "7d"
    station: str | int = "15d"
    county: str | int = "60d"

    @field_validator("village", "station", "county")
    @classmethod
    def _duration(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value


class DisputeSettings(Section):
    deadlines: DisputeDeadlines = Field(default_factory=DisputeDeadlines)
    # 回訪 after an agreement: days after it, each one due in turn.
    follow_up_days: list[int] = Field(default_factory=lambda: [7, 30])

    @field_validator("follow_up_days")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value) or value != sorted(set(value)):
            raise ValueError("days after the agreement, ascending and positive (e.g. [7, 30])")
        return value


class PlanReason(Section):
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


class VisitSettings(Section):
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


class LimitSettings(Section):
    """How much one resident, or one group, may make the bot do (officers are not limited).

    Beyond a limit events are journaled and counted but open nothing new, and the sender is
    told at most once a minute; emergencies always pass. Counts are shared by all instances.
    """

    sender_per_minute: int = Field(12, ge=1)
    sender_per_hour: int = Field(120, ge=1)
    group_per_minute: int = Field(120, ge=1)


class RetentionSettings(Section):
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


class ConsoleSettings(Section):
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
