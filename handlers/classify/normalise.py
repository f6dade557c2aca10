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
# Rules asked together whether any of them matches (see _Gated): a few long messages' worth of
# alternatives per search, so that a hit re-runs only its own few rules.
_GATE_SIZE = 8
# Sources a combined search would read differently: a numbered or named back-reference, a
# conditional on a group (their numbers shift in an alternation). Such a group is never skipped.
_REFERS_TO_GROUPS = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


@dataclass(frozen=True)
class _Gated:
    """Rules applied in order, each group of them skipped when none of its rules matches the
    text as it stands: then none of their substitutions changes it (each rule would see the
    same text), so skipping gives exactly what applying them one by one gives. About half of
    normalising was rules that matched nothing (issue 17)."""

    groups: tuple[tuple[re.Pattern[str] | None, tuple[Rule, ...]], ...]

    @classmethod
    def of(cls, rules: tuple[Rule, ...]) -> _Gated:
        """Group ``rules`` in order under combined searches (None: always applied)."""
        groups = []
        for start in range(0, len(rules), _GATE_SIZE):
            part = rules[start : start + _GATE_SIZE]
            gate: re.Pattern[str] | None = None
            if not any(_REFERS_TO_GROUPS.search(p.pattern) for p, _ in part):
                try:
                    gate = re.compile("|".join(f"(?:{p.pattern})" for p, _ in part))
                except re.error:  # an inline flag or a group name twice: not combinable
                    gate = None
            groups.append((gate, part))
        return cls(tuple(groups))

    def apply(self, text: str) -> str:
        """``text`` after every rule's substitution, in order."""
        for gate, part in self.groups:
            if gate is None or gate.search(text):
                for pattern, dst in part:
                    text = pattern.sub(dst, text)
        return text


@dataclass(frozen=True)
class _Tables:
    words: _Gated  # literal replacements, as rules
    patterns: _Gated  # the "patterns" section, then "northern"
    wu_markers: re.Pattern[str]
    wu: _Gated
    cantonese_markers: re.Pattern[str]
    cantonese_before: _Gated
    cantonese: _Gated
    abbreviations: _Gated


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

    def rules(*names: str) -> _Gated:
        return _Gated.of(
            tuple(
                (re.compile(src), dst)
                for name in names
                for src, dst in _pairs(raw.get(name, []), name)
            )
        )

    def markers(name: str) -> re.Pattern[str]:
        return re.compile("|".join(raw.get(name, [])) or r"(?!)")

    return _Tables(
        words=_Gated.of(
            tuple(
                # Literal on both sides: a backslash in a replacement is one, not an escape.
                (re.compile(re.escape(src)), dst.replace("\\", "\\\\"))
                for src, dst in _pairs(raw.get("words", []), "words")
            )
        ),
        patterns=rules("patterns", "northern"),
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
    witnesses = _t2s_witnesses()
    if witnesses and witnesses.isdisjoint(text):
        return text  # no piece of it holds one (most Simplified messages): nothing to convert
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
        simplified = t.wu.apply(simplified)
    cantonese = t.cantonese_markers.search(simplified) is not None
    if cantonese:
        simplified = t.cantonese_before.apply(simplified)
    simplified = t.patterns.apply(t.words.apply(simplified))
    if cantonese:
        simplified = t.cantonese.apply(simplified)
    # NFKC folds full-width forms (ＡＢＣ，１２３！) and the ideographic space; CJK punctuation
    # without a compatibility mapping (。、) stays.
    folded = t.abbreviations.apply(unicodedata.normalize("NFKC", simplified).lower())
    return _join_word_spacing(_WHITESPACE.sub(" ", folded).strip())
