"""Graders as pure functions: fact normalisation, reply grading, ticket and episode grades."""

from __future__ import annotations

import dataclasses

import pytest

from support_env.environment import SupportEnvironment
from support_env.domain.facts import extract_quantities, make_fact
from support_env.grading.claims import read_claims
from support_env.grading.reply import grade_reply
from support_env.grading.tickets import grade_episode, grade_ticket
from support_env.domain.kb import default_kb
from support_env.domain.world import Write
from support_env.episodes.spec import ExpectedWrite
from support_env.agents.reading import compose_reply
from support_env.agents.reference import ReferencePolicy
from support_env.grading.progress import SentReply, TicketProgress
from support_env.agents.rollout import play
from support_env.episodes.catalogue import TASK_IDS, canonical_task
from support_env.agents.zoo import EscalateEverything

KB = default_kb()


@pytest.mark.parametrize(
    "said, meant",
    [
        ("14 days", "14 days"), ("fourteen days", "14 days"), ("two weeks", "14 days"), ("a 14-day window", "14 days"),
        ("24 hours", "1 day"), ("twenty-four hours", "24 hours"), ("within an hour", "60 minutes"), ("24h", "1 day"),
        ("5 to 10 business days", "5-10 business days"), ("five-ten working days", "5-10 business days"),
        ("10 requests per second", "600 requests per minute"), ("3000 rpm", "3,000 requests per minute"),
        ("$500.00", "$500"), ("500 USD", "$500"), ("99.9 percent", "99.9%"), ("10MB", "10 MB"),
    ],
)
def test_one_fact_many_spellings(said, meant):
    fact = make_fact("k", meant, about=["news"])
    assert fact.quantity is not None
    assert states(f"Good news: it is {said} for you.", fact)


@pytest.mark.parametrize(
    "said, meant",
    [("30 days", "14 days"), ("14 hours", "14 days"), ("3-5 business days", "5-10 business days"), ("60 requests per minute", "600 requests per minute")],
)
def test_different_values_are_different_facts(said, meant):
    assert not states(f"It is {said}.", make_fact("k", meant))


def test_numbers_without_units_are_not_claims():
    assert extract_quantities("Error 429 on request 1234 in region eu-west-1, SDK v2.3") == []


def test_term_facts_match_their_synonyms_through_punctuation():
    fact = make_fact("loc", "Console > Billing > Invoices", synonyms=["Billing > Invoices"])
    assert states("Open billing → invoices.", fact)
    assert not states("Open the invoices tab", fact)


def states(text: str, fact) -> bool:
    """Whether `text` rightly states `fact` (the only fact in scope), as the reply grader reads it."""
    return any(
        c.fact == fact and c.positive and not c.hedged and (c.value is None or c.value.same_as(fact.quantity))
        for c in read_claims(text, [fact])
    )


def medium_ticket(ticket_id: str = "M01"):
    return next(t for t in canonical_task("medium_kb_reply").tickets if t.id == ticket_id)


def grounded(text: str, article: str) -> SentReply:
    return SentReply(text=text, retrieved_before=frozenset({article}))


def test_a_concise_correct_reply_scores_full_marks():
    ticket = medium_ticket()
    article = KB.articles[ticket.truth.reply.article]
    grade = grade_reply([grounded(compose_reply(ticket.view(), article), article.id)], ticket.truth.reply, ticket.customer.plan, KB)
    assert grade.score == 1.0 and not grade.missing and not grade.wrong and grade.grounded


def test_pasting_whole_articles_scores_less_than_a_concise_correct_reply():
    ticket = medium_ticket()
    truth = ticket.truth.reply
    hits = [a for a, _ in KB.search(f"{ticket.subject} {ticket.body}", k=5)]
    assert truth.article in {a.id for a in hits}
    pasted = "\n\n".join(a.body for a in hits)[:4000]
    retrieved = frozenset(a.id for a in hits)
    stuffed = grade_reply([SentReply(pasted, retrieved)], truth, ticket.customer.plan, KB)
    concise = grade_reply([SentReply(compose_reply(ticket.view(), KB.articles[truth.article]), retrieved)], truth, ticket.customer.plan, KB)
    assert stuffed.score < concise.score
    assert stuffed.score <= 0.5


def test_a_wrong_value_costs_half_and_a_contradiction_costs_the_fact():
    ticket = medium_ticket("M01")
    truth = ticket.truth.reply
    article = KB.articles[truth.article]
    right = compose_reply(ticket.view(), article)
    wrong_extra = right + "\nActually, refunds can be requested for 30 days."
    grade = grade_reply([grounded(wrong_extra, article.id)], truth, ticket.customer.plan, KB)
    assert grade.score == 0.5 and grade.wrong == ("stated refund window 30 days; true for this customer: 14 days",)


def test_a_reply_before_retrieving_the_article_earns_nothing():
    ticket = medium_ticket()
    truth = ticket.truth.reply
    reply = compose_reply(ticket.view(), KB.articles[truth.article])
    grade = grade_reply([SentReply(reply, frozenset())], truth, ticket.customer.plan, KB)
    assert grade.score == 0.0 and not grade.grounded


def test_plan_specific_values_must_match_the_customers_plan():
    ticket = medium_ticket("M02")
    truth = ticket.truth.reply
    article = KB.articles[truth.article]
    other_plan = "free" if ticket.customer.plan != "free" else "pro"
    wrong_plan_value = article.fact("rate_limit", other_plan).value
    right_value = article.fact("rate_limit", ticket.customer.plan).value
    text = f"Your limit is {wrong_plan_value}. Back off using the Retry-After header."
    graded = grade_reply([grounded(text, article.id)], truth, ticket.customer.plan, KB)
    assert "rate_limit" in graded.missing and graded.wrong
    fixed = grade_reply([grounded(text.replace(wrong_plan_value, right_value), article.id)], truth, ticket.customer.plan, KB)
    assert fixed.score == 1.0


def test_overlong_replies_lose_credit():
    ticket = medium_ticket()
    article = KB.articles[ticket.truth.reply.article]
    reply = compose_reply(ticket.view(), article)
    padded = reply + "\n" + ("We value you as a customer. " * 100)[:2600 - len(reply)]
    grade = grade_reply([grounded(padded, article.id)], ticket.truth.reply, ticket.customer.plan, KB)
    assert 0 < grade.score < 0.5


def test_missing_a_critical_escalation_zeroes_the_ticket_and_false_escalation_too():
    spec = canonical_task("hard_mixed_queue")
    critical = next(t for t in spec.tickets if t.truth.escalate)
    routine = next(t for t in spec.tickets if t.truth.kind == "routine")
    done_but_not_escalated = TicketProgress(critical.id, classified_as=critical.truth.category, closed=True)
    assert grade_ticket(critical, done_but_not_escalated, KB).score == 0.0
    escalated_routine = TicketProgress(routine.id, classified_as=routine.truth.category, escalated=True, closed=True)
    graded = grade_ticket(routine, escalated_routine, KB)
    assert graded.score == 0.0 and any("not an emergency" in n for n in graded.notes)


def test_unclosed_tickets_earn_half():
    ticket = canonical_task("easy_classify").tickets[0]
    open_ticket = TicketProgress(ticket.id, classified_as=ticket.truth.category)
    assert grade_ticket(ticket, open_ticket, KB).score == 0.5


def play_in_process(policy, task_id: str):
    env = SupportEnvironment()
    return play(policy, lambda: env.reset(task_id=task_id), env.step)


def test_escalating_everything_scores_at_most_0_5_on_the_hard_queue():
    grade = play_in_process(EscalateEverything(), "hard_mixed_queue").grade
    assert grade.score <= 0.5
    assert grade.escalation_recall == 1.0 and grade.escalation_precision < 0.5


def test_a_forbidden_promise_costs_like_a_wrong_value_unless_negated():
    ticket = next(t for t in canonical_task("hard_mixed_queue").tickets if t.truth.reply and t.truth.reply.forbidden)
    truth = ticket.truth.reply
    right = compose_reply(ticket.view(), KB.articles[truth.article])
    promise = right + "\nGood news: we will reissue the invoice with your VAT ID."
    refusal = right + "\nWe cannot reissue the invoice, sorry."
    graded = grade_reply([grounded(promise, truth.article)], truth, ticket.customer.plan, KB)
    assert graded.score == 0.5 and graded.forbidden
    assert any("promised to reissue a past invoice" in n for n in graded.notes([]))
    assert grade_reply([grounded(refusal, truth.article)], truth, ticket.customer.plan, KB).score == 1.0


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_policy_scores_at_least_0_95_and_grades_are_deterministic(task_id):
    first = play_in_process(ReferencePolicy(), task_id)
    second = play_in_process(ReferencePolicy(), task_id)
    assert first.grade.score >= 0.95, first.grade
    assert first.grade == second.grade and first.rewards == second.rewards


def test_the_grade_explains_every_deduction():
    spec = canonical_task("medium_kb_reply")
    progress = [TicketProgress(t.id, classified_as="billing", closed=True) for t in spec.tickets]
    grade = grade_episode(spec, progress, KB)
    for ticket in grade.tickets:
        assert ticket.score < 1.0
        assert ticket.notes, ticket


# --- case outcomes: policy breaches, cases that need no operation -------------------------

def refund_ticket(**truth):
    """The canonical refund case with its truth changed: reply and escalation aside."""
    ticket = canonical_task("duplicate_charge_refund").tickets[0]
    return dataclasses.replace(ticket, truth=dataclasses.replace(ticket.truth, reply=None, escalate=False, **truth))


def case_progress(ticket, looked_up=(), writes=(), write_evidence=None, resolution="no_action_needed"):
    return TicketProgress(
        ticket.id, classified_as=ticket.truth.category, looked_up=set(looked_up), writes=list(writes),
        write_evidence=list(write_evidence if write_evidence is not None else [frozenset(looked_up)] * len(writes)),
        resolution=resolution, closed=True,
    )


DUPLICATE_REFUND = Write("refund", "INV-30587", 4900)


def test_a_write_that_broke_policy_zeroes_the_case_even_beside_the_needed_one():
    ticket = refund_ticket()
    breach = Write("refund", "INV-30112", 4900, breach="outside the 14-day refund window (KB-B01)")
    clean = grade_ticket(ticket, case_progress(ticket, ticket.truth.evidence, [DUPLICATE_REFUND], resolution="refund_issued"), KB)
    assert clean.score == 1.0
    broke = grade_ticket(ticket, case_progress(ticket, ticket.truth.evidence, [DUPLICATE_REFUND, breach], resolution="refund_issued"), KB)
    assert broke.components["outcome"] == 0.0 and broke.score == 0.0
    assert "broke policy: refund of $49.00 on INV-30112: outside the 14-day refund window (KB-B01)" in broke.notes
    assert not any(n.startswith("unexpected write") for n in broke.notes)
    # A breach on the very target the case needs earns nothing either.
    same = Write("refund", "INV-30587", 4900, breach="outside the 14-day refund window (KB-B01)")
    assert same == DUPLICATE_REFUND  # the breach is no part of the comparison...
    assert grade_ticket(ticket, case_progress(ticket, ticket.truth.evidence, [same], resolution="refund_issued"), KB).score == 0.0


def test_a_case_that_needs_no_operation_is_resolved_by_a_decision_on_evidence():
    ticket = refund_ticket(outcome=(), evidence=("invoices",), resolution="no_action_needed")
    decided = grade_ticket(ticket, case_progress(ticket, looked_up={"invoices"}), KB)
    assert decided.components["outcome"] == 1.0 and decided.score == 1.0, decided
    unseen = grade_ticket(ticket, case_progress(ticket, looked_up={"account"}), KB)
    assert unseen.components["outcome"] == 0.0 and unseen.score == 0.0
    assert "closed without looking up invoices: no decision on evidence" in unseen.notes
    assert not any("before acting" in n for n in unseen.notes)


def test_a_write_on_a_case_that_needs_none_zeroes_it_on_evidence_or_not():
    ticket = refund_ticket(outcome=(), evidence=("invoices",), resolution="no_action_needed")
    acted = grade_ticket(ticket, case_progress(ticket, looked_up={"invoices"}, writes=[DUPLICATE_REFUND]), KB)
    assert acted.components["outcome"] == 0.0 and acted.score == 0.0
    assert "no account operation was needed: refund of $49.00 on INV-30587" in acted.notes


def test_acting_before_the_customer_clarified_is_named_as_such():
    expected = ExpectedWrite("refund", "INV-30587", 4900)
    ticket = refund_ticket(outcome=(expected,), evidence=("invoices", "clarification"), resolution="refund_issued")
    early = case_progress(ticket, looked_up={"invoices", "clarification"}, writes=[DUPLICATE_REFUND], write_evidence=[frozenset({"invoices"})])
    graded = grade_ticket(ticket, early, KB)
    assert graded.score == 0.0
    assert "acted before the customer said which one" in graded.notes
    assert "refund of $49.00 on INV-30587 was done before the customer said which one: no credit" in graded.notes
    assert not any("look up clarification" in n or "looking up clarification" in n for n in graded.notes), graded.notes
    after = case_progress(ticket, looked_up={"invoices", "clarification"}, writes=[DUPLICATE_REFUND], resolution="refund_issued")
    assert grade_ticket(ticket, after, KB).score == 1.0
    unasked = refund_ticket(outcome=(), evidence=("invoices", "clarification"), resolution="no_action_needed")
    closed = grade_ticket(unasked, case_progress(unasked, looked_up={"invoices"}), KB)
    assert closed.score == 0.0 and "closed before the customer said which one: no decision on evidence" in closed.notes
