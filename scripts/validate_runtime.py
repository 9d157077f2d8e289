"""`openenv validate` up to the runtime level, with the server as a local process.

    python scripts/validate_runtime.py [--isolation auto|netns|none] [--json report.json] [--env KEY=VALUE ...]
    python scripts/validate_runtime.py --write-plan     # regenerate validation/runtime.json

OpenEnv 0.10's validator (RFC 008) runs its runtime level through a provider
that builds and starts the package, and its CLI knows only Docker. This runs
the same pipeline (`openenv.validation.run_validation`: static graders, then
runtime collection over /ws and the runtime graders, then the severity policy)
with a provider that starts `server.app` from this source tree instead:

- build: no image. The source tree is the subject: the image reference is the
  validator's own digest of it, and the validator checks the tree did not
  change during the run.
- start: a fresh process with an explicit environment (nothing inherited, as
  the launch specification demands; `--env` adds to it), answering /health.
- network: openenv.yaml declares `no-network`. With `--isolation netns` (the
  default when run as root) the server runs in a network namespace of its own
  (`unshare --net`: only a loopback interface, no routes) and serves on a Unix
  socket, which a loopback TCP relay in this namespace exposes to the
  validator. `runtime.network_policy` is then measured, not claimed: the
  validator's own probe script runs inside the server's namespace
  (`nsenter`) and, as a control, in this one, against a TCP/UDP sink on this
  host's routable address. Without namespaces (`--isolation none`, the
  default when not root) the provider cannot enforce `no-network`, so the
  validator skips the runtime level rather than trust it.
- not enforced: the declared CPU, memory and disk budgets (Docker's
  `--cpus`/`--memory`; a local process runs unconfined). No 0.10 grader
  checks them yet; `inspect()` says so in the report.

Exit status: 0 when every check this build of the validator implements
passed (the verdict is WARN because the unimplemented ones SKIP), 1 otherwise,
with the failing checks printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from openenv.validation import Level, run_validation  # noqa: E402
from openenv.validation.manifest import ExecutionDeclaration  # noqa: E402
from openenv.validation.providers import ExecResult, ProviderError, StartupError, UnsupportedCapability  # noqa: E402
from openenv.validation.runner import source_digest  # noqa: E402
from openenv.validation.runtime.contracts import LaunchSpec, NetworkEvidence  # noqa: E402
from openenv.validation.types import CheckStatus, ProviderCapability  # noqa: E402

# The validator's own network probe (what its Docker provider runs in a helper
# container joined to the subject's namespace) and the ports of its sink.
from openenv.validation.providers._netns import PROBE_SCRIPT, SINK_TCP_PORT, SINK_UDP_PORT  # noqa: E402

NOT_IMPLEMENTED = "grader not implemented in this build"
PLAN_PATH = ROOT / "validation" / "runtime.json"
PLAN_RESET = {"episode_id": "validation-probe-1", "seed": 7, "options": {"task_id": "easy_classify"}}
# The probe runs in a private mount namespace with sysfs mounted afresh, so that
# /sys/class/net lists the interfaces of the namespace it joined, not the host's.
# (Where that fails, e.g. joining the namespace /sys already shows, the old view
# stays; a wrong view can only show more interfaces, never hide one.)
IN_FRESH_SYSFS = 'mount -t sysfs sysfs /sys 2>/dev/null; exec "$@"'


def namespaces_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("nsenter") is not None


class _TcpToUnixRelay:
    """Loopback TCP listener in this namespace, copying each connection to a Unix socket."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()


class _Sink:
    """The validator-owned destination of the network probes: a TCP greeting and a UDP
    echo on this host's routable IPv4 address (loopback if it has none)."""

    def __init__(self) -> None:
        self.address = _routable_address()
        self._tcp = socket.socket()
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._tcp.bind((self.address, SINK_TCP_PORT))
            self._udp.bind((self.address, SINK_UDP_PORT))
        except OSError as exc:
            self.close()
            raise ProviderError(f"cannot bind the network sink on {self.address}: {exc}") from None
        self._tcp.listen(16)
        threading.Thread(target=self._greet, daemon=True).start()
        threading.Thread(target=self._echo, daemon=True).start()

    def _greet(self) -> None:
        while True:
            try:
                connection, _ = self._tcp.accept()
            except OSError:
                return
            try:
                connection.sendall(b"openenv-sink\n")
            except OSError:
                pass
            finally:
                connection.close()

    def _echo(self) -> None:
        while True:
            try:
                data, peer = self._udp.recvfrom(512)
                self._udp.sendto(data, peer)
            except OSError:
                return

    def close(self) -> None:
        for end in (self._tcp, self._udp):
            try:
                end.close()
            except OSError:
                pass


def _routable_address() -> str:
    """The source address this host would use for outside traffic (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.255", 9))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _probe(argv_prefix: list[str], python: str, sink: str, wait_s: float, timeout_s: float) -> dict:
    result = subprocess.run([*argv_prefix, python, "-c", PROBE_SCRIPT, sink, str(wait_s)],
                            capture_output=True, text=True, timeout=timeout_s)
    if result.returncode:
        raise ProviderError(f"network probe failed: {result.stderr[-500:]}")
    return json.loads(result.stdout)


class LocalProcessSubject:
    """A running server: OpenEnv's RunningSubject (base_url, inspect, logs, exec, stop)."""

    def __init__(self, process: subprocess.Popen, base_url: str, workdir: Path, mode: str, isolated: bool, python: str,
                 relay: _TcpToUnixRelay | None = None):
        self.base_url = base_url
        self._process = process
        self._workdir = workdir
        self._mode = mode
        self._isolated = isolated
        self._python = python
        self._relay = relay

    @property
    def log_path(self) -> Path:
        return self._workdir / "server.log"

    def inspect(self) -> dict:
        return {
            "pid": self._process.pid,
            "running": self._process.poll() is None,
            "network": "own network namespace (lo only)" if self._isolated else "host network",
            "limits": "not enforced: a local process (cpu, memory and disk are enforced by the Docker provider)",
        }

    def logs(self, max_bytes: int = 65536) -> str:
        data = self.log_path.read_bytes() if self.log_path.exists() else b""
        return data[-max_bytes:].decode("utf-8", "replace")

    def exec(self, argv: list[str], timeout_s: float) -> ExecResult:
        raise ProviderError("the local-process provider offers no in-sandbox exec")

    def measure_network(self, timeout_s: float = 60) -> dict:
        """Reachability of a validator-owned sink from the server's namespace, with the
        same probes from this namespace as the control (see the module docstring)."""
        sink = _Sink()
        try:
            control = _probe([], self._python, sink.address, wait_s=5, timeout_s=timeout_s)
            if self._isolated:
                enter = ["nsenter", f"--net=/proc/{self._process.pid}/ns/net", "--", "unshare", "--mount", "--",
                         "sh", "-c", IN_FRESH_SYSFS, "sh"]
            else:
                enter = []
            measured = _probe(enter, self._python, sink.address, wait_s=0, timeout_s=timeout_s)
        finally:
            sink.close()
        try:
            evidence = NetworkEvidence.model_validate({
                "requested_mode": self._mode,
                "subject_network_mode": "none" if self._isolated else "host",
                "namespace": measured["namespace"],
                "probes": [
                    {"kind": kind, "control": control["probes"][kind], "subject": measured["probes"][kind]}
                    for kind in ("tcp", "udp", "icmp")
                ],
            })
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("the network probes returned invalid evidence") from exc
        return evidence.model_dump(mode="json")

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        if self._relay is not None:
            self._relay.close()
        shutil.rmtree(self._workdir, ignore_errors=True)


class LocalProcessProvider:
    """OpenEnv's ValidationProvider protocol for `python -m server.app` run from the source tree."""

    name = "local-process"

    def __init__(self, python: str = sys.executable, *, isolate: bool, extra_env: dict[str, str] | None = None):
        self.python = python
        self.isolate = isolate
        self.extra_env = dict(extra_env or {})
        # IMAGE_BUILD: the runner skips the runtime level without it (build() stands in for one).
        self.capabilities = frozenset({ProviderCapability.IMAGE_BUILD, ProviderCapability.NETWORK_POLICY})
        self.supported_network_modes = frozenset({"public", "no-network"} if isolate else {"public"})
        self._root: Path | None = None
        self._bytecode = Path(tempfile.mkdtemp(prefix="validate_runtime_pyc_"))  # outside the tree, shared by the runs

    def build(self, root: Path, execution: ExecutionDeclaration) -> str:
        root = Path(root).resolve(strict=True)
        if not (root / execution.dockerfile).is_file() or not (root / execution.context).is_dir():
            raise StartupError(f"the declared Dockerfile ({execution.dockerfile}) or context ({execution.context}) is missing")
        self._root = root
        return "sha256:" + source_digest(root)

    def start(self, spec: LaunchSpec) -> LocalProcessSubject:
        if spec.network.mode not in self.supported_network_modes:
            raise UnsupportedCapability(f"local-process cannot enforce network mode {spec.network.mode} without namespaces")
        if spec.resources.gpus or spec.resources.gpu_types:
            raise UnsupportedCapability("local-process provides no GPU")
        workdir = Path(tempfile.mkdtemp(prefix=f"{spec.run_id}-"))
        env = {  # explicit: nothing of this process's environment is inherited
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPYCACHEPREFIX": str(self._bytecode),  # bytecode outside the source tree
            **self.extra_env,
            **spec.env_vars,
        }
        isolated = self.isolate and spec.network.mode == "no-network"
        relay = None
        if isolated:
            socket_path = str(workdir / "api.sock")
            argv = ["unshare", "--net", "--", self.python, "-m", "uvicorn", "server.app:app", "--uds", socket_path,
                    "--log-level", "warning", "--ws-per-message-deflate", "false"]  # as server.app.main() serves
        else:
            port = _free_port()
            env.update(HOST="127.0.0.1", PORT=str(port))
            argv = [self.python, "-m", "server.app"]
        with open(workdir / "server.log", "ab") as log:
            process = subprocess.Popen(argv, cwd=self._root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        if isolated:
            relay = _TcpToUnixRelay(socket_path)
            base_url = f"http://127.0.0.1:{relay.port}"
        else:
            base_url = f"http://127.0.0.1:{port}"
        subject = LocalProcessSubject(process, base_url, workdir, spec.network.mode, isolated, self.python, relay)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + spec.startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = subject.logs(2000)
                subject.stop()
                raise StartupError(f"the server exited with code {process.returncode}: {tail}")
            try:
                with opener.open(base_url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return subject
            except OSError:
                pass
            time.sleep(0.1)
        subject.stop()
        raise StartupError(f"the server did not answer /health within {spec.startup_timeout_s:g} s")

    def close(self) -> None:
        shutil.rmtree(self._bytecode, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unmet(report) -> list:
    """The checks that did not pass, other than those this build does not implement."""
    return [r for r in report.results
            if r.status is not CheckStatus.PASS and not (r.status is CheckStatus.SKIP and NOT_IMPLEMENTED in r.evidence)]


def validate(isolate: bool, extra_env: dict[str, str] | None = None, root: Path = ROOT):
    provider = LocalProcessProvider(isolate=isolate, extra_env=extra_env)
    try:
        return run_validation(root, max_level=Level.RUNTIME, provider=provider)
    finally:
        provider.close()


def reference_plan() -> dict:
    """The runtime plan: `PLAN_RESET`, then the reference policy's actions for that episode (to its end)."""
    from support_env.agents.reference import ReferencePolicy
    from support_env.agents.rollout import play
    from support_env.environment import SupportEnvironment

    env = SupportEnvironment()
    reset = {**PLAN_RESET["options"], "seed": PLAN_RESET["seed"], "episode_id": PLAN_RESET["episode_id"]}
    rollout = play(ReferencePolicy(), lambda: env.reset(**reset), env.step)
    actions = [a.model_dump(exclude_none=True, exclude={"metadata"}) for a in rollout.actions]
    return {"plan_schema_version": "1", "reset": PLAN_RESET, "actions": actions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isolation", choices=("auto", "netns", "none"), default="auto",
                        help="netns: the server in its own network namespace (root); none: host network; auto: netns if possible")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="an extra environment variable for the server")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--write-plan", action="store_true", help=f"regenerate {PLAN_PATH.relative_to(ROOT)} and exit")
    args = parser.parse_args(argv)
    if args.write_plan:
        plan = reference_plan()
        actions = ",\n".join(f"    {json.dumps(action)}" for action in plan["actions"])
        PLAN_PATH.write_text(
            f'{{\n  "plan_schema_version": "1",\n  "reset": {json.dumps(plan["reset"])},\n  "actions": [\n{actions}\n  ]\n}}\n'
        )
        print(f"wrote {PLAN_PATH.relative_to(ROOT)}")
        return 0
    isolate = {"netns": True, "none": False, "auto": namespaces_available()}[args.isolation]
    if isolate and not namespaces_available():
        parser.error("--isolation netns needs root and the unshare and nsenter commands")
    report = validate(isolate, dict(pair.split("=", 1) for pair in args.env))
    if args.json:
        args.json.write_text(report.model_dump_json(indent=1) + "\n")
    print(f"openenv validate (runtime level, local-process provider, {'own network namespace' if isolate else 'host network'})")
    for result in report.results:
        print(f"  {result.status.value.upper():5} {result.check_id}: {'; '.join(result.evidence)[:160]}")
    problems = unmet(report)
    print(f"verdict: {report.verdict.value.upper()}; {len(problems)} implemented check(s) did not pass")
    for result in problems:
        print(f"  NOT PASSED {result.check_id}: {result.status.value}: {'; '.join(result.evidence)}")
    return 1 if problems or report.verdict.value == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
