"""The classifier's shortcut: a text without any of a pattern's required literals is skipped.

The shortcut is only sound if every match really contains one of the literals. These tests
check it on hand-made patterns and on every pattern of the shipped lexicon against every
labelled message we have (a miss here would silently change the classifier's verdicts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.classifier import DEFAULT_LEXICON, _expand_concepts, normalise
from handlers.regex_literals import MAX_LITERAL, required_literals, substrings

DATA = Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("着火了", {"着火了"}),
        ("有人(?:拿刀|持刀)", {"有人"}),
        ("(?:拿刀|持刀)砍人", {"砍人"}),  # equally long: the single string is rarer
        ("(?:拿刀|持刀)", {"拿刀", "持刀"}),
        ("[打砍]死", {"死"}),
        ("晕倒|昏迷", {"晕倒", "昏迷"}),
        ("人(?:被)?困住", {"困住"}),
        ("煤气(?:泄漏|漏了)", {"煤气"}),
        ("救命救命救命", {"救命救命"[:MAX_LITERAL]}),
    ],
)
def test_requirements_of_simple_patterns(pattern: str, expected: set[str]) -> None:
    assert required_literals(re.compile(pattern)) == frozenset(expected)


@pytest.mark.parametrize(
    "pattern",
    [".*", r"\d+", "(?:a)?", "[^x]", "a*", "(?i)fire", "(?:火|.)", r"(?<=x)", "^$"],
)
def test_no_requirement_when_none_can_be_read(pattern: str) -> None:
    assert required_literals(re.compile(pattern)) is None


def test_substrings_are_bounded() -> None:
    subs = substrings("有人打架")
    assert "有人打架" in subs and "人打" in subs and "有" in subs
    assert all(len(s) <= MAX_LITERAL for s in substrings("一二三四五六七八"))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _lexicon_patterns() -> list[re.Pattern[str]]:
    data = _expand_concepts(yaml.safe_load(DEFAULT_LEXICON.read_text(encoding="utf-8")))
    patterns = []
    for raw in set(_strings(data)):
        try:
            patterns.append(re.compile(raw))
        except re.error:
            continue  # names and prose, not patterns
    return patterns


def _messages() -> list[str]:
    texts = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(normalise(json.loads(line)["text"]))
    return texts


def test_every_lexicon_match_contains_a_required_literal() -> None:
    texts = _messages()
    checked = 0
    for pattern in _lexicon_patterns():
        needs = required_literals(pattern)
        if needs is None:
            continue
        for text in texts:
            if pattern.search(text):
                checked += 1
                assert not needs.isdisjoint(substrings(text)), (pattern.pattern, text, needs)
    assert checked > 1000  # the check really ran over many matches
