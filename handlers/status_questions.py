"""Whether a resident's message asks how a matter of theirs is going ("我的事情怎么样了？",
"王警官，我家鸡的事有进展没有啊？？"): the phrases live in ``status_questions.yaml``, in both
scripts. Such a question is answered with the matters' status (handlers/resident.py), not
opened as a consultation of its own."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

PHRASES = Path(__file__).with_name("status_questions.yaml")
# Longer than this, a message says more than a question about a matter (a new matter, a
# complaint with details): it stays a message for intake.
MAX_CHARS = 40
# What "…" in a phrase stands for.
_GAP = ".{0,8}"


def _pattern(phrases: list[str]) -> re.Pattern[str]:
    parts = (_GAP.join(re.escape(piece) for piece in phrase.split("…")) for phrase in phrases)
    return re.compile("|".join(parts))


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    data = yaml.safe_load(PHRASES.read_text(encoding="utf-8"))
    return _pattern(data["mine"]), _pattern(data["asks"])


def asks_after_own_matter(text: str) -> bool:
    """Whether ``text`` (a resident's words, cleaned) asks how their own matter is going."""
    said = re.sub(r"\s+", "", text)
    if len(said) > MAX_CHARS:
        return False
    mine, asks = _patterns()
    return mine.search(said) is not None and asks.search(said) is not None
