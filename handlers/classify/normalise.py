"""One spelling for every writer: Traditional → Simplified, full-width → half-width, regional
wording → Mandarin.  The tables live in ``data/normalise.txt`` (format and order described there);
this module only applies them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import opencc

__all__ = ["normalise"]

TABLES = Path(__file__).with_name("data") / "normalise.txt"

_SECTIONS = (
    "words",
    "patterns",
    "northern",
    "wu markers",
    "wu",
    "cantonese markers",
    "cantonese before",
    "cantonese",
    "abbreviations",
)

Rule = tuple[re.Pattern[str], str]


@dataclass(frozen=True)
class _Tables:
    words: tuple[tuple[str, str], ...]
    patterns: tuple[Rule, ...]
    northern: tuple[Rule, ...]
    wu_markers: re.Pattern[str]
    wu: tuple[Rule, ...]
    cantonese_markers: re.Pattern[str]
    cantonese_before: tuple[Rule, ...]
    cantonese: tuple[Rule, ...]
    abbreviations: tuple[Rule, ...]


def _read(path: Path) -> dict[str, list[str]]:
    """The entry lines of each section, comments dropped; ValueError names a bad line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for lineno, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = raw.split("  #", 1)[0].rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@ "):
            name = line[2:].strip()
            if name not in _SECTIONS:
                raise ValueError(f"{path} line {lineno}: unknown section {name!r}")
            current = sections.setdefault(name, [])
        elif current is None:
            raise ValueError(f"{path} line {lineno}: an entry before the first section")
        else:
            current.append(line)
    return sections


def _pairs(lines: list[str], where: str) -> list[tuple[str, str]]:
    pairs = []
    for line in lines:
        if " => " not in line:
            raise ValueError(f"{TABLES.name} [{where}]: expected 'pattern => replacement': {line}")
        src, dst = line.rsplit(" => ", 1)
        pairs.append((src, dst))
    return pairs


@cache
def _tables() -> _Tables:
    raw = _read(TABLES)

    def rules(name: str) -> tuple[Rule, ...]:
        return tuple((re.compile(src), dst) for src, dst in _pairs(raw.get(name, []), name))

    def markers(name: str) -> re.Pattern[str]:
        return re.compile("|".join(raw.get(name, [])) or r"(?!)")

    return _Tables(
        words=tuple(_pairs(raw.get("words", []), "words")),
        patterns=rules("patterns"),
        northern=rules("northern"),
        wu_markers=markers("wu markers"),
        wu=rules("wu"),
        cantonese_markers=markers("cantonese markers"),
        cantonese_before=rules("cantonese before"),
        cantonese=rules("cantonese"),
        abbreviations=rules("abbreviations"),
    )


@cache
def _t2s() -> opencc.OpenCC:
    # Building the converter parses dictionaries: once per process.
    return opencc.OpenCC("t2s")


@cache
def _t2s_witnesses() -> frozenset[str]:
    """One character of every t2s dictionary entry that changes its text: a piece holding none
    of them can match no such entry, so opencc would return it unchanged.

    The witness is the first character the entry changes (a Traditional one, rare in Simplified
    writing), so most pieces of a Simplified message skip opencc's parse tree, which cost
    about a tenth of accepting an event (issue 17). Empty when this opencc build keeps its
    dictionaries elsewhere: then every piece is converted."""
    witnesses: set[str] = set()
    for group in getattr(_t2s(), "_dict_chain_data", None) or []:
        for entry in group if isinstance(group, list) else [group]:
            if not (isinstance(entry, tuple) and len(entry) == 3 and isinstance(entry[2], dict)):
                return frozenset()
            for key, value in entry[2].items():
                if key == value or not key:
                    continue
                if len(key) == len(value):
                    witnesses.add(next(k for k, v in zip(key, value, strict=True) if k != v))
                else:
                    witnesses.add(key[0])
    return frozenset(witnesses)


@lru_cache(maxsize=4096)
def _t2s_piece(piece: str) -> str:
    witnesses = _t2s_witnesses()
    if witnesses and witnesses.isdisjoint(piece):
        return piece
    converted: str = _t2s().convert(piece)
    return converted


def _to_simplified(text: str) -> str:
    """opencc ``t2s``, one piece between separators at a time, each distinct piece once.

    opencc pays a fixed cost per piece between its separators, empty ones included ("，，，…"
    would cost a tree per comma): the pieces are converted exactly as opencc would, but empty and
    repeated ones are not redone.
    """
    splitter = getattr(_t2s(), "split_chars_re", None)
    if splitter is None:  # pragma: no cover - another opencc build
        converted: str = _t2s().convert(text)
        return converted
    parts = splitter.split(text)
    # Even indices are the pieces, odd ones the separators (captured by the split).
    return "".join(
        _t2s_piece(part) if i % 2 == 0 and part else part for i, part in enumerate(parts)
    )


_WHITESPACE = re.compile(r"\s+")
# Word-spaced writing (Mandarin as a second language, voice input read back: "买茶叶 的 客服 叫我
# 扫码") is joined; ordinary chat where a space stands for a comma ("喝了点酒 头有点晕") keeps its
# spaces.  Decided per message: at least 5 pieces, at least 70 % of them 1–3 characters long.
_SPACED_MIN_PIECES = 5
_SPACED_SHORT_SHARE = 0.7
_SPACED_JOIN = re.compile(r"(?<=[\u4e00-\u9fff0-9]) (?=[\u4e00-\u9fff0-9])")


def _join_word_spacing(text: str) -> str:
    pieces = text.split(" ")
    if len(pieces) < _SPACED_MIN_PIECES:
        return text
    short = sum(1 for piece in pieces if len(piece) <= 3)
    return _SPACED_JOIN.sub("", text) if short / len(pieces) >= _SPACED_SHORT_SHARE else text


def normalise(text: str) -> str:
    """``text`` in one canonical spelling: Simplified characters (opencc ``t2s``), Cantonese,
    Wu, Taiwan, Minnan and northern wording as Mandarin (咗 → 了, 阿拉 → 我们, 瓦斯 → 燃气,
    干仗 → 打架), full-width forms half-width and Latin letters lower-case (NFKC), 一一零 → 110,
    whitespace runs as one space.  Emoji are kept: they are a sign of chatter."""
    t = _tables()
    simplified = _to_simplified(text)
    if t.wu_markers.search(simplified):
        for pattern, dst in t.wu:
            simplified = pattern.sub(dst, simplified)
    cantonese = t.cantonese_markers.search(simplified) is not None
    if cantonese:
        for pattern, dst in t.cantonese_before:
            simplified = pattern.sub(dst, simplified)
    for src, dst in t.words:
        simplified = simplified.replace(src, dst)
    for pattern, dst in (*t.patterns, *t.northern):
        simplified = pattern.sub(dst, simplified)
    if cantonese:
        for pattern, dst in t.cantonese:
            simplified = pattern.sub(dst, simplified)
    # NFKC folds full-width forms (ＡＢＣ，１２３！) and the ideographic space; CJK punctuation
    # without a compatibility mapping (。、) stays.
    folded = unicodedata.normalize("NFKC", simplified).lower()
    for pattern, dst in t.abbreviations:
        folded = pattern.sub(dst, folded)
    return _join_word_spacing(_WHITESPACE.sub(" ", folded).strip())
