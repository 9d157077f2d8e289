"""Packaging: `openenv validate` locally and against a live server, and the
Dockerfile's own install steps and CMD run in a fresh virtualenv."""

from __future__ import annotations

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

from .conftest import ROOT, wait_for_health

OPENENV = Path(sys.executable).with_name("openenv")


def run_openenv(*args: str) -> dict:
    result = subprocess.run([str(OPENENV), "validate", *args, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_openenv_validate_local():
    report = run_openenv(str(ROOT), "--verbose")
    assert report["passed"] and report["issues"] == [], report
    assert all(report["deployment_modes"].values()), report["deployment_modes"]


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


def test_dockerfile_install_steps_and_cmd_serve_health_on_7860(tmp_path):
    runs, cmd, env_vars = dockerfile_steps()
    assert env_vars.get("PORT") == "7860" and cmd
    app = tmp_path / "app"
    shutil.copytree(ROOT, app, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", ".pytest_cache"))
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
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
    process = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_health("http://127.0.0.1:7860", process, timeout_s=60)
        reset = httpx.post("http://127.0.0.1:7860/reset", json={}, timeout=10)
        assert reset.status_code == 200 and reset.json()["observation"]["task_id"] == "easy_classify"
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
