"""Reading and checking a directory document (CONTRACT §4): the loader's rules, shared by
``lianxin directory load``, the console's upload and the console's roster edits.

A refusal is a :class:`DirectoryError` whose message (English, for the CLI) names the file
line and the entry; it also carries the reason as a code and its values, so that the console
can say the same thing in Chinese (``dir_<code>`` in ``texts_org.yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.clock import FIRST_YEAR, LAST_YEAR, within_years
from bot.messages import storable_id
from bot.services.identity import IdentityError, normalise_phone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
# A group robot's key (a UUID as WeCom gives it), or its whole webhook URL.
_WEBHOOK = re.compile(r"[A-Za-z0-9-]{1,100}|https?://[^\s/?#]+[^\s]*")

# Every reason the loader gives, in English; the console's words are in texts_org.yaml.
PROBLEMS = {
    "yaml_invalid": "not valid YAML: {problem}",
    "top_not_mapping": "top level must be a mapping",
    "unknown_sections": "unknown section(s): {names}",
    "section_not_list": "'{section}' must be a list of mappings",
    "missing_key": "missing '{key}'",
    "unknown_key": "unknown key '{key}' (known: {known})",
    "not_text": "'{key}' must be text, got {value}",
    "not_list": "'{key}' must be a list, got {value}",
    "too_long": "'{key}' is longer than {width} characters",
    "control_chars": "'{key}' holds control characters",
    "duplicate_id": "duplicate id",
    "unknown_timezone": "unknown timezone",
    "unknown_parent": "unknown parent station '{ref}'",
    "parent_loop": "parent chain loops",
    "second_root": (
        "has no parent, and neither has {others}: only the county centre has none "
        "(give this station its 'parent')"
    ),
    "unknown_station": "unknown station '{ref}'",
    "bad_role": "role must be 'officer' or 'leader'",
    "account_twice": "{column} '{account}' used twice",
    "bad_phone": "'phone' is not a mainland mobile number",
    "unknown_officer": "unknown officer '{ref}'",
    "bad_tags": "tags must be a list of words",
    "bad_webhook": (
        "'wecom_webhook' must be a WeCom group robot's key (letters, digits and -) or its "
        "whole http(s):// URL"
    ),
    # Unquoted, YAML reads 20:00 as the number 1200.
    "bad_time": "'{key}' must be HH:MM in quotes (\"20:00\"), got {value}",
    # Quoted but not HH:MM ("8:00", a full-width "08：00" from a Chinese keyboard): telling
    # the operator to add the quotes they already had left them guessing.
    "bad_time_text": (
        "'{key}' must be HH:MM, two digits each and an ASCII colon (\"08:00\"), got {value}"
    ),
    "days_or_date": "give either 'days' (weekly) or 'date' (one-off)",
    "bad_days": "days must be a list of {days}",
    "bad_date": "date must be YYYY-MM-DD, got {value}",
    "date_out_of_range": "date must be in the years {first}–{last}, got {value}",
    "account_elsewhere": (
        "{column} '{account}' belongs to officer {holder}, who is not in this file: give "
        "that officer another {column} here, or none"
    ),
    "pii_key_missing": (
        "officers' phone numbers are stored encrypted: set security.pii_key "
        "(LIANXIN__SECURITY__PII_KEY) before loading them"
    ),
    "not_utf8": "not UTF-8 text (save the file as UTF-8)",
    "unreadable": "{reason}",
}
_LABELS = {
    "station": "station",
    "officer": "officer",
    "group": "group",
    "roster": "roster entry for",
}


class DirectoryError(Exception):
    """The file cannot be applied; the message names the file line and the entry.

    ``code`` and ``params`` are the reason (a key of :data:`PROBLEMS` and its values),
    ``line`` the file line, ``kind`` and ``ident`` the entry (``station``, ``qiaozhen``)."""

    def __init__(
        self,
        source: str,
        code: str,
        *,
        line: int | None = None,
        kind: str = "",
        ident: str = "",
        **params: Any,
    ) -> None:
        where = f"{source} line {line}" if line is not None else source
        subject = f"{_LABELS[kind]} {ident}: " if kind else ""
        super().__init__(f"{where}: {subject}{PROBLEMS[code].format(**params)}")
        self.code, self.params, self.line, self.kind, self.ident = code, params, line, kind, ident


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
    second = next((i for i, k in enumerate(keys) if k in keys[:i]), None)
    if second is not None:
        # The line of the second one (a block mapping spans lines; the entry's first line
        # would send the administrator looking at the first, correct one).
        raise yaml.constructor.ConstructorError(
            None, None, f"key '{keys[second]}' given twice", node.value[second][0].start_mark
        )
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


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
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc
        raise DirectoryError(source, "yaml_invalid", line=line, problem=problem) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise DirectoryError(source, "yaml_invalid", problem=exc) from None
    if doc is None:
        doc = {}  # empty, or comments only: every section is optional, so nothing to apply
    if not isinstance(doc, dict):
        raise DirectoryError(source, "top_not_mapping")
    unknown = set(doc) - {"stations", "officers", "groups", "roster", "__line__"}
    if unknown:
        raise DirectoryError(source, "unknown_sections", names=", ".join(sorted(map(str, unknown))))
    sections: dict[str, list[dict[str, Any]]] = {}
    for name in ("stations", "officers", "groups", "roster"):
        items = doc.get(name) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise DirectoryError(source, "section_not_list", section=name)
        sections[name] = items
    check_sections(sections, source, known or Known())
    return sections


def fail(
    source: str, item: dict[str, Any], kind: str, ident: Any, code: str, **params: Any
) -> DirectoryError:
    """The refusal of ``item`` (a ``kind`` entry called ``ident``), naming its line."""
    return DirectoryError(
        source, code, line=item.get("__line__", "?"), kind=kind, ident=str(ident), **params
    )


def _require(source: str, item: dict[str, Any], kind: str, ident: Any, *keys: str) -> None:
    for key in keys:
        value = item.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise fail(source, item, kind, ident, "missing_key", key=key)


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
        "roster",
    ),
}


def _check_shapes(s: dict[str, list[dict[str, Any]]], source: str) -> None:
    for section, (allowed, kind) in _KEYS.items():
        for item in s[section]:
            ident = item.get("id", item.get("officer", "?"))
            for key, value in item.items():
                if key == "__line__":
                    continue
                if key not in allowed:
                    known = ", ".join(allowed)
                    raise fail(source, item, kind, ident, "unknown_key", key=key, known=known)
                type_ = allowed[key]
                if value is None or type_ == _ANY:
                    continue
                if type_ == _TEXT and (isinstance(value, bool) or not isinstance(value, str | int)):
                    raise fail(source, item, kind, ident, "not_text", key=key, value=repr(value))
                if type_ == _TEXT:
                    _check_text(source, item, kind, ident, section, key, str(value))
                if type_ == _LIST and not isinstance(value, list):
                    raise fail(source, item, kind, ident, "not_list", key=key, value=repr(value))


def _check_text(
    source: str, item: dict[str, Any], kind: str, ident: Any, section: str, key: str, value: str
) -> None:
    """Text the database can hold: within its column, and no control characters (NUL, which
    PostgreSQL refuses, among them) or lone surrogates."""
    width = _WIDTHS.get(key, _GROUP_ID_WIDTH if (section, key) == ("groups", "id") else _ID_WIDTH)
    if len(value) > width:
        raise fail(source, item, kind, ident, "too_long", key=key, width=width)
    if not storable_id(value):
        raise fail(source, item, kind, ident, "control_chars", key=key)


def check_sections(s: dict[str, list[dict[str, Any]]], source: str, known: Known) -> None:
    """Check parsed sections against each other and the ``known`` ids; raises
    :class:`DirectoryError` for the first entry that is wrong."""
    _check_shapes(s, source)
    station_ids: set[str] = set()
    for st in s["stations"]:
        _require(source, st, "station", st.get("id", "?"), "id", "name")
        sid = str(st["id"])
        if sid in station_ids:
            raise fail(source, st, "station", sid, "duplicate_id")
        station_ids.add(sid)
        if st.get("timezone"):
            try:
                ZoneInfo(str(st["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise fail(source, st, "station", sid, "unknown_timezone") from None
    station_ids |= known.stations
    for st in s["stations"]:
        parent = st.get("parent")
        if parent is not None and str(parent) not in station_ids:
            raise fail(source, st, "station", st["id"], "unknown_parent", ref=parent)
    _check_no_cycles(s["stations"], source)
    officer_ids = _check_officers(s["officers"], source, station_ids) | known.officers
    _check_groups(s["groups"], source, station_ids, officer_ids)
    for entry in s["roster"]:
        check_roster_entry(entry, source, station_ids, officer_ids)


def _check_officers(officers: list[dict[str, Any]], source: str, station_ids: set[str]) -> set[str]:
    officer_ids: set[str] = set()
    account_ids: dict[str, set[str]] = {"wechat_id": set(), "wecom_id": set()}
    for off in officers:
        _require(source, off, "officer", off.get("id", "?"), "id", "name", "station")
        oid = str(off["id"])
        if oid in officer_ids:
            raise fail(source, off, "officer", oid, "duplicate_id")
        officer_ids.add(oid)
        if str(off["station"]) not in station_ids:
            raise fail(source, off, "officer", oid, "unknown_station", ref=off["station"])
        if off.get("role", "officer") not in ("officer", "leader"):
            raise fail(source, off, "officer", oid, "bad_role")
        for column, seen in account_ids.items():
            account = off.get(column)
            if account:
                if str(account) in seen:
                    raise fail(
                        source, off, "officer", oid, "account_twice", column=column, account=account
                    )
                seen.add(str(account))
        if off.get("phone") is not None:
            try:
                normalise_phone(str(off["phone"]))
            except IdentityError:
                raise fail(source, off, "officer", oid, "bad_phone") from None
    return officer_ids


def _check_groups(
    groups: list[dict[str, Any]], source: str, station_ids: set[str], officer_ids: set[str]
) -> None:
    group_ids: set[str] = set()
    for grp in groups:
        _require(source, grp, "group", grp.get("id", "?"), "id", "name", "station")
        gid = str(grp["id"])
        if gid in group_ids:
            raise fail(source, grp, "group", gid, "duplicate_id")
        group_ids.add(gid)
        if str(grp["station"]) not in station_ids:
            raise fail(source, grp, "group", gid, "unknown_station", ref=grp["station"])
        if grp.get("officer") is not None and str(grp["officer"]) not in officer_ids:
            raise fail(source, grp, "group", gid, "unknown_officer", ref=grp["officer"])
        tags = grp.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise fail(source, grp, "group", gid, "bad_tags")
        hook = grp.get("wecom_webhook")
        if hook is not None and not _WEBHOOK.fullmatch(str(hook)):
            # The group's every message goes through it: a typo failed them all at sending.
            raise fail(source, grp, "group", gid, "bad_webhook")


def check_roster_entry(
    entry: dict[str, Any], source: str, station_ids: set[str], officer_ids: set[str]
) -> None:
    """One duty slot: a known station and officer, HH:MM times, weekdays or one date."""
    who = entry.get("officer", "?")
    _require(source, entry, "roster", who, "station", "officer", "from", "to")
    if str(entry["station"]) not in station_ids:
        raise fail(source, entry, "roster", who, "unknown_station", ref=entry["station"])
    if str(entry["officer"]) not in officer_ids:
        raise fail(source, entry, "roster", who, "unknown_officer", ref=entry["officer"])
    for key in ("from", "to"):
        if not _TIME.match(str(entry[key])):
            problem = "bad_time_text" if isinstance(entry[key], str) else "bad_time"
            raise fail(source, entry, "roster", who, problem, key=key, value=repr(entry[key]))
    days = entry.get("days")
    on = entry.get("date")
    if (days is None) == (on is None):
        raise fail(source, entry, "roster", who, "days_or_date")
    if days is not None and (
        not isinstance(days, list) or not days or any(str(d).lower() not in DAYS for d in days)
    ):
        raise fail(source, entry, "roster", who, "bad_days", days=", ".join(DAYS))
    if on is not None:
        try:
            day = on if isinstance(on, date) else date.fromisoformat(str(on))
        except ValueError:
            raise fail(source, entry, "roster", who, "bad_date", value=repr(on)) from None
        # 9999-12-31 was stored, then every week view and duty check stepping past it
        # overflowed: the years every date of ours keeps to.
        if not within_years(day):
            raise fail(
                source,
                entry,
                "roster",
                who,
                "date_out_of_range",
                value=repr(on),
                first=FIRST_YEAR,
                last=LAST_YEAR,
            )


def _check_no_cycles(stations: list[dict[str, Any]], source: str) -> None:
    parents = {str(st["id"]): (str(st["parent"]) if st.get("parent") else None) for st in stations}
    for st in stations:
        seen = {str(st["id"])}
        node = parents[str(st["id"])]
        while node is not None:
            if node in seen:
                raise fail(source, st, "station", st["id"], "parent_loop")
            seen.add(node)
            node = parents.get(node)
