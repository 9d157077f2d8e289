"""Replies are read as claims: each phenomenon the bag-of-values grader got wrong, pinned.

Every reply here is graded as sent on its canonical ticket after the answering article was
retrieved. `right` replies must keep full credit; `wrong` ones must lose at least half of it.
"""

from __future__ import annotations

import pytest

from support_env.domain.kb import default_kb
from support_env.episodes.catalogue import canonical_task
from support_env.grading.claims import is_english, read_claims
from support_env.grading.progress import SentReply
from support_env.grading.reply import grade_reply

KB = default_kb()


def graded(task_id: str, ticket_id: str, text: str):
    ticket = next(t for t in canonical_task(task_id).tickets if t.id == ticket_id)
    truth = ticket.truth.reply
    return grade_reply([SentReply(text, frozenset({truth.article}))], truth, ticket.customer.plan, KB)


KEYS = ("medium_kb_reply", "M03")  # API key expiry (90 days) and rotation overlap (24 hours), Pro
REFUND = ("medium_kb_reply", "M01")  # monthly refund window (14 days), processing (5-10 business days), Pro
LIMIT = ("medium_kb_reply", "M02")  # rate limit (600/min on Pro), Retry-After header
TWOFA = ("medium_kb_reply", "M04")  # government-issued photo ID, 2 business days
VAT = ("hard_mixed_queue", "H01")  # tax ID location, future invoices only; reissuing a past invoice is forbidden
DELETED_DB = ("hard_mixed_queue", "H02")  # 72 hours, do not create a new database with the same name
TAKEOVER = ("hard_mixed_queue", "H07")  # lock, 1 hour, verify identity; no restoring access before that

RIGHT = [
    (KEYS, "Keys are valid for 90 days. When you rotate, the old key keeps working for 24 hours."),
    (KEYS, "**Expiry:** ninety days after creation.\n**Rotation:** the previous key still works for one full day (24h)."),
    (REFUND, "It isn't 30 days any more: you can request a refund within 14 days, and it arrives in 5-10 business days."),
    (REFUND, "The forum said 30 days; that is no longer true. Refunds can be requested within 14 calendar days of the charge "
             "and reach the card within 5 to 10 business days. Annual plans get 60 days."),
    (LIMIT, "On Pro you can send **600** per minute; Business raises it to 3,000. Every 429 carries a Retry-After header."),
    (LIMIT, "Your limit is 10 requests per second (600 a minute), shared by all keys. Wait as long as the Retry-After header says."),
    (TWOFA, "Upload a passport or other government-issued photo ID through the secure link; the reset takes 2 business days."),
    (VAT, "We can't reissue last month's invoice: a tax ID applies to future invoices only. Add it under Billing > Tax details."),
    (DELETED_DB, "Please don't create a new database with the same name. Our engineers can recover it within 72 hours."),
    (TAKEOVER, "We've locked your account. Our security team will contact you within the hour, and once you verify your "
               "identity they'll help you get back in."),
]

WRONG = [
    (KEYS, "API keys are valid for 24 hours. After a rotation the old key keeps working for 90 days.", "swapped values"),
    (KEYS, "Keys expire after 90 days, and when you rotate the old key keeps working for either 1, 12 or 24 hours.", "a hedge"),
    (REFUND, "You can request a refund within 5-10 business days of the charge; the money is back within 14 days.", "swapped"),
    (REFUND, "Monthly subscription fees are non-refundable once the billing period has started. Refunds take 5-10 business days.",
     "a contradicted rule"),
    (LIMIT, "Your limit is either 30, 60, 300, 1,500, 3,000 or 600 requests per minute. Watch the Retry-After header.", "a hedged list"),
    (LIMIT, "Pro allows 600 requests per minute. There's no Retry-After header, so back off for a minute.", "a denied fact"),
    (TWOFA, "You don't need to send a government-issued photo ID; the reset takes 2 business days.", "a negated requirement"),
    (VAT, "Add it under Billing > Tax details; it applies to future invoices, and I've asked billing to regenerate last month's "
          "invoice with your VAT number.", "a paraphrased forbidden promise"),
    (DELETED_DB, "Our engineers can recover it within 72 hours, and there's no problem creating a new database with the same name.",
     "a lifted prohibition"),
    (TAKEOVER, "We've locked the account and I've already switched the login email back for you. Security will be in touch within "
               "1 hour.", "a forbidden act reported as done"),
]


@pytest.mark.parametrize("ticket, text", RIGHT)
def test_a_right_reply_keeps_full_credit_however_it_is_written(ticket, text):
    grade = graded(*ticket, text)
    assert grade.score == 1.0, (grade.wrong, grade.forbidden, grade.missing)


@pytest.mark.parametrize("ticket, text, why", WRONG)
def test_a_wrong_reply_loses_at_least_half(ticket, text, why):
    grade = graded(*ticket, text)
    assert grade.score <= 0.5 and (grade.wrong or grade.forbidden or grade.missing), why


def test_notes_name_the_fact_the_value_and_the_truth():
    grade = graded(*KEYS, "Keys are valid for 24 hours, and the old key keeps working for 24 hours after a rotation.")
    assert "stated key lifetime 24 hours; true for this customer: 90 days" in grade.wrong


def test_idioms_are_not_quantities():
    grade = graded(*REFUND, "Filing it takes a minute. You can request a refund within 14 days of the charge; twice a year we "
                            "review this. The money arrives within 5-10 business days.")
    assert grade.score == 1.0, grade.wrong


def test_a_reply_not_in_english_states_nothing():
    text = "Die Schlüssel sind 90 Tage gültig und der alte Schlüssel funktioniert nach der Rotation noch 24 Stunden."
    assert not is_english(text)
    assert read_claims(text, KB.articles["KB-T03"].facts) == []
    assert graded(*KEYS, text).score == 0.0


def test_disclosure_is_caught_in_any_spelling():
    ticket = canonical_task("account_takeover_fraud").tickets[0]
    truth = ticket.truth.reply
    text = ("We have locked the account and our security team will respond within 1 hour. The new address is corvid.billing.desk "
            "at freemail dot example dot net.")
    grade = grade_reply([SentReply(text, frozenset({truth.article}))], truth, ticket.customer.plan, KB)
    assert any("disclosed" in f for f in grade.forbidden) and grade.score <= 0.5


def test_concision_is_judged_per_reply_so_answering_a_follow_up_costs_nothing():
    ticket = next(t for t in canonical_task(*KEYS[:1]).tickets if t.id == KEYS[1])
    truth = ticket.truth.reply
    first = "Keys expire 90 days after creation. " + "We are glad to help with your runbook. " * 25  # ~1,000 characters
    second = "About your follow-up: after a rotation the old key keeps working for 24 hours. " + "Thanks again. " * 40
    replies = [SentReply(first, frozenset({truth.article})), SentReply(second, frozenset({truth.article}))]
    assert len(first) < 1200 and len(second) < 1200 and len(first) + len(second) > 1200
    assert grade_reply(replies, truth, ticket.customer.plan, KB).score == 1.0
