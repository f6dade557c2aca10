"""``households load`` (all or nothing, roster matching) and ``keys rotate`` (re-encryption)."""

from __future__ import annotations

import argparse
import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, select

from bot.cli import build_parser
from bot.cli import main as cli_main
from bot.cli_people import register, subparsers_of
from bot.db import make_engine, make_sessions
from bot.pii import PiiCipher
from bot.services.households import HouseholdError, load_households_file, parse_households
from bot.services.identity import name_hash, phone_hash
from bot.services.keyrotation import encrypted_columns, rotate_keys
from bot.settings import decode_key
from models.base import Base
from models.people import Binding, Household, VerificationCode
from models.tickets import Ticket, TicketEvent
from tests import harness as test_harness
from tests.fakes import FakeWorld
from tests.harness import Harness
from tests.test_verification import DIRECTORY, bind, build_harness, code_in, dm, rows, sms_to

ROSTER = Path(__file__).parent / "data" / "households.csv"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


async def load_roster(h: Harness, path: Path = ROSTER) -> None:
    async with h.runtime.sessions.begin() as session:
        await load_households_file(session, path, h.runtime.cipher)


# --- households load --------------------------------------------------------------------------


async def test_roster_loads_with_bom_and_reloads_by_phone(
    db_url: str, world: FakeWorld, tmp_path: Path
) -> None:
    h = await build_harness(db_url, world)
    try:
        await load_roster(h)
        cipher = h.runtime.cipher
        households = await rows(h, Household)
        assert len(households) == 3
        by_phone = {cipher.decrypt(x.phone_enc): x for x in households}
        assert set(by_phone) == {"13812345678", "13912345678", "15012345678"}
        zhang = by_phone["13812345678"]
        assert cipher.decrypt(zhang.name_enc) == "張三"
        assert zhang.phone_hash == phone_hash(cipher, "13812345678")
        assert zhang.name_hash == name_hash(cipher, "张三")  # either script matches
        assert cipher.decrypt(by_phone["13912345678"].address_enc) == "橋鎮村2組5號, 東側"
        assert by_phone["15012345678"].address_enc is None

        changed = tmp_path / "again.csv"  # no BOM, LF, one address changed
        changed.write_text(
            "name,mobile,address,group_id\n張三,138 1234 5678,橋鎮村9組,grp-qiaozhen-01\n",
            encoding="utf-8",
        )
        await load_roster(h, changed)
        households = await rows(h, Household)
        assert len(households) == 3
        zhang = next(x for x in households if x.phone_hash == phone_hash(cipher, "13812345678"))
        assert cipher.decrypt(zhang.address_enc) == "橋鎮村9組"
    finally:
        await h.close()


async def test_the_same_roster_again_changes_nothing_and_says_so(
    db_url: str, world: FakeWorld, tmp_path: Path
) -> None:
    h = await build_harness(db_url, world)
    try:
        async with h.runtime.sessions.begin() as session:
            first = await load_households_file(session, ROSTER, h.runtime.cipher)
        before = {x.id: (x.name_enc, x.address_enc) for x in await rows(h, Household)}
        async with h.runtime.sessions.begin() as session:
            again = await load_households_file(session, ROSTER, h.runtime.cipher)
        assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
        # Not even new ciphertexts of the same words.
        assert {x.id: (x.name_enc, x.address_enc) for x in await rows(h, Household)} == before

        moved = tmp_path / "moved.csv"  # one household moves to another group
        moved.write_text(
            "name,mobile,address,group_id\n張三,13812345678,橋鎮村1組3號,\n", encoding="utf-8"
        )
        async with h.runtime.sessions.begin() as session:
            third = await load_households_file(session, moved, h.runtime.cipher)
        assert (third.created, third.updated, third.unchanged) == (0, 1, 0)
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("name,mobile\n張三,13812345678\n李四,1234\n", "line 3: mobile"),
        ("name,mobile\n張三,13812345678\n\n李4,13912345678\n", "line 4: name"),
        ("name,mobile\n張三,13812345678\n張三,+86 13812345678\n", "line 3: same mobile as line 2"),
        ("name,address\n張三,x\n", "line 1: missing column(s): mobile"),
        ("name,mobile\n,13812345678\n", "line 2: missing name"),
        ("name,mobile\n張三,13812345678,extra\n", "line 2: more cells than columns"),
        # A misspelt column was loaded without its values (every address or group lost).
        ("name,mobile,addr\n張三,13812345678,x\n", "line 1: unknown column(s): addr (the columns"),
        ("name,mobile,name\n張三,13812345678,李四\n", "line 1: column(s) given twice: name"),
        ("", "empty file"),
    ],
)
def test_bad_roster_lines_are_named(body: str, expected: str) -> None:
    with pytest.raises(HouseholdError) as caught:
        parse_households(body.encode("utf-8"), "roster.csv")
    assert expected in str(caught.value)


def test_a_spreadsheets_blank_columns_are_no_columns() -> None:
    [row] = parse_households("name,mobile,,\n張三,13812345678,,\n".encode(), "roster.csv")
    assert row.phone.endswith("12345678")


def test_roster_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(HouseholdError, match=r"not UTF-8 .*save it as UTF-8"):
        parse_households("name,mobile\n張三,13812345678\n".encode("gb18030"), "roster.csv")


def test_roster_errors_never_echo_the_number() -> None:
    with pytest.raises(HouseholdError) as caught:
        parse_households(b"name,mobile\nZhang San,12812345678\n", "roster.csv")
    assert "12812345678" not in str(caught.value)


async def test_a_bad_line_applies_nothing(db_url: str, world: FakeWorld, tmp_path: Path) -> None:
    h = await build_harness(db_url, world)
    try:
        bad = tmp_path / "bad.csv"
        bad.write_text(
            "name,mobile,address,group_id\n張三,13812345678,,grp-qiaozhen-01\n"
            "李四,13912345678,,grp-nowhere\n",
            encoding="utf-8",
        )
        with pytest.raises(HouseholdError, match="line 3: unknown group 'grp-nowhere'"):
            await load_roster(h, bad)
        assert await rows(h, Household) == []
    finally:
        await h.close()


# --- roster matching --------------------------------------------------------------------------


async def test_roster_match_on_requires_a_household(db_url: str, world: FakeWorld) -> None:
    h = await build_harness(db_url, world, verification={"roster_match": True})
    try:
        await load_roster(h)
        await bind(h, name="张三", phone="13812345678")  # roster says 張三: same name
        (binding,) = await rows(h, Binding)
        assert binding.roster_matched is True

        for sender, name, phone in [
            ("wxid_b", "王五", "13912345678"),  # 李四's number, another name
            ("wxid_c", "张三", "13700000000"),  # not in the roster at all
        ]:
            await dm(h, f"实名 {name} {phone}", sender)
            answer = (await dm(h, code_in(sms_to(world, phone)[-1]), sender))[0]
            assert "住户登记中没有" in answer
        assert len(await rows(h, Binding)) == 1
        assert all(c.status != "open" for c in await rows(h, VerificationCode))
    finally:
        await h.close()


async def test_roster_match_off_binds_and_marks(db_url: str, world: FakeWorld) -> None:
    h = await build_harness(db_url, world)
    try:
        await load_roster(h)
        await bind(h, name="李四", phone="13912345678", sender="wxid_a")
        await bind(h, name="王五", phone="13700000000", sender="wxid_b")
        matched = {b.phone_hash: b.roster_matched for b in await rows(h, Binding)}
        cipher = h.runtime.cipher
        assert matched == {
            phone_hash(cipher, "13912345678"): True,
            phone_hash(cipher, "13700000000"): False,
        }
    finally:
        await h.close()


# --- keys rotate ------------------------------------------------------------------------------


async def _seed_everything(h: Harness) -> None:
    """One row in every encrypted column, made with the harness's key."""
    await load_roster(h)
    await bind(h, name="张三", phone="13812345678")
    await dm(h, "实名 李四 13912345678", sender="wxid_open")  # an open code
    cipher, now = h.runtime.cipher, h.clock.now()
    async with h.runtime.sessions.begin() as s:
        ticket = Ticket(
            code="A1001",
            category="report",
            priority=2,
            channel="bridge",
            text_enc=cipher.encrypt("门口有可疑的人"),
            resolution_enc=cipher.encrypt("已处理"),
            created_at=now,
            updated_at=now,
            ack_due_at=now,
            answer_due_at=now,
        )
        s.add(ticket)
        await s.flush()
        s.add(
            TicketEvent(ticket_id=ticket.id, at=now, kind="answer", note_enc=cipher.encrypt("好"))
        )


async def _all_ciphertexts(sessions: Any) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    async with sessions() as s:
        for table_name, columns in encrypted_columns().items():
            table = Base.metadata.tables[table_name]
            for row in (await s.execute(select(*(table.c[c] for c in columns)))).all():
                found += [(table_name, bytes(v)) for v in row if v is not None]
    return found


def test_every_encrypted_column_is_found() -> None:
    found = {f"{t}.{c}" for t, cols in encrypted_columns().items() for c in cols}
    expected = {
        "inbound_events.payload_enc",
        "outbox.payload_enc",
        "members.nickname_enc",
        "bindings.name_enc",
        "bindings.phone_enc",
        "verification_codes.name_enc",
        "verification_codes.phone_enc",
        "households.name_enc",
        "households.phone_enc",
        "households.address_enc",
        "tickets.text_enc",
        "tickets.resolution_enc",
        "ticket_events.note_enc",
    }
    assert expected <= found
    # Nothing binary escapes the naming rule the rotation relies on.
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, LargeBinary):
                assert column.name.endswith("_enc"), f"{table.name}.{column.name}"


async def test_rotation_reencrypts_everything_and_old_key_can_go(
    db_url: str, world: FakeWorld
) -> None:
    old_key, new_key_ = new_key(), new_key()
    h = await build_harness(db_url, world, security={"pii_key": old_key})
    await _seed_everything(h)
    await h.close()

    both = test_harness.make_runtime(
        test_harness.test_settings(
            db_url, world, security={"pii_key": new_key_, "pii_previous_keys": [old_key]}
        )
    )
    try:
        before = await _all_ciphertexts(both.sessions)
        assert before and not any(both.cipher.is_current(b) for _, b in before)
        summary = await rotate_keys(both.sessions, both.cipher, batch_size=2)
        assert summary.rotated["households"] == 3 and summary.rotated["bindings"] == 1
        assert summary.rotated["tickets"] == 1 and summary.rotated["ticket_events"] == 1
        assert summary.codes_closed == 1
        assert sum(summary.rotated.values()) == sum(summary.examined.values())
        again = await rotate_keys(both.sessions, both.cipher)
        assert sum(again.rotated.values()) == 0  # idempotent
    finally:
        await both.aclose()

    only_new = PiiCipher(decode_key(new_key_))
    engine = make_engine(db_url)
    sessions = make_sessions(engine)
    try:
        for table_name, blob in await _all_ciphertexts(sessions):
            assert only_new.is_current(blob), table_name
            only_new.decrypt(blob)
        async with sessions() as s:
            binding = await s.scalar(select(Binding))
            assert binding is not None
            assert binding.phone_hash == only_new.lookup_hash("13812345678")
            households = (await s.scalars(select(Household))).all()
            for household in households:
                phone = only_new.decrypt(household.phone_enc) or ""
                assert household.phone_hash == phone_hash(only_new, phone)
                assert household.name_hash == name_hash(
                    only_new, only_new.decrypt(household.name_enc) or ""
                )
            statuses = (await s.scalars(select(VerificationCode.status))).all()
            assert "open" not in statuses
    finally:
        await engine.dispose()

    # The product runs on the new key alone: the binding reads back, the roster still matches.
    h2 = await build_harness(
        db_url, world, security={"pii_key": new_key_}, verification={"roster_match": True}
    )
    try:
        answer = (await dm(h2, "我的信息"))[0]
        assert "张*" in answer and "138****5678" in answer
        h2.clock.advance(3600)
        await bind(h2, name="李四", phone="13912345678", sender="wxid_new")
    finally:
        await h2.close()


# --- the command line -------------------------------------------------------------------------


def run_cli(argv: Sequence[str]) -> int:
    """Run ``lianxin`` with the people commands registered (as bot/cli.py will)."""
    parser = build_parser()
    sub = subparsers_of(parser)
    assert sub is not None
    register(sub)
    args: argparse.Namespace = parser.parse_args(list(argv))
    return int(args.func(args) or 0)


def test_register_is_idempotent_and_keeps_keys_generate() -> None:
    parser = build_parser()
    sub = subparsers_of(parser)
    assert sub is not None
    register(sub)
    register(sub)
    keys = subparsers_of(sub.choices["keys"])
    assert keys is not None and {"generate", "rotate"} <= set(keys.choices)
    assert "load" in subparsers_of(sub.choices["households"]).choices  # type: ignore[union-attr]


def test_cli_load_rotate_and_drop_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'cli.db'}\n")
    old_key, new_key_ = new_key(), new_key()
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", old_key)
    assert cli_main(["--config", str(config), "db", "upgrade"]) == 0
    assert cli_main(["--config", str(config), "directory", "load", str(DIRECTORY)]) == 0
    assert run_cli(["--config", str(config), "households", "load", str(ROSTER)]) == 0
    assert "3 new, 0 updated" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("name,mobile\n王五,13700000000\n趙六,99\n", encoding="utf-8")
    assert run_cli(["--config", str(config), "households", "load", str(bad)]) == 1
    assert "line 3" in capsys.readouterr().err

    # Rotating without the old key is refused before it starts, naming the columns; nothing
    # is lost.
    monkeypatch.setenv("LIANXIN__SECURITY__PII_KEY", new_key_)
    with pytest.raises(SystemExit) as exit_:
        run_cli(["--config", str(config), "keys", "rotate"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "households.name_enc" in err and "LIANXIN__SECURITY__PII_PREVIOUS_KEYS" in err

    monkeypatch.setenv("LIANXIN__SECURITY__PII_PREVIOUS_KEYS", f'["{old_key}"]')
    assert run_cli(["--config", str(config), "keys", "rotate", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "households: 3 of 3 rows re-encrypted" in out

    # The old key removed: loading again finds the households by their recomputed hashes.
    monkeypatch.delenv("LIANXIN__SECURITY__PII_PREVIOUS_KEYS")
    assert run_cli(["--config", str(config), "keys", "rotate"]) == 0
    assert "households: 0 of 3 rows re-encrypted" in capsys.readouterr().out
    assert run_cli(["--config", str(config), "households", "load", str(ROSTER)]) == 0
    assert "0 new, 0 updated, 3 unchanged" in capsys.readouterr().out  # found by new hashes


def test_cli_needs_the_pii_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'cli.db'}\n")
    monkeypatch.delenv("LIANXIN__SECURITY__PII_KEY", raising=False)
    with pytest.raises(SystemExit):
        run_cli(["--config", str(config), "keys", "rotate"])
    assert "LIANXIN__SECURITY__PII_KEY" in capsys.readouterr().err
