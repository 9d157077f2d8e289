"""CPU time per step, in process, of this checkout against another one measured in the same run.

    python benchmarks/bench_step_cpu.py [--against /path/to/other/checkout] [--seeds 20] [--passes 5]

The reference policy plays seeds 0..N-1 of `medium_kb_reply` and `hard_mixed_queue` once; its
actions are then replayed `--passes` times on a fresh environment, and the best pass's CPU time
per step is reported, for every step and for `reply_ticket` steps alone (the reply grader's share).
With `--against`, the same measurement runs in that checkout (a subprocess with its own import
path, playing its own reference policy on the same tasks and seeds), and the ratio this/that is
printed: CPU time, so a busy machine moves both sides alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("medium_kb_reply", "hard_mixed_queue")


def measure(seeds: int, passes: int) -> dict[str, float]:
    sys.path.insert(0, str(Path.cwd()))
    from support_env.agents.reference import ReferencePolicy
    from support_env.agents.rollout import play
    from support_env.environment import SupportEnvironment

    episodes = []
    for task_id in TASKS:
        for seed in range(seeds):
            env = SupportEnvironment()
            rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed), env.step)
            episodes.append((task_id, seed, rollout.actions))
    best_all = best_reply = float("inf")
    steps = replies = 0
    for _ in range(passes):
        all_cpu = reply_cpu = 0.0
        steps = replies = 0
        for task_id, seed, actions in episodes:
            env = SupportEnvironment()
            env.reset(task_id=task_id, seed=seed)
            for action in actions:
                start = time.process_time()
                env.step(action)
                spent = time.process_time() - start
                all_cpu += spent
                steps += 1
                if action.action_type == "reply_ticket":
                    reply_cpu += spent
                    replies += 1
        best_all, best_reply = min(best_all, all_cpu), min(best_reply, reply_cpu)
    return {"steps": steps, "replies": replies, "us_per_step": 1e6 * best_all / steps, "us_per_reply": 1e6 * best_reply / replies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", type=Path, default=None, help="another checkout to measure in the same run (the baseline)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one measurement as JSON (the subprocess)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.seeds, args.passes)))
        return
    here = Path(__file__).resolve().parents[1]
    runs = {"this checkout": here} | ({"baseline": args.against.resolve()} if args.against else {})
    results = {}
    for label, tree in runs.items():
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json", "--seeds", str(args.seeds), "--passes", str(args.passes)],
                             cwd=tree, capture_output=True, text=True, check=True).stdout
        results[label] = json.loads(out.strip().splitlines()[-1])
    for label, r in results.items():
        print(f"{label:>14}: {r['steps']} steps, {r['us_per_step']:.0f} µs CPU per step ({1e6 / r['us_per_step']:,.0f}/s); "
              f"{r['replies']} replies, {r['us_per_reply']:.0f} µs per reply step ({1e6 / r['us_per_reply']:,.0f}/s)")
    if "baseline" in results:
        a, b = results["this checkout"], results["baseline"]
        print(f"ratio this/baseline: {a['us_per_step'] / b['us_per_step']:.2f} per step, {a['us_per_reply'] / b['us_per_reply']:.2f} per reply step")


if __name__ == "__main__":
    main()
