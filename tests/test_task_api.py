"""OpenEnv's Task API over this environment's tasks and seeds: three splits of
numbered tasks (`canonical`, `train`, `eval`), the same in process, over the
Task API routes, and as `reset(split=..., index=...)` over HTTP and /ws."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from support_env.environment import SupportEnvironment
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS
from support_env.episodes.tasks_api import SEEDS_PER_TASK, UnknownSplitError

from .conftest import to_observation


def test_three_splits_number_the_canonical_tasks_and_the_seeds_of_each_queue_task():
    env = SupportEnvironment()  # the Task API works before any reset
    assert [(s["name"], s["type"], s["num_tasks"]) for s in env.list_splits()] == [
        ("canonical", "test", len(TASK_IDS)),
        ("train", "train", 4 * SEEDS_PER_TASK),
        ("eval", "validation", 4 * SEEDS_PER_TASK),
    ]
    assert [t["task_id"] for t in env.list_tasks("canonical")] == list(TASK_IDS)
    assert all(t["seed"] is None and t["reset"] == {"task_id": t["task_id"], "seed": None, "split": None}
               for t in env.list_tasks("canonical"))
    first = [(t["task_id"], t["seed"]) for t in env.get_task_range("train", 0, 7)]
    assert first == [(QUEUE_TASKS[i % 3], i // 3) for i in range(7)]  # interleaved: every prefix is balanced
    assert env.get_task("eval", 3 * SEEDS_PER_TASK - 1)["reset"] == {"task_id": "hard_mixed_queue", "seed": SEEDS_PER_TASK - 1, "split": "eval"}
    # the expert tier comes after the first three tasks' numbers, which it left as they were
    assert env.get_task("eval", 3 * SEEDS_PER_TASK + 7)["reset"] == {"task_id": "expert_queue", "seed": 7, "split": "eval"}
    assert env.get_task("train", 4 * SEEDS_PER_TASK - 1)["reset"] == {"task_id": "expert_queue", "seed": SEEDS_PER_TASK - 1, "split": "train"}
    assert env.get_task_range("canonical", -2) == env.list_tasks("canonical")[5:]  # slice semantics
    assert len(env.list_tasks("train")) == env.num_tasks("train")


@pytest.mark.parametrize("split, index", [("canonical", 7), ("train", -1), ("eval", 4 * SEEDS_PER_TASK), ("train", True)])
def test_an_index_outside_its_split_is_an_index_error(split, index):
    with pytest.raises(IndexError):
        SupportEnvironment().get_task(split, index)


def test_an_unknown_split_names_the_splits():
    with pytest.raises(UnknownSplitError, match="splits: canonical, train, eval"):
        SupportEnvironment().num_tasks("test")


@pytest.mark.parametrize("split, index", [("canonical", 0), ("canonical", 4), ("train", 0), ("train", 2), ("eval", 5), ("eval", 2999), ("eval", 3001)])
def test_reset_with_split_and_index_starts_the_task_it_names(split, index):
    env = SupportEnvironment()
    task = env.get_task(split, index)
    by_index = env.reset(split=split, index=index, episode_id="e")
    by_arguments = SupportEnvironment().reset(**task["reset"], episode_id="e")
    assert by_index == by_arguments
    assert (by_index.task_id, by_index.seed) == (task["task_id"], task["seed"])


def test_reset_by_index_defaults_to_the_canonical_split_and_refuses_contradictions():
    env = SupportEnvironment()
    assert env.reset(index=2).task_id == "hard_mixed_queue" and env.state.seed is None
    assert env.reset(split="train", index=3, task_id="easy_classify", seed=1).seed == 1  # agreeing is fine
    for arguments, message in [
        ({"index": 2, "task_id": "easy_classify"}, "disagrees with task 2"),
        ({"split": "train", "index": 3, "seed": 2}, "seed 2 disagrees"),
        ({"index": 7}, r"in \[0, 7\)"),
        ({"split": "test", "index": 0}, "unknown split"),
        ({"index": -1}, "non-negative"),
        ({"split": "canonical", "seed": 3}, "canonical split has no seeds"),
    ]:
        with pytest.raises(ValueError, match=message):
            env.reset(**arguments)
    assert (env.state.task_id, env.state.seed, env.state.split) == ("easy_classify", 1, "train")  # refusals changed nothing


def test_the_task_api_routes(http):
    assert http.get("/list_environments").json() == ["support_env"]
    splits = http.get("/support_env/splits").json()
    assert [(s["name"], s["num_tasks"]) for s in splits] == [("canonical", 7), ("train", 4000), ("eval", 4000)]
    assert http.post("/support_env/num_tasks", json={"split": "eval"}).json() == {"num_tasks": 4000}
    task = http.post("/support_env/task", json={"split": "eval", "index": 5}).json()["task"]
    assert task == SupportEnvironment().get_task("eval", 5)
    listed = http.post("/support_env/tasks", json={"split": "canonical"}).json()
    assert [t["task_id"] for t in listed["tasks"]] == list(TASK_IDS) and listed["env_name"] == "support_env"
    ranged = http.post("/support_env/task_range", json={"split": "train", "start": 3, "stop": 6}).json()["tasks"]
    assert [t["index"] for t in ranged] == [3, 4, 5]


@pytest.mark.parametrize("path, body, status, message", [
    ("/support_env/task", {"split": "eval", "index": 4000}, 400, "Invalid task index"),
    ("/support_env/task", {"split": "nope", "index": 0}, 400, "unknown split 'nope'; splits: canonical, train, eval"),
    ("/support_env/num_tasks", {"split": "\ud800"}, 400, "unknown split"),
    ("/support_env/tasks", {}, 422, None),
    ("/other_env/num_tasks", {"split": "train"}, 404, "unknown environment"),
])
def test_task_api_mistakes_are_4xx_that_explain_themselves(http, path, body, status, message):
    response = http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["detail"]


def test_http_reset_takes_split_and_index(http):
    response = http.post("/reset", json={"split": "eval", "index": 7})
    assert response.status_code == 200, response.text
    observation = to_observation(response.json())
    assert (observation.task_id, observation.seed, observation.split) == ("medium_kb_reply", 2, "eval")
    assert set(response.json()) == {"observation", "reward", "done"}  # the wire format is unchanged
    canonical = to_observation(http.post("/reset", json={"index": 5}).json())
    assert (canonical.task_id, canonical.seed, canonical.split) == ("damaged_item_replacement", None, None)
    refused = http.post("/reset", json={"split": "train", "index": 4000})
    assert refused.status_code == 400 and "in [0, 4000)" in refused.json()["detail"]
    assert http.post("/reset", json={"index": -1}).status_code == 422


def test_websocket_reset_takes_split_and_index(server):
    async def run():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "reset", "data": {"split": "train", "index": 5}}))
            return json.loads(await ws.recv())["data"]["observation"]

    observation = asyncio.run(run())
    assert (observation["task_id"], observation["seed"], observation["split"]) == ("hard_mixed_queue", 1, "train")
