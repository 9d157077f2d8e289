"""Our server against the framework floor, same client, same run, loopback only.

    python benchmarks/bench_server.py [--steps 1000] [--clients 64] [--per-client 100] [--repeat 5] [--no-ws-deflate] [--in-place-floor]

Two servers start side by side (each one uvicorn process, measured one at a
time so they never compete for the CPU; `--repeat` rounds of floor, light,
mixed back to back, medians reported, so load from elsewhere hits all alike):

- floor: `benchmarks/echo_floor.py`, an environment that does nothing, served
  by the same OpenEnv `create_app` and `uvicorn.run`. Its cost per step is the
  cost of OpenEnv + FastAPI + uvicorn alone.
- ours: `python -m server.app`, driven with two workloads: `light`, the
  reference policy on easy_classify (classify and close: the cheapest real
  steps, so mostly transport, session lookup and our observation); `mixed`,
  the reference policy on hard_mixed_queue (KB searches, graded replies,
  escalations, the final grade). Both play the canonical episode over and over.

What one "step" is on each transport:

- HTTP: one `POST /step` on a keep-alive connection (a minimal raw HTTP/1.1
  client, one connection per client, so the client stays cheap). Ours looks the session up
  by `episode_id` and steps its live environment (stateful, server/sessions.py).
  The floor uses OpenEnv's default stateless route, which builds a fresh
  EchoEnvironment for the request and steps it (there is no session to find).
  Both are one request, one env.step, one serialised observation.
- /ws: one `step` message and its reply on an open OpenEnv WebSocket session,
  through the same OpenEnv handler on both servers (per-connection environment).
  The floor's plain environment is stepped in its session's worker thread,
  OpenEnv's default; ours overrides `step_async`, so OpenEnv steps it on the
  event loop, as our HTTP routes do. `--in-place-floor` adds a third server, the
  echo environment stepped in place too (ECHO_IN_PLACE=true), and ratios against
  it: what our environment adds to the transport alone. The client offers
  permessage-deflate, as `websockets` and OpenEnv's client do by default. Our
  server accepts it only with SUPPORT_ENV_WS_DEFLATE=true in the environment of
  this script (default false); the floor always does, as uvicorn does by
  default, and compresses every reply on its event loop (`--no-ws-deflate`:
  clients that do not offer it).

Resets (ours: when an episode ends) are sent but never timed. Figures: p50 and
p99 latency per step as the client sees it, steps/s (1 client: steps / time
in timed steps; N clients: all steps / wall time of the phase), server CPU per
step (utime+stime of the server process over the phase / steps, which does
not depend on how fast the client is) and mean reply size. The client runs in
this process; with 2 cores it gets one and the server the other, so at 64
clients the client can be the bottleneck for both servers alike.

Target: ours/floor <= 1.3 at p50 for /ws and HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import _common  # noqa: F401  (puts the project root on sys.path)
import websockets
from _common import RawHttpConnection, Server, floor_server, header, our_server, percentile, reference_actions

FLOOR_ACTION = {"message": "hello"}


@dataclass
class Workload:
    """What a client sends: reset bodies and step actions, cycling through episodes."""

    name: str
    episodes: list[tuple[dict, list[dict]]]  # (reset kwargs, actions) per episode; empty actions = endless echo
    server: str = "ours"  # which server plays it: "ours", "floor" or "floor in place"

    def stream(self):
        """Yields ("reset", kwargs) then ("step", action) ... forever."""
        for reset_kwargs, actions in itertools.cycle(self.episodes):
            yield "reset", reset_kwargs
            if not actions:
                while True:
                    yield "step", FLOOR_ACTION
            for action in actions:
                yield "step", action


def floor_workload() -> Workload:
    return Workload("floor (echo)", [({}, [])], server="floor")


def in_place_floor_workload() -> Workload:
    return Workload("floor in place", [({}, [])], server="floor in place")


def light_workload() -> Workload:
    return Workload("ours light", [({"task_id": "easy_classify"}, reference_actions("easy_classify"))])


def mixed_workload() -> Workload:
    return Workload("ours mixed", [({"task_id": "hard_mixed_queue"}, reference_actions("hard_mixed_queue"))])


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    reply_bytes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    invalid: int = 0  # steps whose observation reports an invalid action (must stay 0: replays are exact)

    @property
    def steps(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        return 1000 * percentile(self.latencies, q)

    def rate(self, concurrent: bool) -> float:
        return self.steps / (self.wall_s if concurrent else sum(self.latencies))

    def cpu_us(self) -> float:
        return 1e6 * self.cpu_s / self.steps


def cpu_seconds(server: Server) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- clients ----------------------------------------------------------------
#
# One loop drives every transport: it walks the workload's stream, sends the
# resets (never timed) and the steps, the first `warm` steps untimed. Warm-up
# steps are really sent, so a stateful session is always where the next action
# expects it; concurrent clients warm up by different amounts and so run at
# different points of their episodes.


async def adrive(reset, step, workload: Workload, warm: int, timed: int, result: Result, ready: asyncio.Event, start: asyncio.Event) -> None:
    stream = workload.stream()
    done = 0
    while done < warm + timed:
        kind, body = next(stream)
        if kind == "reset":
            await reset(body)
            continue
        if done == warm:
            ready.set()
            await start.wait()
        t0 = time.perf_counter()
        reply = await step(body)
        elapsed = time.perf_counter() - t0
        if done >= warm:
            result.latencies.append(elapsed)
            result.reply_bytes += len(reply)
            result.invalid += '"last_action_error":"' in reply
        done += 1


def warmup(i: int, clients: int) -> int:
    """Untimed steps before the start: a single client warms up well; many clients
    warm up by different amounts so they run at different points of their episodes."""
    return 200 if clients == 1 else 2 + i % 17


def _http_body(action: dict, episode_id: str | None) -> dict:
    return {"action": action, "episode_id": episode_id} if episode_id else {"action": action}


def _ok(status: int, body: bytes) -> str:
    text = body.decode()
    assert status == 200, text[:300]
    return text


def _check(reply: str) -> str:
    assert reply.startswith('{"type":"observation"'), reply[:300]
    return reply


def _timed_phase(server: Server, result: Result):
    marks = {}

    def begin() -> None:
        marks["cpu"], marks["wall"] = cpu_seconds(server), time.perf_counter()

    def end() -> None:
        result.wall_s = time.perf_counter() - marks["wall"]
        result.cpu_s = cpu_seconds(server) - marks["cpu"]

    return begin, end


async def _concurrent(server: Server, clients: int, run_client) -> Result:
    """Start `clients` coroutines, wait until all have warmed up, then time them together."""
    result = Result()
    begin, end = _timed_phase(server, result)
    start = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = [asyncio.create_task(run_client(i, result, readies[i], start)) for i in range(clients)]
    waiting = asyncio.ensure_future(asyncio.gather(*(r.wait() for r in readies)))
    done, _ = await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not waiting:  # a client ended before the start: it failed
            waiting.cancel()
            for other in tasks:
                other.cancel()
            task.result()
            raise RuntimeError("a client ended during warm-up")
    begin()
    start.set()
    await asyncio.gather(*tasks)
    end()
    return result


async def http_concurrent(server: Server, workload: Workload, clients: int, per_client: int, stateful: bool) -> Result:
    async def run_client(i: int, result: Result, ready: asyncio.Event, start: asyncio.Event) -> None:
        episode_id = f"bench-{workload.name.replace(' ', '-')}-{clients}-c{i}" if stateful else None  # reused every round
        async with RawHttpConnection("127.0.0.1", server.port) as http:

            async def reset(body: dict) -> None:
                if stateful:
                    _ok(*await http.request("POST", "/reset", json.dumps({**body, "episode_id": episode_id}).encode()))

            async def step(action: dict) -> str:
                return _ok(*await http.request("POST", "/step", json.dumps(_http_body(action, episode_id)).encode()))

            await adrive(reset, step, workload, warmup(i, clients), per_client, result, ready, start)

    return await _concurrent(server, clients, run_client)


async def ws_concurrent(server: Server, workload: Workload, clients: int, per_client: int, deflate: bool = True) -> Result:
    async def run_client(i: int, result: Result, ready: asyncio.Event, start: asyncio.Event) -> None:
        # `websockets` (and OpenEnv's client, which uses it) offers permessage-deflate
        # by default and uvicorn accepts it: every reply is compressed on the event loop.
        async with websockets.connect(server.ws_url, max_size=None, compression="deflate" if deflate else None) as ws:

            async def call(message: dict) -> str:
                await ws.send(json.dumps(message))
                return _check(await ws.recv())

            async def reset(body: dict) -> None:
                await call({"type": "reset", "data": body})

            async def step(action: dict) -> str:
                return await call({"type": "step", "data": action})

            await adrive(reset, step, workload, warmup(i, clients), per_client, result, ready, start)

    return await _concurrent(server, clients, run_client)


# --- report -----------------------------------------------------------------


def measure(server: Server, workload: Workload, stateful: bool, args) -> dict[str, Result]:
    return {
        "HTTP, 1 client": asyncio.run(http_concurrent(server, workload, 1, args.steps, stateful)),
        "/ws, 1 client": asyncio.run(ws_concurrent(server, workload, 1, args.steps, args.ws_deflate)),
        f"HTTP, {args.clients} clients": asyncio.run(http_concurrent(server, workload, args.clients, args.per_client, stateful)),
        f"/ws, {args.clients} clients": asyncio.run(ws_concurrent(server, workload, args.clients, args.per_client, args.ws_deflate)),
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per single-client run")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument("--per-client", type=int, default=100, help="timed steps per concurrent client")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (floor, light, mixed back to back); medians are reported")
    parser.add_argument(
        "--no-ws-deflate", dest="ws_deflate", action="store_false",
        help="/ws clients do not offer permessage-deflate (default: they do, as OpenEnv's client does), "
        "so replies go uncompressed: what serving with uvicorn's ws_per_message_deflate=False would give",
    )
    parser.add_argument(
        "--in-place-floor", action="store_true",
        help="also measure the echo environment stepped on the event loop (as ours is over /ws), and ratios against it",
    )
    args = parser.parse_args()

    header("bench_server: our server vs the OpenEnv framework floor (echo env, same create_app, same client)")
    print(__doc__[__doc__.index("What one"):__doc__.index("Target")].rstrip().replace("\n", "\n   ").join(["   ", ""]))
    print(f"   /ws clients offer permessage-deflate: {'yes (the default)' if args.ws_deflate else 'no (--no-ws-deflate)'}")
    floors = [floor_workload(), *([in_place_floor_workload()] if args.in_place_floor else [])]
    workloads = [*floors, light_workload(), mixed_workload()]
    rounds: list[dict[str, dict[str, Result]]] = []
    settings = {"SUPPORT_ENV_MAX_SESSIONS": str(max(256, 2 * args.clients))}
    started = time.perf_counter()
    with ExitStack() as stack:
        servers = {"floor": stack.enter_context(floor_server(**settings)), "ours": stack.enter_context(our_server(**settings))}
        if args.in_place_floor:
            servers["floor in place"] = stack.enter_context(floor_server(**settings, ECHO_IN_PLACE="true"))
        for n in range(args.repeat):
            results: dict[str, dict[str, Result]] = {}
            for workload in workloads:
                results[workload.name] = measure(servers[workload.server], workload, workload.server == "ours", args)
            rounds.append(results)
            print(f"   round {n + 1}/{args.repeat} measured ({time.perf_counter() - started:.0f} s)", flush=True)

    names = [w.name for w in workloads]
    ours = [w.name for w in workloads if w.server == "ours"]
    modes = list(rounds[0][names[0]])

    def stat(name: str, mode: str, fn) -> float:
        return median([fn(r[name][mode]) for r in rounds])

    def concurrent(mode: str) -> bool:
        return not mode.endswith(" 1 client")

    print(f"\n   medians of {args.repeat} rounds")
    print(f"   {'transport':16} {'server':14} {'p50 ms':>8} {'p99 ms':>8} {'steps/s':>9} {'srv CPU us/step':>16} {'reply B':>8} {'invalid':>7}")
    for mode in modes:
        for name in names:
            print(
                f"   {mode:16} {name:14} {stat(name, mode, lambda r: r.p(50)):8.2f} {stat(name, mode, lambda r: r.p(99)):8.2f}"
                f" {stat(name, mode, lambda r: r.rate(concurrent(mode))):9,.0f} {stat(name, mode, Result.cpu_us):16,.0f}"
                f" {stat(name, mode, lambda r: r.reply_bytes / r.steps):8,.0f} {sum(r[name][mode].invalid for r in rounds):7d}"
            )
        print()
    for floor in floors:
        print(f"   ratio ours/{floor.name}, median over rounds of the per-round ratio (latency p50, p99; server CPU")
        print("   per step; throughput as floor steps/s / ours, so > 1 means ours serves fewer)")
        for mode in modes:
            for name in ours:
                def ratio(fn, inverse=False):
                    values = [fn(r[name][mode]) / fn(r[floor.name][mode]) for r in rounds]
                    return median([1 / v for v in values] if inverse else values)

                print(
                    f"   {mode:16} {name:11} p50 x{ratio(lambda r: r.p(50)):5.2f}  p99 x{ratio(lambda r: r.p(99)):5.2f}"
                    f"  CPU/step x{ratio(Result.cpu_us):5.2f}  throughput x{ratio(lambda r: r.rate(concurrent(mode)), inverse=True):5.2f}"
                )
        print()
    print(f"   total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
