"""Many sessions at once, full servers, vanished clients and crashes, against live servers.

- 200 sessions (120 over HTTP, 80 over /ws, every task, generated and
  canonical episodes) played at the same time give each exactly the
  observations of the same episode played alone, in process.
- At capacity a new /ws session is refused with a clear message; a slot held
  by a client that vanished without closing is freed by the idle timeout.
- A server killed mid-episode and started again answers the old episode id
  with a clear 404 (sessions live in memory); a client that gives up on a
  step mid-way leaves its session consistent.
- A closed session's environment can be garbage-collected.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import socket
import ssl
import struct
import time
import weakref

import httpx
import pytest
import websockets

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS

from .conftest import LoggedServer, to_observation

SESSIONS = 200
DISTINCT_EPISODES = 20
SEEDED = QUEUE_TASKS  # the tasks with generated variants


def episode_of(i: int) -> dict:
    task_id = TASK_IDS[i % len(TASK_IDS)]
    return {"task_id": task_id, "seed": 1000 + i} if task_id in SEEDED else {"task_id": task_id}


def over_ws(i: int) -> bool:
    """Sessions go out in rounds of DISTINCT_EPISODES; rounds 1, 3, 5 and 7 use /ws, the rest HTTP."""
    return (i // DISTINCT_EPISODES) in (1, 3, 5, 7)


def comparable(observation: SupportObservation) -> dict:
    return observation.model_dump(exclude={"episode_id", "metadata"})


def played_alone(start: dict) -> list[dict]:
    env = SupportEnvironment()
    return [comparable(o) for o in play(ReferencePolicy(), lambda: env.reset(**start), env.step).observations]


@pytest.fixture(scope="module")
def live():
    server = LoggedServer({"SUPPORT_ENV_MAX_SESSIONS": str(SESSIONS + 50)})
    yield server
    server.stop()
    server.log_path.unlink(missing_ok=True)


async def _play_http(url: str, start: dict, tls: ssl.SSLContext) -> list[dict]:
    # A client (so a connection) per session: httpx's shared pool slows down with the
    # number of connections; the TLS context, unused on loopback, is built once.
    async with httpx.AsyncClient(base_url=url, timeout=120, verify=tls) as client:
        return await _play_http_on(client, start)


async def _play_http_on(client: httpx.AsyncClient, start: dict) -> list[dict]:
    policy = ReferencePolicy()
    response = await client.post("/reset", json=start)
    assert response.status_code == 200, response.text[:300]
    trace = [to_observation(response.json())]
    episode_id = trace[0].episode_id
    while not trace[-1].done:
        action = policy.act(trace[-1]).model_dump(exclude_none=True, exclude={"metadata"})
        response = await client.post("/step", json={"episode_id": episode_id, "action": action})
        assert response.status_code == 200, response.text[:300]
        trace.append(to_observation(response.json()))
        await asyncio.sleep(0)  # let the other sessions in between every step
    return [comparable(o) for o in trace]


async def _play_ws(url: str, start: dict) -> list[dict]:
    policy = ReferencePolicy()
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:

        async def call(message: dict) -> SupportObservation:
            await ws.send(json.dumps(message))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "observation", reply
            return to_observation(reply["data"])

        trace = [await call({"type": "reset", "data": start})]
        while not trace[-1].done:
            action = policy.act(trace[-1]).model_dump(exclude_none=True, exclude={"metadata"})
            trace.append(await call({"type": "step", "data": action}))
    return [comparable(o) for o in trace]


def test_200_sessions_at_once_over_http_and_ws_each_get_exactly_their_solo_episode(live):
    # 20 distinct episodes, each played by 10 sessions at once (6 over HTTP, 4 over /ws):
    # twins running side by side must not disturb each other either.
    starts = [episode_of(i % DISTINCT_EPISODES) for i in range(SESSIONS)]
    alone = {json.dumps(s, sort_keys=True): played_alone(s) for s in starts}

    async def run_all() -> list[list[dict]]:
        ws_url = live.url.replace("http", "ws") + "/ws"
        tls = ssl.create_default_context()
        return await asyncio.gather(
            *(_play_ws(ws_url, s) if over_ws(i) else _play_http(live.url, s, tls) for i, s in enumerate(starts))
        )

    traces = asyncio.run(run_all())
    for i, (start, trace) in enumerate(zip(starts, traces)):
        transport = "/ws" if over_ws(i) else "HTTP"
        assert trace == alone[json.dumps(start, sort_keys=True)], f"session {i} ({transport}, {start}) differs from the same episode played alone"
    assert {t[-1]["task_id"] for t in traces} == set(TASK_IDS)


# --- capacity and vanished clients --------------------------------------------------


class VanishingClient:
    """A WebSocket client that opens a session and then goes silent for good:
    it never reads, never writes, never closes (a killed laptop, a dropped NAT
    mapping). Only the server's idle timeout can free its slot."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        handshake = b""
        while b"\r\n\r\n" not in handshake:
            handshake += self.sock.recv(4096)
        assert handshake.startswith(b"HTTP/1.1 101"), handshake
        self._send_text(json.dumps({"type": "reset", "data": {"task_id": "easy_classify"}}))
        reply = self.sock.recv(65536)
        assert b'"observation"' in reply, reply[:300]

    def _send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def forget(self) -> None:
        self.sock.close()


def ws_session_error(url: str) -> dict | None:
    """Open a /ws session and reset it: None if that worked, else the server's error data."""

    async def attempt():
        async with websockets.connect(url, open_timeout=30) as ws:
            try:
                await ws.send(json.dumps({"type": "reset", "data": {}}))
            except websockets.ConnectionClosed:
                pass  # refused at once: the reason is already in the receive buffer
            reply = json.loads(await ws.recv())
            return None if reply["type"] == "observation" else reply["data"]

    return asyncio.run(attempt())


def test_at_capacity_a_ws_session_is_refused_clearly_and_a_vanished_clients_slot_is_freed_by_the_idle_timeout(start_logged_server):
    # TTL 3 s: long enough that neither vanished client expires before the refusal is checked.
    live = start_logged_server(SUPPORT_ENV_MAX_SESSIONS="2", SUPPORT_ENV_SESSION_TTL="3")
    ws_url = live.url.replace("http", "ws") + "/ws"
    vanished = [VanishingClient(live.port), VanishingClient(live.port)]
    try:
        refused = ws_session_error(ws_url)
        assert refused is not None and refused["code"] == "CAPACITY_REACHED"
        assert "Server at capacity: 2/2 sessions active" in refused["message"]

        # OpenEnv's reaper wakes every max(TTL / 4, 5 s) and closes sessions idle past the TTL.
        deadline = time.monotonic() + 60
        error = refused
        while error is not None and time.monotonic() < deadline:
            time.sleep(0.5)
            error = ws_session_error(ws_url)
        assert error is None, f"the vanished clients' slots were never freed: {error}"
    finally:
        for client in vanished:
            client.forget()


# --- faults --------------------------------------------------------------------------


def test_a_server_killed_mid_episode_and_restarted_answers_the_old_id_with_a_clear_404(live):
    with httpx.Client(base_url=live.url, timeout=30) as client:
        observation = to_observation(client.post("/reset", json={"task_id": "medium_kb_reply", "episode_id": "before-crash"}).json())
        ticket = observation.current_ticket.id
        client.post("/step", json={"episode_id": "before-crash", "action": {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}})
        assert client.get("/state", params={"episode_id": "before-crash"}).json()["step_count"] == 1

    live.kill()  # SIGKILL: no shutdown, nothing saved
    live.restart()

    with httpx.Client(base_url=live.url, timeout=30) as client:
        state = client.get("/state", params={"episode_id": "before-crash"})
        step = client.post("/step", json={"episode_id": "before-crash", "action": {"action_type": "search_kb", "query": "refund"}})
        default = client.post("/step", json={"action": {"action_type": "search_kb", "query": "refund"}})
        for response in (state, step):
            assert response.status_code == 404
            detail = response.json()["detail"]
            assert "unknown or expired episode_id 'before-crash'" in detail and "sessions live in memory" in detail
        assert default.status_code == 404 and "call POST /reset first" in default.json()["detail"]
        # The restarted server is whole: the same id simply starts afresh.
        again = client.post("/reset", json={"task_id": "medium_kb_reply", "episode_id": "before-crash"})
        assert again.status_code == 200 and to_observation(again.json()).steps_remaining == observation.steps_remaining


def test_a_client_that_gives_up_mid_step_leaves_its_session_consistent(live):
    """Slow steps (a long reply full of amounts to grade) abandoned by a client after a few
    milliseconds: each one either happened whole or not at all, and the episode goes on as
    if the client had waited."""
    start = {"task_id": "medium_kb_reply"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        first = to_observation(client.post("/reset", json={**start, "episode_id": "impatient"}).json())
    slow = SupportAction(action_type="reply_ticket", ticket_id=first.current_ticket.id, reply_text=("$1,234 in 14 days; " * 200)[:4000])
    body = {"episode_id": "impatient", "action": slow.model_dump(exclude_none=True, exclude={"metadata"})}
    gave_up = 0
    impatient = httpx.Timeout(10.0, read=0.002)  # the request is sent whole; only the wait for the answer is cut short
    for _ in range(5):
        try:
            httpx.post(f"{live.url}/step", json=body, timeout=impatient)
        except httpx.ReadTimeout:
            gave_up += 1
    assert gave_up, "no step was slow enough to abandon; the test proves nothing"

    with httpx.Client(base_url=live.url, timeout=30) as client:
        deadline = time.monotonic() + 30  # the abandoned steps may still be running: wait until they are all done
        counts = []
        while time.monotonic() < deadline and (len(counts) < 3 or len(set(counts[-3:])) > 1):
            counts.append(client.get("/state", params={"episode_id": "impatient"}).json()["step_count"])
            time.sleep(0.2)
        applied = counts[-1]
        assert applied == 5, f"{applied} of 5 steps applied ({gave_up} abandoned): a step was lost"
        close = SupportAction(action_type="close_ticket", ticket_id=first.current_ticket.id)
        final = to_observation(client.post("/step", json={"episode_id": "impatient", "action": close.model_dump(exclude_none=True, exclude={"metadata"})}).json())

    env = SupportEnvironment()
    env.reset(**start)
    for _ in range(applied):
        env.step(slow)
    assert comparable(final) == comparable(env.step(close))
    assert len(final.conversation_history) == applied + 1


# --- memory -------------------------------------------------------------------------


def _freed_after_close(make) -> bool:
    env = make()
    env.reset(task_id="easy_classify")
    ref = weakref.ref(env)
    env.close()
    del env
    gc.collect()
    return ref() is None


def test_a_closed_sessions_plain_environment_is_freed():
    assert _freed_after_close(SupportEnvironment)


def test_a_closed_sessions_tool_environment_is_freed():
    from support_env.access.mcp_tools import SupportToolEnvironment

    assert _freed_after_close(SupportToolEnvironment)
