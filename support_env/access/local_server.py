"""A support_env server in a subprocess on loopback, for as long as one run needs it.

inference.py (without ENV_BASE_URL), the tests and the benchmarks all need the
same thing: the real server on a free port, answering /health before the first
request, and gone afterwards however the run ends. The server is started by
module name (`python -m server.app`), so this package imports nothing from
server/.

    with LocalServer({"SUPPORT_ENV_SESSION_TTL": "5"}) as server:
        httpx.post(f"{server.url}/reset", json={})
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

import httpx

SERVER_COMMAND = ("-m", "server.app")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
OUTPUT_TAIL_LINES = 200  # what a server without a log file keeps of its output
ERROR_TAIL_LINES = 40  # what a start-up error quotes of it


class ServerStartError(RuntimeError):
    """The server exited, or did not answer /health in time; the message quotes its output."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_health(
    url: str, process: subprocess.Popen | None = None, timeout_s: float = 60.0, output: Callable[[], str] | None = None
) -> None:
    """Return once GET `url`/health answers 200. Raise ServerStartError if `process`
    exits first or `timeout_s` runs out; `output()`, if given, ends the message."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            problem = f"it exited with code {process.returncode} before {url}/health answered"
            break
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            problem = f"{url}/health did not answer within {timeout_s:g} s"
            break
        time.sleep(0.1)
    text = output() if output else ""
    raise ServerStartError(f"{problem}\n--- its output ends with ---\n{text}" if text.strip() else problem)


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout_s`; waits for it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LocalServer:
    """A server subprocess on `HOST`, started (and healthy) on construction, stopped by
    `stop()` or at the end of a `with` block.

    `settings` are environment variables for the server, over this process's own.
    Its output goes to `log_path` (appended; `os.devnull` discards it), or else
    from a pipe, read all along so it never fills and blocks the server, into
    `output_tail` (its last lines). `command` is what follows the interpreter.
    """

    def __init__(
        self,
        settings: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        log_path: str | Path | None = None,
        command: Sequence[str] = SERVER_COMMAND,
        name: str = "the support_env server",
        timeout_s: float = 60.0,
        preexec_fn: Callable[[], None] | None = None,
    ):
        self.settings = dict(settings or {})
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = Path(log_path) if log_path is not None else None
        self.output_tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
        self.command = list(command)
        self.name = name
        self.timeout_s = timeout_s
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.start()

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def start(self) -> None:
        """Start the process and wait for /health; on failure it is stopped again and
        the error quotes the end of its output."""
        env = {**os.environ, "PORT": str(self.port), "HOST": HOST, **self.settings}
        options = dict(cwd=PROJECT_ROOT, env=env, stderr=subprocess.STDOUT, text=True, preexec_fn=self.preexec_fn)
        if self.log_path is None:
            self.process = subprocess.Popen([sys.executable, *self.command], stdout=subprocess.PIPE, **options)
            self._reader = threading.Thread(target=self.output_tail.extend, args=(self.process.stdout,), daemon=True)
            self._reader.start()
        else:
            with open(self.log_path, "a") as log_file:  # the child keeps its own copy of the descriptor
                self.process = subprocess.Popen([sys.executable, *self.command], stdout=log_file, **options)
        try:
            wait_for_health(self.url, self.process, self.timeout_s, output=self._output_end)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"{self.name} did not start: {exc}") from None

    def _output_end(self) -> str:
        if self._reader is not None and self.process.poll() is not None:
            self._reader.join(timeout=2)  # let it take in what the process wrote before exiting
        return "".join(self.log().splitlines(keepends=True)[-ERROR_TAIL_LINES:])

    def log(self) -> str:
        """The server's output: the whole log file, or the kept tail."""
        if self.log_path is None:
            return "".join(self.output_tail)
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no goodbyes, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Kill the server and start a fresh process on the same port with the same
        settings (its output continues in the same log or tail)."""
        if self.process.poll() is None:
            self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        stop_process(self.process)

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
