"""The topology of deploy/docker-compose.yml as plain processes on this machine:
Redis, N support_env replicas and HAProxy with deploy/haproxy.cfg (its `bind` and
`server` lines pointed at loopback ports). For a machine without a Docker engine;
the tests and benchmarks/bench_stores.py use it too.

    python deploy/run_local.py [--replicas 2] [--port 7860]    # Ctrl-C stops everything

Needs `redis-server` (or `valkey-server`) and `haproxy` on PATH (Debian: apt-get
install redis-server haproxy).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support_env.access.local_server import HOST, LocalServer, free_port, stop_process, wait_for_health  # noqa: E402

HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"


def redis_binary() -> str | None:
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {HOST}:{port} within {timeout_s:g} s")


class RedisProcess:
    """redis-server on a loopback port, its data in an append-only file in `directory`,
    as deploy/ runs it (`fsync="everysec"`: an fsync once a second; a Redis killed
    with kill -9 may lose the last second or two it acknowledged, because Redis
    holds its writes back while a slow fsync runs). `fsync="always"` writes and
    fsyncs before each reply: a restart, even after kill -9, keeps everything
    acknowledged."""

    def __init__(self, directory: str | Path, port: int | None = None, fsync: str = "everysec"):
        self.directory = Path(directory)
        self.fsync = fsync
        self.port = port or free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", HOST, "--dir", str(self.directory), "--appendonly", "yes",
             "--appendfsync", self.fsync, "--save", "", "--protected-mode", "no", "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "redis-server")
        self._wait_until_loaded()

    def _wait_until_loaded(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.create_connection((HOST, self.port), timeout=2) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(64).startswith(b"+PONG"):
                    return
            time.sleep(0.05)  # -LOADING: still reading its append-only file
        raise RuntimeError("redis-server did not finish loading its data")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def haproxy_config(port: int, backends: Mapping[str, int], template: Path = HAPROXY_CFG) -> str:
    """deploy/haproxy.cfg with its `bind` on loopback `port` and one `server` line per backend."""
    text = template.read_text()
    text = re.sub(r"(?m)^(\s*)bind \S+", lambda m: f"{m.group(1)}bind {HOST}:{port}", text)
    indent = re.search(r"(?m)^(\s*)server ", text).group(1)
    text = re.sub(r"(?m)^\s*server .*\n?", "", text).rstrip("\n") + "\n"
    return text + "".join(f"{indent}server {name} {HOST}:{backend_port} check\n" for name, backend_port in backends.items())


class HAProxyProcess:
    def __init__(self, backends: Mapping[str, int], port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = tempfile.NamedTemporaryFile("w", prefix="support_env_haproxy_", suffix=".cfg", delete=False)
        with config:
            config.write(haproxy_config(self.port, backends))
        self.config_path = Path(config.name)
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
        self.process = subprocess.Popen([binary, "-db", "-f", str(self.config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for_port(self.port, self.process, "haproxy")
            wait_for_health(self.url, self.process, 20.0)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.process)
        self.config_path.unlink(missing_ok=True)


class LocalTopology:
    """Redis, `replicas` servers sharing it, HAProxy in front (`url`). Replica settings
    may be added with `settings`."""

    def __init__(self, replicas: int = 2, port: int | None = None, settings: Mapping[str, str] | None = None, directory: str | Path | None = None):
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="support_env_topology_"))
        self.redis: RedisProcess | None = None
        self.replicas: list[LocalServer] = []
        self.balancer: HAProxyProcess | None = None
        try:
            self.redis = RedisProcess(self.directory / "redis")
            store = {"SUPPORT_ENV_STORE": self.redis.url, "ENABLE_WEB_INTERFACE": "false", **(settings or {})}
            for i in range(replicas):
                self.replicas.append(LocalServer(store, log_path=self.directory / f"replica{i + 1}.log", name=f"replica{i + 1}"))
            self.balancer = HAProxyProcess({f"replica{i + 1}": r.port for i, r in enumerate(self.replicas)}, port=port)
        except BaseException:
            self.stop()
            raise
        self.url = self.balancer.url

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for replica in self.replicas:
            if replica.process is not None and replica.process.poll() is None:
                replica.stop()
        if self.redis is not None:
            self.redis.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "LocalTopology":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7860")))
    args = parser.parse_args()
    with LocalTopology(args.replicas, port=args.port) as topology:
        print(f"redis {topology.redis.url}; replicas " + ", ".join(r.url for r in topology.replicas) + f"; balancer {topology.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main()
