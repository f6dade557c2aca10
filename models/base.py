"""Declarative base with a constraint naming convention and a UTC-aware datetime type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import CursorResult, DateTime, MetaData, Result, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# The two scripts texts are written in: Traditional and Simplified Chinese.
Script = Literal["hant", "hans"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always hands back aware UTC (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def table_of(model: type[Base]) -> Table:
    """The ``Table`` that ``model`` is mapped to.

    SQLAlchemy types ``__table__`` as any ``FromClause`` (a class may be mapped to a join or a
    subquery); every model here is mapped to a table, and Core's ``insert``/``update`` and our
    helpers want one."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


def rowcount(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE matched.

    ``AsyncSession.execute`` is typed to return a plain ``Result`` whatever the statement; a
    DML statement's is a ``CursorResult``, which alone knows the count."""
    if not isinstance(result, CursorResult):
        raise TypeError("rowcount of a result that is not a DML statement's")
    return result.rowcount


async def core(
    session: AsyncSession, *, flush: bool | tuple[type[Base], ...] = False
) -> AsyncConnection:
    """The connection of ``session``'s transaction, for Core statements on the hot path.

    ``session.execute`` runs even a Core statement through the ORM (autoflush, the ORM's
    execution context, synchronising the identity map for DML): several times the CPU that the
    statement costs on the connection (docs/performance.md). Only for statements that no
    loaded object mirrors. ``flush``: write the session's pending changes first, for a read
    that must see what the handlers wrote in this transaction; given the models the read
    reads, only when some of those changes are to them (a flush per event costs more than
    the event's statements: one flush for a whole batch writes its rows together)."""
    if flush is True or (flush and has_changes(session, flush)):
        await session.flush()
    return await session.connection()


def has_changes(session: AsyncSession, models: tuple[type[Base], ...]) -> bool:
    """Whether ``session`` holds unflushed changes (new, changed or deleted objects) to rows
    of ``models``."""
    sync = session.sync_session
    # A loop, not any(…): a generator costs a Python call per object, on a path taken per event.
    for obj in (*sync.new, *sync.dirty, *sync.deleted):  # noqa: SIM110
        if isinstance(obj, models):
            return True
    return False
