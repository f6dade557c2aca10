"""Loading the organisation directory (CONTRACT §4): all or nothing, errors name the line.

Stations, officers and groups are upserted by id; entries missing from a later file are kept
(tickets and history refer to them). The roster of every station named in the file is replaced by
the file's entries, so loading the same file twice changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import storable_id
from bot.pii import PiiCipher
from bot.services.identity import IdentityError, normalise_phone
from models.directory import Group, Officer, RosterEntry, Station

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class DirectoryError(Exception):
    """The file cannot be applied; the message names the file line and the entry."""


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers each mapping's line as ``__line__``, refuses a key given
    twice, and leaves dates as text (checked below, naming the line)."""


# YAML would turn an unquoted 2026-02-30 into a date and fail with a bare ValueError.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Hashable, Any]:
    keys = [loader.construct_object(key, deep=True) for key, _ in node.value]
    twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if twice is not None:
        raise yaml.constructor.ConstructorError(
            None, None, f"key '{twice}' given twice", node.start_mark
        )
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class LoadSummary:
    stations: int
    officers: int
    groups: int
    roster: int
    # Gaps worth an administrator's eye that do not make the file wrong.
    warnings: tuple[str, ...] = ()


@dataclass
class Known:
    """Ids already in the database, which a file may refer to without repeating them."""

    stations: set[str] = field(default_factory=set)
    officers: set[str] = field(default_factory=set)


def parse_directory(
    text: str, source: str = "directory", known: Known | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Parse and check a directory document; raises :class:`DirectoryError`."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source} line {mark.line + 1}" if mark else source
        raise DirectoryError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise DirectoryError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise DirectoryError(f"{source}: top level must be a mapping")
    unknown = set(doc) - {"stations", "officers", "groups", "roster", "__line__"}
    if unknown:
        raise DirectoryError(f"{source}: unknown section(s): {', '.join(sorted(unknown))}")
    sections: dict[str, list[dict[str, Any]]] = {}
    for name in ("stations", "officers", "groups", "roster"):
        items = doc.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise DirectoryError(f"{source}: '{name}' must be a list of mappings")
        sections[name] = items
    _check(sections, source, known or Known())
    return sections


def _fail(source: str, item: dict[str, Any], what: str, problem: str) -> DirectoryError:
    return DirectoryError(f"{source} line {item.get('__line__', '?')}: {what}: {problem}")


def _require(source: str, item: dict[str, Any], what: str, *keys: str) -> None:
    for key in keys:
        value = item.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _fail(source, item, what, f"missing '{key}'")


# What each entry may say. A misspelt key ("parnet") silently dropping a station's parent would
# cut the escalation chain; names and ids given as lists or mappings would be stored as
# their Python repr.
_TEXT, _LIST, _ANY = "text", "list", "any"
# The widest text each key may hold (its column); ids of stations and officers are 64 wide.
_WIDTHS = {"name": 200, "wechat_id": 128, "wecom_id": 128, "wecom_webhook": 500, "phone": 32}
_GROUP_ID_WIDTH, _ID_WIDTH = 128, 64
_KEYS: dict[str, tuple[dict[str, str], str]] = {
    "stations": (dict.fromkeys(("id", "name", "parent", "timezone"), _TEXT), "station"),
    "officers": (
        dict.fromkeys(("id", "name", "station", "wechat_id", "wecom_id", "role", "phone"), _TEXT),
        "officer",
    ),
    "groups": (
        {
            **dict.fromkeys(("id", "name", "station", "officer", "wecom_webhook"), _TEXT),
            "tags": _LIST,
        },
        "group",
    ),
    "roster": (
        {
            **dict.fromkeys(("station", "officer"), _TEXT),
            **dict.fromkeys(("date", "from", "to"), _ANY),  # checked as times and dates below
            "days": _LIST,
        },
        "roster entry",
    ),
}


def _check_shapes(s: dict[str, list[dict[str, Any]]], source: str) -> None:
    for section, (allowed, what) in _KEYS.items():
        for item in s[section]:
            label = f"{what} {item.get('id', item.get('officer', '?'))}"
            for key, value in item.items():
                if key == "__line__":
                    continue
                if key not in allowed:
                    known = ", ".join(allowed)
                    raise _fail(source, item, label, f"unknown key '{key}' (known: {known})")
                kind = allowed[key]
                if value is None or kind == _ANY:
                    continue
                if kind == _TEXT and (isinstance(value, bool) or not isinstance(value, str | int)):
                    raise _fail(source, item, label, f"'{key}' must be text, got {value!r}")
                if kind == _TEXT:
                    _check_text(source, item, label, section, key, str(value))
                if kind == _LIST and not isinstance(value, list):
                    raise _fail(source, item, label, f"'{key}' must be a list, got {value!r}")


def _check_text(
    source: str, item: dict[str, Any], label: str, section: str, key: str, value: str
) -> None:
    """Text the database can hold: within its column, and no control characters (NUL, which
    PostgreSQL refuses, among them) or lone surrogates."""
    width = _WIDTHS.get(key, _GROUP_ID_WIDTH if (section, key) == ("groups", "id") else _ID_WIDTH)
    if len(value) > width:
        raise _fail(source, item, label, f"'{key}' is longer than {width} characters")
    if not storable_id(value):
        raise _fail(source, item, label, f"'{key}' holds control characters")


def _check(s: dict[str, list[dict[str, Any]]], source: str, known: Known) -> None:
    _check_shapes(s, source)
    station_ids: set[str] = set()
    for st in s["stations"]:
        _require(source, st, "station", "id", "name")
        sid = str(st["id"])
        if sid in station_ids:
            raise _fail(source, st, f"station {sid}", "duplicate id")
        station_ids.add(sid)
        if st.get("timezone"):
            try:
                ZoneInfo(str(st["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise _fail(source, st, f"station {sid}", "unknown timezone") from None
    station_ids |= known.stations
    for st in s["stations"]:
        parent = st.get("parent")
        if parent is not None and str(parent) not in station_ids:
            raise _fail(source, st, f"station {st['id']}", f"unknown parent station '{parent}'")
    _check_no_cycles(s["stations"], source)

    officer_ids: set[str] = set()
    account_ids: dict[str, set[str]] = {"wechat_id": set(), "wecom_id": set()}
    for off in s["officers"]:
        _require(source, off, "officer", "id", "name", "station")
        oid = str(off["id"])
        if oid in officer_ids:
            raise _fail(source, off, f"officer {oid}", "duplicate id")
        officer_ids.add(oid)
        if str(off["station"]) not in station_ids:
            raise _fail(source, off, f"officer {oid}", f"unknown station '{off['station']}'")
        if off.get("role", "officer") not in ("officer", "leader"):
            raise _fail(source, off, f"officer {oid}", "role must be 'officer' or 'leader'")
        for column, seen in account_ids.items():
            account = off.get(column)
            if account:
                if str(account) in seen:
                    raise _fail(source, off, f"officer {oid}", f"{column} '{account}' used twice")
                seen.add(str(account))
        if off.get("phone") is not None:
            try:
                normalise_phone(str(off["phone"]))
            except IdentityError:
                raise _fail(
                    source, off, f"officer {oid}", "'phone' is not a mainland mobile number"
                ) from None

    officer_ids |= known.officers
    group_ids: set[str] = set()
    for grp in s["groups"]:
        _require(source, grp, "group", "id", "name", "station")
        gid = str(grp["id"])
        if gid in group_ids:
            raise _fail(source, grp, f"group {gid}", "duplicate id")
        group_ids.add(gid)
        if str(grp["station"]) not in station_ids:
            raise _fail(source, grp, f"group {gid}", f"unknown station '{grp['station']}'")
        if grp.get("officer") is not None and str(grp["officer"]) not in officer_ids:
            raise _fail(source, grp, f"group {gid}", f"unknown officer '{grp['officer']}'")
        tags = grp.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _fail(source, grp, f"group {gid}", "tags must be a list of words")

    for entry in s["roster"]:
        what = f"roster entry for {entry.get('officer', '?')}"
        _require(source, entry, what, "station", "officer", "from", "to")
        if str(entry["station"]) not in station_ids:
            raise _fail(source, entry, what, f"unknown station '{entry['station']}'")
        if str(entry["officer"]) not in officer_ids:
            raise _fail(source, entry, what, f"unknown officer '{entry['officer']}'")
        for key in ("from", "to"):
            if not _TIME.match(str(entry[key])):
                # Unquoted, YAML reads 20:00 as the number 1200.
                raise _fail(
                    source, entry, what,
                    f"'{key}' must be HH:MM in quotes (\"20:00\"), got {entry[key]!r}",
                )  # fmt: skip
        days = entry.get("days")
        on = entry.get("date")
        if (days is None) == (on is None):
            raise _fail(source, entry, what, "give either 'days' (weekly) or 'date' (one-off)")
        if days is not None and (
            not isinstance(days, list) or not days or any(str(d).lower() not in DAYS for d in days)
        ):
            raise _fail(source, entry, what, f"days must be a list of {', '.join(DAYS)}")
        if on is not None and not isinstance(on, date):
            try:
                date.fromisoformat(str(on))
            except ValueError:
                raise _fail(source, entry, what, f"date must be YYYY-MM-DD, got {on!r}") from None


def _check_no_cycles(stations: list[dict[str, Any]], source: str) -> None:
    parents = {str(st["id"]): (str(st["parent"]) if st.get("parent") else None) for st in stations}
    for st in stations:
        seen = {str(st["id"])}
        node = parents[str(st["id"])]
        while node is not None:
            if node in seen:
                raise _fail(source, st, f"station {st['id']}", "parent chain loops")
            seen.add(node)
            node = parents.get(node)


def _roster_key(entry: dict[str, Any]) -> str:
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
            raise _fail(
                source,
                in_file[new_owner],
                f"officer {new_owner}",
                f"{column} '{account}' belongs to officer {holder.id}, who is not in "
                f"this file: give that officer another {column} here, or none",
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
) -> LoadSummary:
    """Upsert a checked directory into ``session`` (the caller commits, or rolls back)."""
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
    for column in ("wechat_id", "wecom_id"):
        await _free_moved_accounts(session, sections["officers"], source, column)
    if cipher is None and any(off.get("phone") is not None for off in sections["officers"]):
        raise DirectoryError(
            f"{source}: officers' phone numbers are stored encrypted: set security.pii_key "
            "(LIANXIN__SECURITY__PII_KEY) before loading them"
        )
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
    stations_in_file = {str(e["station"]) for e in sections["roster"]}
    keys = {_roster_key(e) for e in sections["roster"]}
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
        key = _roster_key(entry)
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


async def _warnings(
    session: AsyncSession, sections: dict[str, list[dict[str, Any]]]
) -> tuple[str, ...]:
    """What the loaded directory leaves without a way through: officers the bot cannot reach,
    and stations with groups but no leader to escalate to."""
    found = [
        f"officer {o['id']} has no wechat_id: the bot cannot reach them, so tickets go to the "
        "next officer on the chain, and they cannot use chat commands"
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
    return tuple(found)


async def load_directory_file(
    session: AsyncSession, path: Path, *, cipher: PiiCipher | None = None
) -> LoadSummary:
    """Read, check and apply a directory file within the caller's transaction; ``cipher``
    encrypts officers' phone numbers (a file with numbers needs it)."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text (save the file as UTF-8)") from None
    known = Known(
        stations=set((await session.scalars(select(Station.id))).all()),
        officers=set((await session.scalars(select(Officer.id))).all()),
    )
    return await apply_directory(
        session, parse_directory(text, str(path), known), str(path), cipher=cipher
    )
