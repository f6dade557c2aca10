"""Rebuild the model from the corpus (``lianxin classify train``; needs the ``[train]`` extra).

* Features: TF-IDF of character 1–4-grams (:func:`handlers.classify.features.ngrams`) seen in at
  least two messages, sublinear term frequency.
* Label: a linear SVM (one-vs-rest, C = 1).
* Emergency: logistic regression, classes balanced (C = 30).
* Thresholds by 5-fold cross-validation on the training messages, **emergency recall first**: the
  emergency threshold is the highest that still catches :data:`CV_RECALL` of the emergencies in
  the held-out folds; the unclear margin is where the held-out labels stop being right more often
  than wrong.

Everything is seeded and the weights file is written with fixed dates, so the same corpus gives
the same file byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from handlers.classify.evaluate import digest
from handlers.classify.features import ngrams
from handlers.classify.model import LABELS, LinearModel
from handlers.classify.normalise import normalise

__all__ = ["CV_RECALL", "train"]

LABEL_C = 1.0
EMERGENCY_C = 30.0
MIN_DF = 2
FOLDS = 5
# Recall the emergency threshold must reach in cross-validation: recall first, precision what is
# left.  Cross-validation mixes the hardest early rounds into every fold, so it reads lower than
# the forward protocol (docs/classifier.md, "Choosing the threshold").
CV_RECALL = 0.985
SEED = 0


def _fit(norms: Sequence[str], labels: Sequence[str], emergencies: Sequence[bool]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    vectoriser = TfidfVectorizer(
        analyzer=ngrams, min_df=MIN_DF, sublinear_tf=True, dtype=np.float64
    )
    x = vectoriser.fit_transform(norms)
    svm = LinearSVC(C=LABEL_C, random_state=SEED, max_iter=20_000).fit(x, labels)
    logreg = LogisticRegression(
        C=EMERGENCY_C, solver="liblinear", class_weight="balanced", random_state=SEED
    ).fit(x, emergencies)
    return vectoriser, svm, logreg


def _decide(fitted: Any, norms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Label margins (top minus runner-up) and predictions, emergency logits."""
    vectoriser, svm, logreg = fitted
    x = vectoriser.transform(norms)
    return svm.decision_function(x), logreg.decision_function(x)


def _thresholds(
    norms: list[str], labels: list[str], emergencies: list[bool], recall: float, folds: int
) -> tuple[float, float, dict[str, float]]:
    """Emergency threshold and unclear margin from out-of-fold decisions."""
    from sklearn.model_selection import StratifiedKFold

    gold_em = np.array(emergencies)
    logits = np.zeros(len(norms))
    margins = np.zeros(len(norms))
    right = np.zeros(len(norms), dtype=bool)
    splits = StratifiedKFold(folds, shuffle=True, random_state=SEED).split(norms, emergencies)
    for train_idx, test_idx in splits:
        fitted = _fit(
            [norms[i] for i in train_idx],
            [labels[i] for i in train_idx],
            [emergencies[i] for i in train_idx],
        )
        decision, logit = _decide(fitted, [norms[i] for i in test_idx])
        classes = list(fitted[1].classes_)
        top2 = np.sort(decision, axis=1)[:, -2:]
        margins[test_idx] = top2[:, 1] - top2[:, 0]
        predicted = [classes[j] for j in decision.argmax(axis=1)]
        right[test_idx] = [p == labels[i] for p, i in zip(predicted, test_idx, strict=True)]
        logits[test_idx] = logit
    caught = np.sort(logits[gold_em])
    threshold = float(caught[int(np.floor((1.0 - recall) * len(caught)))])
    # Unclear: the widest margin band, from zero, in which the held-out labels are wrong at
    # least as often as right.
    unclear = 0.0
    for m in np.arange(0.05, 1.0, 0.05):
        band = margins < m
        if band.any() and right[band].mean() <= 0.5:
            unclear = float(round(m, 2))
    flagged = logits >= threshold
    cv = {
        "accuracy": float(right.mean()),
        "emergency_recall": float((flagged & gold_em).sum() / gold_em.sum()),
        "emergency_precision": float((flagged & gold_em).sum() / max(1, flagged.sum())),
    }
    return threshold, unclear, cv


def train(
    rows: Sequence[Mapping[str, Any]], *, recall: float = CV_RECALL, folds: int = FOLDS
) -> LinearModel:
    """A model trained on labelled rows ``{"text", "label", "emergency"}``; its thresholds come
    from ``folds``-fold cross-validation on the same rows."""
    norms = [normalise(str(r["text"])) for r in rows]
    labels = [str(r["label"]) for r in rows]
    emergencies = [bool(r.get("emergency", False)) for r in rows]
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown labels {unknown}")
    threshold, unclear, cv = _thresholds(norms, labels, emergencies, recall, folds)
    vectoriser, svm, logreg = _fit(norms, labels, emergencies)
    order = [list(svm.classes_).index(lb) for lb in LABELS]
    return LinearModel(
        vocab={str(g): int(i) for g, i in vectoriser.vocabulary_.items()},
        idf=vectoriser.idf_.astype(np.float64),
        label_weights=svm.coef_[order].T.copy(),
        label_bias=svm.intercept_[order].copy(),
        emergency_weights=logreg.coef_[0].copy(),
        emergency_bias=float(logreg.intercept_[0]),
        emergency_threshold=threshold,
        unclear_margin=unclear,
        meta={
            "messages": len(rows),
            "corpus_sha256": digest(rows),
            "emergencies": int(sum(emergencies)),
            "features": len(vectoriser.vocabulary_),
            "cv_recall_target": recall,
            "cv": {k: round(v, 4) for k, v in cv.items()},
            "label_c": LABEL_C,
            "emergency_c": EMERGENCY_C,
            "min_df": MIN_DF,
        },
    )
