"""A small learned second opinion for :mod:`handlers.classifier`.

Character 1–3-gram multinomial Naive Bayes (binary n-gram presence, additive smoothing) with
two heads: the six-way label and the binary ``emergency`` flag.  Pure Python.  The weights
file (``ngram_model.json``, written by ``handlers/build_ngram_model.py``) stores *integer
counts* only, so it is small and exactly reproducible; log-probabilities are derived when
the model is loaded.

The model sees normalised text (:func:`handlers.classifier.normalise`): Traditional and
Simplified spellings share features.  :meth:`NgramModel.predict` normalises for you.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODEL", "NgramModel", "features", "train"]

DEFAULT_MODEL = Path(__file__).with_name("ngram_model.json")

FORMAT = "lianxin-ngram-mnb/1"
MAX_N = 3
ALPHA = 0.5  # additive smoothing (chosen by leave-one-file-out over the unseen batches)
MIN_DF = 2  # n-grams of length >= PRUNE_FROM_N seen in fewer training messages are dropped
PRUNE_FROM_N = 3
# Naive Bayes counts overlapping n-grams as independent evidence, so its log-odds are
# large; probabilities are reported at this temperature so that thresholds are readable.
TEMPERATURE = 4.0

# Boundary markers let the model tell "message starts with 请问" from "…请问" mid-text.
_BOS, _EOS = "\x02", "\x03"


# A phone, account or card number is one token to the model: its digits say nothing about the
# message, and fed one by one they made bare numbers look like emergencies.
_LONG_NUMBER = re.compile(r"\d{5,}")


def features(norm: str, max_n: int = MAX_N) -> set[str]:
    """Binary character n-grams (1..max_n) of already-normalised text."""
    padded = _BOS + _LONG_NUMBER.sub("#", norm) + _EOS
    out: set[str] = set()
    for n in range(1, max_n + 1):
        for i in range(len(padded) - n + 1):
            out.add(padded[i : i + n])
    out.discard(_BOS)
    out.discard(_EOS)
    return out


# ---------------------------------------------------------------------------------------
# Training (deterministic: no randomness, sorted vocabulary)
# ---------------------------------------------------------------------------------------


def train(
    rows: Iterable[Mapping[str, Any]],
    labels: Sequence[str],
    normalise_fn: Callable[[str], str],
    min_df: int = MIN_DF,
) -> dict[str, Any]:
    """Count per-class document frequencies of n-grams; return the JSON-able weights."""
    docs = [
        (features(normalise_fn(str(r["text"]))), str(r["label"]), bool(r["emergency"]))
        for r in rows
    ]
    df: Counter[str] = Counter()
    for feats, _, _ in docs:
        df.update(feats)
    vocab = sorted(f for f, c in df.items() if c >= min_df or len(f) < PRUNE_FROM_N)
    index = {f: i for i, f in enumerate(vocab)}
    heads = {"label": list(labels), "emergency": ["no", "yes"]}
    counts = {h: {c: [0] * len(vocab) for c in cs} for h, cs in heads.items()}
    n_docs = {h: dict.fromkeys(cs, 0) for h, cs in heads.items()}
    for feats, label, emergency in docs:
        if label not in n_docs["label"]:
            raise ValueError(f"unknown label {label!r} in training data")
        em = "yes" if emergency else "no"
        n_docs["label"][label] += 1
        n_docs["emergency"][em] += 1
        lab_row, em_row = counts["label"][label], counts["emergency"][em]
        for f in feats:
            i = index.get(f)
            if i is not None:
                lab_row[i] += 1
                em_row[i] += 1
    return {
        "format": FORMAT,
        "max_n": MAX_N,
        "alpha": ALPHA,
        "min_df": min_df,
        "vocab": vocab,
        "heads": {
            h: {
                "classes": cs,
                "docs": [n_docs[h][c] for c in cs],
                "counts": [counts[h][c] for c in cs],
            }
            for h, cs in heads.items()
        },
    }


# ---------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    classes: tuple[str, ...]
    log_prior: tuple[float, ...]
    log_lik: dict[str, tuple[float, ...]]  # feature -> per-class log P(feature | class)

    @classmethod
    def build(cls, raw: Mapping[str, Any], vocab: Sequence[str], alpha: float) -> _Head:
        classes = tuple(raw["classes"])
        docs = [int(d) for d in raw["docs"]]
        total = sum(docs)
        log_prior = tuple(math.log((d + 1) / (total + len(classes))) for d in docs)
        per_class = []
        for row in raw["counts"]:
            denom = sum(row) + alpha * len(vocab)
            per_class.append([math.log((c + alpha) / denom) for c in row])
        columns = zip(*per_class, strict=True)
        log_lik = {f: tuple(col) for f, col in zip(vocab, columns, strict=True)}
        return cls(classes=classes, log_prior=log_prior, log_lik=log_lik)

    def log_scores(self, feats: Iterable[str]) -> list[float]:
        get = self.log_lik.get
        rows = [ll for ll in map(get, feats) if ll is not None]
        if not rows:
            return list(self.log_prior)
        # Column sums in C; ``sum(column, prior)`` adds in the same order as a running total
        # started at the prior, so the scores are bit-for-bit those of the plain loop.
        columns = zip(*rows, strict=True)
        return [sum(col, prior) for prior, col in zip(self.log_prior, columns, strict=True)]


def _softmax(scores: Sequence[float], temperature: float = TEMPERATURE) -> list[float]:
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


@dataclass(frozen=True)
class Prediction:
    """Raw model output: probabilities plus the log-score margins used for gating."""

    label_probs: dict[str, float]
    emergency_prob: float
    label_gap: float  # log-score margin of the top label over the runner-up
    emergency_log_odds: float


class NgramModel:
    """Loaded model.  ``predict(text) -> (label_probs, emergency_prob)``."""

    def __init__(self, weights: Mapping[str, Any]) -> None:
        if weights.get("format") != FORMAT:
            raise ValueError(f"unknown n-gram model format {weights.get('format')!r}")
        self.max_n = int(weights["max_n"])
        alpha = float(weights["alpha"])
        vocab = weights["vocab"]
        self.label_head = _Head.build(weights["heads"]["label"], vocab, alpha)
        self.emergency_head = _Head.build(weights["heads"]["emergency"], vocab, alpha)
        self.labels = self.label_head.classes
        self._yes = self.emergency_head.classes.index("yes")

    @classmethod
    def from_file(cls, path: Path | None = None) -> NgramModel:
        with Path(path or DEFAULT_MODEL).open(encoding="utf-8") as fh:
            return cls(json.load(fh))

    def predict_normalised(self, norm: str) -> Prediction:
        feats = features(norm, self.max_n)
        lab = self.label_head.log_scores(feats)
        em = self.emergency_head.log_scores(feats)
        top, second = sorted(lab, reverse=True)[:2]
        log_odds = em[self._yes] - em[1 - self._yes]
        probs = _softmax(lab)
        scaled = max(-50.0, min(50.0, log_odds / TEMPERATURE))
        return Prediction(
            label_probs={c: round(p, 4) for c, p in zip(self.labels, probs, strict=True)},
            emergency_prob=round(1.0 / (1.0 + math.exp(-scaled)), 4),
            label_gap=top - second,
            emergency_log_odds=log_odds,
        )

    def predict(self, text: str) -> tuple[dict[str, float], float]:
        """Label probabilities and emergency probability for raw ``text``."""
        from handlers.classifier import normalise  # local import: the classifier imports us

        p = self.predict_normalised(normalise(text))
        return p.label_probs, p.emergency_prob
