"""`python -m support_env.export`: one OpenAI-format chat transcript per episode, whose tool
calls replay on the TRL adapter to the recorded results and grade; train split unless the
eval split is named; the same arguments write the same bytes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from support_env import export
from support_env.access import trl as adapter
from support_env.agents.llm import SYSTEM_PROMPT
from support_env.agents.transcripts import CLOSING_MESSAGE, EvalSplitRefused, write_transcripts
from support_env.episodes.catalogue import QUEUE_TASKS

from .conftest import ROOT


def export_records(tmp_path, *args: str) -> list[dict]:
    out = tmp_path / "out.jsonl"
    assert export.main([*args, "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    return export_records(tmp_path_factory.mktemp("export"), "--seeds", "0-2", "--tasks", ",".join([*QUEUE_TASKS, "account_takeover_fraud"]))


def test_one_record_per_episode_with_its_task_seed_split_and_grade(records):
    assert [(r["task_id"], r["seed"], r["split"]) for r in records] == [
        *[(task, seed, "train") for task in QUEUE_TASKS for seed in (0, 1, 2)],
        ("account_takeover_fraud", None, None),  # a case task is its one canonical episode
    ]
    assert all(r["grade"] == 1.0 and r["reward"] > 1 for r in records)  # the reference policy by default
    assert all(r["tools"] == adapter.tool_definitions() for r in records)


def test_records_are_chat_transcripts_with_tool_calls_and_their_results(records):
    for record in records:
        messages = record["messages"]
        assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert messages[1]["role"] == "user" and "\nTICKET " in messages[1]["content"]
        assert messages[-1] == {"role": "assistant", "content": CLOSING_MESSAGE}
        turns = messages[2:-1]
        assert len(turns) % 2 == 0 and turns
        names = {tool["function"]["name"] for tool in record["tools"]}
        for call_message, result in zip(turns[::2], turns[1::2]):
            assert call_message["role"] == "assistant" and call_message["content"] == ""
            (call,) = call_message["tool_calls"]
            assert call["type"] == "function" and call["function"]["name"] in names
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
            assert result == {"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"], "content": result["content"]}
            assert result["content"]
        assert len({m["tool_calls"][0]["id"] for m in turns[::2]}) == len(turns) // 2


def test_replaying_the_tool_calls_on_the_adapter_gives_the_recorded_results_and_grade(records):
    for record in records:
        tool_env = adapter.in_process()
        reset = {k: record[k] for k in ("task_id", "seed", "split", "queue_length")}
        assert tool_env.reset(**reset) == record["messages"][1]["content"]
        turns = record["messages"][2:-1]
        for call_message, result in zip(turns[::2], turns[1::2]):
            function = call_message["tool_calls"][0]["function"]
            assert adapter.run_tool_call(tool_env, function["name"], json.loads(function["arguments"])) == result["content"]
        observation = adapter.observation_of(tool_env)
        assert observation.done and observation.grade.score == record["grade"]
        assert tool_env.get_reward() == record["reward"]


def test_queue_length_sets_the_queue_size_and_is_recorded(tmp_path):
    records = export_records(tmp_path, "--seeds", "0-1", "--tasks", "hard_mixed_queue,damaged_item_replacement", "--queue-length", "2")
    assert [(r["task_id"], r["queue_length"]) for r in records] == [("hard_mixed_queue", 2)] * 2 + [("damaged_item_replacement", None)]
    assert "ticket 1 of 2" in records[0]["messages"][1]["content"]


def test_a_rejected_action_is_recorded_as_trl_reports_a_tool_that_raised(tmp_path):
    (record,) = export_records(tmp_path, "--policy", "close-immediately", "--seeds", "0", "--tasks", "easy_classify")
    results = [m["content"] for m in record["messages"] if m["role"] == "tool"]
    assert results[0] == str({"error": "ticket E01 has not been handled: classify, reply to or escalate it before closing"})
    assert record["grade"] == 0.0 and len(results) == 10  # the tenth invalid action ends the episode


def test_the_eval_split_is_refused_unless_asked_for(tmp_path):
    with pytest.raises(EvalSplitRefused, match="held out"):
        write_transcripts(io.StringIO(), "reference", ["easy_classify"], [0], split="eval")
    assert {r["split"] for r in export_records(tmp_path, "--seeds", "0", "--tasks", "easy_classify")} == {"train"}
    asked = export_records(tmp_path, "--split", "eval", "--seeds", "0", "--tasks", "easy_classify")
    assert [r["split"] for r in asked] == ["eval"]


def test_the_same_arguments_write_the_same_bytes(tmp_path):
    first, second, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    for path, seeds in ((first, "4-5"), (second, "4-5"), (other, "6-7")):
        export.main(["--seeds", seeds, "--tasks", "hard_mixed_queue", "--out", str(path)])
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()


def test_seeds_and_tasks_are_checked():
    assert export.parse_seeds("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]
    for bad in ("x", "5-2", "-1"):
        with pytest.raises(Exception):
            export.parse_seeds(bad)
    with pytest.raises(SystemExit):
        export.main(["--tasks", "nope", "--out", "-"])


def test_the_module_runs_from_the_command_line(tmp_path):
    out = tmp_path / "cli.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "support_env.export", "--policy", "reference", "--split", "train", "--seeds", "0-1",
         "--tasks", "easy_classify", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 2 episodes" in result.stderr
    assert len(out.read_text().splitlines()) == 2
