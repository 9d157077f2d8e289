"""HTTP steps per session store, side by side in one run (SUPPORT_ENV_STORE).

    python benchmarks/bench_stores.py [--steps 600] [--clients 16] [--per-client 150] [--rounds 3]   # ~2 min
    python benchmarks/bench_stores.py --only "sqlite 1w,sqlite 2w" --no-latency --rounds 5   # workers' scaling, ~1 min

Servers, all started first and measured in turns (round robin, `--rounds` times;
the median round is reported), so a noisy moment hits them alike:

- memory:    one process, sessions in memory (the single-process default)
- sqlite 1w: one process on an SQLite file
- sqlite 2w: two uvicorn workers on one SQLite file (WEB_CONCURRENCY=2)
- redis 2r:  deploy/'s topology as local processes: redis-server, 2 replicas,
             HAProxy in front (deploy/run_local.py); every request goes through HAProxy,
             round robin, so consecutive steps of an episode alternate between replicas
- redis 1r direct: the same topology's first replica asked directly (no balancer,
             no catch-up): what the balancer hop and the alternation cost

Latency: one client, one keep-alive connection, the reference policy's
episodes (hard_mixed_queue, seeds in turn), `--steps` timed steps per round
(resets untimed); p50 and p99 per step. Throughput: `--clients` connections at
once, each playing its own episodes, `--per-client` steps each; steps/s over
the wall time, and the cores the servers (every process of a target) and the
client used meanwhile. The client runs on the same machine and takes CPU from
the servers (`RawHttpConnection` keeps its share small).

Targets (issue #16): p50 at most 1.3x the memory store's; 2 workers at least
1.7x one worker's throughput on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project root on sys.path)
from _common import ROOT, RawHttpConnection, Server, header, percentile, reference_actions

sys.path.insert(0, str(ROOT / "deploy"))
import run_local  # noqa: E402

TASK = "hard_mixed_queue"
SEEDS = range(1, 9)


class Target:
    def __init__(self, name: str, port: int, stop, pids):
        self.name, self.port, self.stop, self.pids = name, port, stop, pids


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of `pids` and all their descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, list(pids)
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


async def play_steps(port: int, episode_prefix: str, episodes: list[tuple[dict, list[dict]]], steps: int, latencies: list[float] | None) -> int:
    """Play episodes in turn on one connection until `steps` steps are done; returns steps done."""
    done = 0
    async with RawHttpConnection("127.0.0.1", port) as http:
        round_ = 0
        while done < steps:
            start, actions = episodes[round_ % len(episodes)]
            episode_id = f"{episode_prefix}-{round_ % 4}"
            status, _ = await http.request("POST", "/reset", json.dumps({**start, "episode_id": episode_id}).encode())
            assert status == 200, status
            for action in actions:
                if done >= steps:
                    break
                body = json.dumps({"action": action, "episode_id": episode_id}).encode()
                began = time.perf_counter()
                status, reply = await http.request("POST", "/step", body)
                if latencies is not None:
                    latencies.append(time.perf_counter() - began)
                assert status == 200, (status, reply[:300])
                done += 1
            round_ += 1
    return done


async def latency(target: Target, episodes, steps: int, tag: str) -> list[float]:
    await play_steps(target.port, f"warm-{tag}", episodes, 60, None)
    latencies: list[float] = []
    await play_steps(target.port, f"lat-{tag}", episodes, steps, latencies)
    return latencies


async def throughput(target: Target, episodes, clients: int, per_client: int, tag: str) -> tuple[float, float, float]:
    """Steps/s, and the cores the servers and this client used meanwhile (CPU seconds / wall seconds)."""
    began, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(target.pids()), time.process_time()
    counts = await asyncio.gather(*(play_steps(target.port, f"tp-{tag}-c{i}", episodes[i % len(episodes):] + episodes[: i % len(episodes)], per_client, None) for i in range(clients)))
    wall = time.perf_counter() - began
    return sum(counts) / wall, (cpu_seconds(target.pids()) - server_cpu) / wall, (time.process_time() - client_cpu) / wall


def start_targets(directory: Path, only: set[str] | None = None) -> list[Target]:
    wanted = lambda name: only is None or name in only  # noqa: E731
    targets = []
    plain = {"ENABLE_WEB_INTERFACE": "false", "SUPPORT_ENV_MAX_SESSIONS": "4096"}
    if wanted("memory"):
        memory = Server("memory", ["-m", "server.app"], {**plain, "SUPPORT_ENV_STORE": "memory"})
        targets.append(Target("memory", memory.port, memory.stop, lambda: [memory.process.pid]))
    if wanted("sqlite 1w"):
        one = Server("sqlite 1w", ["-m", "server.app"], {**plain, "SUPPORT_ENV_STORE": f"sqlite://{directory / 'one.db'}"})
        targets.append(Target("sqlite 1w", one.port, one.stop, lambda: [one.process.pid]))
    if wanted("sqlite 2w"):
        two = Server("sqlite 2w", ["-m", "server.app"], {**plain, "SUPPORT_ENV_STORE": f"sqlite://{directory / 'two.db'}", "WEB_CONCURRENCY": "2"})
        targets.append(Target("sqlite 2w", two.port, two.stop, lambda: [two.process.pid]))
    if not (wanted("redis 2r") or wanted("redis 1r direct")):
        return targets
    topology = run_local.LocalTopology(2, settings={"SUPPORT_ENV_MAX_SESSIONS": "4096"}, directory=directory / "topology")
    every = lambda: [r.process.pid for r in topology.replicas] + [topology.redis.process.pid, topology.balancer.process.pid]  # noqa: E731
    targets.append(Target("redis 2r", topology.balancer.port, topology.stop, every))
    # the same processes, replica1 asked directly: what the balancer hop and the catch-up (each
    # replica replays the step the other one logged) add
    first = topology.replicas[0]
    targets.append(Target("redis 1r direct", first.port, lambda: None, lambda: [first.process.pid, topology.redis.process.pid]))
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="timed steps per latency round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated targets to run (default: all)")
    parser.add_argument("--no-latency", action="store_true", help="throughput only")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None

    header("HTTP steps by session store")
    episodes = [({"task_id": TASK, "seed": seed}, reference_actions(TASK, seed)) for seed in SEEDS]
    print(f"   workload: reference policy on {TASK} seeds {SEEDS.start}-{SEEDS.stop - 1} "
          f"({sum(len(a) for _, a in episodes) / len(episodes):.1f} steps per episode)")
    with tempfile.TemporaryDirectory(prefix="bench_stores_") as folder:
        targets = start_targets(Path(folder), only)
        try:
            p50s = {t.name: [] for t in targets}
            p99s = {t.name: [] for t in targets}
            rates = {t.name: [] for t in targets}
            cores = {t.name: [] for t in targets}
            for round_ in range(args.rounds):
                for target in [] if args.no_latency else targets:
                    lat = asyncio.run(latency(target, episodes, args.steps, f"{round_}"))
                    p50s[target.name].append(percentile(lat, 50) * 1e3)
                    p99s[target.name].append(percentile(lat, 99) * 1e3)
                for target in targets:
                    rate, server_cores, client_cores = asyncio.run(throughput(target, episodes, args.clients, args.per_client, f"{round_}"))
                    rates[target.name].append(rate)
                    cores[target.name].append((server_cores, client_cores))
                print(f"   round {round_ + 1}: " + ", ".join(
                    f"{t.name} " + ("" if args.no_latency else f"p50 {p50s[t.name][-1]:.2f} ms, ") + f"{rates[t.name][-1]:.0f}/s ({cores[t.name][-1][0]:.2f} cores)"
                    for t in targets), flush=True)
        finally:
            for target in targets:
                target.stop()

    if args.no_latency:
        for name in rates:
            print(f"   {name}: median {statistics.median(rates[name]):.0f} steps/s, {statistics.median(c[0] for c in cores[name]):.2f} server cores")
        if {"sqlite 1w", "sqlite 2w"} <= set(rates):
            ratios = [two / one for one, two in zip(rates["sqlite 1w"], rates["sqlite 2w"])]
            print(f"   sqlite 2 workers / 1 worker, round by round: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}x")
        return
    med = {name: (statistics.median(p50s[name]), statistics.median(p99s[name]), statistics.median(rates[name])) for name in p50s}
    used = {name: tuple(statistics.median(c[i] for c in cores[name]) for i in (0, 1)) for name in cores}
    base_p50, _, base_rate = med["memory"]
    print(f"\n   medians of {args.rounds} rounds; latency: 1 client, {args.steps} steps a round; throughput: {args.clients} clients x {args.per_client} steps")
    print("   | store | p50 ms | p99 ms | p50 / memory | steps/s | steps/s / memory | server cores | client cores |")
    print("   | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (p50, p99, rate) in med.items():
        print(f"   | {name} | {p50:.2f} | {p99:.2f} | {p50 / base_p50:.2f} | {rate:.0f} | {rate / base_rate:.2f} | {used[name][0]:.2f} | {used[name][1]:.2f} |")
    ratios = [two / one for one, two in zip(rates["sqlite 1w"], rates["sqlite 2w"])]
    print(f"   sqlite 2 workers / 1 worker throughput, round by round: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
