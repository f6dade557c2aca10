"""The roster: address keys, who may see which households and plans, finding households."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import opencc
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.identity import check_name, name_hash
from bot.services.routing import station_subtree
from models.directory import Group, Officer, Station
from models.people import Household

# Separators people type inside addresses, ignored when comparing them.
_ADDRESS_NOISE = re.compile(r"[\s\-‐–—_·•.,，、/\\()（）\[\]【】]+")


class VisitError(ValueError):
    """A request the roster cannot satisfy; ``key`` names the sentence that explains it."""

    def __init__(self, key: str, /, **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.values = values  # the sentence's placeholders


@lru_cache(maxsize=1)
def t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def address_key(text: str) -> str:
    """What two spellings of one address share: NFKC (full-width digits), Simplified script,
    no spaces or separators, case-folded (``橋鎮村 3組-12號`` == ``桥镇村3组12号``)."""
    plain = t2s().convert(unicodedata.normalize("NFKC", text))
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
