"""`support_env.trl.SupportToolEnv`, TRL's environment_factory: constructed with no
arguments, `reset(**row)` returns the first prompt, one tool per action returns a compact
result, an invalid action raises with the episode's message, and `get_reward()` is the
episode's return. In process and against a real server alike. No torch or TRL needed; the
schema test needs transformers (skipped without it)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from support_env.access import compact
from support_env.access import trl as adapter
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.agents.transcripts import tool_call
from support_env.environment import SupportEnvironment
from support_env.models import ACTION_TYPES, CATEGORIES, RECORDS, RESOLUTIONS, SupportAction
from support_env.trl import SupportToolEnv

from .conftest import free_port

# Episodes that between them use every action: a seeded hard queue with a record-backed
# case, and the three case tasks.
EPISODES = [
    {"task_id": "hard_mixed_queue", "seed": 3, "split": "train"},
    {"task_id": "duplicate_charge_refund"},
    {"task_id": "account_takeover_fraud"},
    {"task_id": "damaged_item_replacement"},
]


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.delenv("SUPPORT_ENV_URL", raising=False)
    return SupportToolEnv


@pytest.fixture
def remote(monkeypatch, server):
    monkeypatch.setenv("SUPPORT_ENV_URL", server.url)
    made: list[SupportToolEnv] = []

    def make() -> SupportToolEnv:
        made.append(SupportToolEnv())
        return made[-1]

    yield make
    for tool_env in made:
        tool_env._close()


def replay(tool_env: SupportToolEnv, row: dict) -> tuple[list[str], list[str], object]:
    """Play the reference policy's episode in process, then its actions as tool calls on
    `tool_env`; return (the adapter's texts, the compact results of the in-process run, the run)."""
    env = SupportEnvironment()
    reset = {k: v for k, v in row.items() if k != "prompt"}
    rollout = play(ReferencePolicy(), lambda: env.reset(**reset), env.step)
    assert tool_env.reset(**row) == compact.first_prompt(rollout.observations[0])
    texts = []
    for action in rollout.actions:
        name, arguments = tool_call(action)
        texts.append(getattr(tool_env, name)(**arguments))
    expected = [compact.result(a, o) for a, o in zip(rollout.actions, rollout.observations[1:])]
    return texts, expected, (rollout, env)


# --- the contract TRL relies on ---------------------------------------------------------------


def test_the_public_surface_is_the_actions_plus_reset_and_get_reward(in_process):
    public = {name for name in dir(SupportToolEnv) if not name.startswith("_")}
    assert public == {*ACTION_TYPES, "reset", "get_reward"}
    # what GRPOTrainer offers the model as tools: public bound methods other than reset and get_reward
    instance = SupportToolEnv()
    tools = [name for name, _ in inspect.getmembers(instance, predicate=inspect.ismethod)
             if name not in ("reset", "get_reward") and not name.startswith("_")]
    assert sorted(tools) == sorted(ACTION_TYPES)
    for name in ACTION_TYPES:
        method = getattr(SupportToolEnv, name)
        assert "Args:" in inspect.getdoc(method)
        hints = inspect.get_annotations(method, eval_str=True)
        assert hints["return"] is str and all(p in hints for p in inspect.signature(method).parameters if p != "self")


def test_construction_takes_no_arguments_and_connects_to_nothing(monkeypatch):
    monkeypatch.setenv("SUPPORT_ENV_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    tool_env = SupportToolEnv()  # TRL makes one to read the tools: no connection yet
    with pytest.raises(Exception):
        tool_env.reset(task_id="easy_classify")


def test_a_row_without_a_seed_plays_the_canonical_episode_whatever_its_split(in_process):
    tool_env = in_process()
    prompt = tool_env.reset(task_id="account_takeover_fraud", seed=None, split="train", queue_length=None)
    assert prompt == compact.first_prompt(SupportEnvironment().reset(task_id="account_takeover_fraud"))


def test_reset_takes_the_rows_fields_ignores_the_others_and_returns_the_first_prompt(in_process):
    tool_env = in_process()
    row = {"prompt": [{"role": "user", "content": ""}], "task_id": "hard_mixed_queue", "seed": np.int64(7),
           "split": "train", "queue_length": 4, "difficulty": "ignored", "reward_mode": None}
    prompt = tool_env.reset(**row)
    observation = SupportEnvironment().reset(task_id="hard_mixed_queue", seed=7, split="train", queue_length=4)
    assert prompt == compact.first_prompt(observation)
    assert "ticket 1 of 4" in prompt and "Tools: classify_ticket" in prompt
    assert tool_env.get_reward() == 0.0


@pytest.mark.parametrize("row", EPISODES, ids=lambda row: row["task_id"])
def test_every_action_returns_its_compact_result_and_the_reward_is_the_episodes_return(in_process, row):
    texts, expected, (rollout, env) = replay(in_process(), {**row, "prompt": []})
    assert texts == expected
    assert rollout.grade.score == 1.0


def test_the_episodes_together_use_every_action(in_process):
    used = set()
    for row in EPISODES:
        env = SupportEnvironment()
        used |= {a.action_type for a in play(ReferencePolicy(), lambda: env.reset(**row), env.step).actions}
    assert used == set(ACTION_TYPES)


def test_get_reward_is_the_sum_of_step_rewards_including_the_final_grade(in_process):
    tool_env = in_process()
    texts, _, (rollout, env) = replay(tool_env, EPISODES[0])
    assert tool_env.get_reward() == env.state.total_reward == rollout.total_reward
    assert "Episode over: grade 1.00, success." in texts[-1]


def test_an_invalid_action_raises_with_the_episodes_message_and_is_penalised(in_process):
    tool_env = in_process()
    tool_env.reset(task_id="easy_classify")
    with pytest.raises(ValueError, match=r"^category 'sales' is not one of billing, technical, account$"):
        tool_env.classify_ticket("E01", "sales")
    with pytest.raises(ValueError, match=r"ticket 'E02' is not the current ticket \(E01\)"):
        tool_env.close_ticket("E02")
    assert tool_env.get_reward() == -0.4  # two invalid actions, each a step like any other
    assert tool_env.classify_ticket("E01", "billing").startswith("classified E01 as billing")


def test_arguments_of_the_wrong_type_are_refused_before_the_episode_sees_them(in_process):
    tool_env = in_process()
    tool_env.reset(task_id="easy_classify")
    with pytest.raises(ValueError, match="ticket_id"):
        tool_env.classify_ticket(ticket_id=3, category="billing")
    assert tool_env.get_reward() == 0.0
    # TRL feeds any exception back as the tool's answer, as run_tool_call does
    assert adapter.run_tool_call(tool_env, "classify_ticket", {"ticket_id": "E01"}).startswith("{'error': ")
    assert adapter.run_tool_call(tool_env, "get_reward", {}) == "{'error': 'Tool get_reward not found.'}"
    assert tool_env.get_reward() == 0.0


def test_the_last_step_ends_the_episode_and_later_calls_say_so(in_process):
    tool_env = in_process()
    tool_env.reset(task_id="easy_classify", seed=1)
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id="easy_classify", seed=1), env.step)
    for action in rollout.actions:
        name, arguments = tool_call(action)
        text = getattr(tool_env, name)(**arguments)
    assert text.endswith("E05 1.00") and "Episode over: grade 1.00, success." in text
    reward = tool_env.get_reward()
    with pytest.raises(ValueError, match="the episode is over"):
        tool_env.search_kb("refund")
    assert tool_env.get_reward() == reward


def test_a_new_reset_starts_afresh_and_a_failed_one_leaves_no_episode(in_process):
    tool_env = in_process()
    tool_env.reset(task_id="easy_classify")
    tool_env.classify_ticket("E01", "billing")
    assert tool_env.get_reward() > 0
    tool_env.reset(task_id="easy_classify")
    assert tool_env.get_reward() == 0.0
    tool_env.classify_ticket("E01", "billing")  # a fresh episode: the classification is not final yet
    with pytest.raises(ValueError, match="unknown task_id 'nope'"):
        tool_env.reset(task_id="nope")
    assert tool_env.get_reward() == 0.0
    with pytest.raises(ValueError, match="reset"):
        tool_env.classify_ticket("E01", "billing")


def test_reward_mode_is_passed_on_and_sparse_pays_the_grade_at_the_end_only(in_process):
    row = {"task_id": "hard_mixed_queue", "seed": 3, "split": "train"}
    dense, sparse = in_process(), in_process()
    first = dense.reset(**row, reward_mode="dense")
    assert sparse.reset(**row, reward_mode="sparse") == first  # the same episode, the same first prompt
    env = SupportEnvironment()
    actions = play(ReferencePolicy(), lambda: env.reset(**row), env.step).actions
    for action in actions[:-1]:
        name, arguments = tool_call(action)
        getattr(dense, name)(**arguments)
        assert "(reward +0.00)" in getattr(sparse, name)(**arguments).splitlines()[0]
        assert sparse.get_reward() == 0.0
    assert dense.get_reward() > 0
    name, arguments = tool_call(actions[-1])
    dense_last, sparse_last = getattr(dense, name)(**arguments), getattr(sparse, name)(**arguments)
    grade = env.state.grade.score
    assert "Episode over: grade 1.00, success." in dense_last and "Episode over: grade 1.00, success." in sparse_last
    assert sparse.get_reward() == grade == 1.0 and dense.get_reward() == env.state.total_reward != grade
    with pytest.raises(ValueError, match="reward_mode must be one of dense, sparse"):
        in_process().reset(task_id="easy_classify", reward_mode="shaped")


# --- against a real server --------------------------------------------------------------------


@pytest.mark.parametrize("row", EPISODES[:2], ids=lambda row: row["task_id"])
def test_against_a_server_every_result_and_reward_is_the_in_process_ones(remote, row):
    tool_env = remote()
    texts, expected, (rollout, env) = replay(tool_env, row)
    assert texts == expected
    assert tool_env.get_reward() == env.state.total_reward


def test_against_a_server_sparse_rows_pay_only_the_grade(remote):
    tool_env = remote()
    tool_env.reset(task_id="easy_classify", reward_mode="sparse")
    env = SupportEnvironment()
    actions = play(ReferencePolicy(), lambda: env.reset(task_id="easy_classify"), env.step).actions
    rewards = []
    for action in actions:
        name, arguments = tool_call(action)
        getattr(tool_env, name)(**arguments)
        rewards.append(tool_env.get_reward())
    assert rewards[:-1] == [0.0] * (len(actions) - 1) and rewards[-1] == env.state.grade.score


def test_a_server_that_plays_dense_for_a_sparse_row_is_refused():
    """A server of a version without reward modes drops reward_mode and plays dense."""

    class DenseOnly:  # what such a server's client returns: an observation without the mode asked for
        def reset(self, **arguments):
            return type("Result", (), {"observation": SupportEnvironment().reset(task_id=arguments["task_id"])})()

    tool_env = SupportToolEnv()
    tool_env._url, tool_env._client = "http://old.example", DenseOnly()
    with pytest.raises(ValueError, match="played reward_mode 'dense', not 'sparse': it does not take reward_mode"):
        tool_env.reset(task_id="easy_classify", reward_mode="sparse")
    assert tool_env.reset(task_id="easy_classify", reward_mode="dense").startswith("Classify")


def test_against_a_server_invalid_actions_raise_and_sessions_are_separate(remote):
    first, second = remote(), remote()
    first.reset(task_id="easy_classify")
    second.reset(task_id="medium_kb_reply")
    with pytest.raises(ValueError, match="not the current ticket"):
        first.classify_ticket("M01", "billing")
    assert second.classify_ticket("M01", "billing").startswith("classified M01")
    assert first.get_reward() == -0.2 and second.get_reward() >= 0.0


# --- tool schemas -------------------------------------------------------------------------------


def test_tool_definitions_describe_every_argument_with_its_type():
    definitions = {d["function"]["name"]: d["function"] for d in adapter.tool_definitions()}
    assert list(definitions) == list(ACTION_TYPES)
    for name, function in definitions.items():
        parameters = function["parameters"]
        assert function["description"] and parameters["type"] == "object"
        assert all(p["description"] and p["type"] for p in parameters["properties"].values())
        assert set(parameters["required"]) | {"resolution"} >= set(parameters["properties"])
    assert definitions["classify_ticket"]["parameters"]["properties"]["category"]["enum"] == list(CATEGORIES)
    assert definitions["lookup_record"]["parameters"]["properties"]["record"]["enum"] == list(RECORDS)
    resolution = definitions["close_ticket"]["parameters"]["properties"]["resolution"]
    assert resolution == {"type": "string", "enum": list(RESOLUTIONS), "nullable": True, "description": "How it was resolved."}
    assert definitions["close_ticket"]["parameters"]["required"] == ["ticket_id"]
    assert definitions["issue_refund"]["parameters"]["properties"]["amount"]["type"] == "number"


def test_each_tools_schema_is_what_transformers_builds_from_the_method():
    transformers_utils = pytest.importorskip("transformers.utils")
    instance = SupportToolEnv()
    for definition in adapter.tool_definitions():
        schema = transformers_utils.get_json_schema(getattr(instance, definition["function"]["name"]))
        assert schema["function"].pop("return", None) == {"type": "string"}  # from `-> str`; OpenAI tools have no such key
        assert schema == definition


def test_the_tool_calls_of_an_action_name_its_tools_arguments_only():
    action = SupportAction(action_type="classify_ticket", ticket_id="E01", category="billing", query="stray", reason="x")
    assert tool_call(action) == ("classify_ticket", {"ticket_id": "E01", "category": "billing"})
    assert tool_call(SupportAction(action_type="lock_account", ticket_id="R01")) == ("lock_account", {"ticket_id": "R01"})
