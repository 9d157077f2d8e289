"""Several worker processes on one port: `WEB_CONCURRENCY=N python -m server.app`.

The supervisor (the process started) starts N workers, each `python -m server.app`
with SUPPORT_ENV_WORKER=i/N, restarts one that dies, and stops them all on
SIGTERM or SIGINT. Each worker listens on the port itself, with SO_REUSEPORT, so
the kernel spreads new connections evenly over the workers. (uvicorn's own
`--workers` shares one listening socket: the worker that wakes first accepts a
whole burst of connections, and 16 clients that connect at once mostly land on
one worker.) They share sessions through the store (SQLite by default).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

WORKER_VAR = "SUPPORT_ENV_WORKER"  # "i/N" in worker i of N
STARTUP_S = 30.0  # a worker that exits sooner failed to start: the supervisor stops (no restart loop)


def this_worker() -> tuple[int, int] | None:
    """(i, N) in a worker this supervisor started; None elsewhere."""
    raw = os.environ.get(WORKER_VAR, "")
    index, _, total = raw.partition("/")
    return (int(index), int(total)) if index.isdigit() and total.isdigit() else None


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket on (host, port) that other workers may bind too (SO_REUSEPORT)."""
    family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, protocol or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


def supervise(workers: int) -> None:
    """Run `workers` workers until SIGTERM or SIGINT; restart any that exits meanwhile."""
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    started: dict[int, float] = {}

    def start(i: int) -> subprocess.Popen:
        started[i] = time.monotonic()
        return subprocess.Popen(
            [sys.executable, "-m", "server.app"], env={**os.environ, WORKER_VAR: f"{i}/{workers}"}, preexec_fn=_end_with_the_supervisor
        )

    children = {i: start(i) for i in range(1, workers + 1)}
    print(f"support_env: supervising {workers} worker processes (pids {', '.join(str(c.pid) for c in children.values())})", flush=True)
    failed = None
    while not stopping and failed is None:
        time.sleep(0.2)
        for i, child in list(children.items()):
            if stopping or child.poll() is None:
                continue
            if time.monotonic() - started[i] < STARTUP_S:  # it could not start (port taken, bad setting): stop
                failed = child.returncode or 1
                break
            print(f"support_env: worker {i} exited with code {child.returncode}; starting another", flush=True)
            children[i] = start(i)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if failed is not None:
        raise SystemExit(failed)


def _end_with_the_supervisor() -> None:
    """In a worker, before it runs: SIGTERM when the supervisor dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
