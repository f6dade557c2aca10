"""Creating and changing bulletins (keyword-only service functions; they never commit)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broadcasts.bulletins.schedule import first_run
from broadcasts.bulletins.specs import BulletinPatch, BulletinSpec, Conflict, Problem, ScheduleSpec
from broadcasts.bulletins.targets import check_within, resolve_targets
from broadcasts.media import stored_media
from models.base import rowcount
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.outbox import CANCELLED, HELD, OutboxMessage


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


def _a(noun: str) -> str:
    """``noun`` with its English article: an image, a video."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def check_media(media: dict[str, Any] | None, cover: str | None, media_dir: Path | None) -> None:
    """A ``/media/…`` URL must name an upload stored here (``POST /api/v1/media``), of the
    kind the bulletin says it is: a dead link would reach every group. An http(s) URL is the
    author's to vouch for. ``media_dir`` None: nothing is stored here to check against."""
    if media_dir is None:
        return
    claimed = (media or {}).get("type")
    for field, url, kind in (
        ("media.url", (media or {}).get("url"), claimed),
        ("cover", cover, "image"),
    ):
        if not isinstance(url, str) or not url.startswith("/media/"):
            continue
        stored = stored_media(media_dir, url)
        if stored is None:
            raise Problem(
                field, "names no stored upload (POST /api/v1/media first)", code="no_upload"
            )
        if kind in ("image", "video", "file") and stored.kind != kind:
            where = "media.type" if field == "media.url" else field
            raise Problem(
                where,
                f"the upload is {_a(stored.kind)}, not {_a(kind)}",
                code="media_kind",
            )


async def build_bulletin(
    session: AsyncSession,
    *,
    spec: BulletinSpec,
    tz: ZoneInfo,
    created_by: str,
    now: datetime,
    media_dir: Path | None,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """A new bulletin checked against the directory, the clock, its uploads (``media_dir``,
    see :func:`check_media`) and the author's stations (``within``, see
    :func:`check_within`), not stored: what :func:`create_bulletin` saves and what a preview
    of a draft shows. :class:`Problem` names what is wrong."""
    check_media(spec.media.model_dump() if spec.media else None, spec.cover, media_dir)
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
    media_dir: Path | None,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """Validate targets, schedule, uploads and scope (:func:`build_bulletin`), then store."""
    bulletin = await build_bulletin(
        session,
        spec=spec,
        tz=tz,
        created_by=created_by,
        now=now,
        media_dir=media_dir,
        within=within,
    )
    session.add(bulletin)
    await session.flush()
    return bulletin


# What a run sends, kept on the run (``BulletinRun.sent``) and compared by an edit.
CONTENT_FIELDS = ("title", "category", "text", "media", "cover", "targets")


def sent_record(bulletin: Bulletin) -> dict[str, Any]:
    """The bulletin's content as a run sends it now: kept on the run when its fan-out starts,
    so the record of what went out survives a later edit."""
    return {name: getattr(bulletin, name) for name in CONTENT_FIELDS}


def _content_changes(bulletin: Bulletin, patch: BulletinPatch) -> list[str]:
    """The content fields ``patch`` would change (a field sent with its current value is no
    change)."""
    given = patch.model_fields_set
    new = {
        "title": patch.title,
        "category": patch.category,
        "text": patch.text,
        "media": patch.media.model_dump() if patch.media else None,
        "cover": patch.cover,
        "targets": patch.targets.as_dict() if patch.targets else None,
    }
    return [n for n in CONTENT_FIELDS if n in given and new[n] != getattr(bulletin, n)]


async def _check_not_sent(session: AsyncSession, bulletin: Bulletin, patch: BulletinPatch) -> None:
    """A one-off that has gone out (or is going out: deliveries written, some perhaps waiting
    for quiet hours to end), or a recurring one that has finished, keeps what it said: editing
    its words would make the record say what no group received, while its queued copies still
    carry the old ones. Sending it again
    with a new ``schedule.at`` may change it; a recurring bulletin's edit is for its later
    runs (each run keeps what it sent: :func:`sent_record`)."""
    # A finished recurring bulletin (past its end) has no run left for an edit either.
    if patch.schedule is not None or (
        bulletin.schedule_kind != "at" and bulletin.status != "finished"
    ):
        return
    changes = _content_changes(bulletin, patch)
    if not changes:
        return
    went_out = await session.scalar(
        select(BulletinRun.due_at)
        .join(BulletinDelivery, BulletinDelivery.run_id == BulletinRun.id)
        .where(BulletinRun.bulletin_id == bulletin.id)
        .order_by(BulletinRun.due_at.desc())
        .limit(1)
    )
    if went_out is not None:
        raise Conflict(
            f"bulletin {bulletin.id} went out at {went_out.isoformat()} and has no run to come: "
            f"its {', '.join(changes)} stay as sent. To correct it, create a new bulletin (or "
            "send this one again with the change and a new schedule)"
        )


async def update_bulletin(
    session: AsyncSession,
    *,
    bulletin: Bulletin,
    patch: BulletinPatch,
    tz: ZoneInfo,
    now: datetime,
    media_dir: Path | None,
    within: frozenset[str] | None = None,
) -> Bulletin:
    """Apply a PATCH. Runs already fanned out keep what they sent (and say so: ``sent``);
    later runs use the edit; a one-off already out refuses a change of content
    (:class:`Conflict`) unless it is sent again at a new time.
    New targets are held to the editor's stations (``within``, as :func:`check_within`), new
    uploads checked (:func:`check_media`)."""
    if bulletin.status == "cancelled":
        raise Conflict("the bulletin is cancelled")
    await _check_not_sent(session, bulletin, patch)
    given = patch.model_fields_set
    check_media(
        patch.media.model_dump() if "media" in given and patch.media else None,
        patch.cover if "cover" in given else None,
        media_dir,
    )
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
    if bulletin.status in ("active", "finished"):
        # Running already (a client's retry after a timeout, a second click): nothing to do,
        # as a second pause or cancel; a 409 told the retry that its resume had failed.
        return 0
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
    if bulletin.schedule_kind == "at":
        # A run at its time, not any run: a one-off moved to a later time (PATCH) after it
        # went out has an earlier run, and its new time is still to come.
        has_run = await session.scalar(
            select(BulletinRun.id).where(
                BulletinRun.bulletin_id == bulletin.id, BulletinRun.due_at == bulletin.run_at
            )
        )
        bulletin.next_run_at = None if has_run else bulletin.run_at
    else:
        bulletin.next_run_at = first_run(bulletin, tz=tz, at_or_after=now)
    bulletin.status = "active" if bulletin.next_run_at is not None else "finished"
    bulletin.updated_at = now
    return len(held)


async def cancel_bulletin(session: AsyncSession, *, bulletin: Bulletin, now: datetime) -> int:
    """Stop for good: no more runs, unsent deliveries withdrawn. Returns how many were.

    A finished bulletin with nothing left to send stays finished: it went out in full, and
    "cancelled" would rewrite what happened (with copies still waiting for the end of quiet
    hours, it is stopped before the end, and cancelled)."""
    if bulletin.status == "cancelled":
        return 0
    finished = bulletin.status == "finished"
    bulletin.next_run_at = None
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
    count = rowcount(withdrawn)
    if count or not finished:
        bulletin.status, bulletin.updated_at = "cancelled", now
    return count
