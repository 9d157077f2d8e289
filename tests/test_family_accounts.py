"""Accounts and hardware reasoning families: a requester who is not the owner, a replacement or
revocation that needs the customer to say which one, a key's expiry date computed from its
creation date, and a "never arrived" order the records show delivered and signed for. Each
template's tickets must need the records: the reference policy (observation + public KB) solves
them, the truth oracle scores 1.0, and a keyword script that never looks anything up scores
nothing. The original takeover and damaged-hardware cases keep their handling."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from support_env import SupportEnvironment
from support_env.agents.reference import ReferencePolicy
from support_env.episodes.catalogue import build_episode, one_case_episode
from support_env.episodes.cases import case_templates
from support_env.models import SupportAction
from tests.family_play import SEEDS, family_spec, play_ticket

TEMPLATES = sorted(t.id for t in case_templates() if t.id.startswith("accounts_"))
FAMILIES = ("not_the_owner", "which_one", "key_expiry", "signed_for")










def test_eight_templates_train_and_eval_of_four_families():
    families = {}
    for t in case_templates():
        if t.id in TEMPLATES:
            families.setdefault(t.family, set()).add(t.split)
    assert families == {f: {"train", "eval"} for f in FAMILIES}



@pytest.mark.parametrize("template_id", ["accounts_not_owner_train", "accounts_not_owner_eval"])
def test_the_sender_is_never_a_verified_contact_and_both_kinds_of_sender_occur(template_id):
    kinds = set()
    for seed in SEEDS:
        spec = family_spec(template_id, seed)
        ticket = spec.tickets[0]
        (account,) = json.loads(spec.records)["accounts"]
        sender = ticket.customer.email
        assert sender not in account["verified_contacts"] and sender != account["email"]
        same_domain = sender.split("@")[1] == account["email"].split("@")[1]
        kinds.add("colleague" if same_domain else "impostor")
        if same_domain:  # a colleague signs with their own name, not the owner's
            assert ticket.customer.name != account["owner"]
        assert ticket.truth.outcome == () and ticket.truth.evidence == ("account",)
        assert any(f.disclose for f in ticket.truth.reply.forbidden)
    assert kinds == {"colleague", "impostor"}


def test_acting_for_a_non_owner_zeroes_the_ticket():
    """Doing what the non-owner asks (a refund, a revocation, a replacement) after reading the
    account is a write the case did not need: the ticket scores 0."""
    checked = 0
    for seed in SEEDS:
        spec = family_spec("accounts_not_owner_train", seed)
        world = json.loads(spec.records)
        tid = spec.tickets[0].id
        write = None
        if world["invoices"]:
            inv = world["invoices"][0]
            write = SupportAction(action_type="issue_refund", ticket_id=tid, invoice_id=inv["invoice_id"], amount=inv["amount_cents"] / 100)
        elif world["api_keys"]:
            write = SupportAction(action_type="revoke_api_key", ticket_id=tid, key_id=world["api_keys"][0]["key_id"])
        elif world["orders"]:
            write = SupportAction(action_type="send_replacement", ticket_id=tid, order_id=world["orders"][0]["order_id"])
        if write is None:
            continue
        state = {"done": False}

        def extra(obs, write=write, state=state):
            if not state["done"] and "account" in obs.records:
                state["done"] = True
                return write
            return None

        assert play_ticket(ReferencePolicy(), spec, extra).score == 0.0
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("template_id", ["accounts_which_one_train", "accounts_which_one_eval"])
def test_a_write_before_the_customer_says_which_earns_nothing(template_id):
    """The expected write done right after the look-up, before asking, is a guess: no outcome credit."""
    for seed in range(6):
        spec = family_spec(template_id, seed)
        ticket = spec.tickets[0]
        (expected,) = ticket.truth.outcome
        action = (SupportAction(action_type="send_replacement", ticket_id=ticket.id, order_id=expected.target)
                  if expected.operation == "replacement" else
                  SupportAction(action_type="revoke_api_key", ticket_id=ticket.id, key_id=expected.target))
        state = {"done": False}

        def extra(obs, action=action, state=state):
            if not state["done"] and any(r in obs.records for r in ("orders", "api_keys")):
                state["done"] = True
                return action
            return None

        assert play_ticket(ReferencePolicy(), spec, extra).score <= 0.35


@pytest.mark.parametrize("template_id", ["accounts_which_one_train", "accounts_which_one_eval"])
def test_the_ticket_never_says_which_and_both_kinds_occur(template_id):
    kinds = set()
    for seed in SEEDS:
        spec = family_spec(template_id, seed)
        ticket = spec.tickets[0]
        world = json.loads(spec.records)
        text = f"{ticket.subject} {ticket.body}"
        for order in world["orders"]:
            assert order["order_id"] not in text
        for key in world["api_keys"]:
            assert key["last4"] not in text and key["key_id"] not in text
        candidates = [o for o in world["orders"] if o["status"] == "delivered"] or [k for k in world["api_keys"] if k["status"] == "active"]
        assert len(candidates) >= 2
        assert "clarification" in ticket.truth.evidence and ticket.clarification is not None
        kinds.add(ticket.truth.outcome[0].operation)
    assert kinds == {"replacement", "revoke_key"}


@pytest.mark.parametrize("template_id", ["accounts_key_expiry_train", "accounts_key_expiry_eval"])
def test_the_expiry_date_is_the_creation_date_plus_90_days_and_never_in_the_ticket(template_id):
    for seed in SEEDS:
        spec = family_spec(template_id, seed)
        ticket = spec.tickets[0]
        (fact,) = ticket.truth.reply.ticket_facts
        (key,) = [k for k in json.loads(spec.records)["api_keys"] if k["last4"] in ticket.body]
        assert fact.key == "expiry_date"
        assert date.fromisoformat(fact.value) == date.fromisoformat(key["created_on"]) + timedelta(days=90)
        assert fact.value not in ticket.body and key["created_on"] not in ticket.body
        assert date.fromisoformat(fact.value) > date.fromisoformat(spec.today)


def test_a_reply_with_the_creation_date_or_a_wrong_expiry_loses_the_reply_credit():
    from support_env.domain.kb import default_kb
    from support_env.grading.progress import SentReply
    from support_env.grading.reply import grade_reply

    spec = family_spec("accounts_key_expiry_train", 1)
    ticket = spec.tickets[0]
    truth = ticket.truth.reply
    expiry = date.fromisoformat(truth.ticket_facts[0].value)

    def score(text):
        return grade_reply([SentReply(text=text, retrieved_before=frozenset({truth.article}))], truth, ticket.customer.plan, default_kb()).score

    right = f"API keys expire 90 days after creation, so your key expires on {expiry.isoformat()}."
    wrong = f"API keys expire 90 days after creation, so your key expires on {(expiry + timedelta(days=30)).isoformat()}."
    assert score(right) == 1.0 and score(wrong) <= 0.5


@pytest.mark.parametrize("template_id", ["accounts_signed_for_train", "accounts_signed_for_eval"])
def test_replacing_an_order_that_was_signed_for_zeroes_the_ticket(template_id):
    for seed in range(6):
        spec = family_spec(template_id, seed)
        ticket = spec.tickets[0]
        order = max(json.loads(spec.records)["orders"], key=lambda o: o["delivered_on"])
        assert order["signed_by"] and order["status"] == "delivered"
        replace = SupportAction(action_type="send_replacement", ticket_id=ticket.id, order_id=order["order_id"])
        state = {"done": False}

        def extra(obs, replace=replace, state=state):
            if not state["done"] and "orders" in obs.records:
                state["done"] = True
                return replace
            return None

        assert play_ticket(ReferencePolicy(), spec, extra).score == 0.0


@pytest.mark.parametrize("task_id", ["account_takeover_fraud", "damaged_item_replacement", "duplicate_charge_refund"])
def test_the_original_cases_keep_their_handling(task_id):
    """The takeover's account email is the attacker's but its verified contact is the sender: the
    owner, handled by the original logic; the damaged order is still replaced."""
    env = SupportEnvironment()
    obs = env.reset(task_id=task_id)
    policy = ReferencePolicy()
    while not obs.done:
        obs = env.step(policy.act(obs))
    assert obs.grade.score == 1.0


@pytest.mark.parametrize("template_id", ["damaged_securekey_train", "takeover_overnight_eval"])
def test_the_original_case_templates_keep_their_handling(template_id):
    assert min(play_ticket(ReferencePolicy(), one_case_episode(template_id, seed)).score for seed in range(8)) == 1.0


def test_expert_queues_stay_solvable_by_the_reference():
    for seed in range(3):
        for split in ("train", "eval"):
            env = SupportEnvironment()
            obs = env.start_episode(build_episode("expert_queue", seed, split), reward_mode=None)
            policy = ReferencePolicy()
            while not obs.done:
                obs = env.step(policy.act(obs))
            assert obs.grade.score >= 0.95, (seed, split, [(t.ticket_id, t.score, t.notes) for t in obs.grade.tickets])
