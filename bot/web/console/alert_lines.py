"""What the 緊急通報 pages read and how the form becomes the service's input: who may send and
for which stations, which notices a viewer sees, each notice's delivery per group and its
clue tickets in words. States come from ``broadcasts/alert_views.py``, the API's; rules (the
text, the scope, the media, recall) from ``broadcasts/alerts.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ticket_service import may_read_words
from bot.web.console.bulletin_views import author_names
from bot.web.console.ui import Ui
from bot.web.console.uploads import UploadForm
from bot.web.console.viewer import Viewer
from broadcasts.alert_views import (
    AlertGroupView,
    alert_state,
    clue_tickets,
    group_states,
    reached_stations,
    totals_of,
)
from broadcasts.alerts import may_recall
from broadcasts.bulletins import Problem
from models.bulletins import Alert
from models.directory import Group, Officer, Station
from models.tokens import ApiToken

SCOPE_KINDS = ("stations", "groups", "all")
LIST_SIZE = 100


def may_send(who: Viewer) -> bool:
    """Admins send to the county, leaders to their station and those below it; officers see
    the notices that reach their groups."""
    return who.is_admin or (who.role == "leader" and bool(who.scope.stations))


def within(who: Viewer) -> frozenset[str] | None:
    """The stations a viewer's notices may reach (None: every station)."""
    return None if who.is_admin else (who.scope.stations or frozenset())


def authors(who: Viewer) -> frozenset[str]:
    """Every name the viewer acts under: the account, and its officer in the chat."""
    names = {f"console:{who.account.username}"}
    if who.officer is not None:
        names.add(f"officer:{who.officer.id}")
    return frozenset(names)


async def visible(session: AsyncSession, who: Viewer, alert: Alert) -> bool:
    """Admins see every notice; others those sent to a group of their stations."""
    if alert.kind != "alert":
        return False
    if who.is_admin:
        return True
    return any(who.scope.covers_station(s) for s in await reached_stations(session, alert.id))


async def may_recall_here(session: AsyncSession, who: Viewer, alert: Alert) -> bool:
    """Whether the viewer may recall ``alert`` from the console (the service's rule)."""
    return (
        may_send(who)
        and alert.status != "recalled"
        and await may_recall(session, alert, authors=authors(who), within=within(who))
    )


# --- the form --------------------------------------------------------------------------------
@dataclass
class AlertForm:
    """The form's fields as typed, so that a refused form comes back as it was."""

    text: str = ""
    media_url: str = ""  # an upload kept between submissions
    scope_kind: str = "stations"
    stations: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, posted: UploadForm) -> AlertForm:
        return cls(
            text=posted.get("text").strip(),
            media_url="" if posted.get("media_remove") else posted.get("media_url"),
            scope_kind=posted.get("scope_kind", "stations"),
            stations=posted.getlist("stations"),
            groups=posted.getlist("groups"),
        )

    def scope(self) -> dict[str, Any] | None:
        """The service's scope, or None when nothing was picked."""
        if self.scope_kind == "all":
            return {"all": True}
        picked = {"stations": self.stations, "groups": self.groups}.get(self.scope_kind)
        return {self.scope_kind: list(dict.fromkeys(picked))} if picked else None

    def digest(self, scope: dict[str, Any], media: dict[str, Any] | None) -> str:
        """A fingerprint of what a preview showed: sending checks it is still what is sent."""
        body = json.dumps([scope, self.text, media], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


def problem_error(problem: Problem, ui: Ui, names: dict[str, str]) -> tuple[str, str]:
    """A refusal of the service, worded, and the form field it belongs beside."""
    where = problem.field.split(".", 1)[0]
    where = where if where in ("text", "scope", "media") else "form"
    code = problem.code
    if code == "outside_scope":
        listed = "、".join(names.get(n, n) for n in problem.values.get("names", []))
        return where, ui.t("bf_outside_scope", names=listed)
    if code == "too_long":
        return where, ui.t("bf_too_long", limit=problem.values.get("limit", ""))
    key = {
        "required": "al_text_missing",
        "unknown": "bf_unknown_choice",
        "empty": "al_scope_empty",
        "scope_all": "bf_scope_all",
        "scope_tags": "bf_scope_tags",
        "media_kind": "al_media_kind",
        "recalled": "al_already_recalled",
    }.get(code, "bf_invalid")
    return where, ui.t(key)


# --- a notice in words -----------------------------------------------------------------------
@dataclass(frozen=True)
class GroupState:
    """One group's copy: sent (when), waiting, failed (why), withdrawn."""

    name: str
    station: str
    status: str
    sent_at: datetime | None
    attempts: int
    acks: int
    error: str | None
    maybe_sent: bool = False


@dataclass(frozen=True)
class Clue:
    """A clue ticket: its code, when and where, its state, and the words when allowed."""

    code: str
    at: datetime
    group: str
    status: str
    words: str | None
    in_scope: bool


@dataclass
class AlertLine:
    alert: Alert
    text: str
    scope: str
    author: str
    totals: dict[str, int]
    state: str  # broadcasts.alert_views.alert_state, the API's status
    acks: int
    clues: int
    groups: list[GroupState] = field(default_factory=list)


@dataclass(frozen=True)
class Names:
    stations: dict[str, str]
    groups: dict[str, tuple[str, str]]  # id -> (name, station id)
    authors: dict[str, str]

    @classmethod
    async def read(cls, session: AsyncSession) -> Names:
        stations = dict((await session.execute(select(Station.id, Station.name))).all())
        groups = {
            gid: (name, sid)
            for gid, name, sid in (
                await session.execute(select(Group.id, Group.name, Group.station_id))
            ).all()
        }
        people = await author_names(session)
        officers = (await session.execute(select(Officer.id, Officer.name))).all()
        people |= {f"officer:{oid}": name for oid, name in officers}
        return cls(stations, groups, people)

    def all(self) -> dict[str, str]:
        return self.stations | {g: n for g, (n, _) in self.groups.items()}


def scope_words(scope: dict[str, Any], ui: Ui, names: Names) -> str:
    """全縣所有群, or the stations' or groups' names."""
    if scope.get("all"):
        return ui.t("targets_all")
    listed = scope.get("stations") or scope.get("groups") or []
    every = names.all()
    return "、".join(every.get(i, ui.t("bl_gone")) for i in listed)


def author_word(created_by: str, names: Names, tokens: dict[str, str]) -> str:
    """Who sent it: the account's or officer's name; an API token's name."""
    if created_by in names.authors:
        return names.authors[created_by]
    if created_by.startswith("admin:"):
        return tokens.get(created_by, created_by.removeprefix("admin:"))
    return created_by


def _states(views: list[AlertGroupView], names: Names) -> list[GroupState]:
    out = []
    for v in views:
        name, station = names.groups.get(v.group_id, (v.group_id, ""))
        out.append(
            GroupState(
                name=name,
                station=names.stations.get(station, ""),
                status=v.status,
                sent_at=v.sent_at,
                attempts=v.attempts,
                acks=v.acks,
                error=v.error,
                maybe_sent=v.maybe_sent,
            )
        )
    return sorted(out, key=lambda g: (g.station, g.name))


async def line(
    session: AsyncSession, alert: Alert, *, ui: Ui, names: Names, tokens: dict[str, str]
) -> AlertLine:
    """A notice with its scope and author in words and its delivery per group."""
    views = await group_states(session, alert.id)
    totals = totals_of(views)
    clues = len(await clue_tickets(session, alert.id))
    return AlertLine(
        alert=alert,
        text=ui.runtime.cipher.decrypt(alert.text_enc) or "",
        scope=scope_words(alert.scope or {}, ui, names),
        author=author_word(alert.created_by, names, tokens),
        totals=totals,
        state=alert_state(alert, totals),
        acks=sum(v.acks for v in views),
        clues=clues,
        groups=_states(views, names),
    )


async def clues(
    session: AsyncSession, who: Viewer, alert: Alert, *, ui: Ui, names: Names
) -> list[Clue]:
    """The clue tickets of a notice; the residents' words only where ``may_read_words``
    lets the viewer read them (the caller audits each showing)."""
    out = []
    for t in await clue_tickets(session, alert.id):
        allowed = may_read_words(who.actor, t)
        words = (ui.runtime.cipher.decrypt(t.text_enc) or "") if allowed else None
        group = names.groups.get(t.group_id or "", ("", ""))[0]
        out.append(Clue(t.code, t.created_at, group, t.status, words, allowed))
    return out


async def token_names(session: AsyncSession) -> dict[str, str]:
    """``admin:NAME`` and ``admin:ID`` of API tokens → their name (how the API signs)."""
    rows = (await session.execute(select(ApiToken.id, ApiToken.name))).all()
    return {f"admin:{i}": n or str(i) for i, n in rows} | {f"admin:{n}": n for _, n in rows if n}
