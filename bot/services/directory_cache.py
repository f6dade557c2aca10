"""The directory's groups and officers in memory, for the inbound processor (issue 17).

Every inbound event needs its group and whether its sender is an officer; both change rarely
(``lianxin directory load``, the console, ``指派``). A :class:`DirectoryCache` holds them per
process and is checked once per batch against ``directory_version``, a row that triggers on
the directory tables move in every transaction that writes them (migration 0010), whoever
writes. The version is read first and the tables after it, so a change committed in between
leaves the cache marked older than what it holds and it loads again next time: never the
reverse. Without the row (a test emptied every table) nothing is kept.

Handlers get ORM objects attached to their session, as a query would have given them: a
handler may change a group (``指派`` sets ``officer_id``), and the change is flushed with the
rest of its transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from models.base import table_of
from models.directory import DirectoryVersion, Group, Officer

_GROUPS = select(table_of(Group))
_OFFICERS = select(table_of(Officer))
VERSION = select(DirectoryVersion.version).where(DirectoryVersion.id == 1).scalar_subquery()


@dataclass
class _Tables:
    version: int | None = None
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # officer id by the account that names them on each channel (an id is an officer only on
    # its own channel: a WeCom user id equal to an officer's WeChat id is somebody else)
    by_wechat: dict[str, str] = field(default_factory=dict)
    by_wecom: dict[str, str] = field(default_factory=dict)
    officers: dict[str, dict[str, Any]] = field(default_factory=dict)


class DirectoryCache:
    """Groups and officers of one process, reloaded when ``directory_version`` moves."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self.loads = 0  # how often the tables were read (the tests count them)

    async def view(self, session: AsyncSession, version: int | None) -> DirectoryView:
        """The directory for one transaction of ``session``, given the version row's value
        read in it (:data:`VERSION`, before anything else of the directory)."""
        tables = self._tables
        if version is None or version != tables.version:
            tables = await _load(await session.connection(), version)
            self._tables = tables
            self.loads += 1
        return DirectoryView(session, tables)

    def as_loaded(self, session: AsyncSession) -> DirectoryView:
        """The directory as last read, not checked: for a transaction that asks nothing of it."""
        return DirectoryView(session, self._tables)


async def _load(conn: AsyncConnection, version: int | None) -> _Tables:
    tables = _Tables(version)
    for row in (await conn.execute(_GROUPS)).mappings():
        tables.groups[row["id"]] = dict(row)
    for row in (await conn.execute(_OFFICERS)).mappings():
        tables.officers[row["id"]] = dict(row)
        if row["wechat_id"]:
            tables.by_wechat[row["wechat_id"]] = row["id"]
        if row["wecom_id"]:
            tables.by_wecom[row["wecom_id"]] = row["id"]
    return tables


class DirectoryView:
    """The cached directory as seen by one session: rows become ORM objects of that session
    when asked for (once each), or the session's own object when it already holds one."""

    def __init__(self, session: AsyncSession, tables: _Tables) -> None:
        self._session = session
        self._tables = tables
        self._attached: dict[tuple[type[Any], str], Any] = {}

    def group(self, group_id: str | None) -> Group | None:
        """The directory's group ``group_id``; None when there is none."""
        if not group_id or group_id not in self._tables.groups:
            return None
        group: Group = self._attach(Group, self._tables.groups[group_id])
        return group

    def officer(self, channel: str, sender_id: str) -> Officer | None:
        """The officer the sender is on ``channel`` (WeCom ids on WeCom, WeChat ids else)."""
        by = self._tables.by_wecom if channel == "wecom" else self._tables.by_wechat
        officer_id = by.get(sender_id)
        if officer_id is None:
            return None
        officer: Officer = self._attach(Officer, self._tables.officers[officer_id])
        return officer

    def _attach(self, model: type[Any], values: dict[str, Any]) -> Any:
        key = (model, values["id"])
        found = self._attached.get(key)
        if found is not None:
            return found
        session = self._session.sync_session
        found = session.identity_map.get(identity_key(model, values["id"]))
        if found is None:
            # A copy of the row (the JSON list too: a handler may change it in place), made
            # persistent without a query, as if the session had just loaded it.
            found = model(**{k: list(v) if isinstance(v, list) else v for k, v in values.items()})
            make_transient_to_detached(found)
            session.add(found)
        self._attached[key] = found
        return found
