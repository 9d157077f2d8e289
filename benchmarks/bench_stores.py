"""HTTP steps per session store, side by side in one run (SUPPORT_ENV_STORE).

    python benchmarks/bench_stores.py [--steps 600] [--clients 16] [--seconds 5] [--rounds 3]   # ~2.5 min
    python benchmarks/bench_stores.py --only "sqlite 1w,sqlite 2w" --no-latency --rounds 5   # workers' scaling, ~75 s

Servers, all started first and measured in turns (round robin, `--rounds` times;
the median round is reported), so a noisy moment hits them alike:

- memory:    one process, sessions in memory (the single-process default)
- memory behind HAProxy: the same with HAProxy in front (deploy/haproxy.cfg, one
             backend): what the balancer hop costs
- sqlite 1w: one process on an SQLite file
- sqlite 2w: two uvicorn workers on one SQLite file (WEB_CONCURRENCY=2)
- redis 2r:  deploy/'s topology as local processes: redis-server, 2 replicas,
             HAProxy in front (deploy/run_local.py); every request goes through HAProxy,
             which keeps each episode on one replica (a consistent hash of its id)
- redis 1r direct: the same topology's first replica asked directly (no balancer)

Latency: one client, one keep-alive connection, the reference policy's
episodes (hard_mixed_queue, seeds in turn), `--steps` timed steps per round
(resets untimed); p50 and p99 per step. Throughput: `--clients` connections at
once, each playing the episodes in turn under its own episode ids; steps/s
(resets not counted), and the cores the servers (every process of a target) and
the client used meanwhile. The client is wrk (Debian's C load generator, driven
by a Lua script generated from the same episodes) for `--seconds` when it is on
PATH: it takes little CPU from the servers, so 2 workers against 1 shows how the
servers scale. Without it (or with `--client python`) it is an asyncio client in
this process, `--per-client` steps a connection, which takes a good share.

Machine ceiling, in every round: two CPU-bound Python processes at once against
one alone (work done in 2 s), often short of 2x on a VM's cores or next to other
work; the 2 workers' ratio is read against it.

Targets (issue #16): p50 at most 1.3x the memory store's; 2 workers at least
1.7x one worker's throughput on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from statistics import median
from typing import Callable

import _common  # noqa: F401  (puts the project root on sys.path)
from _common import ROOT, RawHttpConnection, Server, header, percentile, reference_actions

sys.path.insert(0, str(ROOT / "deploy"))
import run_local  # noqa: E402

TASK = "hard_mixed_queue"
SEEDS = range(1, 9)
NAMES = ("memory", "memory behind HAProxy", "sqlite 1w", "sqlite 2w", "redis 2r", "redis 1r direct")
SPIN_SECONDS = 2
Episodes = list[tuple[dict, list[dict]]]


class Target:
    def __init__(self, name: str, port: int, pids: Callable[[], list[int]]):
        self.name, self.port, self.pids = name, port, pids


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


# One CPU-bound process: counts loop iterations for argv[1] seconds and prints the count.
SPIN = """
import sys, time
end, count = time.perf_counter() + float(sys.argv[1]), 0
while time.perf_counter() < end:
    for _ in range(10_000):
        pass
    count += 1
print(count)
"""


def spin(processes: int) -> int:
    """Iterations `processes` CPU-bound Python processes do together in SPIN_SECONDS, run at once."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, str(SPIN_SECONDS)], stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return sum(int(spinner.communicate()[0]) for spinner in spinners)


def machine_ceiling() -> float:
    """Work of two CPU-bound processes at once / work of one alone: what 2 workers could gain here."""
    one = spin(1)
    return spin(2) / one


async def play_steps(port: int, episode_prefix: str, episodes: Episodes, steps: int, latencies: list[float] | None) -> int:
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


async def latency(target: Target, episodes: Episodes, steps: int, tag: str) -> list[float]:
    await play_steps(target.port, f"warm-{tag}", episodes, 60, None)
    latencies: list[float] = []
    await play_steps(target.port, f"lat-{tag}", episodes, steps, latencies)
    return latencies


async def python_throughput(target: Target, episodes: Episodes, clients: int, per_client: int, tag: str) -> tuple[float, float, float]:
    """Steps/s, and the cores the servers and this client used meanwhile (CPU seconds / wall seconds)."""
    began, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(target.pids()), time.process_time()
    counts = await asyncio.gather(*(play_steps(target.port, f"tp-{tag}-c{i}", episodes[i % len(episodes):] + episodes[: i % len(episodes)], per_client, None) for i in range(clients)))
    wall = time.perf_counter() - began
    return sum(counts) / wall, (cpu_seconds(target.pids()) - server_cpu) / wall, (time.process_time() - client_cpu) / wall


def long_string(text: str) -> str:
    assert "]==]" not in text, text
    return f"[==[{text}]==]"


def wrk_script(episodes: Episodes) -> str:
    """A wrk Lua script: each thread, one connection, plays the episodes in turn from its own
    offset under its own ids (`<prefix>-w<thread>-<episode>`, the prefix wrk's first argument),
    and counts its steps and its non-200 answers; done() prints one RESULT line.

    Bodies are stored without their opening brace, so the episode id can go in front.
    The first request of each thread is GET /health: wrk calls request() once on the
    first thread without sending what it returns."""
    tail = lambda payload: long_string(json.dumps(payload)[1:])  # noqa: E731
    table = "\n".join(
        f"  {{reset = {tail(start)}, steps = {{{', '.join(tail({'action': action}) for action in actions)}}}}},"
        for start, actions in episodes)
    return f"""-- generated by benchmarks/bench_stores.py
local episodes = {{
{table}
}}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local headers = {{["Content-Type"] = "application/json"}}
  local post = function(path, id, rest)
    return wrk.format("POST", path, headers, '{{"episode_id": "' .. id .. '", ' .. rest)
  end
  first, requests, kinds, next_request = wrk.format("GET", "/health"), {{}}, {{}}, 0
  kind, steps, bad = "health", 0, 0
  for k = 0, #episodes - 1 do
    local e = (tid + k) % #episodes + 1
    local id = args[1] .. "-w" .. tid .. "-" .. e
    table.insert(requests, post("/reset", id, episodes[e].reset))
    table.insert(kinds, "reset")
    for _, step in ipairs(episodes[e].steps) do
      table.insert(requests, post("/step", id, step))
      table.insert(kinds, "step")
    end
  end
end

function request()
  if first then
    local health = first
    first = nil
    return health
  end
  next_request = next_request % #requests + 1
  kind = kinds[next_request]
  return requests[next_request]
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  elseif kind == "step" then
    steps = steps + 1
  end
end

function done(summary, latency, requests)
  local steps, bad = 0, 0
  for _, thread in ipairs(threads) do
    steps = steps + thread:get("steps")
    bad = bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d steps=%d seconds=%.3f bad=%d errors=%d\\n",
    summary.requests, steps, summary.duration / 1e6, bad, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_throughput(target: Target, script: Path, clients: int, seconds: int, prefix: str) -> tuple[float, float, float]:
    """Steps/s by wrk, and the cores the servers and wrk used meanwhile (CPU seconds / wall seconds)."""
    command = ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(script), f"http://127.0.0.1:{target.port}", "--", prefix]
    began, server_cpu, before = time.perf_counter(), cpu_seconds(target.pids()), resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(command, capture_output=True, text=True)
    wall, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cores = (cpu_seconds(target.pids()) - server_cpu) / wall
    found = re.search(r"RESULT requests=(\d+) steps=(\d+) seconds=([\d.]+) bad=(\d+) errors=(\d+)", run.stdout)
    if run.returncode or not found:
        raise SystemExit(f"{target.name}: wrk failed (exit {run.returncode})\n{run.stdout}{run.stderr}")
    requests, steps, bad, errors = (int(found[group]) for group in (1, 2, 4, 5))
    if bad or errors:
        raise SystemExit(f"{target.name}: {bad} answers not 200 and {errors} socket errors in {requests} requests")
    client_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return steps / float(found[3]), server_cores, client_cpu / wall


def start_targets(directory: Path, only: set[str], stack: ExitStack) -> list[Target]:
    """The targets named in `only`, started; `stack` stops them."""
    targets = []
    plain = {"ENABLE_WEB_INTERFACE": "false", "SUPPORT_ENV_MAX_SESSIONS": "4096"}

    def server(name: str, store: str, **settings: str) -> Server:
        started = Server(name, ["-m", "server.app"], {**plain, "SUPPORT_ENV_STORE": store, **settings})
        stack.callback(started.stop)
        return started

    if "memory" in only:
        memory = server("memory", "memory")
        targets.append(Target("memory", memory.port, lambda: [memory.process.pid]))
    if "memory behind HAProxy" in only:
        backend = server("memory behind HAProxy", "memory")
        balancer = run_local.HAProxyProcess({"memory": backend.port})
        stack.callback(balancer.stop)
        targets.append(Target("memory behind HAProxy", balancer.port, lambda: [backend.process.pid, balancer.process.pid]))
    if "sqlite 1w" in only:
        one = server("sqlite 1w", f"sqlite://{directory / 'one.db'}")
        targets.append(Target("sqlite 1w", one.port, lambda: [one.process.pid]))
    if "sqlite 2w" in only:
        two = server("sqlite 2w", f"sqlite://{directory / 'two.db'}", WEB_CONCURRENCY="2")
        targets.append(Target("sqlite 2w", two.port, lambda: [two.process.pid]))
    if only & {"redis 2r", "redis 1r direct"}:
        topology = run_local.LocalTopology(2, settings={"SUPPORT_ENV_MAX_SESSIONS": "4096"}, directory=directory / "topology")
        stack.callback(topology.stop)
        if "redis 2r" in only:
            every = lambda: [r.process.pid for r in topology.replicas] + [topology.redis.process.pid, topology.balancer.process.pid]  # noqa: E731
            targets.append(Target("redis 2r", topology.balancer.port, every))
        if "redis 1r direct" in only:
            first = topology.replicas[0]
            targets.append(Target("redis 1r direct", first.port, lambda: [first.process.pid, topology.redis.process.pid]))
    return targets


def ratio_line(label: str, values: dict[str, float], top: str, bottom: str) -> None:
    if top in values and bottom in values:
        print(f"   {label}: {values[top] / values[bottom]:.2f}")


def report(args: argparse.Namespace, p50s: dict, p99s: dict, rates: dict, cores: dict, ceilings: list[float]) -> None:
    """The medians of the rounds: a table, then the ratios the targets are read by."""
    p50, p99, rate = ({name: median(v) for name, v in values.items() if v} for values in (p50s, p99s, rates))
    used = {name: tuple(median(c[i] for c in cores[name]) for i in (0, 1)) for name in cores}
    relative = lambda values, name: f"{values[name] / values['memory']:.2f}" if "memory" in values else "-"  # noqa: E731
    client = f"wrk, {args.clients} connections x {args.seconds} s" if args.client == "wrk" else f"python, {args.clients} clients x {args.per_client} steps"
    print(f"\n   medians of {args.rounds} rounds; throughput: {client}"
          + ("" if args.no_latency else f"; latency: 1 client, {args.steps} steps a round"))
    columns = ["store"] + ([] if args.no_latency else ["p50 ms", "p99 ms", "p50 / memory"]) + ["steps/s", "steps/s / memory", "server cores", "client cores"]
    print(f"   | {' | '.join(columns)} |")
    print(f"   |{' --- |' * len(columns)}")
    for name in rates:
        latency_cells = [] if args.no_latency else [f"{p50[name]:.2f}", f"{p99[name]:.2f}", relative(p50, name)]
        cells = [name, *latency_cells, f"{rate[name]:.0f}", relative(rate, name), f"{used[name][0]:.2f}", f"{used[name][1]:.2f}"]
        print(f"   | {' | '.join(cells)} |")
    ratio_line("redis 1r direct p50 / memory p50", p50, "redis 1r direct", "memory")
    ratio_line("redis 2r p50 / memory-behind-HAProxy p50", p50, "redis 2r", "memory behind HAProxy")
    ratio_line("redis 2r p50 / memory p50", p50, "redis 2r", "memory")
    print(f"   machine: 2 processes / 1, round by round: {', '.join(f'{c:.2f}' for c in ceilings)}; median {median(ceilings):.2f}x")
    if {"sqlite 1w", "sqlite 2w"} <= set(rates):
        ratios = [two / one for one, two in zip(rates["sqlite 1w"], rates["sqlite 2w"])]
        print(f"   sqlite 2 workers / 1 worker throughput, round by round: {', '.join(f'{r:.2f}' for r in ratios)}; median {median(ratios):.2f}x")
        print(f"   sqlite 2w / 1w median / machine ceiling median: {median(ratios) / median(ceilings):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="timed steps per latency round")
    parser.add_argument("--clients", type=int, default=16, help="throughput connections at once")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python", help="throughput client (default: wrk if on PATH)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per throughput measurement (wrk)")
    parser.add_argument("--per-client", type=int, default=150, help="steps per connection (python client)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help=f"comma-separated targets to run (default: all): {', '.join(NAMES)}")
    parser.add_argument("--no-latency", action="store_true", help="throughput only")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else set(NAMES)
    if only - set(NAMES):
        parser.error(f"unknown targets {', '.join(sorted(only - set(NAMES)))}; known: {', '.join(NAMES)}")

    header("HTTP steps by session store")
    episodes = [({"task_id": TASK, "seed": seed}, reference_actions(TASK, seed)) for seed in SEEDS]
    print(f"   workload: reference policy on {TASK} seeds {SEEDS.start}-{SEEDS.stop - 1} "
          f"({sum(len(a) for _, a in episodes) / len(episodes):.1f} steps per episode); throughput client: {args.client}")
    with tempfile.TemporaryDirectory(prefix="bench_stores_") as folder, ExitStack() as stack:
        script = Path(folder) / "episodes.lua"
        script.write_text(wrk_script(episodes))
        targets = start_targets(Path(folder), only, stack)
        p50s: dict[str, list[float]] = {t.name: [] for t in targets}
        p99s: dict[str, list[float]] = {t.name: [] for t in targets}
        rates: dict[str, list[float]] = {t.name: [] for t in targets}
        cores: dict[str, list[tuple[float, float]]] = {t.name: [] for t in targets}
        ceilings: list[float] = []
        for round_ in range(args.rounds):
            ceilings.append(machine_ceiling())
            for index, target in enumerate([] if args.no_latency else targets):
                lat = asyncio.run(latency(target, episodes, args.steps, f"{index}-{round_}"))
                p50s[target.name].append(percentile(lat, 50) * 1e3)
                p99s[target.name].append(percentile(lat, 99) * 1e3)
            for index, target in enumerate(targets):
                if args.client == "wrk":
                    rate, server_cores, client_cores = wrk_throughput(target, script, args.clients, args.seconds, f"tp{index}")
                else:
                    rate, server_cores, client_cores = asyncio.run(python_throughput(target, episodes, args.clients, args.per_client, f"{index}-{round_}"))
                rates[target.name].append(rate)
                cores[target.name].append((server_cores, client_cores))
            print(f"   round {round_ + 1}: machine: 2 processes / 1 = {ceilings[-1]:.2f}; " + ", ".join(
                f"{t.name} " + ("" if args.no_latency else f"p50 {p50s[t.name][-1]:.2f} ms, ") + f"{rates[t.name][-1]:.0f}/s ({cores[t.name][-1][0]:.2f} cores)"
                for t in targets), flush=True)
    report(args, p50s, p99s, rates, cores, ceilings)


if __name__ == "__main__":
    main()
