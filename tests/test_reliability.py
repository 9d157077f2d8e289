"""Property tests, in process: no action sequence, however malformed, breaks an episode.

Hypothesis plays arbitrary sequences of actions (valid ones, wrong ticket ids,
unknown action types, empty, odd and huge strings, NaN and infinite amounts,
resets mid-episode) on every task. After every step: no exception, a finite
reward that matches its components, an observation and a state that
serialise and parse back, and the episode limits hold; once done, a grade in
[0, 1] and an episode that stays over.
"""

from __future__ import annotations

import json
import math
import typing

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openenv.core.env_server.serialization import serialize_observation

from support_env.environment import MAX_INVALID_ACTIONS, MAX_STEPS, SupportEnvironment
from support_env.grading.rewards import PENALTY_INVALID_ACTION
from support_env.models import ACTION_TYPES, CATEGORIES, SupportAction, SupportObservation, SupportState
from support_env.episodes.catalogue import QUEUE_TASKS, TASK_IDS


ACTION_FIELDS = {name: field for name, field in SupportAction.model_fields.items() if name not in ("metadata", "action_type")}
HUGE_SIZES = (501, 1001, 4001, 20_000)
SEEDED_TASKS = QUEUE_TASKS  # the tasks with generated variants

# Every code point, lone surrogates included ("\ud800" is valid JSON but not Unicode): text holding
# one is refused as an invalid action and never echoed.
ANY_CHARACTER = st.characters(exclude_categories=())
huge_text = st.builds(lambda ch, n: ch * n, ANY_CHARACTER, st.sampled_from(HUGE_SIZES))
odd_text = st.sampled_from(["", " ", "\n\t", "\x00", "null", "None", "'; DROP TABLE tickets;--", "{{7*7}}", "\u202e\u200b", "🎧" * 3, "e" * 5 + "\u0301"])
plausible_text = st.sampled_from([*CATEGORIES, "refund policy", "How long do refunds take? 14 days.", "leaked API key", "Deleted production database"])
any_text = st.one_of(st.none(), plausible_text, odd_text, st.text(ANY_CHARACTER, max_size=40), huge_text)
any_number = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12).map(float))


def _field_strategy(name: str, current_ticket: str | None):
    annotation = ACTION_FIELDS[name].annotation
    if float in typing.get_args(annotation) or annotation is float:
        return any_number
    if name == "ticket_id":
        targets = [current_ticket] if current_ticket else []
        return st.one_of(st.sampled_from(targets + ["E01", "H03", "T-1"]), any_text) if targets else any_text
    return any_text


@st.composite
def sensible_actions(draw, current_ticket: str | None) -> SupportAction:
    """Well-formed moves on the current ticket, so episodes also progress, get graded and end by
    emptying the queue (chaos alone mostly ends them on the invalid-action limit)."""
    ticket = current_ticket or "none"
    return draw(
        st.sampled_from(
            [
                SupportAction(action_type="classify_ticket", ticket_id=ticket, category=draw(st.sampled_from(CATEGORIES))),
                SupportAction(action_type="search_kb", query=draw(plausible_text)),
                SupportAction(action_type="reply_ticket", ticket_id=ticket, reply_text=draw(st.one_of(plausible_text, st.text(ANY_CHARACTER, min_size=1, max_size=300)))),
                SupportAction(action_type="escalate_ticket", ticket_id=ticket, reason="customer reports data loss"),
                SupportAction(action_type="close_ticket", ticket_id=ticket),
                SupportAction(action_type="close_ticket", ticket_id=ticket),
            ]
        )
    )


def actions(current_ticket: str | None):
    return st.one_of(sensible_actions(current_ticket), sensible_actions(current_ticket), chaotic_actions(current_ticket))


@st.composite
def chaotic_actions(draw, current_ticket: str | None) -> SupportAction:
    action_type = draw(st.one_of(st.sampled_from(ACTION_TYPES), odd_text, st.text(ANY_CHARACTER, max_size=20), huge_text))
    chosen = draw(st.lists(st.sampled_from(sorted(ACTION_FIELDS)), unique=True, max_size=len(ACTION_FIELDS)))
    fields = {name: draw(_field_strategy(name, current_ticket)) for name in chosen}
    return SupportAction(action_type=action_type, **{k: v for k, v in fields.items() if v is not None})


@st.composite
def reset_arguments(draw) -> dict:
    task_id = draw(st.sampled_from(TASK_IDS))
    if task_id in SEEDED_TASKS and draw(st.booleans()):
        return {
            "task_id": task_id,
            "seed": draw(st.integers(0, 2**31)),
            "split": draw(st.sampled_from([None, "train", "eval"])),
            "queue_length": draw(st.one_of(st.none(), st.integers(1, 10))),
        }
    return {"task_id": task_id}


def check_observation(observation: SupportObservation, env: SupportEnvironment) -> None:
    assert math.isfinite(observation.reward)
    assert observation.reward == observation.reward_detail.value
    assert all(math.isfinite(v) for v in observation.reward_detail.components.values())
    assert math.isclose(observation.reward, sum(observation.reward_detail.components.values()), abs_tol=1e-3)
    observation.model_dump_json()  # how the server encodes it: UTF-8, no NaN
    wire = json.dumps(serialize_observation(observation), allow_nan=False)
    SupportObservation.model_validate({**json.loads(wire)["observation"], "done": observation.done, "reward": observation.reward})
    state = env.state
    assert SupportState.model_validate_json(state.model_dump_json()) == state
    assert 0 <= state.step_count <= MAX_STEPS
    assert observation.steps_remaining == MAX_STEPS - state.step_count
    assert observation.invalid_actions <= MAX_INVALID_ACTIONS
    if state.step_count == MAX_STEPS or observation.invalid_actions == MAX_INVALID_ACTIONS or observation.tickets_remaining == 0:
        assert observation.done
    if observation.done:
        grade = observation.grade
        assert grade is not None and state.grade == grade
        assert 0.0 <= grade.score <= 1.0
        assert all(0.0 <= t.score <= 1.0 for t in grade.tickets)
        assert 0.0 <= grade.escalation_precision <= 1.0 and 0.0 <= grade.escalation_recall <= 1.0
        assert observation.current_ticket is None
    else:
        assert observation.grade is None and state.grade is None


# No shrinking (a failing example is printed as drawn; shrinking 50-step episodes can take
# minutes) and no example database written into the repository.
FUZZ = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=60, **FUZZ)
@given(data=st.data(), start=reset_arguments())
def test_arbitrary_action_sequences_keep_every_episode_well_formed(data, start):
    env = SupportEnvironment()
    observation = env.reset(**start)
    check_observation(observation, env)
    resets_left, steps_since_reset = 2, 0
    while steps_since_reset < MAX_STEPS + 3:
        if resets_left and data.draw(st.integers(0, 40)) == 0:  # now and then, start over mid-episode
            resets_left -= 1
            observation, steps_since_reset = env.reset(**data.draw(reset_arguments())), 0
            check_observation(observation, env)
        ticket = observation.current_ticket.id if observation.current_ticket else None
        was_done, steps_before = observation.done, env.state.step_count
        observation = env.step(data.draw(actions(ticket)))
        steps_since_reset += 1
        check_observation(observation, env)
        if was_done:  # an episode that is over stays over, and costs nothing
            assert observation.done and observation.reward == 0.0
            assert env.state.step_count == steps_before
            assert "episode is over" in observation.last_action_error
    assert observation.done, "no episode may outlive MAX_STEPS steps"


@settings(max_examples=25, **FUZZ)
@given(task=st.sampled_from(TASK_IDS), bad=st.lists(st.sampled_from(["dance", "", "close_ticket"]), min_size=MAX_INVALID_ACTIONS, max_size=MAX_INVALID_ACTIONS))
def test_the_tenth_invalid_action_ends_the_episode_as_failed(task, bad):
    env = SupportEnvironment()
    env.reset(task_id=task)
    for n, action_type in enumerate(bad, start=1):
        observation = env.step(SupportAction(action_type=action_type, ticket_id="not-a-ticket"))
        check_observation(observation, env)
        assert observation.invalid_actions == n
        assert observation.done == (n == MAX_INVALID_ACTIONS)
    assert observation.grade.failed and not observation.grade.success


# Every field filled with something plausible, so each action gets past its other checks
# and the one oversized field is what the episode has to deal with.
PLAUSIBLE = {"category": "billing", "query": "refund", "reply_text": "Hello, refunds take 14 days.", "reason": "data loss",
             "resolution": "resolved", "record": "invoices", "invoice_id": "INV-1001", "amount": 10.0, "key_id": "key_1", "order_id": "ORD-1"}


def complete_action(action_type: str, ticket_id: str, override: dict) -> SupportAction:
    fields = {name: PLAUSIBLE.get(name, 1.0 if name == "amount" else "x") for name in ACTION_FIELDS if name != "account_id"}
    return SupportAction(**{**fields, "action_type": action_type, "ticket_id": ticket_id, **override})


@pytest.mark.parametrize(
    "field, huge",
    [
        ("amount", 1e308),
        ("amount", float("inf")),
        *((name, "Z" * 1_000_000) for name in sorted(ACTION_FIELDS) if name != "amount"),
    ],
)
def test_a_huge_value_in_any_field_is_an_invalid_action_or_harmless(field, huge):
    for task_id in TASK_IDS:
        env = SupportEnvironment()
        first = env.reset(task_id=task_id)
        for action_type in ACTION_TYPES:
            observation = env.step(complete_action(action_type, first.current_ticket.id, {field: huge}))
            check_observation(observation, env)
            if observation.done:
                break


# An action's text is echoed back in the error and the history; unbounded, a 1 MB ticket id,
# action type or resolution would make every later observation of the episode 2 MB larger.
@pytest.mark.parametrize("field", sorted({*ACTION_FIELDS, "action_type"} - {"amount"}))
def test_observations_stay_small_whatever_size_an_action_field_has(field):
    env = SupportEnvironment()
    first = env.reset(task_id="hard_mixed_queue")
    sizes = []
    for action_type in ACTION_TYPES:
        observation = env.step(complete_action(action_type, first.current_ticket.id, {field: "Z" * 1_000_000}))
        sizes.append(len(json.dumps(serialize_observation(observation))))
    assert max(sizes) < 100_000, f"{field}: observations up to {max(sizes):,} bytes"


def test_text_that_is_not_unicode_never_reaches_an_observation():
    for field in sorted({*ACTION_FIELDS, "action_type"} - {"amount"}):
        env = SupportEnvironment()
        first = env.reset(task_id="duplicate_charge_refund")
        before = env.state
        for action_type in ACTION_TYPES:
            observation = env.step(complete_action(action_type, first.current_ticket.id, {field: "x\ud800y"}))
            assert observation.last_action_error == f"{field} is not valid Unicode text (it holds a lone surrogate such as \\ud800); send UTF-8 text"
            assert observation.reward_detail.components["invalid_action"] == PENALTY_INVALID_ACTION
            assert "\ud800" not in observation.conversation_history[-1].action
            observation.model_dump_json()
            env.state.model_dump_json()
        assert env.state.current_ticket_id == first.current_ticket.id
        assert env.state.progress == before.progress and env.state.invalid_actions == len(ACTION_TYPES)
