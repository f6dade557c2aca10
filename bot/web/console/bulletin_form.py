"""The 公告 form: what it holds as typed, how its schedule choices become the service's
schedule, and how the service's refusals are said beside the right field, in Chinese.

The form only translates. Whether a bulletin is acceptable (lengths, categories, cron, a time
in the past, unknown or out-of-scope targets) is decided by ``BulletinSpec`` and
``build_bulletin`` in broadcasts/bulletins/, the same as for ``POST /api/v1/bulletins``;
what they refuse comes back here with a code, worded by ``texts_bulletins.yaml``. What the
form checks itself is only what the API has no field for: a weekday ticked, a day of the
month, a date and a time typed separately.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bot.clock import within_years
from bot.web.console.ui import Ui
from bot.web.console.uploads import UploadForm
from broadcasts.bulletins import BulletinSpec, Problem
from broadcasts.media import MediaRefused, StoredMedia
from models.bulletins import BULLETIN_CATEGORIES, Bulletin

SCHEDULES = ("once", "daily", "weekly", "monthly", "cron")
TARGET_KINDS = ("stations", "groups", "tags", "all")
# Weekdays as crontab numbers, Monday first as a Chinese week is written.
WEEKDAYS = ("1", "2", "3", "4", "5", "6", "0")
CATEGORIES = BULLETIN_CATEGORIES
# Fields of the schedule part of the form: the form's own reason for one of them stands, the
# service's follow-on complaint about the same schedule is not added.
SCHEDULE_FIELDS = frozenset(
    {"schedule", "date", "time", "days", "month_day", "cron", "start", "end"}
)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(:00)?$")
_DAILY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* \*$")
_WEEKLY = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* ([0-7](?:,[0-7])*)$")
_MONTHLY = re.compile(r"^(\d{1,2}) (\d{1,2}) (\d{1,2}) \* \*$")


@dataclass
class BulletinForm:
    """The form's fields exactly as typed, so that a refused form comes back as it was."""

    title: str = ""
    category: str = ""
    text: str = ""
    media_url: str = ""  # an upload kept between submissions: /media/<sha256>.<ext>
    target_kind: str = "stations"
    stations: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    schedule: str = "weekly"
    date: str = ""  # once
    time: str = "09:00"
    days: list[str] = field(default_factory=list)  # weekly
    month_day: str = "1"  # monthly
    cron: str = ""  # advanced
    start: str = ""  # recurring: first day (optional)
    end: str = ""  # recurring: last day (optional)

    @classmethod
    def read(cls, posted: UploadForm) -> BulletinForm:
        """The form as posted; unknown choices are kept as typed and refused later."""
        get = posted.get
        return cls(
            title=get("title").strip(),
            category=get("category"),
            text=get("text").strip(),
            media_url="" if get("media_remove") else get("media_url"),
            target_kind=get("target_kind", "stations"),
            stations=posted.getlist("stations"),
            groups=posted.getlist("groups"),
            tags=posted.getlist("tags"),
            schedule=get("schedule", "weekly"),
            date=get("date").strip(),
            time=get("time").strip(),
            days=posted.getlist("days"),
            month_day=get("month_day").strip(),
            cron=" ".join(get("cron").split()),
            start=get("start").strip(),
            end=get("end").strip(),
        )

    @classmethod
    def of(cls, bulletin: Bulletin, tz: ZoneInfo) -> BulletinForm:
        """A saved bulletin as the form would have been filled in to make it (its page's
        編輯): daily, weekly and monthly crons come back as those choices, any other cron as
        進階, dates and times in local time."""
        targets = bulletin.targets or {}
        kind = next((k for k in TARGET_KINDS if targets.get(k)), "stations")
        media = (bulletin.media or {}).get("url") or ""
        form = cls(
            title=bulletin.title,
            category=bulletin.category,
            text=bulletin.text,
            media_url=media,
            target_kind=kind,
            stations=list(targets.get("stations") or []),
            groups=list(targets.get("groups") or []),
            tags=list(targets.get("tags") or []),
        )
        if bulletin.schedule_kind == "at" and bulletin.run_at is not None:
            local = bulletin.run_at.astimezone(tz)
            form.schedule, form.date, form.time = "once", f"{local:%Y-%m-%d}", f"{local:%H:%M}"
            return form
        cron = bulletin.cron or ""
        form.schedule, form.cron = "cron", cron
        if found := _DAILY.match(cron):
            form.schedule = "daily"
        elif found := _WEEKLY.match(cron):
            days = ["0" if d == "7" else d for d in found.group(3).split(",")]
            form.schedule, form.days = "weekly", [d for d in WEEKDAYS if d in days]
        elif found := _MONTHLY.match(cron):
            form.schedule, form.month_day = "monthly", str(int(found.group(3)))
        if found is not None:
            form.time, form.cron = _clock(found.group(2), found.group(1)), ""
        if bulletin.starts_at is not None:
            form.start = f"{bulletin.starts_at.astimezone(tz):%Y-%m-%d}"
        if bulletin.ends_at is not None:
            form.end = f"{bulletin.ends_at.astimezone(tz):%Y-%m-%d}"
        return form

    def picked(self) -> list[str]:
        """The entries ticked for the chosen kind of target."""
        return {"stations": self.stations, "groups": self.groups, "tags": self.tags}.get(
            self.target_kind, []
        )


@dataclass
class Outcome:
    """A form turned into the service's input, or the reasons it cannot be, by field."""

    spec: BulletinSpec | None
    errors: dict[str, str]


def _date(text: str) -> date | None:
    """A date typed, or None when it is not one (or outside the years every page takes:
    0001-01-01 local is before year 1 in UTC)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if within_years(day) else None


def _hm(text: str) -> tuple[int, int] | None:
    found = _TIME.match(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _schedule(form: BulletinForm, tz: ZoneInfo, ui: Ui, errors: dict[str, str]) -> dict[str, Any]:
    """The schedule choice as ``{"at"}`` or ``{"cron", "start"?, "end"?}`` (local time)."""
    kind = form.schedule
    if kind not in SCHEDULES:
        errors["schedule"] = ui.t("bf_choose")
        return {}
    hm = _hm(form.time) if kind != "cron" else (0, 0)
    if hm is None:
        errors["time"] = ui.t("bf_time_invalid")
    if kind == "once":
        day = _date(form.date)
        if day is None:
            errors["date"] = ui.t("bf_date_missing" if not form.date else "bf_date_invalid")
        if day is None or hm is None:
            return {}
        return {"at": datetime.combine(day, time(*hm), tzinfo=tz).isoformat()}
    out: dict[str, Any] = {}
    if kind == "cron":
        out["cron"] = form.cron
        if not form.cron:
            errors["cron"] = ui.t("bf_required")
    elif hm is not None:
        minute, hour = hm[1], hm[0]
        if kind == "daily":
            out["cron"] = f"{minute} {hour} * * *"
        elif kind == "weekly":
            days = [d for d in WEEKDAYS if d in form.days]
            if not days or len(days) != len(set(form.days)):
                errors["days"] = ui.t("bf_days_missing" if not form.days else "bf_choose")
            out["cron"] = f"{minute} {hour} * * {','.join(sorted(days))}"
        else:
            day_no = int(form.month_day) if form.month_day.isdigit() else 0
            if not 1 <= day_no <= 31:
                errors["month_day"] = ui.t("bf_month_day_invalid")
            out["cron"] = f"{minute} {hour} {day_no} * *"
    for name in ("start", "end"):
        typed = getattr(form, name)
        if not typed:
            continue
        day = _date(typed)
        if day is None:
            errors[name] = ui.t("bf_date_invalid")
            continue
        # The end date is the last day on which it may still go out.
        moment = datetime.combine(day, time(0), tzinfo=tz)
        if name == "end":
            moment += timedelta(days=1, seconds=-1)
        out[name] = moment.isoformat()
    return out


def _validation_message(error: Any, ui: Ui) -> str:
    """A pydantic error of ``BulletinSpec`` in words (its ``type`` is the code)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("missing", "string_too_short", "blank"):
        return ui.t("bf_required")
    if kind == "string_too_long":
        return ui.t("bf_too_long", limit=ctx.get("max_length", ""))
    if kind == "cron_invalid":
        return ui.t("bf_cron_invalid")
    if kind in ("targets_empty", "targets_one"):
        return ui.t("bf_targets_missing")
    key = {
        "literal_error": "bf_choose",
        "unstorable": "bf_unstorable",
        "end_before_start": "bf_end_before_start",
        "needs_offset": "bf_date_invalid",
        "media_url": "bf_media_gone",
    }.get(kind, "bf_invalid")
    return ui.t(key)


def _validation_field(loc: tuple[Any, ...], form: BulletinForm) -> str:
    """The form field a ``BulletinSpec`` error's ``loc`` belongs to."""
    head = str(loc[0]) if loc else ""
    if head in ("title", "text", "category", "media", "targets"):
        return head
    if head == "schedule":
        sub = str(loc[1]) if len(loc) > 1 else ""
        if sub == "at":
            return "date"
        if sub in ("start", "end"):
            return sub
        if sub == "cron":
            return "cron" if form.schedule == "cron" else "time"
        return "end"  # the schedule as a whole: an end before its start
    return "form"


def to_spec(form: BulletinForm, *, tz: ZoneInfo, media: StoredMedia | None, ui: Ui) -> Outcome:
    """The service's input for ``form``, or every reason it cannot be one."""
    errors: dict[str, str] = {}
    schedule = _schedule(form, tz, ui, errors)
    targets: dict[str, Any]
    if form.target_kind == "all":
        targets = {"all": True}
    elif form.target_kind in TARGET_KINDS:
        targets = {form.target_kind: form.picked()}
    else:
        targets = {}
    body: dict[str, Any] = {
        "title": form.title,
        "category": form.category,
        "text": form.text,
        "targets": targets,
        "schedule": schedule,
    }
    if media is not None:
        body["media"] = {"type": media.kind, "url": media.url, "title": form.title or None}
    spec: BulletinSpec | None = None
    schedule_refused = bool(SCHEDULE_FIELDS & errors.keys())
    try:
        spec = BulletinSpec.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            where = _validation_field(tuple(error["loc"]), form)
            if where in SCHEDULE_FIELDS and schedule_refused:
                continue  # the form's own reason is the precise one
            errors.setdefault(where, _validation_message(error, ui))
    return Outcome(spec if not errors else None, errors)


def problem_errors(
    problem: Problem, form: BulletinForm, ui: Ui, names: dict[str, str]
) -> dict[str, str]:
    """A refusal of ``build_bulletin`` (the directory, the clock, the author's scope) beside
    its field; ``names`` turns ids into names."""
    if problem.field.startswith(("media", "cover")):
        return {"media": ui.t("bf_media_gone")}  # swept meanwhile: the form uploads it again
    if problem.field.startswith("targets"):
        where = "targets"
    elif problem.field == "schedule.at":
        where = "date"
    elif problem.field == "schedule.end":
        where = "end"
    else:
        where = "cron" if form.schedule == "cron" else "schedule"
    code = problem.code
    if code == "past":
        return {where: ui.t("bf_past", now=ui.local(ui.now))}
    if code == "outside_scope":
        listed = "、".join(names.get(n, n) for n in problem.values.get("names", []))
        return {where: ui.t("bf_outside_scope", names=listed)}
    key = {
        "unknown": "bf_unknown_choice",
        "never_fires": "bf_never_fires",
        "scope_tags": "bf_scope_tags",
        "scope_all": "bf_scope_all",
    }.get(code, "bf_invalid")
    return {where: ui.t(key)}


def media_error(refused: MediaRefused, ui: Ui) -> str:
    """Why an upload was refused, in words."""
    if refused.code == "too_large":
        return ui.t(
            "bf_media_too_large", size=megabytes(refused.size), limit=megabytes(refused.limit)
        )
    if refused.code == "empty":
        return ui.t("bf_media_empty")
    looks = f"bf_looks_{refused.looks_like}"
    return ui.t(
        "bf_media_unsupported", looks=ui.t(looks) if ui.has(looks) else ui.t("bf_looks_unknown")
    )


def megabytes(size: int) -> str:
    """``3.2 MB``, ``20 MB`` or ``40 KB`` (of 1,024 and 1,048,576 bytes, as phones count)."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    value = size / (1024 * 1024)
    shown = f"{value:.1f}".removesuffix(".0") if value < 100 else f"{value:.0f}"
    return f"{shown} MB"


def digest(spec: BulletinSpec) -> str:
    """A fingerprint of exactly what a preview showed: saving checks that it is still what
    is being saved."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:32]


def weekday_words(numbers: list[str], ui: Ui) -> str:
    """``一、三、五`` for crontab weekday numbers (0 and 7 Sunday)."""
    wanted = {"0" if n == "7" else n for n in numbers}
    return "、".join(ui.t(f"wd_short_{d}") for d in WEEKDAYS if d in wanted)


def describe(bulletin: Bulletin, ui: Ui) -> str:
    """A bulletin's schedule in words: 單次 2026-12-02 週三 09:00, 每週一、三 09:00, 每月1日
    09:00, 每天 09:00, or the cron expression for anything else."""
    if bulletin.schedule_kind == "at":
        return ui.t("sched_once", when=when(bulletin.run_at, ui))
    cron = bulletin.cron or ""
    if found := _DAILY.match(cron):
        words = ui.t("sched_daily", time=_clock(found.group(2), found.group(1)))
    elif found := _WEEKLY.match(cron):
        words = ui.t(
            "sched_weekly",
            days=weekday_words(found.group(3).split(","), ui),
            time=_clock(found.group(2), found.group(1)),
        )
    elif found := _MONTHLY.match(cron):
        words = ui.t(
            "sched_monthly", day=int(found.group(3)), time=_clock(found.group(2), found.group(1))
        )
    else:
        words = ui.t("sched_cron", cron=cron)
    if bulletin.starts_at is not None:
        words += ui.t("sched_from", day=ui.local(bulletin.starts_at, "%Y-%m-%d"))
    if bulletin.ends_at is not None:
        words += ui.t("sched_until", day=ui.local(bulletin.ends_at, "%Y-%m-%d"))
    return words


def _clock(hour: str, minute: str) -> str:
    return f"{int(hour):02d}:{int(minute):02d}"


def when(at: datetime | None, ui: Ui) -> str:
    """A local time with its weekday: ``2026-12-07 週一 09:00``."""
    if at is None:
        return ui.t("none_mark")
    local = at.astimezone(ui.tz)
    weekday = ui.t(f"wd_{local.isoweekday() % 7}")
    return f"{local:%Y-%m-%d} {weekday} {local:%H:%M}"
