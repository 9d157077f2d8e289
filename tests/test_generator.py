"""Seeded episodes: determinism, variety, the train/eval split, the simulated customer."""

from __future__ import annotations

import json
import subprocess
import sys
from statistics import mean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support_env.episodes.cases import CASE_CHANCE, RECORDS_OBJECTIVE, SCENARIOS, case_templates
from support_env.episodes.customer import follow_up
from support_env.environment import SupportEnvironment
from support_env.episodes.generator import MAX_QUEUE_LENGTH, SPLITS, pools, templates
from support_env.grading.reply import grade_reply
from support_env.domain.kb import default_kb
from support_env.models import RECORDS, RESOLUTIONS, SupportAction
from support_env.agents.reference import ReferencePolicy, compose_reply
from support_env.grading.progress import SentReply
from support_env.agents.rollout import play
from support_env.domain.world import load_world
from support_env.episodes.catalogue import QUEUE_TASKS, build_episode, canonical_task

from .conftest import ROOT

KB = default_kb()


def case_tickets(spec):
    return [t for t in spec.tickets if t.truth.outcome is not None]


CASE_SEED = next(seed for seed in range(100) if case_tickets(build_episode("hard_mixed_queue", seed, "eval")))


def fingerprint(task_id: str, seed: int, split: str = "train") -> str:
    """The whole episode as the agent plays it: every observation and the grade."""
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed, split=split, episode_id="fp"), env.step)
    return json.dumps([o.model_dump() for o in rollout.observations], sort_keys=True)


def test_same_task_split_and_seed_give_byte_identical_episodes_in_another_process():
    cases = [("hard_mixed_queue", 11, "train"), ("hard_mixed_queue", CASE_SEED, "eval"), ("medium_kb_reply", 4, "eval"), ("easy_classify", 99, "train")]
    script = (
        "import json, sys; from tests.test_generator import fingerprint; "
        f"print(json.dumps([fingerprint(*c) for c in {cases!r}]))"
    )
    other = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == [fingerprint(*c) for c in cases]


@pytest.mark.parametrize("task_id", QUEUE_TASKS)
def test_200_seeds_give_at_least_190_distinct_queues(task_id):
    queues = {tuple((t.subject, t.body) for t in build_episode(task_id, seed).tickets) for seed in range(200)}
    assert len(queues) >= 190


@pytest.mark.parametrize("task_id", QUEUE_TASKS)
def test_generated_queues_keep_the_shape_of_the_task(task_id):
    canonical = canonical_task(task_id)
    kinds = sorted(t.truth.kind for t in canonical.tickets)
    for seed in range(20):
        spec = build_episode(task_id, seed)
        assert sorted(t.truth.kind for t in spec.tickets) == kinds
        assert [t.id for t in spec.tickets] == [t.id for t in canonical.tickets]
        assert all((t.truth.reply is None) == (task_id == "easy_classify" or t.truth.kind == "noise") for t in spec.tickets)


def test_the_split_never_leaks():
    split_of = {t.id: t.split for t in (*templates(), *case_templates())}
    names = {split: set(pools()[split]["first_names"]) | set(pools()[split]["companies"]) for split in SPLITS}
    assert not names["train"] & names["eval"]
    for split in SPLITS:
        other = names[{"train": "eval", "eval": "train"}[split]]
        for task_id in QUEUE_TASKS:
            for seed in range(60):
                for ticket in build_episode(task_id, seed, split).tickets:
                    assert split_of[ticket.source] == split
                    assert not any(word in other for word in ticket.customer.name.split() + [ticket.customer.company])


def test_template_library_covers_every_kind_and_category_in_both_splits():
    assert len(templates()) >= 40
    for split in SPLITS:
        mine = [t for t in templates() if t.split == split]
        assert {t.kind for t in mine} == {"routine", "noise", "critical"}
        assert {t.category for t in mine if t.kind == "routine"} == {"billing", "technical", "account"}
    for t in templates():
        if t.article:
            article = KB.articles[t.article]
            assert not article.archived
            for plan in t.plans:
                for key in t.required:
                    article.fact(key, plan)  # raises if the fact does not hold for that plan


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("task_id", QUEUE_TASKS)
def test_reference_policy_solves_generated_episodes(task_id, split):
    scores = []
    for seed in range(200):
        env = SupportEnvironment()
        scores.append(play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed, split=split), env.step).grade.score)
    assert mean(scores) >= 0.9, (task_id, split, mean(scores))


def test_canonical_episodes_are_unchanged_by_the_generator():
    env = SupportEnvironment()
    observation = env.reset(task_id="hard_mixed_queue")
    assert observation.seed is None and observation.split is None
    assert observation.current_ticket.subject == canonical_task("hard_mixed_queue").tickets[0].subject


def test_bad_generator_arguments_are_clear_errors():
    env = SupportEnvironment()
    with pytest.raises(ValueError, match="split must be one of train, eval"):
        env.reset(task_id="easy_classify", seed=1, split="test")
    with pytest.raises(ValueError, match=f"queue_length must be between 1 and {MAX_QUEUE_LENGTH}"):
        env.reset(task_id="easy_classify", seed=1, queue_length=11)
    with pytest.raises(ValueError, match="pass a seed too"):
        env.reset(task_id="easy_classify", split="eval")


def test_queue_length_sets_the_size_and_keeps_the_mix():
    spec = build_episode("hard_mixed_queue", 3, "train", queue_length=5)
    assert len(spec.tickets) == 5
    assert sorted(t.truth.kind for t in spec.tickets) == ["critical", "critical", "noise", "routine", "routine"]


ORACLE_WRITES = {
    "refund": lambda w: ("issue_refund", {"invoice_id": w.target, "amount": w.amount_cents / 100}),
    "revoke_key": lambda w: ("revoke_api_key", {"key_id": w.target}),
    "lock_account": lambda w: ("lock_account", {}),
    "replacement": lambda w: ("send_replacement", {"order_id": w.target}),
}
WRITE_ACTIONS = ("issue_refund", "revoke_api_key", "lock_account", "send_replacement")


class OraclePolicy:
    """Plays from the hidden truth, records and account operations included: proves an episode is
    solvable whatever the heuristics."""

    name = "oracle"

    def __init__(self, spec):
        self.spec = {t.id: t for t in spec.tickets}
        self.done: set[tuple[str, str]] = set()

    def act(self, observation):
        ticket = self.spec[observation.current_ticket.id]
        truth = ticket.truth
        steps = [("classify_ticket", {"category": truth.category or "billing"})]
        steps += [("lookup_record", {"record": record}) for record in truth.evidence]
        steps += [ORACLE_WRITES[write.operation](write) for write in truth.outcome or ()]
        if truth.reply:
            article = KB.articles[truth.reply.article]
            case_facts = " ".join(f"The {fact.key.replace('_', ' ')} is {fact.value}." for fact in truth.reply.ticket_facts)
            steps += [("search_kb", {"query": article.title}), ("reply_ticket", {"reply_text": compose_reply(ticket.view(), article, case_facts)})]
        if truth.escalate:
            steps.append(("escalate_ticket", {"reason": "emergency"}))
        for kind, fields in steps:
            key = (ticket.id, kind, json.dumps(fields, sort_keys=True) if kind in ("lookup_record", *WRITE_ACTIONS) else "")
            if key not in self.done:
                self.done.add(key)
                return SupportAction(action_type=kind, ticket_id=None if kind == "search_kb" else ticket.id, **fields)
        return SupportAction(action_type="close_ticket", ticket_id=ticket.id, resolution=truth.resolution)


@settings(max_examples=40, deadline=None)
@given(task_id=st.sampled_from(QUEUE_TASKS), seed=st.integers(0, 2**63), split=st.sampled_from(SPLITS), length=st.none() | st.integers(1, MAX_QUEUE_LENGTH))
def test_any_seed_yields_a_valid_solvable_episode(task_id, seed, split, length):
    spec = build_episode(task_id, seed, split, length)
    assert 1 <= len(spec.tickets) <= MAX_QUEUE_LENGTH
    env = SupportEnvironment()
    rollout = play(OraclePolicy(spec), lambda: env.reset(task_id=task_id, seed=seed, split=split, queue_length=length), env.step)
    assert rollout.final.done and rollout.grade.score == 1.0, rollout.grade


# --- record-backed cases in generated queues ---------------------------------------------

def test_case_tickets_come_only_through_seeds_of_the_hard_queue_one_at_most():
    assert not case_tickets(canonical_task("hard_mixed_queue")) and canonical_task("hard_mixed_queue").records is None
    with_case = 0
    for split in SPLITS:
        for seed in range(200):
            spec = build_episode("hard_mixed_queue", seed, split)
            cases = case_tickets(spec)
            assert len(cases) <= 1
            assert (spec.records is not None) == bool(cases) == spec.objective.endswith(RECORDS_OBJECTIVE)
            with_case += bool(cases)
            for task_id in ("easy_classify", "medium_kb_reply"):
                assert not case_tickets(build_episode(task_id, seed, split))
    assert abs(with_case / 400 - CASE_CHANCE["hard_mixed_queue"]) < 0.1, with_case


def test_a_case_ticket_takes_the_place_of_a_ticket_of_its_kind():
    for seed in range(60):
        spec = build_episode("hard_mixed_queue", seed, "train", queue_length=6)
        assert [t.id for t in spec.tickets] == [f"H{i:02d}" for i in range(1, 7)]
        assert sorted(t.truth.kind for t in spec.tickets) == ["critical", "critical", "noise", "routine", "routine", "routine"]


def test_case_library_covers_every_scenario_in_both_splits():
    for split in SPLITS:
        assert {t.scenario for t in case_templates() if t.split == split} == set(SCENARIOS)
    for template in case_templates():
        article = KB.articles[template.article]
        assert not article.archived
        assert set(template.evidence) <= set(RECORDS) and template.resolution in RESOLUTIONS
        for plan in template.plans:
            for key in template.required:
                article.fact(key, plan)


def test_the_world_behind_a_case_ticket_holds_its_records_and_nothing_else():
    for seed in range(40):
        spec = build_episode("hard_mixed_queue", seed, "eval")
        if not case_tickets(spec):
            continue
        ticket = case_tickets(spec)[0]
        world = load_world(spec.world, spec.records)
        assert set(world.accounts) == {ticket.customer.account_id}
        for record in ticket.truth.evidence:
            assert world.lookup(ticket.customer.account_id, record), (seed, record)
        targets = {*world.invoices, *world.api_keys, *world.accounts, *world.orders}
        assert {w.target for w in ticket.truth.outcome} <= targets
        assert load_world(spec.world, spec.records) is not world and world.log == []


@pytest.mark.parametrize("split", SPLITS)
def test_generated_case_tickets_are_graded_on_end_state(split):
    """The reference policy resolves them; skipping the operations leaves the case unresolved (0 for it)."""
    seed = next(s for s in range(100) if case_tickets(build_episode("hard_mixed_queue", s, split)))
    env = SupportEnvironment()
    solved = play(ReferencePolicy(), lambda: env.reset(task_id="hard_mixed_queue", seed=seed, split=split), env.step).grade
    assert solved.score == 1.0, solved
    case_id = case_tickets(build_episode("hard_mixed_queue", seed, split))[0].id
    case_grade = next(t for t in solved.tickets if t.ticket_id == case_id)
    assert case_grade.components["outcome"] == 1.0 and case_grade.components["evidence"] == 1.0

    class SkipsOperations(ReferencePolicy):
        def act(self, observation):
            action = super().act(observation)
            while action.action_type in WRITE_ACTIONS:
                action = super().act(observation)
            return action

    skipped = play(SkipsOperations(), lambda: env.reset(task_id="hard_mixed_queue", seed=seed, split=split), env.step).grade
    case_grade = next(t for t in skipped.tickets if t.ticket_id == case_id)
    assert case_grade.score == 0.0 and skipped.score < solved.score


# --- the simulated customer -------------------------------------------------------

def reply_case():
    ticket = next(t for t in build_episode("medium_kb_reply", 5).tickets)
    article = KB.articles[ticket.truth.reply.article]
    return ticket, article, compose_reply(ticket.view(), article)


def grade_of(ticket, text):
    return grade_reply([SentReply(text, frozenset({ticket.truth.reply.article}))], ticket.truth.reply, ticket.customer.plan, KB)


def test_the_customer_corrects_only_what_it_knows_its_own_plan():
    ticket, _, good = reply_case()
    other = next(p for p in ("free", "pro", "business", "enterprise") if p != ticket.customer.plan)
    mistaken = good + f"\nOn your {other.capitalize()} plan this is all you need."
    answer = follow_up(ticket, mistaken, incomplete=False, turn=1, seed=5)
    assert ticket.customer.plan.capitalize() in answer and other.capitalize() in answer


def test_the_customer_never_disputes_a_policy_value_or_quotes_the_grader():
    ticket, article, good = reply_case()
    fact = article.fact(ticket.truth.reply.required[0], ticket.customer.plan)
    bad = good + f"\n{fact.name[0].upper() + fact.name[1:]}: 37 days."
    grade = grade_of(ticket, bad)
    assert grade.wrong  # the grader sees the wrong value ...
    answer = follow_up(ticket, bad, bool(grade.missing), turn=1, seed=5)
    assert answer is None or ("37" not in answer and all(note not in answer for note in grade.wrong))  # ... the customer does not


def test_the_customer_answers_a_question_with_their_details():
    ticket, _, good = reply_case()
    asking = good + "\nCould you confirm which account this is about?"
    answer = follow_up(ticket, asking, bool(grade_of(ticket, asking).missing), turn=1, seed=5)
    assert ticket.customer.company in answer and ticket.customer.email in answer


def test_the_customer_says_when_the_question_is_not_fully_answered():
    ticket, article, _ = reply_case()
    partial = f"Per our policy: {article.fact(ticket.truth.reply.required[0], ticket.customer.plan).value}."
    grade = grade_of(ticket, partial)
    assert grade.missing
    answer = follow_up(ticket, partial, bool(grade.missing), turn=1, seed=5)
    assert answer and ("question" in answer or "asked" in answer)


def test_a_complete_answer_gets_no_follow_up_and_the_customer_stops_after_two():
    ticket, _, good = reply_case()
    assert follow_up(ticket, good, bool(grade_of(ticket, good).missing), turn=1, seed=5) is None
    other = next(p for p in ("free", "pro", "business", "enterprise") if p != ticket.customer.plan)
    assert follow_up(ticket, good + f" Your {other} plan.", False, turn=3, seed=5) is None


def test_the_thread_shows_replies_and_answers_and_a_later_reply_can_fix_the_grade():
    spec = build_episode("medium_kb_reply", 8)
    ticket = spec.tickets[0]
    article = KB.articles[ticket.truth.reply.article]
    env = SupportEnvironment()
    env.reset(task_id="medium_kb_reply", seed=8)
    env.step(SupportAction(action_type="search_kb", query=article.title))
    first = env.step(SupportAction(action_type="reply_ticket", ticket_id=ticket.id, reply_text="We are looking into it."))
    thread = first.current_ticket.thread
    assert [m.author for m in thread] == ["agent", "customer"]
    assert "the customer answered" in first.conversation_history[-1].result
    fixed = env.step(SupportAction(action_type="reply_ticket", ticket_id=ticket.id, reply_text=compose_reply(ticket.view(), article)))
    assert [m.author for m in fixed.current_ticket.thread] == ["agent", "customer", "agent"]
    assert fixed.reward_detail.components["reply"] == 0.2
