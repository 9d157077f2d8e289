"""Import and start-up times, against the web stack's own import time.

    python benchmarks/bench_startup.py [--repeat 7] [--bytecode warm|cold|both]   # ~1-2 min

Each figure is the median of `--repeat` fresh interpreter processes, run in
rounds that interleave the measurements, so load on the machine weighs on all
of them alike:

- baseline: `import fastapi, httpx, pydantic` (the web stack any client or
  server of this kind starts from);
- client: `import support_env.client` (target: at most 3x the baseline), and
  whether it imported Gradio (it must not);
- client, Gradio too: the same after `import openenv.core`, which imports
  OpenEnv's web UI and Gradio: what the client path cost before
  support_env/__init__.py deferred it;
- server: from spawning `python -m server.app` to its first 200 on /health,
  playground off (target: under 2 s), and with the playground on.

Import times are measured inside the child (perf_counter around the import
statement); "wall" is the whole child process, interpreter start included.
Ratios: imports against the baseline import, whole processes (wall, server
start) against the baseline process. "(CPU)" rows are the CPU time used (the
child's process_time for an import; user+system time of the server process
by its first /health answer): on a machine other jobs keep busy, wall time
grows with their load and CPU time barely does, so it is what an idle machine's
wall time would be (the work is single-threaded).

Bytecode: `warm` gives every run a private, primed `PYTHONPYCACHEPREFIX`, as
after a first import on a normal installation; `cold` compiles every module
from source on every run, as in a container with PYTHONDONTWRITEBYTECODE=1
and no precompiled bytecode (uv installs without it unless told
`--compile-bytecode`). Either way no run reads bytecode left behind in the
virtualenv, so the figures do not depend on what ran before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, header
from support_env.access.local_server import free_port

IMPORTS = {
    "baseline": "import fastapi, httpx, pydantic",
    "client": "import support_env.client",
    "client, Gradio too": "import openenv.core; import support_env.client",
}
CHILD = """
import json, sys, time
t, c = time.perf_counter(), time.process_time()
{statement}
print(json.dumps({{"import_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "gradio": "gradio" in sys.modules}}))
"""


def child_env(bytecode: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPYCACHEPREFIX"] = prefix
    if bytecode == "cold":
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return {**env, **extra}


def time_import(statement: str, env: dict[str, str]) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD.format(statement=statement)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_server_start(env: dict[str, str], playground: bool) -> tuple[float, float]:
    """Seconds from spawning the server to its first 200 on /health, and the CPU seconds it used by then."""
    import httpx

    port = free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "ENABLE_WEB_INTERFACE": "true" if playground else "false"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "server.app"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    return time.perf_counter() - start, cpu_seconds(process.pid)
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(timeout=10)


def run(bytecode: str, repeat: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench_startup_pyc_") as prefix:
        env = child_env(bytecode, prefix)
        if bytecode == "warm":  # prime the private bytecode cache once
            for statement in IMPORTS.values():
                time_import(statement, env)
            time_server_start(env, playground=True)
        samples: dict[str, list[float]] = {}
        gradio: dict[str, bool] = {}
        for _ in range(repeat):
            for name, statement in IMPORTS.items():
                result = time_import(statement, env)
                samples.setdefault(name, []).append(result["import_s"])
                samples.setdefault(f"{name} (CPU)", []).append(result["cpu_s"])
                samples.setdefault(f"{name} (wall)", []).append(result["wall_s"])
                gradio[name] = result["gradio"]
            for playground in (False, True):
                wall, cpu = time_server_start(env, playground)
                label = f"server start, playground {'on' if playground else 'off'}"
                samples.setdefault(label, []).append(wall)
                samples.setdefault(f"{label} (CPU)", []).append(cpu)
    samples["_gradio"] = gradio  # type: ignore[assignment]
    return samples


def report(bytecode: str, samples: dict) -> None:
    gradio = samples.pop("_gradio")
    base = statistics.median(samples["baseline"])
    base_cpu = statistics.median(samples["baseline (CPU)"])
    base_wall = statistics.median(samples["baseline (wall)"])
    print(f"\n### bytecode {bytecode}: median of {len(samples['baseline'])} runs\n")
    print("| measurement | median s | min s | max s | / baseline | imports Gradio |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, values in samples.items():
        if name.startswith("server") or name.endswith("(wall)"):
            ref = base_wall  # whole processes against the baseline process
        else:
            ref = base_cpu if name.endswith("(CPU)") else base
        ratio = f"{statistics.median(values) / ref:.2f}"
        imports_gradio = "yes" if gradio.get(name.removesuffix(" (wall)")) else ("no" if name.removesuffix(" (wall)") in gradio else "")
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} | {ratio} | {imports_gradio} |")
    client = statistics.median(samples["client"]) / base
    client_cpu = statistics.median(samples["client (CPU)"]) / base_cpu
    server = statistics.median(samples["server start, playground off"])
    server_cpu = statistics.median(samples["server start, playground off (CPU)"])
    print(f"\nclient import / baseline = {client:.2f} ({client_cpu:.2f} in CPU time; target <= 3); "
          f"server start, playground off = {server:.2f} s ({server_cpu:.2f} s of CPU; target < 2); "
          f"client imports Gradio: {'yes' if gradio['client'] else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bytecode", choices=("warm", "cold", "both"), default="both")
    args = parser.parse_args()
    header("bench_startup: import and server start-up times")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for bytecode in (("warm", "cold") if args.bytecode == "both" else (args.bytecode,)):
        report(bytecode, run(bytecode, args.repeat))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
