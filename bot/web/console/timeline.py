"""A ticket's timeline in words: each event's kind, who acted (by name), what it concerned
(officers by name, categories in words) and its note (answers, residents' words), decrypted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.pii import PiiCipher
from bot.web.console.ui import Ui
from models.tickets import TicketEvent

_WORD = re.compile(r"[^\s,;()]+")
_COUNT = re.compile(r"to (\d+) reporter")


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str
    label: str
    actor: str
    detail: str
    note: str | None


def actor_name(actor: str, ui: Ui, officers: dict[str, str], accounts: dict[str, str]) -> str:
    """``officer:off-wang`` → 王警官, ``console:admin`` → the account's name."""
    kind, _, who = actor.partition(":")
    if kind == "officer":
        return officers.get(who, who)
    if kind == "console":
        return accounts.get(who, who)
    if actor in ("resident", "neighbour"):
        return ui.t(f"actor_{actor}")
    return ui.t("actor_system")


def _detail(event: TicketEvent, ui: Ui, officers: dict[str, str]) -> str:
    """What the event's (internal, English) detail means, in the viewer's words, naming
    officers instead of printing their ids."""
    detail = event.detail or ""
    if event.kind == "classified" and "->" in detail:
        before, _, after = (part.strip() for part in detail.partition("->"))
        after, _, stood_down = after.partition(" ")
        changed = f"{ui.cat(before)} → {ui.cat(after)}"
        return f"{changed} {ui.t('ev_no_emergency')}" if stood_down else changed
    if event.kind in ("transferred", "handover") and "->" in detail:
        before, _, after = detail.partition("->")
        left = officers.get(before.strip(), ui.t("nobody"))
        right = officers.get(after.split()[0] if after.split() else "", ui.t("nobody"))
        return f"{left} → {right}"
    if event.kind == "answered":
        found = _COUNT.search(detail)
        return ui.t("ev_answered_count", count=found.group(1)) if found else ""
    if event.kind == "merged":
        return ui.t("ev_merged_same" if detail == "same resident" else "ev_merged_other")
    if event.kind == "rated" and detail in ("satisfied", "unsatisfied"):
        return ui.t(f"sat_{detail}")
    if event.kind == "opened":
        return ""  # the classifier's internals: the category is shown above
    named = [officers[w] for w in _WORD.findall(detail) if w in officers]
    return ui.t("ev_officers", names="、".join(dict.fromkeys(named))) if named else ""


def steps(
    events: list[TicketEvent],
    ui: Ui,
    cipher: PiiCipher,
    *,
    officers: dict[str, str],
    accounts: dict[str, str],
    with_notes: bool,
) -> list[Step]:
    """The timeline, oldest first; notes only ``with_notes`` (they may quote residents)."""
    return [
        Step(
            at=e.at,
            kind=e.kind,
            label=ui.t(f"ev_{e.kind}") if ui.has(f"ev_{e.kind}") else e.kind,
            actor=actor_name(e.actor, ui, officers, accounts),
            detail=_detail(e, ui, officers),
            note=(cipher.decrypt(e.note_enc) if with_notes and e.note_enc else None),
        )
        for e in events
    ]
