"""Episodes as chat transcripts for supervised fine-tuning (`python -m support_env.export`).

One record per episode, in the OpenAI chat format that SFT trainers (TRL's
SFTTrainer among them) take with tool calling:

    {"task_id", "seed", "split", "queue_length", "grade", "reward",
     "messages": [system, user, assistant (tool_calls), tool, ..., assistant],
     "tools": [the TRL adapter's tools as JSON schemas]}

The transcript is what a model trained with `support_env.trl.SupportToolEnv`
sees, because it is played through that adapter (in process), one tool call per
action exactly as TRL's GRPOTrainer runs them: the LLM agent's system prompt, the
adapter's first prompt (objective, first ticket, tools), an assistant turn with
the tool call (the action's fields that its tool takes), the adapter's compact
result as the tool message (`role: tool`, with the call's id), or
`{'error': '<message>'}` where the call raised (an action the episode rejects).
A closing assistant message ends the episode. Replaying a record's tool calls on
the adapter reproduces its episode and grade; the same arguments write the same
bytes.

The eval split is held out for measuring: exporting it must be asked for
(`allow_eval=True`, `--split eval` on the command line).
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterable, Optional

from ..access import trl
from ..environment import SupportEnvironment
from ..episodes.catalogue import QUEUE_TASKS
from ..models import SupportAction
from .llm import SYSTEM_PROMPT
from .reference import Policy
from .zoo import make

TOOLS = trl.tool_definitions()
_PARAMETERS = {tool["function"]["name"]: tuple(tool["function"]["parameters"]["properties"]) for tool in TOOLS}
CLOSING_MESSAGE = "The queue is done."
MAX_TOOL_CALLS = 200  # a safety net: the episode ends within 50 steps, but calls the adapter refuses take none


class EvalSplitRefused(ValueError):
    """The eval split was asked for without saying so explicitly."""

    def __init__(self) -> None:
        super().__init__(
            "the eval split is held out for measuring trained policies; export it only on purpose (allow_eval=True, --split eval)"
        )


def tool_call(action: SupportAction) -> tuple[str, dict[str, Any]]:
    """The adapter's tool call (name, arguments) for `action`: the fields its tool
    takes (an action type that is no tool keeps all its fields, and the call fails
    as it would in training)."""
    fields = action.model_dump(exclude_none=True, exclude={"action_type", "metadata"})
    if action.action_type not in _PARAMETERS:
        return action.action_type, fields
    return action.action_type, {name: fields[name] for name in _PARAMETERS[action.action_type] if name in fields}


def episode_transcript(
    policy: Policy,
    task_id: str,
    seed: Optional[int] = None,
    split: Optional[str] = None,
    environment: Optional[SupportEnvironment] = None,
    queue_length: Optional[int] = None,
) -> dict[str, Any]:
    """Play one episode with `policy` through the TRL adapter, in process, and return its record."""
    tool_env = trl.in_process(environment or SupportEnvironment())
    first_prompt = tool_env.reset(task_id=task_id, seed=seed, split=split if seed is not None else None, queue_length=queue_length)
    observation = trl.observation_of(tool_env)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": first_prompt}]
    calls = 0
    while not observation.done and calls < MAX_TOOL_CALLS:
        calls += 1
        name, arguments = tool_call(policy.act(observation))
        call_id = f"call_{calls}"
        messages.append({
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}],
        })
        content = trl.run_tool_call(tool_env, name, arguments)
        messages.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": content})
        observation = trl.observation_of(tool_env)
    messages.append({"role": "assistant", "content": CLOSING_MESSAGE})
    return {
        "task_id": observation.task_id,
        "seed": observation.seed,
        "split": observation.split,
        "queue_length": queue_length,
        "grade": observation.grade.score if observation.grade is not None else None,
        "reward": tool_env.get_reward(),
        "messages": messages,
        "tools": TOOLS,
    }


def episodes(tasks: Iterable[str], seeds: Iterable[int], split: str = "train") -> list[tuple[str, Optional[int]]]:
    """(task, seed) pairs in export order: each task over every seed; a task with no
    generated variants (a case task) once, as its one canonical episode."""
    seeds = list(seeds)
    return [(task, seed) for task in tasks for seed in (seeds if task in QUEUE_TASKS else [None])]


def write_transcripts(
    out: IO[str],
    policy_name: str,
    tasks: Iterable[str],
    seeds: Iterable[int],
    split: str = "train",
    allow_eval: bool = False,
    queue_length: Optional[int] = None,
) -> int:
    """Write one JSON line per episode to `out`; return how many. The policy is made
    fresh for every episode (`zoo.make`, seeded with the episode's seed)."""
    if split == "eval" and not allow_eval:
        raise EvalSplitRefused()
    if split not in ("train", "eval"):
        raise ValueError(f"split must be train or eval, got {split!r}")
    env = SupportEnvironment()
    count = 0
    for task_id, seed in episodes(tasks, seeds, split):
        length = queue_length if task_id in QUEUE_TASKS else None
        record = episode_transcript(make(policy_name, seed or 0), task_id, seed, split, env, length)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
