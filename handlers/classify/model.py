"""The trained linear model, as served: a weights file read with numpy, no scikit-learn.

The file (``data/model.npz``, written by :mod:`handlers.classify.train`) holds the n-gram
vocabulary, its inverse document frequencies, one weight column per label (a linear SVM) and one
for the emergency (logistic regression), and the thresholds chosen by cross-validation.  A message
is scored as TF-IDF does it: sublinear term frequency × idf, scaled to unit length, times the
weights.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handlers.classify.features import ngrams

__all__ = ["DEFAULT_MODEL", "LABELS", "LinearModel", "Scores"]

LABELS: tuple[str, ...] = ("consultation", "suggestion", "report", "help", "dispute", "other")
DEFAULT_MODEL = Path(__file__).with_name("data") / "model.npz"


@dataclass(frozen=True)
class Scores:
    """The model's view of one message."""

    label_scores: dict[str, float]  # the SVM's decision value per label
    emergency_logit: float

    @property
    def emergency_probability(self) -> float:
        """P(emergency) from the logistic regression (class-balanced, so 0.5 is not the cut)."""
        z = max(-60.0, min(60.0, self.emergency_logit))
        return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class LinearModel:
    """Vocabulary, idf and weights of the trained model, plus its thresholds."""

    vocab: dict[str, int]
    idf: np.ndarray  # (features,)
    label_weights: np.ndarray  # (features, labels)
    label_bias: np.ndarray  # (labels,)
    emergency_weights: np.ndarray  # (features,)
    emergency_bias: float
    emergency_threshold: float  # on the logit
    unclear_margin: float  # label decision margin below which the label is a guess
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> LinearModel:
        """Read a weights file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            vocab = [str(g) for g in z["vocab"]]
            meta = json.loads(str(z["meta"]))
            if tuple(meta["labels"]) != LABELS:
                raise ValueError(f"{path}: labels {meta['labels']} are not {list(LABELS)}")
            return cls(
                vocab={g: i for i, g in enumerate(vocab)},
                idf=z["idf"].astype(np.float64),
                label_weights=z["label_weights"].astype(np.float64),
                label_bias=z["label_bias"].astype(np.float64),
                emergency_weights=z["emergency_weights"].astype(np.float64),
                emergency_bias=float(meta["emergency_bias"]),
                emergency_threshold=float(meta["emergency_threshold"]),
                unclear_margin=float(meta["unclear_margin"]),
                meta=meta,
            )

    def save(self, path: Path) -> None:
        """Write the weights file byte for byte the same for the same model (fixed zip dates,
        sorted keys), so that a rebuilt file shows no change unless the model changed."""
        import io
        import zipfile

        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        meta = dict(
            self.meta,
            labels=list(LABELS),
            emergency_bias=self.emergency_bias,
            emergency_threshold=self.emergency_threshold,
            unclear_margin=self.unclear_margin,
        )
        arrays = {
            "vocab": np.array(vocab, dtype=f"<U{max(map(len, vocab))}"),
            "idf": self.idf.astype(np.float32),
            "label_weights": self.label_weights.astype(np.float32),
            "label_bias": self.label_bias.astype(np.float32),
            "emergency_weights": self.emergency_weights.astype(np.float32),
            "meta": np.array(json.dumps(meta, sort_keys=True, ensure_ascii=False)),
        }
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, array in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, array, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())

    def score(self, norm: str) -> Scores:
        """Score normalised text; the cost grows with its length."""
        # Looked up and counted in C (map, Counter): None stands for every n-gram outside the
        # vocabulary. Then in vocabulary order as np.unique gave them, so that the sums below
        # add up in the same order.
        hits = Counter(map(self.vocab.get, ngrams(norm)))
        hits.pop(None, None)
        if not hits:
            bias = self.label_bias
            return Scores(dict(zip(LABELS, map(float, bias), strict=True)), self.emergency_bias)
        index = np.fromiter(hits, np.intp, len(hits))
        counts = np.fromiter(hits.values(), np.int64, len(hits))
        order = index.argsort()
        index, counts = index[order], counts[order]
        values = (1.0 + np.log(counts)) * self.idf[index]
        values /= np.sqrt(values @ values)
        labels = values @ self.label_weights[index] + self.label_bias
        logit = float(values @ self.emergency_weights[index]) + self.emergency_bias
        return Scores(dict(zip(LABELS, map(float, labels), strict=True)), logit)
