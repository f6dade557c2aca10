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
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except re.error:  # pragma: no cover - the pattern compiled, so it parses
        return None
    found = _sequence(list(parsed))
    if found is None or "" in found:
        return None
    return frozenset(found)


def substrings(text: str) -> frozenset[str]:
    """Every substring of ``text`` up to ``MAX_LITERAL`` characters: what requirements test."""
    n = len(text)
    return frozenset(text[i:j] for i in range(n) for j in range(i + 1, min(n, i + MAX_LITERAL) + 1))


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
