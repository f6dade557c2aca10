"""``lianxin households load FILE.csv``: the household roster from officers' visits.

Columns ``name, mobile, address, group_id`` (header row; UTF-8 with or without BOM). All or
nothing: every line is checked before anything is written, and an error names the line (never
the number or name on it). Households are upserted by mobile number; records missing from a
later file are kept. Names, numbers and addresses are stored encrypted with look-up hashes.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.pii import PiiCipher
from bot.services.identity import (
    IdentityError,
    check_name,
    name_hash,
    normalise_phone,
    normalise_text,
    phone_hash,
)
from models.directory import Group
from models.people import Household

REQUIRED_COLUMNS = ("name", "mobile")
KNOWN_COLUMNS = ("name", "mobile", "address", "group_id")
_PROBLEMS = {
    "verify_bad_name": "name must be 2–20 CJK or Latin letters (· allowed), no digits",
    "verify_bad_phone": "mobile is not an 11-digit mainland mobile number",
}


class HouseholdError(Exception):
    """The file cannot be applied; the message names the line."""


@dataclass(frozen=True)
class HouseholdRow:
    line: int
    name: str
    phone: str
    address: str | None
    group_id: str | None


@dataclass(frozen=True)
class HouseholdSummary:
    created: int
    updated: int
    unchanged: int = 0


def parse_households(data: bytes, source: str = "households") -> list[HouseholdRow]:
    """Decode and check a roster file; raises :class:`HouseholdError` naming the line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Excel on a Chinese Windows saves "CSV" in GBK; its "CSV UTF-8" is the one to use.
        raise HouseholdError(
            f"{source}: not UTF-8 (byte {exc.start}): save it as UTF-8 (Excel: CSV UTF-8)"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise HouseholdError(f"{source}: empty file (expected a header row)")
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise HouseholdError(f"{source} line 1: missing column(s): {', '.join(missing)}")
    # A misspelt column (addr, group) was loaded without its values: every household of the
    # file lost its address or group. Blank headings (a spreadsheet's empty columns) are no
    # column.
    unknown = [c for c in columns if c and c not in KNOWN_COLUMNS]
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if unknown or twice:
        problem = (
            f"unknown column(s): {', '.join(unknown)}"
            if unknown
            else f"column(s) given twice: {', '.join(twice)}"
        )
        raise HouseholdError(
            f"{source} line 1: {problem} (the columns are {', '.join(KNOWN_COLUMNS)})"
        )
    rows: list[HouseholdRow] = []
    first_line: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            raise HouseholdError(f"{source} line {line}: more cells than columns")
        record = {c: v.strip() for c, v in zip(columns, cells, strict=False) if c}
        row = _check_row(record, line, source)
        if row.phone in first_line:
            raise HouseholdError(
                f"{source} line {line}: same mobile as line {first_line[row.phone]}"
            )
        first_line[row.phone] = line
        rows.append(row)
    return rows


def _check_row(record: dict[str, str], line: int, source: str) -> HouseholdRow:
    for column in REQUIRED_COLUMNS:
        if not record.get(column):
            raise HouseholdError(f"{source} line {line}: missing {column}")
    try:
        name = check_name(record["name"])
        phone = normalise_phone(record["mobile"])
    except IdentityError as exc:
        raise HouseholdError(f"{source} line {line}: {_PROBLEMS[exc.key]}") from None
    address = normalise_text(record.get("address") or "").strip() or None
    group_id = (record.get("group_id") or "").strip() or None
    return HouseholdRow(line, name, phone, address, group_id)


async def apply_households(
    session: AsyncSession, rows: list[HouseholdRow], cipher: PiiCipher, source: str = "households"
) -> HouseholdSummary:
    """Upsert checked rows by phone hash (the caller commits, or rolls back on error)."""
    known_groups = set((await session.scalars(select(Group.id))).all())
    for row in rows:
        if row.group_id is not None and row.group_id not in known_groups:
            raise HouseholdError(f"{source} line {row.line}: unknown group '{row.group_id}'")
    hashes = {phone_hash(cipher, row.phone): row for row in rows}
    existing: dict[str, Household] = {}
    keys = list(hashes)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = await session.scalars(select(Household).where(Household.phone_hash.in_(chunk)))
        existing.update({h.phone_hash: h for h in found if h.phone_hash is not None})
    created = updated = unchanged = 0
    for p_hash, row in hashes.items():
        household = existing.get(p_hash)
        if household is None:
            household = Household(phone_hash=p_hash)
            session.add(household)
            created += 1
        elif _same(household, row, cipher):
            # Left as it is: new ciphertexts of the same words would be a change of nothing.
            unchanged += 1
            continue
        else:
            updated += 1
        household.name_enc = cipher.encrypt(row.name)
        household.phone_enc = cipher.encrypt(row.phone)
        household.name_hash = name_hash(cipher, row.name)
        household.address_enc = cipher.encrypt(row.address)
        household.group_id = row.group_id
    await session.flush()
    return HouseholdSummary(created, updated, unchanged)


def _same(household: Household, row: HouseholdRow, cipher: PiiCipher) -> bool:
    """Whether the stored household already says what ``row`` says (same mobile: same hash)."""
    return (
        household.group_id == row.group_id
        and household.name_hash == name_hash(cipher, row.name)
        and cipher.decrypt(household.name_enc) == row.name
        and (cipher.decrypt(household.address_enc) if household.address_enc else None)
        == row.address
    )


async def load_households_file(
    session: AsyncSession, path: Path, cipher: PiiCipher
) -> HouseholdSummary:
    """Read, check and apply a roster file; raises :class:`HouseholdError`."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise HouseholdError(f"{path}: cannot read ({exc.strerror})") from None
    rows = parse_households(data, path.name)
    return await apply_households(session, rows, cipher, path.name)
