"""What a household's page shows about its visits and plan: the last visit, whether the account
may record one (it needs a linked officer to record as), and the plan, to those
:func:`bot.services.visits.may_see_plan` allows; each showing of a plan is audited
(``plan_shown``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import visits
from bot.settings import VisitSettings
from bot.web.console.viewer import Viewer
from models.people import Household
from models.visits import VisitPlan


@dataclass(frozen=True)
class VisitPanel:
    """The household page's 走訪 part."""

    last_visit_at: datetime | None
    may_record: bool  # the account has a linked officer
    plan_visible: bool
    plan: VisitPlan | None
    reasons: dict[str, str]  # reason key → its label in the account's script


def reason_labels(settings: VisitSettings, script: str) -> dict[str, str]:
    """The configured plan reasons, key → label in ``script``."""
    return {key: visits.reason_label(settings, key, script) for key in settings.plan_reasons}


async def visit_panel(
    session: AsyncSession,
    *,
    who: Viewer,
    household: Household,
    settings: VisitSettings,
    now: datetime,
) -> VisitPanel:
    """The panel for ``who`` on ``household`` (the caller has checked the scope)."""
    officer = who.officer
    visible = officer is not None and await visits.may_see_plan(
        session, viewer=officer, household=household
    )
    plan = None
    if visible and officer is not None:
        plan = await session.scalar(select(VisitPlan).where(VisitPlan.household_id == household.id))
        if plan is not None:
            # Who is on a plan, and why, is what the plan audit protects: each showing counts.
            visits.audit(
                session,
                household_id=household.id,
                action="plan_shown",
                actor=f"officer:{officer.id}",
                now=now,
                detail="console household",
            )
    return VisitPanel(
        last_visit_at=await visits.last_visit_at(session, household.id),
        may_record=officer is not None,
        plan_visible=visible,
        plan=plan,
        reasons=reason_labels(settings, who.script),
    )
