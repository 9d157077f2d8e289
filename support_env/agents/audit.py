"""Exploit audit: every policy in the zoo on every task, in process.

    python -m support_env.audit              # canonical episodes
    python -m support_env.audit --seeds 20   # plus seeds 0..19

Prints mean grade and mean return per policy per task, the mean score on the
reasoning-family tickets that seeded hard queues carry, and the gap between the
reference policy and the best exploit. Run i uses policy seed i (only the random
policy uses it); case tasks replay their one episode on every run. The oracle
row reads the hidden truth: the ceiling, not an agent.
"""

from __future__ import annotations

import argparse
from statistics import mean

from ..environment import SupportEnvironment
from .oracle import TruthOracle
from .rollout import play
from ..episodes.catalogue import GENERATED_TASKS, TASK_IDS
from .zoo import EXPLOITS, ZOO, make

REASONING = "hard_mixed_queue reasoning tickets"
POLICIES = ("oracle", *(cls.name for cls in ZOO))


def _policy(name: str, run: int, env: SupportEnvironment):
    return TruthOracle(env._spec) if name == "oracle" else make(name, run)


def run_audit(seeds: list[int | None]) -> dict[tuple[str, str], tuple[float, float]]:
    """(policy, task) -> (mean grade, mean return) over `seeds`; (policy, REASONING) -> (mean
    score of the reasoning-family tickets in the seeded hard queues, their count)."""
    table = {}
    for name in POLICIES:
        reasoning: list[float] = []
        for task_id in TASK_IDS:
            grades, returns = [], []
            for run, seed in enumerate(seeds):
                episode_seed = seed if task_id in GENERATED_TASKS else None  # case tasks have no generated variants
                env = SupportEnvironment()
                first = env.reset(task_id=task_id, seed=episode_seed)
                rollout = play(_policy(name, run, env), lambda: first, env.step)
                grades.append(rollout.grade.score)
                returns.append(rollout.total_reward)
                if task_id == "hard_mixed_queue" and seed is not None:
                    family = {t.id for t in env._spec.tickets if t.family}
                    reasoning += [t.score for t in rollout.grade.tickets if t.ticket_id in family]
            table[name, task_id] = (round(mean(grades), 3), round(mean(returns), 3))
        table[name, REASONING] = (round(mean(reasoning), 3) if reasoning else float("nan"), len(reasoning))
    return table


def render(table: dict[tuple[str, str], tuple[float, float]]) -> str:
    head = "| policy (grade / return) | " + " | ".join(f"`{t}`" for t in TASK_IDS) + f" | {REASONING} |"
    rule = "| --- |" + " ---: |" * (len(TASK_IDS) + 1)
    rows = [
        f"| {name} | " + " | ".join(f"{table[name, t][0]:.3f} / {table[name, t][1]:.2f}" for t in TASK_IDS)
        + f" | {table[name, REASONING][0]:.3f} |"
        for name in POLICIES
    ]
    gaps = []
    for t in TASK_IDS:
        targeting = [cls for cls in EXPLOITS if t in cls.targets]
        best = max(targeting, key=lambda cls: table[cls.name, t][0])
        gaps.append(f"{t}: reference {table['reference', t][0]:.3f}, best exploit aimed at it {best.name} {table[best.name, t][0]:.3f}, "
                    f"gap {table['reference', t][0] - table[best.name, t][0]:.3f}")
    count = table["reference", REASONING][1]
    gaps.append(f"{REASONING}: {count} tickets over the seeds; reference {table['reference', REASONING][0]:.3f}, "
                f"best exploit {max((table[c.name, REASONING][0] for c in EXPLOITS), default=0):.3f}")
    return "\n".join([head, rule, *rows, "", *gaps])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the policy zoo on every task and print the table.")
    parser.add_argument("--seeds", type=int, default=0, help="also play seeds 0..N-1 (default: canonical episodes only)")
    args = parser.parse_args(argv)
    seeds: list[int | None] = [None, *range(args.seeds)]
    print(render(run_audit(seeds)))


if __name__ == "__main__":
    main()
