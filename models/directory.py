"""The organisation directory: stations, officers, groups and the duty roster."""

from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("stations.id"), index=True)
    timezone: Mapped[str | None] = mapped_column(String(64))


class Officer(Base):
    __tablename__ = "officers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    # Who the officer is on each channel: the bridge and the Official Account know them by
    # ``wechat_id``, WeCom by ``wecom_id``. An id is an officer only on its own channel.
    wechat_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    wecom_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="officer")  # officer | leader
    # Where urgent pages go by SMS when the chat cannot deliver them (personal data).
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    officer_id: Mapped[str | None] = mapped_column(ForeignKey("officers.id"))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Optional WeCom group-robot webhook key for send-only groups.
    wecom_webhook: Mapped[str | None] = mapped_column(String(500))


class RosterEntry(Base):
    """A duty shift: weekly (``days``) or a one-off override on ``on_date``.

    A shift whose ``to`` is earlier than its ``from`` crosses midnight and belongs to the day it
    starts on.
    """

    __tablename__ = "roster"
    __table_args__ = (UniqueConstraint("natural_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(300))
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    officer_id: Mapped[str] = mapped_column(ForeignKey("officers.id"))
    days: Mapped[list[str]] = mapped_column(JSON, default=list)
    on_date: Mapped[date | None] = mapped_column(Date)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))


class DirectoryVersion(Base):
    """One row (``id`` 1) that every change to stations, officers or groups moves: triggers
    (migration 0010) bump ``version`` in the writing transaction, whoever writes. Processes
    that keep the directory in memory (bot/services/directory_cache.py) compare it per batch."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
