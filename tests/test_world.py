"""The business world: records, policy-checked operations, end-state grading, isolation."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from support_env.domain.world import Impossible, World, load_world
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
        (dict(invoice_id="INV-30587", amount=98.01), "refused: only $98.00 of captured, unrefunded money is left on INV-30587"),
        (dict(invoice_id="INV-41902", amount=1.0), "refused: invoice 'INV-41902' does not belong to this customer"),
        (dict(invoice_id="INV-99999", amount=1.0), "refused: invoice 'INV-99999' does not belong to this customer"),
        (dict(invoice_id="INV-30587", amount=-5.0), "positive number of US dollars"),
        (dict(invoice_id="INV-30587", amount=1.234), "at most 2 decimals"),
        (dict(invoice_id="INV-30587"), "amount is required"),
    ],
)
def test_an_impossible_refund_is_refused_and_changes_nothing(refund_case, action, reason):
    before = invoices(refund_case)
    observation = refund_case.step(act(action_type="issue_refund", **action))
    assert observation.reward == -0.2 and reason in observation.last_action_error
    assert refund_case._desk.world.log == []
    assert invoices(refund_case) == before
    assert refund_case.state.progress[0].writes == []


def test_the_world_refuses_a_refund_of_nothing():
    world = load_world("duplicate_charge_refund")
    for cents in (0, -100):
        with pytest.raises(Impossible, match="the refund amount must be positive"):
            world.issue_refund("acct_4TQ8", "INV-30587", cents)
    assert world.log == []


@pytest.mark.parametrize(
    "action, breach",
    [
        (dict(invoice_id="INV-30112", amount=49.0), "outside the 14-day refund window (KB-B01)"),
        (dict(invoice_id="INV-30588", amount=12.4), "usage overages are not refundable (KB-B01)"),
        (dict(invoice_id="INV-30588", amount=0.01), "usage overages are not refundable (KB-B01)"),
    ],
)
def test_a_refund_policy_forbids_happens_is_recorded_as_a_breach_and_zeroes_the_case(refund_case, action, breach):
    invoices(refund_case)
    observation = refund_case.step(act(action_type="issue_refund", **action))
    assert observation.last_action_error is None
    assert observation.reward_detail.components == {"policy_breach": -0.2}
    [write] = refund_case._desk.world.log
    assert write.breach == breach
    refunded = {inv["invoice_id"]: inv["refunded_cents"] for inv in invoices(refund_case)}
    assert refunded[action["invoice_id"]] == round(action["amount"] * 100)
    # The case's own refund, on evidence, does not save it: the breach zeroes the outcome.
    assert refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0)).reward_detail.components == {"outcome": 0.2}
    refund_case.step(act(action_type="classify_ticket", category="billing"))
    ticket = refund_case.step(act(action_type="close_ticket", resolution="refund_issued")).grade.tickets[0]
    assert ticket.components["outcome"] == 0.0 and ticket.score == 0.0
    assert f"broke policy: {write.describe()}: {breach}" in ticket.notes
    assert "an operation broke policy: the ticket scores 0" in ticket.notes


def test_the_duplicate_capture_is_refundable_once_and_the_charge_itself_only_in_its_window(refund_case):
    invoices(refund_case)
    first = refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert first.last_action_error is None and first.reward_detail.components == {"outcome": 0.2}
    again = refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    assert again.last_action_error is None and again.reward_detail.components == {"policy_breach": -0.2}
    assert [w.breach for w in refund_case._desk.world.log] == ["", "outside the 14-day refund window (KB-B01)"]
    assert refund_case.state.progress[0].writes == ["refund of $49.00 on INV-30587"] * 2
    nothing_left = refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=0.01))
    assert "refused: only $0.00 of captured, unrefunded money is left on INV-30587" in nothing_left.last_action_error


def test_a_duplicate_capture_is_refundable_at_any_time():
    world = load_world("duplicate_charge_refund")
    world.today = date(2027, 6, 1)  # over a year after the capture
    assert world.issue_refund("acct_4TQ8", "INV-30587", 4900).breach == ""
    assert world.issue_refund("acct_4TQ8", "INV-30587", 1).breach == "outside the 14-day refund window (KB-B01)"


def test_refunding_every_invoice_in_full_on_the_canonical_refund_case_scores_0(refund_case):
    rows = invoices(refund_case)
    for inv in rows:
        refund_case.step(act(action_type="issue_refund", invoice_id=inv["invoice_id"], amount=inv["amount_cents"] / 100))
    assert [w.breach != "" for w in refund_case._desk.world.log] == [True, False, True]
    refund_case.step(act(action_type="classify_ticket", category="billing"))
    ticket = refund_case.step(act(action_type="close_ticket", resolution="refund_issued")).grade.tickets[0]
    assert ticket.score == 0.0 and ticket.components["outcome"] == 0.0
    assert "broke policy: refund of $49.00 on INV-30112: outside the 14-day refund window (KB-B01)" in ticket.notes
    assert "broke policy: refund of $12.40 on INV-30588: usage overages are not refundable (KB-B01)" in ticket.notes


def test_the_needed_refund_alone_resolves_the_canonical_refund_case(refund_case):
    invoices(refund_case)
    refund_case.step(act(action_type="issue_refund", invoice_id="INV-30587", amount=49.0))
    refund_case.step(act(action_type="classify_ticket", category="billing"))
    ticket = refund_case.step(act(action_type="close_ticket", resolution="refund_issued")).grade.tickets[0]
    assert ticket.components["outcome"] == 1.0 and not any("broke policy" in n for n in ticket.notes)


def annual_world(days_ago: int, **invoice) -> World:
    """One account with a $1,200.00 subscription invoice charged `days_ago` days before 2026-06-15."""
    charged = date(2026, 6, 15) - timedelta(days=days_ago)
    return load_world(None, records=json.dumps({
        "today": "2026-06-15",
        "accounts": [{"account_id": "acct_A1", "status": "active", "regions": []}],
        "invoices": [{"invoice_id": "INV-1", "account_id": "acct_A1", "kind": "subscription", "amount_cents": 120000, **invoice}],
        "payments": [{"payment_id": "pay_1", "invoice_id": "INV-1", "amount_cents": 120000, "status": "captured", "captured_on": charged.isoformat()}],
    }))


@pytest.mark.parametrize(
    "invoice, days_ago, cents, breach",
    [
        ({"interval": "annual"}, 20, 110000, ""),  # one month started: 11 of 12 refundable
        ({"billing": "annual"}, 20, 110000, ""),
        ({"interval": "annual"}, 20, 110001, "months already used are not refunded: at most $1100.00 of the charge is refundable (KB-B03)"),
        ({"interval": "annual"}, 20, 120000, "months already used are not refunded: at most $1100.00 of the charge is refundable (KB-B03)"),
        ({"interval": "annual"}, 45, 100000, ""),  # two months started
        ({"interval": "annual"}, 45, 110000, "months already used are not refunded: at most $1000.00 of the charge is refundable (KB-B03)"),
        ({"interval": "annual"}, 60, 100, ""),
        ({"interval": "annual"}, 61, 100, "outside the 60-day annual refund window (KB-B03)"),
        ({"interval": "annual", "kind": "overage"}, 1, 100, "usage overages are not refundable (KB-B01)"),
        ({}, 14, 120000, ""),  # no interval: monthly
        ({}, 15, 100, "outside the 14-day refund window (KB-B01)"),
        ({"interval": "monthly"}, 20, 100, "outside the 14-day refund window (KB-B01)"),
    ],
)
def test_subscription_refund_windows_and_annual_proration(invoice, days_ago, cents, breach):
    world = annual_world(days_ago, **invoice)
    assert world.issue_refund("acct_A1", "INV-1", cents).breach == breach
    assert [w.amount_cents for w in world.log] == [cents]


def test_annual_proration_counts_earlier_refunds_of_the_charge():
    world = annual_world(20, interval="annual")
    assert world.issue_refund("acct_A1", "INV-1", 100000).breach == ""
    assert world.issue_refund("acct_A1", "INV-1", 10000).breach == ""
    assert world.issue_refund("acct_A1", "INV-1", 1).breach.startswith("months already used are not refunded")
    with pytest.raises(Impossible, match=r"only \$99.99 of captured"):
        world.issue_refund("acct_A1", "INV-1", 10000)


def test_an_impossible_account_operation_is_refused():
    env = SupportEnvironment()
    env.reset(task_id="account_takeover_fraud")
    env.step(act(action_type="lookup_record", record="api_keys"))
    key = env._desk.world.lookup("acct_Z7K1", "api_keys")[0]["key_id"]
    assert env.step(act(action_type="revoke_api_key", key_id=key)).last_action_error is None
    again = env.step(act(action_type="revoke_api_key", key_id=key))
    assert f"refused: API key {key} is already revoked" in again.last_action_error and again.reward == -0.2
    unknown = env.step(act(action_type="revoke_api_key", key_id="key_h1"))  # another customer's key
    assert "refused: API key 'key_h1' does not belong to this customer" in unknown.last_action_error
    assert env.step(act(action_type="lock_account")).last_action_error is None
    locked = env.step(act(action_type="lock_account"))
    assert "refused: account acct_Z7K1 is already locked" in locked.last_action_error
    assert [w.operation for w in env._desk.world.log] == ["revoke_key", "lock_account"]


def test_an_order_not_delivered_or_not_the_customers_cannot_be_replaced():
    env = SupportEnvironment()
    env.reset(task_id="damaged_item_replacement")
    in_transit = env.step(act(action_type="send_replacement", order_id="ORD-5690"))
    assert "refused: order ORD-5690 is in_transit; only delivered hardware can be replaced" in in_transit.last_action_error
    unknown = env.step(act(action_type="send_replacement", order_id="ORD-0000"))
    assert "refused: order 'ORD-0000' does not belong to this customer" in unknown.last_action_error
    assert env._desk.world.log == []


@pytest.mark.parametrize(
    "orders, breach",
    [
        (["ORD-5521", "ORD-5521"], "one replacement per order (KB-A10)"),
        (["ORD-5521", "ORD-4410"], "damage reported more than 30 days after delivery (KB-A10)"),
    ],
)
def test_a_replacement_policy_forbids_happens_and_zeroes_the_case(orders, breach):
    env = SupportEnvironment()
    env.reset(task_id="damaged_item_replacement")
    env.step(act(action_type="lookup_record", record="orders"))
    first = env.step(act(action_type="send_replacement", order_id=orders[0]))
    assert first.reward_detail.components == {"outcome": 0.2}
    second = env.step(act(action_type="send_replacement", order_id=orders[1]))
    assert second.last_action_error is None and second.reward_detail.components == {"policy_breach": -0.2}
    assert [w.breach for w in env._desk.world.log] == ["", breach]
    rows = {o["order_id"]: o["replacement_sent"] for o in env.step(act(action_type="lookup_record", record="orders")).records["orders"]}
    assert rows[orders[1]] is True
    env.step(act(action_type="classify_ticket", category="account"))
    ticket = env.step(act(action_type="close_ticket", resolution="replacement_sent")).grade.tickets[0]
    assert ticket.score == 0.0 and f"broke policy: replacement for order {orders[1]}: {breach}" in ticket.notes


def test_a_replacement_within_the_window_is_no_breach():
    world = load_world("damaged_item_replacement")
    world.today = date(2026, 6, 3)  # ORD-5521 was delivered on 2026-05-04: day 30
    assert world.send_replacement("acct_M2P5", "ORD-5521").breach == ""
    world = load_world("damaged_item_replacement")
    world.today = date(2026, 6, 4)
    assert world.send_replacement("acct_M2P5", "ORD-5521").breach == "damage reported more than 30 days after delivery (KB-A10)"


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


def test_refunds_made_before_the_episode_count_as_refunded():
    world = annual_world(20, interval="annual")
    world.payments.append({"payment_id": "re_1", "invoice_id": "INV-1", "amount_cents": 100000, "status": "refunded", "refunded_on": "2026-06-01"})
    with pytest.raises(Impossible, match=r"only \$200.00 of captured, unrefunded money is left on INV-1"):
        world.issue_refund("acct_A1", "INV-1", 20001)
    assert world.issue_refund("acct_A1", "INV-1", 10000).breach == ""  # $1,100.00 of the charge in all: 11 of 12 months
    assert world.issue_refund("acct_A1", "INV-1", 1).breach.startswith("months already used are not refunded")
