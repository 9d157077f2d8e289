"""A digest of every observation, reward, grade and state of the policy zoo, to prove a change pure.

    python scripts/episode_digest.py > before.txt    # on the old tree
    python scripts/episode_digest.py > after.txt     # on the new tree; `diff` them

Plays every zoo policy on every task's canonical episode and, for the generated tasks, on seeds
0..N-1 (default 50) of both splits, in process, with fixed episode ids. Prints one hash per
(policy, task) and a total. A refactor that changes no behaviour leaves every line the same.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support_env import SupportEnvironment  # noqa: E402
from support_env.agents.rollout import play  # noqa: E402
from support_env.agents.zoo import ZOO, make  # noqa: E402
from support_env.episodes.catalogue import GENERATED_TASKS, TASK_IDS  # noqa: E402


def digest(seeds: int) -> dict[tuple[str, str], str]:
    table = {}
    for cls in ZOO:
        for task_id in TASK_IDS:
            runs: list[dict] = [{"task_id": task_id}]
            if task_id in GENERATED_TASKS:
                runs += [{"task_id": task_id, "seed": s, "split": split} for split in ("train", "eval") for s in range(seeds)]
            h = hashlib.sha256()
            for run, kwargs in enumerate(runs):
                env = SupportEnvironment()
                rollout = play(make(cls.name, run), lambda: env.reset(episode_id=f"digest-{run}", **kwargs), env.step)
                for observation in rollout.observations:
                    h.update(observation.model_dump_json().encode())
                h.update(repr(rollout.rewards).encode())
                h.update(env.state.model_dump_json().encode())
            table[cls.name, task_id] = h.hexdigest()
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50, help="seeds per queue task and split (default 50)")
    args = parser.parse_args(argv)
    table = digest(args.seeds)
    total = hashlib.sha256()
    for (policy, task), value in sorted(table.items()):
        print(f"{policy:20s} {task:26s} {value[:16]}")
        total.update(value.encode())
    print(f"total {total.hexdigest()}")


if __name__ == "__main__":
    main()
