"""Memory per session, reclaim after expiry, and churn, on live servers.

    python benchmarks/bench_sessions.py [--sessions 1000] [--churn 4000] [--ttl 10]   # ~2 min

(`--churn 10000`, the churn the target names, adds about a minute.)

RSS is the server process's VmRSS (Linux /proc). Every episode is played to
its end with the reference policy's actions (every task in turn), and its
final grade is checked against the same episode played in process.

1. /ws: `--sessions` WebSocket connections open at once (each resets, waits
   until all are open, plays to the end, waits again, closes), on a server
   with the default TTL: opening them all takes longer than a short TTL.
   The framework floor (echo env) gets the same, for what any OpenEnv
   WebSocket session costs (an environment and an executor thread each).
2. HTTP, on a server with SUPPORT_ENV_SESSION_TTL=`--ttl`: `--sessions`
   episode ids reset, then stepped in rounds (one step per session per
   round) until all are over, so all are alive at once.
3. Reclaim: after `--ttl` seconds idle the HTTP sessions expire (the store
   drops expired sessions on its next request); sampled old ids answer 404.
4. Churn: `--churn` short episodes (easy_classify, 10 steps), 32 at a time.
   Half go over HTTP with a fresh episode id each, in two equal rounds, each
   followed by expiry. Growth is RSS after the second round's expiry minus RSS
   after the first's: the rounds are alike, so memory that is reused shows as
   no growth, however many sessions a round has alive at its peak (that
   depends on how fast it runs against the TTL). Then half over /ws with a
   fresh connection every `--ws-reuse` episodes (growth: RSS after they are
   closed minus RSS before).
5. Allocator, in a fresh process (a clean heap): `--sessions` finished
   environments built and dropped; Python's live memory blocks, CPython's allocator arenas and RSS
   before, with them, after dropping them, and after glibc's malloc_trim(0).
   It shows why a server's RSS stays up once its sessions are gone.

Target: < 200 KB per live session; no growth after the churn.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project root on sys.path)
import websockets
from _common import RawHttpConnection, Server, floor_server, header, our_server, reference_actions

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.episodes.catalogue import TASK_IDS

HTTP_CONNECTIONS = 32
OPENING_AT_ONCE = 16
OPEN_SECONDS: dict[str, float] = {}  # label -> seconds to open all /ws sessions
CHURN_PARALLEL = 32


def expected_grades() -> dict[str, float]:
    grades = {}
    for task_id in TASK_IDS:
        env = SupportEnvironment()
        env.reset(task_id=task_id)
        for action in reference_actions(task_id):
            observation = env.step(SupportAction(**action))
        grades[task_id] = observation.grade.score
    return grades


class Tally:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.finished = 0
        self.wrong_grades = 0

    def episode_end(self, reply: dict, task_id: str, grades: dict[str, float]) -> None:
        self.finished += 1
        grade = (reply.get("observation") or {}).get("grade") or {}
        if grade.get("score") != grades[task_id]:
            self.wrong_grades += 1

    def line(self) -> str:
        first = f" (first: {self.errors[0][:160]})" if self.errors else ""
        return f"episodes finished {self.finished}, grades differing from in-process {self.wrong_grades}, errors {len(self.errors)}{first}"


# --- HTTP -------------------------------------------------------------------


async def http_sessions(server: Server, ids: list[str], tasks: dict[str, str], plays: dict[str, list[bytes]], grades, tally: Tally, rss: dict, label: str) -> None:
    """Reset every id, then step them all in rounds until every episode is over."""
    connections = [await RawHttpConnection("127.0.0.1", server.port).__aenter__() for _ in range(HTTP_CONNECTIONS)]
    slices = [ids[i::HTTP_CONNECTIONS] for i in range(HTTP_CONNECTIONS)]

    async def reset_all(http: RawHttpConnection, mine: list[str]) -> None:
        for episode_id in mine:
            status, body = await http.request("POST", "/reset", json.dumps({"task_id": tasks[episode_id], "episode_id": episode_id}).encode())
            if status != 200:
                tally.errors.append(f"reset {status} {body[:200]!r}")

    async def step_round(http: RawHttpConnection, mine: list[str], n: int) -> None:
        for episode_id in mine:
            actions = plays[tasks[episode_id]]
            if n >= len(actions):
                continue
            status, body = await http.request("POST", "/step", actions[n].replace(b"@ID@", episode_id.encode()))
            if status != 200:
                tally.errors.append(f"step {status} {body[:200]!r}")
                continue
            reply = json.loads(body)
            if reply["observation"].get("last_action_error"):
                tally.errors.append(f"invalid action: {reply['observation']['last_action_error']}")
            if n == len(actions) - 1:
                tally.episode_end(reply, tasks[episode_id], grades)

    await asyncio.gather(*(reset_all(c, s) for c, s in zip(connections, slices)))
    rss[f"{label}: {len(ids)} HTTP sessions just reset"] = server.rss_kb()
    longest = max(len(plays[t]) for t in set(tasks.values()))
    for n in range(longest):
        await asyncio.gather(*(step_round(c, s, n) for c, s in zip(connections, slices)))
        if n == longest // 2:
            rss[f"{label}: {len(ids)} HTTP sessions mid-episode"] = server.rss_kb()
    rss[f"{label}: {len(ids)} HTTP sessions finished (held until expiry)"] = server.rss_kb()
    for c in connections:
        await c.__aexit__()


# --- WebSocket --------------------------------------------------------------


async def ws_sessions(server: Server, count: int, task_of, plays: dict[str, list[dict]] | None, grades, tally: Tally, rss: dict, label: str) -> None:
    """`count` connections open at once; each resets, waits for all, plays to the end, waits, closes."""
    all_reset, all_done = asyncio.Event(), asyncio.Event()
    counters = {"reset": 0, "done": 0}

    opening = asyncio.Semaphore(OPENING_AT_ONCE)

    async def client(i: int) -> None:
        task_id = task_of(i)
        async with opening:  # the server builds one environment per connection, one after another
            ws = await websockets.connect(server.ws_url, max_size=None, open_timeout=600, ping_interval=None)
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": task_id} if plays else {}}))
            reply = json.loads(await ws.recv())
        async with ws:
            if reply.get("type") != "observation":
                tally.errors.append(f"ws reset: {reply}")
            counters["reset"] += 1
            if counters["reset"] == count:
                all_reset.set()
            await all_reset.wait()
            actions = plays[task_id] if plays else [{"message": "hello"}] * 5
            for n, action in enumerate(actions):
                await ws.send(json.dumps({"type": "step", "data": action}))
                reply = json.loads(await ws.recv())
                if reply.get("type") != "observation":
                    tally.errors.append(f"ws step: {str(reply)[:200]}")
                    break
                if plays and reply["data"]["observation"].get("last_action_error"):
                    tally.errors.append(f"invalid action: {reply['data']['observation']['last_action_error']}")
                if plays and n == len(actions) - 1:
                    tally.episode_end(reply["data"], task_id, grades)
            counters["done"] += 1
            if counters["done"] == count:
                all_done.set()
            await all_done.wait()

    started = time.perf_counter()

    async def watch() -> None:
        await all_reset.wait()
        OPEN_SECONDS[label] = time.perf_counter() - started
        await asyncio.sleep(0.5)
        rss[f"{label}: {count} /ws sessions open, just reset"] = server.rss_kb()
        await all_done.wait()
        await asyncio.sleep(0.5)
        rss[f"{label}: {count} /ws sessions open, finished"] = server.rss_kb()

    await asyncio.gather(watch(), *(client(i) for i in range(count)))
    await asyncio.sleep(1.0)  # the server destroys each session as its connection closes
    rss[f"{label}: all /ws connections closed"] = server.rss_kb()


# --- churn ------------------------------------------------------------------


async def churn(server: Server, episodes: int, transport: str, ws_reuse: int, actions: list[dict], tally: Tally, grades) -> float:
    """`episodes` short episodes over one transport: over HTTP each under a fresh episode
    id (a new session every time; finished ones give up their slot or expire), over
    /ws with a fresh connection (so a new session) every `ws_reuse` episodes."""
    http_payloads = [json.dumps({"action": a, "episode_id": "@ID@"}).encode() for a in actions]
    ws_payloads = [json.dumps({"type": "step", "data": a}) for a in actions]
    http_queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(episodes if transport == "HTTP" else 0):
        http_queue.put_nowait(i)
    ws_batches: asyncio.Queue[int] = asyncio.Queue()
    ws_total = episodes if transport == "/ws" else 0
    for start in range(0, ws_total, ws_reuse):
        ws_batches.put_nowait(min(ws_reuse, ws_total - start))

    async def http_worker() -> None:
        async with RawHttpConnection("127.0.0.1", server.port) as http:
            while not http_queue.empty():
                episode_id = f"churn-{http_queue.get_nowait()}".encode()
                await http.request("POST", "/reset", b'{"task_id":"easy_classify","episode_id":"' + episode_id + b'"}')
                for k, payload in enumerate(http_payloads):
                    status, body = await http.request("POST", "/step", payload.replace(b"@ID@", episode_id))
                    if status != 200:
                        tally.errors.append(f"churn step {status} {body[:200]!r}")
                        break
                    if k == len(http_payloads) - 1:
                        tally.episode_end(json.loads(body), "easy_classify", grades)

    async def ws_worker() -> None:
        while not ws_batches.empty():
            batch = ws_batches.get_nowait()
            async with websockets.connect(server.ws_url, max_size=None, ping_interval=None) as ws:
                for _ in range(batch):
                    await ws.send('{"type":"reset","data":{"task_id":"easy_classify"}}')
                    await ws.recv()
                    for k, payload in enumerate(ws_payloads):
                        await ws.send(payload)
                        reply = json.loads(await ws.recv())
                        if reply.get("type") != "observation":
                            tally.errors.append(f"churn ws {str(reply)[:200]}")
                            break
                        if k == len(ws_payloads) - 1:
                            tally.episode_end(reply["data"], "easy_classify", grades)

    start = time.perf_counter()
    await asyncio.gather(*(http_worker() if transport == "HTTP" else ws_worker() for _ in range(CHURN_PARALLEL)))
    return time.perf_counter() - start


async def expire(server: Server, ttl: float, sample_ids: list[str]) -> int:
    """Wait out the TTL, make one request (the store expires on access), count old ids still answering."""
    await asyncio.sleep(ttl + 1.0)
    alive = 0
    async with RawHttpConnection("127.0.0.1", server.port) as http:
        for episode_id in sample_ids:
            status, _ = await http.request("GET", f"/state?episode_id={episode_id}")
            alive += status != 404
    await asyncio.sleep(0.5)
    return alive


def _own_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def _arenas() -> int:
    """CPython's small-object allocator arenas (1 MiB each) in use, from sys._debugmallocstats (C stderr)."""
    with tempfile.TemporaryFile("w+") as capture:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        found = re.search(r"# arenas allocated current\s+=\s+([\d,]+)", capture.read())
    return int(found.group(1).replace(",", "")) if found else -1


def allocator_check(count: int, plays: dict[str, list[dict]]) -> list[str]:
    """Finished environments, built and dropped in this process: is the memory
    freed (Python's live blocks), and why does RSS not fall (arenas, malloc_trim)?"""
    actions = {t: [SupportAction(**a) for a in acts] for t, acts in plays.items()}
    gc.collect()
    rows = [("before", _own_rss_kb(), sys.getallocatedblocks(), _arenas())]
    envs = []
    for i in range(count):
        task_id = TASK_IDS[i % len(TASK_IDS)]
        env = SupportEnvironment()
        env.reset(task_id=task_id)
        for action in actions[task_id]:
            env.step(action)
        envs.append(env)
    gc.collect()
    rows.append((f"{count} finished environments alive", _own_rss_kb(), sys.getallocatedblocks(), _arenas()))
    del envs, env
    gc.collect()
    rows.append(("all dropped, gc.collect()", _own_rss_kb(), sys.getallocatedblocks(), _arenas()))
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        rows.append(("then glibc malloc_trim(0)", _own_rss_kb(), sys.getallocatedblocks(), _arenas()))
    except OSError:
        pass
    rss0, blocks0, arenas0 = rows[0][1:]
    return [f"{what:36} RSS {mb(rss - rss0).strip():>8} over   live blocks {blocks - blocks0:+9,}   arenas {arenas:5} ({arenas - arenas0:+d})"
            for what, rss, blocks, arenas in rows]


def mb(kb: int) -> str:
    return f"{kb / 1024:7.1f} MB"


async def run(args) -> None:
    grades = expected_grades()
    plays_dicts = {t: reference_actions(t) for t in TASK_IDS}
    plays_http = {t: [json.dumps({"action": a, "episode_id": "@ID@"}).encode() for a in acts] for t, acts in plays_dicts.items()}
    n = args.sessions
    cap = str(n + 100)
    rss: dict[str, int] = {}
    ws_rss: dict[str, int] = {}
    floor_rss: dict[str, int] = {}
    tally = Tally()
    started = time.perf_counter()

    def phase(name: str) -> None:
        print(f"   {time.perf_counter() - started:6.1f} s  {name}", flush=True)

    # /ws sessions need a TTL longer than it takes to open them all (each one idles
    # until the last is open), so they get their own servers with the default TTL.
    phase(f"floor: {n} /ws sessions")
    with floor_server(SUPPORT_ENV_MAX_SESSIONS=cap) as floor:
        floor_rss["before"] = floor.rss_kb()
        await ws_sessions(floor, n, lambda i: "", None, grades, Tally(), floor_rss, "floor")
    phase(f"ours: {n} /ws sessions")
    with our_server(SUPPORT_ENV_MAX_SESSIONS=cap) as server:
        await ws_sessions(server, 3, lambda i: TASK_IDS[i], plays_dicts, grades, Tally(), {}, "warm")
        ws_rss["before"] = server.rss_kb()
        await ws_sessions(server, n, lambda i: TASK_IDS[i % len(TASK_IDS)], plays_dicts, grades, tally, ws_rss, "/ws")

    with our_server(SUPPORT_ENV_MAX_SESSIONS=cap, SUPPORT_ENV_SESSION_TTL=str(args.ttl)) as server:
        phase("ours: warm-up")
        warm_ids = [f"warm-{i}" for i in range(3)]
        await http_sessions(server, warm_ids, dict(zip(warm_ids, TASK_IDS)), plays_http, grades, Tally(), {}, "warm")
        await ws_sessions(server, 3, lambda i: TASK_IDS[i], plays_dicts, grades, Tally(), {}, "warm")
        await expire(server, args.ttl, warm_ids)
        baseline = server.rss_kb()
        rss["baseline after warm-up"] = baseline

        phase(f"ours: {n} HTTP sessions")
        ids = [f"s{i}" for i in range(n)]
        await http_sessions(server, ids, {e: TASK_IDS[i % len(TASK_IDS)] for i, e in enumerate(ids)}, plays_http, grades, tally, rss, "HTTP")
        phase("ours: expiry")
        alive = await expire(server, args.ttl, ids[:50])
        rss[f"HTTP: after expiry ({alive} of 50 sampled old ids still answer)"] = after_expiry = server.rss_kb()

        half = args.churn // 2
        churn_s, after_round = 0.0, []
        for round_ in (1, 2):
            phase(f"ours: churn round {round_}, {half // 2} episodes over HTTP")
            churn_s += await churn(server, half // 2, "HTTP", args.ws_reuse, plays_dicts["easy_classify"], tally, grades)
            rss[f"churn round {round_}: right after {half // 2} HTTP episodes"] = server.rss_kb()
            phase("ours: expiry")
            alive = await expire(server, args.ttl, [f"churn-{i}" for i in range(50)])
            after = rss[f"churn round {round_}: after expiry ({alive} of 50 sampled old ids still answer)"] = server.rss_kb()
            after_round.append(after)
        after_http_churn = after_round[-1]
        phase(f"ours: churn of {half} episodes over /ws")
        churn_s += await churn(server, half, "/ws", args.ws_reuse, plays_dicts["easy_classify"], tally, grades)
        await asyncio.sleep(1.0)
        rss[f"churn: after {half} /ws episodes, connections closed"] = after_churn = server.rss_kb()
    phase(f"fresh process: allocator check with {n} finished environments")
    allocator = subprocess.run(
        [sys.executable, __file__, "--allocator-check", str(n)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    phase("done")

    print(f"\n   {'HTTP sessions (server with SUPPORT_ENV_SESSION_TTL=' + format(args.ttl, 'g') + ')':66} {'RSS':>10} {'over baseline':>14}")
    for moment, kb in rss.items():
        print(f"   {moment:66} {mb(kb)} {mb(kb - baseline)}")
    for title, table in (("/ws sessions, ours", ws_rss), ("/ws sessions, framework floor (echo env)", floor_rss)):
        print(f"\n   {title:66} {'RSS':>10} {'over before':>14}")
        for moment, kb in table.items():
            print(f"   {moment:66} {mb(kb)} {mb(kb - table['before'])}")

    def per(table: dict[str, int], key: str, base: int) -> str:
        return f"{(table[key] - base) / n:7.1f} KB"

    print(f"\n   per live session (RSS growth over {n} sessions / {n}):")
    print(f"     HTTP, just reset                  {per(rss, f'HTTP: {n} HTTP sessions just reset', baseline)}")
    print(f"     HTTP, finished episode            {per(rss, f'HTTP: {n} HTTP sessions finished (held until expiry)', baseline)}   (history, replies and grade kept until expiry)")
    print(f"     /ws, just reset                   {per(ws_rss, f'/ws: {n} /ws sessions open, just reset', ws_rss['before'])}   (connection and environment; steps run on the event loop, so no executor thread)")
    print(f"     /ws, finished episode             {per(ws_rss, f'/ws: {n} /ws sessions open, finished', ws_rss['before'])}")
    print(f"     floor /ws, just reset (echo env)  {per(floor_rss, f'floor: {n} /ws sessions open, just reset', floor_rss['before'])}   (what any OpenEnv WebSocket session costs)")
    for label, title in (("floor", "floor (echo env)"), ("/ws", "ours")):
        print(f"   opening {n} /ws sessions ({OPENING_AT_ONCE} at a time), {title}: {OPEN_SECONDS[label]:.1f} s = {1000 * OPEN_SECONDS[label] / n:.0f} ms each")
    print(f"\n   HTTP reclaim: RSS after expiry is {mb(after_expiry - baseline).strip()} over baseline "
          f"(peak {mb(max(rss.values()) - baseline).strip()} over)")
    print(f"   /ws reclaim: RSS after all connections closed is {mb(ws_rss['/ws: all /ws connections closed'] - ws_rss['before']).strip()} over before "
          f"(floor: {mb(floor_rss['floor: all /ws connections closed'] - floor_rss['before']).strip()})")
    print(f"   churn: {args.churn} episodes ({args.churn * len(plays_dicts['easy_classify'])} steps; HTTP: a fresh id each; "
          f"/ws: a fresh connection every {args.ws_reuse}) in {churn_s:.1f} s = {args.churn / churn_s:,.0f} episodes/s")
    print(f"   growth over the HTTP churn (after round 2's expiry vs after round 1's): {mb(after_round[1] - after_round[0]).strip()}")
    print(f"   growth over the /ws churn ({half // args.ws_reuse} sessions opened and closed): {mb(after_churn - after_http_churn).strip()}")
    print(f"   {tally.line()}")
    print(f"\n   allocator, in a fresh process ({n} finished environments built, then dropped):")
    for line in allocator:
        print(f"     {line}")
    print(f"   total run time {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--churn", type=int, default=4000, help="short episodes churned, half over HTTP, half over /ws (the target: 10000)")
    parser.add_argument("--ttl", type=float, default=10.0, help="SUPPORT_ENV_SESSION_TTL for the HTTP/churn server")
    parser.add_argument("--ws-reuse", type=int, default=25, help="churn: episodes per /ws connection before a fresh one")
    parser.add_argument("--allocator-check", type=int, metavar="N", help=argparse.SUPPRESS)  # step 5, run in a child
    args = parser.parse_args()
    if args.allocator_check:
        print("\n".join(allocator_check(args.allocator_check, {t: reference_actions(t) for t in TASK_IDS})))
        return
    header("bench_sessions: memory per session, reclaim after expiry, churn")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
