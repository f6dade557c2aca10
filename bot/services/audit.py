"""The console's audit log: sign-ins, failures, lock-outs, sign-outs, what accounts did, and
every showing of personal data (CONTRACT §7). Rows are written in the same transaction as
what they record and are never changed; admins read them on the console's 審計 page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.console import AuditEntry, ConsoleAccount

# A showing of residents' words or contact details.
PERSONAL_DATA_SHOWN = "personal_data_shown"

# Every action an audit row may name. The 審計 page shows each by its label
# (``audit_action_<name>`` in the console's texts, both scripts); :func:`record` refuses a
# name missing here, so a new action cannot reach the page as a bare English word.
ACTIONS: frozenset[str] = frozenset(
    {
        # sign-in and sessions
        "login",
        "login_failed",
        "login_throttled",
        "locked",
        "logout",
        "session_expired",
        "script_changed",
        # accounts (lianxin account …)
        "account_disabled",
        "account_enabled",
        "account_unlocked",
        "password_reset",
        # what was shown or taken away
        PERSONAL_DATA_SHOWN,
        "export",
        "report",
        # tickets
        "ticket_acknowledged",
        "ticket_answered",
        "ticket_closed",
        "ticket_transferred",
        "ticket_classified",
        # bulletins and urgent notices
        "bulletin_created",
        "bulletin_edited",
        "bulletin_cancelled",
        "bulletin_paused",
        "bulletin_resumed",
        "alert_sent",
        "alert_recalled",
        # organisation
        "roster_edited",
        "group_officer_changed",
        "directory_loaded",
        # disputes
        "dispute_graded",
        "dispute_mediated",
        "dispute_agreement",
        "dispute_escalated",
        "dispute_referred",
        "dispute_followed_up",
        # households and visits
        "household_added",
        "household_edited",
        "household_deleted",
        "visit_recorded",
        "plan_put_on",
        "plan_taken_off",
    }
)


def record(
    session: AsyncSession,
    *,
    now: datetime,
    action: str,
    account: ConsoleAccount | None = None,
    target: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
    by: str | None = None,
) -> None:
    """Add an audit row. ``detail`` never carries personal data: what was shown is named
    (``words``, ``contacts``), never quoted. ``action`` is one of :data:`ACTIONS`. ``by``
    names who acted when no console account did (``officer:off-wang``, from the chat)."""
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r} is not in audit.ACTIONS (give it a label)")
    session.add(
        AuditEntry(
            at=now,
            account_id=account.id if account is not None else None,
            username=account.username if account is not None else (by or "-")[:64],
            action=action,
            target=target,
            detail=detail[:500] if detail else None,
            ip=(ip or None) and ip[:64],
        )
    )


async def entries(
    session: AsyncSession,
    *,
    limit: int = 100,
    offset: int = 0,
    action: str | None = None,
    username: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """The newest audit rows first, optionally of one action or account, and how many match."""
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if username:
        query = query.where(AuditEntry.username == username.strip().lower())
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


async def actions(session: AsyncSession) -> list[str]:
    """The actions that occur in the log (for the page's filter)."""
    return sorted(await session.scalars(select(AuditEntry.action).distinct()))
