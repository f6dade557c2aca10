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


def record(
    session: AsyncSession,
    *,
    now: datetime,
    action: str,
    account: ConsoleAccount | None = None,
    target: str | None = None,
    detail: str | None = None,
    ip: str | None = None,
) -> None:
    """Add an audit row. ``detail`` never carries personal data: what was shown is named
    (``words``, ``contacts``), never quoted."""
    session.add(
        AuditEntry(
            at=now,
            account_id=account.id if account is not None else None,
            username=account.username if account is not None else "-",
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
