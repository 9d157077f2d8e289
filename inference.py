"""Baseline agent: plays support_env tasks over HTTP and prints the standard log.

    python inference.py                      # the three canonical queue tasks
    python inference.py --tasks hard_mixed_queue --results results.json

With HF_TOKEN (or OPENAI_API_KEY, or API_KEY) set, an LLM chooses every action
through an OpenAI-compatible endpoint (API_BASE_URL, MODEL_NAME). Without a
key, the scripted reference policy plays, so the run is reproducible offline.
ENV_BASE_URL points at a running server; unset, a server is started on a free
loopback port for the run and stopped afterwards.

Stdout carries only these lines, per task (debug output goes to stderr):
    [START] task=<task_id> env=support_env model=<model or "scripted">
    [STEP] step=<n> action=<compact action> reward=<0.00> done=<true|false> error=<message or null>
    [END] success=<true|false> steps=<n> score=<0.000> rewards=<r1,r2,...>
The printed score is the grade clamped into [0.01, 0.99]; the raw grade goes
to stderr and to the --results JSON file.

Every wait has a deadline: the run's (--timeout) and each task's
(--task-timeout) bound every model call (MODEL_TIMEOUT_S at most) and every
request to the environment, so an endpoint that accepts a request and never
answers costs a task its deadline, not the run its time.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import sys
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
from dotenv import load_dotenv

from server.settings import SettingError, positive_number, url, whole_number

# support_env is imported only once the arguments and settings have been checked (in play()):
# its first import (OpenEnv, and gradio through it) takes seconds, and a mistyped task id or
# --help should answer at once.

BENCHMARK = "support_env"
PROGRAM = "inference.py"
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
SCORE_FLOOR, SCORE_CEILING = 0.01, 0.99
LOG_VALUE_CHARS = 160
DEFAULT_RUN_TIMEOUT_S = 19 * 60.0  # the whole run stays inside 20 minutes
DEFAULT_MODEL_TIMEOUT_S = 60.0
DEFAULT_MODEL_MAX_RETRIES = 4
DEFAULT_MODEL_BACKOFF_S = 1.0
ENV_REQUEST_TIMEOUT_S = 30.0  # one request to the environment server
SERVER_START_TIMEOUT_S = 60.0
EXIT_OK, EXIT_TASK_NOT_PLAYED, EXIT_USAGE = 0, 1, 2

# Every setting, for --help (the README's table says the same; a test keeps them equal):
# (environment variables, flag, default, meaning). A flag wins over its variable, and a
# variable set in the environment wins over one in .env.
SETTINGS = (
    ("HF_TOKEN, OPENAI_API_KEY, API_KEY", None, "unset",
     "key for the model endpoint (the first one set); with none, the scripted reference policy plays offline"),
    ("API_BASE_URL", None, DEFAULT_API_BASE_URL, "any OpenAI-compatible endpoint"),
    ("MODEL_NAME", None, DEFAULT_MODEL, "the model that chooses the actions"),
    ("MODEL_TIMEOUT_S", None, f"{DEFAULT_MODEL_TIMEOUT_S:g}", "seconds one model call may take; less when the task's deadline is nearer"),
    ("MODEL_MAX_RETRIES", None, f"{DEFAULT_MODEL_MAX_RETRIES}",
     "retries of a 429, a 5xx or a timed-out model call; past them the task ends, not played to the end"),
    ("MODEL_BACKOFF_S", None, f"{DEFAULT_MODEL_BACKOFF_S:g}", "seconds of back-off before the first retry, doubling for each one after it"),
    ("ENV_BASE_URL", None, "unset", "a running support_env server; unset, one is started on a free loopback port and stopped at the end"),
    ("TASKS", "--tasks", "the three queue tasks", "comma-separated task ids, played in this order"),
    ("RUN_TIMEOUT_S", "--timeout", f"{DEFAULT_RUN_TIMEOUT_S:g}",
     "seconds the whole run may take, server start included; tasks not started by then are not played"),
    ("TASK_TIMEOUT_S", "--task-timeout", "a fair share",
     "seconds one task may take; by default each task gets an equal share of the run's time left for the tasks not yet played"),
    ("REWARD_MODE", "--reward-mode", "dense",
     "dense: shaped step rewards, the grade added on the last step; sparse: every step 0 until the last, which is the grade (evaluations)"),
    ("RESULTS_PATH", "--results", "unset", "write a JSON results file (task, seed, model, grade, per-ticket components, steps, wall time, error)"),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(line: str) -> None:
    print(line, flush=True)


def one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def render_action(action) -> str:
    fields = action.model_dump(exclude_none=True, exclude={"metadata"})
    short = {k: (v[:LOG_VALUE_CHARS] + "...") if isinstance(v, str) and len(v) > LOG_VALUE_CHARS else v for k, v in fields.items()}
    return json.dumps(short, separators=(",", ":"), ensure_ascii=False)  # JSON escapes newlines itself


def clamp_score(score: float) -> float:
    return min(SCORE_CEILING, max(SCORE_FLOOR, score))


# --- the task catalogue, read without importing support_env -----------------------------

@dataclass(frozen=True)
class Catalogue:
    queue_tasks: tuple[str, ...]
    case_tasks: tuple[str, ...]
    expert_tasks: tuple[str, ...]
    data_folder: Path

    @property
    def task_ids(self) -> tuple[str, ...]:
        return self.queue_tasks + self.case_tasks + self.expert_tasks

    def summary(self, task_id: str) -> str:
        """`<difficulty>, <n> tickets`, from the task's data file (a generated canonical queue: 6-8)."""
        raw = json.loads((self.data_folder / f"{task_id}.json").read_text(encoding="utf-8"))
        count = len(raw["tickets"]) or "6-8"
        return f"{raw['difficulty']}, {count} ticket{'' if count == 1 else 's'}"


@lru_cache(maxsize=None)
def catalogue() -> Catalogue:
    """The task ids exactly as support_env/episodes/catalogue.py lists them (QUEUE_TASKS,
    CASE_TASKS and EXPERT_TASKS, literal tuples there), read from its source instead of imported: see the note
    on imports above. tests/test_inference.py checks that they are the catalogue's own."""
    package = Path(importlib.util.find_spec("support_env").origin).parent  # found, not run
    tree = ast.parse((package / "episodes" / "catalogue.py").read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: tuple(ast.literal_eval(node.value))
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("QUEUE_TASKS", "CASE_TASKS", "EXPERT_TASKS")
    }
    return Catalogue(constants["QUEUE_TASKS"], constants["CASE_TASKS"], constants["EXPERT_TASKS"], package / "episodes" / "data" / "tasks")


# --- deadlines -------------------------------------------------------------------------

class DeadlineReached(TimeoutError):
    """The run's or the current task's deadline passed; the task ends, not played to the end."""


class Deadlines:
    """The run's deadline and the current task's. Everything that waits (a model call, a
    back-off, a request to the environment, the server's start) asks `wait_at_most` how
    long it may, so no wait outlives the nearer deadline."""

    def __init__(self, run_timeout_s: float, task_timeout_s: float | None):
        self.run_timeout_s = run_timeout_s
        self.task_timeout_s = task_timeout_s
        self.run_ends = time.monotonic() + run_timeout_s
        self.task_ends = self.run_ends

    def start_task(self, tasks_left: int) -> None:
        """The task's deadline: --task-timeout from now, or else an equal share of the run's
        time left among the tasks not yet played (time a task leaves unused goes to the ones
        after it); never past the run's deadline."""
        now = time.monotonic()
        budget = self.task_timeout_s if self.task_timeout_s is not None else (self.run_ends - now) / max(1, tasks_left)
        self.task_ends = min(self.run_ends, now + budget)

    def run_left(self) -> float:
        return self.run_ends - time.monotonic()

    def left(self) -> float:
        return min(self.task_ends, self.run_ends) - time.monotonic()

    def describe(self) -> str:
        if self.task_ends < self.run_ends:
            budget = f"{self.task_timeout_s:g} s" if self.task_timeout_s is not None else "its share of the run"
            return f"the task deadline (--task-timeout / TASK_TIMEOUT_S: {budget})"
        return f"the run deadline (--timeout / RUN_TIMEOUT_S: {self.run_timeout_s:g} s)"

    def check(self) -> None:
        if self.left() <= 0:
            raise DeadlineReached(f"{self.describe()} passed")

    def wait_at_most(self, seconds: float) -> float:
        """`seconds`, or less when a deadline is nearer; DeadlineReached once one has passed."""
        self.check()
        return max(0.001, min(seconds, self.left()))

    def sleep(self, seconds: float) -> None:
        """A back-off that ends at the deadline at the latest, and then raises DeadlineReached."""
        time.sleep(max(0.0, min(seconds, self.left())))
        self.check()


class DeadlineBoundClient:
    """An OpenAI client whose every chat completion may take MODEL_TIMEOUT_S, or less when the
    deadline is nearer. The openai client's own timeout is per call, so against an endpoint that
    never answers, each retry would otherwise wait the full timeout again."""

    def __init__(self, client: Any, deadlines: Deadlines, call_timeout_s: float):
        self._client = client
        self._deadlines = deadlines
        self._call_timeout_s = call_timeout_s
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, **kwargs: Any) -> Any:
        return self._client.chat.completions.create(**kwargs, timeout=self._deadlines.wait_at_most(self._call_timeout_s))


# --- the environment over HTTP ---------------------------------------------------------

class HttpEnv:
    """One episode at a time over the stateful HTTP API; every request ends by the deadline."""

    def __init__(self, base_url: str, deadlines: Deadlines):
        self.client = httpx.Client(base_url=base_url)
        self.deadlines = deadlines
        self.episode_id: str | None = None

    def reset(self, task_id: str, seed: int | None, split: str | None = None, reward_mode: str | None = None):
        body = {"task_id": task_id} | ({"seed": seed} if seed is not None else {}) | ({"split": split} if split else {})
        body |= {"reward_mode": reward_mode} if reward_mode else {}
        observation = self._observation(self._post("/reset", body))
        self.episode_id = observation.episode_id
        return observation

    def step(self, action):
        payload = {"action": action.model_dump(exclude_none=True, exclude={"metadata"}), "episode_id": self.episode_id}
        return self._observation(self._post("/step", payload))

    def _post(self, path: str, body: dict) -> dict:
        for attempt in range(3):
            try:
                response = self.client.post(path, json=body, timeout=self.deadlines.wait_at_most(ENV_REQUEST_TIMEOUT_S))
            except httpx.TransportError:
                if attempt == 2:
                    raise
                self.deadlines.sleep(0.5 * 2**attempt)
                continue
            if response.is_error:  # say what the server said, not only its status line
                raise httpx.HTTPStatusError(f"{path} answered {response.status_code}: {response.text[:300]}", request=response.request, response=response)
            return response.json()
        raise RuntimeError("unreachable")

    @staticmethod
    def _observation(payload: dict):
        from support_env.models import SupportObservation

        return SupportObservation.model_validate({**payload["observation"], "done": payload["done"], "reward": payload["reward"]})

    def close(self) -> None:
        self.client.close()


@contextmanager
def environment_server(base_url: str | None, deadlines: Deadlines) -> Iterator[str]:
    """Yield a server URL: ENV_BASE_URL as given, or a server started for this run."""
    if base_url:
        yield base_url
        return
    from support_env.access.local_server import LocalServer

    with LocalServer(name="the embedded server", timeout_s=max(1.0, min(SERVER_START_TIMEOUT_S, deadlines.run_left()))) as server:
        log(f"started an embedded server at {server.url}")
        yield server.url


# --- one task --------------------------------------------------------------------------

def run_task(
    env: HttpEnv, policy, task_id: str, seed: int | None, model_label: str, deadlines: Deadlines, split: str | None = None,
    reward_mode: str | None = None,
) -> dict:
    """Play one task, printing its [START]/[STEP]/[END] lines whatever happens. A task that
    ends before its episode does carries an `error`; a finished one never does, whatever its grade."""
    from support_env.agents.llm import EndpointFailed

    emit(f"[START] task={task_id} env={BENCHMARK} model={model_label}")
    rewards: list[float] = []
    grade = None
    started = time.monotonic()
    error_note = None
    try:
        observation = env.reset(task_id, seed, split, reward_mode)
        while not observation.done:
            deadlines.check()
            action = policy.act(observation)
            observation = env.step(action)
            rewards.append(observation.reward or 0.0)
            error = one_line(observation.last_action_error) if observation.last_action_error else "null"
            emit(
                f"[STEP] step={len(rewards)} action={render_action(action)} reward={rewards[-1]:.2f} "
                f"done={str(observation.done).lower()} error={error}"
            )
        grade = observation.grade
    except (EndpointFailed, TimeoutError, httpx.HTTPError, RuntimeError, ValueError) as exc:
        error_note = f"{type(exc).__name__}: {exc}"
        log(f"task {task_id} ended early: {error_note}")
    raw = grade.score if grade else 0.0
    success = bool(grade and grade.success)
    score = clamp_score(raw)
    emit(f"[END] success={str(success).lower()} steps={len(rewards)} score={score:.3f} rewards={','.join(f'{r:.2f}' for r in rewards)}")
    log(f"task {task_id}: raw grade {raw:.4f}, success {success}, {len(rewards)} steps")
    return {
        "task_id": task_id,
        "seed": seed,
        "split": split if seed is not None else None,
        "model": model_label,
        "grade": raw,
        "score": score,
        "success": success,
        "steps": len(rewards),
        "rewards": rewards,
        "wall_time_s": round(time.monotonic() - started, 3),
        "tickets": [t.model_dump() for t in grade.tickets] if grade else [],
        "error": error_note,
    }


def not_played(task_id: str, seed: int | None, model_label: str, reason: str) -> dict:
    """The log lines and the result of a task that never started."""
    emit(f"[START] task={task_id} env={BENCHMARK} model={model_label}")
    emit(f"[END] success=false steps=0 score={SCORE_FLOOR:.3f} rewards=")
    log(f"task {task_id} not played: {reason}")
    return {
        "task_id": task_id, "seed": seed, "split": None, "model": model_label, "grade": 0.0, "score": SCORE_FLOOR,
        "success": False, "steps": 0, "rewards": [], "wall_time_s": 0.0, "tickets": [], "error": reason,
    }


# --- settings --------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    tasks: list[str]
    seed: int | None
    split: str | None
    reward_mode: str | None
    results: str | None
    run_timeout_s: float
    task_timeout_s: float | None
    api_key: str | None
    api_base_url: str
    model: str
    model_timeout_s: float
    model_max_retries: int
    model_backoff_s: float
    env_base_url: str | None


def seconds(text: str) -> float:
    """argparse type of --timeout and --task-timeout."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def task_list(text: str, source: str) -> list[str]:
    """The task ids in `text`, every one in the catalogue, or a SettingError naming `source`."""
    valid = catalogue().task_ids
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    if not tasks:
        raise SettingError(f"{source} names no task; valid task ids: {', '.join(valid)}")
    unknown = [t for t in tasks if t not in valid]
    if unknown:
        raise SettingError(f"unknown task id {', '.join(map(repr, unknown))} in {source}; valid task ids: {', '.join(valid)}")
    return tasks


def reward_mode_setting() -> str | None:
    """REWARD_MODE, if set: dense or sparse, else a SettingError."""
    value = os.environ.get("REWARD_MODE", "").strip()
    if value and value not in ("dense", "sparse"):
        raise SettingError(f"REWARD_MODE={value!r} is not a reward mode; use dense or sparse")
    return value or None


def read_config(args: argparse.Namespace) -> Config:
    """Flags over environment variables over defaults; SettingError for a value that cannot be used."""
    if args.tasks is not None:
        tasks = task_list(args.tasks, "--tasks")
    elif os.environ.get("TASKS", "").strip():
        tasks = task_list(os.environ["TASKS"], "TASKS")
    else:
        tasks = list(catalogue().queue_tasks)
    api_key = next((os.environ[k].strip() for k in ("HF_TOKEN", "OPENAI_API_KEY", "API_KEY") if os.environ.get(k, "").strip()), None)
    return Config(
        tasks=tasks,
        seed=args.seed,
        split=args.split,
        reward_mode=args.reward_mode or reward_mode_setting(),
        results=args.results or os.environ.get("RESULTS_PATH", "").strip() or None,
        run_timeout_s=args.timeout or positive_number("RUN_TIMEOUT_S", DEFAULT_RUN_TIMEOUT_S, "seconds", float),
        task_timeout_s=args.task_timeout or positive_number("TASK_TIMEOUT_S", None, "seconds", float),
        api_key=api_key,
        api_base_url=url("API_BASE_URL", DEFAULT_API_BASE_URL),
        model=os.environ.get("MODEL_NAME", "").strip() or DEFAULT_MODEL,
        model_timeout_s=positive_number("MODEL_TIMEOUT_S", DEFAULT_MODEL_TIMEOUT_S, "seconds", float),
        model_max_retries=whole_number("MODEL_MAX_RETRIES", DEFAULT_MODEL_MAX_RETRIES, "retries"),
        model_backoff_s=positive_number("MODEL_BACKOFF_S", DEFAULT_MODEL_BACKOFF_S, "seconds", float),
        env_base_url=url("ENV_BASE_URL", None),
    )


def help_epilog() -> str:
    tasks = catalogue()
    lines = ["tasks (--tasks, TASKS):", "  queue tasks, the default, in this order:"]
    lines += [f"    {t:<26} {tasks.summary(t)}" for t in tasks.queue_tasks]
    lines += ["  case tasks (record look-ups and account operations):"]
    lines += [f"    {t:<26} {tasks.summary(t)}" for t in tasks.case_tasks]
    lines += ["  expert tasks (every ticket needs records, dates and policy read together):"]
    lines += [f"    {t:<26} {tasks.summary(t)}" for t in tasks.expert_tasks]
    lines += ["", "settings (environment variables, also read from a .env file in the working directory;",
              "a variable already set wins over .env, and a flag wins over its variable):"]
    for variables, flag, default, meaning in SETTINGS:
        lines.append(f"  {variables}" + (f" / {flag}" if flag else "") + f"  (default: {default})")
        lines += textwrap.wrap(meaning, width=88, initial_indent="      ", subsequent_indent="      ")
    lines += ["", "exit status:",
              "  0  every task was played to the end of its episode, whatever its grade",
              "  1  a task could not be (the model endpoint failed, a deadline passed, the environment",
              "     could not be reached or started); its [END] line still prints, with success=false",
              "  2  a bad argument or setting (an unknown task id, RUN_TIMEOUT_S=soon), before anything starts"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__, epilog=help_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=None, help="comma-separated task ids (default: TASKS, else the three queue tasks)")
    parser.add_argument("--seed", type=int, default=None, help="seed for every task: a generated episode (default: the canonical episodes)")
    parser.add_argument("--split", choices=("train", "eval"), default=None, help="template split of seeded episodes (default train)")
    parser.add_argument("--reward-mode", choices=("dense", "sparse"), default=None,
                        help="dense (shaped step rewards) or sparse (0 until the last step, which carries the grade; "
                        "for evaluations) (default: REWARD_MODE, else dense)")
    parser.add_argument("--results", default=None, help="write a JSON results file here (default: RESULTS_PATH, else none)")
    parser.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                        help=f"deadline of the whole run (default: RUN_TIMEOUT_S, else {DEFAULT_RUN_TIMEOUT_S:g})")
    parser.add_argument("--task-timeout", type=seconds, default=None, metavar="SECONDS",
                        help="deadline of each task (default: TASK_TIMEOUT_S, else a fair share of the run's time left)")
    return parser


# --- the run ---------------------------------------------------------------------------

def make_policy(config: Config, deadlines: Deadlines):
    if not config.api_key:
        log("mode: scripted reference policy (no HF_TOKEN / OPENAI_API_KEY / API_KEY set)")
        from support_env.agents.reference import ReferencePolicy

        return lambda: ReferencePolicy(), "scripted"
    from openai import OpenAI

    from support_env.agents.llm import LLMPolicy

    log(f"mode: LLM {config.model} via {config.api_base_url}")
    client = DeadlineBoundClient(
        OpenAI(api_key=config.api_key, base_url=config.api_base_url, timeout=config.model_timeout_s, max_retries=0),
        deadlines, config.model_timeout_s,
    )
    return lambda: LLMPolicy(
        client, config.model, max_retries=config.model_max_retries, backoff_s=config.model_backoff_s, sleep=deadlines.sleep, log=log
    ), config.model


def play(config: Config, deadlines: Deadlines) -> list[dict]:
    """Every task in order, each within its deadline; a result per task, played or not."""
    new_policy, label = make_policy(config, deadlines)
    split = config.split if config.seed is not None else None
    results: list[dict] = []
    try:
        with environment_server(config.env_base_url, deadlines) as env_url:
            env = HttpEnv(env_url, deadlines)
            for index, task_id in enumerate(config.tasks):
                if deadlines.run_left() <= 0:
                    results.append(not_played(task_id, config.seed, label, f"{deadlines.describe()} passed before it started"))
                    continue
                deadlines.start_task(len(config.tasks) - index)
                policy = new_policy()
                result = run_task(env, policy, task_id, config.seed, label, deadlines, split, config.reward_mode)
                if getattr(policy, "prompt_chars", None):
                    result["prompt_chars_max"] = max(policy.prompt_chars)
                    result["prompt_chars_mean"] = round(sum(policy.prompt_chars) / len(policy.prompt_chars))
                results.append(result)
            env.close()
    except RuntimeError as exc:  # the embedded server did not start (ServerStartError)
        log(f"could not start or reach the environment: {exc}")
        for task_id in config.tasks[len(results):]:
            results.append(not_played(task_id, config.seed, label, f"no environment: {str(exc).splitlines()[0]}"))
    return results


def main(argv: list[str] | None = None) -> int:
    load_dotenv(".env")  # the working directory's; variables already set win
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args)
    except SettingError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    deadlines = Deadlines(config.run_timeout_s, config.task_timeout_s)
    results = play(config, deadlines)
    if config.results:
        Path(config.results).write_text(json.dumps({"benchmark": BENCHMARK, "results": results}, indent=2))
        log(f"wrote {config.results}")
    not_finished = [r["task_id"] for r in results if r["error"]]
    if not_finished:
        log(f"{len(not_finished)} of {len(results)} tasks could not be played to the end: {', '.join(not_finished)} (exit status 1)")
        return EXIT_TASK_NOT_PLAYED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
