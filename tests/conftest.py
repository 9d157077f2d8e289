"""Shared fixtures: a real uvicorn server on a free loopback port, and HTTP helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
