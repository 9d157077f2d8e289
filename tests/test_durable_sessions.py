"""Durable HTTP sessions (SUPPORT_ENV_STORE), with the real things: SQLite files, a
redis-server and HAProxy started by the tests (Debian's; .ci/run installs them).

- Steps alternating between 2 replicas give the solo run's observations; the
  trajectory route gives the log, the grade once done. The balancer keeps each
  episode on one replica (a hash of its id) and spreads episodes over both.
- kill -9 of a replica mid-episode: the next step lands on the other, nothing lost.
- A single server on SQLite killed and restarted mid-episode: every running HTTP
  session (the default one too) continues.
- 2 worker processes on one SQLite file: no step answered 404.
- Two clients stepping one episode at once, through two processes: every action
  is in the log exactly once, in each client's order, with the rewards a replay gives.
- A store that goes away: 503 saying so, never a 500; after it is back the episode
  continues from the last acknowledged step.
- A dropped /ws connection resumes its episode by id, in another process; MCP sessions are logged
  too, and their ids work in any process and through the balancer.
- Bad SUPPORT_ENV_STORE values stop start-up with one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pytest
import websockets

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.access.mcp_tools import as_tool_call
from support_env.access import compact
from fastmcp import Client as McpClient

from .conftest import ROOT, LoggedServer, free_port, to_observation

sys.path.insert(0, str(ROOT / "deploy"))
import run_local  # noqa: E402  (deploy/run_local.py: the compose topology as local processes)

needs_redis = pytest.mark.skipif(run_local.redis_binary() is None, reason="redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (Debian: apt-get install haproxy; .ci/run does)")

EPISODE = {"task_id": "hard_mixed_queue", "seed": 11}


def comparable(observation: SupportObservation) -> dict:
    return observation.model_dump(exclude={"episode_id", "metadata"})


def solo(start: dict) -> tuple[list[SupportAction], list[dict]]:
    """The reference policy's actions for `start`, and the observations they get in process."""
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(**start), env.step)
    assert len(rollout.actions) >= 6
    return rollout.actions, [comparable(o) for o in rollout.observations]


def payload(action: SupportAction) -> dict:
    return action.model_dump(exclude_none=True, exclude={"metadata"})


def step(client: httpx.Client, episode_id: str | None, action: SupportAction) -> httpx.Response:
    body = {"action": payload(action)} | ({"episode_id": episode_id} if episode_id else {})
    return client.post("/step", json=body)


def observed(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return comparable(to_observation(response.json()))


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    """Redis, 2 replicas and HAProxy with deploy/haproxy.cfg, as deploy/docker-compose.yml runs them."""
    if run_local.redis_binary() is None or shutil.which("haproxy") is None:
        pytest.skip("needs redis-server and haproxy (Debian packages; .ci/run installs them)")
    with run_local.LocalTopology(2, directory=tmp_path_factory.mktemp("topology")) as live:
        yield live


@needs_redis
@needs_haproxy
def test_an_episode_stepped_on_both_replicas_in_turn_gives_the_solo_runs_observations(topology):
    """Every step on the other replica than the last: each one first replays the step the
    other logged. The trajectory, asked through the balancer, is the log."""
    actions, expected = solo(EPISODE)
    replicas = [httpx.Client(base_url=replica.url, timeout=30) for replica in topology.replicas]
    try:
        got = [observed(replicas[0].post("/reset", json={**EPISODE, "episode_id": "alternating-1"}))]
        got += [observed(step(replicas[(i + 1) % 2], "alternating-1", action)) for i, action in enumerate(actions)]
    finally:
        for client in replicas:
            client.close()
    assert got == expected
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        trajectory = client.get("/episodes/alternating-1/trajectory").json()
        assert trajectory["reset"] == EPISODE
        assert trajectory["actions"] == [payload(a) for a in actions]
        assert trajectory["rewards"] == [o["reward"] for o in expected[1:]]
        assert trajectory["done"] is True and trajectory["grade"] == expected[-1]["grade"]
        assert client.get("/episodes/no-such-episode/trajectory").status_code == 404


@needs_redis
@needs_haproxy
def test_the_balancer_keeps_each_episode_on_one_replica_and_spreads_episodes_over_both(topology):
    """deploy/haproxy.cfg hashes the episode id wherever a request names it (the /reset and
    /step body, /state's query, the trajectory's path), so an episode's requests all land on
    one replica; different episodes land on both, and requests naming none are spread."""
    actions, expected = solo(EPISODE)
    homes = {}
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        for n in range(8):
            episode_id = f"balanced-{n}"
            reset = client.post("/reset", json={**EPISODE, "episode_id": episode_id})
            served_by = {reset.headers["x-served-by"]}
            got = [observed(reset)]
            for action in actions if n == 0 else actions[:3]:
                response = step(client, episode_id, action)
                served_by.add(response.headers["x-served-by"])
                got.append(observed(response))
            served_by.add(client.get("/state", params={"episode_id": episode_id}).headers["x-served-by"])
            served_by.add(client.get(f"/episodes/{episode_id}/trajectory").headers["x-served-by"])
            assert len(served_by) == 1, (episode_id, served_by)
            assert got == expected[: len(got)]
            homes[episode_id] = served_by.pop()
        assert set(homes.values()) == {"replica1", "replica2"}, homes
        unnamed = {client.get("/health").headers["x-served-by"] for _ in range(8)}
        assert unnamed == {"replica1", "replica2"}


@needs_redis
@needs_haproxy
def test_a_replica_killed_mid_episode_and_the_next_step_lands_on_the_other_with_nothing_lost(topology):
    actions, expected = solo(EPISODE)
    half = len(actions) // 2
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        reset = client.post("/reset", json={**EPISODE, "episode_id": "killed-1"})
        got = [observed(reset)]
        got += [observed(step(client, "killed-1", action)) for action in actions[:half]]
        before = client.get("/episodes/killed-1/trajectory").json()
        assert before["done"] is False and before["grade"] is None  # nothing graded before the end

        home = reset.headers["x-served-by"]  # the replica that holds the episode live
        victim = topology.replicas[int(home[-1]) - 1]
        victim.kill()  # SIGKILL mid-episode
        try:
            for action in actions[half:]:
                response = step(client, "killed-1", action)
                assert response.headers["x-served-by"] != home
                got.append(observed(response))
        finally:
            victim.start()
    assert got == expected


@needs_redis
@needs_haproxy
def test_two_clients_stepping_one_episode_at_once_through_two_replicas_never_corrupt_its_log(topology):
    replicas = [replica.url for replica in topology.replicas]
    two_clients_one_episode(replicas)


def two_clients_one_episode(urls: list[str], steps_each: int = 20) -> None:
    """Two threads step one episode at once, each through its own server process, with
    actions that say whose they are; the log must hold each exactly once, in each
    client's order, with the rewards an in-process replay of the log gives, and each
    client must have been answered with its action's logged reward."""
    start = {"task_id": "hard_mixed_queue"}
    with httpx.Client(base_url=urls[0], timeout=30) as client:
        assert client.post("/reset", json={**start, "episode_id": "contended"}).status_code == 200
    answers: dict[str, list[float]] = {"a": [], "b": []}
    problems: list[str] = []

    def client_steps(name: str, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(steps_each):
                action = SupportAction(action_type="search_kb", query=f"client {name} step {i} refund")
                response = step(client, "contended", action)
                if response.status_code != 200:
                    problems.append(f"{name} {i}: {response.status_code} {response.text}")
                    return
                answers[name].append(response.json()["reward"])

    threads = [threading.Thread(target=client_steps, args=(name, url)) for name, url in zip("ab", urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems

    with httpx.Client(base_url=urls[1], timeout=30) as client:
        log = client.get("/episodes/contended/trajectory").json()
    queries = [action["query"] for action in log["actions"]]
    assert len(queries) == 2 * steps_each
    for name in "ab":
        mine = [q for q in queries if q.startswith(f"client {name} ")]
        assert mine == [f"client {name} step {i} refund" for i in range(steps_each)]
        assert [r for q, r in zip(queries, log["rewards"]) if q.startswith(f"client {name} ")] == answers[name]
    env = SupportEnvironment()
    env.reset(**start)
    assert [env.step(SupportAction.model_validate(action)).reward for action in log["actions"]] == log["rewards"]


@pytest.fixture(scope="module")
def sqlite_pair(tmp_path_factory):
    """Two server processes on one SQLite file."""
    store = {"SUPPORT_ENV_STORE": f"sqlite://{tmp_path_factory.mktemp('pair') / 'episodes.db'}"}
    servers = []
    try:
        servers += [LoggedServer(store), LoggedServer(store)]
        yield servers
    finally:
        for server in servers:
            server.stop()
            server.log_path.unlink(missing_ok=True)


def test_two_clients_stepping_one_episode_at_once_through_two_processes_on_one_sqlite_file(sqlite_pair):
    two_clients_one_episode([server.url for server in sqlite_pair])


def test_a_sqlite_server_killed_and_restarted_mid_episode_continues_every_running_session(tmp_path, start_logged_server):
    live = start_logged_server(SUPPORT_ENV_STORE=f"sqlite://{tmp_path / 'episodes.db'}")
    starts = [EPISODE, {"task_id": "medium_kb_reply"}, {"task_id": "easy_classify", "seed": 3}]
    runs = [solo(start) for start in starts]
    with httpx.Client(base_url=live.url, timeout=30) as client:
        ids = [None, "restart-1", "restart-2"]  # None: the default session
        got = []
        for episode_id, start, (actions, _) in zip(ids, starts, runs):
            body = start | ({"episode_id": episode_id} if episode_id else {})
            got.append([observed(client.post("/reset", json=body))])
            got[-1] += [observed(step(client, episode_id, a)) for a in actions[: len(actions) // 2]]

        live.restart()  # SIGKILL, then a fresh process on the same file

        for episode_id, (actions, _), mine in zip(ids, runs, got):
            mine += [observed(step(client, episode_id, a)) for a in actions[len(actions) // 2:]]
    assert got == [expected for _, expected in runs]


def test_two_worker_processes_on_sqlite_answer_every_step(tmp_path):
    """`uvicorn --workers 2` on the memory store answered 404 to most steps; on SQLite
    (its default with several workers) every step is answered as in the solo run."""
    live = LoggedServer({"WEB_CONCURRENCY": "2", "SUPPORT_ENV_STORE": f"sqlite://{tmp_path / 'episodes.db'}"})
    try:
        actions, expected = solo(EPISODE)
        got = [observed(httpx.post(f"{live.url}/reset", json={**EPISODE, "episode_id": "workers-1"}, timeout=30))]
        for action in actions:  # a fresh connection per step: the kernel spreads them over the workers
            got.append(observed(httpx.post(f"{live.url}/step", json={"action": payload(action), "episode_id": "workers-1"}, timeout=30)))
        assert got == expected
        assert live.log().count("Started server process") == 2
    finally:
        live.stop()
        live.log_path.unlink(missing_ok=True)


@needs_redis
def test_a_store_that_goes_away_gets_a_clear_503_and_nothing_acknowledged_is_lost(tmp_path, start_logged_server):
    # appendfsync always: Redis keeps every write it acknowledged through a kill -9 (with
    # everysec, deploy/'s setting, it may drop the last second or two; see RedisProcess)
    redis = run_local.RedisProcess(tmp_path / "redis", fsync="always")
    try:
        live = start_logged_server(SUPPORT_ENV_STORE=redis.url)
        actions, expected = solo(EPISODE)
        with httpx.Client(base_url=live.url, timeout=30) as client:
            got = [observed(client.post("/reset", json={**EPISODE, "episode_id": "store-away"}))]
            got += [observed(step(client, "store-away", a)) for a in actions[:3]]

            redis.kill()
            refused = [
                step(client, "store-away", actions[3]),
                client.post("/reset", json={"episode_id": "another"}),
                client.get("/state", params={"episode_id": "store-away"}),
                client.get("/episodes/store-away/trajectory"),
            ]
            for response in refused:
                assert response.status_code == 503, response.text
                assert "the episode store (Redis at 127.0.0.1:" in response.json()["detail"]
                assert "is unavailable" in response.json()["detail"]

            redis.start()  # same port and data directory
            got += [observed(step(client, "store-away", a)) for a in actions[3:]]
        assert got == expected  # the refused step was not applied; every acknowledged one was kept
        assert "Traceback" not in live.log()
    finally:
        redis.stop()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"SUPPORT_ENV_STORE": "mongodb://db"}, "SUPPORT_ENV_STORE must be one of memory, sqlite:///path/to/episodes.db or redis://host:port/db, got 'mongodb://db'"),
        ({"SUPPORT_ENV_STORE": "sqlite:///etc/hostname/episodes.db"}, "SUPPORT_ENV_STORE=sqlite:///etc/hostname/episodes.db cannot be used: cannot create its directory /etc/hostname"),
        ({"SUPPORT_ENV_STORE": "memory", "WEB_CONCURRENCY": "2"}, "SUPPORT_ENV_STORE=memory cannot be shared by 2 worker processes"),
    ],
)
def test_a_store_that_cannot_work_stops_start_up_with_one_line_naming_the_setting(tmp_path, settings, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_ENV_")}
    env |= {"PORT": str(free_port()), "HOST": "127.0.0.1", **settings}
    result = subprocess.run([sys.executable, "-m", "server.app"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("support_env server: " + message), lines[0]


def test_a_dropped_ws_connection_resumes_its_episode_by_id_in_another_process(sqlite_pair):
    first, second = sqlite_pair
    actions, expected = solo(EPISODE)
    half = len(actions) // 2

    async def call(ws, message: dict) -> dict:
        await ws.send(json.dumps(message))
        return json.loads(await ws.recv())

    def seen(reply: dict) -> dict:
        assert reply["type"] == "observation", reply
        return comparable(to_observation(reply["data"]))

    async def scenario() -> list[dict]:
        async with websockets.connect(first.ws_url) as ws:
            reply = await call(ws, {"type": "reset", "data": EPISODE})
            episode_id = reply["data"]["observation"]["episode_id"]
            got = [seen(reply)]
            for action in actions[:half]:
                got.append(seen(await call(ws, {"type": "step", "data": payload(action)})))
        # the connection is gone; a new one, to another process, resumes the episode by id
        async with websockets.connect(second.ws_url) as ws:
            resumed = seen(await call(ws, {"type": "reset", "data": {"episode_id": episode_id, "resume": True}}))
            assert resumed == got[-1]
            for action in actions[half:]:
                got.append(seen(await call(ws, {"type": "step", "data": payload(action)})))
            refused = await call(ws, {"type": "reset", "data": {"episode_id": "never-was", "resume": True}})
            assert refused["type"] == "error" and "cannot resume episode_id 'never-was'" in refused["data"]["message"]
        trajectory = httpx.get(f"{first.url}/episodes/{episode_id}/trajectory", timeout=30).json()
        assert trajectory["actions"] == [payload(a) for a in actions] and trajectory["grade"] == expected[-1]["grade"]
        return got

    assert asyncio.run(scenario()) == expected


@needs_haproxy
def test_the_compose_files_haproxy_config_is_valid_as_shipped():
    checked = subprocess.run(["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=needs_redis)])
def test_the_session_cap_and_the_idle_ttl_hold_in_every_durable_store(kind, tmp_path, start_logged_server):
    redis = run_local.RedisProcess(tmp_path / "redis") if kind == "redis" else None
    try:
        url = redis.url if redis else f"sqlite://{tmp_path / 'episodes.db'}"
        live = start_logged_server(SUPPORT_ENV_STORE=url, SUPPORT_ENV_MAX_SESSIONS="2", SUPPORT_ENV_SESSION_TTL="2")
        actions, _ = solo({"task_id": "easy_classify"})
        with httpx.Client(base_url=live.url, timeout=30) as client:
            for i in range(2):
                assert client.post("/reset", json={"task_id": "easy_classify", "episode_id": f"slot-{i}"}).status_code == 200
            refused = client.post("/reset", json={"episode_id": "slot-2"})
            assert refused.status_code == 503 and "session capacity reached (2 running episodes)" in refused.json()["detail"]
            for action in actions:  # slot-0 finishes: it gives up its slot to the next reset
                assert step(client, "slot-0", action).status_code == 200
            assert client.post("/reset", json={"episode_id": "slot-2"}).status_code == 200
            assert client.get("/state", params={"episode_id": "slot-0"}).status_code == 404
            assert client.get("/state", params={"episode_id": "slot-1"}).status_code == 200

            deadline = time.monotonic() + 30  # idle past the TTL: gone (Redis expires keys by itself)
            while client.get("/episodes/slot-1/trajectory").status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            expired = client.get("/state", params={"episode_id": "slot-1"})
            assert expired.status_code == 404 and "expire after 2 s idle" in expired.json()["detail"]
    finally:
        if redis:
            redis.stop()


def test_an_mcp_sessions_episode_is_in_the_log_too(sqlite_pair):
    first, second = sqlite_pair
    with httpx.Client(base_url=first.url, timeout=30) as client:
        created = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": {"task_id": "easy_classify", "seed": 4}})
        session_id = created.json()["result"]["session_id"]
        called = client.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                           "params": {"name": "search_kb", "arguments": {"query": "refund"}, "session_id": session_id}}).json()
        observation = client.post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                                "params": {"name": "get_observation", "arguments": {}, "session_id": session_id}}).json()
    result = called["result"]["structured_content"]  # an action's result: what it produced, not the episode id
    episode_id = observation["result"]["structured_content"]["episode_id"]
    trajectory = httpx.get(f"{second.url}/episodes/{episode_id}/trajectory", timeout=30).json()
    assert trajectory["reset"] == {"task_id": "easy_classify", "seed": 4}
    assert trajectory["actions"] == [{"action_type": "search_kb", "query": "refund"}]
    assert trajectory["rewards"] == [result["reward"]]


def mcp_call(client: httpx.Client, session_id: str, name: str, arguments: dict) -> dict:
    reply = client.post("/mcp", json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                      "params": {"name": name, "arguments": arguments, "session_id": session_id}}).json()
    assert "result" in reply, reply
    return reply["result"]["structured_content"]


def mcp_solo(start: dict) -> tuple[list[SupportAction], list[dict]]:
    """The reference policy's actions for `start` and, for each, the MCP tool result an
    in-process episode gives."""
    actions, _ = solo(start)
    env = SupportEnvironment()
    env.reset(**start)
    return actions, [compact.structured(action, env.step(action)) for action in actions]


def test_an_mcp_session_id_works_in_any_process_and_its_episode_goes_on(sqlite_pair):
    """Created in one process, its tool calls alternate between two: the process that does
    not hold the session replays its episode from the log. The id is the episode's, for the
    trajectory too; closed, it is unknown where it was closed."""
    start = {"task_id": "hard_mixed_queue", "seed": 11}
    actions, expected = mcp_solo(start)
    clients = [httpx.Client(base_url=server.url, timeout=30) for server in sqlite_pair]
    try:
        created = clients[0].post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": start}).json()
        session_id = created["result"]["session_id"]
        got = [mcp_call(clients[(i + 1) % 2], session_id, *as_tool_call(action)) for i, action in enumerate(actions)]
        assert got == expected
        observation = mcp_call(clients[0], session_id, "get_observation", {})
        assert observation["episode_id"] == session_id and observation["done"] is True

        trajectory = clients[1].get(f"/episodes/{session_id}/trajectory").json()
        assert trajectory["reset"] == start and len(trajectory["actions"]) == len(actions)

        closed = clients[1].post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "openenv/session/close", "params": {"session_id": session_id}}).json()
        assert closed["result"] == {"session_id": session_id, "closed": True}
        gone = clients[1].post("/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                             "params": {"name": "get_observation", "arguments": {}, "session_id": session_id}}).json()
        assert gone["error"]["message"].startswith(f"Unknown session_id: {session_id}")
        unknown = clients[0].post("/mcp", json={"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                                                "params": {"name": "get_observation", "arguments": {}, "session_id": "never-created"}}).json()
        assert unknown["error"]["message"].startswith("Unknown session_id: never-created")
    finally:
        for client in clients:
            client.close()


@needs_redis
@needs_haproxy
def test_an_mcp_client_plays_through_the_balancer_on_a_session_created_anywhere(topology):
    """An MCP client library (Streamable HTTP at /mcp?session_id=) through HAProxy, on a session
    created through it: every call is answered as in process, wherever it lands."""
    start = {"task_id": "medium_kb_reply", "seed": 3}
    actions, expected = mcp_solo(start)
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        session_id = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": start}).json()["result"]["session_id"]

    async def play() -> list[dict]:
        async with McpClient(f"{topology.url}/mcp?session_id={session_id}") as mcp:
            return [(await mcp.call_tool(*as_tool_call(action))).structured_content for action in actions]

    assert asyncio.run(play()) == expected


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=needs_redis)])
def open_store(request, tmp_path):
    """`open_store(**options)`: a fresh store of each kind, opened as the server opens it."""
    from server.stores import open_log

    redis = run_local.RedisProcess(tmp_path / "redis") if request.param == "redis" else None
    url = {"memory": "memory", "sqlite": f"sqlite://{tmp_path / 'episodes.db'}"}.get(request.param) or redis.url
    yield lambda **options: open_log(url, **{"max_sessions": 2, "idle_ttl_s": 60, **options})
    if redis:
        redis.stop()


def test_every_store_appends_at_the_end_and_answers_with_the_actions_a_writer_missed(open_store):
    log = open_store()
    log.start("e", {"task_id": "easy_classify"}, "g1", 100.0)
    assert log.append("e", "g1", 0, "a0", 101.0).status == "ok"
    late = log.append("e", "g1", 0, "a1", 102.0)  # a writer that has not seen a0
    assert (late.status, late.seq, late.before) == ("ok", 1, ["a0"])
    assert log.read("e", 1, 103.0, False).actions == ["a1"]
    assert log.append("e", "stale", 2, "a2", 104.0).status == "reset"  # reset elsewhere since
    log.finish("e", "g1")
    over = log.append("e", "g1", 1, "a2", 105.0)
    assert (over.status, over.before) == ("done", ["a1"]) and log.read("e", 0, 106.0, False).length == 2
    assert log.append("nobody", "g", 0, "a", 107.0).status == "gone"
    if log.name != "redis":  # Redis expires keys by its own clock (the HTTP test above waits for it)
        assert log.append("e", "g1", 2, "a2", 1000.0).status == "gone"  # idle past the TTL


def test_at_the_cap_only_a_ws_log_gives_a_running_episodes_slot_away(open_store):
    from server.stores import SessionCapacityReached

    http, ws = open_store(), open_store(namespace="ws", evict_running=True)
    for log in (http, ws):
        log.start("a", {}, "g", 100.0)
        log.start("b", {}, "g", 101.0)
    with pytest.raises(SessionCapacityReached):
        http.start("c", {}, "g", 102.0)
    ws.start("c", {}, "g", 102.0)  # "a", the least recently used, is no longer resumable
    assert ws.read("a", 0, 103.0, False) is None and ws.read("c", 0, 103.0, False) is not None
    assert http.read("a", 0, 103.0, False) is not None  # the namespaces are apart


def test_the_images_store_falls_back_to_memory_on_a_read_only_file_system_and_says_so(capsys):
    """The image sets sqlite:///tmp/...?or=memory: where that file cannot be written (a host that runs
    images read-only), one process serves in memory and says why; without `?or=memory` the same
    setting stops start-up."""
    from server.settings import SettingError
    from server.stores import MemoryLog, open_log

    unwritable = "sqlite:///etc/hostname/episodes.db"
    log = open_log(unwritable + "?or=memory", max_sessions=2, idle_ttl_s=60)
    assert isinstance(log, MemoryLog)
    said = capsys.readouterr().err
    assert "cannot create its directory /etc/hostname" in said and said.rstrip().endswith("sessions are kept in memory")
    with pytest.raises(SettingError, match="cannot be used"):
        open_log(unwritable, max_sessions=2, idle_ttl_s=60)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "SUPPORT_ENV_STORE=sqlite:///tmp/support_env/episodes.db?or=memory" in dockerfile
