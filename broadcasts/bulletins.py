"""Bulletins: content, schedules, runs and deliveries.

How a bulletin goes out
    ``Bulletin.next_run_at`` is the schedule's state. :func:`bulletin_tick` (run by an APScheduler
    interval job, and by tests with a manual clock) does everything due at ``runtime.clock.now()``:

    1. *Materialise*: for every active bulletin whose ``next_run_at`` has come, insert one
       ``BulletinRun`` per due time (``INSERT … ON CONFLICT DO NOTHING`` under the unique
       ``(bulletin_id, due_at)``) and move ``next_run_at`` on with a conditional update. Due times
       older than ``bulletins.missed_run_grace_s`` (the service was down) are recorded ``missed``.
    2. *Fan out*: each pending run is claimed with a conditional update and, in the same
       transaction, gets one ``BulletinDelivery`` and one outbox row per target group (priority 9,
       idempotency key ``bulletin-<run>-<group>``). Quiet hours and the daily cap only move the
       outbox row's ``not_before`` (the reason is kept on the delivery), so nothing else has to
       remember to release it later.

    A crash before the commit leaves the run pending and the next tick does it again; after the
    commit the outbox owns delivery (retries, backoff, the same key on every try). So a restart
    neither loses nor repeats a run, and the bridge sees every (run, group) once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Media, OutboundMessage, storable_text
from bot.routing import station_subtree
from bot.runtime import Runtime
from broadcasts.outbox import enqueue
from handlers.texts import detect_script
from models.base import rowcount, table_of
from models.bulletins import (
    BULLETIN_CATEGORIES,
    Bulletin,
    BulletinCategory,
    BulletinDelivery,
    BulletinRun,
)
from models.directory import Group, Station
from models.outbox import OutboxMessage

log = logging.getLogger("lianxin.bulletins")

BULLETIN_PRIORITY = 9
# A service down for long with a frequent cron: record at most this many missed runs per tick.
MAX_CATCH_UP = 100
# Outbox statuses the worker never claims: a paused bulletin's rows wait as ``held``, a cancelled
# bulletin's or recalled alert's unsent rows end as ``cancelled``.
HELD, CANCELLED = "held", "cancelled"


# --- options not (yet) in settings.py ---------------------------------------------------------
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


# --- the edge: what the API and the CLI accept -------------------------------------------------
class InputSpec(BaseModel):
    """What the admin API and the CLI take in: strict about keys and about text."""

    # A misspelt key is a mistake worth a 422, not something to ignore silently.
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # NUL (PostgreSQL refuses it) or a lone surrogate (no encoding takes it) would be a
        # 500 at the database; it is the caller's mistake, a 422.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and not storable_text(t) for t in texts):
            raise PydanticCustomError(
                "unstorable", "NUL characters and lone surrogates are not allowed"
            )
        return value


class MediaSpec(InputSpec):
    type: Literal["video", "image", "file", "link"]
    url: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not (value.startswith(("https://", "http://")) or value.startswith("/media/")):
            raise PydanticCustomError(
                "media_url", "must be an http(s) URL or /media/<name> from POST /api/v1/media"
            )
        return value


class TargetSpec(InputSpec):
    """Exactly one of ``groups``, ``tags``, ``stations`` (with their sub-stations), ``all``."""

    groups: list[str] | None = None
    tags: list[str] | None = None
    stations: list[str] | None = None
    all: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        given = [k for k in ("groups", "tags", "stations", "all") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "targets_one", "give exactly one of groups, tags, stations, all"
            )
        key = given[0]
        if key == "all" and self.all is not True:
            raise PydanticCustomError("targets_one", "all must be true")
        if key != "all" and not getattr(self, key):
            raise PydanticCustomError(
                "targets_empty", "{key} is empty: name at least one", {"key": key}
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def _aware(value: datetime | None, what: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise PydanticCustomError(
            "needs_offset",
            "{what} needs a UTC offset, e.g. 2026-12-01T08:00:00+08:00",
            {"what": what},
        )
    return value.astimezone(UTC) if value is not None else None


_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _crontab_dow(field: str) -> str:
    """Crontab's day-of-week numbers (0 or 7 Sunday, 1 Monday) as names.

    APScheduler 3's ``from_crontab`` passes the field through, and APScheduler counts 0 as
    Monday: "0 9 * * 1" would fire on Tuesdays. Numbers, ranges and steps are expanded to names.
    """
    out: list[str] = []
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        if not any(ch.isdigit() for ch in base) and not step_text:
            out.append(item)  # *, names, name ranges: the same in both
            continue
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = int(base)
            hi = 6 if step_text else lo
        step = int(step_text) if step_text else 1
        if not (0 <= lo <= 7 and 0 <= hi <= 7 and lo <= hi and step >= 1):
            raise ValueError(f"day of week {item!r} is out of range 0-7")
        out.extend(_DOW_NAMES[v] for v in range(lo, hi + 1, step))
    return ",".join(dict.fromkeys(out))


def parse_cron(expr: str, tz: ZoneInfo | str = "UTC") -> CronTrigger:
    """A five-field crontab expression as an APScheduler trigger; ValueError names the problem.

    Standard crontab meaning, evaluated in ``tz``. One difference from cron(8): when both day of
    month and day of week are restricted, both must match (APScheduler's rule), not either.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError('must have five fields "m h dom mon dow"')
    try:
        fields[4] = _crontab_dow(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=tz)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not a valid cron expression: {exc}") from None


class ScheduleSpec(InputSpec):
    """``{"at": ISO-8601 with offset}`` or ``{"cron": "m h dom mon dow", "start"?, "end"?}``."""

    at: datetime | None = None
    cron: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("at", "start", "end", mode="before")
    @classmethod
    def _written_out(cls, value: Any) -> Any:
        # pydantic would take 1764380000 as a time; the contract asks for ISO-8601.
        if value is not None and not isinstance(value, str | datetime):
            raise PydanticCustomError(
                "needs_offset", "must be ISO-8601 with a UTC offset, e.g. 2026-12-01T08:00:00+08:00"
            )
        return value

    @field_validator("at", "start", "end")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "the time")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ValueError as exc:
                raise PydanticCustomError(
                    "cron_invalid", "{reason}", {"reason": str(exc)}
                ) from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.at is None) == (self.cron is None):
            raise PydanticCustomError("schedule_one", "give exactly one of at, cron")
        if self.at is not None and (self.start or self.end):
            raise PydanticCustomError("schedule_one", "start and end go with cron, not at")
        if self.start and self.end and self.end <= self.start:
            raise PydanticCustomError("end_before_start", "end must be after start")
        return self


class BulletinSpec(InputSpec):
    """A bulletin as the API (``POST /api/v1/bulletins``) and ``lianxin bulletin add`` take it."""

    title: str = Field(min_length=1, max_length=200)
    # One list of categories (models.bulletins): the API's enum, the console's picker.
    category: BulletinCategory
    text: str = Field(min_length=1, max_length=4000)
    media: MediaSpec | None = None
    cover: str | None = Field(default=None, max_length=1000)
    targets: TargetSpec
    schedule: ScheduleSpec

    @field_validator("title", "text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value


class BulletinPatch(InputSpec):
    """``PATCH``: any subset of a bulletin's fields; edits apply to runs not fanned out yet."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = None
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    media: MediaSpec | None = None
    cover: str | None = Field(default=None, max_length=1000)
    targets: TargetSpec | None = None
    schedule: ScheduleSpec | None = None

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is not None and value not in BULLETIN_CATEGORIES:
            raise ValueError(f"must be one of {', '.join(BULLETIN_CATEGORIES)}")
        return value


class Problem(Exception):
    """A request that is well-formed but wrong; ``field`` is a dotted path into the body.

    ``code`` and ``values`` say the same for a caller that words it itself (the console, in
    Chinese): ``unknown`` (``names``), ``past``, ``never_fires``, ``outside_scope``
    (``names``), ``scope_tags``, ``scope_all``.
    """

    def __init__(self, field: str, message: str, *, code: str = "", **values: Any) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code
        self.values = values


class Conflict(Exception):
    """An action the bulletin's state does not allow (resume a cancelled one)."""


# --- targets -----------------------------------------------------------------------------------
async def resolve_targets(
    session: AsyncSession, targets: dict[str, Any], *, field: str = "targets"
) -> list[Group]:
    """The groups a target names, in id order; :class:`Problem` names unknown entries."""
    query = select(Group).order_by(Group.id)
    if targets.get("all"):
        return list((await session.scalars(query)).all())
    if "groups" in targets:
        wanted = list(dict.fromkeys(targets["groups"]))
        groups = list((await session.scalars(query.where(Group.id.in_(wanted)))).all())
        unknown = sorted(set(wanted) - {g.id for g in groups})
        if unknown:
            raise Problem(
                f"{field}.groups",
                f"unknown group(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        return groups
    if "tags" in targets:
        tags = set(targets["tags"])
        # Tags are a JSON list per group: filter in Python, the directory is small.
        groups = [g for g in (await session.scalars(query)).all() if tags & set(g.tags or [])]
        unknown = sorted(tags - {t for g in groups for t in g.tags or []})
        if unknown:
            raise Problem(
                f"{field}.tags",
                f"unknown tag(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        return groups
    if "stations" in targets:
        wanted = list(dict.fromkeys(targets["stations"]))
        known = set((await session.scalars(select(Station.id).where(Station.id.in_(wanted)))).all())
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise Problem(
                f"{field}.stations",
                f"unknown station(s): {', '.join(unknown)}",
                code="unknown",
                names=unknown,
            )
        stations = await station_subtree(session, wanted)
        return list((await session.scalars(query.where(Group.station_id.in_(stations)))).all())
    raise Problem(field, "give exactly one of groups, tags, stations, all")


def check_within(
    targets: dict[str, Any],
    groups: Sequence[Group],
    within: frozenset[str] | None,
    *,
    field: str = "targets",
) -> None:
    """An author limited to some stations (a leader: their station and those below it) may
    target those stations or their groups, nothing else; ``within`` None is the county.

    Tags and ``all`` are refused to them: a tag is resolved county-wide at every run, so it
    could reach another station's groups, now or once the directory changes.
    """
    if within is None:
        return
    if targets.get("all"):
        raise Problem(field, "only an admin may target every group", code="scope_all")
    if "tags" in targets:
        raise Problem(f"{field}.tags", "only an admin may target by tag", code="scope_tags")
    where = f"{field}.stations" if "stations" in targets else f"{field}.groups"
    outside = [s for s in targets.get("stations", []) if s not in within]
    outside += [g.id for g in groups if g.station_id not in within]
    if outside:
        raise Problem(
            where,
            f"outside the author's stations: {', '.join(outside)}",
            code="outside_scope",
            names=outside,
        )


async def reached_groups(session: AsyncSession, targets: dict[str, Any]) -> list[Group]:
    """The groups a stored target reaches today; entries that have left the directory since
    reach nobody (a run sends to the rest)."""
    try:
        return await resolve_targets(session, targets)
    except Problem:
        return await _existing_targets(session, targets)


async def within_reach(
    session: AsyncSession, bulletin: Bulletin, within: frozenset[str] | None
) -> bool:
    """Whether an author limited to ``within`` may act on ``bulletin`` (pause, resume,
    cancel): everything it targets lies within their stations."""
    if within is None:
        return True
    try:
        check_within(bulletin.targets, await reached_groups(session, bulletin.targets), within)
    except Problem:
        return False
    return True


def channel_for(group: Group) -> str:
    """Groups with a WeCom group-robot webhook are sent through it; the rest via the bridge."""
    return "wecom_robot" if group.wecom_webhook else "bridge"


async def group_timezones(session: AsyncSession, default: str) -> dict[str, ZoneInfo]:
    """Station id → its timezone (stations may carry their own; else the configured one)."""
    rows = (await session.execute(select(Station.id, Station.timezone))).all()
    return {sid: ZoneInfo(tz or default) for sid, tz in rows}


# --- schedule maths ----------------------------------------------------------------------------
def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def first_run(bulletin: Bulletin, *, tz: ZoneInfo, at_or_after: datetime) -> datetime | None:
    """The first due time at or after ``at_or_after`` (within start/end), or None."""
    if bulletin.schedule_kind == "at":
        return bulletin.run_at
    assert bulletin.cron is not None
    start = max(at_or_after, bulletin.starts_at or at_or_after)
    fire = parse_cron(bulletin.cron, tz).get_next_fire_time(None, start.astimezone(tz))
    if fire is None or (bulletin.ends_at is not None and fire > bulletin.ends_at):
        return None
    return _utc(fire)


def next_after(bulletin: Bulletin, *, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The due time strictly after ``after``, or None (one-off, or past the end)."""
    if bulletin.schedule_kind == "at":
        return None
    assert bulletin.cron is not None
    trigger = parse_cron(bulletin.cron, tz)
    local = after.astimezone(tz)
    # APScheduler treats ``previous_fire_time`` as done: the answer is strictly later.
    fire = trigger.get_next_fire_time(local, local)
    if bulletin.starts_at is not None and fire is not None and fire < bulletin.starts_at:
        fire = trigger.get_next_fire_time(None, bulletin.starts_at.astimezone(tz))
    if fire is None or (bulletin.ends_at is not None and fire > bulletin.ends_at):
        return None
    return _utc(fire)


def upcoming(bulletin: Bulletin, *, tz: ZoneInfo, count: int = 5) -> list[datetime]:
    """The next ``count`` due times from ``next_run_at`` on (for previews)."""
    out: list[datetime] = []
    t = bulletin.next_run_at
    while t is not None and len(out) < count:
        out.append(t)
        t = next_after(bulletin, tz=tz, after=t)
    return out


# --- quiet hours and the daily cap -------------------------------------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time; ``start > end`` crosses midnight (21:30-07:30)."""

    start: time
    end: time

    @classmethod
    def parse(cls, spec: str | None) -> QuietHours | None:
        if not spec:
            return None
        a, b = spec.split("-")
        window = cls(time.fromisoformat(a), time.fromisoformat(b))
        return None if window.start == window.end else window

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, local: datetime) -> datetime:
        """When the quiet period that ``local`` falls in ends (local, aware)."""
        candidate = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        return candidate if candidate > local else candidate + timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    """When a bulletin may reach a group, the local day it counts against, and why it waits."""

    not_before: datetime
    slot_date: date
    reason: str | None


def plan_slot(
    at: datetime,
    *,
    tz: ZoneInfo,
    quiet: QuietHours | None,
    cap: int,
    taken: Callable[[date], int],
) -> Slot:
    """The earliest time at or after ``at`` outside quiet hours on a local day under the cap.

    ``cap`` 0 means no cap. ``taken(day)`` is how many bulletins the group already has that day.
    """
    local = at.astimezone(tz)
    reason: str | None = None
    if quiet is not None and quiet.contains(local.time()):
        local = quiet.end_after(local)
        reason = f"quiet_hours: waits until {local:%Y-%m-%d %H:%M} local time"
    day = local.date()
    if cap > 0 and taken(day) >= cap:
        first_full = day
        while taken(day) >= cap:
            day += timedelta(days=1)
        local = datetime.combine(day, time(0), tzinfo=tz)
        if quiet is not None and quiet.contains(local.time()):
            local = quiet.end_after(local)
        reason = (
            f"daily_cap: {cap} bulletins already on {first_full.isoformat()}, "
            f"waits until {local:%Y-%m-%d %H:%M} local time"
        )
    return Slot(max(local.astimezone(UTC), at), day, reason)


async def cap_counts(session: AsyncSession, *, since: date) -> Counter[tuple[str, date]]:
    """Bulletins per (group, local day) from ``since`` on, not counting cancelled ones."""
    rows = await session.execute(
        select(BulletinDelivery.group_id, BulletinDelivery.slot_date, func.count())
        .where(BulletinDelivery.slot_date >= since, BulletinDelivery.status != CANCELLED)
        .group_by(BulletinDelivery.group_id, BulletinDelivery.slot_date)
    )
    return Counter({(g, d): int(n) for g, d, n in rows.all()})


def cap_taken(counts: Counter[tuple[str, date]], group_id: str, day: date) -> int:
    """Bulletins already planned in ``group_id`` on ``day`` (what :func:`plan_slot` caps)."""
    return counts[(group_id, day)]


# --- messages ----------------------------------------------------------------------------------
def public_url(url: str, options: BulletinOptions) -> str:
    """Uploaded media are served at ``/media/…``; channels need an absolute URL."""
    if url.startswith("/") and options.public_base_url:
        return options.public_base_url.rstrip("/") + url
    return url


def bulletin_message(
    runtime: Runtime, bulletin: Bulletin, group: Group, options: BulletinOptions
) -> OutboundMessage:
    """Exactly what a group receives: the admin's title and text, and the media or cover."""
    script = detect_script(bulletin.title + bulletin.text)
    text = runtime.texts.render(
        "bulletin_message", script, title=bulletin.title, text=bulletin.text
    )
    media: Media | None = None
    if bulletin.media:
        m = bulletin.media
        media = Media(m["type"], public_url(m["url"], options), m.get("title"))
    elif bulletin.cover:
        # The bridge contract carries one media item: a cover alone goes as the image.
        media = Media("image", public_url(bulletin.cover, options), bulletin.title)
    extra: dict[str, Any] = {}
    if group.wecom_webhook:
        extra["webhook"] = group.wecom_webhook
        if bulletin.cover:
            extra["cover"] = public_url(bulletin.cover, options)
    return OutboundMessage(
        channel=channel_for(group),
        text=text,
        group_id=group.id,
        media=media,
        priority=BULLETIN_PRIORITY,
        extra=extra,
    )


# --- service functions (keyword-only; they never commit) ---------------------------------------
def _schedule_columns(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "schedule_kind": "at" if spec.at is not None else "cron",
        "run_at": spec.at,
        "cron": spec.cron,
        "starts_at": spec.start,
        "ends_at": spec.end,
    }


def _check_schedule(bulletin: Bulletin, *, tz: ZoneInfo, now: datetime) -> datetime:
    """The first due time of a new or changed schedule; :class:`Problem` if there is none."""
    if bulletin.schedule_kind == "at":
        assert bulletin.run_at is not None
        if bulletin.run_at < now:
            raise Problem("schedule.at", f"is in the past (now {now.isoformat()})", code="past")
        return bulletin.run_at
    first = first_run(bulletin, tz=tz, at_or_after=now)
    if first is None:
        field = "schedule.end" if bulletin.ends_at is not None else "schedule.cron"
        raise Problem(field, "the schedule never fires from now on", code="never_fires")
    return first


async def build_bulletin(
    session: AsyncSession,
    *,
    spec: BulletinSpec,
    tz: ZoneInfo,
    created_by: str,
    now: datetime,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """A new bulletin checked against the directory, the clock and the author's stations
    (``within``, see :func:`check_within`), not stored: what :func:`create_bulletin` saves
    and what a preview of a draft shows. :class:`Problem` names what is wrong."""
    targets = spec.targets.as_dict()
    groups = await resolve_targets(session, targets)
    check_within(targets, groups, within)
    bulletin = Bulletin(
        title=spec.title,
        category=spec.category,
        text=spec.text,
        media=spec.media.model_dump() if spec.media else None,
        cover=spec.cover,
        targets=spec.targets.as_dict(),
        status="active",
        created_by=created_by,
        created_at=now,
        updated_at=now,
        **_schedule_columns(spec.schedule),
    )
    bulletin.next_run_at = _check_schedule(bulletin, tz=tz, now=now)
    return bulletin


async def create_bulletin(
    session: AsyncSession,
    *,
    spec: BulletinSpec,
    tz: ZoneInfo,
    created_by: str,
    now: datetime,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """Validate targets, schedule and scope (:func:`build_bulletin`), then store."""
    bulletin = await build_bulletin(
        session, spec=spec, tz=tz, created_by=created_by, now=now, within=within
    )
    session.add(bulletin)
    await session.flush()
    return bulletin


async def update_bulletin(
    session: AsyncSession,
    *,
    bulletin: Bulletin,
    patch: BulletinPatch,
    tz: ZoneInfo,
    now: datetime,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """Apply a PATCH. Runs already fanned out keep what they sent; later runs use the edit.
    New targets are held to the editor's stations (``within``, as :func:`check_within`)."""
    if bulletin.status == "cancelled":
        raise Conflict("the bulletin is cancelled")
    given = patch.model_fields_set
    if patch.targets is not None:
        check_within(
            patch.targets.as_dict(),
            await resolve_targets(session, patch.targets.as_dict()),
            within,
        )
        bulletin.targets = patch.targets.as_dict()
    for name in ("title", "category", "text", "cover"):
        if name in given and (value := getattr(patch, name)) is not None:
            setattr(bulletin, name, value)
    if "cover" in given and patch.cover is None:
        bulletin.cover = None
    if "media" in given:
        bulletin.media = patch.media.model_dump() if patch.media else None
    if patch.schedule is not None:
        for name, value in _schedule_columns(patch.schedule).items():
            setattr(bulletin, name, value)
        first = _check_schedule(bulletin, tz=tz, now=now)
        if bulletin.status in ("active", "finished"):
            bulletin.status = "active"
            bulletin.next_run_at = first
    bulletin.updated_at = now
    return bulletin


def replacing(spec: BulletinSpec) -> BulletinPatch:
    """A patch that makes a bulletin say, reach and run exactly as ``spec`` (the console's
    編輯 sends the whole form); its cover stays."""
    return BulletinPatch(
        title=spec.title,
        category=spec.category,
        text=spec.text,
        media=spec.media,
        targets=spec.targets,
        schedule=spec.schedule,
    )


def _keys_of(bulletin_id: int) -> Any:
    return select(BulletinDelivery.idempotency_key).where(
        BulletinDelivery.bulletin_id == bulletin_id
    )


async def pause_bulletin(session: AsyncSession, *, bulletin: Bulletin, now: datetime) -> int:
    """No new runs; deliveries not yet sent wait as ``held``. Returns how many were held."""
    if bulletin.status not in ("active", "finished", "paused"):
        raise Conflict(f"cannot pause a {bulletin.status} bulletin")
    bulletin.status, bulletin.updated_at = "paused", now
    # Conditional on ``pending``: a row the worker already took goes out as it is.
    held = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.idempotency_key.in_(_keys_of(bulletin.id)))
        .where(OutboxMessage.status == "pending")
        .values(status=HELD)
    )
    await session.execute(
        update(BulletinDelivery)
        .where(BulletinDelivery.bulletin_id == bulletin.id)
        .where(
            BulletinDelivery.idempotency_key.in_(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.status == HELD)
            )
        )
        .values(status=HELD)
    )
    return rowcount(held)


async def resume_bulletin(
    session: AsyncSession, *, bulletin: Bulletin, tz: ZoneInfo, now: datetime
) -> int:
    """Release held deliveries (not before their planned time) and schedule the next run.

    Cron times that fell inside the pause are skipped; a one-off whose time passed during the
    pause is handled like a missed run (sent if still within the grace period).
    """
    if bulletin.status != "paused":
        raise Conflict(f"cannot resume a {bulletin.status} bulletin")
    held = (
        await session.scalars(
            select(BulletinDelivery).where(
                BulletinDelivery.bulletin_id == bulletin.id, BulletinDelivery.status == HELD
            )
        )
    ).all()
    for d in held:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.idempotency_key == d.idempotency_key)
            .where(OutboxMessage.status == HELD)
            .values(status="pending", next_attempt_at=max(now, d.not_before))
        )
        d.status = "queued"
    has_run = await session.scalar(
        select(BulletinRun.id).where(BulletinRun.bulletin_id == bulletin.id).limit(1)
    )
    if bulletin.schedule_kind == "at":
        bulletin.next_run_at = None if has_run else bulletin.run_at
    else:
        bulletin.next_run_at = first_run(bulletin, tz=tz, at_or_after=now)
    bulletin.status = "active" if bulletin.next_run_at is not None else "finished"
    bulletin.updated_at = now
    return len(held)


async def cancel_bulletin(session: AsyncSession, *, bulletin: Bulletin, now: datetime) -> int:
    """Stop for good: no more runs, unsent deliveries withdrawn. Returns how many were."""
    if bulletin.status == "cancelled":
        return 0
    bulletin.status, bulletin.next_run_at, bulletin.updated_at = "cancelled", None, now
    await session.execute(
        update(BulletinRun)
        .where(BulletinRun.bulletin_id == bulletin.id, BulletinRun.status == "pending")
        .values(status="cancelled", reason="bulletin cancelled")
    )
    withdrawn = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.idempotency_key.in_(_keys_of(bulletin.id)))
        .where(OutboxMessage.status.in_(("pending", HELD)))
        .values(status=CANCELLED, last_error="bulletin cancelled")
    )
    await session.execute(
        update(BulletinDelivery)
        .where(BulletinDelivery.bulletin_id == bulletin.id)
        .where(
            BulletinDelivery.idempotency_key.in_(
                select(OutboxMessage.idempotency_key).where(OutboxMessage.status == CANCELLED)
            )
        )
        .values(status=CANCELLED)
    )
    return rowcount(withdrawn)


# --- the tick ----------------------------------------------------------------------------------
@dataclass
class TickResult:
    """What one tick did."""

    runs: int = 0
    missed: int = 0
    fanned_out: int = 0
    deliveries: int = 0
    run_ids: list[int] = field(default_factory=list)


async def _insert_ignore(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """INSERT a run unless its (bulletin, due time) exists; the new id or None."""
    table = table_of(BulletinRun)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    run_id: int | None = (await session.execute(stmt)).scalar_one_or_none()
    return run_id


async def materialise_runs(
    session: AsyncSession,
    *,
    bulletin_id: int,
    tz: ZoneInfo,
    grace: timedelta,
    now: datetime,
) -> tuple[int, int]:
    """Insert the runs of one bulletin that are due by ``now``; returns (pending, missed)."""
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None or bulletin.status != "active" or bulletin.next_run_at is None:
        return 0, 0
    old_next = bulletin.next_run_at
    due: list[datetime] = []
    t: datetime | None = old_next
    while t is not None and t <= now and len(due) < MAX_CATCH_UP:
        due.append(t)
        t = next_after(bulletin, tz=tz, after=t)
    if t is not None and t <= now:
        # Far behind: skip to the runs that are still within the grace period.
        skipped_from = t
        t = first_run(bulletin, tz=tz, at_or_after=now - grace)
        while t is not None and t <= now:
            due.append(t)
            t = next_after(bulletin, tz=tz, after=t)
        log.warning(
            "bulletin %s: skipped due times from %s (far behind)", bulletin_id, skipped_from
        )
    # Conditional on the value we read: two ticks at once create each run once.
    moved = await session.execute(
        update(Bulletin)
        .where(Bulletin.id == bulletin_id, Bulletin.next_run_at == old_next)
        .values(next_run_at=t, status="active" if t is not None else "finished", updated_at=now)
    )
    if rowcount(moved) != 1:
        return 0, 0
    pending = missed = 0
    for due_at in due:
        late = now - due_at
        is_missed = late > grace
        inserted = await _insert_ignore(
            session,
            {
                "bulletin_id": bulletin_id,
                "due_at": due_at,
                "status": "missed" if is_missed else "pending",
                "reason": (
                    f"missed: found {int(late.total_seconds())} s late, past the grace period"
                    if is_missed
                    else None
                ),
                "groups": 0,
                "created_at": now,
            },
        )
        if inserted is not None:
            missed += is_missed
            pending += not is_missed
    return pending, missed


async def fan_out_run(
    session: AsyncSession, *, runtime: Runtime, run_id: int, now: datetime
) -> int | None:
    """Claim a pending run and write its deliveries and outbox rows; None if not ours to do."""
    options = BulletinOptions.of(runtime)
    run = await session.get(BulletinRun, run_id)
    if run is None or run.status != "pending":
        return None
    late = now - run.due_at
    if late > timedelta(seconds=options.missed_run_grace_s):
        # Pending since before a long outage: too late to be useful.
        await session.execute(
            update(BulletinRun)
            .where(BulletinRun.id == run_id, BulletinRun.status == "pending")
            .values(
                status="missed",
                reason=f"missed: found {int(late.total_seconds())} s late, past the grace period",
            )
        )
        return None
    claimed = await session.execute(
        update(BulletinRun)
        .where(BulletinRun.id == run_id, BulletinRun.status == "pending")
        .values(status="sent", fanned_out_at=now)
    )
    if rowcount(claimed) != 1:
        return None
    bulletin = await session.get(Bulletin, run.bulletin_id)
    assert bulletin is not None
    try:
        groups = await resolve_targets(session, bulletin.targets)
    except Problem as exc:
        # The directory changed since the bulletin was saved: send to what still exists.
        log.warning("bulletin %s run %s: %s", bulletin.id, run_id, exc)
        groups = await _existing_targets(session, bulletin.targets)
    tzs = await group_timezones(session, runtime.settings.timezone)
    default_tz = runtime.settings.tz
    quiet = QuietHours.parse(options.quiet_hours)
    cap = options.daily_cap_per_group
    counts = await cap_counts(session, since=(now - timedelta(days=1)).date())
    waiting = await _still_waiting(session, bulletin.id)
    for group in groups:
        tz = tzs.get(group.station_id, default_tz)
        slot = plan_slot(
            now, tz=tz, quiet=quiet, cap=cap, taken=partial(cap_taken, counts, group.id)
        )
        key = f"bulletin-{run_id}-{group.id}"
        if group.id in waiting:
            # A cron bulletin due every few minutes through the night would otherwise queue a
            # copy per run, all released together at the end of the quiet hours: one copy of
            # the same words waiting for a group is enough.
            session.add(
                BulletinDelivery(
                    run_id=run_id,
                    bulletin_id=bulletin.id,
                    group_id=group.id,
                    channel=channel_for(group),
                    idempotency_key=key,
                    slot_date=slot.slot_date,
                    not_before=slot.not_before,
                    reason=f"merged: run {waiting[group.id]} of this bulletin still waits to go",
                    status=CANCELLED,
                    created_at=now,
                )
            )
            continue
        counts[(group.id, slot.slot_date)] += 1
        message = bulletin_message(runtime, bulletin, group, options)
        session.add(
            BulletinDelivery(
                run_id=run_id,
                bulletin_id=bulletin.id,
                group_id=group.id,
                channel=message.channel,
                idempotency_key=key,
                slot_date=slot.slot_date,
                not_before=slot.not_before,
                reason=slot.reason,
                status="queued",
                created_at=now,
            )
        )
        enqueue(
            session,
            message,
            cipher=runtime.cipher,
            now=now,
            idempotency_key=key,
            not_before=slot.not_before,
        )
    run.groups = len(groups)
    return len(groups)


async def _still_waiting(session: AsyncSession, bulletin_id: int) -> dict[str, int]:
    """Groups with a delivery of this bulletin queued and not yet tried (waiting for the end of
    quiet hours, a day under the cap, or the worker), and the run it belongs to."""
    rows = await session.execute(
        select(BulletinDelivery.group_id, BulletinDelivery.run_id)
        .join(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .where(
            BulletinDelivery.bulletin_id == bulletin_id,
            OutboxMessage.status == "pending",
            OutboxMessage.attempts == 0,
        )
    )
    return {group_id: run for group_id, run in rows.all()}


async def _existing_targets(session: AsyncSession, targets: dict[str, Any]) -> list[Group]:
    pruned = dict(targets)
    if "groups" in pruned:
        known = set((await session.scalars(select(Group.id))).all())
        pruned["groups"] = [g for g in pruned["groups"] if g in known]
        return await resolve_targets(session, pruned) if pruned["groups"] else []
    if "stations" in pruned:
        known = set((await session.scalars(select(Station.id))).all())
        pruned["stations"] = [s for s in pruned["stations"] if s in known]
        return await resolve_targets(session, pruned) if pruned["stations"] else []
    if "tags" in pruned:
        wanted = set(pruned["tags"])
        groups = (await session.scalars(select(Group).order_by(Group.id))).all()
        return [g for g in groups if wanted & set(g.tags or [])]
    return []


async def bulletin_tick(runtime: Runtime) -> TickResult:
    """Everything due at ``runtime.clock.now()``: create runs, then fan out pending ones.

    Safe to run twice, concurrently, or after a crash at any point (see the module docstring).
    """
    now = runtime.clock.now()
    options = BulletinOptions.of(runtime)
    grace = timedelta(seconds=options.missed_run_grace_s)
    tz = runtime.settings.tz
    result = TickResult()
    async with runtime.sessions() as session:
        due_ids = (
            await session.scalars(
                select(Bulletin.id)
                .where(Bulletin.status == "active", Bulletin.next_run_at <= now)
                .order_by(Bulletin.next_run_at)
            )
        ).all()
    for bulletin_id in due_ids:
        async with runtime.sessions.begin() as session:
            pending, missed = await materialise_runs(
                session, bulletin_id=bulletin_id, tz=tz, grace=grace, now=now
            )
        result.runs += pending
        result.missed += missed
    async with runtime.sessions() as session:
        run_ids = (
            await session.scalars(
                select(BulletinRun.id)
                .join(Bulletin, Bulletin.id == BulletinRun.bulletin_id)
                .where(
                    BulletinRun.status == "pending",
                    BulletinRun.due_at <= now,
                    Bulletin.status.in_(("active", "finished")),
                )
                .order_by(BulletinRun.due_at, BulletinRun.id)
            )
        ).all()
    for run_id in run_ids:
        async with runtime.sessions.begin() as session:
            count = await fan_out_run(session, runtime=runtime, run_id=run_id, now=now)
        if count is None:
            continue
        result.fanned_out += 1
        result.deliveries += count
        result.run_ids.append(run_id)
        log.info("bulletin run %s fanned out to %d group(s)", run_id, count)
    if result.missed:
        log.warning("bulletins: %d run(s) recorded as missed", result.missed)
    if result.deliveries:
        runtime.outbox_wakeup.set()
    return result


async def bulletin_tick_job(runtime: Runtime) -> None:
    """The scheduler job: one tick; errors are logged and the next tick tries again."""
    try:
        await bulletin_tick(runtime)
    except Exception:
        log.exception("bulletin tick failed")


# --- reading state -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryView:
    run_id: int
    due_at: datetime
    group_id: str
    channel: str
    status: str  # deferred | pending | sent | failed | held | cancelled
    sent_at: datetime | None
    attempts: int
    not_before: datetime
    reason: str | None


def delivery_status(
    delivery: BulletinDelivery,
    outbox_status: str | None,
    attempts: int,
    next_attempt_at: datetime | None,
    now: datetime,
) -> str:
    """Our view of one delivery: the outbox row's state, or deferred while it waits its turn."""
    if outbox_status is None:
        return CANCELLED if delivery.status == CANCELLED else "pending"  # merged: never queued
    if outbox_status == "pending":
        waiting = next_attempt_at is not None and next_attempt_at > now
        return "deferred" if waiting and attempts == 0 and delivery.reason else "pending"
    if outbox_status == "sending":
        return "pending"
    return outbox_status  # sent | failed | held | cancelled


async def list_deliveries(
    session: AsyncSession, *, bulletin_id: int, now: datetime, run_id: int | None = None
) -> list[DeliveryView]:
    """Every delivery of a bulletin (or one run), joined to its outbox row by key."""
    query = (
        select(
            BulletinDelivery,
            BulletinRun.due_at,
            OutboxMessage.status,
            OutboxMessage.attempts,
            OutboxMessage.sent_at,
            OutboxMessage.next_attempt_at,
            OutboxMessage.last_error,
        )
        .join(BulletinRun, BulletinRun.id == BulletinDelivery.run_id)
        .outerjoin(OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key)
        .where(BulletinDelivery.bulletin_id == bulletin_id)
        .order_by(BulletinDelivery.run_id, BulletinDelivery.group_id)
    )
    if run_id is not None:
        query = query.where(BulletinDelivery.run_id == run_id)
    out = []
    for d, due_at, ob_status, attempts, sent_at, next_at, last_error in (
        await session.execute(query)
    ).all():
        status = delivery_status(d, ob_status, attempts or 0, next_at, now)
        reason = last_error if status in ("failed", "pending") and last_error else d.reason
        out.append(
            DeliveryView(
                run_id=d.run_id,
                due_at=due_at,
                group_id=d.group_id,
                channel=d.channel,
                status=status,
                sent_at=sent_at,
                attempts=attempts or 0,
                not_before=d.not_before,
                reason=reason if status != "sent" else None,
            )
        )
    return out


@dataclass(frozen=True)
class RunView:
    id: int
    due_at: datetime
    status: str
    reason: str | None
    groups: int
    totals: dict[str, int]


async def list_runs(session: AsyncSession, *, bulletin_id: int, now: datetime) -> list[RunView]:
    """Runs newest first with delivery totals (sent, pending incl. deferred/held, failed)."""
    runs = (
        await session.scalars(
            select(BulletinRun)
            .where(BulletinRun.bulletin_id == bulletin_id)
            .order_by(BulletinRun.due_at.desc())
        )
    ).all()
    per_run: dict[int, Counter[str]] = {r.id: Counter() for r in runs}
    for view in await list_deliveries(session, bulletin_id=bulletin_id, now=now):
        bucket = view.status if view.status in ("sent", "failed", "cancelled") else "pending"
        per_run[view.run_id][bucket] += 1
        if view.status in ("deferred", "held"):
            per_run[view.run_id][view.status] += 1
    return [
        RunView(
            id=r.id,
            due_at=r.due_at,
            status=r.status,
            reason=r.reason,
            groups=r.groups,
            totals={
                k: per_run[r.id][k]
                for k in ("sent", "pending", "failed", "cancelled", "deferred", "held")
            },
        )
        for r in runs
    ]


def schedule_dict(bulletin: Bulletin) -> dict[str, Any]:
    """The schedule as the API shows it (the shape it was given in)."""
    if bulletin.schedule_kind == "at":
        return {"at": bulletin.run_at}
    return {"cron": bulletin.cron, "start": bulletin.starts_at, "end": bulletin.ends_at}


__all__: Sequence[str] = [
    "BulletinOptions",
    "BulletinPatch",
    "BulletinSpec",
    "Conflict",
    "Problem",
    "QuietHours",
    "build_bulletin",
    "bulletin_tick",
    "bulletin_tick_job",
    "cancel_bulletin",
    "check_within",
    "create_bulletin",
    "list_deliveries",
    "list_runs",
    "pause_bulletin",
    "plan_slot",
    "reached_groups",
    "resume_bulletin",
    "update_bulletin",
    "within_reach",
]
