"""How often the reply grader disagrees with a careful reviewer, on the labelled set in tests/fidelity/.

    python benchmarks/grader_fidelity.py            # rates overall, per family and per phenomenon
    python benchmarks/grader_fidelity.py --show     # also every misjudged reply with its grade's notes
    python benchmarks/grader_fidelity.py --folder DIR   # a batch of new labelled files, before they join the set

False negative: a reply labelled correct that scores below 0.9. False positive: a reply labelled
wrong that keeps more than half of the reply credit. No model, no network: the grader is pure.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fidelity.harness import grade, load_cases, misjudged  # noqa: E402


def rate(bad: int, total: int) -> str:
    return f"{bad:3d}/{total:<3d} {100 * bad / total:5.1f}%" if total else "   -/0        "


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", action="store_true", help="print every misjudged reply")
    parser.add_argument("--folder", help="grade the labelled files in this folder instead (a held-out batch)")
    args = parser.parse_args(argv)
    cases = load_cases(Path(args.folder)) if args.folder else load_cases()
    rows = [(case, grade(case)) for case in cases]
    by_family: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # fn, correct, fp, wrong
    by_phenomenon: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for case, g in rows:
        wrong_verdict = misjudged(case, g.score)
        column = 0 if case.label == "correct" else 2
        for bucket in [by_family[case.family], *(by_phenomenon[p] for p in case.phenomena)]:
            bucket[column] += wrong_verdict
            bucket[column + 1] += 1
    fn = sum(v[0] for v in by_family.values()), sum(v[1] for v in by_family.values())
    fp = sum(v[2] for v in by_family.values()), sum(v[3] for v in by_family.values())
    print(f"{len(cases)} labelled replies in {len(by_family)} families")
    print(f"overall   false negatives {rate(*fn)}   false positives {rate(*fp)}")
    for title, table in (("family", by_family), ("phenomenon", by_phenomenon)):
        print(f"\n| {title} | false negatives | false positives |\n| --- | --- | --- |")
        for name in sorted(table):
            v = table[name]
            print(f"| {name} | {rate(v[0], v[1])} | {rate(v[2], v[3])} |")
    if args.show:
        for case, g in rows:
            if misjudged(case, g.score):
                print(f"\n{case.id} [{case.label}] score {g.score} ({case.why})\n  {case.reply!r}")
                print(f"  covered {g.covered} missing {g.missing} wrong {g.wrong} forbidden {g.forbidden}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
