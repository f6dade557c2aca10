"""入戶走訪 as a service: finding households on the roster, recording visits, adding and deleting
households, visit plans and who may see them.

Split by concern: ``roster`` (addresses, scopes, finding households), ``households`` (adding,
changing, deleting), ``records`` (visits) and ``plans``; callers import from the package.

The chat (handlers/visits.py), the console and the API call these. Functions take the open
session first and everything else by keyword; they write rows and never commit and never
message anyone (the overdue-plan reminders are in bot/services/visit_reminders.py). Names, numbers,
addresses and notes are encrypted with the runtime's cipher; what the audit keeps
(``household_events``) never holds them.
"""

from __future__ import annotations

from bot.services.visits.households import (
    Deleted,
    HouseholdLine,
    add_household,
    audit,
    delete_household,
    list_households,
    update_household,
)
from bot.services.visits.plans import (
    PlanLine,
    expire_choices,
    find_reason,
    plans_in_view,
    put_on_plan,
    reason_label,
    reasons_named,
    take_off_plan,
)
from bot.services.visits.records import VisitRow, last_visit_at, list_visits, next_due, record_visit
from bot.services.visits.roster import (
    Found,
    Scope,
    VisitError,
    address_contains,
    address_key,
    find_households,
    households_by_id,
    is_county_centre,
    may_see_plan,
    officer_scope,
    plan_stations,
    station_of,
    t2s,
)

__all__ = [
    "Deleted",
    "Found",
    "HouseholdLine",
    "PlanLine",
    "Scope",
    "VisitError",
    "VisitRow",
    "add_household",
    "address_contains",
    "address_key",
    "audit",
    "delete_household",
    "expire_choices",
    "find_households",
    "find_reason",
    "households_by_id",
    "is_county_centre",
    "last_visit_at",
    "list_households",
    "list_visits",
    "may_see_plan",
    "next_due",
    "officer_scope",
    "plan_stations",
    "plans_in_view",
    "put_on_plan",
    "reason_label",
    "reasons_named",
    "record_visit",
    "station_of",
    "t2s",
    "take_off_plan",
    "update_household",
]
