"""What the model reads: character 1–4-grams of the normalised text.

Training (:mod:`handlers.classify.train`) and serving (:mod:`handlers.classify.model`) both call
:func:`ngrams`, so the two can never disagree about a feature.
"""

from __future__ import annotations

import re

from handlers.classify.rules import mask_hyperbole

__all__ = ["MAX_N", "model_text", "ngrams"]

MAX_N = 4
# A run of five or more digits (a phone number, an order or ID number) is one token: which number
# a resident gives decides nothing.
_LONG_NUMBER = re.compile(r"\d{5,}")


def model_text(norm: str) -> str:
    """Normalised text as the model sees it: hyperbole masked, long numbers as one token."""
    return _LONG_NUMBER.sub("#", mask_hyperbole(norm))


def ngrams(norm: str) -> list[str]:
    """Every character n-gram (n = 1 … :data:`MAX_N`) of :func:`model_text`, with repeats:
    the cost grows with the length of the text, never its square."""
    text = model_text(norm)
    size = len(text)
    return [text[i : i + n] for n in range(1, MAX_N + 1) for i in range(size - n + 1)]
