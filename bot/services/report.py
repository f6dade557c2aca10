"""The month's report for the bureau (CONTRACT §1 ``lianxin report``), as an Excel workbook.

A summary sheet with the month's figures in the order a county bureau reports its community
policing (visits and coverage, suggestions collected, items, disputes, emergencies, response
times, satisfaction, bulletins): the same figures as ``/api/v1/stats`` for the same month and
station (bot/services/stats.py computes both), each row with its key in that API. Then one sheet
each for the month's tickets, dispute cases, visits and bulletin runs: codes, categories, times and
counts, never residents' words, numbers or addresses; households by masked name only.

:func:`build_report` takes the open session; the CLI (bot/cli_report.py) and the console's
download both call it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher, mask_name
from bot.services.stats import LABELS, Period, compute_stats
from bot.texts import Script, Texts
from models.bulletins import Bulletin, BulletinDelivery, BulletinRun
from models.directory import Group, Officer, Station
from models.disputes import COLOURS, LEVELS, DisputeCase, ended_at, is_dispute
from models.outbox import OutboxMessage
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit

PERCENT = "0.00%"


@dataclass(frozen=True)
class SummaryRow:
    """A line of the summary: a section heading (``key`` None, ``value`` None) or a figure
    with its key in ``/api/v1/stats`` (dotted, e.g. ``visits.coverage``; ``derived:`` for
    figures computed from those, such as visits per household)."""

    label: str
    value: float | int | None = None
    key: str | None = None
    percent: bool = False


def summary_rows(stats: dict[str, Any], texts: Texts, script: Script) -> list[SummaryRow]:
    """The month's figures in the bureau's order."""

    def t(key: str, **values: Any) -> str:
        return texts.render(key, script, **values)

    visits, disputes = stats["visits"], stats["disputes"]
    households = visits["households"]
    rows = [
        SummaryRow(t("report_section_visits")),
        SummaryRow(t("report_visits_count"), visits["count"], "visits.count"),
        SummaryRow(t("report_visits_households"), households, "visits.households"),
        SummaryRow(
            t("report_visits_visited"), visits["visited_households"], "visits.visited_households"
        ),
        SummaryRow(
            t("report_visits_coverage"), visits["coverage"], "visits.coverage", percent=True
        ),
        SummaryRow(
            t("report_visits_rate"),
            round(visits["count"] / households, 4) if households else None,
            "derived:visits.count/visits.households",
            percent=True,
        ),
        SummaryRow(t("report_section_suggestions")),
        SummaryRow(t("report_suggestions"), stats["items"]["suggestion"], "items.suggestion"),
        SummaryRow(t("report_section_items")),
        SummaryRow(t("report_items_total"), sum(stats["items"].values()), "derived:sum(items)"),
        *(
            SummaryRow(t(f"cat_{label}"), stats["items"].get(label, 0), f"items.{label}")
            for label in LABELS
        ),
        SummaryRow(t("report_section_disputes")),
        SummaryRow(
            t("report_disputes_total"),
            sum(disputes["by_colour"].values()),
            "derived:sum(disputes.by_colour)",
        ),
        *(
            SummaryRow(
                t("report_disputes_colour", colour=t(f"colour_{colour}")),
                disputes["by_colour"].get(colour, 0),
                f"disputes.by_colour.{colour}",
            )
            for colour in COLOURS
        ),
        *(
            SummaryRow(
                t("report_disputes_level", level=t(f"level_{level}")),
                disputes["by_level"].get(level, 0),
                f"disputes.by_level.{level}",
            )
            for level in LEVELS
        ),
        SummaryRow(t("report_disputes_resolved"), disputes["resolved"], "disputes.resolved"),
        SummaryRow(t("report_disputes_referred"), disputes["referred"], "disputes.referred"),
        SummaryRow(t("report_section_emergencies")),
        SummaryRow(t("report_emergencies"), stats["emergencies"], "emergencies"),
        SummaryRow(t("report_section_times")),
        SummaryRow(t("report_ack_p50"), stats["ack_minutes"]["p50"], "ack_minutes.p50"),
        SummaryRow(t("report_ack_p90"), stats["ack_minutes"]["p90"], "ack_minutes.p90"),
        SummaryRow(t("report_answer_p50"), stats["answer_hours"]["p50"], "answer_hours.p50"),
        SummaryRow(t("report_answer_p90"), stats["answer_hours"]["p90"], "answer_hours.p90"),
        SummaryRow(t("report_section_satisfaction")),
        SummaryRow(t("report_rated"), stats["satisfaction"]["rated"], "satisfaction.rated"),
        SummaryRow(
            t("report_satisfied"), stats["satisfaction"]["satisfied"], "satisfaction.satisfied"
        ),
        SummaryRow(
            t("report_satisfaction_rate"),
            stats["satisfaction"]["rate"],
            "satisfaction.rate",
            percent=True,
        ),
        SummaryRow(t("report_section_bulletins")),
        SummaryRow(t("report_bulletins_runs"), stats["bulletins"]["runs"], "bulletins.runs"),
        SummaryRow(
            t("report_bulletins_delivered"), stats["bulletins"]["delivered"], "bulletins.delivered"
        ),
        SummaryRow(t("report_bulletins_failed"), stats["bulletins"]["failed"], "bulletins.failed"),
    ]
    return rows


class _Sheets:
    """Writes the workbook's sheets in one script and timezone."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        cipher: PiiCipher,
        texts: Texts,
        timezone: str,
        period: Period,
        script: Script,
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.texts = texts
        self.tz = ZoneInfo(timezone)
        self.period = period
        self.script = script
        self.stations: dict[str, str] = {}
        self.groups: dict[str, str] = {}
        self.officers: dict[str, str] = {}

    def t(self, key: str, **values: Any) -> str:
        return self.texts.render(key, self.script, **values)

    def word(self, key: str, fallback: str) -> str:
        """A vocabulary word (a category), or ``fallback`` when the texts have none."""
        return self.t(key) if key in self.texts else fallback

    def local(self, at: datetime | None) -> datetime | None:
        """Excel keeps no time zones: local wall-clock time, as the bureau reads it."""
        return at.astimezone(self.tz).replace(tzinfo=None, microsecond=0) if at else None

    async def names(self) -> None:
        self.stations = dict((await self.session.execute(select(Station.id, Station.name))).all())
        self.groups = dict((await self.session.execute(select(Group.id, Group.name))).all())
        self.officers = dict((await self.session.execute(select(Officer.id, Officer.name))).all())

    def table(self, sheet: Worksheet, header_key: str, rows: Iterable[list[Any]]) -> None:
        header = self.t(header_key).split("|")
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        count = 0
        for row in rows:
            sheet.append(row)
            count += 1
        for index, title in enumerate(header, 1):
            sheet.column_dimensions[get_column_letter(index)].width = max(10, 2 * len(title) + 2)
        sheet.freeze_panes = "A2"
        if count == 0:
            sheet.append([self.t("report_none")])

    async def tickets(self, sheet: Worksheet) -> None:
        period = self.period
        query = (
            select(Ticket)
            .where(Ticket.created_at >= period.start, Ticket.created_at < period.end)
            .order_by(Ticket.created_at, Ticket.id)
        )
        if period.stations is not None:
            query = query.where(Ticket.station_id.in_(sorted(period.stations)))
        rows = []
        for ticket in (await self.session.scalars(query)).all():
            rows.append(
                [
                    ticket.code,
                    self.t(f"cat_{ticket.category}"),
                    self.t("report_yes") if ticket.emergency else self.t("report_no"),
                    ticket.priority,
                    self.t(f"status_{ticket.status}"),
                    self.stations.get(ticket.station_id or "", "-"),
                    self.groups.get(ticket.group_id or "", "-"),
                    self.officers.get(ticket.assigned_officer_id or "", "-"),
                    self.local(ticket.created_at),
                    self.local(ticket.ack_time),
                    self.local(ticket.first_answered_at or ticket.answered_at),
                    self.local(ticket.closed_at),
                    _minutes(ticket.created_at, ticket.ack_time, 60),
                    _minutes(ticket.created_at, ticket.answer_time, 3600),
                    self.t(f"report_{ticket.satisfaction}_word") if ticket.satisfaction else "",
                ]
            )
        self.table(sheet, "report_tickets_header", rows)
        for column in "IJKL":
            for cell in sheet[column][1:]:
                cell.number_format = "yyyy-mm-dd hh:mm"

    async def disputes(self, sheet: Worksheet) -> None:
        period = self.period
        query = (
            select(DisputeCase, Ticket.code)
            .join(Ticket, Ticket.id == DisputeCase.ticket_id)
            .where(
                is_dispute(),
                DisputeCase.opened_at >= period.start,
                DisputeCase.opened_at < period.end,
            )
            .order_by(DisputeCase.opened_at, DisputeCase.id)
        )
        if period.stations is not None:
            query = query.where(DisputeCase.station_id.in_(sorted(period.stations)))
        rows = [
            [
                code,
                self.t(f"colour_{case.colour}"),
                self.t(f"level_{case.level}"),
                self.t(f"dispute_status_{case.status}"),
                self.stations.get(case.station_id or "", "-"),
                self.local(case.opened_at),
                self.local(case.level_deadline),
                self.local(ended_at(case)),
                # 化解層級: only an agreement settles a case; a referral or withdrawal does not.
                self.t(f"level_{case.resolved_level}")
                if case.status == "resolved" and case.resolved_level
                else "",
            ]
            for case, code in (await self.session.execute(query)).all()
        ]
        self.table(sheet, "report_disputes_header", rows)
        for column in "FGH":
            for cell in sheet[column][1:]:
                cell.number_format = "yyyy-mm-dd hh:mm"

    async def visits(self, sheet: Worksheet) -> None:
        period = self.period
        query = (
            select(Visit, Household.name_enc)
            .outerjoin(Household, Household.id == Visit.household_id)
            .where(Visit.at >= period.start, Visit.at < period.end)
            .order_by(Visit.at, Visit.id)
        )
        if period.stations is not None:
            query = query.where(Visit.station_id.in_(sorted(period.stations)))
        rows = []
        for visit, name_enc in (await self.session.execute(query)).all():
            who = (
                mask_name(self.cipher.decrypt(name_enc) or "")
                if name_enc is not None
                else self.t("report_deleted_household")
            )
            rows.append(
                [
                    visit.id,
                    self.local(visit.at),
                    self.officers.get(visit.officer_id, visit.officer_id),
                    self.stations.get(visit.station_id or "", "-"),
                    self.groups.get(visit.group_id or "", "-"),
                    who,
                ]
            )
        self.table(sheet, "report_visits_header", rows)
        for cell in sheet["B"][1:]:
            cell.number_format = "yyyy-mm-dd hh:mm"

    async def bulletins(self, sheet: Worksheet) -> None:
        period = self.period
        query = (
            select(
                BulletinRun.id,
                Bulletin.title,
                Bulletin.category,
                BulletinRun.due_at,
                func.count(BulletinDelivery.id),
                func.sum(case((OutboxMessage.status == "sent", 1), else_=0)),
                func.sum(case((OutboxMessage.status == "failed", 1), else_=0)),
            )
            .join(Bulletin, Bulletin.id == BulletinRun.bulletin_id)
            .join(BulletinDelivery, BulletinDelivery.run_id == BulletinRun.id)
            .outerjoin(
                OutboxMessage, OutboxMessage.idempotency_key == BulletinDelivery.idempotency_key
            )
            .where(
                BulletinRun.status == "sent",
                BulletinRun.due_at >= period.start,
                BulletinRun.due_at < period.end,
            )
            .group_by(BulletinRun.id, Bulletin.title, Bulletin.category, BulletinRun.due_at)
            # Runs that went out, as the figures count them (stats.bulletin_figures).
            .having(func.sum(case((BulletinDelivery.status != "cancelled", 1), else_=0)) > 0)
            .order_by(BulletinRun.due_at, BulletinRun.id)
        )
        if period.stations is not None:
            query = query.join(Group, Group.id == BulletinDelivery.group_id).where(
                Group.station_id.in_(sorted(period.stations))
            )
        rows = [
            [
                run_id,
                title,
                self.word(f"bcat_{category}", category),
                self.local(due),
                int(groups),
                int(sent or 0),
                int(failed or 0),
                int(groups) - int(sent or 0) - int(failed or 0),
            ]
            for run_id, title, category, due, groups, sent, failed in (
                await self.session.execute(query)
            ).all()
        ]
        self.table(sheet, "report_bulletins_header", rows)
        for cell in sheet["D"][1:]:
            cell.number_format = "yyyy-mm-dd hh:mm"


def _title(sheets: _Sheets, scope: str, period: Period) -> str:
    """``全縣社區警務月報 2026年11月`` for a calendar month, else with the dates."""
    first, last = period.first, period.last
    whole_month = (
        first.day == 1
        and (first.year, first.month) == (last.year, last.month)
        and (last + timedelta(days=1)).day == 1
    )
    if whole_month:
        return sheets.t("report_title", scope=scope, year=first.year, month=first.month)
    return sheets.t(
        "report_title_range", scope=scope, first=first.isoformat(), last=last.isoformat()
    )


def _minutes(start: datetime, end: datetime | None, unit: int) -> float | None:
    return round((end - start).total_seconds() / unit, 2) if end else None


async def build_report(
    session: AsyncSession,
    *,
    cipher: PiiCipher,
    texts: Texts,
    timezone: str,
    period: Period,
    script: Script = "hans",
    generated_at: datetime,
) -> tuple[Workbook, dict[str, Any]]:
    """The month's workbook and the figures on its summary sheet (those of ``/api/v1/stats``)."""
    stats = await compute_stats(session, period)
    sheets = _Sheets(
        session, cipher=cipher, texts=texts, timezone=timezone, period=period, script=script
    )
    await sheets.names()
    book = Workbook()
    summary = book.active
    assert summary is not None
    summary.title = sheets.t("report_sheet_summary")
    scope = (
        sheets.stations.get(period.station, period.station)
        if period.station
        else sheets.t("report_county")
    )
    summary.append([_title(sheets, scope, period)])
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(
        [sheets.t("report_period", first=period.first.isoformat(), last=period.last.isoformat())]
    )
    summary.append(
        [sheets.t("report_generated", at=f"{sheets.local(generated_at):%Y-%m-%d %H:%M}")]
    )
    summary.append([])
    summary.append(
        [
            sheets.t("report_column_item"),
            sheets.t("report_column_value"),
            sheets.t("report_column_key"),
        ]
    )
    for cell in summary[5]:
        cell.font = Font(bold=True)
    for row in summary_rows(stats, texts, script):
        if row.key is None:
            summary.append([row.label])
            summary.cell(summary.max_row, 1).font = Font(bold=True)
            continue
        summary.append([row.label, row.value, row.key])
        if row.percent:
            summary.cell(summary.max_row, 2).number_format = PERCENT
    summary.column_dimensions["A"].width = 40
    summary.column_dimensions["B"].width = 14
    summary.column_dimensions["C"].width = 36
    for cells in summary.iter_rows(min_row=6, min_col=2, max_col=2):
        for cell in cells:
            cell.alignment = Alignment(horizontal="right")
    for title_key, write in (
        ("report_sheet_tickets", sheets.tickets),
        ("report_sheet_disputes", sheets.disputes),
        ("report_sheet_visits", sheets.visits),
        ("report_sheet_bulletins", sheets.bulletins),
    ):
        await write(book.create_sheet(sheets.t(title_key)))
    as_text(book)
    return book, stats


def as_text(book: Workbook) -> None:
    """Every text cell of ``book`` stored as text, never as a formula.

    openpyxl stores any string that starts with "=" as a formula, and the sheets hold what
    people typed (a bulletin's title, the directory's station, group and officer names): a
    title ``=HYPERLINK("http://…","x")`` would be a live formula in the bureau's Excel. The
    report has no formulas of its own, so every string is made plain text, on every sheet."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"


def workbook_bytes(book: Workbook) -> bytes:
    """The workbook as an .xlsx file's bytes (for a download)."""
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
