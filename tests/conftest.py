"""Shared fixtures: a real uvicorn server on a free loopback port, and HTTP helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from support_env.models import SupportAction, SupportObservation

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen | None = None, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/health did not answer within {timeout_s} s")


class LiveServer:
    """A `python -m server.app` subprocess on loopback."""

    def __init__(self, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.app"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for_health(self.url, self.process)
        except Exception:
            self.stop()
            raise
        drain_output(self)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    live = LiveServer()
    yield live
    live.stop()


@pytest.fixture
def start_server():
    """Start extra servers with their own settings (short TTL, small caps)."""
    started: list[LiveServer] = []

    def start(**settings: str) -> LiveServer:
        live = LiveServer(settings)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


class HttpEpisode:
    """One episode driven over the stateful HTTP API."""

    def __init__(self, client: httpx.Client, episode_id: str | None = None):
        self.client = client
        self.episode_id = episode_id

    def reset(self, **body) -> SupportObservation:
        if self.episode_id is not None:
            body.setdefault("episode_id", self.episode_id)
        response = self.client.post("/reset", json=body)
        assert response.status_code == 200, response.text
        observation = to_observation(response.json())
        self.episode_id = observation.episode_id
        return observation

    def step(self, action: SupportAction) -> SupportObservation:
        payload = {"action": action.model_dump(exclude_none=True, exclude={"metadata"}), "episode_id": self.episode_id}
        response = self.client.post("/step", json=payload)
        assert response.status_code == 200, response.text
        return to_observation(response.json())


def to_observation(payload: dict) -> SupportObservation:
    return SupportObservation.model_validate({**payload["observation"], "done": payload["done"], "reward": payload["reward"]})


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def drain_output(live: LiveServer) -> LiveServer:
    """Keep reading a server's output (its last lines stay in `live.output_tail`).
    Unread, a pipe fills after some 64 KB of access log lines and the server
    blocks on its next log write. Every LiveServer drains from the start."""
    if hasattr(live, "output_tail"):
        return live
    live.output_tail = deque(maxlen=200)
    threading.Thread(target=live.output_tail.extend, args=(live.process.stdout,), daemon=True).start()
    return live


@pytest.fixture(scope="session")
def busy_server() -> Iterator[LiveServer]:
    """A server of its own with its output drained, for the MCP, client and
    results tests (hundreds of requests), so they never fill the pipe of the
    shared `server`."""
    live = drain_output(LiveServer())
    yield live
    live.stop()


@pytest.fixture
def busy_http(busy_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=busy_server.url, timeout=30.0) as client:
        yield client


class LoggedServer(LiveServer):
    """A LiveServer whose output goes to a file, not a pipe: it never blocks on a
    full pipe however many requests it serves, its whole log can be read
    (`log()`), and it can be killed and started again on the same port."""

    def __init__(self, extra_env: dict[str, str] | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(extra_env or {})
        self._log_file = tempfile.NamedTemporaryFile("w+", prefix="support_env_server_", suffix=".log", delete=False)
        self.log_path = Path(self._log_file.name)
        env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **self.extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.app"], cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for_health(self.url, self.process)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self.log()}") from exc

    def log(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no goodbyes, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Kill this server and start a fresh process on the same port with the same
        settings (its log continues in the same file)."""
        if self.process.poll() is None:
            self.kill()
        env = {**os.environ, "PORT": str(self.port), "HOST": "127.0.0.1", **self.extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.app"], cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, text=True
        )
        wait_for_health(self.url, self.process)

    def stop(self) -> None:
        super().stop()
        self._log_file.close()


@pytest.fixture
def start_logged_server():
    """Start LoggedServers with their own settings; all are stopped (and their logs deleted) at the end."""
    started: list[LoggedServer] = []

    def start(**settings: str) -> LoggedServer:
        live = LoggedServer(settings)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
        live.log_path.unlink(missing_ok=True)
