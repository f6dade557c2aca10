"""Rebuild ``handlers/ngram_model.json`` from the labelled data (deterministic).

    PYTHONPATH=. python handlers/build_ngram_model.py [--check]

Trains on every ``tests/data/*.jsonl`` file (sorted).  ``--check`` exits non-zero if the
shipped weights differ from a fresh build instead of writing them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from handlers.classifier import LABELS, normalise
from handlers.ngram_model import DEFAULT_MODEL, train

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "tests" / "data"


def data_files(data_dir: Path = DATA_DIR) -> list[Path]:
    return sorted(data_dir.glob("*.jsonl"))


def load_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def build(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return train(rows, LABELS, normalise)


def dumps(weights: Mapping[str, Any]) -> str:
    return json.dumps(weights, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def main(argv: list[str]) -> int:
    text = dumps(build(load_rows(data_files())))
    if "--check" in argv:
        same = DEFAULT_MODEL.exists() and DEFAULT_MODEL.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{DEFAULT_MODEL.name} is stale: rebuild it")
        return 0 if same else 1
    DEFAULT_MODEL.write_text(text, encoding="utf-8")
    print(f"wrote {DEFAULT_MODEL} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
