"""統計: the figures of ``/api/v1/stats`` for a station subtree and a range of local dates,
as charts (Apache ECharts, a static file) with their numbers in a table beside each, each
chart's CSV, and the month's report workbook (bot/services/report.py) to download.

Scope: an admin sees the county or any station; a leader or an officer their station and the
stations below it (the same rule as everywhere in the console, ``viewer.scope``). A station
from outside that scope, a date that is not one, or a range backwards answers 400 naming the
field, and shows nothing half.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.runtime import Runtime
from bot.services import audit
from bot.services.stats import (
    Period,
    StatsInputError,
    compute_stats,
    make_period,
    parse_day,
    parse_month,
)
from bot.web.console.csv_cells import csv_cell
from bot.web.console.list_filters import date_error
from bot.web.console.stats_data import Chart, Labels, all_charts
from bot.web.console.ticket_queries import choices
from bot.web.console.ui import Ui, page
from bot.web.console.viewer import Viewer, viewer
from bot.web.deps import get_runtime

router = APIRouter()
CHART_KEYS = ("items", "response", "satisfaction", "disputes", "coverage", "officers", "stations")


@dataclass
class StatsQuery:
    """The page's filters as read: ``errors`` maps a field to the text key of what is wrong."""

    first: date
    last: date
    station: str
    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def params(self, **changes: str) -> dict[str, str]:
        values = {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "station": self.station,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v}

    def query(self, **changes: str) -> str:
        return urlencode(self.params(**changes))


def home_station(who: Viewer, stations: dict[str, str]) -> str:
    """Where a viewer's figures start: the county for an admin ("" ), else their station."""
    if who.is_admin:
        return ""
    if who.officer is not None and who.officer.station_id in stations:
        return who.officer.station_id
    return next(iter(stations), "")


def read_query(request: Request, who: Viewer, stations: dict[str, str], today: date) -> StatsQuery:
    """Filters from the query string. Defaults: the 30 days up to today, the viewer's home."""
    typed = {k: (request.query_params.get(k) or "").strip()[:64] for k in ("from", "to", "station")}
    q = StatsQuery(today - timedelta(days=29), today, home_station(who, stations), typed)
    for name in ("from", "to"):
        if typed[name]:
            try:
                day = parse_day(name, typed[name])
            except StatsInputError as exc:
                q.errors[name] = date_error(exc)
                continue
            if name == "from":
                q.first = day
            else:
                q.last = day
    if "from" not in q.errors and "to" not in q.errors and q.first > q.last:
        q.errors["to"] = "f_bad_range"
    if typed["station"]:
        if typed["station"] in stations:
            q.station = typed["station"]
        else:
            q.errors["station"] = "f_bad_choice"
    if not who.is_admin and not q.station:
        # Nothing of the county to show to someone without a station of their own.
        q.errors.setdefault("station", "f_bad_choice")
    return q


@dataclass(frozen=True)
class Links:
    """Where a chart's bar leads: the lists of the items behind it, filtered alike — a
    station with the stations below it (``below=1``), as its figures count them."""

    q: StatsQuery

    def tickets(
        self,
        *,
        category: str = "",
        first: date | None = None,
        last: date | None = None,
        status: str = "all",
    ) -> str:
        params = {
            "status": status,
            "category": category,
            "station": self.q.station,
            "below": "1" if self.q.station else "",
            "from": (first or self.q.first).isoformat(),
            "to": (last or self.q.last).isoformat(),
        }
        return "/console/tickets?" + urlencode({k: v for k, v in params.items() if v})

    def disputes(self, *, colour: str, level: str) -> str:
        # The range too: the chart counts the cases opened in it, and so must the list.
        params = {
            "status": "all",
            "colour": colour,
            "level": level,
            "station": self.q.station,
            "below": "1" if self.q.station else "",
            "from": self.q.first.isoformat(),
            "to": self.q.last.isoformat(),
        }
        return "/console/disputes?" + urlencode({k: v for k, v in params.items() if v})

    def households(self, *, group: str) -> str:
        return "/console/households?" + urlencode({"group": group})


def labels(ui: Ui) -> Labels:
    return Labels(t=ui.t, cat=ui.cat, colour=ui.colour, level=ui.level)


def flat(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"visits": {"count": 3}}`` → ``{"visits.count": 3}``: the keys the page's figures
    table (and the report's summary) name."""
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# Figures that are shares (the API's fractions, 0.9474): shown as percentages (94.7%).
SHARES = frozenset({"satisfaction.rate", "visits.coverage"})


def figure_text(key: str, value: Any) -> str:
    """A figure as the table shows it: a share in percent with one decimal, others as they
    are, nothing for none."""
    if value is None:
        return ""
    if key in SHARES:
        return f"{value * 100:.1f}%"
    return str(value)


def figure_label(ui: Ui, key: str) -> str:
    """A figure's name in words: ``items.help`` → 求助, ``disputes.by_level.county`` →
    糾紛:縣級調解, others from ``st_key_*``."""
    parts = key.split(".")
    if parts[0] == "items":
        return ui.cat(parts[1])
    if parts[:2] == ["disputes", "by_colour"]:
        return f"{ui.t('st_key_disputes')}{ui.colour(parts[2])}"
    if parts[:2] == ["disputes", "by_level"]:
        return f"{ui.t('st_key_disputes')}{ui.level(parts[2])}"
    name = "st_key_" + key.replace(".", "_")
    return ui.t(name) if ui.has(name) else key


async def _load(
    request: Request, who: Viewer, runtime: Runtime
) -> tuple[Ui, StatsQuery, dict[str, str], Period | None]:
    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    async with runtime.sessions() as session:
        stations = (await choices(session, who.scope)).stations
        q = read_query(request, who, stations, now.astimezone(runtime.settings.tz).date())
        period = None
        if not q.errors:
            period = await make_period(
                session,
                timezone=runtime.settings.timezone,
                first=q.first,
                last=q.last,
                station=q.station or None,
            )
    return ui, q, stations, period


@router.get("/stats", include_in_schema=False)
async def stats_page(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The charts and tables; 400 with the reason beside the field for bad filters."""
    ui, q, stations, period = await _load(request, who, runtime)
    figures: dict[str, Any] = {}
    charts: dict[str, Chart] = {}
    if period is not None:
        async with runtime.sessions() as session:
            figures = await compute_stats(session, period)
            charts = await all_charts(session, period, runtime.settings.tz, labels(ui), Links(q))
    return page(
        "stats.html",
        ui=ui,
        viewer=who,
        active="stats",
        here="/console/stats?" + urlencode(q.typed),
        q=q,
        stations=stations,
        figures=figures,
        flat=[(k, figure_label(ui, k), v, figure_text(k, v)) for k, v in flat(figures).items()],
        charts=charts,
        month=q.first.strftime("%Y-%m"),
        status_code=400 if q.errors else 200,
    )


@router.get("/stats.csv", include_in_schema=False)
async def stats_csv(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """One chart's rows as CSV (UTF-8 with a byte-order mark): exactly the table beside it."""
    ui, q, _, period = await _load(request, who, runtime)
    key = request.query_params.get("chart", "")
    if key not in CHART_KEYS:
        q.errors["chart"] = "f_bad_choice"
    if q.errors or period is None:
        field_, text = next(iter(q.errors.items()))
        return Response(
            f"{field_}: {ui.t(text)}\n", status_code=400, media_type="text/plain; charset=utf-8"
        )
    async with runtime.sessions.begin() as session:
        chart = (await all_charts(session, period, runtime.settings.tz, labels(ui), Links(q)))[key]
        audit.record(
            session,
            now=runtime.clock.now(),
            action="export",
            account=who.account,
            target=f"stats.csv:{key}",
            detail=q.query(),
            ip=who.ip,
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(chart.header)
    for row in chart.rows:
        writer.writerow(csv_cell(v) for v in row)
    name = f"stats-{key}-{q.first:%Y%m%d}-{q.last:%Y%m%d}.csv"
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/stats/report.xlsx", include_in_schema=False)
async def report_download(
    request: Request, who: Viewer = Depends(viewer), runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The month's workbook (bot/services/report.py, as ``lianxin report``) for the chosen station
    within the viewer's scope; every download is audited (``report``)."""
    # Here, not at the top: openpyxl is ~6 MB that a serving process needs only for this
    # download (docs/performance.md, "Fan-out, second pass").
    from bot.services.report import build_report, workbook_bytes

    now = runtime.clock.now()
    ui = Ui(runtime, who.script, now)
    month = (request.query_params.get("month") or "").strip()[:16]
    async with runtime.sessions() as session:
        stations = (await choices(session, who.scope)).stations
    q = read_query(request, who, stations, now.astimezone(runtime.settings.tz).date())
    errors = {k: v for k, v in q.errors.items() if k == "station"}
    try:
        first, last = parse_month(month)
    except StatsInputError:
        errors["month"] = "st_bad_month"
    if errors:
        field_, text = next(iter(errors.items()))
        return Response(
            f"{field_}: {ui.t(text)}\n", status_code=400, media_type="text/plain; charset=utf-8"
        )
    async with runtime.sessions.begin() as session:
        period = await make_period(
            session,
            timezone=runtime.settings.timezone,
            first=first,
            last=last,
            station=q.station or None,
        )
        book, _ = await build_report(
            session,
            cipher=runtime.cipher,
            texts=runtime.texts,
            timezone=runtime.settings.timezone,
            period=period,
            script=who.script,
            generated_at=now,
        )
        audit.record(
            session,
            now=now,
            action="report",
            account=who.account,
            target=f"report:{month}",
            detail=urlencode({"station": q.station}) if q.station else None,
            ip=who.ip,
        )
    suffix = f"-{q.station}" if q.station else ""
    return Response(
        workbook_bytes(book),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="lianxin-report-{month}{suffix}.xlsx"',
            "Cache-Control": "no-store",
        },
    )
