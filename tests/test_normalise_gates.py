"""Normalising skips groups of rules that match nothing (handlers/classify/normalise.py's
``_Gated``): the result must be exactly that of applying every rule in order."""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from pathlib import Path

from handlers.classify.normalise import _Gated, _tables, _to_simplified, normalise

# The package exports the function under the module's name.
normalise_module = importlib.import_module("handlers.classify.normalise")

CORPUS = Path(str(normalise_module.__file__)).with_name("corpus")


def _one_by_one(gated: _Gated, text: str) -> str:
    for _, part in gated.groups:
        for pattern, dst in part:
            text = pattern.sub(dst, text)
    return text


def _ungated(text: str) -> str:
    """normalise() as it was written before the gates: every rule applied in order."""
    t = _tables()
    simplified = _to_simplified(text)
    if t.wu_markers.search(simplified):
        simplified = _one_by_one(t.wu, simplified)
    cantonese = t.cantonese_markers.search(simplified) is not None
    if cantonese:
        simplified = _one_by_one(t.cantonese_before, simplified)
    simplified = _one_by_one(t.patterns, _one_by_one(t.words, simplified))
    if cantonese:
        simplified = _one_by_one(t.cantonese, simplified)
    folded = _one_by_one(t.abbreviations, unicodedata.normalize("NFKC", simplified).lower())
    joined: str = normalise_module._join_word_spacing(re.sub(r"\s+", " ", folded).strip())
    return joined


def test_every_corpus_message_normalises_as_with_every_rule_applied() -> None:
    texts = [
        json.loads(line)["text"]
        for path in sorted(CORPUS.glob("*.jsonl"))
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]
    assert len(texts) > 1000
    changed = 0
    for text in texts:
        assert normalise(text) == _ungated(text), text
        changed += normalise(text) != text
    assert changed > 100  # the rules do act on these texts: the comparison means something


def test_a_rule_sees_what_an_earlier_rule_of_another_group_wrote() -> None:
    rules = tuple(
        (re.compile(src), dst) for src, dst in [("a", "b"), *[("q", "q")] * 8, ("b", "c")]
    )
    gated = _Gated.of(rules)
    assert len(gated.groups) == 2
    assert gated.apply("xa") == "xc"
    assert gated.apply("xyz") == "xyz"


def test_rules_a_combined_search_would_misread_are_always_applied() -> None:
    # A back-reference's group number shifts in an alternation; an inline flag is refused there.
    backref = _Gated.of(((re.compile("z"), "y"), (re.compile(r"(o)\1"), "0")))
    flagged = _Gated.of(((re.compile("z"), "y"), (re.compile("(?i)ok"), "OK")))
    assert [gate for gate, _ in backref.groups] == [None]
    assert [gate for gate, _ in flagged.groups] == [None]
    assert backref.apply("zoo") == "y0"
    assert flagged.apply("Ok") == "OK"
