"""The stateful HTTP API, against a live uvicorn server."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import TASK_IDS, canonical_task

from .conftest import HttpEpisode, to_observation


def solo_rollout(task_id: str, seed: int | None = None):
    env = SupportEnvironment()
    return play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed), env.step)


def comparable(observation) -> dict:
    """An observation without its session id, for comparing transports."""
    return observation.model_dump(exclude={"episode_id", "metadata"})


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_policy_solves_every_task_over_http(http, task_id):
    episode = HttpEpisode(http)
    rollout = play(ReferencePolicy(), lambda: episode.reset(task_id=task_id), episode.step)

    assert rollout.final.done
    assert rollout.grade is not None and rollout.grade.score >= 0.95, rollout.grade
    assert rollout.grade.success
    assert rollout.final.reward_detail.components["episode_grade"] == rollout.grade.score
    assert [comparable(o) for o in rollout.observations] == [comparable(o) for o in solo_rollout(task_id).observations]


def test_interleaved_sessions_give_exactly_their_solo_results(http):
    a, b = HttpEpisode(http), HttpEpisode(http)
    policy_a, policy_b = ReferencePolicy(), ReferencePolicy()
    trace_a = [a.reset(task_id="medium_kb_reply")]
    trace_b = [b.reset(task_id="hard_mixed_queue", seed=7)]
    assert a.episode_id != b.episode_id
    while not (trace_a[-1].done and trace_b[-1].done):
        if not trace_a[-1].done:
            trace_a.append(a.step(policy_a.act(trace_a[-1])))
        if not trace_b[-1].done:
            trace_b.append(b.step(policy_b.act(trace_b[-1])))

    assert [comparable(o) for o in trace_a] == [comparable(o) for o in solo_rollout("medium_kb_reply").observations]
    assert [comparable(o) for o in trace_b] == [comparable(o) for o in solo_rollout("hard_mixed_queue", 7).observations]


def test_requests_without_episode_id_use_the_last_reset_made_without_one(http):
    first = to_observation(http.post("/reset", json={"task_id": "easy_classify"}).json())
    second = to_observation(http.post("/reset", json={"task_id": "medium_kb_reply"}).json())
    ticket = second.current_ticket.id

    step = http.post("/step", json={"action": {"action_type": "classify_ticket", "ticket_id": ticket, "category": "billing"}})
    assert step.status_code == 200
    assert http.get("/state").json()["episode_id"] == second.episode_id
    assert http.get("/state").json()["step_count"] == 1
    # The earlier session is untouched and still reachable by id.
    earlier = http.get("/state", params={"episode_id": first.episode_id}).json()
    assert earlier["task_id"] == "easy_classify" and earlier["step_count"] == 0


def test_reset_with_a_chosen_episode_id_reuses_it(http):
    observation = to_observation(http.post("/reset", json={"task_id": "easy_classify", "episode_id": "my-run.1"}).json())
    assert observation.episode_id == "my-run.1"
    http.post("/step", json={"episode_id": "my-run.1", "action": {"action_type": "search_kb", "query": "refund"}})
    again = to_observation(http.post("/reset", json={"task_id": "medium_kb_reply", "episode_id": "my-run.1"}).json())
    assert again.task_id == "medium_kb_reply" and again.steps_remaining == 50
    assert http.get("/state", params={"episode_id": "my-run.1"}).json()["step_count"] == 0


def test_unknown_episode_id_is_a_clear_404(http):
    for response in (
        http.post("/step", json={"episode_id": "nope", "action": {"action_type": "search_kb", "query": "x"}}),
        http.get("/state", params={"episode_id": "nope"}),
    ):
        assert response.status_code == 404
        assert "unknown or expired episode_id 'nope'" in response.json()["detail"]


def test_step_before_any_reset_is_a_clear_404(start_server):
    fresh = start_server()
    response = httpx.post(f"{fresh.url}/step", json={"action": {"action_type": "search_kb", "query": "refund"}})
    assert response.status_code == 404
    assert "call POST /reset first" in response.json()["detail"]
    assert httpx.get(f"{fresh.url}/state").status_code == 404


def test_unknown_task_is_a_400_listing_valid_ids_and_changes_nothing(http):
    episode = HttpEpisode(http, episode_id="keep-me")
    before = episode.reset(task_id="easy_classify")
    response = http.post("/reset", json={"task_id": "nightmare", "episode_id": "keep-me"})

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "nightmare" in detail and all(task in detail for task in TASK_IDS)
    state = http.get("/state", params={"episode_id": "keep-me"}).json()
    assert state["task_id"] == "easy_classify" and state["current_ticket_id"] == before.current_ticket.id


@pytest.mark.parametrize(
    "path, body",
    [
        ("/step", {"action": "classify"}),
        ("/step", {}),
        ("/step", {"action": {"category": "billing"}}),
        ("/step", {"action": {"action_type": "search_kb", "query": "x", "colour": "red"}}),
        ("/reset", {"seed": -1}),
        ("/reset", {"task": "easy_classify"}),
        ("/reset", {"episode_id": "has spaces"}),
    ],
)
def test_bodies_of_the_wrong_shape_are_422_with_details(http, path, body):
    response = http.post(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"], response.text


def test_non_json_body_is_422_not_500(http):
    response = http.post("/step", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_state_shows_progress_but_no_answers(http):
    episode = HttpEpisode(http)
    observation = episode.reset(task_id="hard_mixed_queue")
    state = http.get("/state", params={"episode_id": episode.episode_id}).json()
    spec = canonical_task("hard_mixed_queue")

    exposed = json.dumps(state) + json.dumps(observation.model_dump())
    for ticket in spec.tickets:
        if ticket.truth.reply:
            assert ticket.truth.reply.article not in exposed
    for word in ("truth", "critical", "escalate\":", "required"):
        assert word not in exposed
    assert state["progress"] == [
        {
            "ticket_id": observation.current_ticket.id, "classified_as": None, "replies": 0, "escalated": False,
            "writes": [], "resolution": None, "closed": False,
        }
    ]
    assert state["grade"] is None


def test_schema_describes_this_environment(http):
    schema = http.get("/schema").json()
    action = schema["action"]["properties"]
    assert {"action_type", "ticket_id", "category", "query", "reply_text", "reason"} <= set(action)
    assert all(prop.get("description") for prop in action.values())
    assert {"current_ticket", "kb_search_results", "grade", "reward_detail"} <= set(schema["observation"]["properties"])
    assert {"progress", "tickets_closed", "invalid_actions"} <= set(schema["state"]["properties"])


def test_metadata_health_and_mcp(http):
    metadata = http.get("/metadata").json()
    assert metadata["name"] == "support_env" and "support" in metadata["description"]
    assert http.get("/health").json()["status"] == "healthy"
    rpc = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).json()
    assert rpc["jsonrpc"] == "2.0" and rpc["id"] == 1
    assert http.post("/mcp", json={}).json()["jsonrpc"] == "2.0"


def test_idle_sessions_expire_with_a_clear_404(start_server):
    live = start_server(SUPPORT_ENV_SESSION_TTL="1")
    with httpx.Client(base_url=live.url) as client:
        episode_id = client.post("/reset", json={}).json()["observation"]["episode_id"]
        assert client.get("/state", params={"episode_id": episode_id}).status_code == 200
        time.sleep(1.5)
        response = client.get("/state", params={"episode_id": episode_id})
    assert response.status_code == 404
    assert "expire after 1 s idle" in response.json()["detail"]


def test_capacity_is_capped_and_finished_episodes_give_up_their_slot(start_server):
    live = start_server(SUPPORT_ENV_MAX_SESSIONS="2")
    with httpx.Client(base_url=live.url) as client:
        episodes = [HttpEpisode(client, f"slot-{i}") for i in range(2)]
        for episode in episodes:
            episode.reset(task_id="easy_classify")
        refused = client.post("/reset", json={"episode_id": "slot-2"})
        assert refused.status_code == 503
        assert "session capacity reached (2 running episodes)" in refused.json()["detail"]

        play(ReferencePolicy(), lambda: episodes[0].reset(), episodes[0].step)
        assert client.post("/reset", json={"episode_id": "slot-2"}).status_code == 200
        # The running episode kept its slot; the finished one gave it up.
        assert client.get("/state", params={"episode_id": "slot-1"}).status_code == 200
        assert client.get("/state", params={"episode_id": "slot-0"}).status_code == 404


def test_invalid_action_is_reported_inside_the_episode_not_as_http_error(http):
    episode = HttpEpisode(http)
    episode.reset(task_id="easy_classify")
    observation = episode.step(SupportAction(action_type="dance", ticket_id="E01"))
    assert observation.reward == -0.2
    assert observation.invalid_actions == 1
    assert "unknown action_type 'dance'" in observation.last_action_error
