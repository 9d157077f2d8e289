"""Where HTTP sessions are kept (SUPPORT_ENV_STORE): episode logs in memory, in an
SQLite file, or in Redis. `open_log` turns the setting into a store, and refuses
one that cannot work with a one-line SettingError.

The default is `memory` for a single process. With several worker processes
(`WEB_CONCURRENCY=N python -m server.app`, or `uvicorn server.app:app --workers N`),
memory cannot serve them (each would hold its own
sessions): the default is then SQLite at `default_sqlite_url()`, and an explicit
`memory` is refused.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import tempfile
from pathlib import Path

from server.settings import SettingError
from server.stores.base import Appended, EpisodeLog, Record, SessionCapacityReached, StoreUnavailable
from server.stores.memory_log import MemoryLog

__all__ = ["Appended", "EpisodeLog", "Record", "SessionCapacityReached", "StoreUnavailable", "MemoryLog", "open_log", "store_url", "worker_count"]

STORE_VAR = "SUPPORT_ENV_STORE"
FORMS = "memory, sqlite:///path/to/episodes.db or redis://host:port/db"
FALLBACK = "?or=memory"  # sqlite:///path?or=memory: that file, or memory where it cannot be written (one process)


def default_sqlite_url() -> str:
    """SQLite in the temporary directory (`/tmp` where none is usable: then opening it says why)."""
    try:
        folder = tempfile.gettempdir()
    except FileNotFoundError:  # no writable temporary directory at all (a read-only file system)
        folder = "/tmp"
    return "sqlite://" + str(Path(folder) / "support_env" / "episodes.db")


def worker_count() -> int:
    """How many worker processes serve with this one: N in a worker of `WEB_CONCURRENCY=N
    python -m server.app` (server/workers.py); in one of uvicorn's spawned workers, `--workers N` from the
    supervisor's command line (Linux /proc), else WEB_CONCURRENCY (uvicorn's own
    default for --workers), else 1."""
    from server.workers import this_worker

    worker = this_worker()
    if worker is not None:  # started by server/workers.py
        return worker[1]
    parent = multiprocessing.parent_process()
    if parent is None:
        return 1
    try:
        arguments = Path(f"/proc/{parent.pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        arguments = []
    for i, argument in enumerate(arguments):
        if argument == "--workers" and i + 1 < len(arguments) and arguments[i + 1].isdigit():
            return int(arguments[i + 1])
        if argument.startswith("--workers=") and argument[10:].isdigit():
            return int(argument[10:])
    raw = os.environ.get("WEB_CONCURRENCY", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def no_delay_on_inherited_sockets() -> None:
    """For a uvicorn worker process: send small responses at once.

    uvicorn's supervisor makes the listening socket with protocol 0 and hands it to
    its workers; asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    whose protocol is IPPROTO_TCP, so in a worker every response written in two
    parts waited for the client's delayed ACK: 44 ms per request on Linux, however
    small (measured: /health 0.6 ms with one process, 44 ms with --workers 2).
    This treats a protocol-0 TCP stream socket as the TCP socket it is."""
    import asyncio.base_events
    import socket

    original = getattr(asyncio.base_events, "_set_nodelay", None)
    if original is None or getattr(original, "for_inherited_sockets", False):
        return

    def set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM and sock.proto == 0:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            original(sock)

    set_nodelay.for_inherited_sockets = True
    asyncio.base_events._set_nodelay = set_nodelay


def store_url(workers: int) -> str:
    """SUPPORT_ENV_STORE, or the default for `workers` processes."""
    raw = os.environ.get(STORE_VAR, "").strip()
    if not raw:
        return default_sqlite_url() if workers > 1 else "memory"
    if raw == "memory" and workers > 1:
        raise SettingError(
            f"{STORE_VAR}=memory cannot be shared by {workers} worker processes (each would hold its own sessions); "
            f"use sqlite:///path/to/episodes.db or redis://host:port/db, or leave it unset for SQLite at {default_sqlite_url()[9:]}"
        )
    return raw


def open_log(url: str, max_sessions: int, idle_ttl_s: float, namespace: str = "", evict_running: bool = False) -> EpisodeLog:
    """The store `url` names (`namespace`: a separate set of episodes in it; `evict_running`:
    see EpisodeLog). Raises SettingError for a malformed URL or an SQLite
    file that cannot be written; an unreachable Redis is not refused here (the
    store answers 503 until it can be reached)."""
    if url == "memory":
        return MemoryLog(max_sessions, idle_ttl_s, evict_running)
    if url.startswith("sqlite://"):
        from server.stores.sqlite_log import SqliteLog, writable_directory

        path, fallback = (url[len("sqlite://"):-len(FALLBACK)], True) if url.endswith(FALLBACK) else (url[len("sqlite://"):], False)
        if not path:
            raise SettingError(f"{STORE_VAR} must name a database file, as in sqlite:///path/to/episodes.db, got {url!r}")
        problem = writable_directory(Path(path))
        if problem and fallback and worker_count() == 1:
            # The image's default: sessions survive restarts where the file system allows, and a
            # read-only one (some hosts run images so) still serves, in memory, saying so.
            print(f"support_env: {STORE_VAR}={url}: {problem}; sessions are kept in memory", file=sys.stderr, flush=True)
            return MemoryLog(max_sessions, idle_ttl_s, evict_running)
        if problem:
            raise SettingError(f"{STORE_VAR}={url} cannot be used: {problem}")
        try:
            return SqliteLog(path, max_sessions, idle_ttl_s, namespace, evict_running)
        except StoreUnavailable as exc:
            raise SettingError(f"{STORE_VAR}={url} cannot be used: {exc}") from None
    if re.match(r"rediss?://", url):
        from server.stores.redis_log import RedisLog

        try:
            return RedisLog(url, max_sessions, idle_ttl_s, namespace, evict_running)
        except ValueError as exc:
            raise SettingError(f"{STORE_VAR} must be a Redis URL such as redis://host:6379/0, got {url!r}: {exc}") from None
    raise SettingError(f"{STORE_VAR} must be one of {FORMS}, got {url!r}")
