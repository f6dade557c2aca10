"""What a bulletin will do before it does it: the groups it reaches, the exact message each
gets, its next send times, when each group's copy would go (quiet hours, the daily cap), and
what the author should know first (warnings).

``GET /api/v1/bulletins/{id}/preview``, ``POST /api/v1/bulletins/preview`` and the console's
公告 form all call these functions; a draft is checked by the same :func:`build_bulletin` as
``create_bulletin`` and never stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.settings import BulletinSettings
from bot.text_parts import WECOM_ROBOT_MARKDOWN_LIMIT, fits, split_text
from broadcasts.bulletins import (
    BulletinSpec,
    Problem,
    QuietHours,
    build_bulletin,
    bulletin_message,
    cap_counts,
    cap_taken,
    days_some_months_lack,
    first_run,
    group_timezones,
    plan_slot,
    reached_groups,
    resolve_targets,
    upcoming,
)
from models.bulletins import Bulletin

NEXT_RUNS = 5
_LOOPBACK = {"localhost", "0.0.0.0", "::1", "[::1]"}


@dataclass(frozen=True)
class PreviewMessage:
    group_id: str
    group_name: str
    station_id: str
    channel: str
    text: str
    media: dict[str, Any] | None
    not_before: datetime | None
    reason: str | None


@dataclass(frozen=True)
class PreviewWarning:
    """Something to know before saving. ``text`` in English (the API); ``code`` and
    ``values`` for a caller that words it itself (the console):

    ``targets`` (``message``), ``no_groups``, ``no_runs`` (``status``), ``wecom_too_long``
    (``group``), ``media_not_public`` (``url``), ``media_loopback`` (``base``),
    ``quiet_hours`` (``count``, ``runs``, ``window``, ``until``), ``daily_cap`` (``groups``,
    ``cap``, ``day``), ``over_cap`` (``day``, ``count``, ``cap``).
    """

    code: str
    text: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Preview:
    next_runs: list[datetime]
    messages: list[PreviewMessage]
    warnings: list[PreviewWarning]


def _media_warnings(bulletin: Bulletin, options: BulletinSettings) -> list[PreviewWarning]:
    urls = [u for u in ((bulletin.media or {}).get("url"), bulletin.cover) if u]
    return media_warnings(urls, options)


def media_warnings(urls: list[str], options: BulletinSettings) -> list[PreviewWarning]:
    """Media the groups' channels could not fetch: an upload without a public address, or a
    public address that is this machine. One rule for bulletins and urgent notices alike."""
    local = [u for u in urls if u.startswith("/")]
    out = []
    if local and not options.public_base_url:
        out.append(
            PreviewWarning(
                "media_not_public",
                f"{local[0]} is stored here, but bulletins.public_base_url is not set: the "
                "channels get a relative URL that nobody outside can open",
                {"url": local[0]},
            )
        )
    elif local and options.public_base_url:
        host = (urlsplit(options.public_base_url).hostname or "").lower()
        if host in _LOOPBACK or host.startswith("127."):
            out.append(
                PreviewWarning(
                    "media_loopback",
                    f"bulletins.public_base_url ({options.public_base_url}) is this machine: "
                    "nobody outside can open the media",
                    {"base": options.public_base_url},
                )
            )
    return out


def _schedule_warnings(
    runs: list[datetime], runtime: Runtime, options: BulletinSettings
) -> list[PreviewWarning]:
    """Send times inside quiet hours, and days on which the schedule itself exceeds the cap."""
    tz = runtime.settings.tz
    out = []
    quiet = QuietHours.parse(options.quiet_hours)
    if quiet is not None:
        inside = [r for r in runs if quiet.contains(r.astimezone(tz).time())]
        if inside:
            until = f"{quiet.end:%H:%M}"
            out.append(
                PreviewWarning(
                    "quiet_hours",
                    f"{len(inside)} of the next {len(runs)} send times fall within quiet hours "
                    f"({options.quiet_hours}): those messages wait until {until} local time",
                    {
                        "count": len(inside),
                        "runs": len(runs),
                        "window": options.quiet_hours,
                        "until": until,
                    },
                )
            )
    cap = options.daily_cap_per_group
    per_day = Counter(r.astimezone(tz).date() for r in runs)
    crowded = sorted(day for day, n in per_day.items() if cap and n > cap)
    if crowded:
        day, count = crowded[0], per_day[crowded[0]]
        out.append(
            PreviewWarning(
                "over_cap",
                f"the schedule sends {count} times on {day.isoformat()}, more than the daily "
                f"cap of {cap} per group: the rest wait for the next days",
                {"day": day, "count": count, "cap": cap},
            )
        )
    return out


async def preview_bulletin(
    session: AsyncSession, *, runtime: Runtime, bulletin: Bulletin, now: datetime
) -> Preview:
    """The exact messages the next run would send, to which groups, and when they would go;
    the next five send times; warnings."""
    options = runtime.settings.bulletins
    tz = runtime.settings.tz
    live = bulletin.status in ("active", "paused")
    runs = upcoming(bulletin, tz=tz, count=NEXT_RUNS) if live else []
    if bulletin.status == "paused" and not runs:
        first = first_run(bulletin, tz=tz, at_or_after=now)
        runs = [first] if first else []
    warnings: list[PreviewWarning] = []
    try:
        groups = await resolve_targets(session, bulletin.targets)
    except Problem as exc:
        warnings.append(PreviewWarning("targets", str(exc), {"message": exc.message}))
        groups = await reached_groups(session, bulletin.targets)
    if not groups:
        warnings.append(PreviewWarning("no_groups", "no group is in the target"))
    at = runs[0] if runs else now
    tzs = await group_timezones(session, runtime.settings.timezone)
    quiet = QuietHours.parse(options.quiet_hours)
    counts = await cap_counts(session, since=(at - timedelta(days=1)).date())
    messages = []
    capped: list[str] = []
    for group in groups:
        slot = plan_slot(
            at,
            tz=tzs.get(group.station_id, tz),
            quiet=quiet,
            cap=options.daily_cap_per_group,
            taken=partial(cap_taken, counts, group.id),
        )
        if runs and slot.reason and slot.reason.startswith("daily_cap"):
            capped.append(group.name)
        msg = bulletin_message(runtime, bulletin, group, options)
        payload = msg.payload()
        if msg.channel == "wecom_robot" and not fits(msg.text, WECOM_ROBOT_MARKDOWN_LIMIT):
            parts = split_text(msg.text, WECOM_ROBOT_MARKDOWN_LIMIT)
            warnings.append(
                PreviewWarning(
                    "wecom_too_long",
                    f"{group.id}: over a WeCom group robot's {WECOM_ROBOT_MARKDOWN_LIMIT} bytes,"
                    f" sent as {len(parts)} messages",
                    {"group": group.name, "parts": len(parts)},
                )
            )
        messages.append(
            PreviewMessage(
                group_id=group.id,
                group_name=group.name,
                station_id=group.station_id,
                channel=msg.channel,
                text=msg.text,
                media=payload["media"],
                not_before=slot.not_before if runs else None,
                reason=slot.reason if runs else None,
            )
        )
    if capped:
        day = at.astimezone(tz).date()
        cap = options.daily_cap_per_group
        warnings.append(
            PreviewWarning(
                "daily_cap",
                f"{len(capped)} group(s) already have {cap} bulletins on {day.isoformat()}: "
                "this one waits there for the next day with room",
                {"groups": capped, "cap": cap, "day": day},
            )
        )
    warnings += _media_warnings(bulletin, options)
    warnings += _schedule_warnings(runs, runtime, options)
    if bulletin.schedule_kind == "cron" and (short := days_some_months_lack(bulletin.cron or "")):
        days = "、".join(str(d) for d in short)
        warnings.append(
            PreviewWarning(
                "short_months",
                f"day {days} of the month is not in every month the schedule names: "
                "those months get no bulletin",
                {"days": days},
            )
        )
    if not runs:
        warnings.append(
            PreviewWarning(
                "no_runs",
                f"no run is scheduled (status {bulletin.status})",
                {"status": bulletin.status},
            )
        )
    return Preview(next_runs=runs, messages=messages, warnings=warnings)


async def preview_draft(
    session: AsyncSession,
    *,
    runtime: Runtime,
    spec: BulletinSpec,
    now: datetime,
    within: frozenset[str] | None = None,
) -> tuple[Bulletin, Preview]:
    """A draft checked exactly as ``create_bulletin`` would check it (:class:`Problem`
    otherwise), and its preview; nothing is stored."""
    draft = await build_bulletin(
        session,
        spec=spec,
        tz=runtime.settings.tz,
        created_by="preview",
        now=now,
        media_dir=runtime.settings.bulletins.media_folder,
        within=within,
    )
    return draft, await preview_bulletin(session, runtime=runtime, bulletin=draft, now=now)
