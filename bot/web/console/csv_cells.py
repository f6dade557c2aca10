"""What the console's CSV exports (工單, 統計) write into a cell."""

from __future__ import annotations

# A spreadsheet runs a cell that starts with one of these as a formula (a tab or a carriage
# return may hide one after it); names and titles come from people and from directory files.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (a leading "'")."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
