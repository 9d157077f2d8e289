"""Performance invariants, checked by counting work rather than timing it.

- A /ws session that never speaks MCP builds no MCP tool server (building and
  connecting one costs ~0.3 MB and milliseconds per session); one that does
  builds one, keeps it for the session, and sees only its own episode.
- A reply is parsed once: grading at each reply and again at the end of the
  episode reuses the parse, and the memo never changes a grade.
"""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

import support_env.facts as facts
import support_env.grading as grading
import support_env.tools as tools
from support_env.environment import SupportEnvironment
from support_env.grading import grade_episode, grade_reply
from support_env.policies import ReferencePolicy
from support_env.progress import SentReply
from support_env.rollout import play
from support_env.scenarios import TASK_IDS


@pytest.fixture
def tool_servers_built(monkeypatch) -> list:
    """Every per-environment MCP tool server built while the test runs."""
    built = []
    real = tools._server_with

    def counting(*args, **kwargs):
        server = real(*args, **kwargs)
        built.append(server)
        return server

    monkeypatch.setattr(tools, "_server_with", counting)
    return built


@pytest.fixture(scope="module")
def app_client():
    from server.app import app

    with TestClient(app) as client:
        yield client


def _ws(ws, message: dict) -> dict:
    ws.send_text(json.dumps(message))
    return json.loads(ws.receive_text())


def _mcp_call(ws, request_id: int, name: str, arguments: dict) -> dict:
    reply = _ws(ws, {"type": "mcp", "data": {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                                            "params": {"name": name, "arguments": arguments}}})
    assert reply["type"] == "mcp" and reply["data"].get("error") is None, reply
    return reply["data"]["result"]["structured_content"]


def test_a_ws_session_without_mcp_builds_no_tool_server(app_client, tool_servers_built):
    with app_client.websocket_connect("/ws") as ws:
        first = _ws(ws, {"type": "reset", "data": {"task_id": "easy_classify"}})
        ticket = first["data"]["observation"]["current_ticket"]["id"]
        step = _ws(ws, {"type": "step", "data": {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}})
        assert step["type"] == "observation"
        assert _ws(ws, {"type": "state"})["data"]["step_count"] == 1
    assert tool_servers_built == []


def test_a_ws_session_using_mcp_builds_one_tool_server_and_sees_only_its_episode(app_client, tool_servers_built):
    with app_client.websocket_connect("/ws") as a, app_client.websocket_connect("/ws") as b:
        ticket_a = _ws(a, {"type": "reset", "data": {"task_id": "easy_classify"}})["data"]["observation"]["current_ticket"]["id"]
        _ws(b, {"type": "reset", "data": {"task_id": "hard_mixed_queue"}})
        assert tool_servers_built == []

        after = _mcp_call(a, 1, "classify_ticket", {"ticket_id": ticket_a, "category": "billing"})
        assert [h["action"] for h in after["conversation_history"]] == [f"classify_ticket({ticket_a}, billing)"]
        assert _mcp_call(a, 2, "get_observation", {})["conversation_history"] == after["conversation_history"]
        assert len(tool_servers_built) == 1  # built on the first MCP message, then kept

        seen_by_b = _mcp_call(b, 1, "get_observation", {})
        assert seen_by_b["task_id"] == "hard_mixed_queue" and seen_by_b["conversation_history"] == []
        assert len(tool_servers_built) == 2
        # The /ws step path and the MCP path act on the same episode.
        assert _ws(a, {"type": "state"})["data"]["step_count"] == 1


def test_each_reply_is_parsed_once_per_episode(monkeypatch):
    calls = []
    real = facts.extract_quantities
    monkeypatch.setattr(grading, "extract_quantities", lambda text: calls.append(text) or real(text))
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id="hard_mixed_queue"), env.step)
    replies = [a for a in rollout.actions if a.action_type == "reply_ticket"]
    assert rollout.final.done and replies
    # One parse per reply step (the grounded text is the whole text for the
    # reference policy), none at the end of the episode.
    assert len(calls) == len(replies)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_the_parse_memo_never_changes_a_grade(task_id):
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id), env.step)
    spec, progress = env._spec, env._progress
    for p in progress:
        fresh = [SentReply(r.text, r.retrieved_before) for r in p.replies]  # no memo
        ticket = next(t for t in spec.tickets if t.id == p.ticket_id)
        if ticket.truth.reply is not None and p.replies:
            assert grade_reply(p.replies, ticket.truth.reply, ticket.customer.plan, env._kb) == grade_reply(
                fresh, ticket.truth.reply, ticket.customer.plan, env._kb
            )
        p.replies[:] = fresh
    assert grade_episode(spec, progress, env._kb) == rollout.grade


def test_units_written_with_letters_that_fold_to_ascii_are_read_not_a_crash():
    """Case-insensitive matching lets "ſ" (long s) match "s"; reading the unit used to raise KeyError."""
    stated = {(q.kind, q.value) for q in facts.extract_quantities("Within 5 ſeconds; 600 requests per ſecond; 10 \u212aB.")}
    assert stated == {("duration", 5 / 60), ("rate", 36000.0), ("size", 0.01)}
