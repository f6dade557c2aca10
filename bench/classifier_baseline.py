"""Record what the old rule-based classifier said, so the trained one can be compared with it
after the rules are gone (docs/classifier.md, "Old rules against the trained model").

Two kinds of rows, written to ``bench/classifier_baseline.jsonl``, one per corpus file and
kind, with the label and the emergency flag (0/1) of each of the file's messages in order:

* ``untouched``: each round file scored by the rules *as they stood before that file was
  added* (the parent of the commit that added it) — the honest "untouched" figure of the old
  protocol, per message;
* ``final``: every corpus file scored by the last rules (``--final REV``), tuned on all of them.

The old code is read from git history (``git archive``), so this runs on any checkout::

    python bench/classifier_baseline.py --final e363334

Each revision runs in its own interpreter: the old modules share the package name ``handlers``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "classifier_baseline.jsonl"
OLD_DATA = "tests/data"  # where the labelled files lived while the rules were tuned

_RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from handlers.classifier import Classifier
clf = Classifier.from_file()
for line in sys.stdin:
    r = clf.classify(json.loads(line)["text"])
    print(json.dumps({"label": r.label, "emergency": r.emergency}), flush=True)
"""


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def _run_rules(rev: str, texts: list[str]) -> list[dict[str, object]]:
    """The old classifier of ``rev`` on ``texts``."""
    archive = subprocess.run(
        ["git", "archive", rev, "handlers"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, tmp],
            input="".join(json.dumps({"text": t}) + "\n" for t in texts),
            capture_output=True,
            text=True,
            check=True,
        )
    return [json.loads(line) for line in done.stdout.splitlines()]


def _rows(rev: str, path: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _git("show", f"{rev}:{path}").splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--final", required=True, help="the last revision with the old rules")
    args = parser.parse_args()
    files = sorted(
        p
        for p in _git("ls-tree", "--name-only", f"{args.final}:{OLD_DATA}/").splitlines()
        if p.endswith(".jsonl")
    )
    out: list[str] = []
    for name in files:
        rows = _rows(args.final, f"{OLD_DATA}/{name}")
        texts = [str(r["text"]) for r in rows]
        added = _git(
            "log", "--diff-filter=A", "--format=%H", args.final, "--", f"{OLD_DATA}/{name}"
        )
        runs = {"final": args.final}
        before = added.split()[-1] + "^"
        if "handlers/classifier.py" in _git("ls-tree", "-r", "--name-only", before, "handlers"):
            runs["untouched"] = before
        for kind, rev in runs.items():
            preds = _run_rules(rev, texts)
            item = {
                "file": name,
                "kind": kind,
                "rev": _git("rev-parse", "--short", rev).strip(),
                "labels": [p["label"] for p in preds],
                "emergency": [int(bool(p["emergency"])) for p in preds],
            }
            out.append(json.dumps(item))
            print(f"{name}: {kind} at {rev}", file=sys.stderr)
    OUT.write_text("\n".join(out) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
