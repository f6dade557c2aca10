"""APScheduler drives the timing; the database holds the state.

Jobs here are a cache of what the database says is due: the deadline sweep reads
``tickets.next_check_at``, so a restart re-arms everything by simply starting the sweep again.

Every instance builds and starts the same scheduler; each job does its work only while this
instance leads (bot.leadership), so with several processes on one database the work is
done once, by one of them, and moves to another when it dies.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.db import FailureRun
from bot.runtime import Runtime
from bot.services.deadlines import sweep
from bot.services.purge import retention_purge_job
from broadcasts.bulletins import bulletin_tick_job
from broadcasts.media import sweep_unused_uploads

log = logging.getLogger("lianxin.scheduler")

Job = Callable[[Runtime], Awaitable[object]]  # what a job returns (a report) is not used


def leader_only(job: Job, what: str, runtime: Runtime) -> Job:
    """``job`` as a scheduled job: it runs only while this instance leads the scheduler, and
    its failures are logged as a run (:class:`bot.db.FailureRun`: the first with its
    traceback, then a line a minute; each job's full traceback every run flooded the log while
    the database was away). The next run tries again."""
    failures = FailureRun(log, what, runtime.clock.now)

    @functools.wraps(job)
    async def gated(runtime: Runtime) -> None:
        if not runtime.leadership.is_leader:
            log.debug("%s skipped: this instance is a standby", job.__name__)
            return
        try:
            await job(runtime)
        except Exception as error:
            failures.failed(error)
        else:
            failures.worked()

    return gated


async def deadline_sweep_job(runtime: Runtime) -> None:
    """Run one deadline sweep."""
    fired = await sweep(runtime)
    if fired:
        log.info("deadline sweep fired %d step(s)", fired)


async def upload_sweep_job(runtime: Runtime) -> list[str]:
    """Delete uploads nothing names, ``bulletins.unused_upload_days`` after their last upload
    (by the runtime's clock)."""
    days = runtime.settings.bulletins.unused_upload_days
    if days is None:
        return []
    async with runtime.sessions() as session:
        gone = await sweep_unused_uploads(
            session,
            folder=runtime.settings.bulletins.media_folder,
            keep_for=timedelta(days=days),
            now=runtime.clock.now(),
        )
    if gone:
        log.info("upload sweep: %d unused upload(s) older than %d days deleted", len(gone), days)
    return gone


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """A scheduler with the periodic jobs of a running service (not started), each one
    ``leader_only``."""
    scheduler = AsyncIOScheduler(timezone=runtime.settings.tz)
    # The first runs are due at once; "now" is the injected clock's, like every time of ours.
    start = runtime.clock.now().astimezone(runtime.settings.tz)
    scheduler.add_job(
        leader_only(deadline_sweep_job, "deadline sweep", runtime),
        "interval",
        seconds=runtime.settings.deadlines.sweep_interval_s,
        args=[runtime],
        id="deadline-sweep",
        max_instances=1,
        coalesce=True,
        next_run_time=start,
    )
    scheduler.add_job(
        leader_only(bulletin_tick_job, "bulletin tick", runtime),
        "interval",
        seconds=runtime.settings.bulletins.tick_interval_s,
        args=[runtime],
        id="bulletin-tick",
        max_instances=1,
        coalesce=True,
        next_run_time=start,
    )
    if runtime.settings.bulletins.unused_upload_days is not None:
        scheduler.add_job(
            leader_only(upload_sweep_job, "upload sweep", runtime),
            "interval",
            hours=1,
            args=[runtime],
            id="upload-sweep",
            max_instances=1,
            coalesce=True,
        )
    retention = runtime.settings.retention
    if retention.configured:
        hour, minute = (int(part) for part in retention.run_at.split(":"))
        # Daily at a quiet hour, local time. A day missed while the server was down is not made
        # up: the next day's run blanks everything due by then.
        scheduler.add_job(
            leader_only(retention_purge_job, "retention purge", runtime),
            "cron",
            hour=hour,
            minute=minute,
            args=[runtime],
            id="retention-purge",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler
