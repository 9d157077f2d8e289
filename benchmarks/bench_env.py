"""In-process speed of the environment itself: no server, no network.

    python benchmarks/bench_env.py [--episodes 60] [--passes 3]

1. The reference policy plays `--episodes` episodes of every task (seeded where the
   task generates episodes, else its canonical one); its actions
   are recorded (and the policy's own speed is reported: episodes/s played).
2. The recorded actions are replayed against `SupportEnvironment` on one core:
   the time inside `env.step` alone, and `env.step` plus the serialisation a
   server does for every reply (`serialize_observation` + `json.dumps`). The
   best of `--passes` passes is reported.
3. One replay of all tasks under cProfile: the share of step time spent in
   KB search, grading (with the reply fact extraction inside it), building
   the observation model, and serialisation; and a check that nothing is
   rebuilt per episode (BM25 index builds, data file reads).

Target: >= 20,000 steps/s on one core for the step itself.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from collections import defaultdict

import _common  # noqa: F401  (puts the project root on sys.path)
from _common import header

from openenv.core.env_server.serialization import serialize_observation
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS


def record(task_id: str, seeds: list) -> tuple[list[list[SupportAction]], float]:
    """The reference policy's actions per seed, and the wall time of playing them (policy included)."""
    env = SupportEnvironment()
    episodes = []
    start = time.perf_counter()
    for seed in seeds:
        rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed), env.step)
        episodes.append(rollout.actions)
    return episodes, time.perf_counter() - start


def replay(task_id: str, seeds: list, episodes: list[list[SupportAction]]) -> dict:
    env = SupportEnvironment()
    step_s = serialise_s = reset_s = 0.0
    by_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    steps = 0
    clock = time.perf_counter
    for seed, actions in zip(seeds, episodes):
        t0 = clock()
        env.reset(task_id=task_id, seed=seed)
        reset_s += clock() - t0
        for action in actions:
            t0 = clock()
            observation = env.step(action)
            t1 = clock()
            json.dumps(serialize_observation(observation))
            t2 = clock()
            step_s += t1 - t0
            serialise_s += t2 - t1
            entry = by_type[action.action_type]
            entry[0] += 1
            entry[1] += t1 - t0
            steps += 1
        assert observation.done, "a recorded episode must end"
    return {"steps": steps, "step_s": step_s, "serialise_s": serialise_s, "reset_s": reset_s, "by_type": dict(by_type)}


def best_of(passes: int, task_id: str, seeds: list, episodes) -> dict:
    runs = [replay(task_id, seeds, episodes) for _ in range(passes)]
    return min(runs, key=lambda r: r["step_s"] + r["serialise_s"])


def profile_shares(recorded: dict[str, tuple[list, list]]) -> None:
    profiler = cProfile.Profile()

    def run() -> None:
        for task_id, (seeds, episodes) in recorded.items():
            env = SupportEnvironment()
            for seed, actions in zip(seeds, episodes):
                env.reset(task_id=task_id, seed=seed)
                for action in actions:
                    json.dumps(serialize_observation(env.step(action)))

    profiler.runcall(run)
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}

    def called_from(name_match, caller_file_suffix: str) -> float:
        """Cumulative time of matching functions, counted only for calls made from `caller_file_suffix`
        (so nested calls are not counted twice)."""
        total = 0.0
        for (file, _, name), (_, _, _, _, callers) in stats.items():
            if not name_match(file, name):
                continue
            for (cfile, _, _), (_, _, _, ct) in callers.items():
                if cfile.endswith(caller_file_suffix):
                    total += ct
        return total

    def cumulative(file_suffix: str, name: str) -> tuple[float, int]:
        for (file, _, fname), (_, nc, _, ct, _) in stats.items():
            if file.endswith(file_suffix) and fname == name:
                return ct, nc
        return 0.0, 0

    total, _ = cumulative("bench_env.py", "run")
    step_total, step_calls = cumulative("support_env/environment.py", "step")
    serialise = called_from(lambda f, n: n == "serialize_observation", "bench_env.py") + called_from(
        lambda f, n: n == "dumps" and f.endswith("json/__init__.py"), "bench_env.py"
    )
    search = called_from(lambda f, n: f.endswith("support_env/domain/kb.py") and n == "search", "support_env/actions.py")
    tokenise = called_from(lambda f, n: f.endswith("support_env/domain/kb.py") and n == "_tokenize", "support_env/domain/kb.py")
    grading = sum(
        called_from(lambda f, n: "support_env/grading/" in f, caller) for caller in ("support_env/environment.py", "support_env/actions.py")
    )
    extraction = called_from(lambda f, n: n == "extract_quantities", "support_env/grading/reply.py") + called_from(
        lambda f, n: n == "extract_quantities", "support_env/domain/facts.py"
    )
    observation = called_from(lambda f, n: n == "_observation", "support_env/environment.py")
    builds = cumulative("support_env/domain/kb.py", "__init__")[1]
    reads = sum(
        nc for (file, _, name), (_, nc, _, _, _) in stats.items() if name in ("read_text", "read_bytes", "open")
    )

    def share(seconds: float) -> str:
        return f"{100 * seconds / total:5.1f}%  ({1e6 * seconds / step_calls:7.1f} us/step)"

    print(f"\n-- profile of one replay of every task ({step_calls} steps under cProfile, {total:.2f} s; cProfile inflates times)")
    print(f"   env.step total                         {share(step_total)}")
    print(f"     KB search (kb.KnowledgeBase.search)  {share(search)}")
    print(f"       of which query tokenisation       {share(tokenise)}")
    print(f"     grading (grading.* from the env)     {share(grading)}")
    print(f"       of which facts.extract_quantities  {share(extraction)}")
    print(f"     observation model (_observation)     {share(observation)}")
    print(f"   serialisation (serialize_observation + json.dumps)  {share(serialise)}")
    print(f"   BM25 index builds during the run: {builds}; file reads/opens during the run: {reads}")
    print("   top 8 functions by own time:")
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]
    for (file, line, name), (_, nc, tt, _, _) in top:
        where = file.replace(str(_common.ROOT) + "/", "").split("site-packages/")[-1]
        print(f"     {100 * tt / total:5.1f}%  {nc:7d} calls  {where}:{line}({name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=60, help="seeded episodes per task")
    parser.add_argument("--passes", type=int, default=3, help="timed replays per task; the best is reported")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    header("bench_env: in-process episodes with the reference policy (one core)")
    recorded = {}
    print(f"   {args.episodes} episodes per task (seeds 0..{args.episodes - 1} where the task generates episodes,"
          f" else its canonical episode), best of {args.passes} replays\n")
    print(f"   {'task':24} {'steps/ep':>8} {'step only':>13} {'step+serialise':>15} {'episodes/s env':>15} {'episodes/s +policy':>19}")
    all_steps = all_step_s = all_ser_s = 0.0
    by_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for task_id in TASK_IDS:
        seeds = list(range(args.episodes)) if task_id in QUEUE_TASKS else [None] * args.episodes
        episodes, played_s = record(task_id, seeds)
        recorded[task_id] = (seeds, episodes)
        r = best_of(args.passes, task_id, seeds, episodes)
        env_s = r["step_s"] + r["serialise_s"] + r["reset_s"]
        print(
            f"   {task_id:24} {r['steps'] / len(episodes):8.1f} {r['steps'] / r['step_s']:9,.0f} st/s"
            f" {r['steps'] / (r['step_s'] + r['serialise_s']):11,.0f} st/s {len(episodes) / env_s:15,.1f}"
            f" {len(episodes) / played_s:19,.1f}"
        )
        all_steps += r["steps"]
        all_step_s += r["step_s"]
        all_ser_s += r["serialise_s"]
        for kind, (n, s) in r["by_type"].items():
            by_type[kind][0] += n
            by_type[kind][1] += s
    print(f"   {'all tasks':24} {'':8} {all_steps / all_step_s:9,.0f} st/s {all_steps / (all_step_s + all_ser_s):11,.0f} st/s")
    print("\n   env.step time by action type (all tasks):")
    for kind, (n, s) in sorted(by_type.items(), key=lambda kv: -kv[1][1] / kv[1][0]):
        print(f"     {kind:16} {1e6 * s / n:8.1f} us/step  = {n / s:9,.0f} steps/s   ({int(n)} steps)")
    print(f"     serialisation    {1e6 * all_ser_s / all_steps:8.1f} us/step (mean over all steps)")
    profile_shares(recorded)


if __name__ == "__main__":
    main()
