"""Baseline agent: plays support_env tasks over HTTP and prints the standard log.

    python inference.py                      # all three canonical tasks
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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
from dotenv import load_dotenv

from support_env.agents.llm import EndpointFailed, LLMPolicy
from support_env.access.local_server import LocalServer
from support_env.models import SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.episodes.catalogue import QUEUE_TASKS

BENCHMARK = "support_env"
DEFAULT_API_BASE_URL = "https://router.huggingface.co/v1"
DEFAULT_MODEL = "meta-llama/Llama-3.3-70B-Instruct"
SCORE_FLOOR, SCORE_CEILING = 0.01, 0.99
LOG_VALUE_CHARS = 160
RUN_DEADLINE_S = 19 * 60  # the whole run stays inside 20 minutes
MODEL_CALL_TIMEOUT_S = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(line: str) -> None:
    print(line, flush=True)


def one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def render_action(action: SupportAction) -> str:
    fields = action.model_dump(exclude_none=True, exclude={"metadata"})
    short = {k: (v[:LOG_VALUE_CHARS] + "...") if isinstance(v, str) and len(v) > LOG_VALUE_CHARS else v for k, v in fields.items()}
    return json.dumps(short, separators=(",", ":"), ensure_ascii=False)  # JSON escapes newlines itself


def clamp_score(score: float) -> float:
    return min(SCORE_CEILING, max(SCORE_FLOOR, score))


# --- the environment over HTTP ---------------------------------------------------

class HttpEnv:
    """One episode at a time over the stateful HTTP API."""

    def __init__(self, base_url: str):
        self.client = httpx.Client(base_url=base_url, timeout=30.0)
        self.episode_id: str | None = None

    def reset(self, task_id: str, seed: int | None, split: str | None = None) -> SupportObservation:
        body = {"task_id": task_id} | ({"seed": seed} if seed is not None else {}) | ({"split": split} if split else {})
        observation = self._observation(self._post("/reset", body))
        self.episode_id = observation.episode_id
        return observation

    def step(self, action: SupportAction) -> SupportObservation:
        payload = {"action": action.model_dump(exclude_none=True, exclude={"metadata"}), "episode_id": self.episode_id}
        return self._observation(self._post("/step", payload))

    def _post(self, path: str, body: dict) -> dict:
        for attempt in range(3):
            try:
                response = self.client.post(path, json=body)
            except httpx.TransportError:
                if attempt == 2:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            response.raise_for_status()
            return response.json()
        raise RuntimeError("unreachable")

    @staticmethod
    def _observation(payload: dict) -> SupportObservation:
        return SupportObservation.model_validate({**payload["observation"], "done": payload["done"], "reward": payload["reward"]})

    def close(self) -> None:
        self.client.close()


@contextmanager
def environment_server(base_url: str | None) -> Iterator[str]:
    """Yield a server URL: ENV_BASE_URL as given, or a server started for this run."""
    if base_url:
        yield base_url.rstrip("/")
        return
    with LocalServer(name="the embedded server") as server:
        log(f"started an embedded server at {server.url}")
        yield server.url


# --- one task --------------------------------------------------------------------

def run_task(env: HttpEnv, policy, task_id: str, seed: int | None, model_label: str, deadline: float, split: str | None = None) -> dict:
    """Play one task, printing its [START]/[STEP]/[END] lines whatever happens."""
    emit(f"[START] task={task_id} env={BENCHMARK} model={model_label}")
    rewards: list[float] = []
    grade = None
    started = time.monotonic()
    error_note = None
    try:
        observation = env.reset(task_id, seed, split)
        while not observation.done:
            if time.monotonic() > deadline:
                raise TimeoutError("run deadline reached")
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


def make_policy(api_key: str | None, base_url: str, model: str):
    if not api_key:
        log("mode: scripted reference policy (no HF_TOKEN / OPENAI_API_KEY / API_KEY set)")
        return lambda: ReferencePolicy(), "scripted"
    from openai import OpenAI

    log(f"mode: LLM {model} via {base_url}")
    client = OpenAI(api_key=api_key, base_url=base_url, timeout=MODEL_CALL_TIMEOUT_S, max_retries=0)
    retries = int(os.environ.get("MODEL_MAX_RETRIES", "4"))
    backoff = float(os.environ.get("MODEL_BACKOFF_S", "1.0"))
    return lambda: LLMPolicy(client, model, max_retries=retries, backoff_s=backoff, log=log), model


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=os.environ.get("TASKS", ",".join(QUEUE_TASKS)), help="comma-separated task ids (default: the three canonical queue tasks)")
    parser.add_argument("--seed", type=int, default=None, help="seed for every task (default: canonical episodes)")
    parser.add_argument("--split", choices=("train", "eval"), default=None, help="template split of seeded episodes (default train)")
    parser.add_argument("--results", default=os.environ.get("RESULTS_PATH"), help="write a JSON results file here")
    args = parser.parse_args(argv)

    api_key = os.environ.get("HF_TOKEN") or os.environ.get("OPENAI_API_KEY") or os.environ.get("API_KEY")
    base_url = os.environ.get("API_BASE_URL") or DEFAULT_API_BASE_URL
    model = os.environ.get("MODEL_NAME") or DEFAULT_MODEL
    new_policy, label = make_policy(api_key, base_url, model)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    deadline = time.monotonic() + RUN_DEADLINE_S

    results = []
    try:
        with environment_server(os.environ.get("ENV_BASE_URL")) as url:
            env = HttpEnv(url)
            for task_id in tasks:
                policy = new_policy()
                result = run_task(env, policy, task_id, args.seed, label, deadline, args.split if args.seed is not None else None)
                if hasattr(policy, "prompt_chars") and policy.prompt_chars:
                    result["prompt_chars_max"] = max(policy.prompt_chars)
                    result["prompt_chars_mean"] = round(sum(policy.prompt_chars) / len(policy.prompt_chars))
                results.append(result)
            env.close()
    except RuntimeError as exc:
        log(f"could not start or reach the environment: {exc}")
        for task_id in tasks[len(results):]:
            emit(f"[START] task={task_id} env={BENCHMARK} model={label}")
            emit(f"[END] success=false steps=0 score={SCORE_FLOOR:.3f} rewards=")
    if args.results:
        Path(args.results).write_text(json.dumps({"benchmark": BENCHMARK, "results": results}, indent=2))
        log(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
