"""``lianxin classify``: classify JSON lines, score a labelled file, retrain, run the forward
protocol (docs/classifier.md)."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["register"]


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify stdin's JSON lines, or with ``--eval FILE`` score a labelled file."""
    from handlers.classify import Classifier

    classifier = Classifier.from_file()
    if args.eval:
        from handlers.classify.evaluate import evaluate, read_labelled

        try:
            report = evaluate(classifier, read_labelled(Path(args.eval)))
        except ValueError as exc:
            print(f"lianxin: {exc}", file=sys.stderr)
            return 2
        print(report.format())
        return 0
    bad = 0
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Bytes that are not UTF-8 become a bad line of their own, not a traceback that drops
        # every line after them.
        sys.stdin.reconfigure(errors="surrogateescape")
    for lineno, line in enumerate(sys.stdin, 1):
        # One output line per input line, so that outputs line up with inputs; a line that is
        # not {"text": "…"} gets an error line saying what it is, and the exit status says
        # some did.
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # Notepad's and Excel's UTF-8 starts with a BOM
        text, problem = _text_of(line)
        if problem:
            bad += 1
            print(json.dumps({"error": f"line {lineno}: {problem}"}), flush=True)
            continue
        result = classifier.classify(text)
        out = {
            "text": text,
            "label": result.label,
            "emergency": result.emergency,
            "confidence": round(result.confidence, 3),
            "unclear": result.unclear,
        }
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if bad else 0


def _text_of(line: str) -> tuple[str, str | None]:
    """The ``text`` of a ``{"text": …}`` line, or why there is none."""
    expected = 'expected {"text": …}'
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):
        return "", f"not JSON ({expected})" if line.strip() else f"an empty line ({expected})"
    if not isinstance(item, dict):
        return "", f"not an object ({expected})"
    if "text" not in item:
        return "", f'no "text" ({expected})'
    text = item["text"]
    if not isinstance(text, str):
        return "", f'"text" is not a string ({expected})'
    try:
        text.encode("utf-8")  # a lone surrogate (\ud800) cannot be written back out
    except UnicodeEncodeError:
        return "", f'"text" is not valid Unicode (a lone surrogate) ({expected})'
    return text, None


def _need_training_extra() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("lianxin: training needs scikit-learn: pip install 'lianxin[train]'", file=sys.stderr)
        return False
    return True


def cmd_train(args: argparse.Namespace) -> int:
    """Rebuild the weights file from the corpus; ``--check`` only says whether it is current."""
    if not _need_training_extra():
        return 2
    from handlers.classify.evaluate import CORPUS, corpus_rows
    from handlers.classify.model import DEFAULT_MODEL
    from handlers.classify.train import train

    corpus = Path(args.corpus) if args.corpus else CORPUS
    out = Path(args.out) if args.out else DEFAULT_MODEL
    try:
        rows = corpus_rows(corpus)
    except ValueError as exc:
        print(f"lianxin: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"lianxin: no labelled *.jsonl files in {corpus}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        model = train(rows)
    except ValueError as exc:
        print(f"lianxin: {corpus}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "model.npz"
            model.save(fresh)
            same = out.exists() and fresh.read_bytes() == out.read_bytes()
        print(f"{out}: {'current' if same else 'OUT OF DATE: run lianxin classify train'}")
        return 0 if same else 1
    model.save(out)
    cv = model.meta["cv"]
    print(
        f"{out}: {model.meta['messages']} messages, {model.meta['features']} features, "
        f"emergency threshold {model.emergency_threshold:.3f} (cross-validated recall "
        f"{cv['emergency_recall']:.3f}, precision {cv['emergency_precision']:.3f}), "
        f"unclear margin {model.unclear_margin}, {time.perf_counter() - started:.0f} s"
    )
    return 0


def cmd_forward(args: argparse.Namespace) -> int:
    """The forward protocol: train on the files before each round, score the round."""
    if not _need_training_extra():
        return 2
    from handlers.classify import Classifier
    from handlers.classify.evaluate import (
        CORPUS,
        FIRST_FORWARD_ROUND,
        RoundResult,
        format_forward,
        forward,
    )
    from handlers.classify.train import CV_RECALL, train

    recall = CV_RECALL if args.recall is None else args.recall
    first_round = FIRST_FORWARD_ROUND if args.first_round is None else args.first_round
    if not 0.5 <= recall < 1.0:
        print("lianxin: --recall must be at least 0.5 and below 1", file=sys.stderr)
        return 2

    def make(rows: Sequence[Mapping[str, Any]]) -> Classifier:
        return Classifier(train(rows, recall=recall), use_rules=not args.model_only)

    def progress(result: RoundResult) -> None:
        rep = result.report
        print(
            f"{result.name}: accuracy {rep.accuracy:.3f}, emergency recall "
            f"{rep.emergency_recall:.3f}, precision {rep.emergency_precision:.3f}",
            file=sys.stderr,
            flush=True,
        )

    corpus = Path(args.corpus) if args.corpus else CORPUS
    results = forward(make, first_round=first_round, corpus=corpus, progress=progress)
    print(format_forward(results))
    if args.save:
        # One line a scored message, in corpus order: bench/classifier_compare.py reads it.
        lines = [
            json.dumps({"round": r.name, "label": label, "emergency": flag})
            for r in results
            for label, flag in zip(r.report.labels, r.report.emergency_flags, strict=True)
        ]
        Path(args.save).write_text("".join(line + "\n" for line in lines), "utf-8")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``classify`` command and its ``train`` and ``forward`` actions."""

    classify = subparsers.add_parser(
        "classify", help='classify JSON lines {"text": …} from stdin; train; evaluate'
    )
    classify.add_argument("--eval", metavar="FILE", help="evaluate on a labelled JSON-lines file")
    classify.set_defaults(func=cmd_classify)
    actions = classify.add_subparsers(dest="classify_command")
    train = actions.add_parser("train", help="rebuild the model from the corpus ([train] extra)")
    train.add_argument("--corpus", help="folder of labelled *.jsonl (default: the packaged one)")
    train.add_argument("--out", help="weights file to write (default: the packaged one)")
    train.add_argument(
        "--check", action="store_true", help="exit 1 if the weights file is not current"
    )
    train.set_defaults(func=cmd_train)
    fwd = actions.add_parser(
        "forward", help="train on earlier rounds, score the next; print the table"
    )
    fwd.add_argument(
        "--from",
        dest="first_round",
        type=int,
        help="first round scored (default 10: every model has 1,600 messages behind it)",
    )
    fwd.add_argument("--corpus", help="folder of labelled *.jsonl (default: the packaged one)")
    fwd.add_argument("--model-only", action="store_true", help="without the rule layer")
    fwd.add_argument(
        "--recall",
        type=float,
        help="cross-validated emergency recall the threshold must reach (default: training's)",
    )
    fwd.add_argument(
        "--save",
        metavar="FILE",
        help="also write each scored message's label and emergency flag (JSON lines)",
    )
    fwd.set_defaults(func=cmd_forward)
