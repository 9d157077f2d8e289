"""The business world: records, policy-checked operations, end-state grading, isolation."""

from __future__ import annotations

import pytest

from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import CASE_TASKS, build_episode
from support_env.agents.zoo import EveryWrite

from .conftest import HttpEpisode


def act(**fields) -> SupportAction:
    return SupportAction(**{"ticket_id": "R01", **fields})


@pytest.fixture
def refund_case() -> SupportEnvironment:
    env = SupportEnvironment()
    env.reset(task_id="duplicate_charge_refund")
    return env


def invoices(env: SupportEnvironment):
    return env.step(act(action_type="lookup_record", record="invoices")).records["invoices"]


@pytest.mark.parametrize(
    "action, reason",
    [
        (dict(invoice_id="INV-30112", amount=49.0), "outside the 14-day refund window"),
        (dict(invoice_id="INV-30588", amount=12.4), "usage overages are not refundable"),
        (dict(invoice_id="INV-30587", amount=98.01), "only $98.00 of captured, unrefunded money is left"),
        (dict(invoice_id="INV-41902", amount=1.0), "does not belong to this customer"),
        (dict(invoice_id="INV-30587", amount=-5.0), "positive number of US dollars"),
        (dict(invoice_id="INV-30587", amount=1.234), "at most 2 decimals"),
        (dict(invoice_id="INV-30587"), "amount is required"),
    ],
)
def test_a_refund_policy_forbids_is_refused_and_changes_nothing(refund_case, action, reason):
    before = invoices(refund_case)
    observation = refund_case.step(act(action_type="issue_refund", **action))
    assert observation.reward == -0.2 and reason in observation.last_action_error
    assert refund_case._desk.world.log == []
    assert invoices(refund_case) == before
    assert refund_case.state.progress[0].writes == []


def test_the_duplicate_capture_is_refundable_once(refund_case):
    invoices(refund_case)
    first = refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert first.last_action_error is None and first.reward_detail.components == {"outcome": 0.2}
    again = refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert "outside the 14-day refund window" in again.last_action_error
    assert refund_case.state.progress[0].writes == ["refund of $49.00 on INV-30587"]


def test_records_are_only_for_the_tickets_customer_and_keys_show_last_four_only():
    env = SupportEnvironment()
    env.reset(task_id="account_takeover_fraud")
    other = env.step(act(action_type="lookup_record", record="invoices", account_id="acct_4TQ8"))
    assert "only look up the records of this ticket's customer (acct_Z7K1)" in other.last_action_error
    unknown = env.step(act(action_type="lookup_record", record="passwords"))
    assert "unknown record 'passwords'" in unknown.last_action_error
    keys = env.step(act(action_type="lookup_record", record="api_keys")).records["api_keys"]
    assert all(len(k["last4"]) == 4 and not {"secret", "token", "key"} & set(k) for k in keys)


def test_tickets_without_records_cannot_look_anything_up():
    env = SupportEnvironment()
    ticket = env.reset(task_id="easy_classify").current_ticket.id
    observation = env.step(SupportAction(action_type="lookup_record", ticket_id=ticket, record="account"))
    assert "has no account records in this task" in observation.last_action_error


def test_a_right_operation_done_before_the_evidence_earns_nothing():
    env = SupportEnvironment()
    env.reset(task_id="account_takeover_fraud")
    guess = env.step(act(action_type="lock_account"))
    assert guess.last_action_error is None and guess.reward == 0.0
    env.step(act(action_type="classify_ticket", category="account"))
    env.step(act(action_type="escalate_ticket", reason="takeover"))
    final = env.step(act(action_type="close_ticket", resolution="escalated"))
    ticket = final.grade.tickets[0]
    assert ticket.score == 0.0
    assert any("was done before looking up audit_log, api_keys: no credit" in n for n in ticket.notes)
    assert any("the case was not resolved" in n for n in ticket.notes)


@pytest.mark.parametrize("task_id", CASE_TASKS)
def test_doing_every_write_one_can_scores_at_most_0_2_and_the_grade_explains_the_diff(task_id):
    env = SupportEnvironment()
    rollout = play(EveryWrite(), lambda: env.reset(task_id=task_id), env.step)
    ticket = rollout.grade.tickets[0]
    assert rollout.grade.score <= 0.2
    assert any(n.startswith("unexpected write:") for n in ticket.notes), ticket.notes


def test_an_unknown_resolution_code_is_invalid():
    env = SupportEnvironment()
    env.reset(task_id="damaged_item_replacement")
    env.step(act(action_type="classify_ticket", category="account"))
    observation = env.step(act(action_type="close_ticket", resolution="fixed_it"))
    assert "resolution 'fixed_it' is not one of resolved, refund_issued" in observation.last_action_error
    assert env.state.current_ticket_id == "R01"


def test_concurrent_sessions_refund_in_their_own_worlds(http):
    a, b = HttpEpisode(http), HttpEpisode(http)
    a.reset(task_id="duplicate_charge_refund")
    b.reset(task_id="duplicate_charge_refund")
    a.step(act(action_type="lookup_record", record="invoices"))
    refunded = a.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert refunded.last_action_error is None

    seen_by_a = a.step(act(action_type="lookup_record", record="invoices")).records["invoices"]
    seen_by_b = b.step(act(action_type="lookup_record", record="invoices")).records["invoices"]
    refunded_cents = lambda rows: {inv["invoice_id"]: inv["refunded_cents"] for inv in rows}  # noqa: E731
    assert refunded_cents(seen_by_a)["INV-30587"] == 4900
    assert set(refunded_cents(seen_by_b).values()) == {0}
    assert http.get("/state", params={"episode_id": b.episode_id}).json()["progress"][0]["writes"] == []
    own = b.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert own.last_action_error is None  # B's world still has its duplicate


# --- record-backed tickets in generated hard queues -------------------------------------

def seed_with_case(split: str) -> tuple[int, str]:
    """A hard-queue seed whose queue carries a case ticket, and that ticket's id."""
    for seed in range(100):
        cases = [t for t in build_episode("hard_mixed_queue", seed, split).tickets if t.truth.outcome]
        if cases:
            return seed, cases[0].id
    raise AssertionError("no seed in 0-99 mixes in a case")


@pytest.mark.parametrize("split", ["train", "eval"])
def test_a_generated_case_is_resolved_over_http_by_the_reference_policy(http, split):
    seed, case_id = seed_with_case(split)
    episode = HttpEpisode(http)
    rollout = play(ReferencePolicy(), lambda: episode.reset(task_id="hard_mixed_queue", seed=seed, split=split), episode.step)
    assert rollout.grade.score == 1.0, rollout.grade
    looked_up = [o for o in rollout.observations if o.current_ticket and o.current_ticket.id == case_id and o.records]
    assert looked_up, "the reference looked up no records on the case ticket"
    case = next(t for t in rollout.grade.tickets if t.ticket_id == case_id)
    assert case.components["outcome"] == 1.0 and case.components["resolution"] == 1.0


def test_sessions_on_the_same_generated_case_keep_their_own_worlds(http):
    seed, case_id = seed_with_case("train")
    a, b = HttpEpisode(http), HttpEpisode(http)
    first = a.reset(task_id="hard_mixed_queue", seed=seed)
    assert b.reset(task_id="hard_mixed_queue", seed=seed) == first.model_copy(update={"episode_id": b.episode_id})
    play(ReferencePolicy(), lambda: first, a.step)  # A resolves every ticket, the case included
    state_a = http.get("/state", params={"episode_id": a.episode_id}).json()
    assert state_a["done"] and any(p["writes"] for p in state_a["progress"])
    reference = ReferencePolicy()
    observation = first.model_copy(update={"episode_id": b.episode_id})
    while observation.current_ticket.id != case_id:  # B walks its own queue to the case without any write
        observation = b.step(reference.act(observation))
    records = {}
    for record in ("account", "invoices", "api_keys", "orders", "audit_log"):
        records[record] = b.step(act(action_type="lookup_record", record=record, ticket_id=case_id)).records[record]
    assert records["account"]["status"] == "active"
    assert all(inv["refunded_cents"] == 0 for inv in records["invoices"])
    assert all(key["status"] == "active" for key in records["api_keys"])
    assert not any(order["replacement_sent"] for order in records["orders"])
