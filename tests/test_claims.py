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


# --- computed, case-specific values: dates, days left, a measured rate ---------------------------

from dataclasses import replace  # noqa: E402

from support_env.domain.facts import extract_quantities  # noqa: E402
from support_env.episodes.spec import ticket_fact  # noqa: E402


def graded_with(ticket: tuple[str, str], text: str, required: tuple[str, ...], *facts):
    """Grade `text` on a canonical ticket whose reply must also state these facts of the case."""
    spec = next(t for t in canonical_task(ticket[0]).tickets if t.id == ticket[1])
    truth = replace(spec.truth.reply, required=required, ticket_facts=tuple(facts))
    return grade_reply([SentReply(text, frozenset({truth.article}))], truth, spec.customer.plan, KB)


def bound(ticket: tuple[str, str], text: str, *facts) -> dict[str, str]:
    """What each value of `text` is bound to: {value as written: fact key}."""
    spec = next(t for t in canonical_task(ticket[0]).tickets if t.id == ticket[1])
    article = KB.articles[spec.truth.reply.article]
    return {c.value.text: c.fact.key for c in read_claims(text, article.facts + tuple(facts)) if c.value is not None and c.fact}


EXPIRY = ticket_fact("expiry_date", "2026-05-03", ["50 days"])  # created 2 February 2026, read on 14 March 2026
WINDOW_END = ticket_fact("window_end", "2026-03-23")  # charged 9 March 2026
DAYS_LEFT = ticket_fact("days_left", "9 days")
PEAK = ticket_fact("peak_rate", "1,340 requests per minute")


@pytest.mark.parametrize("text", [
    "2026-03-14", "14 March 2026", "March 14, 2026", "March 14th", "14th of March", "Mar 14", "on Saturday, 14 March",
    "the 14th of March 2026", "Mar. 14",
])
def test_dates_are_read_in_common_spellings_and_as_nothing_else(text):
    (q,) = extract_quantities(text)
    assert q.kind == "date" and q.value[1:] == (3, 14) and q.value[0] in (0, 2026), (text, q)


@pytest.mark.parametrize("text", ["2026", "in March", "3/14/2026", "14/03/2026", "you may 3 times retry", "31 February"])
def test_a_year_a_month_or_an_ambiguous_numeric_date_is_not_a_date(text):
    assert all(q.kind != "date" for q in extract_quantities(text)), text


def test_a_date_without_a_year_is_the_same_day_in_any_year():
    (stated,) = extract_quantities("May 3rd")
    (truth,) = extract_quantities("2026-05-03")
    (other,) = extract_quantities("3 May 2025")
    assert stated.same_as(truth) and not other.same_as(truth)
    assert not extract_quantities("May 4th")[0].same_as(truth)


def test_a_policy_value_and_a_case_value_in_one_sentence_bind_each_to_its_own_fact():
    text = "Refunds can be requested within 14 days of the charge, so you have 9 days left (until 23 March)."
    assert bound(REFUND, text, WINDOW_END, DAYS_LEFT) == {"14 days": "refund_window", "9 days": "days_left", "23 March": "window_end"}
    text = "Your plan allows 600 requests per minute and your peak was 1,340 per minute."
    assert bound(LIMIT, text, PEAK) == {"600 requests per minute": "rate_limit", "1,340 per minute": "peak_rate"}
    text = "Your peak was 1,340 requests per minute, while Pro allows 600 requests per minute."
    assert bound(LIMIT, text, PEAK) == {"1,340 requests per minute": "peak_rate", "600 requests per minute": "rate_limit"}


def test_other_dates_in_the_reply_are_not_the_date_asked():
    text = "Keys expire 90 days after creation. Yours was created on 2 February 2026, so it expires on 3 May 2026."
    assert bound(KEYS, text, EXPIRY) == {"90 days": "api_key_expiry", "3 May 2026": "expiry_date"}
    text = "The key went live on 2026-02-02, which puts its expiry at 2026-05-03."
    assert bound(KEYS, text, EXPIRY) == {"2026-05-03": "expiry_date"}
    assert graded_with(KEYS, "Keys expire 90 days after creation; today is 14 March and yours expires on May 3rd.",
                       ("api_key_expiry",), EXPIRY).score == 1.0


@pytest.mark.parametrize("text", [
    "Keys expire 90 days after creation, so yours expires on 3 May 2026.",
    "Keys are valid for 90 days: the checkout-svc key is valid until Sunday, 3 May.",  # no year: any year
    "Keys expire 90 days after creation; yours is 40 days old, so it expires in 50 days.",  # said relatively
])
def test_a_right_computed_date_is_covered(text):
    grade = graded_with(KEYS, text, ("api_key_expiry",), EXPIRY)
    assert grade.score == 1.0, (grade.wrong, grade.missing)


def test_a_wrong_computed_date_is_a_wrong_claim():
    grade = graded_with(KEYS, "Keys expire 90 days after creation, so yours expires on 2026-05-04.", ("api_key_expiry",), EXPIRY)
    assert "stated key expiry date 2026-05-04; true for this customer: 2026-05-03" in grade.wrong and grade.score <= 0.5
    grade = graded_with(KEYS, "Keys expire 90 days after creation. Your key expires on 2 February 2026.", ("api_key_expiry",), EXPIRY)
    assert grade.wrong and grade.score <= 0.5  # the creation date given as the expiry


def test_a_vague_date_is_no_claim_and_two_dates_are_a_hedge():
    grade = graded_with(KEYS, "Keys expire 90 days after creation, so yours will expire around the start of May.",
                        ("api_key_expiry",), EXPIRY)
    assert not grade.wrong and grade.missing == ("expiry_date",)
    grade = graded_with(REFUND, "Refunds can be requested within 14 days, so the last day is 23 or 24 March.",
                        ("refund_window",), WINDOW_END)
    assert any(note.startswith("hedged") for note in grade.wrong)


def test_the_window_length_stated_as_the_days_left_is_wrong():
    grade = graded_with(REFUND, "Refunds can be requested within 14 days of the charge, so you have 14 days left, until 23 March.",
                        ("refund_window",), DAYS_LEFT, WINDOW_END)
    assert "stated days left 14 days; true for this customer: 9 days" in grade.wrong
    grade = graded_with(REFUND, "Refunds can be requested within 14 days of the charge, so you have 9 days left (until 23 March).",
                        ("refund_window",), DAYS_LEFT, WINDOW_END)
    assert grade.score == 1.0, grade.wrong


def test_a_swapped_peak_and_limit_are_both_wrong():
    grade = graded_with(LIMIT, "Your limit is 1,340 requests per minute and you peaked at 600 per minute.", ("rate_limit",), PEAK)
    assert len(grade.wrong) == 2 and grade.score == 0.0


def test_money_left_and_money_on_hold_bind_to_their_facts():
    left, hold = ticket_fact("amount_left", "$75.00"), ticket_fact("authorised_amount", "$1.00")
    refunded = ticket_fact("refund_amount", "$45.00")
    text = ("The invoice was $120.00. I've refunded $45.00 of it, so $75.00 is left to pay. The $1.00 pending authorisation "
            "is temporary and drops off within a few days.")
    assert bound(("duplicate_charge_refund", "R01"), text, left, hold, refunded) == {
        "$45.00": "refund_amount", "$75.00": "amount_left", "$1.00": "authorised_amount",
    }


# --- parts and totals, voice, and where a negation or a doubt stops ------------------------------

from support_env.grading.promises import promises  # noqa: E402

DATA_LOSS = ("hard_mixed_queue", "H10")  # escalated to on-call engineering, first update within 1 hour
REFUNDED = ticket_fact("refund_amount", "$2,792.75")  # two partial refunds, $1,234.00 and $1,558.75


@pytest.mark.parametrize("text", [
    "There were two refunds, one of $1,234.00 and one of $1,558.75, so $2,792.75 has been refunded so far.",
    "We refunded $1,234.00 in March and $1,558.75 in April. That is $2,792.75 refunded in total.",
])
def test_amounts_that_add_up_to_the_total_are_its_parts(text):
    grade = graded_with(("duplicate_charge_refund", "R01"), text, (), REFUNDED)
    assert grade.score == 1.0, grade.wrong


@pytest.mark.parametrize("text", [
    "We refunded $1,558.75 on this invoice.",  # one part given as the total
    "There were two refunds, $1,234.00 and $1,558.75; in total $1,558.75 has been refunded.",
    "The refunds were $1,234.00 and $1,558.75, so $2,729.75 has been refunded in total.",  # a wrong sum
])
def test_a_part_or_a_wrong_sum_given_as_the_total_is_still_wrong(text):
    grade = graded_with(("duplicate_charge_refund", "R01"), text, (), REFUNDED)
    assert grade.wrong and grade.score <= 0.5, text


def test_an_amount_left_after_a_deduction_is_a_result_not_a_part():
    refunded = ticket_fact("refund_amount", "$399.00")
    text = "Refunded: $399.00 less a $4.00 card fee, so $395.00 back on the card."
    grade = graded_with(("duplicate_charge_refund", "R01"), text, (), refunded)
    assert "stated amount refunded $395.00; true for this customer: $399.00" in grade.wrong


def test_a_passive_rule_is_also_stated_in_the_active_voice():
    grade = graded(*VAT, "Add it under Console > Billing > Tax details; we recalculate your past invoices with it.")
    assert any(note.startswith("said the opposite of: past invoices") for note in grade.wrong), grade.wrong
    grade = graded(*VAT, "Add it under Console > Billing > Tax details. It applies to future invoices only: we do not "
                         "recalculate past invoices.")
    assert grade.score == 1.0, grade.wrong
    # the verb first with nobody doing it is no active statement of the rule
    facts = KB.articles["KB-B10"].facts
    assert not any(c.fact.key == "rule_past_invoices_kept" for c in read_claims("To recalculate tax, open past invoices.", facts))


def test_a_time_named_by_then_is_not_a_clause_boundary():
    text = "Add your VAT number under Billing > Tax details. From then on it is printed on every new invoice."
    assert not promises(text, "reissue_past_invoice")
    assert promises("Add your VAT number first, then we will send you a new invoice for March.", "reissue_past_invoice")


def test_a_negation_ends_with_its_clause():
    text = ("A table going from 450,394 rows to 0 overnight without a migration is data loss, so we have escalated it to "
            "on-call engineering.")
    claims = read_claims(text, KB.articles["KB-S05"].facts)
    assert [c.positive for c in claims if c.fact.key == "data_loss_escalation"] == [True]
    grade = graded(*DATA_LOSS, "We have not escalated it to on-call engineering. The first update comes within 1 hour.")
    assert any(note.startswith("said the opposite of") for note in grade.wrong)


def test_a_doubt_ends_with_its_clause():
    facts = KB.articles["KB-A10"].facts
    (sure,) = [c for c in read_claims("Please ask the person who signed for it, maybe the parcel is still at the dock.", facts)
               if c.fact.key == "rule_signed_check"]
    assert not sure.hedged
    (unsure,) = [c for c in read_claims("Please ask the person who signed for it, or maybe your reception.", facts)
                 if c.fact.key == "rule_signed_check"]
    assert unsure.hedged
