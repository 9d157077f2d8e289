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
