"""Measuring the classifier: metrics on a labelled file, and the forward protocol.

The **forward protocol** is the honest measure: the corpus files were written one batch at a
time (:func:`corpus_files` gives their order: the dev sample, the held-out set, then rounds 2,
3, …), so for each round from :data:`FIRST_FORWARD_ROUND` on, a model is trained on every file
before it and scored on that round, which it has never seen.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from handlers.classify.model import LABELS

__all__ = [
    "CORPUS",
    "FIRST_FORWARD_ROUND",
    "EvalReport",
    "LabelStats",
    "RoundResult",
    "corpus_files",
    "corpus_rows",
    "digest",
    "evaluate",
    "format_forward",
    "forward",
    "read_labelled",
]

CORPUS = Path(__file__).with_name("corpus")
# The first round scored: from round 10 on, every model has at least 1,600 messages behind it
# (28 rounds, as issue 16 measured them).  Rounds 2–9 can be scored too (``--from``).
FIRST_FORWARD_ROUND = 10


class _Classifies(Protocol):
    def classify(self, text: str) -> Any: ...


@dataclass(frozen=True)
class LabelStats:
    """Precision / recall / F1 for one label."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Metrics of a classifier on a labelled set of messages."""

    total: int
    accuracy: float
    per_label: dict[str, LabelStats]
    confusion: dict[str, dict[str, int]]  # confusion[gold][pred] -> count
    emergency_precision: float
    emergency_recall: float
    emergency_support: int
    emergency_predicted: int
    emergency_caught: int
    missed_emergencies: list[str]
    false_alarms: list[str]
    mislabelled: list[tuple[str, str, str]]  # (text, gold, predicted)
    labels: list[str]  # per row, as predicted
    emergency_flags: list[bool]  # per row, as predicted

    def format(self) -> str:
        """Render a human-readable report."""
        lines = [
            f"messages: {self.total}",
            f"accuracy: {self.accuracy:.3f}",
            "",
            f"{'label':<13}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}",
        ]
        for label in LABELS:
            s = self.per_label[label]
            lines.append(
                f"{label:<13}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>7.3f}{s.support:>9d}"
            )
        lines += ["", "confusion matrix (rows = gold, columns = predicted):"]
        lines.append(" " * 13 + "".join(f"{lb[:5]:>7}" for lb in LABELS))
        for gold in LABELS:
            row = "".join(f"{self.confusion[gold][pred]:>7d}" for pred in LABELS)
            lines.append(f"{gold:<13}{row}")
        lines += [
            "",
            f"emergency precision: {self.emergency_precision:.3f}",
            f"emergency recall:    {self.emergency_recall:.3f}"
            f"  ({self.emergency_support} gold emergencies)",
            f"missed emergencies ({len(self.missed_emergencies)}):",
        ]
        lines += [f"  - {t}" for t in self.missed_emergencies] or ["  (none)"]
        lines.append(f"false-alarm emergencies ({len(self.false_alarms)}):")
        lines += [f"  - {t}" for t in self.false_alarms] or ["  (none)"]
        lines.append(f"mislabelled ({len(self.mislabelled)}):")
        lines += [f"  - [{g} -> {p}] {t}" for t, g, p in self.mislabelled] or ["  (none)"]
        return "\n".join(lines)


def _ratio(num: int, den: int, empty: float) -> float:
    return num / den if den else empty


def evaluate(classifier: _Classifies, rows: Iterable[Mapping[str, Any]]) -> EvalReport:
    """Classify every row (``{"text", "label", "emergency"}``) and compute metrics.

    Precision of a label nobody predicted, and recall of a label with no gold examples, are
    reported as 1.0 (nothing was got wrong); the same goes for the emergency figures.
    """
    confusion = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    missed: list[str] = []
    false_alarms: list[str] = []
    mislabelled: list[tuple[str, str, str]] = []
    flags: list[bool] = []
    predicted_labels: list[str] = []
    correct = total = tp_em = gold_em = pred_em = 0
    for row in rows:
        text, gold = str(row["text"]), str(row["label"])
        if gold not in LABELS:
            raise ValueError(f"unknown gold label {gold!r} for {text!r}")
        gold_emergency = bool(row.get("emergency", False))
        result = classifier.classify(text)
        flags.append(result.emergency)
        predicted_labels.append(result.label)
        total += 1
        confusion[gold][result.label] += 1
        if result.label == gold:
            correct += 1
        else:
            mislabelled.append((text, gold, result.label))
        gold_em += gold_emergency
        pred_em += result.emergency
        if gold_emergency and result.emergency:
            tp_em += 1
        elif gold_emergency:
            missed.append(text)
        elif result.emergency:
            false_alarms.append(text)
    per_label: dict[str, LabelStats] = {}
    for label in LABELS:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted = sum(confusion[g][label] for g in LABELS)
        precision = _ratio(tp, predicted, 1.0)
        recall = _ratio(tp, support, 1.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelStats(precision, recall, f1, support)
    return EvalReport(
        total=total,
        accuracy=_ratio(correct, total, 0.0),
        per_label=per_label,
        confusion=confusion,
        emergency_precision=_ratio(tp_em, pred_em, 1.0),
        emergency_recall=_ratio(tp_em, gold_em, 1.0),
        emergency_support=gold_em,
        emergency_predicted=pred_em,
        emergency_caught=tp_em,
        missed_emergencies=missed,
        false_alarms=false_alarms,
        mislabelled=mislabelled,
        labels=predicted_labels,
        emergency_flags=flags,
    )


def read_labelled(path: Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSON-lines file; ValueError names the file and line."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{path} line {lineno}: not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "label" not in row:
            raise ValueError(f'{path} line {lineno}: expected {{"text", "label", "emergency"}}')
        rows.append(row)
    return rows


def _round(path: Path) -> int | None:
    match = re.fullmatch(r"unseen-round(\d+)\.jsonl", path.name)
    return int(match.group(1)) if match else None


def corpus_files(corpus: Path = CORPUS) -> list[Path]:
    """The corpus files in the order they were written: dev sample, held-out set, rounds."""

    def order(path: Path) -> tuple[int, int, str]:
        number = _round(path)
        if number is not None:
            return (2, number, path.name)
        return (0 if path.name == "messages-dev.jsonl" else 1, 0, path.name)

    return sorted(corpus.glob("*.jsonl"), key=order)


def digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """A fingerprint of labelled rows (text, label, emergency), kept in the weights file: a
    corpus edited without ``lianxin classify train`` shows."""
    h = hashlib.sha256()
    for row in rows:
        item = [row["text"], row["label"], bool(row.get("emergency", False))]
        h.update(json.dumps(item, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


def corpus_rows(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """Every labelled message of the corpus, in file order."""
    return [row for path in corpus_files(corpus) for row in read_labelled(path)]


@dataclass(frozen=True)
class RoundResult:
    """One step of the forward protocol: trained on ``trained_on`` messages, scored on a round."""

    name: str
    trained_on: int
    report: EvalReport


def forward(
    make_classifier: Callable[[Sequence[Mapping[str, Any]]], _Classifies],
    *,
    first_round: int = FIRST_FORWARD_ROUND,
    corpus: Path = CORPUS,
    progress: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Train on every file before a round, score the round; for each round ≥ ``first_round``."""
    files = corpus_files(corpus)
    rows = {path: read_labelled(path) for path in files}
    results = []
    for i, path in enumerate(files):
        number = _round(path)
        if number is None or number < first_round:
            continue
        earlier = [row for before in files[:i] for row in rows[before]]
        result = RoundResult(
            path.stem, len(earlier), evaluate(make_classifier(earlier), rows[path])
        )
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def format_forward(results: Sequence[RoundResult]) -> str:
    """The forward table: one line a round, and the rounds pooled (micro-averaged)."""
    lines = [
        "| round | trained on | messages | accuracy | emergencies | recall | precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        rep = r.report
        lines.append(
            f"| {r.name.removeprefix('unseen-')} | {r.trained_on} | {rep.total} "
            f"| {rep.accuracy:.3f} | {rep.emergency_support} | {rep.emergency_recall:.3f} "
            f"| {rep.emergency_precision:.3f} |"
        )
    total = sum(r.report.total for r in results)
    correct = sum(round(r.report.accuracy * r.report.total) for r in results)
    gold = sum(r.report.emergency_support for r in results)
    caught = sum(r.report.emergency_caught for r in results)
    flagged = sum(r.report.emergency_predicted for r in results)
    lines.append(
        f"| **all {len(results)}** | | {total} | **{_ratio(correct, total, 0.0):.3f}** | {gold} "
        f"| **{_ratio(caught, gold, 1.0):.3f}** | **{_ratio(caught, flagged, 1.0):.3f}** |"
    )
    missed = gold - caught
    lines.append(f"\nmissed emergencies: {missed}; false alarms: {flagged - caught}")
    return "\n".join(lines)
