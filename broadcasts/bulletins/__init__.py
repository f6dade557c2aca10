"""Bulletins: content, schedules, runs and deliveries (the domain service).

The package is split by concern: ``specs`` (what the API, console and CLI accept), ``schedule``
(cron maths), ``targets`` (whom a bulletin reaches), ``quiet`` (quiet hours, the daily cap),
``message`` (what a group receives), ``crud`` (create, change, pause, resume, cancel), ``jobs``
(the tick) and ``views`` (runs and deliveries as shown). Callers import from the package.

How a bulletin goes out
    ``Bulletin.next_run_at`` is the schedule's state. :func:`bulletin_tick` (run by an APScheduler
    interval job, and by tests with a manual clock) does everything due at ``runtime.clock.now()``:

    1. *Materialise*: for every active bulletin whose ``next_run_at`` has come, insert one
       ``BulletinRun`` per due time (``INSERT … ON CONFLICT DO NOTHING`` under the unique
       ``(bulletin_id, due_at)``) and move ``next_run_at`` on with a conditional update. Due times
       older than ``bulletins.missed_run_grace_s`` (the service was down) are recorded ``missed``.
    2. *Fan out*: each pending run gets one ``BulletinDelivery`` and one outbox row per target
       group (priority 9, idempotency key ``bulletin-<run>-<group>``), written a page of groups
       (``FAN_OUT_PAGE``, in group id order) per transaction with multi-row INSERTs, so memory
       stays flat for a county of 10,000 groups and the outbox starts sending the first page
       while the rest are written. The run is marked ``sent`` after its last page. Quiet hours
       and the daily cap only move the outbox row's ``not_before`` (the reason is kept on the
       delivery), so nothing else has to remember to release it later.

    A crash before the first page's commit leaves the run pending and the next tick does it
    again; a crash between pages leaves it pending with some pages written, and the next tick
    resumes after the last group written; after the commit the outbox owns delivery (retries,
    backoff, the same key on every try). So a restart neither loses nor repeats a run, and the
    bridge sees every (run, group) once.
"""

from __future__ import annotations

from broadcasts.bulletins.crud import (
    build_bulletin,
    cancel_bulletin,
    check_media,
    create_bulletin,
    pause_bulletin,
    replacing,
    resume_bulletin,
    update_bulletin,
)
from broadcasts.bulletins.jobs import (
    MAX_CATCH_UP,
    FanOut,
    TickResult,
    bulletin_tick,
    bulletin_tick_job,
    fan_out_pages,
    fan_out_run,
    materialise_runs,
)
from broadcasts.bulletins.message import BULLETIN_PRIORITY, bulletin_message, public_url
from broadcasts.bulletins.quiet import QuietHours, Slot, cap_counts, cap_taken, plan_slot
from broadcasts.bulletins.schedule import (
    days_some_months_lack,
    first_run,
    next_after,
    parse_cron,
    upcoming,
)
from broadcasts.bulletins.specs import (
    BulletinPatch,
    BulletinSpec,
    Conflict,
    InputSpec,
    MediaSpec,
    Problem,
    ScheduleSpec,
    TargetSpec,
)
from broadcasts.bulletins.targets import (
    channel_for,
    check_within,
    group_timezones,
    reached_groups,
    resolve_targets,
    within_reach,
)
from broadcasts.bulletins.views import (
    DeliveryView,
    RunView,
    delivery_status,
    delivery_summary,
    list_deliveries,
    list_runs,
    schedule_dict,
)
from models.outbox import CANCELLED, HELD

__all__ = [
    "BULLETIN_PRIORITY",
    "CANCELLED",
    "HELD",
    "MAX_CATCH_UP",
    "BulletinPatch",
    "BulletinSpec",
    "Conflict",
    "DeliveryView",
    "FanOut",
    "InputSpec",
    "MediaSpec",
    "Problem",
    "QuietHours",
    "RunView",
    "ScheduleSpec",
    "Slot",
    "TargetSpec",
    "TickResult",
    "build_bulletin",
    "bulletin_message",
    "bulletin_tick",
    "bulletin_tick_job",
    "cancel_bulletin",
    "cap_counts",
    "cap_taken",
    "channel_for",
    "check_media",
    "check_within",
    "create_bulletin",
    "days_some_months_lack",
    "delivery_status",
    "delivery_summary",
    "fan_out_pages",
    "fan_out_run",
    "first_run",
    "group_timezones",
    "list_deliveries",
    "list_runs",
    "materialise_runs",
    "next_after",
    "parse_cron",
    "pause_bulletin",
    "plan_slot",
    "public_url",
    "reached_groups",
    "replacing",
    "resolve_targets",
    "resume_bulletin",
    "schedule_dict",
    "upcoming",
    "update_bulletin",
    "within_reach",
]
