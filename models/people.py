"""Residents as the channels see them, their real-name bindings, and group membership."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Script


class Member(Base):
    """A sender on one channel (a bridge wxid or an Official Account OpenID)."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    sender_id: Mapped[str] = mapped_column(String(128))
    nickname_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # At most one verification reminder a day; the welcome once.
    last_reminder_at: Mapped[datetime | None]
    welcomed_at: Mapped[datetime | None]
    # The script of their latest message that told the two apart (hant | hans): words that
    # read alike in both ("我的信息") are answered in it, not in the group name's.
    script: Mapped[str | None] = mapped_column(String(4))


class Binding(Base):
    """A verified real name and mobile number. Deleting it removes the personal data."""

    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    verified_at: Mapped[datetime]
    roster_matched: Mapped[bool] = mapped_column(default=False)


class VerificationCode(Base):
    """An SMS code on its way: what it binds, when it expires, how often it was tried."""

    __tablename__ = "verification_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | used | dead
    # The script of the request (實名 / 实名): its answer's six digits do not tell one.
    script: Mapped[Script | None] = mapped_column(String(4), default=None)


class GroupMember(Base):
    """Who is in which group, as far as join/leave events and messages tell."""

    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[str] = mapped_column(String(128), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]


class Household(Base):
    """A household on the roster (``lianxin households load``, or added at a 走訪).

    The householder's name, mobile number and address are personal data: encrypted, with keyed
    look-up hashes for the name and the number. A household added at a visit may have no
    number yet; a known number belongs to one household only (NULLs never collide)."""

    __tablename__ = "households"

    id: Mapped[int] = mapped_column(primary_key=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    name_hash: Mapped[str] = mapped_column(String(64), index=True)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    group_id: Mapped[str | None] = mapped_column(String(128), index=True)


class PendingItem(Base):
    """An actionable message from an unverified member, held until they verify."""

    __tablename__ = "pending_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("inbound_events.id"))
    created_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | released | dropped
