"""Turn results files (`inference.py --results`) into a markdown leaderboard table.

    python scripts/results_table.py run1.json run2.json run3.json run4.json --k 4

Every result of the same model on the same task (and split) is one trial,
whichever file it is in. Like tau-bench, the table reports pass^k: the chance
that k independent trials of a task all succeed, estimated from n trials with c
successes as C(c, k) / C(n, k) (unbiased; pass^1 is the success rate), then
averaged over tasks. A trial succeeds when its `success` is true (grade >= 0.8,
every emergency escalated, no failure). Cells needing more trials than were run
show "–".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Iterable, Optional, Sequence

MISSING = "–"


def pass_hat_k(trials: int, successes: int, k: int) -> Optional[float]:
    """pass^k estimated from `trials` with `successes`: C(c, k) / C(n, k); None when n < k."""
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and trials, got {successes} of {trials}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if trials < k:
        return None
    return comb(successes, k) / comb(trials, k)


@dataclass
class Trials:
    """Every trial of one model on one task."""

    model: str
    task_id: str
    split: Optional[str]
    grades: list[float] = field(default_factory=list)
    successes: int = 0

    @property
    def n(self) -> int:
        return len(self.grades)

    def pass_hat(self, k: int) -> Optional[float]:
        return pass_hat_k(self.n, self.successes, k)


def load_results(paths: Iterable[Path]) -> list[dict]:
    """The results of every file, in order. Raises ValueError for a file that is not a results file."""
    results = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            entries = document["results"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a results file written by inference.py --results ({exc})") from exc
        for entry in entries:
            missing = {"task_id", "model", "grade", "success"} - set(entry)
            if missing:
                raise ValueError(f"{path}: a result lacks {sorted(missing)}")
            results.append(entry)
    return results


def group_trials(results: Iterable[dict]) -> list[Trials]:
    groups: dict[tuple, Trials] = {}
    for r in results:
        key = (r["model"], r["task_id"], r.get("split"))
        trials = groups.setdefault(key, Trials(*key))
        trials.grades.append(float(r["grade"]))
        trials.successes += bool(r["success"])
    return sorted(groups.values(), key=lambda t: (t.model, t.task_id, t.split or ""))


def markdown_table(results: Sequence[dict], max_k: int = 4) -> str:
    """One row per model and task, then one row per model averaging over its tasks."""
    if max_k < 1:
        raise ValueError("max_k must be at least 1")
    groups = group_trials(results)
    ks = range(1, max_k + 1)
    show_split = any(t.split for t in groups)
    head = ["model", "task", *(["split"] if show_split else []), "trials", "mean grade", *(f"pass^{k}" for k in ks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]

    def row(model: str, task: str, split: str, n: str, grade: float, cells: list[Optional[float]]) -> None:
        values = [model, task, *([split] if show_split else []), n, f"{grade:.3f}", *(_cell(c) for c in cells)]
        lines.append("| " + " | ".join(values) + " |")

    by_model: dict[str, list[Trials]] = defaultdict(list)
    for t in groups:
        by_model[t.model].append(t)
        row(t.model, t.task_id, t.split or "", str(t.n), sum(t.grades) / t.n, [t.pass_hat(k) for k in ks])
    for model, tasks in by_model.items():
        if len(tasks) > 1:
            averages = [_mean([t.pass_hat(k) for t in tasks]) for k in ks]
            trials = f"{min(t.n for t in tasks)}-{max(t.n for t in tasks)}" if len({t.n for t in tasks}) > 1 else str(tasks[0].n)
            row(f"**{model}**", f"**all {len(tasks)} tasks**", "", trials, _mean([sum(t.grades) / t.n for t in tasks]), averages)
    return "\n".join(lines) + "\n"


def _mean(values: list[Optional[float]]) -> Optional[float]:
    """The mean over tasks, or None if any task lacks the trials for it."""
    if any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _cell(value: Optional[float]) -> str:
    return MISSING if value is None else f"{value:.3f}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="results files written by inference.py --results")
    parser.add_argument("--k", type=int, default=4, help="report pass^1 .. pass^k (default 4)")
    parser.add_argument("--output", type=Path, help="write the table here instead of stdout")
    args = parser.parse_args(argv)
    try:
        table = markdown_table(load_results(args.results), args.k)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(table, encoding="utf-8")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
