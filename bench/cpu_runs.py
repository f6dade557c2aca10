"""What the in-process cost benches share: another checkout's code, runs repeated, the best.

``bench/process_cost.py`` and ``bench/accept_cost.py`` measure CPU time on a shared machine:
each run prints its figures, and with ``--repeat`` the least of each ``…_per_<unit>`` figure is
printed too (what the code costs when the machine slows it least).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import random
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--repo``, ``--repeat`` and ``--profile``."""
    parser.add_argument("--repo", default=str(HERE), help="the checkout whose code is measured")
    parser.add_argument("--repeat", type=int, default=1, help="runs; the least CPU is printed")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")


def run_repeatedly(
    run: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]],
    args: argparse.Namespace,
    unit: str,
) -> None:
    """Import ``args.repo``'s code, run ``args.repeat`` times, print each run and the best
    ``…_per_<unit>`` figures."""
    repo = Path(args.repo).resolve()
    args.repo = repo
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    runs = []
    for _ in range(args.repeat):
        runs.append(asyncio.run(run(args)))  # type: ignore[arg-type]
        print(json.dumps(runs[-1], ensure_ascii=False))
    if args.repeat > 1:
        suffix = f"_per_{unit}"
        best = {k: min(r[k] for r in runs) for k in runs[0] if k.endswith(suffix)}
        print(json.dumps({"best_of": args.repeat, **best}, ensure_ascii=False))


def corpus_texts(repo: Path, seed: int) -> list[str]:
    """The corpus's labelled non-emergencies (each once), in a fixed shuffle."""
    seen: dict[str, None] = {}
    for path in sorted((repo / "handlers" / "classify" / "corpus").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and not row.get("emergency"):
                seen.setdefault(row["text"], None)
    texts = list(seen)
    random.Random(seed).shuffle(texts)
    return texts


def print_profile(profiler: Any, top: int) -> None:
    """The ``top`` functions of a cProfile run, by cumulative and by own time."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue())
