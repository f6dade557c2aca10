"""Every sentence the bot says lives in ``handlers/texts*.yaml``, in Traditional and Simplified
script; this module loads and renders them (a foundation module every layer may use)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import opencc
import yaml

from models.base import Script as Script  # re-exported: handlers and the console import it here

# The sentences stay beside the intent handlers that say them.
TEXTS_FILE = Path(__file__).resolve().parent.parent / "handlers" / "texts.yaml"


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """``text`` in Simplified script: what two spellings of one word share (陳 = 陈)."""
    converted: str = _t2s().convert(text)
    return converted


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    # Taiwan's standard forms: plain s2t writes 群 as 羣 and 床 as 牀, so "警民群" would read
    # as Simplified although both scripts write it the same.
    return opencc.OpenCC("s2tw")


@lru_cache(maxsize=4)
def _changing_keys(
    converter: opencc.OpenCC,
) -> tuple[frozenset[str], frozenset[str], tuple[int, ...]]:
    """The dictionary entries of ``converter`` that change what they match (many map a phrase
    to itself, to keep its characters from being converted one by one): their keys, the keys'
    first characters, and their lengths, longest first."""
    keys: set[str] = set()
    # opencc-python-reimplemented's loaded chain: stages of (max_len, min_len, {key: value}).
    for stage in converter._dict_chain_data:
        for _, _, mapping in stage if isinstance(stage, list) else [stage]:
            keys |= {k for k, v in mapping.items() if k != v}
    lengths = tuple(sorted(set(map(len, keys)), reverse=True))
    return frozenset(keys), frozenset({k[0] for k in keys}), lengths


def _converts(converter: opencc.OpenCC, text: str) -> bool:
    """Whether ``converter`` changes ``text``. Where no entry that changes anything occurs in
    the text, every match leaves its characters as they are, so the text comes out as it went
    in: that is checked first, with set look-ups instead of the converter's parse tree."""
    keys, firsts, lengths = _changing_keys(converter)
    # Plain loops: a generator would cost a Python call per step.
    for i, char in enumerate(text):
        if char in firsts:
            for n in lengths:
                if text[i : i + n] in keys:
                    return bool(converter.convert(text) != text)
    return False


@lru_cache(maxsize=4096)
def script_of(text: str) -> Script | None:
    """``hant`` or ``hans`` when the text shows which; None when it reads the same in both
    ("有人拿刀砍人", "你好").

    Cached: the pure-Python converter costs most of a millisecond a text, and the same texts
    (a group's name, the message asked about by several handlers) come back on every event."""
    if not text:
        return None
    if _converts(_t2s(), text):
        return "hant"
    if _converts(_s2t(), text):
        return "hans"
    return None


def detect_script(text: str, default: Script = "hans") -> Script:
    """The script of ``text``, or ``default`` when it does not tell."""
    return script_of(text) or default


def group_script(name: str | None) -> Script:
    """What a group is written to in when the words do not tell (an announcement, an urgent
    notice that reads the same in both scripts): its name's script; Traditional when the name
    does not tell either ("群" alone)."""
    return "hans" if name and script_of(name) == "hans" else "hant"


class Texts:
    """Looks up and fills user-facing sentences by key and script."""

    def __init__(self, table: dict[str, dict[str, str]]) -> None:
        for key, variants in table.items():
            if set(variants) != {"hant", "hans"}:
                raise ValueError(f"texts: {key!r} needs exactly 'hant' and 'hans'")
        self._table = table

    @classmethod
    def load(cls, folder: Path = TEXTS_FILE.parent) -> Texts:
        """Read every ``texts*.yaml`` in ``folder``; a key defined twice is an error."""
        table: dict[str, dict[str, str]] = {}
        for path in sorted(folder.glob("texts*.yaml")):
            for key, variants in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
                if key in table:
                    raise ValueError(f"texts: {key!r} defined twice ({path.name})")
                table[key] = variants
        return cls(table)

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def render(self, key: str, script: Script = "hans", /, **values: Any) -> str:
        """The sentence ``key`` in ``script`` with ``{placeholders}`` filled."""
        return self._table[key][script].format(**values)

    def all_variants(self, key: str) -> tuple[str, ...]:
        """Both scripts of a sentence (commands are matched in either)."""
        return tuple(self._table[key].values())
