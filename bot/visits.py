"""入戶走訪 as a service: finding households on the roster, recording visits, adding and deleting
households, visit plans and who may see them.

The chat (handlers/visits.py), the console and the API call these. Functions take the open
session first and everything else by keyword; they write rows and never commit and never
message anyone (the overdue-plan reminders are in bot/visit_reminders.py). Names, numbers,
addresses and notes are encrypted with the runtime's cipher; what the audit keeps
(``household_events``) never holds them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import opencc
from sqlalchemy import ColumnElement, delete, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.routing import station_subtree
from bot.settings import VisitSettings
from handlers.verification import check_name, name_hash, normalise_phone, phone_hash
from models.base import rowcount
from models.directory import Group, Officer, Station
from models.people import Household
from models.visits import HouseholdEvent, Visit, VisitChoice, VisitPlan

# Separators people type inside addresses, ignored when comparing them.
_ADDRESS_NOISE = re.compile(r"[\s\-‐–—_·•.,，、/\\()（）\[\]【】]+")


class VisitError(ValueError):
    """A request the roster cannot satisfy; ``key`` names the sentence that explains it."""

    def __init__(self, key: str, /, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values  # the sentence's placeholders


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def address_key(text: str) -> str:
    """What two spellings of one address share: NFKC (full-width digits), Simplified script,
    no spaces or separators, case-folded (``橋鎮村 3組-12號`` == ``桥镇村3组12号``)."""
    plain = _t2s().convert(unicodedata.normalize("NFKC", text))
    return _ADDRESS_NOISE.sub("", plain).casefold()


def address_contains(address: str, part: str) -> bool:
    """Whether the address key ``address`` contains ``part`` as a whole: digits never run on
    (``12号`` is not in ``112号``, ``3组1`` not in ``3组12号``)."""
    if not part:
        return False
    before = r"(?<!\d)" if part[0].isdigit() else ""
    after = r"(?!\d)" if part[-1].isdigit() else ""
    return re.search(before + re.escape(part) + after, address) is not None


# --- scope ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The part of the roster an officer works on: the groups of their station and the stations
    below it; the county centre's officers (a station without a parent) every group, and the
    households in none."""

    stations: frozenset[str] | None  # None: every station
    ungrouped: bool

    def groups_clause(self) -> ColumnElement[bool]:
        """A condition on ``Household`` for this scope (needs the outer join to ``Group``)."""
        in_groups = (
            Household.group_id.is_not(None)
            if self.stations is None
            else Group.station_id.in_(sorted(self.stations))
        )
        if self.ungrouped:
            return or_(in_groups, Household.group_id.is_(None))
        return in_groups


async def is_county_centre(session: AsyncSession, station_id: str) -> bool:
    """Whether ``station_id`` is the root of the station tree (the county centre)."""
    row = (await session.execute(select(Station.parent_id).where(Station.id == station_id))).first()
    return row is not None and row[0] is None


async def officer_scope(session: AsyncSession, *, officer: Officer) -> Scope:
    """The roster ``officer`` may record visits against."""
    if await is_county_centre(session, officer.station_id):
        return Scope(stations=None, ungrouped=True)
    return Scope(
        stations=frozenset(await station_subtree(session, [officer.station_id])), ungrouped=False
    )


async def plan_stations(session: AsyncSession, *, viewer: Officer) -> Scope:
    """Whose visit plans ``viewer`` may see: their own station's, and as a leader those of the
    stations below it too; households in no group belong to the county centre."""
    stations = {viewer.station_id}
    if viewer.role == "leader":
        stations = await station_subtree(session, [viewer.station_id])
    return Scope(
        stations=frozenset(stations),
        ungrouped=await is_county_centre(session, viewer.station_id),
    )


async def station_of(session: AsyncSession, household: Household) -> str | None:
    """The station answering a household: its group's; None for a household in no group."""
    if household.group_id is None:
        return None
    return await session.scalar(select(Group.station_id).where(Group.id == household.group_id))


async def may_see_plan(session: AsyncSession, *, viewer: Officer, household: Household) -> bool:
    """Whether ``viewer`` may see (or change) whether and why ``household`` is on a plan."""
    scope = await plan_stations(session, viewer=viewer)
    station = await station_of(session, household)
    if station is None:
        return scope.ungrouped
    return scope.stations is None or station in scope.stations


# --- finding households -----------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A household on the roster, decrypted for the officer who asked."""

    id: int
    name: str
    address: str | None
    group_id: str | None


def _in_groups(groups: Collection[str] | None) -> ColumnElement[bool]:
    return true() if groups is None else Household.group_id.in_(sorted(groups))


async def _tier(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    key: str,
    scope: Scope,
    groups: Collection[str] | None,
) -> list[int]:
    """Ids matching ``key`` among the scope's households (within ``groups`` when given): the
    exact matches (the householder's name, or the whole address) if there are any, else the
    addresses that contain ``key``."""
    where = (scope.groups_clause(), _in_groups(groups))
    exact: list[int] = []
    try:
        wanted_name = name_hash(cipher, check_name(key))
    except ValueError:
        wanted_name = None
    if wanted_name is not None:
        named = await session.scalars(
            select(Household.id)
            .outerjoin(Group, Group.id == Household.group_id)
            .where(*where, Household.name_hash == wanted_name)
        )
        exact += list(named)
    wanted = address_key(key)
    partial: list[int] = []
    if len(wanted) >= 2:
        rows = await session.execute(
            select(Household.id, Household.address_enc)
            .outerjoin(Group, Group.id == Household.group_id)
            .where(*where, Household.address_enc.is_not(None))
        )
        for household_id, blob in rows:
            address = address_key(cipher.decrypt(blob) or "")
            if address == wanted:
                exact.append(household_id)
            elif address_contains(address, wanted) or (
                len(address) >= 4 and address_contains(wanted, address)
            ):
                partial.append(household_id)
    return sorted(set(exact)) if exact else sorted(set(partial))


async def find_households(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    key: str,
    scope: Scope,
    prefer_groups: Sequence[str] = (),
) -> list[Found]:
    """The households ``key`` (a householder's name, an address or part of one) points to.

    Looked for first in ``prefer_groups`` (the group the officer wrote in, or their own
    groups), then in the whole scope; exact matches win over partial ones within each step."""
    ids: list[int] = []
    tiers: list[Collection[str] | None] = [list(prefer_groups)] if prefer_groups else []
    for groups in [*tiers, None]:
        ids = await _tier(session, cipher, key=key, scope=scope, groups=groups)
        if ids:
            break
    return await households_by_id(session, cipher, ids)


async def households_by_id(
    session: AsyncSession, cipher: PiiCipher, ids: Sequence[int]
) -> list[Found]:
    """Households decrypted, in the order of ``ids``; missing ids are left out."""
    if not ids:
        return []
    rows = {
        h.id: h
        for h in (await session.scalars(select(Household).where(Household.id.in_(ids)))).all()
    }
    return [
        Found(
            id=h.id,
            name=cipher.decrypt(h.name_enc) or "",
            address=cipher.decrypt(h.address_enc),
            group_id=h.group_id,
        )
        for h in (rows[i] for i in ids if i in rows)
    ]


# --- households -------------------------------------------------------------------------------


def audit(
    session: AsyncSession,
    *,
    household_id: int,
    action: str,
    actor: str,
    now: datetime,
    detail: str | None = None,
) -> None:
    """A line in the household audit (never personal data in ``detail``)."""
    session.add(
        HouseholdEvent(household_id=household_id, at=now, action=action, actor=actor, detail=detail)
    )


async def add_household(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    name: str,
    address: str | None,
    phone: str | None,
    group_id: str | None,
    actor: str,
    now: datetime,
) -> Household:
    """A household on the roster (a number is optional). Raises :class:`VisitError`
    (``visit_bad_name``, ``visit_bad_phone``, ``visit_phone_known``, ``visit_unknown_group``)."""
    try:
        name = check_name(name)
    except ValueError:
        raise VisitError("visit_bad_name", name=name) from None
    number = None
    if phone:
        try:
            number = normalise_phone(phone)
        except ValueError:
            raise VisitError("visit_bad_phone") from None
        if await session.scalar(
            select(Household.id).where(Household.phone_hash == phone_hash(cipher, number))
        ):
            raise VisitError("visit_phone_known")
    if group_id is not None and await session.get(Group, group_id) is None:
        raise VisitError("visit_unknown_group", group=group_id)
    address = unicodedata.normalize("NFKC", address).strip() if address else None
    household = Household(
        name_enc=cipher.encrypt(name),
        name_hash=name_hash(cipher, name),
        phone_enc=cipher.encrypt(number),
        phone_hash=phone_hash(cipher, number) if number else None,
        address_enc=cipher.encrypt(address or None),
        group_id=group_id,
    )
    session.add(household)
    await session.flush()
    audit(
        session,
        household_id=household.id,
        action="added",
        actor=actor,
        now=now,
        detail=f"group {group_id or '-'}" + ("" if number else ", no phone"),
    )
    return household


@dataclass(frozen=True)
class HouseholdLine:
    """A household as the console lists it (in clear: mask or show by the viewer's role)."""

    id: int
    name: str
    phone: str | None
    address: str | None
    group_id: str | None
    visits: int
    last_visit_at: datetime | None


async def list_households(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    scope: Scope,
    group_id: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[HouseholdLine]:
    """The scope's households (one group's when given), least recently visited first (never
    visited at the top), with how often and when they were last visited."""
    visits = (
        select(
            Visit.household_id.label("household_id"),
            func.count().label("visits"),
            func.max(Visit.at).label("last_at"),
        )
        .where(Visit.household_id.is_not(None))
        .group_by(Visit.household_id)
        .subquery()
    )
    query = (
        select(Household, visits.c.visits, visits.c.last_at)
        .outerjoin(Group, Group.id == Household.group_id)
        .outerjoin(visits, visits.c.household_id == Household.id)
        .where(scope.groups_clause())
        .order_by(visits.c.last_at.is_not(None), visits.c.last_at, Household.id)
        .limit(limit)
        .offset(offset)
    )
    if group_id is not None:
        query = query.where(Household.group_id == group_id)
    return [
        HouseholdLine(
            id=h.id,
            name=cipher.decrypt(h.name_enc) or "",
            phone=cipher.decrypt(h.phone_enc),
            address=cipher.decrypt(h.address_enc),
            group_id=h.group_id,
            visits=int(count or 0),
            last_visit_at=last,
        )
        for h, count, last in (await session.execute(query)).all()
    ]


_KEEP: object = object()


async def update_household(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    household_id: int,
    actor: str,
    now: datetime,
    name: str | None = None,
    phone: str | object | None = _KEEP,
    address: str | object | None = _KEEP,
    group_id: str | object | None = _KEEP,
) -> Household:
    """Change a household (what is not given stays; ``phone=None`` removes the number).
    Raises :class:`VisitError` like :func:`add_household`, or ``visit_household_gone``."""
    household = await session.get(Household, household_id)
    if household is None:
        raise VisitError("visit_household_gone")
    changed = []
    if name is not None:
        try:
            name = check_name(name)
        except ValueError:
            raise VisitError("visit_bad_name", name=name) from None
        household.name_enc, household.name_hash = cipher.encrypt(name), name_hash(cipher, name)
        changed.append("name")
    if phone is not _KEEP:
        number = None
        if phone:
            try:
                number = normalise_phone(str(phone))
            except ValueError:
                raise VisitError("visit_bad_phone") from None
            other = await session.scalar(
                select(Household.id).where(Household.phone_hash == phone_hash(cipher, number))
            )
            if other is not None and other != household_id:
                raise VisitError("visit_phone_known")
        household.phone_enc = cipher.encrypt(number)
        household.phone_hash = phone_hash(cipher, number) if number else None
        changed.append("phone")
    if address is not _KEEP:
        text = unicodedata.normalize("NFKC", str(address)).strip() if address else None
        household.address_enc = cipher.encrypt(text or None)
        changed.append("address")
    if group_id is not _KEEP:
        if group_id is not None and await session.get(Group, str(group_id)) is None:
            raise VisitError("visit_unknown_group", group=group_id)
        household.group_id = None if group_id is None else str(group_id)
        changed.append(f"group {group_id or '-'}")
    await session.flush()
    audit(
        session,
        household_id=household_id,
        action="edited",
        actor=actor,
        now=now,
        detail=", ".join(changed) or "nothing",
    )
    return household


@dataclass(frozen=True)
class Deleted:
    """What deleting a household on request did."""

    household_id: int
    visits_kept: int
    plan_removed: bool


async def delete_household(
    session: AsyncSession, *, household_id: int, actor: str, now: datetime, why: str = "request"
) -> Deleted | None:
    """Delete a household's personal data on request (个人信息删除): its row (name, number,
    address), its plan, the notes of its visits and any choice offering it. The visits stay
    as counts (when, by whom, in which group) without saying to whom; the audit keeps that it
    happened, when and by whom. None when there is no such household."""
    household = await session.get(Household, household_id)
    if household is None:
        return None
    kept = await session.execute(
        update(Visit)
        .where(Visit.household_id == household_id)
        .values(household_id=None, note_enc=None)
    )
    plan = await session.execute(delete(VisitPlan).where(VisitPlan.household_id == household_id))
    for choice in (await session.scalars(select(VisitChoice))).all():
        if any(option.get("household") == household_id for option in choice.options):
            await session.delete(choice)
    await session.delete(household)
    visits_kept = rowcount(kept)
    removed = bool(rowcount(plan))
    audit(
        session,
        household_id=household_id,
        action="deleted",
        actor=actor,
        now=now,
        detail=f"on {why}; {visits_kept} visit(s) kept without household or note"
        + ("; plan removed" if removed else ""),
    )
    await session.flush()
    return Deleted(household_id, visits_kept, removed)


# --- visits -----------------------------------------------------------------------------------


async def record_visit(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    household_id: int,
    officer: Officer,
    note: str,
    at: datetime,
    now: datetime,
    source: str = "chat",
) -> Visit:
    """Record a visit (``at`` may be earlier than ``now``: entered afterwards, never later).
    The household's plan, if any, falls due again ``every_days`` after its latest visit."""
    household = await session.get(Household, household_id)
    if household is None:
        raise VisitError("visit_household_gone")
    if at > now + timedelta(minutes=5):
        raise VisitError("visit_in_future")
    group = await session.get(Group, household.group_id) if household.group_id else None
    visit = Visit(
        household_id=household.id,
        officer_id=officer.id,
        group_id=household.group_id,
        station_id=group.station_id if group else officer.station_id,
        at=at,
        note_enc=cipher.encrypt(note.strip() or None),
        source=source,
        created_at=now,
    )
    session.add(visit)
    await session.flush()
    plan = await session.scalar(select(VisitPlan).where(VisitPlan.household_id == household.id))
    if plan is not None:
        due = await _next_due(session, household.id, plan.every_days, fallback=plan.next_due_at)
        if due > plan.next_due_at:
            plan.next_due_at, plan.reminded, plan.updated_at = due, 0, now
    return visit


async def last_visit_at(session: AsyncSession, household_id: int) -> datetime | None:
    """When the household was last visited."""
    return await session.scalar(
        select(func.max(Visit.at)).where(Visit.household_id == household_id)
    )


async def _next_due(
    session: AsyncSession, household_id: int, every_days: int, *, fallback: datetime
) -> datetime:
    latest = await last_visit_at(session, household_id)
    return latest + timedelta(days=every_days) if latest is not None else fallback


@dataclass(frozen=True)
class VisitRow:
    """A visit as the API lists it: no note, the household by id."""

    id: int
    officer: str
    household: int | None
    group_id: str | None
    at: datetime


async def list_visits(
    session: AsyncSession,
    *,
    stations: Collection[str] | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    offset: int,
) -> list[VisitRow]:
    """Visits newest first, at stations in ``stations`` (None: all), from ``start`` (inclusive)
    to ``end`` (exclusive)."""
    query = select(Visit.id, Visit.officer_id, Visit.household_id, Visit.group_id, Visit.at)
    if stations is not None:
        query = query.where(Visit.station_id.in_(sorted(stations)))
    if start is not None:
        query = query.where(Visit.at >= start)
    if end is not None:
        query = query.where(Visit.at < end)
    rows = await session.execute(
        query.order_by(Visit.at.desc(), Visit.id.desc()).limit(limit).offset(offset)
    )
    return [VisitRow(*row) for row in rows]


# --- plans ------------------------------------------------------------------------------------


def reason_label(settings: VisitSettings, reason: str, script: str) -> str:
    """A plan reason in words, in ``script``; the key itself for a reason no longer listed."""
    known = settings.plan_reasons.get(reason)
    if known is None:
        return reason
    return known.hant if script == "hant" else known.hans


def find_reason(settings: VisitSettings, word: str) -> str | None:
    """The reason key an officer's word names: a key, a label in either script, or the start of
    exactly one label (``獨居`` → ``living_alone``)."""
    word = unicodedata.normalize("NFKC", word).strip()
    if not word:
        return None
    plain = _t2s().convert(word).casefold()
    for key, reason in settings.plan_reasons.items():
        if plain in (key, _t2s().convert(reason.hant).casefold(), reason.hans.casefold()):
            return key
    starts = [
        key
        for key, reason in settings.plan_reasons.items()
        if len(plain) >= 2 and _t2s().convert(reason.hans).casefold().startswith(plain)
    ]
    return starts[0] if len(starts) == 1 else None


async def put_on_plan(
    session: AsyncSession,
    *,
    settings: VisitSettings,
    household_id: int,
    reason: str,
    every_days: int | None,
    officer_id: str | None,
    by: str,
    now: datetime,
) -> VisitPlan:
    """Put a household on a visit plan, or change its plan. The plan is due ``every_days``
    (default: the reason's) after the latest visit, or at once if there was none; its officer
    is ``officer_id``, else the household's group's own officer."""
    household = await session.get(Household, household_id)
    if household is None:
        raise VisitError("visit_household_gone")
    if reason not in settings.plan_reasons:
        raise VisitError("plan_bad_reason", reason=reason)
    every = every_days or settings.plan_reasons[reason].every_days
    if not 1 <= every <= 366:
        raise VisitError("plan_bad_every", every=every)
    if officer_id is None and household.group_id:
        officer_id = await session.scalar(
            select(Group.officer_id).where(Group.id == household.group_id)
        )
    plan = await session.scalar(select(VisitPlan).where(VisitPlan.household_id == household_id))
    due = await _next_due(session, household_id, every, fallback=now)
    if plan is None:
        plan = VisitPlan(
            household_id=household_id,
            reason=reason,
            every_days=every,
            officer_id=officer_id,
            next_due_at=due,
            reminded=0,
            created_at=now,
            created_by=by,
            updated_at=now,
        )
        session.add(plan)
        action = "plan_added"
    else:
        if due != plan.next_due_at:
            plan.reminded = 0
        plan.reason, plan.every_days, plan.officer_id = reason, every, officer_id
        plan.next_due_at, plan.updated_at = due, now
        action = "plan_changed"
    await session.flush()
    # The reason stays out of the audit: who is on a plan and why is what it protects.
    audit(
        session,
        household_id=household_id,
        action=action,
        actor=by,
        now=now,
        detail=f"every {every} d, officer {officer_id or '-'}",
    )
    return plan


async def take_off_plan(
    session: AsyncSession, *, household_id: int, by: str, now: datetime
) -> bool:
    """End a household's visit plan; False when it had none."""
    result = await session.execute(delete(VisitPlan).where(VisitPlan.household_id == household_id))
    if not rowcount(result):
        return False
    audit(session, household_id=household_id, action="plan_ended", actor=by, now=now)
    return True


@dataclass(frozen=True)
class PlanLine:
    """A household on a plan, as its officers and leaders see it (name in clear: mask it for
    display), with when it was last visited and when it is due."""

    plan_id: int
    household_id: int
    name: str
    address: str | None
    group_id: str | None
    reason: str
    every_days: int
    officer_id: str | None
    next_due_at: datetime
    last_visit_at: datetime | None
    reminded: int


async def plans_in_view(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    viewer: Officer,
    now: datetime,
    officer_id: str | None = None,
    not_officer: str | None = None,
    due_by: datetime | None = None,
    purpose: str,
) -> list[PlanLine]:
    """The plans ``viewer`` may see (see :func:`plan_stations`), most overdue first; only
    ``officer_id``'s, or all but ``not_officer``'s, or only those due by ``due_by``, when
    given. Every household returned is audited (``plan_shown``, with ``purpose``)."""
    scope = await plan_stations(session, viewer=viewer)
    latest = (
        select(func.max(Visit.at))
        .where(Visit.household_id == Household.id)
        .correlate(Household)
        .scalar_subquery()
    )
    query = (
        select(VisitPlan, Household, latest)
        .join(Household, Household.id == VisitPlan.household_id)
        .outerjoin(Group, Group.id == Household.group_id)
        .where(scope.groups_clause())
        .order_by(VisitPlan.next_due_at, VisitPlan.id)
    )
    if officer_id is not None:
        query = query.where(VisitPlan.officer_id == officer_id)
    if not_officer is not None:
        query = query.where(
            or_(VisitPlan.officer_id.is_(None), VisitPlan.officer_id != not_officer)
        )
    if due_by is not None:
        query = query.where(VisitPlan.next_due_at <= due_by)
    rows = (await session.execute(query)).all()
    lines = []
    for plan, household, last in rows:
        lines.append(
            PlanLine(
                plan_id=plan.id,
                household_id=household.id,
                name=cipher.decrypt(household.name_enc) or "",
                address=cipher.decrypt(household.address_enc),
                group_id=household.group_id,
                reason=plan.reason,
                every_days=plan.every_days,
                officer_id=plan.officer_id,
                next_due_at=plan.next_due_at,
                last_visit_at=last,
                reminded=plan.reminded,
            )
        )
        audit(
            session,
            household_id=household.id,
            action="plan_shown",
            actor=f"officer:{viewer.id}",
            now=now,
            detail=purpose,
        )
    return lines


async def expire_choices(session: AsyncSession, *, now: datetime) -> int:
    """Delete 走訪 choices nobody answered in time (they hold what the officer wrote)."""
    result = await session.execute(delete(VisitChoice).where(VisitChoice.expires_at <= now))
    return rowcount(result)


__all__ = [
    "Deleted",
    "Found",
    "HouseholdLine",
    "PlanLine",
    "Scope",
    "VisitError",
    "VisitRow",
    "add_household",
    "address_contains",
    "address_key",
    "audit",
    "delete_household",
    "expire_choices",
    "find_households",
    "find_reason",
    "list_households",
    "list_visits",
    "may_see_plan",
    "officer_scope",
    "plan_stations",
    "plans_in_view",
    "put_on_plan",
    "reason_label",
    "record_visit",
    "take_off_plan",
    "update_household",
]
