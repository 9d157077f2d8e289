"""Episode rules, in process: every invalid-action path, the limits, pay-once rubric items."""

from __future__ import annotations

import pytest

from support_env.environment import MAX_INVALID_ACTIONS, MAX_STEPS, EpisodeNotStarted, SupportEnvironment
from support_env.models import SupportAction
from support_env.episodes.catalogue import UnknownTaskError, canonical_task


def act(**fields) -> SupportAction:
    return SupportAction(**fields)


@pytest.fixture
def env() -> SupportEnvironment:
    return SupportEnvironment()


def current(env: SupportEnvironment) -> str:
    return env.state.current_ticket_id


INVALID_CASES = {
    "unknown action type": (lambda t: act(action_type="refund_everyone", ticket_id=t), "unknown action_type 'refund_everyone'"),
    "missing ticket id": (lambda t: act(action_type="classify_ticket", category="billing"), "classify_ticket needs ticket_id"),
    "wrong ticket id": (lambda t: act(action_type="classify_ticket", ticket_id="Z99", category="billing"), "'Z99' is not the current ticket"),
    "missing category": (lambda t: act(action_type="classify_ticket", ticket_id=t), "category is required"),
    "unknown category": (lambda t: act(action_type="classify_ticket", ticket_id=t, category="sales"), "'sales' is not one of billing, technical, account"),
    "empty query": (lambda t: act(action_type="search_kb", query="   "), "query is required and must not be empty"),
    "missing query": (lambda t: act(action_type="search_kb"), "query is required"),
    "oversized query": (lambda t: act(action_type="search_kb", query="q" * 501), "query is 501 characters; the limit is 500"),
    "empty reply": (lambda t: act(action_type="reply_ticket", ticket_id=t, reply_text=""), "reply_text is required"),
    "oversized reply": (lambda t: act(action_type="reply_ticket", ticket_id=t, reply_text="x" * 4001), "reply_text is 4001 characters"),
    "escalation without reason": (lambda t: act(action_type="escalate_ticket", ticket_id=t), "reason is required"),
    "closing an unhandled ticket": (lambda t: act(action_type="close_ticket", ticket_id=t), "has not been handled"),
}


@pytest.mark.parametrize("case", sorted(INVALID_CASES))
def test_each_invalid_action_costs_0_2_is_counted_and_explained(env, case):
    make, message = INVALID_CASES[case]
    before = env.reset(task_id="medium_kb_reply")
    observation = env.step(make(current(env)))

    assert observation.reward == -0.2
    assert observation.reward_detail.components == {"invalid_action": -0.2}
    assert observation.invalid_actions == 1
    assert message in observation.last_action_error
    assert observation.current_ticket == before.current_ticket
    assert observation.steps_remaining == MAX_STEPS - 1
    assert not observation.done
    assert "invalid" in observation.conversation_history[-1].result


def test_a_valid_action_clears_the_error(env):
    env.reset(task_id="easy_classify")
    env.step(act(action_type="search_kb", query=""))
    observation = env.step(act(action_type="search_kb", query="invoice"))
    assert observation.last_action_error is None and observation.invalid_actions == 1


def test_classification_is_final_and_pays_once(env):
    env.reset(task_id="easy_classify")
    ticket = current(env)
    first = env.step(act(action_type="classify_ticket", ticket_id=ticket, category="billing"))
    again = env.step(act(action_type="classify_ticket", ticket_id=ticket, category="technical"))
    assert first.reward in (0.0, 0.1)
    assert again.reward == -0.2 and "already classified" in again.last_action_error
    assert env.state.progress[0].classified_as == "billing"


def test_escalating_twice_is_invalid(env):
    env.reset(task_id="easy_classify")
    ticket = current(env)
    env.step(act(action_type="escalate_ticket", ticket_id=ticket, reason="looks bad"))
    again = env.step(act(action_type="escalate_ticket", ticket_id=ticket, reason="still bad"))
    assert again.reward == -0.2 and "already escalated" in again.last_action_error


def test_closing_advances_the_queue_and_clears_search_results(env):
    first = env.reset(task_id="easy_classify")
    ticket = first.current_ticket.id
    env.step(act(action_type="search_kb", query="invoice"))
    env.step(act(action_type="classify_ticket", ticket_id=ticket, category="billing"))
    observation = env.step(act(action_type="close_ticket", ticket_id=ticket))
    assert observation.current_ticket.id != ticket
    assert observation.tickets_remaining == first.tickets_remaining - 1
    assert observation.kb_search_results == []
    # The closed ticket can no longer be acted on.
    late = env.step(act(action_type="reply_ticket", ticket_id=ticket, reply_text="hello"))
    assert "is not the current ticket" in late.last_action_error


def test_the_episode_fails_on_the_tenth_invalid_action(env):
    env.reset(task_id="hard_mixed_queue")
    for i in range(MAX_INVALID_ACTIONS):
        observation = env.step(act(action_type="close_ticket", ticket_id=current(env)))
        assert observation.done == (i == MAX_INVALID_ACTIONS - 1)
    assert observation.invalid_actions == MAX_INVALID_ACTIONS
    assert observation.grade.failed and not observation.grade.success
    assert observation.grade.score == 0.0
    assert observation.reward_detail.components == {"invalid_action": -0.2, "episode_grade": 0.0}


def test_the_episode_is_cut_off_after_50_steps(env):
    env.reset(task_id="hard_mixed_queue")
    for step in range(1, MAX_STEPS + 1):
        observation = env.step(act(action_type="search_kb", query=f"question {step}"))
        assert observation.done == (step == MAX_STEPS)
    assert observation.steps_remaining == 0
    assert observation.grade is not None and not observation.grade.failed
    assert observation.grade.score == 0.0


def test_a_failed_episode_scores_0_but_keeps_its_ticket_breakdown(env):
    first = canonical_task("easy_classify").tickets[0]
    env.reset(task_id="easy_classify")
    env.step(act(action_type="classify_ticket", ticket_id=first.id, category=first.truth.category))
    env.step(act(action_type="close_ticket", ticket_id=first.id))
    for _ in range(MAX_INVALID_ACTIONS):
        observation = env.step(act(action_type="close_ticket", ticket_id=current(env)))
    grade = observation.grade
    assert grade.failed and not grade.success and grade.score == 0.0
    assert grade.tickets[0].ticket_id == first.id and grade.tickets[0].score == 1.0


def test_steps_after_the_end_change_nothing(env):
    env.reset(task_id="hard_mixed_queue")
    for _ in range(MAX_INVALID_ACTIONS):
        env.step(act(action_type="close_ticket", ticket_id=current(env)))
    before = env.state
    observation = env.step(act(action_type="search_kb", query="refund"))
    assert observation.done and observation.reward == 0.0
    assert "the episode is over" in observation.last_action_error
    assert env.state == before


def test_search_rewards_pay_once_per_ticket(env):
    env.reset(task_id="medium_kb_reply")
    ticket = env._spec.tickets[0]  # test-only peek at the truth to pick the right query
    article = env._kb.articles[ticket.truth.reply.article]
    queries = [article.title, f"{article.title} policy", f"about {article.title}"]
    rewards = [env.step(act(action_type="search_kb", query=q)).reward for q in queries]
    assert rewards == [0.1, 0.0, 0.0]


def test_the_same_action_a_third_time_in_a_row_costs_0_05_each_time(env):
    env.reset(task_id="easy_classify")
    search = act(action_type="search_kb", query="invoice")
    rewards = [env.step(search).reward for _ in range(4)]
    assert rewards == [0.0, 0.0, -0.05, -0.05]
    assert env.step(act(action_type="search_kb", query="refund")).reward == 0.0  # a new action resets the count
    assert env.step(search).reward == 0.0


def test_step_before_reset_raises_a_clear_error(env):
    with pytest.raises(EpisodeNotStarted, match="call reset"):
        env.step(act(action_type="search_kb", query="refund"))


def test_unknown_task_and_bad_seed_are_rejected_and_change_nothing(env):
    env.reset(task_id="easy_classify")
    before = env.state
    with pytest.raises(UnknownTaskError, match="valid task ids: easy_classify, medium_kb_reply, hard_mixed_queue"):
        env.reset(task_id="nope")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        env.reset(task_id="easy_classify", seed=-3)
    assert env.state == before


def test_same_task_and_seed_give_the_same_queue_and_seeds_differ(env):
    def queue(seed):
        observation = env.reset(task_id="hard_mixed_queue", seed=seed)
        subjects = []
        while not env.state.done:
            ticket = current(env)
            subjects.append(observation.current_ticket.subject)
            env.step(act(action_type="classify_ticket", ticket_id=ticket, category="billing"))
            observation = env.step(act(action_type="close_ticket", ticket_id=ticket))
        return subjects

    assert queue(1) == queue(1)
    assert len({tuple(queue(seed)) for seed in (None, 1, 2, 3)}) == 4
    assert queue(None) == [t.subject for t in canonical_task("hard_mixed_queue").tickets]
