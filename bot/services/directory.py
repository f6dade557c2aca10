"""Loading the organisation directory (CONTRACT §4): all or nothing, errors name the line.

The file's rules are bot/services/directory_check.py. Stations, officers and groups are upserted by
id; entries missing from a later file are kept (tickets and history refer to them). The roster
of every station named in the file is replaced by the file's entries, so loading the same file
twice changes nothing. The console's edits (bot/services/directory_changes.py) go through here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.directory_check import (
    DAYS,
    DirectoryError,
    Known,
    check_sections,
    fail,
    parse_directory,
)
from bot.services.identity import normalise_phone
from bot.services.tickets import looks_like_openid
from models.directory import Group, Officer, RosterEntry, Station

__all__ = [
    "DAYS",
    "DirectoryError",
    "Known",
    "LoadSummary",
    "apply_directory",
    "check_sections",
    "known_ids",
    "parse_directory",
    "roster_key",
]


@dataclass
class LoadSummary:
    stations: int
    officers: int
    groups: int
    roster: int
    # Gaps worth an administrator's eye that do not make the file wrong.
    warnings: tuple[str, ...] = ()


def roster_key(entry: dict[str, Any]) -> str:
    """A roster entry's identity: station, officer, days or date, and hours."""
    when = (
        "date:" + str(entry["date"])
        if entry.get("date") is not None
        else "days:" + ",".join(sorted({str(d).lower() for d in entry["days"]}, key=DAYS.index))
    )
    return f"{entry['station']}|{entry['officer']}|{when}|{entry['from']}-{entry['to']}"


async def _free_moved_accounts(
    session: AsyncSession, officers: list[dict[str, Any]], source: str, column: str
) -> None:
    """Let a file move a WeChat (``wechat_id``) or WeCom (``wecom_id``) account from one
    officer to another.

    Both are unique: an account the file gives to another officer is first taken from
    officers of this file that no longer have it (whatever their order in the file); one held
    by an officer the file does not mention is an error naming both.
    """
    in_file = {str(off["id"]): off for off in officers}
    wanted = {str(o[column]): oid for oid, o in in_file.items() if o.get(column)}
    if not wanted:
        return
    attribute = getattr(Officer, column)
    holders = (await session.scalars(select(Officer).where(attribute.in_(list(wanted))))).all()
    moved = False
    for holder in holders:
        account = getattr(holder, column)
        new_owner = wanted[str(account)]
        if holder.id == new_owner:
            continue
        if holder.id not in in_file:
            raise fail(
                source,
                in_file[new_owner],
                "officer",
                new_owner,
                "account_elsewhere",
                column=column,
                account=account,
                holder=holder.id,
            )
        setattr(holder, column, None)
        moved = True
    if moved:
        await session.flush()


def _set_phone(officer: Officer, raw: Any, cipher: PiiCipher) -> None:
    """Store the officer's number encrypted; the same number again changes nothing (a fresh
    ciphertext each load would make every load a change)."""
    phone = normalise_phone(str(raw)) if raw is not None else None
    current = cipher.decrypt(officer.phone_enc) if officer.phone_enc else None
    if phone != current:
        officer.phone_enc = cipher.encrypt(phone) if phone else None


async def apply_directory(
    session: AsyncSession,
    sections: dict[str, list[dict[str, Any]]],
    source: str = "directory",
    *,
    cipher: PiiCipher | None = None,
    roster_stations: frozenset[str] = frozenset(),
) -> LoadSummary:
    """Upsert a checked directory into ``session`` (the caller commits, or rolls back).

    The roster of each station the file's roster names, and of ``roster_stations`` (a console
    edit that leaves a station's roster empty), is replaced by the file's entries."""
    # Parents first, so foreign keys hold at every flush.
    pending = list(sections["stations"])
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set((await session.scalars(select(Station.id))).all())
    while pending:
        for st in list(pending):
            parent = st.get("parent")
            if (
                parent is None
                or str(parent) in placed
                or str(parent) in {str(o["id"]) for o in ordered}
            ):
                ordered.append(st)
                pending.remove(st)
        placed |= {str(o["id"]) for o in ordered}
    for st in ordered:
        await session.merge(
            Station(
                id=str(st["id"]),
                name=str(st["name"]),
                parent_id=str(st["parent"]) if st.get("parent") else None,
                timezone=str(st["timezone"]) if st.get("timezone") else None,
            )
        )
        await session.flush()
    await _one_county_centre(session, sections["stations"], source)
    await _no_loop_with_stored(session, sections["stations"], source)
    for column in ("wechat_id", "wecom_id"):
        await _free_moved_accounts(session, sections["officers"], source, column)
    if cipher is None and any(off.get("phone") is not None for off in sections["officers"]):
        raise DirectoryError(source, "pii_key_missing")
    for off in sections["officers"]:
        officer = await session.merge(
            Officer(
                id=str(off["id"]),
                name=str(off["name"]),
                station_id=str(off["station"]),
                wechat_id=str(off["wechat_id"]) if off.get("wechat_id") else None,
                wecom_id=str(off["wecom_id"]) if off.get("wecom_id") else None,
                role=str(off.get("role", "officer")),
            )
        )
        if cipher is not None:
            _set_phone(officer, off.get("phone"), cipher)
    await session.flush()
    for grp in sections["groups"]:
        await session.merge(
            Group(
                id=str(grp["id"]),
                name=str(grp["name"]),
                station_id=str(grp["station"]),
                officer_id=str(grp["officer"]) if grp.get("officer") else None,
                tags=[str(t) for t in grp.get("tags") or []],
                wecom_webhook=str(grp["wecom_webhook"]) if grp.get("wecom_webhook") else None,
            )
        )
    await session.flush()
    stations_in_file = {str(e["station"]) for e in sections["roster"]} | roster_stations
    keys = {roster_key(e) for e in sections["roster"]}
    if stations_in_file:
        await session.execute(
            delete(RosterEntry).where(
                RosterEntry.station_id.in_(stations_in_file), RosterEntry.natural_key.not_in(keys)
            )
        )
    existing = (
        set(
            (
                await session.scalars(
                    select(RosterEntry.natural_key).where(RosterEntry.natural_key.in_(keys))
                )
            ).all()
        )
        if keys
        else set()
    )
    for entry in sections["roster"]:
        key = roster_key(entry)
        if key in existing:
            continue
        existing.add(key)
        on = entry.get("date")
        session.add(
            RosterEntry(
                natural_key=key,
                station_id=str(entry["station"]),
                officer_id=str(entry["officer"]),
                days=[str(d).lower() for d in entry.get("days") or []],
                on_date=on if isinstance(on, date) or on is None else date.fromisoformat(str(on)),
                start=str(entry["from"]),
                end=str(entry["to"]),
            )
        )
    await session.flush()
    return LoadSummary(
        stations=len(sections["stations"]),
        officers=len(sections["officers"]),
        groups=len(sections["groups"]),
        roster=len(sections["roster"]),
        warnings=await _warnings(session, sections),
    )


async def _one_county_centre(
    session: AsyncSession, stations: list[dict[str, Any]], source: str
) -> None:
    """Refuse a second station without a parent: the one without is the county centre, whose
    duty desk takes private messages and unknown groups' matters; with two, the first by id
    would take them silently. The caller's transaction is rolled back: nothing applied."""
    roots = (
        await session.scalars(
            select(Station.id).where(Station.parent_id.is_(None)).order_by(Station.id)
        )
    ).all()
    if len(roots) < 2:
        return
    from_file = [st for st in stations if not st.get("parent") and str(st["id"]) in roots]
    culprit = from_file[-1] if from_file else {"id": roots[-1]}
    others = ", ".join(r for r in roots if r != str(culprit["id"]))
    raise fail(source, culprit, "station", culprit["id"], "second_root", others=others)


async def _no_loop_with_stored(
    session: AsyncSession, stations: list[dict[str, Any]], source: str
) -> None:
    """Refuse a parent that makes a loop with the stations already stored: the file alone has
    no loop (checked when parsed), but `county` given the parent `qiaozhen`, which is below
    the county, left the tree without a county centre, and private emergencies paged nobody.
    The caller's transaction is rolled back: nothing applied."""
    parents = dict((await session.execute(select(Station.id, Station.parent_id))).all())
    for st in stations:
        sid = str(st["id"])
        seen, node = {sid}, parents.get(sid)
        while node is not None:
            if node in seen:
                raise fail(source, st, "station", sid, "parent_loop")
            seen.add(node)
            node = parents.get(node)


async def officers_out_of_reach(session: AsyncSession, senders: Collection[str]) -> list[str]:
    """Officers whose ``wechat_id`` no configured channel can write to: with no bridge, an id
    that is no Official Account OpenID (a WeChat account id, ``wxid_…``) reaches nobody — the
    Official Account's API refuses it (errcode 40003), and every P1 page to them failed."""
    if "bridge" in senders:
        return []
    ids = (
        await session.execute(
            select(Officer.id, Officer.wechat_id)
            .where(Officer.wechat_id.is_not(None))
            .order_by(Officer.id)
        )
    ).all()
    return [oid for oid, account in ids if not looks_like_openid(account)]


async def _warnings(
    session: AsyncSession, sections: dict[str, list[dict[str, Any]]]
) -> tuple[str, ...]:
    """What the loaded directory leaves without a way through: officers the bot cannot reach,
    stations with groups but no leader to escalate to, a county centre with nobody to reach."""
    found = [
        f"officer {o['id']} has no wechat_id: the bot cannot reach them, so tickets go to the "
        + (
            "next officer on the chain; they can use chat commands in a WeCom single chat and "
            "are answered there, but nothing else reaches them (WeCom has no private send)"
            if o.get("wecom_id")
            else "next officer on the chain, and they cannot use chat commands"
        )
        for o in sections["officers"]
        if not o.get("wechat_id")
    ]
    leaderless = (
        await session.scalars(
            select(Group.station_id)
            .where(
                Group.station_id.not_in(select(Officer.station_id).where(Officer.role == "leader"))
            )
            .distinct()
            .order_by(Group.station_id)
        )
    ).all()
    found += [
        f"station {sid} has groups but no leader: its escalations skip to the parent station "
        "or the county"
        for sid in leaderless
    ]
    # An officer moved to another station (or a group given another station's officer) stays
    # its groups' officer: their items would escalate up the other station's chain.
    crossed = (
        await session.execute(
            select(Group.id, Group.station_id, Officer.id, Officer.station_id)
            .join(Officer, Officer.id == Group.officer_id)
            .where(Group.station_id != Officer.station_id)
            .order_by(Group.id)
        )
    ).all()
    found += [
        f"group {gid} (station {gsid}) has officer {oid} of station {osid}: their items there "
        f"escalate to {osid}'s leader; give the group an officer of {gsid} if {oid} moved"
        for gid, gsid, oid, osid in crossed
    ]
    reachable = select(Officer.id).where(Officer.wechat_id.is_not(None))
    empty_roots = (
        await session.scalars(
            select(Station.id)
            .where(
                Station.parent_id.is_(None),
                # Its own officers, or those its roster puts on duty there from elsewhere.
                Station.id.not_in(select(Officer.station_id).where(Officer.id.in_(reachable))),
                Station.id.not_in(
                    select(RosterEntry.station_id).where(RosterEntry.officer_id.in_(reachable))
                ),
            )
            .order_by(Station.id)
        )
    ).all()
    found += [
        f"station {sid} is the county centre and has no officer the bot can reach: private "
        "messages, unknown groups' matters and escalations that reach it find nobody to tell"
        for sid in empty_roots
    ]
    return tuple(found)


async def load_directory_file(
    session: AsyncSession, path: Path, *, cipher: PiiCipher | None = None
) -> LoadSummary:
    """Read, check and apply a directory file within the caller's transaction; ``cipher``
    encrypts officers' phone numbers (a file with numbers needs it)."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(str(path), "unreadable", reason=exc.strerror) from None
    except UnicodeDecodeError:
        raise DirectoryError(str(path), "not_utf8") from None
    known = await known_ids(session)
    return await apply_directory(
        session, parse_directory(text, str(path), known), str(path), cipher=cipher
    )


async def known_ids(session: AsyncSession) -> Known:
    """The stations and officers already in the database."""
    return Known(
        stations=set((await session.scalars(select(Station.id))).all()),
        officers=set((await session.scalars(select(Officer.id))).all()),
    )
