"""``lianxin keys rotate``: re-encrypt personal data with the current key, recompute hashes.

Every ``LargeBinary`` column named ``*_enc`` in the models is found automatically, so a column
added later is rotated too. Rows are read with any known key (``security.pii_key`` plus
``security.pii_previous_keys``) and written back with the current one, in batches, one
transaction per batch. A row whose ciphertexts are all current is skipped, which makes the
command idempotent and safe to re-run after an interruption.

Look-up hashes are keyed by a key derived from the *current* PII key, so a rotated row's
hashes (``phone_hash``, ``name_hash``) are recomputed from its decrypted values. Open
verification codes made under the old key cannot be checked any more (only a hash of the code
is kept): they are closed, and the resident asks for a new one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import LargeBinary, Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from bot.pii import PiiCipher
from bot.services.identity import name_key
from models.base import Base

# table → hash column → (encrypted source column, normalisation before hashing)
HASHED: dict[str, dict[str, tuple[str, Callable[[str], str]]]] = {
    "bindings": {"phone_hash": ("phone_enc", str)},
    "verification_codes": {"phone_hash": ("phone_enc", str)},
    "households": {"phone_hash": ("phone_enc", str), "name_hash": ("name_enc", name_key)},
}


class RotationError(Exception):
    """A ciphertext that no configured key opens; the message names table and row id."""


@dataclass
class RotationSummary:
    """Rows re-encrypted per table, and rows examined."""

    rotated: dict[str, int] = field(default_factory=dict)
    examined: dict[str, int] = field(default_factory=dict)
    codes_closed: int = 0

    def lines(self) -> list[str]:
        """One human-readable line per table."""
        out = [
            f"{name}: {self.rotated[name]} of {self.examined[name]} rows re-encrypted"
            for name in sorted(self.rotated)
        ]
        if self.codes_closed:
            out.append(f"verification_codes: {self.codes_closed} open codes closed")
        return out


def _import_all_models() -> None:
    """Import every module under ``models/`` so that tables not re-exported by the package
    (a newly added one) are on the metadata too: a missed table would keep the old key."""
    for info in pkgutil.iter_modules(models.__path__):
        if info.name != "migrations":
            importlib.import_module(f"models.{info.name}")


def encrypted_columns() -> dict[str, list[str]]:
    """``{table: [*_enc columns]}`` for every model table holding ciphertext."""
    _import_all_models()
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        cols = [
            c.name
            for c in table.columns
            if c.name.endswith("_enc") and isinstance(c.type, LargeBinary)
        ]
        if cols:
            found[table.name] = cols
    return found


async def unopened_columns(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher
) -> list[str]:
    """``table.column`` of every encrypted column holding ciphertext that none of the configured
    keys opens. Checked at start-up: a server with the wrong key would otherwise answer 500 to
    every resident it knows (their stored nickname cannot be read), emergencies included."""
    found = []
    async with sessions() as session:
        for table_name, columns in encrypted_columns().items():
            table = Base.metadata.tables[table_name]
            for column in columns:
                col = table.c[column]
                key_ids = await session.scalars(
                    select(func.substr(col, 2, 4)).where(col.is_not(None)).distinct()
                )
                if any(not cipher.knows(key_id) for key_id in key_ids):
                    found.append(f"{table_name}.{column}")
    return found


async def rotate_keys(
    sessions: async_sessionmaker[AsyncSession], cipher: PiiCipher, *, batch_size: int = 500
) -> RotationSummary:
    """Re-encrypt every encrypted column with ``cipher``'s current key."""
    summary = RotationSummary()
    for table_name, columns in encrypted_columns().items():
        table = Base.metadata.tables[table_name]
        await _rotate_table(sessions, cipher, table, columns, batch_size, summary)
    return summary


async def _rotate_table(
    sessions: async_sessionmaker[AsyncSession],
    cipher: PiiCipher,
    table: Table,
    columns: list[str],
    batch_size: int,
    summary: RotationSummary,
) -> None:
    summary.rotated.setdefault(table.name, 0)
    summary.examined.setdefault(table.name, 0)
    pk = table.c.id
    wanted = [pk, *(table.c[c] for c in columns)]
    if "status" in table.c and table.name == "verification_codes":
        wanted.append(table.c.status)
    last_id: Any = None
    while True:
        async with sessions.begin() as session:
            # Rows holding no ciphertext at all (an officer without a phone) have nothing to do.
            holding = or_(*(table.c[c].is_not(None) for c in columns))
            stmt = select(*wanted).where(holding).order_by(pk).limit(batch_size)
            if last_id is not None:
                stmt = stmt.where(pk > last_id)
            if session.get_bind().dialect.name == "postgresql":
                # A server writing the same row meanwhile waits for this batch.
                stmt = stmt.with_for_update()
            rows = (await session.execute(stmt)).mappings().all()
            if not rows:
                return
            for row in rows:
                values = _new_values(cipher, table.name, columns, row)
                summary.examined[table.name] += 1
                if values:
                    summary.rotated[table.name] += 1
                    summary.codes_closed += values.get("status") == "dead"
                    await session.execute(update(table).where(pk == row["id"]).values(**values))
            last_id = rows[-1]["id"]


def _new_values(cipher: PiiCipher, table_name: str, columns: list[str], row: Any) -> dict[str, Any]:
    """The re-encrypted columns and recomputed hashes of one row; empty when already current."""
    stale = [c for c in columns if row[c] is not None and not cipher.is_current(row[c])]
    if not stale:
        return {}
    plain: dict[str, str | None] = {}
    for column in columns:
        try:
            plain[column] = cipher.decrypt(row[column])
        except Exception as exc:  # InvalidTag or an unknown key id
            raise RotationError(
                f"{table_name} id {row['id']}, {column}: cannot decrypt ({type(exc).__name__}); "
                "is the key that made it listed in security.pii_previous_keys?"
            ) from None
    values: dict[str, Any] = {c: cipher.encrypt(plain[c]) for c in stale}
    for hash_column, (source, normalise) in HASHED.get(table_name, {}).items():
        value = plain.get(source)
        # Closed codes keep no number (""): their old hash is left as it is.
        if value:
            values[hash_column] = cipher.lookup_hash(normalise(value))
    if table_name == "verification_codes" and row.get("status") == "open":
        values["status"] = "dead"
    return values
