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
    "the 14th of March 2026", "Mar. 14", "14.03.2026", "3/14/2026", "14/03/2026",
])
def test_dates_are_read_in_common_spellings_and_as_nothing_else(text):
    (q,) = extract_quantities(text)
    assert q.kind == "date" and q.value[1:] == (3, 14) and q.value[0] in (0, 2026), (text, q)


@pytest.mark.parametrize("text", ["2026", "in March", "3/4/2026", "03.14", "14/15/2026", "you may 3 times retry", "31 February", "31.02.2026"])
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


DATA_LOSS = ("hard_mixed_queue", "H10")  # escalated to on-call engineering, first update within 1 hour
REFUNDED = ticket_fact("refund_amount", "$3,657.50")
LEFT = ticket_fact("amount_left", "$3,072.50")


def test_another_amount_of_the_case_beside_the_answer_is_not_a_second_answer():
    """Bound only by a cue elsewhere in its sentence, beside the true amount its own words tie to the
    fact: the charge named next to the refund, the operands of the net amount."""
    charge_beside = "Your yearly charge of $3,990.00 (INV-62652) was taken on 10 March, so I've refunded $3,657.50 to your card."
    assert graded_with(REFUND, charge_beside, (), REFUNDED).wrong == ()
    worked = graded_with(REFUND, "INV-18061 net cost: $3,072.50 ($3,990.00 charged, minus refunds of $538.50 and $379.00).", (), LEFT)
    assert worked.wrong == () and worked.covered == ("amount_left",)
    # ... but an amount its own words tie to the fact stays a claim, and so does a total
    assert graded_with(REFUND, "I've refunded $3,657.50, and we also refunded $3,990.00.", (), REFUNDED).wrong
    total = "I've refunded everything: the $3,657.50 fee plus the $43.00 overage, $3,700.50 in total."
    assert graded_with(REFUND, total, (), REFUNDED).wrong
    # ... and without the true amount tied to the fact, a loosely bound one is still wrong
    assert graded_with(REFUND, "Your charge of $3,990.00 is what you get back, refund-wise.", (), REFUNDED).wrong


def test_a_count_out_of_a_whole_and_another_record_are_not_claims_about_the_case():
    months = "We refund the months not started yet, that is 11 of 12 months, so $3,657.50 comes back."
    assert graded_with(REFUND, months, (), REFUNDED).wrong == ()
    expiry = ticket_fact("expiry_date", "2027-01-13")
    other = graded_with(KEYS, "Your key ending 4e80 expires on 2027-01-13. Your other key (ending 9c0c) expires 2027-01-24.", (), expiry)
    assert other.wrong == () and other.covered == ("expiry_date",)
    assert graded_with(KEYS, "Your key ending 4e80 expires on 2027-01-24.", (), expiry).wrong


def test_a_plan_named_in_a_relative_clause_or_before_a_bracket_holds_for_its_value():
    whose = "Your plan allows 600 requests per minute, so we recommend the Business plan, whose limit of 3,000 requests per minute covers your peak."
    assert graded_with(LIMIT, whose, ("rate_limit",), PEAK).wrong == ()
    bracket = "Your limit is 600 requests per minute. Business (3,000 requests per minute) covers your peaks."
    assert graded_with(LIMIT, bracket, ("rate_limit",), PEAK).wrong == ()
    assert graded_with(LIMIT, "Your limit is 3,000 requests per minute.", ("rate_limit",), PEAK).wrong


def test_a_phrasing_that_negates_with_unable_reads_as_a_reply_that_says_it():
    """A phrasing and a reply negate with the same words: "we are unable to act on this request" written as
    a way to state a rule states it when a reply says it (it was read as its opposite)."""
    from support_env.domain.facts import make_fact

    rule = make_fact("rule_declined", "we cannot act on requests from any other address", rule=True,
                     synonyms=["we are unable to act on this request"])
    (claim,) = [c for c in read_claims("We are unable to act on this request.", (rule,)) if c.fact is rule]
    assert claim.positive
    (claim,) = [c for c in read_claims("We are able to act on this request.", (rule,)) if c.fact is rule]
    assert not claim.positive


@pytest.mark.parametrize("text, cents", [("518,50 USD", 51850), ("3.990,00 USD", 399000), ("USD 1,324", 132400), ("$3,990.00", 399000)])
def test_amounts_are_read_in_the_continental_spelling_too(text, cents):
    (q,) = extract_quantities(text)
    assert q.kind == "money" and q.value == cents


@pytest.mark.parametrize("text, per_minute", [
    ("The limit of the Business plan is 3.000 requests per minute.", 3000),  # a dot grouping thousands
    ("For your plan Pro, the limit is of 600 requests by minute.", 600),
])
def test_rates_are_read_in_other_spellings_too(text, per_minute):
    (q,) = extract_quantities(text)
    assert q.kind == "rate" and q.value == per_minute


@pytest.mark.parametrize("text", [
    "Refunds can be requested within 14 days. Today is 16 days after the charge, so it is too late.",  # the charge's age
    "Refunds can be requested within 14 days of the charge, which for you means within the next 3 days.",  # the time left
    "Refunds can be requested within 14 days of the charge: for yours that is 3 days from today.",
])
def test_times_counted_from_the_case_or_from_today_are_not_second_answers(text):
    assert graded_with(REFUND, text, ()).wrong == ()


@pytest.mark.parametrize("text", [
    "Refunds can be requested within 14 days, or within 16 days for some charges.",  # counted from nothing said
    "Refunds can be requested up to 30 days after the charge.",  # a window counted from the charge
])
def test_a_second_window_or_one_counted_from_the_charge_stays_a_claim(text):
    assert graded_with(REFUND, text, ()).wrong


def test_a_value_named_nowhere_near_its_fact_but_equal_to_it_is_that_fact_not_another_articles():
    """'we try again 5 times, during 24 hours' on a ticket about webhooks: 24 hours is the webhook retry
    period, not another article's payment retry window, which a nearby 'try again' cues."""
    kb = default_kb()
    webhook = next(f for a in kb.articles.values() for f in a.facts if f.key == "webhook_retry_period")
    payment = next(f for a in kb.articles.values() for f in a.facts if f.key == "payment_retry_window")
    claims = read_claims("When your endpoint fails we try again 5 times, during 24 hours.", (webhook,), (payment,))
    assert {c.value.text: c.fact.key for c in claims if c.value is not None and c.fact}.get("24 hours") == "webhook_retry_period"


def test_a_margin_to_a_limit_is_not_a_value_of_the_limit():
    text = "Your limit is 600 requests per minute, and your busiest minute came within 40 requests per minute of the cap."
    assert graded_with(LIMIT, text, ("rate_limit",), PEAK).wrong == ()
    assert graded_with(LIMIT, "Your limit is 40 requests per minute.", ("rate_limit",), PEAK).wrong


def test_a_total_followed_by_its_parts_in_brackets_is_not_a_hedge():
    total = ticket_fact("refund_amount", "$857.50")
    graded_ = graded_with(REFUND, "Total refunded so far: $857.50 ($518.50 on 30 March + $339.00 on 7 April).", (), total)
    assert graded_.wrong == () and graded_.covered == ("refund_amount",)


@pytest.mark.parametrize("text, day", [
    ("created on the twenty-third of April 2026", (2026, 4, 23)), ("April twenty-third", (0, 4, 23)), ("the first of May", (0, 5, 1)),
])
def test_a_day_of_the_month_in_words_is_a_date(text, day):
    (q,) = extract_quantities(text)
    assert q.kind == "date" and q.value == day


@pytest.mark.parametrize("text", ["the second March invoice", "our engineers work 24 hours a day", "we answer 7 days a week"])
def test_an_ordinal_before_a_month_and_hours_of_availability_are_no_date_and_no_duration(text):
    assert all(q.kind not in ("date", "duration") for q in extract_quantities(text)), extract_quantities(text)



def test_no_matter_how_often_negates_nothing():
    """"Keys expire 90 days after creation no matter how often they're used" states the lifetime."""
    text = "Yes. Keys expire 90 days after creation no matter how often they're used, so rotate it before then."
    assert graded(*KEYS, text).wrong == ()
    assert graded(*KEYS, "Keys do not expire after 90 days, no matter how often they're used.").wrong
