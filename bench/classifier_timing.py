"""Classification time per message: the median over the corpus, and a 20,000-character message
against a 200-character one (docs/classifier.md, "Time")::

    python bench/classifier_timing.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.classify import Classifier
from handlers.classify.evaluate import corpus_rows


def main() -> int:
    start = time.perf_counter()
    clf = Classifier.from_file()
    print(f"load: {(time.perf_counter() - start) * 1000:.0f} ms")
    texts = [str(r["text"]) for r in corpus_rows()]
    for text in texts:
        clf.classify(text)  # warm the caches, as a running server has them
    times = []
    for _ in range(3):
        for text in texts:
            t = time.perf_counter()
            clf.classify(text)
            times.append(time.perf_counter() - t)
    times.sort()
    p90, p99 = times[int(len(times) * 0.9)], times[int(len(times) * 0.99)]
    print(
        f"{len(texts)} corpus messages x 3: median {statistics.median(times) * 1000:.3f} ms, "
        f"p90 {p90 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"
    )
    piece = "有人在村口打架,好像有人受伤了,我在小卖部门口,你们快来看看吧。請問身份證怎麼辦,"
    for size in (200, 2_000, 20_000):
        text = (piece * (size // len(piece) + 1))[:size]
        best = min(_time(clf, text) for _ in range(5))
        print(f"{size:>6} characters: {best * 1000:.2f} ms")
    return 0


def _time(clf: Classifier, text: str) -> float:
    t = time.perf_counter()
    clf.classify(text)
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())
