"""The 統計 page's series: the figures of ``/api/v1/stats`` (bot/services/stats.py) broken down
the way the charts show them — items per week by kind, response-time distribution, satisfaction per
week, disputes by colour and level, coverage by village, response times per officer and per
station.

Each chart is a :class:`Chart`: its header and rows are both the table beside the chart and its
CSV export, so the three can never disagree. The ticket series read one narrow row per ticket
of the range (created, category, station, officer, rating, the two durations) and bucket them
in Python: week boundaries are local dates, which SQLite cannot compute from UTC text; a
county's year is ~50,000 such rows. Disputes and coverage are SQL aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.stats import LABELS, Period, SecondsBetween, interpolate
from models.directory import Group, Officer, Station
from models.disputes import COLOURS, LEVELS, DisputeCase, is_dispute
from models.people import Household
from models.tickets import Ticket
from models.visits import Visit

# Response-time bands, one set for acknowledgements and answers alike (docs/statistics.md):
# (upper bound in minutes, or None for "and more"; label key).
BANDS: tuple[tuple[float | None, str], ...] = (
    (5, "st_b_m5"),
    (15, "st_b_m15"),
    (30, "st_b_m30"),
    (60, "st_b_h1"),
    (240, "st_b_h4"),
    (1440, "st_b_d1"),
    (4320, "st_b_d3"),
    (None, "st_b_more_d3"),
)


@dataclass
class Chart:
    """One chart: ``kind`` (bar, stacked, line, hbar), the x categories, one series per
    name with its values and, per value, the link listing the items behind it; ``header`` and
    ``rows`` are the table and the CSV (the same rows as the chart's points)."""

    key: str
    kind: str
    header: list[str]
    rows: list[list[Any]]
    categories: list[str] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """What the page's script draws (data-chart)."""
        return {"kind": self.kind, "categories": self.categories, "series": self.series}


@dataclass(frozen=True)
class TicketRow:
    created: datetime
    category: str
    station: str | None
    officer: str | None
    satisfaction: str | None
    ack_s: float | None
    answer_s: float | None


def weeks(period: Period) -> list[tuple[date, date]]:
    """The range cut into weeks (Monday to Sunday), the first and last clipped to it."""
    out = []
    start = period.first
    while start <= period.last:
        end = min(start + timedelta(days=6 - start.weekday()), period.last)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


async def ticket_rows(session: AsyncSession, period: Period) -> list[TicketRow]:
    """One narrow row per ticket that came in during the range (the API's ``items``)."""
    where = [Ticket.created_at >= period.start, Ticket.created_at < period.end]
    if period.stations is not None:
        where.append(Ticket.station_id.in_(sorted(period.stations)))
    result = await session.execute(
        select(
            Ticket.created_at,
            Ticket.category,
            Ticket.station_id,
            Ticket.assigned_officer_id,
            Ticket.satisfaction,
            SecondsBetween(Ticket.ack_time, Ticket.created_at),
            SecondsBetween(Ticket.answer_time, Ticket.created_at),
        ).where(*where)
    )
    return [
        TicketRow(
            created=row[0] if row[0].tzinfo else row[0].replace(tzinfo=ZoneInfo("UTC")),
            category=row[1],
            station=row[2],
            officer=row[3],
            satisfaction=row[4],
            ack_s=None if row[5] is None else float(row[5]),
            answer_s=None if row[6] is None else float(row[6]),
        )
        for row in result.all()
    ]


def _week_index(spans: list[tuple[date, date]], day: date) -> int | None:
    for index, (first, last) in enumerate(spans):
        if first <= day <= last:
            return index
    return None


def _p(values: list[float], percent: int, unit: float) -> float | None:
    value = interpolate(sorted(values), percent)
    return None if value is None else round(value / unit, 2)


@dataclass(frozen=True)
class Labels:
    """Words for the headers and categories, in the viewer's script."""

    t: Any  # (key, **values) -> str
    cat: Any  # label -> str
    colour: Any
    level: Any


def items_chart(
    rows: list[TicketRow], spans: list[tuple[date, date]], tz: ZoneInfo, w: Labels, link: Any
) -> Chart:
    """Items per week by kind (stacked bars); each segment links to the 工單 list of that
    week and kind."""
    counts = [dict.fromkeys(LABELS, 0) for _ in spans]
    for r in rows:
        index = _week_index(spans, r.created.astimezone(tz).date())
        if index is not None:
            counts[index][r.category] = counts[index].get(r.category, 0) + 1
    categories = [first.isoformat() for first, _ in spans]
    series = [
        {
            "name": w.cat(label),
            "data": [c[label] for c in counts],
            "links": [link(category=label, first=f, last=l_) for f, l_ in spans],
        }
        for label in LABELS
    ]
    table = [
        [f.isoformat(), l_.isoformat(), *(c[label] for label in LABELS), sum(c.values())]
        for (f, l_), c in zip(spans, counts, strict=True)
    ]
    header = [
        w.t("st_col_week_from"),
        w.t("st_col_week_to"),
        *map(w.cat, LABELS),
        w.t("st_col_total"),
    ]
    return Chart("items", "stacked", header, table, categories, series)


def band(minutes: float) -> str:
    """The label key of the band ``minutes`` falls in (upper bounds exclusive)."""
    for upper, key in BANDS:
        if upper is None or minutes < upper:
            return key
    raise AssertionError("the last band has no upper bound")


def response_chart(rows: list[TicketRow], w: Labels, link: Any) -> Chart:
    """How many tickets were acknowledged / answered within each time band (bars)."""
    names = [key for _, key in BANDS]
    ack = dict.fromkeys(names, 0)
    answer = dict.fromkeys(names, 0)
    for r in rows:
        if r.ack_s is not None:
            ack[band(r.ack_s / 60)] += 1
        if r.answer_s is not None:
            answer[band(r.answer_s / 60)] += 1
    everything = link()
    series = [
        {
            "name": w.t("st_ack"),
            "data": [ack[n] for n in names],
            "links": [everything] * len(names),
        },
        {
            "name": w.t("st_answer"),
            "data": [answer[n] for n in names],
            "links": [everything] * len(names),
        },
    ]
    table = [[w.t(n), ack[n], answer[n]] for n in names]
    header = [w.t("st_col_band"), w.t("st_ack"), w.t("st_answer")]
    return Chart("response", "bar", header, table, [w.t(n) for n in names], series)


def satisfaction_chart(
    rows: list[TicketRow], spans: list[tuple[date, date]], tz: ZoneInfo, w: Labels, link: Any
) -> Chart:
    """Per week: tickets rated, rated satisfied, and the rate (a line, in percent)."""
    rated = [0] * len(spans)
    satisfied = [0] * len(spans)
    for r in rows:
        index = _week_index(spans, r.created.astimezone(tz).date())
        if index is None or r.satisfaction is None:
            continue
        rated[index] += 1
        satisfied[index] += r.satisfaction == "satisfied"
    # In percent, as the chart draws them (the table and the CSV carry the chart's numbers).
    rates = [round(s * 100 / n, 2) if n else None for s, n in zip(satisfied, rated, strict=True)]
    series = [
        {
            "name": w.t("st_sat_rate"),
            "data": rates,
            "links": [link(first=f, last=l_, status="closed") for f, l_ in spans],
        }
    ]
    table = [
        [f.isoformat(), l_.isoformat(), n, s, "" if x is None else x]
        for (f, l_), n, s, x in zip(spans, rated, satisfied, rates, strict=True)
    ]
    header = [
        w.t("st_col_week_from"),
        w.t("st_col_week_to"),
        w.t("st_sat_rated"),
        w.t("st_sat_satisfied"),
        w.t("st_sat_rate"),
    ]
    return Chart("satisfaction", "line", header, table, [f.isoformat() for f, _ in spans], series)


async def disputes_chart(session: AsyncSession, period: Period, w: Labels, link: Any) -> Chart:
    """Cases opened in the range, by colour (one series each) and level now (stacked)."""
    where = [
        is_dispute(),
        DisputeCase.opened_at >= period.start,
        DisputeCase.opened_at < period.end,
    ]
    if period.stations is not None:
        where.append(DisputeCase.station_id.in_(sorted(period.stations)))
    found = await session.execute(
        select(DisputeCase.colour, DisputeCase.level, func.count())
        .where(*where)
        .group_by(DisputeCase.colour, DisputeCase.level)
    )
    grid = {(c, lv): 0 for c in COLOURS for lv in LEVELS}
    for colour, level, count in found.all():
        grid[(colour, level)] = grid.get((colour, level), 0) + int(count)
    series = [
        {
            "name": w.colour(colour),
            "colour": colour,
            "data": [grid[(colour, lv)] for lv in LEVELS],
            "links": [link(colour=colour, level=lv) for lv in LEVELS],
        }
        for colour in COLOURS
    ]
    table = [
        [w.level(lv), *(grid[(c, lv)] for c in COLOURS), sum(grid[(c, lv)] for c in COLOURS)]
        for lv in LEVELS
    ]
    header = [w.t("st_col_level"), *map(w.colour, COLOURS), w.t("st_col_total")]
    return Chart("disputes", "stacked", header, table, [w.level(lv) for lv in LEVELS], series)


async def coverage_chart(session: AsyncSession, period: Period, w: Labels, link: Any) -> Chart:
    """Villages (groups) of the stations ranked by coverage: distinct households visited in
    the range / households on the roster now (the API's ``visits`` per group)."""
    groups = select(Group.id, Group.name)
    if period.stations is not None:
        groups = groups.where(Group.station_id.in_(sorted(period.stations)))
    names = dict((await session.execute(groups)).all())
    sizes = dict(
        (
            await session.execute(
                select(Household.group_id, func.count())
                .where(Household.group_id.in_(sorted(names)))
                .group_by(Household.group_id)
            )
        ).all()
    )
    visited = dict(
        (
            await session.execute(
                select(Household.group_id, func.count(distinct(Visit.household_id)))
                .join(Household, Household.id == Visit.household_id)
                .where(
                    Visit.at >= period.start,
                    Visit.at < period.end,
                    Household.group_id.in_(sorted(names)),
                    *(
                        [Visit.station_id.in_(sorted(period.stations))]
                        if period.stations is not None
                        else []
                    ),
                )
                .group_by(Household.group_id)
            )
        ).all()
    )
    ranked = []
    for gid, name in names.items():
        households = int(sizes.get(gid, 0))
        seen = int(visited.get(gid, 0))
        if households == 0 and seen == 0:
            continue
        rate = round(seen * 100 / households, 2) if households else None
        ranked.append((name, gid, households, seen, rate))
    ranked.sort(key=lambda r: (-(r[4] or 0), r[0]))
    table = [
        [name, households, seen, "" if rate is None else rate]
        for name, _, households, seen, rate in ranked
    ]
    series = [
        {
            "name": w.t("st_cov_rate"),
            "data": [r[4] for r in ranked],
            "links": [link(group=r[1]) for r in ranked],
        }
    ]
    header = [
        w.t("st_col_village"),
        w.t("st_cov_households"),
        w.t("st_cov_visited"),
        w.t("st_cov_rate"),
    ]
    return Chart("coverage", "hbar", header, table, [r[0] for r in ranked], series)


def _times(rows: list[TicketRow]) -> list[Any]:
    acks = [r.ack_s for r in rows if r.ack_s is not None]
    answers = [r.answer_s for r in rows if r.answer_s is not None]
    return [
        len(rows),
        _p(acks, 50, 60),
        _p(acks, 90, 60),
        _p(answers, 50, 3600),
        _p(answers, 90, 3600),
    ]


async def response_tables(
    session: AsyncSession, rows: list[TicketRow], w: Labels
) -> tuple[Chart, Chart]:
    """Acknowledgement minutes and answer hours (p50, p90) per officer (the ticket's holder
    now) and per station, the same percentile rule as the API."""
    officers = dict((await session.execute(select(Officer.id, Officer.name))).all())
    stations = dict((await session.execute(select(Station.id, Station.name))).all())
    by_officer: dict[str | None, list[TicketRow]] = defaultdict(list)
    by_station: dict[str | None, list[TicketRow]] = defaultdict(list)
    for r in rows:
        by_officer[r.officer].append(r)
        by_station[r.station].append(r)
    header_tail = [
        w.t("st_col_items"),
        w.t("st_ack_p50"),
        w.t("st_ack_p90"),
        w.t("st_answer_p50"),
        w.t("st_answer_p90"),
    ]
    unassigned, county = w.t("st_unassigned"), w.t("st_county_desk")
    officer_rows = sorted(
        ([officers.get(k, k) if k else unassigned, *_times(v)] for k, v in by_officer.items()),
        key=lambda r: (-r[1], r[0]),
    )
    station_rows = sorted(
        ([stations.get(k, k) if k else county, *_times(v)] for k, v in by_station.items()),
        key=lambda r: (-r[1], r[0]),
    )
    return (
        Chart("officers", "table", [w.t("st_col_officer"), *header_tail], officer_rows),
        Chart("stations", "table", [w.t("st_col_station"), *header_tail], station_rows),
    )


async def all_charts(
    session: AsyncSession, period: Period, tz: ZoneInfo, w: Labels, links: Any
) -> dict[str, Chart]:
    """Every chart and table of the page, by key (the CSV's ``chart`` parameter)."""
    rows = await ticket_rows(session, period)
    spans = weeks(period)
    officers, stations = await response_tables(session, rows, w)
    charts = [
        items_chart(rows, spans, tz, w, links.tickets),
        response_chart(rows, w, links.tickets),
        satisfaction_chart(rows, spans, tz, w, links.tickets),
        await disputes_chart(session, period, w, links.disputes),
        await coverage_chart(session, period, w, links.households),
        officers,
        stations,
    ]
    return {c.key: c for c in charts}
