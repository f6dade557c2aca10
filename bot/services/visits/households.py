"""Adding, listing, changing and deleting households on the roster (audited, never committed)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.identity import check_name, name_hash, normalise_phone, phone_hash
from bot.services.visits.roster import Scope, VisitError
from models.base import rowcount
from models.directory import Group
from models.people import Household
from models.visits import HouseholdEvent, Visit, VisitChoice, VisitPlan

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


# Longer than any address: a paste of something else.
ADDRESS_MAX = 200


def _address(address: str | None) -> str | None:
    """An address as kept: NFKC, trimmed, None for none; :class:`VisitError` when too long."""
    address = unicodedata.normalize("NFKC", address).strip() if address else None
    if address and len(address) > ADDRESS_MAX:
        raise VisitError("visit_bad_address", limit=ADDRESS_MAX)
    return address or None


async def _on_the_roster(
    session: AsyncSession,
    cipher: PiiCipher,
    *,
    name: str,
    address: str | None,
    group_id: str | None,
) -> bool:
    """Whether the group's roster already has this householder at this address (the same
    form sent twice, a household typed in again): a second row would count it twice."""
    group = Household.group_id == group_id if group_id else Household.group_id.is_(None)
    same_name = await session.scalars(
        select(Household).where(Household.name_hash == name_hash(cipher, name), group)
    )
    return any((cipher.decrypt(h.address_enc) or None) == address for h in same_name)


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
    (``visit_bad_name``, ``visit_bad_phone``, ``visit_phone_known``, ``visit_unknown_group``,
    ``visit_bad_address``, ``visit_household_known``)."""
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
    address = _address(address)
    if await _on_the_roster(session, cipher, name=name, address=address, group_id=group_id):
        raise VisitError("visit_household_known")
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
        household.address_enc = cipher.encrypt(_address(str(address) if address else None))
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
