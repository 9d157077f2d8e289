"""The /ws transport through openenv's own EnvClient (our typed SupportEnv subclass)."""

from __future__ import annotations

import pytest

from support_env.access.client import SupportEnv
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import TASK_IDS


def ws_rollout(env, task_id: str, seed: int | None = None):
    return play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed).observation, lambda a: env.step(a).observation)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_policy_over_websocket_matches_in_process(server, task_id):
    with SupportEnv(base_url=server.url).sync() as client:
        rollout = ws_rollout(client, task_id)
        state = client.state()
    local = SupportEnvironment()
    expected = play(ReferencePolicy(), lambda: local.reset(task_id=task_id), local.step)

    assert rollout.grade.score >= 0.95
    assert rollout.grade == expected.grade
    assert rollout.rewards == expected.rewards
    assert state.done and state.grade == expected.grade and state.tickets_closed == state.tickets_total


def test_two_connections_are_isolated_sessions(server):
    with SupportEnv(base_url=server.url).sync() as a, SupportEnv(base_url=server.url).sync() as b:
        first_a = a.reset(task_id="easy_classify").observation
        first_b = b.reset(task_id="hard_mixed_queue").observation
        ticket = first_a.current_ticket.id
        a.step(SupportAction(action_type="classify_ticket", ticket_id=ticket, category="billing"))
        assert a.state().step_count == 1
        assert b.state().step_count == 0
        assert b.state().task_id == "hard_mixed_queue"
        assert first_a.episode_id != first_b.episode_id


def test_websocket_errors_are_clear_messages(server):
    with SupportEnv(base_url=server.url).sync() as client:
        with pytest.raises(RuntimeError, match="call reset"):
            client.step(SupportAction(action_type="search_kb", query="refund"))
        with pytest.raises(RuntimeError, match="valid task ids: easy_classify, medium_kb_reply, hard_mixed_queue"):
            client.reset(task_id="nope")
        # The connection survives both errors.
        assert client.reset(task_id="easy_classify").observation.current_ticket is not None
