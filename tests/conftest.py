"""Shared fixtures and helpers: real servers on free loopback ports
(support_env.local_server), episodes over HTTP, and task facts the tests share."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from support_env.access import local_server
from support_env.access.local_server import LocalServer, free_port  # noqa: F401  (free_port: for the test modules)
from support_env.models import SupportAction, SupportObservation

ROOT = Path(__file__).resolve().parents[1]


def wait_for_health(url: str, process: subprocess.Popen | None = None, timeout_s: float = 60.0) -> None:
    """For a server process a test starts itself with its output piped: if it exits
    before /health answers, the error carries that output."""

    def output() -> str:
        exited = process is not None and process.poll() is not None
        return process.stdout.read() if exited and process.stdout else ""

    local_server.wait_for_health(url, process, timeout_s, output)


class LoggedServer(LocalServer):
    """A LocalServer whose output goes to a temporary file, not a pipe: its whole log
    can be read (`log()`). Whoever stops it deletes `log_path`."""

    def __init__(self, settings: dict[str, str] | None = None, port: int | None = None):
        with tempfile.NamedTemporaryFile(prefix="support_env_server_", suffix=".log", delete=False) as log_file:
            super().__init__(settings, port=port, log_path=log_file.name)


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer() as live:
        yield live


def _started_by_the_test(make: Callable[[dict[str, str]], LocalServer]):
    """A `start(**settings)` for one test; every server it starts is stopped (and its
    log file deleted) at the end."""
    started: list[LocalServer] = []

    def start(**settings: str) -> LocalServer:
        started.append(make(settings))
        return started[-1]

    yield start
    for live in started:
        live.stop()
        if live.log_path is not None:
            live.log_path.unlink(missing_ok=True)


@pytest.fixture
def start_server():
    """Start extra servers with their own settings (short TTL, small caps)."""
    yield from _started_by_the_test(LocalServer)


@pytest.fixture
def start_logged_server():
    """Start LoggedServers with their own settings."""
    yield from _started_by_the_test(LoggedServer)


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
def http(server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
def busy_server() -> Iterator[LocalServer]:
    """A server of its own for the MCP, client and results tests (hundreds of
    requests), so their log lines stay out of the shared `server`'s output tail."""
    with LocalServer() as live:
        yield live


@pytest.fixture
def busy_http(busy_server: LocalServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=busy_server.url, timeout=30.0) as client:
        yield client
