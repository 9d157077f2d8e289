"""OpenEnv's Task API over this catalogue: splits of numbered tasks, and the
reset arguments a (split, index) stands for.

OpenEnv 0.10 lets a trainer or evaluator enumerate an environment's tasks
(`list_splits`, `num_tasks`, `get_task`, ...) and start one with
`reset(split=..., index=...)`. Here a task is an episode this catalogue
already knows how to build, so the Task API adds no new episodes, only
stable numbers for existing ones:

* `canonical`: the seven tasks exactly as written, index i = TASK_IDS[i]
  (easy_classify, medium_kb_reply, hard_mixed_queue, the three cases, then
  expert_queue, whose canonical episode is a fixed generated queue).
* `train` and `eval`: generated queues from that template split, the first
  `SEEDS_PER_TASK` seeds of each queue task, interleaved so that any prefix is
  balanced: index i is QUEUE_TASKS[i % 3] with seed i // 3. So indices 0, 1, 2
  are seed 0 of easy, medium and hard, and index 3 is seed 1 of easy. The
  expert tier follows them: index 3 * SEEDS_PER_TASK + j is seed j of
  expert_queue (numbers added after the first three tasks', which did not
  change). (Case tasks have no generated variants; seeded hard queues carry cases.)

The numbering is part of the benchmark: it never changes for a given version,
and `reset(split=s, index=i)` gives the episode of `reset(**get_task(s, i)["reset"])`.
Seeds beyond the listed ones stay available through `reset(seed=...)`.
"""

from __future__ import annotations

from typing import Any, Optional

from .catalogue import EXPERT_TASKS, QUEUE_TASKS, TASK_IDS, canonical_task

CANONICAL = "canonical"
GENERATED_SPLITS = ("train", "eval")
SPLITS = (CANONICAL, *GENERATED_SPLITS)
SEEDS_PER_TASK = 1000

# The `type` OpenEnv's Task API reports for each split (its vocabulary: train, validation, test).
_SPLIT_TYPES = {CANONICAL: "test", "train": "train", "eval": "validation"}
_SPLIT_DESCRIPTIONS = {
    CANONICAL: "The seven tasks exactly as written (the benchmark).",
    "train": f"Generated queues from the train templates: seeds 0-{SEEDS_PER_TASK - 1} of each queue task, then of expert_queue.",
    "eval": f"Generated queues from the held-out eval templates and entities: seeds 0-{SEEDS_PER_TASK - 1} of each queue task, "
    "then of expert_queue.",
}


class UnknownSplitError(ValueError):
    """A Task API split that does not exist; the message lists the valid ones."""

    def __init__(self, split: object):
        super().__init__(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")


def list_splits() -> list[dict[str, Any]]:
    return [
        {"name": name, "type": _SPLIT_TYPES[name], "num_tasks": num_tasks(name), "description": _SPLIT_DESCRIPTIONS[name]}
        for name in SPLITS
    ]


def num_tasks(split: str) -> int:
    if split == CANONICAL:
        return len(TASK_IDS)
    if split in GENERATED_SPLITS:
        return (len(QUEUE_TASKS) + len(EXPERT_TASKS)) * SEEDS_PER_TASK
    raise UnknownSplitError(split)


def get_task(split: str, index: int) -> dict[str, Any]:
    """Task `index` of `split`: its place, what it is, and the reset arguments it stands for.
    Raises IndexError outside [0, num_tasks) (OpenEnv answers 400) and UnknownSplitError."""
    count = num_tasks(split)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise IndexError(f"index must be an integer in [0, {count}) for split {split!r}, got {index!r}")
    if split == CANONICAL:
        task_id, seed, episode_split = TASK_IDS[index], None, None
    elif index < len(QUEUE_TASKS) * SEEDS_PER_TASK:
        task_id, seed, episode_split = QUEUE_TASKS[index % len(QUEUE_TASKS)], index // len(QUEUE_TASKS), split
    else:
        tier = index - len(QUEUE_TASKS) * SEEDS_PER_TASK
        task_id, seed, episode_split = EXPERT_TASKS[tier // SEEDS_PER_TASK], tier % SEEDS_PER_TASK, split
    return {
        "split": split,
        "index": index,
        "task_id": task_id,
        "seed": seed,
        "difficulty": canonical_task(task_id).difficulty,
        "reset": {"task_id": task_id, "seed": seed, "split": episode_split},
    }


def get_task_range(split: str, start: Optional[int] = None, stop: Optional[int] = None) -> list[dict[str, Any]]:
    """Tasks `start` to `stop` of `split`, with Python slice semantics."""
    return [get_task(split, index) for index in range(num_tasks(split))[slice(start, stop)]]


def list_tasks(split: str) -> list[dict[str, Any]]:
    return get_task_range(split)


def resolve_reset(
    task_id: Optional[str], seed: Optional[int], split: Optional[str], index: Optional[int]
) -> tuple[Optional[str], Optional[int], Optional[str]]:
    """The (task_id, seed, split) to build for reset's arguments. With an `index`,
    the Task API task (split `canonical` by default); task_id and seed, if given
    too, must agree with it. Without one, `split="canonical"` is the canonical
    episode (no seed) and any other split keeps its generator meaning.
    Raises ValueError (UnknownSplitError, or IndexError's message)."""
    if index is None:
        if split == CANONICAL:
            if seed is not None:
                raise ValueError("the canonical split has no seeds: omit the seed, or use split 'train' or 'eval'")
            return task_id, None, None
        return task_id, seed, split
    try:
        task = get_task(CANONICAL if split is None else split, index)
    except IndexError as exc:
        raise ValueError(str(exc)) from None
    chosen = task["reset"]
    for name, given in (("task_id", task_id), ("seed", seed)):
        if given is not None and given != chosen[name]:
            raise ValueError(
                f"{name} {given!r} disagrees with task {index} of split {task['split']!r} "
                f"({chosen['task_id']}, seed {chosen['seed']}); omit {name}: the index chooses it"
            )
    return chosen["task_id"], chosen["seed"], chosen["split"]
