"""Performance invariants, checked by counting work rather than timing it.

- A /ws session that never speaks MCP builds no MCP tool server (building and
  connecting one costs ~0.3 MB and milliseconds per session); one that does
  builds one, keeps it for the session, and sees only its own episode.
- A reply is parsed once: grading at each reply and again at the end of the
  episode reuses the parse, and the memo never changes a grade.
- /ws resets and steps run on the server's event loop, as the HTTP session
  routes do, not in a worker thread (a hand-off costs more than a step).
- After `preload()` (the server calls it at start-up) no episode reads a data
  file and no MCP session derives the tool definitions: the first client of
  each kind waits for nothing.
- The fast YAML parser reads every data file exactly as PyYAML's own does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

import support_env
import support_env.domain.facts as facts
import support_env.grading.reply as reply_grading
import support_env.access.mcp_tools as tools
from support_env.environment import SupportEnvironment
from support_env.grading.reply import grade_reply
from support_env.grading.tickets import grade_episode
from support_env.agents.reference import ReferencePolicy
from support_env.grading.progress import SentReply
from support_env.agents.rollout import play
from support_env.episodes.catalogue import TASK_IDS
from support_env.domain.yamlfile import LOADER, parse_yaml


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

        classified = _mcp_call(a, 1, "classify_ticket", {"ticket_id": ticket_a, "category": "billing"})
        assert classified["result"] == f"classified {ticket_a} as billing"  # an action answers with what it produced
        history = _mcp_call(a, 2, "get_observation", {})["conversation_history"]
        assert [h["action"] for h in history] == [f"classify_ticket({ticket_a}, billing)"]
        assert len(tool_servers_built) == 1  # built on the first MCP message, then kept

        seen_by_b = _mcp_call(b, 1, "get_observation", {})
        assert seen_by_b["task_id"] == "hard_mixed_queue" and seen_by_b["conversation_history"] == []
        assert len(tool_servers_built) == 2
        # The /ws step path and the MCP path act on the same episode.
        assert _ws(a, {"type": "state"})["data"]["step_count"] == 1


def test_ws_resets_and_steps_run_on_the_event_loop(app_client, monkeypatch):
    where = []

    def on_a_loop() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:  # a worker thread runs no event loop
            return False

    for name in ("reset", "step"):
        real = getattr(SupportEnvironment, name)
        monkeypatch.setattr(SupportEnvironment, name, lambda self, *a, _real=real, _name=name, **k: where.append((_name, on_a_loop())) or _real(self, *a, **k))
    with app_client.websocket_connect("/ws") as ws:
        first = _ws(ws, {"type": "reset", "data": {"task_id": "easy_classify", "not_a_reset_argument": 1}})
        ticket = first["data"]["observation"]["current_ticket"]["id"]
        step = _ws(ws, {"type": "step", "data": {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}})
        assert step["type"] == "observation" and step["data"]["observation"]["last_action_error"] is None
    assert where == [("reset", True), ("step", True)]


PLAY_WITHOUT_READING = """
import io
import sys
from pathlib import Path

import support_env
import support_env.access.mcp_tools
from support_env.environment import SupportEnvironment
from support_env.access.preload import preload
from support_env.agents.rollout import play
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS
from support_env.access.mcp_tools import SupportToolEnvironment
from support_env.agents.zoo import ZOO

if sys.argv[1] == "preload":
    preload()
package = Path(support_env.__file__).parent
data = (str(package / "domain" / "data"), str(package / "episodes" / "data"))
real_open = io.open

def guarded(file, *args, **kwargs):
    if str(file).startswith(data):
        raise SystemExit(f"read after start-up: {file}")
    return real_open(file, *args, **kwargs)

def built_late(*args, **kwargs):
    raise SystemExit("MCP tool definitions built after start-up")

io.open = guarded  # pathlib reads through io.open
support_env.access.mcp_tools._tools_of = built_late
episodes = [dict(task_id=t) for t in TASK_IDS]
episodes += [dict(task_id=t, seed=s, split=split) for t in QUEUE_TASKS for s in range(4) for split in ("train", "eval")]
for policy in ZOO:
    for kwargs in episodes:
        env = SupportEnvironment()
        play(policy(), lambda: env.reset(**kwargs), env.step)
SupportToolEnvironment().mcp_server
print("played", len(ZOO) * len(episodes))
"""


@pytest.mark.parametrize("start", ["preload", "cold"])
def test_after_preload_no_episode_reads_a_data_file_or_builds_tools(start):
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PLAY_WITHOUT_READING), start], cwd=root, capture_output=True, text=True, timeout=300
    )
    if start == "preload":
        assert done.returncode == 0 and done.stdout.startswith("played"), done.stdout + done.stderr
    else:  # the check itself works: a cold process does read data files while playing
        assert done.returncode != 0 and "read after start-up" in done.stderr, done.stdout + done.stderr


def test_the_fast_yaml_parser_reads_every_data_file_as_pyyaml_does():
    package = Path(support_env.__file__).parent
    texts = [p.read_text(encoding="utf-8") for p in sorted(package.glob("*/data/**/*.yaml"))]
    texts += [p.read_text(encoding="utf-8").split("---", 2)[1] for p in sorted(package.glob("domain/data/kb/*.md"))]  # front matter
    assert LOADER is yaml.CSafeLoader  # the wheels ship libyaml; without it parse_yaml is PyYAML's own
    assert len(texts) > 80
    for text in texts:
        assert parse_yaml(text) == yaml.safe_load(text)


def test_each_reply_is_parsed_once_per_episode(monkeypatch):
    calls = []
    real = reply_grading.read_claims
    monkeypatch.setattr(reply_grading, "read_claims", lambda text, *a: calls.append(text) or real(text, *a))
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id="hard_mixed_queue"), env.step)
    replies = [a for a in rollout.actions if a.action_type == "reply_ticket"]
    assert rollout.final.done and replies
    # One reading per reply step, none again at the end of the episode.
    assert len(calls) == len(replies)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_the_parse_memo_never_changes_a_grade(task_id):
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id), env.step)
    spec, progress = env._spec, env._desk.progress
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
