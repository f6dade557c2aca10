"""The old rules against the trained classifier, per corpus file (docs/classifier.md).

Reads what the old rules said (``bench/classifier_baseline.jsonl``, written by
``classifier_baseline.py`` from git history) and compares:

1. **shipped**: the packaged model on every corpus file against the last rules (both had seen
   every file): which emergencies the rules caught that the model misses (must be none);
2. **forward**: with ``--forward FILE`` (from ``lianxin classify forward --from 4 --save FILE``),
   each round scored by a model trained only on the files before it, against the rules as they
   stood before that round was added (the old protocol's "untouched" figure).

    python bench/classifier_compare.py --forward /tmp/forward.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers.classify import Classifier  # noqa: E402
from handlers.classify.evaluate import CORPUS, corpus_files, read_labelled  # noqa: E402

BASELINE = ROOT / "bench" / "classifier_baseline.jsonl"


def _metrics(gold: list[dict], labels: list[str], flags: list[bool]) -> tuple[float, ...]:
    right = sum(g["label"] == p for g, p in zip(gold, labels, strict=True))
    gold_em = [bool(g.get("emergency")) for g in gold]
    caught = sum(g and f for g, f in zip(gold_em, flags, strict=True))
    return (
        right / len(gold),
        caught / max(1, sum(gold_em)),
        caught / max(1, sum(flags)),
        float(caught),
        float(sum(gold_em)),
        float(sum(flags)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forward", help="per-message output of `lianxin classify forward`")
    args = parser.parse_args()
    old: dict[tuple[str, str], dict] = {}
    for line in BASELINE.read_text("utf-8").splitlines():
        item = json.loads(line)
        old[item["file"], item["kind"]] = item
    gold = {p.name: read_labelled(p) for p in corpus_files(CORPUS)}

    clf = Classifier.from_file()
    print("## Shipped model against the last rules (both trained / tuned on every file)\n")
    print("| file | rules missed | model missed | caught by the rules, missed by the model |")
    print("| --- | ---: | ---: | ---: |")
    regressions = 0
    for name, rows in gold.items():
        rules = old[name, "final"]
        flags = [clf.classify(r["text"]).emergency for r in rows]
        worse = [
            r["text"]
            for r, f, o in zip(rows, flags, rules["emergency"], strict=True)
            if r.get("emergency") and o and not f
        ]
        regressions += len(worse)
        rules_missed = sum(
            bool(r.get("emergency")) and not o
            for r, o in zip(rows, rules["emergency"], strict=True)
        )
        model_missed = sum(
            bool(r.get("emergency")) and not f for r, f in zip(rows, flags, strict=True)
        )
        print(f"| {name} | {rules_missed} | {model_missed} | {len(worse)} |")
        for text in worse:
            print(f"|   ↳ {text} | | | |")
    print(f"\nemergencies the rules caught and the shipped model misses: {regressions}\n")

    if not args.forward:
        return 1 if regressions else 0
    new: dict[str, list[dict]] = defaultdict(list)
    for line in Path(args.forward).read_text("utf-8").splitlines():
        item = json.loads(line)
        new[item["round"]].append(item)
    print("## Forward protocol against the rules' untouched figures\n")
    print(
        "| round | rules acc | rules rec | rules prec | model acc | model rec | model prec "
        "| caught only by the rules | caught only by the model |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals: dict[str, list[float]] = {"rules": [0.0] * 4, "model": [0.0] * 4}
    only_rules_all: list[str] = []
    for stem, preds in new.items():
        name = f"{stem}.jsonl"
        if (name, "untouched") not in old:
            continue
        rows = gold[name]
        rules = old[name, "untouched"]
        r_flags = [bool(x) for x in rules["emergency"]]
        m_flags = [bool(p["emergency"]) for p in preds]
        rm = _metrics(rows, rules["labels"], r_flags)
        mm = _metrics(rows, [p["label"] for p in preds], m_flags)
        for key, m in (("rules", rm), ("model", mm)):
            t = totals[key]
            t[0] += m[0] * len(rows)
            t[1] += m[3]
            t[2] += m[4]
            t[3] += m[5]
        only_rules = [
            r["text"]
            for r, a, b in zip(rows, r_flags, m_flags, strict=True)
            if r.get("emergency") and a and not b
        ]
        only_model = sum(
            1
            for r, a, b in zip(rows, r_flags, m_flags, strict=True)
            if r.get("emergency") and b and not a
        )
        only_rules_all += [f"{stem}: {t}" for t in only_rules]
        print(
            f"| {stem.removeprefix('unseen-')} | {rm[0]:.3f} | {rm[1]:.3f} | {rm[2]:.3f} "
            f"| {mm[0]:.3f} | {mm[1]:.3f} | {mm[2]:.3f} | {len(only_rules)} | {only_model} |"
        )
    n = sum(len(gold[f"{s}.jsonl"]) for s in new if (f"{s}.jsonl", "untouched") in old)
    for key in ("rules", "model"):
        t = totals[key]
        print(
            f"\n{key}: accuracy {t[0] / n:.3f}, emergency recall {t[1] / t[2]:.3f}, "
            f"precision {t[1] / max(1.0, t[3]):.3f} ({int(t[2] - t[1])} missed, "
            f"{int(t[3] - t[1])} false alarms)"
        )
    print(f"\nemergencies only the rules caught ({len(only_rules_all)}):")
    for text in only_rules_all:
        print(f"- {text}")
    return 1 if regressions else 0


if __name__ == "__main__":
    raise SystemExit(main())
