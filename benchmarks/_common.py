"""Shared helpers for the benchmarks: servers on loopback, reference actions, statistics.

Benchmarks print figures; they assert nothing about speed.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from support_env.environment import SupportEnvironment  # noqa: E402
from support_env.access.local_server import LocalServer  # noqa: E402
from support_env.agents.reference import ReferencePolicy  # noqa: E402
from support_env.agents.rollout import play  # noqa: E402


def _die_with_parent() -> None:
    """Child-side: get SIGTERM when the benchmark process dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# A benchmark stopped with SIGTERM unwinds its `with` blocks, so its servers stop too.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Server(LocalServer):
    """A server subprocess on a free loopback port, its output discarded, that dies
    with the benchmark.

    `argv` is what follows the interpreter, e.g. ["-m", "server.app"] or
    ["benchmarks/echo_floor.py"]; both read PORT and HOST.
    """

    def __init__(self, name: str, argv: Sequence[str], settings: dict[str, str] | None = None):
        super().__init__(settings, command=argv, name=name, log_path=os.devnull, preexec_fn=_die_with_parent)

    def rss_kb(self) -> int:
        """Resident set size of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")


def our_server(**settings: str) -> Server:
    return Server("support_env", ["-m", "server.app"], settings)


def floor_server(**settings: str) -> Server:
    return Server("echo floor", [str(ROOT / "benchmarks" / "echo_floor.py")], settings)


def reference_actions(task_id: str, seed: int | None = None) -> list[dict]:
    """The reference policy's actions for one episode, as wire dicts (played in process once)."""
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed), env.step)
    return [a.model_dump(exclude_none=True, exclude={"metadata"}) for a in rollout.actions]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(round(q / 100 * len(ordered) + 0.5)))
    return ordered[min(rank, len(ordered)) - 1]


def machine() -> str:
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{usable} usable cores of {cores} ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {_dt.date.today().isoformat()}"
    )


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   machine: {machine()}")


class RawHttpConnection:
    """A minimal keep-alive HTTP/1.1 client over one asyncio connection.

    httpx's async pool costs more CPU per request than the servers we measure,
    which would make the client the bottleneck at 64 connections; this does the
    least a client can (write the request, read the headers and exactly
    Content-Length bytes), so latencies are the server's and the loopback's.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def __aenter__(self) -> "RawHttpConnection":
        import asyncio

        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        if not status_line:  # the server closed an idle keep-alive connection: the request was not read
            self.writer.close()
            await self.__aenter__()
            self.writer.write(head + body)
            status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)
