"""The console's 統計 page over the hand-built November of tests/stats_support.py: each role
sees its scope, the figures equal ``/api/v1/stats`` for the same range, each chart's CSV has
the rows of its table, bad filters answer 400 naming the field, and the month's report
downloads (audited) and opens with openpyxl."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.services.tokens import create_token
from bot.web.console.stats_data import band
from tests.console_support import add_accounts, audit_rows, signed_in, visible_text
from tests.harness import Harness
from tests.stats_support import COUNTY, QIAOZHEN, seed_month

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    async with harness.runtime.sessions.begin() as session:
        await seed_month(session, harness.runtime.cipher)
    await add_accounts(harness)
    return harness


async def api_stats(h: Harness, **params: str) -> dict[str, Any]:
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="admin", name="t", now=h.clock.now())
    response = await h.client.get(
        "/api/v1/stats", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def flat(figures: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = "" if value is None else str(value)
    return out


def page_figures(page: str) -> dict[str, str]:
    """The figures table: data-key → the number behind what is shown (the API's)."""
    return {
        m.group(1): html.unescape(m.group(2)).strip()
        for m in re.finditer(r'<td data-key="([^"]+)" data-value="([^"]*)">', page)
    }


def shown_figures(page: str) -> dict[str, str]:
    """The figures table: data-key → what a person reads."""
    return {
        m.group(1): html.unescape(m.group(2)).strip()
        for m in re.finditer(r'<td data-key="([^"]+)" data-value="[^"]*">([^<]*)</td>', page)
    }


def chart_specs(page: str) -> dict[str, dict[str, Any]]:
    """Each chart's data as the page's script receives it."""
    return {
        m.group(1): json.loads(html.unescape(m.group(2)))
        for m in re.finditer(
            r'<section class="card chart-card" id="chart-(\w+)">.*?data-chart=\'([^\']*)\'',
            page,
            re.S,
        )
    }


def table_rows(page: str, key: str) -> list[list[str]]:
    found = re.search(
        rf'<table class="list numbers" data-chart-table="{key}">(.*?)</table>', page, re.S
    )
    assert found, key
    body = found.group(1).split("<tbody>")[1]
    return [
        [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def test_an_admin_sees_the_county_s_figures_as_the_api_gives_them(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params=NOVEMBER)
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/console/static/echarts.min.js" in page.text
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    api = await api_stats(h, **NOVEMBER)
    assert api == COUNTY
    assert page_figures(page.text) == flat(api)
    # Each figure is named in words.
    figures = re.search(r'<section class="card" id="figures">(.*?)</section>', page.text, re.S)
    assert figures
    names = re.findall(r"<th>([^<]*)</th>", figures.group(1))
    assert len(names) == len(flat(api))
    assert {"諮詢", "走訪次數", "糾紛:紅色", "滿意率"} <= set(names), names
    # Every chart has its data for the script and its numbers beside it.
    specs = chart_specs(page.text)
    assert set(specs) == {"items", "response", "satisfaction", "disputes", "coverage"}
    items = table_rows(page.text, "items")
    assert sum(int(r[-1]) for r in items) == sum(COUNTY["items"].values())
    # The chart's points are the table's numbers, week by week and kind by kind.
    for index, series in enumerate(specs["items"]["series"]):
        assert series["data"] == [int(r[2 + index]) for r in items]
    # Coverage by village in percent: 橋鎮村 2 of 4 households (0, 1; household 2 was visited
    # in October), 橋鎮社區 1 of 2, 河西村 1 of 2; together the county's 4 visited households.
    coverage = {r[0]: (r[1], r[2], r[3]) for r in table_rows(page.text, "coverage")}
    assert coverage == {
        "橋鎮村警民群": ("4", "2", "50.0"),
        "橋鎮社區警民群": ("2", "1", "50.0"),
        "河西村警民群": ("2", "1", "50.0"),
    }
    assert specs["coverage"]["series"][0]["data"] == [50.0, 50.0, 50.0]
    assert "/console/households?group=grp-hexi-01" in specs["coverage"]["series"][0]["links"]
    disputes = table_rows(page.text, "disputes")
    assert [int(r[-1]) for r in disputes] == list(COUNTY["disputes"]["by_level"].values())


async def test_acknowledgements_and_answers_share_one_set_of_time_bands(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params=NOVEMBER)
    rows = table_rows(page.text, "response")
    # docs/statistics.md: 5 min, 15 min, 30 min, 1 h, 4 h, 24 h, 3 days, none overlapping.
    # The county's acknowledgements [2, 4, 6, 8, 10, 20, 30] min, answers [1, 2, 3, 4, 10] h.
    assert rows == [
        ["5分鐘內", "2", "0"],
        ["5–15分鐘", "3", "0"],
        ["15–30分鐘", "1", "0"],
        ["30分鐘–1小時", "1", "0"],
        ["1–4小時", "0", "3"],
        ["4–24小時", "0", "2"],
        ["1–3天", "0", "0"],
        ["3天以上", "0", "0"],
    ]
    # An answer within the hour is counted where it was given, not in the band of the hour.
    assert [band(m) for m in (4.9, 5, 29.9, 45, 59.9, 60, 300, 1439, 1440, 4320)] == [
        "st_b_m5",
        "st_b_m15",
        "st_b_m30",
        "st_b_h1",
        "st_b_h1",
        "st_b_h4",
        "st_b_d1",
        "st_b_d1",
        "st_b_d3",
        "st_b_more_d3",
    ]


async def test_a_leader_sees_their_station_and_not_another(h: Harness) -> None:
    client = await signed_in(h, "zhao")
    page = await client.get("/console/stats", params=NOVEMBER)
    assert page.status_code == 200, page.text
    assert page_figures(page.text) == flat(QIAOZHEN)
    assert 'value="hexi"' not in page.text  # the picker lists the scope's stations only
    refused = await client.get("/console/stats", params={**NOVEMBER, "station": "hexi"})
    assert refused.status_code == 400
    assert "沒有這個選項" in visible_text(refused.text)
    assert 'data-key="' not in refused.text  # nothing shown half
    # Their officer's page: the same station.
    officer = await signed_in(h, "wang")
    mine = await officer.get("/console/stats", params=NOVEMBER)
    assert page_figures(mine.text) == flat(QIAOZHEN)


async def test_an_admin_picks_a_station(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params={**NOVEMBER, "station": "hexi"})
    assert page_figures(page.text) == flat(await api_stats(h, **NOVEMBER, station="hexi"))


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"from": "2026-11-31", "to": "2026-11-30"}, "from", "日期應寫作"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, "to", "起始日期晚於截止日期"),
        ({"from": "2026-11-01", "to": "30/11/2026"}, "to", "日期應寫作"),
        ({"from": "0001-01-01", "to": "2026-11-30"}, "from", "日期須在1971年至9998年之間"),
        ({**NOVEMBER, "station": "nowhere"}, "station", "沒有這個選項"),
    ],
)
async def test_bad_filters_answer_400_saying_what_is_wrong(
    h: Harness, params: dict[str, str], field: str, words: str
) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params=params)
    assert page.status_code == 400
    assert words in visible_text(page.text)
    assert "data-chart=" not in page.text
    csv_answer = await client.get("/console/stats.csv", params={**params, "chart": "items"})
    assert csv_answer.status_code == 400
    assert csv_answer.text.startswith(f"{field}:")


@pytest.mark.parametrize(
    "chart", ["items", "response", "satisfaction", "disputes", "coverage", "officers", "stations"]
)
async def test_each_csv_has_the_rows_of_its_table(h: Harness, chart: str) -> None:
    client = await signed_in(h, "zhao")
    page = await client.get("/console/stats", params=NOVEMBER)
    answer = await client.get("/console/stats.csv", params={**NOVEMBER, "chart": chart})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    shown = table_rows(page.text, chart)
    assert len(rows) - 1 == len(shown) > 0
    for got, seen in zip(rows[1:], shown, strict=True):
        assert [c or "—" for c in got] == seen
    exports = await audit_rows(h, "export")
    assert exports[-1].target == f"stats.csv:{chart}"


async def test_week_rows_and_drill_down_links(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params=NOVEMBER)
    rows = table_rows(page.text, "items")
    # November 2026 begins on a Sunday: 1 Nov alone, then Mondays to Sundays, then 30 Nov.
    assert [r[0] for r in rows] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
        "2026-11-30",
    ]
    assert rows[0][1] == "2026-11-01" and rows[-1][1] == "2026-11-30"
    # 1 Nov: the consultation at 00:30 local; 30 Nov: the suggestion at 23:59.
    assert rows[0][-1] == "1" and rows[-1][-1] == "1"
    spec = chart_specs(page.text)["items"]
    consultation = spec["series"][0]
    link = consultation["links"][0]
    assert link == "/console/tickets?status=all&category=consultation&from=2026-11-01&to=2026-11-01"
    listed = await client.get(link)
    assert listed.status_code == 200
    assert "S0000" in listed.text and "S0001" not in listed.text
    red = chart_specs(page.text)["disputes"]["series"][0]
    assert red["links"][0] == (
        "/console/disputes?status=all&colour=red&level=village&from=2026-11-01&to=2026-11-30"
    )
    # A bar of 1 opens a list of 1: the red case opened in October is not November's.
    assert red["data"][0] == 1
    listed = await client.get(red["links"][0])
    assert "#D0000" in listed.text and "#D0005" not in listed.text


async def test_shares_read_as_percentages(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params=NOVEMBER)
    shown = shown_figures(page.text)
    # 3 of 4 rated satisfied; 4 of 9 households visited: percentages, not 0.75 and 0.4444.
    assert (shown["satisfaction.rate"], shown["visits.coverage"]) == ("75.0%", "44.4%")
    assert shown["visits.count"] == "8"
    mine = await (await signed_in(h, "zhao")).get("/console/stats", params=NOVEMBER)
    assert shown_figures(mine.text)["satisfaction.rate"] == "66.7%"


async def test_a_stations_drill_down_lists_its_subtree_as_it_was_counted(h: Harness) -> None:
    client = await signed_in(h, "admin")
    page = await client.get("/console/stats", params={**NOVEMBER, "station": "county"})
    spec = chart_specs(page.text)["items"]
    reports = next(
        series for series in spec["series"] if series["name"] == "報警"
    )  # 10 Nov at 橋鎮 and 12 Nov at 河西: the week of 9 November
    week = spec["categories"].index("2026-11-09")
    assert reports["data"][week] == 2
    link = reports["links"][week]
    assert "station=county" in link and "below=1" in link
    listed = await client.get(link)
    assert listed.status_code == 200
    assert "S0002" in listed.text and "S0006" in listed.text and "S0001" not in listed.text
    # The station's box stays chosen with 含下級單位 ticked, and the CSV holds the same rows.
    assert 'name="below" value="1" checked' in listed.text
    exported = await client.get(link.replace("/console/tickets?", "/console/tickets.csv?"))
    assert "S0002" in exported.text and "S0006" in exported.text
    # The county's own station alone holds none of them.
    alone = await client.get(link.replace("&below=1", ""))
    assert "S0002" not in alone.text and "S0006" not in alone.text
    # Disputes alike: yellow at the village level, 橋鎮 none and 河西 one, found under county.
    yellow = next(
        s for s in chart_specs(page.text)["disputes"]["series"] if s["colour"] == "yellow"
    )
    cases = await client.get(yellow["links"][0])
    assert "below=1" in yellow["links"][0] and "河西派出所" in visible_text(cases.text)


async def test_the_report_downloads_audited_and_opens(h: Harness) -> None:
    client = await signed_in(h, "zhao")
    page = await client.get("/console/stats", params=NOVEMBER)
    assert 'action="/console/stats/report.xlsx"' in page.text
    answer = await client.get(
        "/console/stats/report.xlsx", params={"month": "2026-11", "station": "qiaozhen"}
    )
    assert answer.status_code == 200, answer.text
    assert "lianxin-report-2026-11-qiaozhen.xlsx" in answer.headers["content-disposition"]
    book = load_workbook(io.BytesIO(answer.content))
    summary = book.worksheets[0]
    values = {row[2]: row[1] for row in summary.iter_rows(values_only=True) if row and len(row) > 2}
    assert values["visits.count"] == QIAOZHEN["visits"]["count"]
    assert values["satisfaction.rate"] == QIAOZHEN["satisfaction"]["rate"]
    (entry,) = await audit_rows(h, "report")
    assert entry.target == "report:2026-11" and entry.detail == "station=qiaozhen"
    # Another station, or a month that is not one: refused, nothing audited.
    other = await client.get(
        "/console/stats/report.xlsx", params={"month": "2026-11", "station": "hexi"}
    )
    assert other.status_code == 400
    bad = await client.get("/console/stats/report.xlsx", params={"month": "2026-13"})
    assert bad.status_code == 400 and bad.text.startswith("month:")
    assert len(await audit_rows(h, "report")) == 1


async def test_the_page_needs_a_session(h: Harness) -> None:
    from tests.console_support import browser

    async with browser(h) as anonymous:
        for path in ("/console/stats", "/console/stats.csv", "/console/stats/report.xlsx"):
            answer = await anonymous.get(path)
            assert answer.status_code == 303
