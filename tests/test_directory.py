"""``lianxin directory load``: idempotent, all-or-nothing, errors name the line."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.db import make_engine, make_sessions
from bot.pii import PiiCipher
from bot.services.directory import DirectoryError, load_directory_file
from models.directory import Group, Officer, RosterEntry, Station

DATA = Path(__file__).parent / "data" / "directory.yaml"


async def _counts(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    out = {}
    async with make_sessions(engine)() as s:
        for model in (Station, Officer, Group, RosterEntry):
            out[model.__tablename__] = int(
                await s.scalar(select(func.count()).select_from(model)) or 0
            )
    await engine.dispose()
    return out


async def _load(db_url: str, path: Path) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessions(engine).begin() as s:
            await load_directory_file(s, path)
    finally:
        await engine.dispose()


async def test_load_twice_is_the_same_as_once(db_url: str) -> None:
    await _load(db_url, DATA)
    once = await _counts(db_url)
    engine = make_engine(db_url)
    async with make_sessions(engine)() as s:
        ids_once = sorted((await s.scalars(select(RosterEntry.id))).all())
    await engine.dispose()
    await _load(db_url, DATA)
    assert await _counts(db_url) == once == {"stations": 3, "officers": 5, "groups": 3, "roster": 5}
    engine = make_engine(db_url)
    async with make_sessions(engine)() as s:
        assert sorted((await s.scalars(select(RosterEntry.id))).all()) == ids_once
        group = await s.get(Group, "grp-qiaozhen-01")
        assert group is not None and group.officer_id == "off-wang" and group.tags == ["village"]
        station = await s.get(Station, "qiaozhen")
        assert station is not None and station.parent_id == "county"
    await engine.dispose()


async def test_update_changes_entries_and_replaces_station_roster(
    db_url: str, tmp_path: Path
) -> None:
    await _load(db_url, DATA)
    text = DATA.read_text("utf-8").replace(
        "officer: off-wang, tags: [village]", "officer: off-li, tags: [village, river]"
    )
    text = text.replace(
        '  - {station: qiaozhen, officer: off-zhao, days: [sat, sun], from: "08:00", to: "20:00"}\n',
        "",
    )
    changed = tmp_path / "dir.yaml"
    changed.write_text(text, "utf-8")
    await _load(db_url, changed)
    engine = make_engine(db_url)
    async with make_sessions(engine)() as s:
        group = await s.get(Group, "grp-qiaozhen-01")
        assert (
            group is not None
            and group.officer_id == "off-li"
            and group.tags == ["village", "river"]
        )
        officers = (
            await s.scalars(
                select(RosterEntry.officer_id).where(RosterEntry.station_id == "qiaozhen")
            )
        ).all()
        assert sorted(officers) == ["off-li", "off-wang"]
    await engine.dispose()


async def test_unknown_reference_names_the_line_and_applies_nothing(
    db_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "stations:\n"
        "  - {id: s1, name: 一所}\n"
        "groups:\n"
        "  - {id: g1, name: 一群, station: s1}\n"
        "  - {id: g2, name: 二群, station: nowhere}\n",
        "utf-8",
    )
    with pytest.raises(DirectoryError) as err:
        await _load(db_url, bad)
    assert "line 5" in str(err.value) and "nowhere" in str(err.value) and "g2" in str(err.value)
    assert await _counts(db_url) == {"stations": 0, "officers": 0, "groups": 0, "roster": 0}


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "roster:\n  - {station: s1, officer: o1, days: [mon], from: '8am', to: '20:00'}\n",
            "HH:MM",
        ),
        (
            "roster:\n  - {station: s1, officer: o1, days: [funday], from: '08:00', to: '20:00'}\n",
            "days",
        ),
        (
            "roster:\n  - {station: s1, officer: ghost, days: [mon], from: '08:00', to: '20:00'}\n",
            "ghost",
        ),
        ("officers:\n  - {id: o2, name: 二, station: s1, role: chief}\n", "role"),
        ("officers:\n  - {id: o2, name: 二, station: s1, wechat_id: wx1}\n", "wechat_id"),
        # A misspelt key would silently drop the parent and cut the escalation chain.
        ("stations:\n  - {id: s2, name: 二所, parnet: s1}\n", "unknown key 'parnet'"),
        ("groups:\n  - {id: g1, name: [a, b], station: s1}\n", "'name' must be text"),
        ("groups:\n  - {id: g1, name: 群, station: s1, tags: village}\n", "'tags' must be a list"),
        ("officers:\n  - {id: o2, name: yes, station: s1}\n", "'name' must be text"),
        # Unquoted impossible dates were a bare ValueError from YAML's date parsing.
        (
            "roster:\n  - {station: s1, officer: o1, date: 2026-02-30, from: '08:00', to: '20:00'}\n",
            "date must be YYYY-MM-DD",
        ),
        (
            "roster:\n  - {station: s1, officer: o1, date: 2026-13-01, from: '08:00', to: '20:00'}\n",
            "date must be YYYY-MM-DD",
        ),
        (
            "roster:\n  - {station: s1, officer: o1, days: [mon], from: 20:00, to: '23:00'}\n",
            "quotes",
        ),
        ("officers:\n  - {id: o2, id: o3, name: 二, station: s1}\n", "key 'id' given twice"),
        (f"officers:\n  - {{id: {'o' * 65}, name: 二, station: s1}}\n", "longer than 64"),
        ('officers:\n  - {id: "o\\0x", name: 二, station: s1}\n', "control characters"),
        ('groups:\n  - {id: g1, name: "群\\n", station: s1}\n', "control characters"),
        # Every message of the group goes through its robot: a typo failed them all later.
        ('groups:\n  - {id: g1, name: 群, station: s1, wecom_webhook: "a key"}\n', "wecom_webhook"),
        ("groups:\n  - {id: g1, name: 群, station: s1, wecom_webhook: qyapi/x}\n", "wecom_webhook"),
    ],
)
def test_bad_entries_are_named(snippet: str, expected: str) -> None:
    assert expected in _refusal(snippet)


@pytest.mark.parametrize("typed", ["8:00", "08：00", "８:00"])
def test_a_quoted_time_that_is_not_hh_mm_is_not_told_to_be_quoted(typed: str) -> None:
    """Found by a newcomer: `from: "8:00"` was refused as needing quotes, which it had."""
    roster = (
        f"roster:\n  - {{station: s1, officer: o1, days: [mon], from: '{typed}', to: '20:00'}}\n"
    )
    refusal = _refusal(roster)
    assert "'from' must be HH:MM, two digits each and an ASCII colon" in refusal
    assert "quotes" not in refusal and repr(typed) in refusal


def _refusal(snippet: str) -> str:
    """Why the base directory with ``snippet`` added is refused."""
    from bot.services.directory import parse_directory

    base = (
        "stations:\n  - {id: s1, name: 一所}\n"
        "officers:\n  - {id: o1, name: 一, station: s1, wechat_id: wx1}\n"
    )
    # A snippet for a section the base has joins that section; any other is appended.
    header, entries = snippet.split("\n", 1)
    doc = (
        base.replace(f"{header}\n", f"{header}\n{entries}", 1) if header in base else base + snippet
    )
    with pytest.raises(DirectoryError) as err:
        parse_directory(doc, "f.yaml")
    assert "f.yaml line" in str(err.value)
    return str(err.value)


def test_a_key_given_twice_is_named_at_its_second_line() -> None:
    # A block mapping spans lines: the entry's first line sent the administrator to the
    # first, correct key.
    from bot.services.directory import parse_directory

    doc = "stations:\n  - id: s1\n    name: 一所\n    parent: s0\n    parent: s0\n"
    with pytest.raises(DirectoryError) as err:
        parse_directory(doc, "f.yaml")
    assert str(err.value).startswith("f.yaml line 5: ") and "key 'parent' given twice" in str(
        err.value
    )


def test_cli_load_reports_and_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'x.db'}\n", "utf-8")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "directory", "load", str(DATA)]) == 0
    assert "3 stations, 5 officers, 3 groups, 5 roster entries" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - {id: g, name: g, station: missing}\n", "utf-8")
    assert main(["--config", str(config), "directory", "load", str(bad)]) == 1
    assert "nothing loaded" in capsys.readouterr().err


def _cli_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, name: str = "d.yaml"
) -> tuple[int, str, str]:
    """``lianxin directory load`` of ``content`` on a SQLite database in ``tmp_path``
    (migrated on first use): the exit code, stdout and stderr of the load."""
    config = tmp_path / "config.yaml"
    if not config.exists():
        config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'x.db'}\n", "utf-8")
        assert main(["--config", str(config), "db", "upgrade"]) == 0
    path = tmp_path / name
    path.write_text(content, "utf-8")
    capsys.readouterr()
    code = main(["--config", str(config), "directory", "load", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("content", ["", "# the county's directory, to be filled in\n", "[]\n"])
def test_an_empty_file_loads_nothing_and_a_list_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    code, out, err = _cli_load(tmp_path, capsys, content)
    if content.startswith("["):  # a file that is not a mapping at all is still an error
        assert code == 1 and "top level must be a mapping" in err
    else:  # every section is optional: an empty file is a directory with nothing in it
        assert code == 0 and "directory loaded: 0 stations" in out, (out, err)


def test_cli_load_warns_of_officers_it_cannot_reach_and_stations_without_a_leader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli_load(
        tmp_path,
        capsys,
        "stations:\n  - {id: s1, name: 一所}\n  - {id: s2, name: 二所, parent: s1}\n"
        "officers:\n  - {id: o1, name: 甲, station: s1}\n"
        "  - {id: l2, name: 乙, station: s2, wechat_id: wx_l2, role: leader}\n"
        "groups:\n  - {id: g1, name: 一群, station: s1}\n  - {id: g2, name: 二群, station: s2}\n",
    )
    assert code == 0 and "directory loaded" in out  # warnings do not stop the load
    warnings = [line for line in err.splitlines() if line.startswith("lianxin: warning:")]
    assert len(warnings) == 3
    assert "officer o1 has no wechat_id" in warnings[0]
    assert "station s1 has groups but no leader" in warnings[1]
    # s1 is the county centre (no parent) and o1 cannot be reached: escalations end there.
    assert "station s1 is the county centre and has no officer the bot can reach" in warnings[2]


def test_an_officer_moved_to_another_station_while_still_a_groups_officer_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = (
        "stations:\n  - {id: county, name: 縣局}\n  - {id: s1, name: 一所, parent: county}\n"
        "  - {id: s2, name: 二所, parent: county}\n"
        "officers:\n  - {id: boss, name: 局, station: county, wechat_id: wx_b, role: leader}\n"
        "  - {id: l1, name: 甲所長, station: s1, wechat_id: wx_l1, role: leader}\n"
        "  - {id: l2, name: 乙所長, station: s2, wechat_id: wx_l2, role: leader}\n"
        "  - {id: o1, name: 甲, station: s1, wechat_id: wx_o1}\n"
        "groups:\n  - {id: g1, name: 一群, station: s1, officer: o1}\n"
    )
    code, _, err = _cli_load(tmp_path, capsys, tree)
    assert code == 0 and "lianxin: warning:" not in err
    moved = "officers:\n  - {id: o1, name: 甲, station: s2, wechat_id: wx_o1}\n"
    code, _, err = _cli_load(tmp_path, capsys, moved, name="moved.yaml")
    assert code == 0
    assert "group g1 (station s1) has officer o1 of station s2" in err, err


def test_a_county_centre_staffed_by_its_roster_is_not_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nobody belongs to the county, but its roster puts a station's leader on duty there.
    code, _, err = _cli_load(
        tmp_path,
        capsys,
        "stations:\n  - {id: county, name: 縣局}\n  - {id: s1, name: 一所, parent: county}\n"
        "officers:\n  - {id: l1, name: 甲, station: s1, wechat_id: wx_l1, role: leader}\n"
        "roster:\n  - {station: county, officer: l1, days: [mon], from: '00:00', to: '24:00'}\n",
    )
    assert code == 0 and "county centre" not in err


def test_a_second_station_without_a_parent_is_refused_and_nothing_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli_load(tmp_path, capsys, "stations:\n  - {id: county, name: 縣局}\n")[0] == 0
    # The forgotten parent: an id that sorts before the county would have taken its desk.
    code, _, err = _cli_load(
        tmp_path,
        capsys,
        "stations:\n  - {id: a-town, name: 甲鎮}\ngroups:\n  - {id: g1, name: 一群, station: a-town}\n",
        name="e.yaml",
    )
    second = tmp_path / "e.yaml"
    assert code == 1
    assert f"{second} line 2: station a-town: has no parent, and neither has county" in err
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")

    async def ids() -> list[str]:
        async with make_sessions(engine)() as s:
            found = list((await s.scalars(select(Station.id))).all())
        await engine.dispose()
        return found

    assert asyncio.run(ids()) == ["county"]  # nothing of the second file applied


def test_a_parent_making_a_loop_with_stored_stations_is_refused_and_nothing_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by a newcomer: the county given a parent below it was loaded, the tree lost its
    # county centre, and a private emergency's ticket went to nobody.
    tree = (
        "stations:\n  - {id: county, name: 縣局}\n  - {id: qiaozhen, name: 橋鎮, parent: county}\n"
    )
    assert _cli_load(tmp_path, capsys, tree)[0] == 0
    code, _, err = _cli_load(
        tmp_path,
        capsys,
        "stations:\n  - {id: county, name: 縣局, parent: qiaozhen}\n",
        name="loop.yaml",
    )
    assert code == 1
    assert f"{tmp_path / 'loop.yaml'} line 2: station county: parent chain loops" in err
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")

    async def parents() -> dict[str, str | None]:
        async with make_sessions(engine)() as s:
            found = dict((await s.execute(select(Station.id, Station.parent_id))).all())
        await engine.dispose()
        return found

    assert asyncio.run(parents()) == {"county": None, "qiaozhen": "county"}


def _officers_file(tmp_path: Path, *officers: str) -> Path:
    path = tmp_path / "officers.yaml"
    lines = ["stations:", "  - {id: s1, name: 一所}", "officers:"]
    lines += [f"  - {o}" for o in officers]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


async def _wechat_ids(db_url: str) -> dict[str, str | None]:
    engine = make_engine(db_url)
    async with make_sessions(engine)() as s:
        found = {o.id: o.wechat_id for o in (await s.scalars(select(Officer))).all()}
    await engine.dispose()
    return found


async def test_a_wechat_account_moves_between_officers_in_any_order(
    db_url: str, tmp_path: Path
) -> None:
    await _load(
        db_url,
        _officers_file(
            tmp_path, "{id: a, name: 甲, station: s1, wechat_id: wx_a}",
            "{id: b, name: 乙, station: s1, wechat_id: wx_b}",
        ),
    )  # fmt: skip
    # The new holder's line comes first, and the two accounts are swapped.
    await _load(
        db_url,
        _officers_file(
            tmp_path, "{id: b, name: 乙, station: s1, wechat_id: wx_a}",
            "{id: a, name: 甲, station: s1, wechat_id: wx_b}",
        ),
    )  # fmt: skip
    assert await _wechat_ids(db_url) == {"a": "wx_b", "b": "wx_a"}
    # A new officer takes b's account while b gives it up in the same file.
    await _load(
        db_url,
        _officers_file(
            tmp_path, "{id: c, name: 丙, station: s1, wechat_id: wx_a}",
            "{id: b, name: 乙, station: s1}",
        ),
    )  # fmt: skip
    assert await _wechat_ids(db_url) == {"a": "wx_b", "b": None, "c": "wx_a"}


async def test_an_account_held_by_an_officer_outside_the_file_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    await _load(db_url, _officers_file(tmp_path, "{id: a, name: 甲, station: s1, wechat_id: wx_a}"))
    clash = _officers_file(tmp_path, "{id: d, name: 丁, station: s1, wechat_id: wx_a}")
    with pytest.raises(DirectoryError) as err:
        await _load(db_url, clash)
    message = str(err.value)
    assert "officers.yaml line 4" in message and "wx_a" in message and "officer a" in message
    assert await _wechat_ids(db_url) == {"a": "wx_a"}  # nothing applied


async def test_a_file_not_in_utf8_is_named(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("stations:\n  - {id: s1, name: 一所}\n".encode("gbk"))
    with pytest.raises(DirectoryError) as err:
        await _load(db_url, path)
    assert "UTF-8" in str(err.value) and "gbk.yaml" in str(err.value)


def _cipher() -> PiiCipher:
    return PiiCipher(os.urandom(32))


async def test_officers_phones_are_stored_encrypted_and_a_second_load_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        DATA.read_text(encoding="utf-8").replace(
            "wechat_id: wxid_wang,",
            'wechat_id: wxid_wang, wecom_id: WangWei, phone: "139 0000 0001",',
        ),
        encoding="utf-8",
    )
    cipher = _cipher()
    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    try:
        async with sessions.begin() as s:
            await load_directory_file(s, path, cipher=cipher)
        async with sessions() as s:
            wang = await s.get(Officer, "off-wang")
            assert wang is not None and wang.wecom_id == "WangWei" and wang.phone_enc
            assert b"13900000001" not in wang.phone_enc
            assert cipher.decrypt(wang.phone_enc) == "13900000001"
            stored = wang.phone_enc
        async with sessions.begin() as s:
            await load_directory_file(s, path, cipher=cipher)
        async with sessions() as s:
            wang = await s.get(Officer, "off-wang")
            assert wang is not None and wang.phone_enc == stored  # not re-encrypted
        # A file without the number removes it.
        async with sessions.begin() as s:
            await load_directory_file(s, DATA, cipher=cipher)
        async with sessions() as s:
            wang = await s.get(Officer, "off-wang")
            assert wang is not None and wang.phone_enc is None and wang.wecom_id is None
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (
            'wechat_id: wxid_wang, phone: "12345"',
            "line 6: officer off-wang: 'phone' is not a mainland",
        ),
        ("wechat_id: wxid_wang, wecom_id: Same", None),
    ],
)
async def test_bad_officer_phones_and_accounts_name_the_line(
    db_url: str, tmp_path: Path, replacement: str, message: str | None
) -> None:
    text = DATA.read_text(encoding="utf-8").replace("wechat_id: wxid_wang", replacement)
    if message is None:  # the same WeCom id for two officers
        text = text.replace("wechat_id: wxid_li", "wechat_id: wxid_li, wecom_id: Same")
        message = "line 7: officer off-li: wecom_id 'Same' used twice"
    path = tmp_path / "d.yaml"
    path.write_text(text, encoding="utf-8")
    engine = make_engine(db_url)
    try:
        async with make_sessions(engine).begin() as s:
            with pytest.raises(DirectoryError) as err:
                await load_directory_file(s, path, cipher=_cipher())
        assert message in str(err.value)
    finally:
        await engine.dispose()
    assert (await _counts(db_url))["officers"] == 0  # nothing of that file applied


async def test_phones_need_the_pii_key(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        DATA.read_text(encoding="utf-8").replace(
            "wechat_id: wxid_wang,", 'wechat_id: wxid_wang, phone: "13900000001",'
        ),
        encoding="utf-8",
    )
    with pytest.raises(DirectoryError, match="pii_key"):
        await _load(db_url, path)


@pytest.mark.parametrize(
    "hook",
    [
        "693a91f6-7a0b-4bc4-97a0-0ec2sifa5aaa",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7a0b",
        "http://127.0.0.1:9000/cgi-bin/webhook/send?key=k",
    ],
)
def test_a_groups_robot_is_a_key_or_a_url(hook: str) -> None:
    from bot.services.directory import parse_directory

    doc = (
        "stations:\n  - {id: s1, name: 一所}\n"
        f"groups:\n  - {{id: g1, name: 群, station: s1, wecom_webhook: '{hook}'}}\n"
    )
    parse_directory(doc, "f.yaml")
