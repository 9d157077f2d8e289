"""Exploit audit: every policy in the zoo on every task, in process.

    python -m support_env.audit              # canonical episodes
    python -m support_env.audit --seeds 20   # plus seeds 0..19

Prints mean grade and mean return per policy per task, and the gap between
the reference policy and the best exploit. Run i uses policy seed i (only the
random policy uses it); case tasks replay their one episode on every run.
"""

from __future__ import annotations

import argparse
from statistics import mean

from ..environment import SupportEnvironment
from .rollout import play
from ..episodes.catalogue import QUEUE_TASKS, TASK_IDS
from .zoo import EXPLOITS, ZOO, make


def run_audit(seeds: list[int | None]) -> dict[tuple[str, str], tuple[float, float]]:
    """(policy, task) -> (mean grade, mean return) over `seeds`."""
    table = {}
    for cls in ZOO:
        for task_id in TASK_IDS:
            grades, returns = [], []
            for run, seed in enumerate(seeds):
                episode_seed = seed if task_id in QUEUE_TASKS else None  # case tasks have no generated variants
                env = SupportEnvironment()
                rollout = play(make(cls.name, run), lambda: env.reset(task_id=task_id, seed=episode_seed), env.step)
                grades.append(rollout.grade.score)
                returns.append(rollout.total_reward)
            table[cls.name, task_id] = (round(mean(grades), 3), round(mean(returns), 3))
    return table


def render(table: dict[tuple[str, str], tuple[float, float]]) -> str:
    head = "| policy (grade / return) | " + " | ".join(f"`{t}`" for t in TASK_IDS) + " |"
    rule = "| --- |" + " ---: |" * len(TASK_IDS)
    rows = [
        f"| {cls.name} | " + " | ".join(f"{table[cls.name, t][0]:.3f} / {table[cls.name, t][1]:.2f}" for t in TASK_IDS) + " |"
        for cls in ZOO
    ]
    gaps = []
    for t in TASK_IDS:
        targeting = [cls for cls in EXPLOITS if t in cls.targets]
        best = max(targeting, key=lambda cls: table[cls.name, t][0])
        gaps.append(f"{t}: reference {table['reference', t][0]:.3f}, best exploit aimed at it {best.name} {table[best.name, t][0]:.3f}, "
                    f"gap {table['reference', t][0] - table[best.name, t][0]:.3f}")
    return "\n".join([head, rule, *rows, "", *gaps])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the policy zoo on every task and print the table.")
    parser.add_argument("--seeds", type=int, default=0, help="also play seeds 0..N-1 (default: canonical episodes only)")
    args = parser.parse_args(argv)
    seeds: list[int | None] = [None, *range(args.seeds)]
    print(render(run_audit(seeds)))


if __name__ == "__main__":
    main()
