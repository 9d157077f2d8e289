"""The reply grader agrees with a careful reviewer on the labelled set in tests/fidelity/.

Each reply there was judged correct or wrong from its ticket and the KB article alone, before it
was ever graded. A correct reply that scores below 0.9 is a false negative; a wrong reply that
keeps more than half the credit is a false positive (`benchmarks/grader_fidelity.py` prints the
rates and every misjudged reply).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from support_env.domain.kb import default_kb
from support_env.episodes.cases import case_templates
from support_env.episodes.generator import templates
from tests.fidelity.harness import grade, load_cases, misjudged, ticket

CASES = load_cases()
GRADES = {case.id: grade(case) for case in CASES}

# Replies the grader still misjudges, each with the reason. The test fails on any other
# misjudged reply, and on any of these once it is judged right (then remove it here).
KNOWN_MISSES = {
    "case_damaged_securekey_eval__b-02": "promises a replacement for 'the key that is not recognised': a replacement of part "
    "of the order, said without a number or 'only', reads like the whole order",
    "case_duplicate_capture_eval__b-06": "says nothing at all about the previous month the customer also asked to refund: "
    "silence states no claim to judge",
    "case_damaged_securekey_train__c-04": "replaces 'the key that isn't recognised' instead of the whole order: as above",
    "support_response_time__c-03": "answers the response time and ignores the question about phone support: silence again",
    "computed_dates__b-05": "'until the 23rd' names a day without its month: a bare ordinal is not read as a date (it is as "
    "often 'the 2nd key', 'the 3rd attempt'), so the last day to ask is not stated",
    # A held-out batch on the reasoning families (61 replies, written and labelled after the grader was
    # tuned, never tuned on): 8 of 30 correct and 4 of 31 wrong replies misjudged (RESULTS.md).
    "heldout_billing_refund_window_eval-01": "the $3,990.00 charge named beside the $3,657.50 refunded is read as the amount refunded",
    "heldout_billing_refund_window_eval-02": "as -01: the charge's amount taken for the refund's",
    "heldout_billing_refund_window_eval-03": "'11 of 12 months' (the prorating) is read as a 12-month refund window",
    "heldout_billing_refund_window_eval-04": "'26 days after the charge' (the charge's age) is read as the refund window",
    "heldout_billing_refund_window_eval-10": "'the Business plan stays active until the end of the term' contradicts KB-B03 (a refund "
    "ends the subscription), a rule the article's front matter does not list",
    "heldout_billing_auth_hold_eval-05": "'in the next six days, on 28 November' (counted from today) is read as a hold released "
    "in six days, against 7",
    "heldout_incidents_rate_peak_eval-03": "Business's 3,000 per minute, named as the plan to move to, is judged as this Pro "
    "customer's limit",
    "heldout_incidents_rate_peak_eval-04": "the same 3,000 is bound to the measured peak",
    "heldout_incidents_rate_peak_eval-09": "advises a second API key to double capacity (the limit is shared by all keys) and "
    "'rather than upgrading' still counts as the upgrade decision",
    "heldout_accounts_not_owner_eval-04": "'we cannot do the refund from this request' is not read as declining the request",
    "heldout_accounts_which_one_eval-06": "replaces the wrong order: which order a reply names as replaced is not a claim the "
    "grader checks",
    "heldout_accounts_which_one_eval-09": "replaces only the smashed keys: the whole-order rule is contradicted in a phrasing its "
    "synonyms do not cover",
}


def rate(cases) -> float:
    return sum(misjudged(c, GRADES[c.id].score) for c in cases) / len(cases)


def test_the_set_is_large_and_covers_every_ticket_family_that_needs_a_reply():
    assert len(CASES) >= 600
    families = {c.family for c in CASES}
    needing_reply = {t.id for t in templates() if t.article} | {f"case:{t.id}" for t in case_templates()}
    assert needing_reply <= families, sorted(needing_reply - families)
    for label in ("correct", "wrong"):
        assert sum(c.label == label for c in CASES) >= 280


def test_every_case_names_the_ticket_plan_and_article_it_is_graded_against():
    kb = default_kb()
    for case in CASES:
        spec = ticket(case.task_id, case.split, case.seed, case.ticket_id, case.template)
        assert spec.customer.plan == case.plan, case.id
        assert spec.truth.reply is not None and spec.truth.reply.article == case.article, case.id
        assert case.article in kb.articles and case.label in ("correct", "wrong"), case.id


@pytest.mark.parametrize("label", ["correct", "wrong"])
def test_at_most_3_percent_misjudged_overall(label):
    assert rate([c for c in CASES if c.label == label]) <= 0.03


def test_no_reply_is_misjudged_but_the_documented_ones():
    misjudged_now = {c.id for c in CASES if misjudged(c, GRADES[c.id].score)}
    assert misjudged_now - set(KNOWN_MISSES) == set(), "newly misjudged"
    assert set(KNOWN_MISSES) - misjudged_now == set(), "judged right now: remove from KNOWN_MISSES"


def test_at_most_10_percent_misjudged_in_any_family_without_a_documented_miss():
    by_family = defaultdict(list)
    for case in CASES:
        by_family[case.family, case.label].append(case)
    documented = {next(c.family for c in CASES if c.id == cid) for cid in KNOWN_MISSES}
    over = {key: rate(cases) for key, cases in by_family.items() if key[0] not in documented and rate(cases) > 0.10}
    assert not over


def test_a_misjudged_reply_is_reported_with_what_the_grader_read():
    """The notes name the claim: a wrong reply's grade says which fact and which value."""
    noted = [GRADES[c.id] for c in CASES if c.label == "wrong" and GRADES[c.id].score <= 0.5 and GRADES[c.id].wrong]
    assert noted
    for g in noted:
        for note in g.wrong:
            assert note.startswith(("stated", "denied", "said the opposite of", "hedged", "stated '")), note
