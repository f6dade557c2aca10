"""``lianxin report --month YYYY-MM``: the workbook opens with openpyxl, its summary equals
``/api/v1/stats`` for the same month and station, its sheets list the month without personal
data beyond masked names; a bad month or station is exit 2 and writes nothing."""

from __future__ import annotations

import asyncio
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from bot.cli import main
from bot.services.tokens import create_token
from bot.settings import secret_value
from models.bulletins import Bulletin
from models.directory import Group, Officer, Station
from tests.harness import Harness
from tests.stats_support import seed_month


@pytest.fixture
async def h(harness: Harness) -> Harness:
    await harness.load_directory()
    async with harness.runtime.sessions.begin() as session:
        await seed_month(session, harness.runtime.cipher)
    return harness


@pytest.fixture
def cli_env(h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The harness's database and key in the environment, an empty working folder."""
    for name in list(os.environ):
        if name.startswith("LIANXIN"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LIANXIN__DATABASE__URL", h.runtime.settings.database.url)
    monkeypatch.setenv(
        "LIANXIN__SECURITY__PII_KEY", secret_value(h.runtime.settings.security.pii_key)
    )
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


async def lianxin(*argv: str) -> int:
    """The console script in a thread of its own (it runs its own event loop)."""

    def run() -> int:
        try:
            return main(list(argv))
        except SystemExit as exit_:
            return int(exit_.code or 0)

    return await asyncio.to_thread(run)


async def api_stats(h: Harness, **params: str) -> dict[str, Any]:
    async with h.runtime.sessions.begin() as session:
        token = await create_token(session, role="admin", name="t", now=h.clock.now())
    response = await h.client.get(
        "/api/v1/stats",
        params={"from": "2026-11-01", "to": "2026-11-30", **params},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    return response.json()


def summary_of(path: Path) -> dict[str, Any]:
    """The summary sheet's figures by their key column."""
    book = load_workbook(path)
    sheet = book.worksheets[0]
    return {row[2]: row[1] for row in sheet.iter_rows(min_row=6, values_only=True) if row[2]}


def lookup(stats: dict[str, Any], key: str) -> Any:
    value: Any = stats
    for part in key.split("."):
        value = value[part]
    return value


def leaves(stats: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys of every figure in the API's answer."""
    found = []
    for key, value in stats.items():
        if isinstance(value, dict):
            found += leaves(value, f"{prefix}{key}.")
        else:
            found.append(prefix + key)
    return found


def all_text(path: Path) -> str:
    book = load_workbook(path)
    return " ".join(
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


async def test_the_summary_equals_the_api_and_the_sheets_list_the_month(
    h: Harness, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await lianxin("report", "--month", "2026-11") == 0
    path = cli_env / "lianxin-report-2026-11.xlsx"
    assert "written to lianxin-report-2026-11.xlsx: 8 items, 8 visits" in capsys.readouterr().out
    stats = await api_stats(h)
    summary = summary_of(path)
    direct = {k: v for k, v in summary.items() if not k.startswith("derived:")}
    assert set(direct) == set(leaves(stats))  # every figure of the API, nothing else
    for key, value in direct.items():
        assert value == lookup(stats, key), key
    assert summary["derived:sum(items)"] == 8
    assert summary["derived:visits.count/visits.households"] == round(8 / 9, 4)
    assert summary["derived:sum(disputes.by_colour)"] == 5
    book = load_workbook(path)
    assert book.sheetnames == ["汇总", "事项", "纠纷", "走访", "宣传推送"]
    labels = [row[0] for row in book["汇总"].iter_rows(min_row=6, values_only=True) if row[0]]
    # The bureau's order: visits first, then suggestions, items, disputes …
    assert labels[:2] == ["一、入户走访", "入户走访(次)"]
    assert labels.index("二、收集群众意见建议") < labels.index("四、矛盾纠纷排查化解")
    tickets = list(book["事项"].iter_rows(min_row=2, values_only=True))
    assert sorted(t[0] for t in tickets) == [f"S{n:04d}" for n in range(8)]
    report = next(t for t in tickets if t[0] == "S0002")
    assert report[1:3] == ("报警", "是") and report[13] == 3.0 and report[14] == "不满意"
    disputes = {row[3]: row[8] for row in book["纠纷"].iter_rows(min_row=2, values_only=True)}
    assert len(list(book["纠纷"].iter_rows(min_row=2))) == 5
    # 化解层级 only for an agreement: the referred case was not settled at the county.
    assert disputes["已转介"] in ("", None) and disputes["已达成协议"]
    visits = list(book["走访"].iter_rows(min_row=2, values_only=True))
    assert len(visits) == 8
    assert [v[5] for v in visits].count("(已应要求删除)") == 1
    assert {v[5] for v in visits} - {"(已应要求删除)"} == {"住**"}
    [run] = list(book["宣传推送"].iter_rows(min_row=2, values_only=True))[:1]
    assert run[1:3] == ("反詐提醒", "防诈骗") and run[4:8] == (3, 2, 1, 0)  # category in words
    # Names only masked, never an address or a number.
    text = all_text(path)
    for secret in ("住戶甲", "住户甲", "0號", "…"):
        assert secret not in text


async def test_a_station_s_report_equals_the_station_s_figures_in_traditional_script(
    h: Harness, cli_env: Path
) -> None:
    out = cli_env / "qiaozhen.xlsx"
    argv = ("report", "--month", "2026-11", "--station", "qiaozhen", "--script", "hant")
    assert await lianxin(*argv, "--output", str(out)) == 0
    stats = await api_stats(h, station="qiaozhen")
    for key, value in summary_of(out).items():
        if not key.startswith("derived:"):
            assert value == lookup(stats, key), key
    book = load_workbook(out)
    assert book.sheetnames[0] == "匯總"
    assert book["匯總"]["A1"].value == "橋鎮派出所社區警務月報 2026年11月"
    assert len(list(book["走訪"].iter_rows(min_row=2))) == 6


async def test_names_and_titles_that_look_like_formulas_are_written_as_text(
    h: Harness, cli_env: Path
) -> None:
    # Whoever writes a bulletin's title or a directory file chooses these words; Excel must
    # show them, never run them (a HYPERLINK sends whoever clicks it elsewhere).
    evil = {
        "title": '=HYPERLINK("http://evil.example","反詐提醒")',
        "station": "=1+1",
        "group": '=HYPERLINK("http://evil.example","群")',
        "officer": "=SUM(1,2)",
    }
    async with h.runtime.sessions.begin() as session:
        await session.execute(update(Bulletin).values(title=evil["title"]))
        await session.execute(
            update(Station).where(Station.id == "qiaozhen").values(name=evil["station"])
        )
        await session.execute(update(Group).values(name=evil["group"]))
        await session.execute(
            update(Officer).where(Officer.id == "off-wang").values(name=evil["officer"])
        )
    out = cli_env / "qiaozhen.xlsx"
    argv = ("report", "--month", "2026-11", "--station", "qiaozhen", "--output", str(out))
    assert await lianxin(*argv) == 0

    book = load_workbook(out)
    texts = [
        cell
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, str)
    ]
    assert [c.coordinate for c in texts if c.data_type != "s"] == []
    written = {c.value for c in texts}
    # The station's name opens the summary's title, so that cell began with "=" too.
    assert book.worksheets[0]["A1"].value.startswith(evil["station"])
    assert {evil["title"], evil["station"], evil["group"], evil["officer"]} <= written
    with zipfile.ZipFile(out) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert len(sheets) == len(book.worksheets)
        for name in sheets:
            xml = archive.read(name).decode()
            assert "<f>" not in xml and "<f " not in xml, name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--month", "2026-13"], "--month 2026-13: there is no month 13"),
        (["--month", "2026-1"], "--month expected YYYY-MM, got '2026-1'"),
        (["--month", "2026-11", "--station", "nowhere"], "--station nowhere: no such station"),
        (["--month", "2026-11", "--output", "report.csv"], "name it *.xlsx"),
        (["--month", "2026-11", "--output", "missing/r.xlsx"], "no folder missing"),
    ],
)
async def test_bad_input_is_exit_2_with_one_line_and_no_file(
    h: Harness,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert await lianxin("report", *argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err, err
    assert os.listdir(cli_env) == []


async def test_a_month_that_has_not_begun_is_written_with_a_warning(
    h: Harness, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--month 2099-01` wrote an empty workbook as if the county had been quiet.
    assert await lianxin("report", "--month", "2099-01") == 0
    out, err = capsys.readouterr()
    assert "written to lianxin-report-2099-01.xlsx: 0 items" in out
    assert err.count("\n") == 1 and err.startswith("lianxin: warning: 2099-01 has not begun")
    assert (cli_env / "lianxin-report-2099-01.xlsx").exists()
    # A month that has begun has no such line.
    assert await lianxin("report", "--month", "2020-01") == 0
    assert "has not begun" not in capsys.readouterr().err
