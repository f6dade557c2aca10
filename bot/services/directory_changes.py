"""Changing the directory from the console: one roster slot, one group's officer, or a whole
directory file previewed before it is applied.

Every change goes through the loader (bot/services/directory.py,
bot/services/directory_check.py): a roster edit re-applies the station's roster with the slot
added, changed or removed, a group's officer re-applies the group with its new officer, each
checked by the file's own rules. A later
``lianxin directory load`` applies its file as it is, and so undoes console edits the file does
not repeat; the console's upload preview marks those (:func:`preview_directory`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pii import PiiCipher
from bot.services.directory import (
    DirectoryError,
    LoadSummary,
    apply_directory,
    check_sections,
    known_ids,
    parse_directory,
    roster_key,
)
from models.console import AuditEntry
from models.directory import Group, Officer, RosterEntry, Station

SECTIONS = ("stations", "officers", "groups", "roster")
# Audit actions of console edits, and the target each names (a load may undo them).
ROSTER_EDITED = "roster_edited"
GROUP_OFFICER_CHANGED = "group_officer_changed"
DIRECTORY_LOADED = "directory_loaded"
SOURCE = "console"

Snapshot = dict[str, dict[str, dict[str, Any]]]


def _empty() -> dict[str, list[dict[str, Any]]]:
    return {name: [] for name in SECTIONS}


async def snapshot(session: AsyncSession) -> Snapshot:
    """The directory as it stands, section → id (roster: natural key) → its fields. Phone
    numbers appear as a digest of their ciphertext, never in clear."""
    found: Snapshot = {name: {} for name in SECTIONS}
    for st in await session.scalars(select(Station)):
        found["stations"][st.id] = {"name": st.name, "parent": st.parent_id, "tz": st.timezone}
    for off in await session.scalars(select(Officer)):
        found["officers"][off.id] = {
            "name": off.name,
            "station": off.station_id,
            "wechat_id": off.wechat_id,
            "wecom_id": off.wecom_id,
            "role": off.role,
            "phone": hashlib.sha256(off.phone_enc).hexdigest()[:16] if off.phone_enc else None,
        }
    for grp in await session.scalars(select(Group)):
        found["groups"][grp.id] = {
            "name": grp.name,
            "station": grp.station_id,
            "officer": grp.officer_id,
            "tags": list(grp.tags or []),
            "wecom_webhook": grp.wecom_webhook,
        }
    for entry in await session.scalars(select(RosterEntry)):
        found["roster"][entry.natural_key] = slot_of(entry)
    return found


def slot_of(entry: RosterEntry) -> dict[str, Any]:
    """A roster row as the file would say it."""
    slot: dict[str, Any] = {"station": entry.station_id, "officer": entry.officer_id}
    if entry.on_date is not None:
        slot["date"] = entry.on_date.isoformat()
    else:
        slot["days"] = list(entry.days)
    slot["from"], slot["to"] = entry.start, entry.end
    return slot


def fingerprint(state: Snapshot) -> str:
    """A digest of the directory: equal digests, the same directory."""
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    """One entry a load adds, changes or removes; ``fields`` names what changes, and
    ``console_edit`` the console edit it undoes (``at`` and who), if any."""

    section: str
    kind: str  # added | changed | removed
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[str, ...] = ()
    console_edit: tuple[datetime, str] | None = None


@dataclass(frozen=True)
class Preview:
    """What applying a file would do, against the directory whose digest is ``base``;
    ``token`` binds the file's text to that directory (apply only what was previewed)."""

    changes: tuple[Change, ...]
    summary: LoadSummary
    base: str
    token: str
    before: Snapshot = field(repr=False)
    after: Snapshot = field(repr=False)


def preview_token(text: str, base: str) -> str:
    """The digest that an apply must present: this text against this directory."""
    return hashlib.sha256(f"{base}\n{text}".encode()).hexdigest()


def _diff(before: Snapshot, after: Snapshot) -> list[Change]:
    changes: list[Change] = []
    for section in SECTIONS:
        old, new = before[section], after[section]
        for key in sorted(new.keys() - old.keys()):
            changes.append(Change(section, "added", key, None, new[key]))
        for key in sorted(old.keys() & new.keys()):
            fields = tuple(f for f in new[key] if new[key][f] != old[key].get(f))
            if fields:
                changes.append(Change(section, "changed", key, old[key], new[key], fields))
        for key in sorted(old.keys() - new.keys()):
            changes.append(Change(section, "removed", key, old[key], None))
    return changes


async def _console_edits(session: AsyncSession) -> dict[str, tuple[datetime, str]]:
    """Target → the latest console edit of it (when, by whom)."""
    rows = await session.execute(
        select(AuditEntry.target, AuditEntry.at, AuditEntry.username)
        .where(AuditEntry.action.in_((ROSTER_EDITED, GROUP_OFFICER_CHANGED)))
        .order_by(AuditEntry.id)
    )
    return {str(target): (at, username) for target, at, username in rows.all()}


def _undoes(change: Change, edits: dict[str, tuple[datetime, str]]) -> tuple[datetime, str] | None:
    row = change.before or change.after or {}
    if change.section == "roster":
        return edits.get(f"station:{row.get('station')}")
    if change.section == "groups" and change.kind == "changed" and "officer" in change.fields:
        return edits.get(f"group:{change.key}")
    return None


async def _changes(session: AsyncSession, before: Snapshot) -> tuple[Snapshot, tuple[Change, ...]]:
    """The directory now, and what changed since ``before`` (with the console edits undone)."""
    after = await snapshot(session)
    edits = await _console_edits(session)
    return after, tuple(
        Change(c.section, c.kind, c.key, c.before, c.after, c.fields, _undoes(c, edits))
        for c in _diff(before, after)
    )


async def preview_directory(
    sessions: async_sessionmaker[AsyncSession], text: str, *, cipher: PiiCipher | None
) -> Preview:
    """Apply ``text`` in a transaction that is rolled back, and say what it changed; raises
    :class:`DirectoryError` as ``lianxin directory load`` would."""
    async with sessions() as session:
        try:
            before = await snapshot(session)
            sections = parse_directory(text, SOURCE, await known_ids(session))
            summary = await apply_directory(session, sections, SOURCE, cipher=cipher)
            after, changes = await _changes(session, before)
        finally:
            await session.rollback()
    base = fingerprint(before)
    return Preview(changes, summary, base, preview_token(text, base), before, after)


async def load_noting_undone(
    session: AsyncSession, load: Callable[[], Awaitable[LoadSummary]]
) -> tuple[LoadSummary, list[Change]]:
    """Run ``load`` (``lianxin directory load``) in ``session`` and return, besides its
    summary, the changes it made that undo console edits."""
    before = await snapshot(session)
    summary = await load()
    _, changes = await _changes(session, before)
    return summary, [c for c in changes if c.console_edit is not None]


class StalePreview(Exception):
    """The directory or the file changed since the preview: preview again."""


async def apply_previewed(
    session: AsyncSession, text: str, token: str, *, cipher: PiiCipher | None
) -> LoadSummary:
    """Apply ``text`` if the directory is still the one ``token`` was previewed against
    (:class:`StalePreview` otherwise); within the caller's transaction."""
    if preview_token(text, fingerprint(await snapshot(session))) != token:
        raise StalePreview
    sections = parse_directory(text, SOURCE, await known_ids(session))
    return await apply_directory(session, sections, SOURCE, cipher=cipher)


class EditRefused(Exception):
    """A console edit the directory's rules refuse for a reason of the console's own
    (``key`` in texts_org.yaml), rather than the file's."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


async def _station_roster(session: AsyncSession, station_id: str) -> list[RosterEntry]:
    return list(
        await session.scalars(
            select(RosterEntry).where(RosterEntry.station_id == station_id).order_by(RosterEntry.id)
        )
    )


async def edit_roster(
    session: AsyncSession,
    station_id: str,
    *,
    remove: str | None = None,
    add: dict[str, Any] | None = None,
) -> None:
    """Add a duty slot to a station's roster, remove one (by its natural key), or both (a
    change): the station's roster is applied again as a file naming it would be."""
    rows = await _station_roster(session, station_id)
    keys = [row.natural_key for row in rows]
    if remove is not None and remove not in keys:
        raise EditRefused("org_slot_gone")
    slots = [slot_of(row) for row in rows if row.natural_key != remove]
    if add is not None:
        new = {**add, "station": station_id, "__line__": 1}
        check_sections({**_empty(), "roster": [new]}, SOURCE, await known_ids(session))
        if roster_key(new) in {roster_key(s) for s in slots}:
            raise EditRefused("org_slot_exists")
        slots.append(new)
    await apply_directory(
        session, {**_empty(), "roster": slots}, SOURCE, roster_stations=frozenset({station_id})
    )


async def set_group_officer(session: AsyncSession, group: Group, officer_id: str | None) -> None:
    """Give ``group`` another officer (None: none), re-applying the group as a file would."""
    entry: dict[str, Any] = {
        "__line__": 1,
        "id": group.id,
        "name": group.name,
        "station": group.station_id,
        "officer": officer_id,
        "tags": list(group.tags or []),
        "wecom_webhook": group.wecom_webhook,
    }
    check_sections({**_empty(), "groups": [entry]}, SOURCE, await known_ids(session))
    await apply_directory(session, {**_empty(), "groups": [entry]}, SOURCE)


__all__ = [
    "Change",
    "DirectoryError",
    "EditRefused",
    "Preview",
    "StalePreview",
    "apply_previewed",
    "edit_roster",
    "load_noting_undone",
    "preview_directory",
    "set_group_officer",
    "snapshot",
]
