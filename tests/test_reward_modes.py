"""Reward modes: dense (shaped step rewards) and sparse (nothing until the last step, which is
the grade), on every way in: in process, HTTP, /ws and an MCP session. In sparse mode nothing
the agent can see before `done` tells whether an action was right."""

from __future__ import annotations

import pytest

from support_env.access.client import SupportEnv
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.agents.zoo import make
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation
from tests.test_mcp import create_session, rpc


def rollout(task_id: str, seed: int | None, mode: str | None, policy=None):
    env = SupportEnvironment()
    first = env.reset(task_id=task_id, seed=seed, reward_mode=mode)
    return play(policy or ReferencePolicy(), lambda: first, env.step), env


def test_sparse_pays_nothing_until_the_last_step_which_is_the_grade():
    sparse, env = rollout("hard_mixed_queue", 3, "sparse")
    dense, _ = rollout("hard_mixed_queue", 3, "dense")
    assert sparse.grade == dense.grade  # the same play is graded the same
    assert all(r == 0.0 for r in sparse.rewards[:-1]) and sparse.rewards[-1] == sparse.grade.score
    assert all(o.reward_detail.components == {} for o in sparse.observations[:-1])
    assert sparse.final.reward_detail.components == {"episode_grade": sparse.grade.score}
    assert all(entry.reward == 0.0 for o in sparse.observations[:-1] for entry in o.conversation_history)
    assert any(r > 0 for r in dense.rewards[:-1])  # dense pays along the way
    assert env.state.reward_mode == "sparse" and sparse.final.reward_mode == "sparse"


def test_sparse_state_shows_no_reward_before_done():
    env = SupportEnvironment()
    obs = env.reset(task_id="easy_classify", reward_mode="sparse")
    env.step(SupportAction(action_type="classify_ticket", ticket_id=obs.current_ticket.id, category="billing"))
    assert env.state.total_reward == 0.0 and not env.state.done


def _after(mode: str, actions) -> SupportObservation:
    env = SupportEnvironment()
    obs = env.reset(task_id="medium_kb_reply", reward_mode=mode)
    for make_action in actions:
        obs = env.step(make_action(obs.current_ticket.id))
    return obs


def _visible(obs: SupportObservation) -> dict:
    """What the agent sees, less its own actions' rendering in the log."""
    seen = obs.model_dump(exclude={"episode_id"})
    seen["conversation_history"] = [(e["step"], e["reward"]) for e in seen["conversation_history"]]
    seen["current_ticket"]["thread"] = [m for m in seen["current_ticket"]["thread"] if m["author"] == "customer"]
    return seen


CLASSIFY = {c: (lambda tid, c=c: SupportAction(action_type="classify_ticket", ticket_id=tid, category=c)) for c in ("billing", "technical", "account")}
SEARCH = lambda tid: SupportAction(action_type="search_kb", query="refund window monthly subscription")  # noqa: E731


def _reply(text: str):
    return lambda tid: SupportAction(action_type="reply_ticket", ticket_id=tid, reply_text=text)


def test_in_sparse_mode_a_right_and_a_wrong_action_look_the_same():
    right, wrong = "billing", "technical"  # the first ticket of medium_kb_reply is a billing question
    assert _visible(_after("sparse", [CLASSIFY[right]])) == _visible(_after("sparse", [CLASSIFY[wrong]]))
    assert _visible(_after("dense", [CLASSIFY[right]])) != _visible(_after("dense", [CLASSIFY[wrong]]))  # the probe can fail
    # A reply that takes the customer for another plan's customer: dense mode's customer says so; sparse mode's says nothing.
    good, mistaken = _reply("You can ask within 14 days of the charge."), _reply("As a Enterprise customer you can ask within 14 days.")
    dense_good, dense_bad = _after("dense", [SEARCH, good]), _after("dense", [SEARCH, mistaken])
    assert _visible(dense_good)["current_ticket"]["thread"] != _visible(dense_bad)["current_ticket"]["thread"]
    assert _visible(_after("sparse", [SEARCH, good])) == _visible(_after("sparse", [SEARCH, mistaken]))


def test_a_reward_prober_gains_nothing_in_sparse_mode():
    dense = [rollout("hard_mixed_queue", s, "dense", make("reward-prober"))[0].grade.score for s in range(12)]
    sparse = [rollout("hard_mixed_queue", s, "sparse", make("reward-prober"))[0].grade.score for s in range(12)]
    blind = [rollout("hard_mixed_queue", s, "sparse", make("keyword-generic"))[0].grade.score for s in range(12)]
    assert sum(dense) > sum(sparse) + 1.0  # in dense mode the search reward tells it which tickets are emergencies
    assert sum(sparse) <= sum(blind)  # in sparse mode probing is worth less than reading the ticket


def test_a_bad_reward_mode_is_refused_and_changes_nothing():
    env = SupportEnvironment()
    env.reset(task_id="easy_classify")
    before = env.state
    with pytest.raises(ValueError, match="reward_mode must be one of dense, sparse"):
        env.reset(task_id="hard_mixed_queue", reward_mode="shaped")
    assert env.state == before


def test_reward_mode_over_http(http):
    reply = http.post("/reset", json={"task_id": "easy_classify", "reward_mode": "sparse"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["observation"]["reward_mode"] == "sparse"
    ticket = body["observation"]["current_ticket"]["id"]
    step = http.post("/step", json={"episode_id": body["observation"]["episode_id"],
                                    "action": {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}}).json()
    assert step["reward"] == 0.0 and step["observation"]["reward_detail"]["components"] == {}
    refused = http.post("/reset", json={"task_id": "easy_classify", "reward_mode": "shaped"})
    assert refused.status_code == 422 and "reward_mode" in refused.text


def test_reward_mode_over_websocket(server):
    with SupportEnv(base_url=server.url).sync() as client:
        played = play(ReferencePolicy(), lambda: client.reset(task_id="hard_mixed_queue", seed=5, reward_mode="sparse").observation,
                      lambda a: client.step(a).observation)
    local, _ = rollout("hard_mixed_queue", 5, "sparse")
    assert played.rewards == local.rewards and played.grade == local.grade
    assert all(r == 0.0 for r in played.rewards[:-1])


def test_reward_mode_in_an_mcp_session(http):
    session_id = create_session(http, task_id="easy_classify", reward_mode="sparse")
    reply = rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)
    assert SupportObservation.model_validate(reply["result"]["structured_content"]).reward_mode == "sparse"
    refused = rpc(http, "openenv/session/create", task_id="easy_classify", reward_mode="shaped")
    assert "reward_mode must be one of dense, sparse" in refused["error"]["message"]
