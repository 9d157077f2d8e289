"""Incidents reasoning families: alarm words without an emergency and an emergency without them
(alarm_words), the plan's rate limit against the measured peak (rate_peak), and two questions in
one ticket answered from two articles (two_intents). Each template's tickets must need the
records, the text read for what it means, or both: the reference policy (observation + public KB)
solves them, the truth oracle scores 1.0, and a keyword script (alarm words escalate, the top
article's values, no look-ups) scores nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from support_env.agents.playbooks import incidents as playbook
from support_env.agents.reading import emergency
from support_env.domain.kb import default_kb
from support_env.episodes.catalogue import one_case_episode
from support_env.episodes.cases import case_templates
from support_env.episodes.spec import ReplyTruth
from support_env.grading.progress import SentReply
from support_env.grading.reply import grade_reply, required_facts
from tests.family_play import family_spec, family_tickets

TEMPLATES = sorted(t.id for t in case_templates() if t.id.startswith("incidents_"))
RATE_LIMITS = {"pro": 600, "business": 3000, "enterprise": 10000}










def _records(template_id: str, seed: int) -> dict:
    import json
    return json.loads(family_spec(template_id, seed).records)


def test_eight_incidents_templates_train_and_eval_of_three_families():
    families = {}
    for t in case_templates():
        if t.id in TEMPLATES:
            families.setdefault(t.family, set()).add(t.split)
    assert families == {f: {"train", "eval"} for f in ("alarm_words", "rate_peak", "two_intents")}
    assert len(TEMPLATES) == 8



ALARM_TEMPLATES = ["incidents_alarm_train", "incidents_alarm_eval", "incidents_quiet_loss_train", "incidents_quiet_loss_eval"]


@pytest.mark.parametrize("template_id", ALARM_TEMPLATES)
def test_alarm_words_decide_nothing_the_meaning_and_the_records_do(template_id):
    """Every variant turns up; the routine ones are written in alarm words (so escalating on words
    zeroes them) and the emergencies in none (so waiting for alarm words misses them)."""
    tickets = family_tickets(template_id)
    articles = Counter(t.truth.reply.article for t in tickets)
    assert set(articles) == ({"KB-S05"} if "quiet" in template_id else {"KB-T07", "KB-T08", "KB-T09"}), articles
    for seed, t in enumerate(tickets):
        worded = emergency(t.view()) is not None
        if t.truth.escalate:
            assert t.truth.kind == "critical" and t.truth.resolution == "escalated" and t.truth.evidence == ("usage",)
            assert not worded, t.body
            usage = [r for r in _records(template_id, seed)["usage"] if r["account_id"] == t.customer.account_id]
            assert playbook.count_fell_to_zero(usage) is not None
        else:
            assert t.truth.kind == "routine" and t.truth.resolution == "resolved" and worded, t.body
        assert t.truth.outcome == ()
        if t.truth.reply.article == "KB-T09":  # last week's outage: the record shows it resolved
            incidents = _records(template_id, seed)["incidents"]
            assert incidents and all(i["status"] == "resolved" and not i["data_loss"] for i in incidents)
            assert t.truth.evidence == ("incidents",)


def test_a_template_keeps_one_kind_so_a_queue_keeps_its_mix():
    for template in case_templates():
        if template.id in TEMPLATES:
            assert {t.truth.kind for t in family_tickets(template.id)} == {template.kind}, template.id


@pytest.mark.parametrize("template_id", ["incidents_rate_peak_train", "incidents_rate_peak_eval"])
def test_the_rate_answer_is_computed_from_the_usage_records(template_id):
    decisions = Counter()
    for seed, t in enumerate(family_tickets(template_id)):
        usage = [r for r in _records(template_id, seed)["usage"] if r["account_id"] == t.customer.account_id]
        peak = max(r["peak_rpm"] for r in usage)
        facts = {f.key: f.value for f in t.truth.reply.ticket_facts}
        assert facts["peak_rate"] == f"{peak:,} requests per minute"
        over = peak > RATE_LIMITS[t.customer.plan]
        assert facts["upgrade_decision"] == ("an upgrade is needed" if over else "you do not need a higher plan")
        assert t.truth.evidence == ("usage",) and t.truth.outcome == () and not t.truth.escalate
        decisions[over] += 1
    assert decisions[True] >= 5 and decisions[False] >= 5, decisions


def test_the_decision_is_graded_a_wrong_one_costs_half_the_reply():
    (t,) = [t for t in family_tickets("incidents_rate_peak_train") if dict((f.key, f.value) for f in t.truth.reply.ticket_facts)["upgrade_decision"].startswith("you")][:1]
    peak = dict((f.key, f.value) for f in t.truth.reply.ticket_facts)["peak_rate"]
    limit = f"{RATE_LIMITS[t.customer.plan]:,} requests per minute"
    right = f"Your plan's rate limit is {limit}. Your measured peak was {peak}, so you do not need to upgrade."
    wrong = f"Your plan's rate limit is {limit}. Your measured peak was {peak}, so you need to upgrade to a higher plan."
    kb = default_kb()
    grade = lambda text: grade_reply([SentReply(text, frozenset({"KB-T01"}))], t.truth.reply, t.customer.plan, kb).score
    assert grade(right) == 1.0 and grade(wrong) <= 0.5


def test_a_required_fact_may_name_another_article():
    """A ticket that asks two things: "KB-B10:tax_id_location" is required from the second article,
    judged like the first article's facts; leaving the second question unanswered loses its share."""
    kb = default_kb()
    truth = ReplyTruth("KB-T05", ("webhook_retry_attempts", "KB-B10:tax_id_location"))
    assert [f.key for f in required_facts(truth, "pro", kb)] == ["webhook_retry_attempts", "tax_id_location"]
    sent = lambda text: [SentReply(text, frozenset({"KB-T05"}))]
    both = "A failed delivery is retried 5 times. Add your VAT number in Console > Billing > Tax details."
    assert grade_reply(sent(both), truth, "pro", kb).score == 1.0
    assert grade_reply(sent("A failed delivery is retried 5 times."), truth, "pro", kb).score == 0.5
    assert grade_reply(sent(both.replace("5 times", "3 times")), truth, "pro", kb).score <= 0.5


@pytest.mark.parametrize("template_id", ["incidents_two_intents_train", "incidents_two_intents_eval"])
def test_two_intents_need_both_articles_and_the_category_of_the_first(template_id):
    orders = Counter()
    for t in family_tickets(template_id):
        reply = t.truth.reply
        other = "KB-B10" if reply.article == "KB-T05" else "KB-T05"
        assert sum(k.startswith(f"{other}:") for k in reply.required) == 2
        assert t.truth.category == ("technical" if reply.article == "KB-T05" else "billing")
        body = t.body.lower()
        assert (body.find("webhook") < body.find("vat")) == (reply.article == "KB-T05")
        assert any("reissue_past_invoice" in f.acts for f in reply.forbidden)
        orders[reply.article] += 1
    assert len(orders) == 2


def test_the_playbook_leaves_the_original_scenarios_alone():
    for template in case_templates():
        if template.family is None:
            for seed in range(5):
                ticket = one_case_episode(template.id, seed).tickets[0]
                assert playbook.recognise(ticket.view()) is None, (template.id, ticket.body)
