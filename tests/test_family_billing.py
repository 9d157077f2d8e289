"""Billing reasoning families: refund eligibility by date, a computed refund balance, and a
"double charge" that is a card authorisation. Each template's tickets must need the records:
the reference policy (observation + public KB) solves them, the truth oracle scores 1.0, and a
keyword script that never looks anything up scores nothing."""

from __future__ import annotations

import re
import statistics
from datetime import date

import pytest

from support_env.agents.reference import ReferencePolicy
from support_env.domain.world import load_world
from support_env.episodes.catalogue import one_case_episode
from support_env.episodes.cases import case_templates
from support_env.models import SupportAction
from tests.family_play import SEEDS, family_spec, play_ticket

TEMPLATES = sorted(t.id for t in case_templates() if t.id.startswith("billing_"))








def test_six_billing_templates_train_and_eval_of_three_families():
    families = {}
    for t in case_templates():
        if t.id in TEMPLATES:
            families.setdefault(t.family, set()).add(t.split)
    assert families == {f: {"train", "eval"} for f in ("refund_by_date", "refund_balance", "authorisation_hold")}



def _truths(template_id: str):
    return [family_spec(template_id, seed).tickets[0] for seed in SEEDS]


@pytest.mark.parametrize("template_id", ["billing_refund_window_train", "billing_refund_window_eval"])
def test_refund_cases_fall_on_both_sides_of_both_windows(template_id):
    kinds = {(t.truth.reply.article, bool(t.truth.outcome)) for t in _truths(template_id)}
    assert kinds == {("KB-B01", True), ("KB-B01", False), ("KB-B03", True), ("KB-B03", False)}


@pytest.mark.parametrize("template_id", ["billing_refund_window_train", "billing_refund_window_eval"])
def test_the_customer_never_says_whether_the_charge_is_in_the_window(template_id):
    for ticket in _truths(template_id):
        text = f"{ticket.subject} {ticket.body}".lower()
        assert not re.search(r"window|days ago|\b(?:14|60) days|within|last week|yesterday", text), text


def test_an_annual_refund_inside_the_window_is_prorated():
    """The expected refund of an annual charge is the unused months, never the whole charge."""
    seen = 0
    for ticket in _truths("billing_refund_window_train") + _truths("billing_refund_window_eval"):
        if ticket.truth.reply.article == "KB-B03" and ticket.truth.outcome:
            (write,) = ticket.truth.outcome
            assert write.amount_cents < {"pro": 49000, "business": 399000, "enterprise": 1299000}[ticket.customer.plan]
            seen += 1
    assert seen >= 3


def test_refunding_whatever_is_asked_scores_zero_outside_the_window():
    """A policy that refunds the charge without reading the dates breaks policy on the late requests."""
    late = [(s, t) for s in SEEDS for t in [family_spec("billing_refund_window_train", s).tickets[0]] if not t.truth.outcome]
    assert late
    for seed, ticket in late[:4]:
        spec = family_spec("billing_refund_window_train", seed)
        world = load_world(None, spec.records)
        invoice = next(i for i in world.invoices.values() if i["kind"] == "subscription"
                       and max(p["captured_on"] for p in world.payments if p["invoice_id"] == i["invoice_id"]) ==
                       max(p["captured_on"] for p in world.payments if p["status"] == "captured"))
        reference = ReferencePolicy()

        class RefundsAnyway:
            """The reference's steps, plus a refund of the latest subscription charge before closing."""

            pending = None

            def act(self, obs):
                if self.pending is not None:
                    return self.pending
                action = reference.act(obs)
                if action.action_type == "close_ticket":
                    self.pending = action
                    return SupportAction(action_type="issue_refund", ticket_id=ticket.id, invoice_id=invoice["invoice_id"],
                                         amount=invoice["amount_cents"] / 100)
                return action

        assert play_ticket(RefundsAnyway(), spec).score == 0.0


def test_an_authorisation_hold_is_never_captured_and_the_duplicate_case_still_is():
    for ticket_id in ("billing_auth_hold_train", "billing_auth_hold_eval"):
        for seed in range(5):
            world = load_world(None, family_spec(ticket_id, seed).records)
            statuses = sorted(p["status"] for p in world.payments)
            assert statuses.count("captured") == 2 and ({"authorized", "pending"} & set(statuses))
    # the original double capture: two captured payments on one invoice, refunded by the reference
    assert statistics.mean(play_ticket(ReferencePolicy(), one_case_episode("duplicate_capture_train", s)).score for s in range(5)) == 1.0


def test_balance_answers_are_computed_from_several_rows():
    for ticket in _truths("billing_refund_balance_train"):
        (fact,) = ticket.truth.reply.ticket_facts
        assert fact.key in ("amount_left", "refund_amount") and ticket.truth.outcome == ()
    assert date.fromisoformat(family_spec("billing_refund_balance_train", 0).today)
