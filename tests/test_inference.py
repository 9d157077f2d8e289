"""inference.py as users and judges run it: a subprocess whose stdout is parsed strictly."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from support_env.access import local_server
from support_env.environment import SupportEnvironment
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS

from .conftest import ROOT, free_port
from .fake_llm import FakeLLMServer

START = re.compile(r"^\[START\] task=(?P<task>\S+) env=support_env model=(?P<model>\S+)$")
STEP = re.compile(r"^\[STEP\] step=(?P<step>\d+) action=(?P<action>\{.*\}) reward=(?P<reward>-?\d+\.\d{2}) done=(?P<done>true|false) error=(?P<error>.+)$")
END = re.compile(r"^\[END\] success=(?P<success>true|false) steps=(?P<steps>\d+) score=(?P<score>\d\.\d{3}) rewards=(?P<rewards>(-?\d+\.\d{2}(,-?\d+\.\d{2})*)?)$")
def documented_settings() -> set[str]:
    """The environment variables in the README's "inference.py settings" table."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### inference.py settings", 1)[1].split("\n\n", 2)[1]
    return {name for row in table.splitlines()[2:] for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


class ReadRecorder(dict):
    """An os.environ stand-in that notes every variable looked up."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


INFERENCE_VARIABLES = documented_settings()


@dataclass
class TaskLog:
    task: str
    model: str
    steps: list[dict]
    end: dict


def run_inference(*args: str, status: int = 0, cwd: Path | None = None, timeout_s: float = 300, **variables: str) -> tuple[list[TaskLog], str]:
    """Run inference.py as a user would, with none of this machine's inference settings but
    `variables`, in an empty folder (so no .env applies) unless `cwd` is given; check its
    exit status and parse its stdout strictly."""
    env = {k: v for k, v in os.environ.items() if k not in INFERENCE_VARIABLES}
    env.update(variables)
    with tempfile.TemporaryDirectory(prefix="inference_cwd_") as empty:
        result = subprocess.run(
            [sys.executable, str(ROOT / "inference.py"), *args], cwd=cwd or empty, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    assert result.returncode == status, f"exit status {result.returncode}\n{result.stderr}"
    return parse_log(result.stdout), result.stderr


def parse_log(stdout: str) -> list[TaskLog]:
    """Every stdout line must be one of the three formats, in START, STEP*, END blocks."""
    logs: list[TaskLog] = []
    current: TaskLog | None = None
    for line in stdout.splitlines():
        if m := START.match(line):
            assert current is None, f"[START] inside a block: {line}"
            current = TaskLog(m["task"], m["model"], [], {})
        elif m := STEP.match(line):
            assert current is not None, line
            assert int(m["step"]) == len(current.steps) + 1
            json.loads(m["action"])
            current.steps.append(m.groupdict())
        elif m := END.match(line):
            assert current is not None, line
            current.end = m.groupdict()
            assert int(m["steps"]) == len(current.steps)
            rewards = m["rewards"].split(",") if m["rewards"] else []
            assert rewards == [s["reward"] for s in current.steps]
            logs.append(current)
            current = None
        else:
            pytest.fail(f"stdout line in no known format: {line!r}")
    assert current is None, "a [START] without its [END]"
    return logs


def readme_transcript() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Transcript excerpt (offline):", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip() and line.strip() != "..."]


def test_offline_run_plays_the_reference_policy_on_all_three_tasks(tmp_path):
    results_path = tmp_path / "results.json"
    logs, stderr = run_inference("--results", str(results_path))
    stdout_lines = {f"[STEP] step={s['step']} action={s['action']} reward={s['reward']} done={s['done']} error={s['error']}" for log in logs for s in log.steps}
    stdout_lines |= {f"[START] task={log.task} env=support_env model={log.model}" for log in logs}
    stdout_lines |= {f"[END] success={log.end['success']} steps={log.end['steps']} score={log.end['score']} rewards={log.end['rewards']}" for log in logs}
    missing = [line for line in readme_transcript() if line not in stdout_lines]
    assert readme_transcript() and not missing, f"README transcript lines the real log does not print: {missing}"

    assert [log.task for log in logs] == list(QUEUE_TASKS)
    assert "mode: scripted reference policy" in stderr
    results = json.loads(results_path.read_text())["results"]
    for log, result in zip(logs, results):
        env = SupportEnvironment()
        expected = play(ReferencePolicy(), lambda: env.reset(task_id=log.task), env.step)
        assert log.model == "scripted"
        assert result["grade"] == expected.grade.score
        assert float(log.end["score"]) == round(min(0.99, max(0.01, expected.grade.score)), 3)
        assert log.end["success"] == "true"
        assert [float(s["reward"]) for s in log.steps] == [round(r, 2) for r in expected.rewards]
        assert all(s["error"] == "null" for s in log.steps)
        assert result["tickets"] and result["wall_time_s"] > 0


def test_it_drives_an_already_running_server_via_env_base_url(server):
    logs, stderr = run_inference("--tasks", "medium_kb_reply", ENV_BASE_URL=server.url)
    assert [log.task for log in logs] == ["medium_kb_reply"]
    assert "started an embedded server" not in stderr
    assert logs[0].end["success"] == "true"


@pytest.fixture(scope="module")
def fake_llm():
    server = FakeLLMServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def llm_run(fake_llm, server):
    return lambda model, status=0: run_llm(fake_llm, server.url, model, status)


def run_llm(fake_llm, env_url: str, model: str, status: int = 0) -> tuple[TaskLog, str]:
    logs, stderr = run_inference(
        "--tasks", "easy_classify", status=status,
        ENV_BASE_URL=env_url, HF_TOKEN="test-token", API_BASE_URL=fake_llm.url, MODEL_NAME=model, MODEL_BACKOFF_S="0.01", MODEL_MAX_RETRIES="3",
    )
    assert len(logs) == 1 and logs[0].model == model
    return logs[0], stderr


@pytest.mark.parametrize("model", ["tools", "fenced-json", "no-tools"])
def test_tool_calls_fenced_json_and_the_no_tools_fallback_all_become_actions(llm_run, model):
    log, stderr = llm_run(model)
    actions = [json.loads(s["action"]) for s in log.steps]
    assert [a["action_type"] for a in actions] == ["classify_ticket", "close_ticket"] * 5
    assert all(s["error"] == "null" for s in log.steps)
    assert log.end["success"] == "false"  # every ticket classified as billing: a partial grade
    assert 0.01 < float(log.end["score"]) < 0.99
    if model == "no-tools":
        assert "falling back to JSON" in stderr


def test_garbage_output_becomes_penalised_invalid_actions_until_the_episode_fails(llm_run):
    log, _ = llm_run("garbage")  # exit status 0: the episode was played to its end; a low grade is a result
    assert len(log.steps) == 10
    assert all(s["reward"] == "-0.20" for s in log.steps)
    assert all("unknown action_type 'unparseable_model_output'" in s["error"] for s in log.steps)
    assert log.end == {**log.end, "success": "false", "score": "0.010"}


def test_a_429_is_retried_and_the_task_completes(fake_llm, llm_run):
    fake_llm.fake.requests.clear()
    log, stderr = llm_run("flaky-429")
    assert "retrying" in stderr
    assert len(log.steps) == 10 and log.steps[-1]["done"] == "true"
    assert len(fake_llm.fake.requests) == 11


def test_a_dead_endpoint_ends_the_task_cleanly_and_the_run_fails(fake_llm, llm_run):
    fake_llm.fake.requests.clear()
    log, stderr = llm_run("dead-500", status=1)
    assert log.steps == [] and log.end["success"] == "false" and log.end["score"] == "0.010"
    assert "failed after 4 attempts" in stderr
    assert "1 of 1 tasks could not be played to the end: easy_classify" in stderr
    assert len(fake_llm.fake.requests) == 4


def hanging_llm(fake_llm, server, *args: str, **variables: str) -> tuple[list[TaskLog], str]:
    """inference.py against a model endpoint that accepts every request and never answers.
    Without deadlines a call would wait MODEL_TIMEOUT_S (60 s) five times per task, far past
    `timeout_s`; the deadlines here are a few seconds, so the margin is wide either way."""
    settings = dict(ENV_BASE_URL=server.url, HF_TOKEN="test-token", API_BASE_URL=fake_llm.url, MODEL_NAME="hang", MODEL_BACKOFF_S="0.01")
    return run_inference(*args, status=1, timeout_s=120, **(settings | variables))


def test_a_model_endpoint_that_never_answers_costs_each_task_its_deadline(fake_llm, server, tmp_path):
    results = tmp_path / "results.json"
    logs, stderr = hanging_llm(fake_llm, server, "--tasks", "easy_classify,medium_kb_reply", "--task-timeout", "1", "--results", str(results))
    assert [log.task for log in logs] == ["easy_classify", "medium_kb_reply"]
    assert all(log.steps == [] and log.end["success"] == "false" for log in logs)
    assert stderr.count("the task deadline (--task-timeout / TASK_TIMEOUT_S: 1 s) passed") == 2
    errors = [r["error"] for r in json.loads(results.read_text())["results"]]
    assert all(e.startswith("DeadlineReached: the task deadline") for e in errors), errors


def test_the_task_deadline_can_come_from_the_environment(fake_llm, server):
    logs, stderr = hanging_llm(fake_llm, server, "--tasks", "easy_classify", TASK_TIMEOUT_S="1")
    assert len(logs) == 1 and "the task deadline (--task-timeout / TASK_TIMEOUT_S: 1 s) passed" in stderr


def test_the_run_deadline_ends_the_run_and_tasks_not_started_are_reported_as_not_played(fake_llm, server):
    logs, stderr = hanging_llm(fake_llm, server, "--tasks", ",".join(QUEUE_TASKS), "--task-timeout", "600", RUN_TIMEOUT_S="3")
    assert [log.task for log in logs] == list(QUEUE_TASKS)
    assert all(log.steps == [] and log.end == {"success": "false", "steps": "0", "score": "0.010", "rewards": ""} for log in logs)
    for task in QUEUE_TASKS[1:]:
        assert f"task {task} not played: the run deadline (--timeout / RUN_TIMEOUT_S: 3 s) passed before it started" in stderr
    assert "3 of 3 tasks could not be played to the end" in stderr


def test_a_model_call_that_never_answers_times_out_after_model_timeout_s(fake_llm, server):
    fake_llm.fake.requests.clear()
    logs, stderr = hanging_llm(fake_llm, server, "--tasks", "easy_classify", MODEL_TIMEOUT_S="0.5", MODEL_MAX_RETRIES="1")
    assert "transient model error (APITimeoutError)" in stderr and "failed after 2 attempts" in stderr
    assert len(fake_llm.fake.requests) == 2


def test_an_unreachable_environment_fails_every_task_and_the_run():
    logs, stderr = run_inference(status=1, ENV_BASE_URL=f"http://127.0.0.1:{free_port()}")
    assert [log.task for log in logs] == list(QUEUE_TASKS)
    assert all(log.steps == [] and log.end["success"] == "false" for log in logs)
    assert "ConnectError" in stderr


@pytest.fixture
def inference(monkeypatch, tmp_path):
    """inference.py imported as a module, to call main() in this process: in an empty working
    directory, with no inference setting in the environment, and no server allowed to start."""

    def no_server(*args, **kwargs):
        raise AssertionError("inference.py started a server")

    monkeypatch.chdir(tmp_path)
    for name in INFERENCE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    spec = importlib.util.spec_from_file_location("inference_under_test", ROOT / "inference.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(local_server, "LocalServer", no_server)
    return module


def test_an_unknown_task_id_fails_at_once_listing_the_valid_ones():
    logs, stderr = run_inference("--tasks", "nonexistent", status=2)  # no ENV_BASE_URL: it would start a server first
    assert logs == []
    assert stderr.strip() == f"inference.py: error: unknown task id 'nonexistent' in --tasks; valid task ids: {', '.join(TASK_IDS)}"


@pytest.mark.parametrize("args, variables, message", [
    (["--tasks", "easy_classify,nope,hard"], {}, "unknown task id 'nope', 'hard' in --tasks"),
    ([], {"TASKS": "easy_classify,nonexistent"}, "unknown task id 'nonexistent' in TASKS"),
    (["--tasks", " , "], {}, "--tasks names no task"),
])
def test_unknown_task_ids_are_refused_before_a_server_starts(inference, monkeypatch, capsys, args, variables, message):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert inference.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"inference.py: error: {message}; valid task ids: {', '.join(TASK_IDS)}\n"


@pytest.mark.parametrize("name, raw", [
    ("RUN_TIMEOUT_S", "soon"), ("TASK_TIMEOUT_S", "0"), ("MODEL_TIMEOUT_S", "-1"), ("MODEL_MAX_RETRIES", "many"),
    ("MODEL_BACKOFF_S", "x"), ("ENV_BASE_URL", "localhost:7860"), ("API_BASE_URL", "router"),
])
def test_a_bad_setting_fails_at_once_with_one_line_naming_it(inference, monkeypatch, capsys, name, raw):
    monkeypatch.setenv(name, raw)
    assert inference.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and re.fullmatch(f"inference.py: error: {name} must be .*, got '{re.escape(raw)}'\n", err), err


@pytest.mark.parametrize("flag, raw", [("--timeout", "0"), ("--task-timeout", "soon"), ("--timeout", "inf")])
def test_a_bad_deadline_flag_is_a_usage_error(inference, capsys, flag, raw):
    with pytest.raises(SystemExit) as stopped:
        inference.main([flag, raw])
    assert stopped.value.code == 2
    assert f"argument {flag}: must be a positive number of seconds, got '{raw}'" in capsys.readouterr().err


def test_help_lists_every_task_and_every_setting_and_the_readme_table_matches_the_code(inference, monkeypatch):
    result = subprocess.run([sys.executable, str(ROOT / "inference.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    help_text = result.stdout
    assert all(task in help_text for task in TASK_IDS)
    setting_lines = re.findall(r"^  ([A-Z][A-Z0-9_, ]*?)(?: / --[a-z-]+)?  \(default: ", help_text, re.M)
    in_help = {name for line in setting_lines for name in line.split(", ")}
    args, environ = inference.build_parser().parse_args([]), ReadRecorder()
    with monkeypatch.context() as patch:
        patch.setattr(os, "environ", environ)
        inference.read_config(args)  # every variable inference.py reads is looked up here
    assert documented_settings() == environ.read == in_help, (documented_settings() ^ environ.read, documented_settings() ^ in_help)
    for flag in ("--tasks", "--seed", "--split", "--results", "--timeout", "--task-timeout"):
        assert flag in help_text
    assert "exit status:" in help_text


def test_the_task_ids_inference_reads_without_importing_support_env_are_the_catalogues(inference):
    assert inference.catalogue().queue_tasks == QUEUE_TASKS and inference.catalogue().task_ids == TASK_IDS
    assert [inference.catalogue().summary(t) for t in QUEUE_TASKS] == ["easy, 5 tickets", "medium, 5 tickets", "hard, 10 tickets"]


def test_checking_the_arguments_imports_no_support_env_module(tmp_path):
    """So that a wrong task id, a bad setting or --help answers at once: support_env's first
    import (OpenEnv and gradio) takes seconds."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['inference.py', '--tasks', 'nonexistent']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'inference.py')!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, sorted(m for m in sys.modules if m.split('.')[0] in ('support_env', 'openenv', 'gradio')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "2 []", result.stdout + result.stderr


@pytest.mark.parametrize("environment, expected", [({}, "medium_kb_reply"), ({"TASKS": "easy_classify"}, "easy_classify")])
def test_settings_come_from_dot_env_in_the_working_directory_and_the_environment_wins(server, tmp_path, environment, expected):
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + f"TASKS=medium_kb_reply\nENV_BASE_URL={server.url}\n")  # later lines win
    logs, stderr = run_inference(cwd=tmp_path, **environment)
    assert [log.task for log in logs] == [expected]
    assert "started an embedded server" not in stderr  # ENV_BASE_URL came from the file


def test_prompts_stay_small_on_the_hard_queue():
    """Every prompt the LLM agent would send on hard_mixed_queue fits well inside 8k tokens."""
    from support_env.agents.llm import SYSTEM_PROMPT, build_prompt

    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id="hard_mixed_queue"), env.step)
    sizes = [len(SYSTEM_PROMPT) + len(build_prompt(o)) for o in rollout.observations if not o.done]
    assert max(sizes) < 12_000  # characters; about 3k tokens at 4 characters a token
