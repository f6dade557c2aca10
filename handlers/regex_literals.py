"""Required literals of a regular expression: a cheap test that rules a pattern out.

``required_literals(pattern)`` returns a set of strings such that every match of the pattern
contains at least one of them, or None when no such set can be read off the pattern. A text
that contains none of them cannot match, so the classifier skips that pattern without running
the regex engine. Most lexicon entries match nothing in a given message, and a set lookup over
the message's substrings costs far less than a regex scan per entry.

The analysis walks the parsed pattern (``re._parser``, CPython's own parser). It only ever
*loses* precision: anything it does not understand yields no requirement, so a wrong answer
would mean a missed match, which ``tests/test_classifier.py`` checks against every labelled
message and pattern. Strings are capped at ``MAX_LITERAL`` characters (a match containing a
long literal contains its first characters too), which bounds the substrings to index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

try:  # CPython 3.11+: the parser is private but stable; without it, no requirements.
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _parser = None

MAX_LITERAL = 4

Requirement = frozenset[str] | None


def required_literals(pattern: re.Pattern[str]) -> Requirement:
    """Strings one of which every match of ``pattern`` contains; None when unknown.

    Flags that change what a literal matches (IGNORECASE, VERBOSE) give None.
    """
    if _parser is None or pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    parsed = _parse(pattern.pattern, pattern.flags)
    if parsed is None:  # pragma: no cover - the pattern compiled, so it parses
        return None
    found = _sequence(list(parsed))
    if found is None or "" in found:
        return None
    return frozenset(found)


_FLAGS_UNSUPPORTED = re.IGNORECASE | re.VERBOSE | re.MULTILINE | re.DOTALL | re.ASCII


@lru_cache(maxsize=8192)
def _parse(source: str, flags: int) -> Any:
    """The parsed pattern, shared by the analyses (parsing is most of a compile's cost)."""
    try:
        return _parser.parse(source, flags)
    except re.error:  # pragma: no cover - callers pass compiled patterns
        return None


def start_guard(patterns: Sequence[re.Pattern[str]]) -> str | None:
    """A zero-width prefix that fails quickly where no match of any of ``patterns`` (an
    alternation) can start.

    Python's regex engine tries every alternative of a pattern at every position of the
    text, and a lexicon alternation has hundreds: most of the cost of scanning a long message
    is spent at positions where no match can start at all.  The guard is a lookahead for the
    characters a match can start with (``(?=[救火打])``), plus ``^`` when some alternatives
    can only match at the very start; ``(?:guard)(?:pattern)`` matches exactly what the
    pattern matches.  None when the first characters cannot be read off the pattern (a
    leading ``.``, a negated class, flags that change what a character matches).
    """
    atoms: set[str] = set()
    nullable = at_start = False
    for pattern in patterns:
        found = _first(pattern.pattern, pattern.flags)
        if found is None:
            return None
        atoms |= found[0]
        nullable = nullable or found[1]
        at_start = at_start or found[2]
    return _guard(atoms, nullable, at_start)


def guard_wildcards(source: str) -> str:
    """``source`` with a start guard before every group that follows ``.*``.

    ``^(?!.*(快|救命)).*(退钱|退款)`` runs ``.*`` to the end of the text and steps back one
    character at a time, trying the group at each: with ``(?=[快救])`` in front, a position
    where the group cannot start costs one character test.  Matches are unchanged.
    """
    out: list[str] = []
    last = 0
    for i in _syntax(source):
        if source[i] == "." and source.startswith("*", i + 1):
            j = i + 2 + source.startswith("?", i + 2)
            if source.startswith("(", j) and not source.startswith(("(?=", "(?!", "(?<"), j):
                end = _group_end(source, j)
                # An optional group ((...)? (...)* (...){0,2}) need not be there at all.
                optional = end is None or source.startswith(("?", "*", "{0"), end + 1)
                guard = None if optional else _guard_of(source[j : end + 1])
                if guard is not None:
                    out.append(source[last:j])
                    out.append(guard)
                    last = j
    out.append(source[last:])
    return "".join(out)


def _syntax(source: str, start: int = 0) -> Iterator[int]:
    """The positions of ``source`` from ``start`` that are pattern syntax: not an escaped
    character and not inside a character class (where ``(``, ``.`` and ``*`` are literal)."""
    i, n = start, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i += 1
            if source.startswith("^", i):
                i += 1
            if source.startswith("]", i):
                i += 1  # a leading ] is a member
            while i < n and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
            continue
        yield i
        i += 1


def _group_end(source: str, start: int) -> int | None:
    """Index of the parenthesis closing the group opened at ``start``."""
    depth = 0
    for i in _syntax(source, start):
        if source[i] == "(":
            depth += 1
        elif source[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _guard_of(group: str) -> str | None:
    found = _first(group, re.UNICODE)
    return None if found is None else _guard(*found)


def _guard(atoms: set[str], nullable: bool, at_start: bool) -> str | None:
    if nullable:
        return None  # an empty match can happen anywhere
    if not atoms:
        return "^" if at_start else None
    klass = "(?=[" + "".join(sorted(atoms)) + "])"
    return f"(?:^|{klass})" if at_start else klass


@lru_cache(maxsize=8192)
def _first(source: str, flags: int) -> _First | None:
    if _parser is None or flags & _FLAGS_UNSUPPORTED:
        return None
    parsed = _parse(source, flags)
    return None if parsed is None else _first_sequence(list(parsed))


# First characters: (class atoms a match can start with, can match empty, may match at the
# start of the text whatever its first character) or None when unknown.
_First = tuple[set[str], bool, bool]


def _class_char(code: int) -> str:
    char = chr(code)
    return "\\" + char if char in "\\]^-[" else char


def _first_sequence(items: list[tuple[Any, Any]]) -> _First | None:
    atoms: set[str] = set()
    at_start = False
    for op, av in items:
        if op is _c.AT and av in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
            # Whatever follows can only match at position 0, which the guard always allows.
            return atoms, False, True
        found = _first_item(op, av)
        if found is None:
            return None
        item_atoms, nullable, item_start = found
        atoms |= item_atoms
        at_start = at_start or item_start
        if not nullable:
            return atoms, False, at_start
    return atoms, True, at_start


def _first_item(op: Any, av: Any) -> _First | None:
    if op is _c.LITERAL:
        return {_class_char(av)}, False, False
    if op is _c.IN:
        atoms = set()
        for inner_op, inner_av in av:
            if inner_op is _c.LITERAL:
                atoms.add(_class_char(inner_av))
            elif inner_op is _c.RANGE:
                atoms.add(f"{_class_char(inner_av[0])}-{_class_char(inner_av[1])}")
            elif inner_op is _c.CATEGORY and inner_av in _CATEGORIES:
                atoms.add(_CATEGORIES[inner_av])
            else:  # NEGATE, and anything unusual
                return None
        return atoms, False, False
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return set(), True, False  # zero-width: the next item decides
    if op is _c.AT:
        return set(), True, False  # \b, $, \Z: zero-width (^ is handled by the sequence)
    if op is _c.SUBPATTERN:
        _group, add_flags, _del_flags, body = av
        if add_flags & _FLAGS_UNSUPPORTED:
            return None
        return _first_sequence(list(body))
    if op is _c.ATOMIC_GROUP:
        return _first_sequence(list(av))
    if op is _c.BRANCH:
        atoms: set[str] = set()
        nullable = at_start = False
        for alternative in av[1]:
            found = _first_sequence(list(alternative))
            if found is None:
                return None
            atoms |= found[0]
            nullable = nullable or found[1]
            at_start = at_start or found[2]
        return atoms, nullable, at_start
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, _high, body = av
        found = _first_sequence(list(body))
        if found is None:
            return None
        return found[0], found[1] or low == 0, found[2]
    return None  # ANY, NOT_LITERAL, back-references, conditionals: unknown


_CATEGORIES = {
    _c.CATEGORY_DIGIT: "\\d",
    _c.CATEGORY_NOT_DIGIT: "\\D",
    _c.CATEGORY_SPACE: "\\s",
    _c.CATEGORY_NOT_SPACE: "\\S",
    _c.CATEGORY_WORD: "\\w",
    _c.CATEGORY_NOT_WORD: "\\W",
}


def single_character(pattern: re.Pattern[str]) -> bool:
    """True when every match of ``pattern`` is exactly one character and no match depends on
    its surroundings (no look-around, anchor or back-reference), e.g. ``[,.，。]| ``.

    The matches of such a pattern in a slice of a text are the matches in the whole text
    that fall inside the slice, which lets the classifier index them once per text.
    """
    if _parser is None:
        return False
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except re.error:  # pragma: no cover - the pattern compiled, so it parses
        return False
    return parsed.getwidth() == (1, 1) and _context_free(list(parsed))


def _context_free(items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in (_c.ASSERT, _c.ASSERT_NOT, _c.AT, _c.GROUPREF, _c.GROUPREF_EXISTS):
            return False
        if op is _c.SUBPATTERN and not _context_free(list(av[3])):
            return False
        if op is _c.BRANCH and not all(_context_free(list(alt)) for alt in av[1]):
            return False
        repeat = op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT)
        if repeat and not _context_free(list(av[2])):
            return False
        if op is _c.ATOMIC_GROUP and not _context_free(list(av)):
            return False
    return True


def substrings(text: str) -> frozenset[str]:
    """Every substring of ``text`` up to ``MAX_LITERAL`` characters: what requirements test."""
    n = len(text)
    found = set(text)
    for k in range(2, MAX_LITERAL + 1):
        found.update([text[i : i + k] for i in range(n - k + 1)])
    return frozenset(found)


def _sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """The most selective requirement among the items of a sequence (all must match)."""
    candidates: list[set[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append({"".join(run)[:MAX_LITERAL]})
            run.clear()

    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        close_run()
        found = _item(op, av)
        if found is not None:
            candidates.append(found)
    close_run()
    if not candidates:
        return None
    # Longer shortest string first (rarer in text), then fewer strings.
    return max(candidates, key=lambda c: (min(map(len, c)), -len(c)))


def _item(op: Any, av: Any) -> set[str] | None:
    if op is _c.SUBPATTERN:
        _group, add_flags, _del_flags, body = av
        if add_flags & (re.IGNORECASE | re.VERBOSE):
            return None
        return _sequence(list(body))
    if op is _c.BRANCH:
        union: set[str] = set()
        for alternative in av[1]:
            found = _sequence(list(alternative))
            if found is None:
                return None
            union |= found
        return union
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, _high, body = av
        return _sequence(list(body)) if low >= 1 else None
    if op is _c.ATOMIC_GROUP:
        return _sequence(list(av))
    if op is _c.IN:
        chars = set()
        for inner_op, inner_av in av:
            if inner_op is not _c.LITERAL:
                return None
            chars.add(chr(inner_av))
        return chars or None
    return None  # anchors, look-arounds, classes, back-references: no requirement
