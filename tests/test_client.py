"""The typed client `SupportEnv`: async and sync use against a live server, Task API
resets, what happens when the server restarts, `from_docker_image` with OpenEnv's
LocalDockerProvider (Docker itself faked), and light imports: neither the client nor
a server without the playground imports Gradio."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from websockets.exceptions import ConnectionClosed

from support_env.access.client import PROVIDER_CONTAINER_PORT, SupportEnv
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play

from .conftest import ROOT, free_port
from .test_packaging import dockerfile_steps


@pytest.fixture
def server(busy_server):
    """These tests send hundreds of requests: they get a server of their own (see conftest.busy_server)."""
    return busy_server


def test_async_client_plays_an_episode(server):
    async def run():
        async with SupportEnv(base_url=server.url) as env:
            policy = ReferencePolicy()
            result = await env.reset(task_id="medium_kb_reply")
            rewards = []
            while not result.done:
                result = await env.step(policy.act(result.observation))
                rewards.append(result.reward)
            return result.observation, rewards, await env.state()

    final, rewards, state = asyncio.run(run())
    local = SupportEnvironment()
    expected = play(ReferencePolicy(), lambda: local.reset(task_id="medium_kb_reply"), local.step)
    assert final.grade == expected.grade and rewards == expected.rewards
    assert state.done and state.task_id == "medium_kb_reply" and state.step_count == len(rewards)


def test_sync_client_as_in_the_readme(server):
    with SupportEnv(base_url=server.url).sync() as env:
        first = env.reset(task_id="easy_classify").observation
        ticket = first.current_ticket
        result = env.step(SupportAction(action_type="classify_ticket", ticket_id=ticket.id, category="billing"))
        state = env.state()

    assert result.observation.conversation_history[0].action == f"classify_ticket({ticket.id}, billing)"
    assert result.reward == result.observation.reward and result.done is False
    assert state.step_count == 1 and state.progress[0].classified_as == "billing"


def test_plain_sync_code_can_use_the_client_without_sync(server):
    """OpenEnv 0.10's client answers in whichever mode it is first used: in code with no
    running event loop, reset and step return their results directly."""
    env = SupportEnv(base_url=server.url)
    try:
        first = env.reset(split="train", index=7).observation  # Task API: task 7 of train is medium_kb_reply, seed 2
        searched = env.step(SupportAction(action_type="search_kb", query=first.current_ticket.subject))
        state = env.state()
    finally:
        env.close()
    assert (first.task_id, first.seed, first.split) == ("medium_kb_reply", 2, "train")
    assert searched.observation.kb_search_results and state.step_count == 1


def test_a_server_restart_loses_the_episode_and_the_client_reconnects_for_the_next(start_server):
    """The episode lives in the server process. After a restart the next call fails with
    the closed connection; the one after reconnects (a new session, no episode yet), and
    a reset starts again. Nothing resumes the old episode."""
    live = start_server()
    action = SupportAction(action_type="search_kb", query="refund")

    async def run():
        async with SupportEnv(base_url=live.url) as env:
            await env.reset(task_id="easy_classify")
            await env.step(action)
            live.restart()
            with pytest.raises(ConnectionClosed):
                await env.step(action)
            with pytest.raises(RuntimeError, match="call reset"):
                await env.step(action)
            return (await env.reset(task_id="easy_classify")).observation, await env.state()

    observation, state = asyncio.run(run())
    assert observation.task_id == "easy_classify" and state.step_count == 0


def _imports_after(statement: str, **environment: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **environment},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_importing_the_client_does_not_import_gradio():
    modules = _imports_after("import support_env.client")
    assert "gradio" not in modules and "openenv.core.env_server.web_interface" not in modules
    assert "support_env.access.client" in modules
    # Deferred, not blocked: OpenEnv's web UI still imports on demand in the same process.
    later = _imports_after("import support_env.client\nfrom openenv.core.env_server.web_interface import create_web_interface_app")
    assert "gradio" in later


def test_a_server_without_the_playground_does_not_import_gradio():
    assert "gradio" not in _imports_after("import server.app", ENABLE_WEB_INTERFACE="false")
    assert "gradio" in _imports_after("import server.app", ENABLE_WEB_INTERFACE="true")


class FakeDocker:
    """Stands in for the `docker` CLI as LocalDockerProvider calls it. `run`
    starts the image's CMD with the image's ENV plus `-e` values, and its
    `-p HOST:CONTAINER` mapping behaves like Docker's: HOST reaches the
    container only if the server inside listens on CONTAINER."""

    def __init__(self):
        _, self.cmd, self.image_env = dockerfile_steps()
        self.runs: list[list[str]] = []
        self.processes: dict[str, subprocess.Popen] = {}
        self._real_run = subprocess.run

    def __call__(self, command, *args, **kwargs):
        if not (isinstance(command, list) and command and command[0] == "docker"):
            return self._real_run(command, *args, **kwargs)
        verb = command[1]
        if verb == "run":
            self.runs.append(command)
            return subprocess.CompletedProcess(command, 0, stdout=self._start(command) + "\n", stderr="")
        if verb in ("stop", "rm") and command[2] in self.processes:
            process = self.processes.pop(command[2])
            process.terminate()
            process.wait(timeout=10)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    def _start(self, command: list[str]) -> str:
        host_port, container_port = command[command.index("-p") + 1].split(":")
        env_vars = dict(command[i + 1].split("=", 1) for i, flag in enumerate(command) if flag == "-e")
        container_env = {**self.image_env, **env_vars}
        listens_where_published = container_env["PORT"] == container_port
        port = host_port if listens_where_published else str(free_port())
        argv = [sys.executable if part == "python" else part for part in self.cmd]
        env = {"PATH": "/usr/bin:/bin", **container_env, "PORT": port, "HOST": "127.0.0.1"}
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        container_id = f"fake{len(self.processes)}"
        self.processes[container_id] = process
        return container_id


def test_from_docker_image_serves_on_the_port_local_docker_publishes(monkeypatch):
    docker = FakeDocker()
    monkeypatch.setattr(subprocess, "run", docker)
    host_port = free_port()

    async def run():
        env = await SupportEnv.from_docker_image("support-env:test", port=host_port)
        try:
            return (await env.reset(task_id="hard_mixed_queue")).observation
        finally:
            await env.close()

    try:
        observation = asyncio.run(run())
    finally:
        for process in docker.processes.values():
            process.kill()

    (command,) = docker.runs
    assert command[command.index("-p") + 1] == f"{host_port}:{PROVIDER_CONTAINER_PORT}"
    assert f"PORT={PROVIDER_CONTAINER_PORT}" in command and command[-1] == "support-env:test"
    assert docker.image_env["PORT"] == "7860"  # the image's own default, kept for Spaces and `docker run -p 7860:7860`
    assert observation.task_id == "hard_mixed_queue" and observation.current_ticket is not None
    assert docker.processes == {}  # close() stopped the container


def test_from_docker_image_also_gives_a_blocking_client(monkeypatch):
    """`from_docker_image` returns OpenEnv's handle: `.sync()` starts the container and
    connects a blocking client, as `await` gives an async one."""
    docker = FakeDocker()
    monkeypatch.setattr(subprocess, "run", docker)
    try:
        with SupportEnv.from_docker_image("support-env:test", port=free_port()).sync() as env:
            observation = env.reset(split="canonical", index=1).observation
    finally:
        for process in docker.processes.values():
            process.kill()
    assert observation.task_id == "medium_kb_reply"
    assert docker.processes == {}  # leaving the block stopped the container
