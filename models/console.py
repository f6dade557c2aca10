"""The bureau console's accounts, their sign-in sessions, used forms, and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Script

CONSOLE_ROLES = ("admin", "leader", "officer")


class ConsoleAccount(Base):
    """A person who signs in to ``/console/``. Only the password's argon2 hash is stored.

    ``role``: ``admin`` sees the county; ``leader`` and ``officer`` are linked to a directory
    officer (``officer_id``) and see that officer's stations. Five failed sign-ins in a row set
    ``locked_until``; ``disabled_at`` ends the account for good (its rows stay for the audit).
    """

    __tablename__ = "console_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # How the account signs what it sends (an admin's answer to a resident): the linked
    # officer's name when empty.
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    officer_id: Mapped[str | None] = mapped_column(ForeignKey("officers.id"))
    script: Mapped[Script] = mapped_column(String(4), default="hant")  # the console's: hant | hans
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is stored, so a
    copy of the database opens no session. ``csrf_token`` is what every form must carry."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("console_accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ConsoleFormUse(Base):
    """A form that was submitted once: each rendered action form carries a random nonce, and
    a second submission of the same one (a double click, the browser's back and resend)
    finds this row and changes nothing."""

    __tablename__ = "console_form_uses"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("console_accounts.id"))
    used_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """Who did what in the console, and every showing of personal data.

    ``action``: ``login``, ``login_failed``, ``locked``, ``logout``, ``session_expired``,
    ``personal_data_shown``, ``ticket_*``, ``export``, ``account_*``. ``target`` names the
    object (``ticket:A1023``); ``detail`` never holds personal data.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("console_accounts.id"), index=True)
    # As typed at sign-in when it names no account is not kept (it may be a password typed
    # into the wrong field): "-" then.
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(64))
