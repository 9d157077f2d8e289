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
    # Held-out batch 1 on the reasoning families (61 replies, never tuned on when written): 8 of 30 correct and
    # 4 of 31 wrong misjudged. Fixed since, by general mechanisms pinned in test_claims.py: other amounts of the case
    # beside the answer, "11 of 12 months", a plan named in a "whose" clause or before a bracket, the charge's age
    # and the time left counted as the case's timeline, a second API key contradicting the shared limit.
    "heldout_billing_refund_window_eval-10": "'the Business plan stays active until the end of the term' contradicts KB-B03 (a refund "
    "ends the subscription), a rule the article's front matter does not list",
    "heldout_accounts_not_owner_eval-04": "'we cannot do the refund from this request' is not read as declining the request: "
    "phrasings with so few content words matched correct replies too",
    "heldout_accounts_which_one_eval-06": "replaces the wrong order: which order a reply names as replaced is not a claim the "
    "grader checks",
    "heldout_accounts_which_one_eval-09": "replaces only the smashed keys: the whole-order rule is contradicted in a phrasing its "
    "synonyms do not cover",
    # Held-out batch 2 (70 replies on seven family tickets, written after batch 1's fixes by another reviewer):
    # before the fixes above 12 of 35 correct and 5 of 35 wrong misjudged; after, these.
    "heldout2_accounts_signed_for_eval-02": "'delivered ... and signed for by Katarzyna Fontaine in your mailroom, so we can't "
    "replace it': the rule's words stand too far apart for a rule (the signer's name between them), and 'check with her' names "
    "no one the rule's phrasings know",
    "heldout2_incidents_rate_peak_eval-04": "the peak is a bare '5,180' in a list headed 'Daily peaks': a number without its "
    "unit is not read as a rate",
    "heldout2_billing_refund_balance_eval-08": "says the refunds are still on their way: the state of a record is not a claim "
    "the grader checks",
    "heldout2_billing_refund_window_eval-10": "refunds May's invoice instead of June's: which invoice a reply names is not "
    "checked against the write (as which_one_eval-06)",
    "heldout2_incidents_alarm_eval-09": "describes a self-service Undelete in the console: KB-T08 does not list 'only support "
    "can recover a deleted database' as a rule",
    "heldout2_incidents_quiet_loss_eval-09": "tells the customer to re-import the table and switch writers back on: the "
    "prohibition's phrasings speak of buckets and uploads, not tables and writers",
    # Held-out batch 3 (70 replies on seven train templates, a third reviewer, written after batch 2's fixes): before
    # its own fixes 15 of 35 correct and 7 of 35 wrong misjudged; after, these.
    "heldout3_accounts_key_expiry_train-03": "'it stops to work in 10 days from today': the cue 'stops working' is not found "
    "in the non-native 'stops to work', so the expiry is not stated",
    "heldout3_accounts_not_owner_train-02": "'we can't act on this': the declining rule's phrasings need the word 'request'",
    "heldout3_accounts_not_owner_train-05": "'Why I can't do it from this address' declines in words none of the rule's "
    "phrasings hold",
    "heldout3_billing_auth_hold_train-05": "'As there is no duplicate payment' is read as denying the rule that a duplicate "
    "is refunded in full, where it denies that there is one",
    "heldout3_billing_auth_hold_train-09": "advises disputing both lines with the bank: a chargeback is not among the acts "
    "the auth-hold ticket forbids",
    "heldout3_billing_refund_balance_train-05": "gives the total in words ('eight hundred and fifty-seven dollars fifty'), "
    "which is not read as an amount; the two parts in figures then read as wrong totals",
    "heldout3_billing_refund_window_train-08": "miscounts the end of the window as today: the window's end date is not a "
    "fact this ticket requires, so it is not judged",
    "heldout3_billing_refund_window_train-09": "offers to switch to monthly billing now and refund the difference: no rule "
    "in scope says the switch happens only at renewal",
    "heldout3_incidents_rate_peak_train-05": "the peak is a bare '2,570' in a table of peaks: a number without its unit",
    "heldout3_incidents_two_intents_train-08": "'5 times, 10 seconds apart' leaves out the 24 hours and states a spacing no "
    "fact covers: it keeps 3 of 4 facts' credit",
    "heldout3_incidents_two_intents_train-09": "'applied across all the invoices, September's included' contradicts "
    "'future invoices only' in words that are not its negation",
    "heldout3_incidents_two_intents_train-10": "says the ID was saved before the invoice was issued: a date of the case the "
    "grader does not check",
    # Held-out batch 4 (70 replies: four family tickets and three ordinary ones, a fourth reviewer, written after batch
    # 3's fixes): before its own fixes 14 of 35 correct and 7 of 35 wrong misjudged; after, these.
    "heldout4_accounts_signed_for_train-02": "'Please check with Kavya': the rule's phrasings name a role ('the person who "
    "signed', 'reception'), not the signer's name",
    "heldout4_accounts_signed_for_train-07": "'ask Kavya Ivanova (or whoever staffs the front desk)': as -02",
    "heldout4_accounts_signed_for_train-09": "'I'm afraid we aren't able to send a replacement' after 'because it was signed "
    "for' in another clause: the rule's words stand too far apart",
    "heldout4_accounts_which_one_train-01": "'no need to send the cracked keys back': the phrasings say 'damaged', not "
    "'cracked'",
    "heldout4_accounts_which_one_train-02": "replaces the other order: which order a reply names is not checked (as "
    "heldout_accounts_which_one_eval-06)",
    "heldout4_accounts_which_one_train-10": "replaces only the cracked keys: the whole-order rule is contradicted in words "
    "that are not its negation",
    "heldout4_billing_refund_balance_eval-06": "offers a further refund 'inside the 60-day window' on a charge 78 days old: "
    "the age of the charge is not a fact this ticket requires",
    "heldout4_incidents_alarm_train-04": "says a dropped database can be restored from its backups: no rule in scope says "
    "they are deleted with it",
    "heldout4_refund_annual_plan-10": "counts the 60 days back from the end of the term: from what a window counts is not "
    "judged",
    "heldout4_twofa_lost_device-02": "asks for the passport as an email attachment: 'with a clear photo attached' is not "
    "read as the act the prohibition forbids",
    "heldout4_twofa_lost_device-05": "'do not attach the same in the mail' is read as the opposite of the prohibition it "
    "states ('the same' for the ID, 'mail' for email)",
    "heldout4_webhook_retry_policy-04": "says 429 responses are not retried: no fact in scope says any non-2xx answer is "
    "retried",
    "heldout4_webhook_retry_policy-05": "'is not a problem if some event arrive two times' is read as a second, wrong "
    "number of retries",
    "heldout4_webhook_retry_policy-07": "'isn't a 2xx within 10 seconds' is read as denying the 10-second timeout, and "
    "'**Retries:** 5' is a bare number after a label",
    # Held-out batch 5 (70 replies: four family tickets and three ordinary ones, a fifth reviewer, written after
    # batch 4's fixes): before its own fixes 9 of 35 correct and 7 of 35 wrong misjudged; after (a day of the
    # month in words, hours of availability, "requests by minute", "N days from today"), these.
    "heldout5_accounts_key_expiry_eval-09": "invents a 'never expire' setting for keys in use: a console feature no fact "
    "in scope denies",
    "heldout5_billing_auth_hold_eval-03": "'The other of 74,00 USD is not a payment, it is an authorisation' is read as "
    "denying the amount on hold",
    "heldout5_billing_auth_hold_eval-04": "a statement that the hold is not a duplicate is read as denying the rule that "
    "a duplicate is refunded in full (as heldout3_billing_auth_hold_train-05)",
    "heldout5_billing_auth_hold_eval-09": "invents a console button to release authorisations: no fact in scope denies it",
    "heldout5_incidents_quiet_loss_train-04": "in 'Don't re-upload, recreate or overwrite anything yet' the list's last "
    "items, a segment of their own, are read without the negation before them",
    "heldout5_incidents_quiet_loss_train-08": "tells her to re-upload files into the bucket: the prohibition's phrasings "
    "do not cover this wording",
    "heldout5_incidents_two_intents_eval-03": "'total in 24 hours' is bound to the webhook response timeout, not the retry "
    "period",
    "heldout5_incidents_two_intents_eval-09": "invents an 'apply to previous invoices' option: it leaves out 'future invoices "
    "only' but keeps the other facts' credit",
    "heldout5_plan_downgrade_timing-03": "'the change is not immediate' on a downgrade is read as denying that upgrades "
    "take effect immediately, a fact of the same article about the other direction",
    "heldout5_plan_downgrade_timing-08": "invents a one-cycle notice period: a timeline no fact in scope states",
    "heldout5_rate_limit_429-10": "says an upgrade's limit starts next cycle: a fact of another article, not in this "
    "ticket's scope",
    "heldout5_sla_credit_claim-08": "promises the SLA credit as a refund to the card: the 'never paid out as cash' rule's "
    "phrasings do not cover it",
    # Held-out batch 6 (70 replies: three family tickets and four ordinary ones, a sixth reviewer, written after
    # every fix and never tuned on): the grader as it stands misjudged these 3 of 35 correct and 5 of 35 wrong.
    "heldout6_accounts_not_owner_eval-04": "'why I can't do this as asked' declines in words none of the rule's phrasings hold",
    "heldout6_api_key_rotation-03": "'most probably your key has crossed its 90 days' hedges the customer's case, and the doubt is "
    "read as a hedge on the 90-day lifetime",
    "heldout6_api_key_rotation-09": "invents a 'Never expire' option for Business keys: a console feature no fact in scope denies",
    "heldout6_billing_refund_window_train-04": "'the usage overage of 66,00 USD ... is not refundable' leaves the amount bound "
    "to the refund, its negation in another segment, and the right amount beside it is tied to the refund by no word of its own",
    "heldout6_data_deletion_request-08": "refuses the account owner's request: who may ask is not a fact this ticket requires",
    "heldout6_data_deletion_request-09": "promises to delete invoices and payment records: the rule that they are kept is not "
    "among this ticket's facts",
    "heldout6_incidents_rate_peak_eval-07": "'so an upgrade is not necessary', the wrong decision, is not read as denying that "
    "an upgrade is needed",
    "heldout6_log_retention_plan-09": "invents a cold-storage recovery of expired logs: no phrasing of the rule that support "
    "cannot recover them covers it",
    # Batch 7 (ten replies on two family tickets, written after batch 6 was graded): one correct reply marked down
    # ("no matter how often" read as a negation; fixed, pinned in test_claims.py) and this wrong one passed.
    "heldout7_billing_auth_hold_train-05": "advises a chargeback with the bank: forbidden acts are commitments of ours, "
    "and advice to the customer that policy rules out is not read (as heldout3_billing_auth_hold_train-09)",
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
def test_at_most_3_percent_misjudged_overall_outside_the_held_out_batches(label):
    assert rate([c for c in CASES if c.label == label and not c.id.startswith("heldout")]) <= 0.03


# The held-out batches (tests/fidelity/heldout*.yaml): six reviewers' replies, mostly to the reasoning families,
# each batch written after the previous one's fixes and measured before its own (RESULTS.md); batch 6 was never
# tuned on. They stay harder than the rest; these bounds are where they stand now, so a change can only keep or
# lower them.
HELD_OUT_AT_MOST = {"correct": 0.115, "wrong": 0.16}


@pytest.mark.parametrize("label", ["correct", "wrong"])
def test_the_held_out_batches_stay_within_their_bound(label):
    assert rate([c for c in CASES if c.label == label and c.id.startswith("heldout")]) <= HELD_OUT_AT_MOST[label]


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
