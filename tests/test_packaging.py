"""Packaging: `openenv validate` locally and against a live server, and the
Dockerfile's own install steps and CMD run in a fresh virtualenv."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, free_port, wait_for_health

OPENENV = Path(sys.executable).with_name("openenv")


def run_openenv(*args: str) -> dict:
    result = subprocess.run([str(OPENENV), "validate", *args, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_openenv_validate_local():
    """OpenEnv 0.10's validator (RFC 008), static level: the manifest parses (schema 2,
    with its execution block) and its declarations are within the policy's bounds.
    The runtime level needs a running subject: tests/test_manifest.py runs it."""
    report = run_openenv(str(ROOT), "--level", "static", "--skip-build")
    assert report["verdict"] == "pass", report
    assert [(r["check_id"], r["status"]) for r in report["results"]] == [("static.manifest", "pass")], report["results"]
    assert report["manifest"]["manifest_schema_version"] == "2" and report["manifest"]["name"] == "support_env"


def test_openenv_validate_against_the_live_server(server):
    report = run_openenv("--url", server.url)
    assert report["passed"], report
    assert report["mode"] == "simulation"


def dockerfile_steps() -> tuple[list[str], list[str], dict[str, str]]:
    """RUN commands, CMD argv and ENV of the Dockerfile (line continuations joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    runs, cmd, env = [], [], {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("RUN "):
            runs.append(line[4:])
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
        elif line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in shlex.split(line[4:])))
    return runs, cmd, env


def python_with_pip(folder: Path) -> Path:
    """A fresh virtualenv with pip in it, as the image's base has: made by the venv module where
    this Python has ensurepip, else (Debian's stock python3 has none) by uv, which `uv run` names
    in $UV."""
    if importlib.util.find_spec("ensurepip") is not None:
        venv.create(folder, with_pip=True)
    else:
        uv = os.environ.get("UV") or shutil.which("uv")
        assert uv, "this Python has no ensurepip, and no uv was found to make a virtualenv with pip"
        subprocess.run([uv, "venv", "--quiet", "--seed", "--python", sys.executable, str(folder)], check=True, timeout=300)
    return folder / "bin"


def test_dockerfile_install_steps_and_cmd_serve_health_on_its_port(tmp_path):
    runs, cmd, env_vars = dockerfile_steps()
    assert env_vars.get("PORT") == "7860" and cmd  # the image's own port, Spaces' default
    assert re.search(r"^EXPOSE 7860$", (ROOT / "Dockerfile").read_text(), re.M)
    app = tmp_path / "app"
    shutil.copytree(ROOT, app, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", ".pytest_cache", ".env"))
    bin_dir = python_with_pip(tmp_path / "venv")
    # The image's `pip` and `uv pip install --system` must land in the fresh venv, never the machine's Python.
    env = {
        **os.environ, **env_vars,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "VIRTUAL_ENV": str(tmp_path / "venv"),
        "UV_PYTHON": str(bin_dir / "python"),
    }
    env.pop("PYTHONPATH", None)
    for command in runs:
        step = subprocess.run(command.replace("/tmp/", f"{tmp_path}/"), shell=True, cwd=app, env=env, capture_output=True, text=True, timeout=600)
        assert step.returncode == 0, f"{command}\n{step.stdout}\n{step.stderr}"
    for path in ("support_env", "server"):  # the image runs the installed package, not the source tree
        shutil.rmtree(app / path)
    # The CMD serves on $PORT: on a free port here, so that nothing else that listens on 7860
    # (another server, another test run) can answer in its place.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(cmd, cwd=tmp_path, env={**env, "PORT": str(port)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_health(url, process, timeout_s=60)
        reset = httpx.post(f"{url}/reset", json={}, timeout=10)
        assert reset.status_code == 200 and reset.json()["observation"]["task_id"] == "easy_classify"
        assert process.poll() is None  # the answers came from the process started here
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_data_file_ships_with_the_package():
    """A data file the package-data globs miss is absent from a wheel install and the image."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["support_env"]
    package = ROOT / "support_env"
    data_files = [p.relative_to(package) for folder in package.glob("*/data") for p in folder.rglob("*") if p.is_file()]
    assert data_files
    missed = [str(p) for p in data_files if not any(p.match(g) and len(p.parts) == len(Path(g).parts) for g in globs)]
    assert not missed, f"not in [tool.setuptools.package-data]: {missed}"
