"""Officers' visit commands in the chat (CONTRACT §5, 入戶走訪), both scripts:

- ``走訪 地址或戶主 情況`` (``走访``): a visit, matched against the roster of the officer's
  station subtree by the householder's name or the address (or part of it), in the group the
  officer writes in (privately: their own groups) first. Several matches: a numbered choice,
  answered with ``走訪 N``. None: an offer to add the household to a group, answered with
  ``走訪 N 戶主姓名 [手機號]`` (for an address) or ``走訪 N [地址] [手機號]`` (for a name).
- ``待訪`` (``待访``): the officer's plan households that are due; a leader also sees those of
  their stations overdue by ``visits.remind_after_days``.
- ``入冊 地址或戶主 理由 [頻次]`` (``入册``): on the visit plan (reasons: ``visits.plan_reasons``);
  ``出冊 地址或戶主`` (``出册``): off it. Only the station's officers and its leaders.

Everything is told to the officer privately (the replies name households); the outbox keeps
them without the names once sent, and the journal keeps only the command word: the visit, the
household and the choice hold what the officer wrote, encrypted. Other senders' messages pass on.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from bot.pii import mask_name
from bot.services.dispute_cases import local_date
from bot.services.identity import check_name
from bot.services.tickets import Out
from bot.services.visits import (
    Found,
    PlanLine,
    VisitError,
    add_household,
    find_households,
    households_by_id,
    may_see_plan,
    officer_scope,
    plans_in_view,
    put_on_plan,
    reason_label,
    reasons_named,
    record_visit,
    take_off_plan,
)
from handlers.commands import clean
from handlers.context import HandlerContext
from models.directory import Group, Officer
from models.people import Household
from models.visits import VisitChoice, VisitPlan

_COMMAND = re.compile(r"^(?P<word>走訪|走访|入冊|入册|出冊|出册)(?:[\s:：]+(?P<rest>.*))?$", re.S)
_TODO = re.compile(r"^(?:待訪|待访)$")
_MENTIONS = re.compile(r"^(?:[@＠]\S+[\s\u2005]*)+")  # "@連心 走訪 …"
_CHOICE = re.compile(r"^(?P<n>\d{1,2})(?:[\s,，:：]+(?P<extra>.*))?$", re.S)
_SPLIT = re.compile(r"[\s,，:：;；]+")
# A mainland mobile number as people type it: 13700009999, 137 0000 9999, +86-137-0000-9999.
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
_ACTIONS = {
    "走訪": "visit",
    "走访": "visit",
    "入冊": "plan",
    "入册": "plan",
    "出冊": "unplan",
    "出册": "unplan",
}
_WORDS = {
    ("visit", "hant"): "走訪",
    ("visit", "hans"): "走访",
    ("plan", "hant"): "入冊",
    ("plan", "hans"): "入册",
    ("unplan", "hant"): "出冊",
    ("unplan", "hans"): "出册",
}
# An address names a place: digits or the words of Chinese addresses. Anything else that is
# a valid name is taken for the householder's.
_ADDRESS_WORDS = re.compile(
    r"\d|[村組组號号路街巷弄棟栋樓楼室屯鎮镇鄉乡]|單元|单元|社區|社区|小區|小区"
)
_EVERY_WORDS = {
    "每週": 7,
    "每周": 7,
    "每星期": 7,
    "每兩週": 14,
    "每两周": 14,
    "每半月": 15,
    "每月": 30,
    "每個月": 30,
    "每个月": 30,
    "每季": 91,
    "每季度": 91,
    "weekly": 7,
    "monthly": 30,
}
_EVERY_DAYS = re.compile(r"^(?:每)?(\d{1,3})\s*(?:天|日|d)$")
MAX_OPTIONS = 9


async def visit_commands(ctx: HandlerContext) -> bool:
    """Take an officer's 走訪, 待訪, 入冊 or 出冊; every other event passes on."""
    officer = ctx.officer
    if officer is None or ctx.event.kind != "message":
        return False
    # Matched as written (not NFKC-folded like other commands): the note is stored, and the
    # officer's "，" and "：" are theirs. Full-width digits and spaces still match \d and \s.
    body = _MENTIONS.sub("", ctx.event.text.strip()).strip()
    if _TODO.match(clean(body)):
        await _Visits(ctx, officer, "visit").todo()
        return True
    match = _COMMAND.match(body)
    if match is None:
        return False
    action = _ACTIONS[match.group("word")]
    rest = (match.group("rest") or "").strip()
    if rest:
        # The visit (or household, or choice) keeps what was written, encrypted; the journal
        # would keep a second copy that deleting the household could not reach.
        await ctx.redact_journal(f"{match.group('word')} …")
    visits = _Visits(ctx, officer, action)
    choice = _CHOICE.match(rest)
    if not rest:
        visits.tell("unplan_usage" if action == "unplan" else "visit_usage")
    elif choice:
        await visits.answer(int(choice.group("n")), (choice.group("extra") or "").strip())
    elif action == "visit":
        await visits.visit(rest)
    elif action == "plan":
        await visits.plan(rest)
    else:
        await visits.unplan(rest)
    return True


def _split(rest: str) -> tuple[str, str]:
    """The household (first word) and the rest as written (the note)."""
    parts = _SPLIT.split(rest, maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else "").strip()


def _every(word: str) -> int | None:
    """Days between visits from ``每月``, ``每週``, ``15天``…; None when not understood."""
    word = word.strip().casefold()
    if word in _EVERY_WORDS:
        return _EVERY_WORDS[word]
    match = _EVERY_DAYS.match(word)
    if match and 1 <= int(match.group(1)) <= 366:
        return int(match.group(1))
    return None


def looks_like_address(key: str) -> bool:
    """Whether ``key`` reads as an address rather than a householder's name."""
    if _ADDRESS_WORDS.search(key):
        return True
    try:
        check_name(key)
    except ValueError:
        return True
    return False


class _Visits:
    """One officer's visit command being handled."""

    def __init__(self, ctx: HandlerContext, officer: Officer, action: str) -> None:
        self.ctx = ctx
        self.officer = officer
        self.action = action
        self.out = Out.of(ctx)
        self.cipher = ctx.runtime.cipher
        self.settings = ctx.runtime.settings.visits

    # --- saying things ----------------------------------------------------------------------
    @property
    def by(self) -> str:
        return f"officer:{self.officer.id}"

    @property
    def command(self) -> str:
        return _WORDS[(self.action, self.ctx.script)]

    @property
    def minutes(self) -> int:
        return max(1, self.settings.choice_ttl_s // 60)

    def say(self, sentence: str, /, **values: Any) -> str:
        return self.ctx.text(sentence, **values)

    def tell(self, sentence: str = "", /, *, text: str | None = None, **values: Any) -> None:
        """A private answer to the officer, kept in the outbox without its content once sent
        (it may name households)."""
        message = text if text is not None else self.say(sentence, **values)
        self.out.to_officer(self.officer, message, kept_text=self.say("visit_reply_kept"))

    async def group_name(self, group_id: str | None) -> str:
        group = await self.ctx.session.get(Group, group_id) if group_id else None
        return group.name if group else "-"

    async def where(self, found: Found) -> str:
        return f"{found.address or '-'} · {await self.group_name(found.group_id)}"

    # --- finding ----------------------------------------------------------------------------
    async def own_groups(self) -> list[str]:
        rows = await self.ctx.session.scalars(
            select(Group.id).where(Group.officer_id == self.officer.id).order_by(Group.id)
        )
        return list(rows)

    async def find(self, key: str) -> list[Found]:
        scope = await officer_scope(self.ctx.session, officer=self.officer)
        group = self.ctx.group
        prefer = [group.id] if group is not None else await self.own_groups()
        return await find_households(
            self.ctx.session, self.cipher, key=key, scope=scope, prefer_groups=prefer
        )

    async def save_choice(self, options: list[dict[str, Any]], payload: dict[str, Any]) -> None:
        """The officer's pending choice; a new one replaces the one before."""
        session = self.ctx.session
        await session.execute(delete(VisitChoice).where(VisitChoice.officer_id == self.officer.id))
        session.add(
            VisitChoice(
                officer_id=self.officer.id,
                action=self.action,
                options=options,
                payload_enc=self.cipher.encrypt_json(payload),
                created_at=self.ctx.now,
                expires_at=self.ctx.now + timedelta(seconds=self.settings.choice_ttl_s),
            )
        )

    async def offer(self, key: str, found: list[Found], payload: dict[str, Any]) -> None:
        if len(found) > MAX_OPTIONS:
            self.tell("visit_too_many", key=key, count=len(found))
            return
        await self.save_choice([{"household": f.id} for f in found], payload)
        lines = [
            self.say(
                "visit_choose",
                key=key,
                count=len(found),
                command=self.command,
                minutes=self.minutes,
            )
        ]
        for n, item in enumerate(found, 1):
            lines.append(
                self.say(
                    "visit_option_line",
                    n=n,
                    name=mask_name(item.name),
                    address=item.address or "-",
                    group=await self.group_name(item.group_id),
                )
            )
        self.tell(text="\n".join(lines))

    # --- 走訪 -------------------------------------------------------------------------------
    async def visit(self, rest: str) -> None:
        key, note = _split(rest)
        if not note:
            self.tell("visit_usage_note")
            return
        found = await self.find(key)
        if len(found) == 1:
            await self.record(found[0], note)
        elif found:
            await self.offer(key, found, {"key": key, "note": note})
        else:
            await self.offer_new(key, note)

    async def record(self, found: Found, note: str, *, added: bool = False) -> None:
        try:
            visit = await record_visit(
                self.ctx.session,
                self.cipher,
                household_id=found.id,
                officer=self.officer,
                note=note,
                at=self.ctx.now,
                now=self.ctx.now,
            )
        except VisitError as exc:
            self.tell(exc.key, **exc.values)
            return
        plan = await self.ctx.session.scalar(
            select(VisitPlan).where(VisitPlan.household_id == found.id)
        )
        following = (
            self.say(
                "visit_recorded_plan",
                reason=reason_label(self.settings, plan.reason, self.ctx.script),
                date=local_date(self.ctx.runtime, plan.next_due_at),
            )
            if plan is not None
            else ""
        )
        text = self.say(
            "visit_recorded",
            who=mask_name(found.name),
            where=await self.where(found),
            plan=following,
        )
        if added:
            group = await self.group_name(found.group_id)
            text = self.say("visit_added", who=mask_name(found.name), group=group) + "\n" + text
        assert visit.id is not None
        self.tell(text=text)

    async def new_groups(self) -> list[Group]:
        """Where a household met at a visit can be added: the group the officer wrote in (if
        theirs to work on), else their own groups, else their station's."""
        session = self.ctx.session
        scope = await officer_scope(session, officer=self.officer)
        group = self.ctx.group
        if group is not None and (scope.stations is None or group.station_id in scope.stations):
            return [group]
        own = list(
            await session.scalars(
                select(Group).where(Group.officer_id == self.officer.id).order_by(Group.id)
            )
        )
        if own:
            return own[:MAX_OPTIONS]
        station = await session.scalars(
            select(Group)
            .where(Group.station_id == self.officer.station_id)
            .order_by(Group.id)
            .limit(MAX_OPTIONS)
        )
        return list(station)

    async def offer_new(self, key: str, note: str) -> None:
        groups = await self.new_groups()
        if not groups:
            self.tell("visit_unknown", key=key)
            return
        kind = "address" if looks_like_address(key) else "name"
        await self.save_choice(
            [{"group": g.id} for g in groups], {"key": key, "note": note, "kind": kind}
        )
        lines = [self.say(f"visit_not_found_{kind}", key=key, minutes=self.minutes)]
        lines += [
            self.say("visit_new_group_line", n=n, group=g.name) for n, g in enumerate(groups, 1)
        ]
        self.tell(text="\n".join(lines))

    # --- the answer to a choice -------------------------------------------------------------
    async def answer(self, n: int, extra: str) -> None:
        session, now = self.ctx.session, self.ctx.now
        choice = await session.scalar(
            select(VisitChoice).where(VisitChoice.officer_id == self.officer.id)
        )
        if choice is None or choice.expires_at <= now:
            if choice is not None:
                await session.delete(choice)
            self.tell("visit_choice_none", minutes=self.minutes)
            return
        if choice.action != self.action:
            command = _WORDS[(choice.action, self.ctx.script)]
            self.tell("visit_choice_other", command=command)
            return
        if not 1 <= n <= len(choice.options):
            self.tell("visit_choice_range", count=len(choice.options), command=self.command)
            return
        payload = self.cipher.decrypt_json(choice.payload_enc)
        option = choice.options[n - 1]
        if "group" in option:
            if await self.add_and_record(n, option["group"], payload, extra):
                await session.delete(choice)
            return
        matches = await households_by_id(session, self.cipher, [option["household"]])
        found = matches[0] if matches else None
        await session.delete(choice)
        if found is None:
            self.tell("visit_household_gone")
            return
        if self.action == "visit":
            await self.record(found, payload["note"])
        elif self.action == "plan":
            await self.set_plan(found, payload["reason"], payload.get("every"))
        else:
            await self.end_plan(found)

    async def add_and_record(
        self, n: int, group_id: str, payload: dict[str, Any], extra: str
    ) -> bool:
        """A new household from a 走訪 that matched nobody; False (the choice kept for
        another try) when the answer lacks or garbles the name or the number."""
        phone_match = _MOBILE.search(extra)
        phone = phone_match.group(0) if phone_match else None
        words = (
            (extra[: phone_match.start()] + extra[phone_match.end() :]) if phone_match else extra
        )
        words = words.strip(" ,，:：;；")
        if payload["kind"] == "address":
            name, address = words, payload["key"]
            if not name:
                self.tell("visit_need_name", n=n)
                return False
        else:
            name, address = payload["key"], words or None
        try:
            household = await add_household(
                self.ctx.session,
                self.cipher,
                name=name,
                address=address,
                phone=phone,
                group_id=group_id,
                actor=self.by,
                now=self.ctx.now,
            )
        except VisitError as exc:
            self.tell(exc.key, **exc.values)
            return False
        [found] = await households_by_id(self.ctx.session, self.cipher, [household.id])
        await self.record(found, payload["note"], added=True)
        return True

    # --- 入冊 and 出冊 ------------------------------------------------------------------------
    def reasons_text(self) -> str:
        return "、".join(
            reason_label(self.settings, key, self.ctx.script) for key in self.settings.plan_reasons
        )

    async def plan(self, rest: str) -> None:
        words = _SPLIT.split(rest)
        if len(words) < 2:
            self.tell("plan_usage", reasons=self.reasons_text())
            return
        key, reason_word, *more = words
        named = reasons_named(self.settings, reason_word)
        if len(named) > 1:
            labels = "、".join(reason_label(self.settings, k, self.ctx.script) for k in named)
            self.tell("plan_ambiguous_reason", reason=reason_word, reasons=labels)
            return
        if not named:
            self.tell("plan_bad_reason", reason=reason_word, reasons=self.reasons_text())
            return
        reason = named[0]
        every = None
        if more:
            every = _every("".join(more))
            if every is None:
                self.tell("plan_bad_every", every=" ".join(more))
                return
        found = await self.find(key)
        if len(found) == 1:
            await self.set_plan(found[0], reason, every)
        elif found:
            await self.offer(key, found, {"key": key, "reason": reason, "every": every})
        else:
            self.tell("plan_not_found", key=key)

    async def unplan(self, rest: str) -> None:
        key, _ = _split(rest)
        found = await self.find(key)
        if len(found) == 1:
            await self.end_plan(found[0])
        elif found:
            await self.offer(key, found, {"key": key})
        else:
            self.tell("plan_not_found", key=key)

    async def allowed(self, found: Found) -> bool:
        household = await self.ctx.session.get(Household, found.id)
        if household is None or not await may_see_plan(
            self.ctx.session, viewer=self.officer, household=household
        ):
            self.tell("plan_not_allowed")
            return False
        return True

    async def set_plan(self, found: Found, reason: str, every: int | None) -> None:
        if not await self.allowed(found):
            return
        session = self.ctx.session
        group = await session.get(Group, found.group_id) if found.group_id else None
        officer_id = (group.officer_id if group else None) or self.officer.id
        plan = await put_on_plan(
            session,
            settings=self.settings,
            household_id=found.id,
            reason=reason,
            every_days=every,
            officer_id=officer_id,
            by=self.by,
            now=self.ctx.now,
        )
        responsible = await session.get(Officer, plan.officer_id or "")
        self.tell(
            "plan_set",
            who=mask_name(found.name),
            where=await self.where(found),
            reason=reason_label(self.settings, plan.reason, self.ctx.script),
            every=plan.every_days,
            officer=responsible.name if responsible else "-",
            due=local_date(self.ctx.runtime, plan.next_due_at),
        )

    async def end_plan(self, found: Found) -> None:
        if not await self.allowed(found):
            return
        ended = await take_off_plan(
            self.ctx.session, household_id=found.id, by=self.by, now=self.ctx.now
        )
        self.tell(
            "plan_ended" if ended else "plan_none",
            who=mask_name(found.name),
            where=await self.where(found),
        )

    # --- 待訪 --------------------------------------------------------------------------------
    async def todo(self) -> None:
        session, now = self.ctx.session, self.ctx.now
        mine = await plans_in_view(
            session,
            self.cipher,
            viewer=self.officer,
            now=now,
            officer_id=self.officer.id,
            due_by=now,
            purpose="待訪",
        )
        lines = (
            [self.say("visit_todo_header", count=len(mine))]
            if mine
            else [self.say("visit_todo_none")]
        )
        lines += [self.todo_line(n, line) for n, line in enumerate(mine, 1)]
        if self.officer.role == "leader":
            days = self.settings.remind_after_days
            others = await plans_in_view(
                session,
                self.cipher,
                viewer=self.officer,
                now=now,
                due_by=now - timedelta(days=days),
                not_officer=self.officer.id,  # their own are listed above
                purpose="待訪 (leader: overdue in the stations)",
            )
            if others:
                lines.append(self.say("visit_todo_station_header", days=days, count=len(others)))
                for n, line in enumerate(others, 1):
                    officer = await session.get(Officer, line.officer_id or "")
                    lines.append(
                        self.say(
                            "visit_todo_station_line",
                            n=n,
                            name=mask_name(line.name),
                            address=line.address or "-",
                            reason=reason_label(self.settings, line.reason, self.ctx.script),
                            officer=officer.name if officer else "-",
                            due=local_date(self.ctx.runtime, line.next_due_at),
                        )
                    )
        self.tell(text="\n".join(lines))

    def todo_line(self, n: int, line: PlanLine) -> str:
        late = _days_late(line.next_due_at, self.ctx.now)
        return self.say(
            "visit_todo_line",
            n=n,
            name=mask_name(line.name),
            address=line.address or "-",
            reason=reason_label(self.settings, line.reason, self.ctx.script),
            every=line.every_days,
            due=local_date(self.ctx.runtime, line.next_due_at),
            late=self.say("visit_todo_late", days=late) if late > 0 else "",
        )


def _days_late(due: datetime, now: datetime) -> int:
    return int((now - due).total_seconds() // 86400)
