"""Seeded episodes: determinism, variety, the train/eval split, the simulated customer."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime
import sys
from statistics import mean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support_env.agents.oracle import TruthOracle
from support_env.episodes.cases import CASE_CHANCE, FAMILY_CHANCE, RECORDS_OBJECTIVE, case_templates, scenarios
from support_env.episodes.customer import follow_up
from support_env.environment import SupportEnvironment
from support_env.episodes.generator import EXPERT_LENGTH, MAX_QUEUE_LENGTH, SPLITS, pools, templates
from support_env.grading.reply import grade_reply
from support_env.domain.kb import default_kb
from support_env.models import RECORDS, RESOLUTIONS, SupportAction
from support_env.agents.reading import compose_reply
from support_env.agents.reference import ReferencePolicy
from support_env.grading.progress import SentReply
from support_env.agents.rollout import play
from support_env.domain.world import load_world
from support_env.episodes.catalogue import GENERATED_TASKS, QUEUE_TASKS, TASK_IDS, build_episode, canonical_task

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
    cases = [("hard_mixed_queue", 11, "train"), ("hard_mixed_queue", CASE_SEED, "eval"), ("medium_kb_reply", 4, "eval"), ("easy_classify", 99, "train"),
             ("expert_queue", 3, "eval"), ("expert_queue", 8, "train")]
    script = (
        "import json, sys; from tests.test_generator import fingerprint; "
        f"print(json.dumps([fingerprint(*c) for c in {cases!r}]))"
    )
    other = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == [fingerprint(*c) for c in cases]


@pytest.mark.parametrize("task_id", GENERATED_TASKS)
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
        for task_id in GENERATED_TASKS:
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
@pytest.mark.parametrize("task_id", GENERATED_TASKS)
def test_reference_policy_solves_generated_episodes(task_id, split):
    scores = []
    for seed in range(200):
        env = SupportEnvironment()
        scores.append(play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed, split=split), env.step).grade.score)
    assert mean(scores) >= (0.95 if task_id == "expert_queue" else 0.9), (task_id, split, mean(scores))


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_every_episode_is_dated_and_its_tickets_were_opened_by_today(task_id):
    for seed in (None, 0, 7):
        if seed is not None and task_id not in GENERATED_TASKS:
            continue
        env = SupportEnvironment()
        observation = env.reset(task_id=task_id, seed=seed)
        today = date.fromisoformat(observation.today)
        assert env.state.today == observation.today and date(2026, 1, 1) <= today <= date(2026, 12, 31)
        opened = datetime.fromisoformat(observation.current_ticket.created_at.replace("Z", "+00:00"))
        assert opened.date() <= today
        world = load_world(env._spec.world, env._spec.records, env._spec.today)
        assert world.today == today  # the records' dates and the observation's count from one day


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


@settings(max_examples=40, deadline=None)
@given(task_id=st.sampled_from(GENERATED_TASKS), seed=st.integers(0, 2**63), split=st.sampled_from(SPLITS), length=st.none() | st.integers(1, MAX_QUEUE_LENGTH))
def test_any_seed_yields_a_valid_solvable_episode(task_id, seed, split, length):
    if task_id == "expert_queue" and length is not None and length > EXPERT_LENGTH[1]:
        with pytest.raises(ValueError, match="queue_length of expert_queue must be between 1 and 8"):
            build_episode(task_id, seed, split, length)
        return
    spec = build_episode(task_id, seed, split, length)
    assert 1 <= len(spec.tickets) <= MAX_QUEUE_LENGTH
    env = SupportEnvironment()
    rollout = play(TruthOracle(spec), lambda: env.reset(task_id=task_id, seed=seed, split=split, queue_length=length), env.step)
    assert rollout.final.done and rollout.grade.score == 1.0, rollout.grade


# --- record-backed cases in generated queues ---------------------------------------------

def test_case_tickets_come_only_through_seeds_of_the_hard_queue_one_of_each_kind_at_most():
    assert not case_tickets(canonical_task("hard_mixed_queue")) and canonical_task("hard_mixed_queue").records is None
    with_case = with_family = 0
    for split in SPLITS:
        for seed in range(200):
            spec = build_episode("hard_mixed_queue", seed, split)
            cases = case_tickets(spec)
            original, family = [t for t in cases if not t.family], [t for t in cases if t.family]
            assert len(original) <= 1 and len(family) <= 1
            assert (spec.records is not None) == bool(cases) == spec.objective.endswith(RECORDS_OBJECTIVE)
            with_case += bool(original)
            with_family += bool(family)
            for task_id in ("easy_classify", "medium_kb_reply"):
                assert not case_tickets(build_episode(task_id, seed, split))
    assert abs(with_case / 400 - CASE_CHANCE["hard_mixed_queue"]) < 0.1, with_case
    assert abs(with_family / 400 - FAMILY_CHANCE["hard_mixed_queue"]) < 0.1, with_family


def test_expert_queues_hold_six_to_eight_family_tickets_each_of_its_own_family():
    lengths = set()
    for split in SPLITS:
        for seed in range(40):
            spec = build_episode("expert_queue", seed, split)
            lengths.add(len(spec.tickets))
            assert all(t.family and t.customer.account_id for t in spec.tickets)
            assert len({t.family for t in spec.tickets}) == len(spec.tickets)  # dealt from a deck of families
            assert len({t.customer.account_id for t in spec.tickets}) == len(spec.tickets)
            assert [t.id for t in spec.tickets] == [f"X{i:02d}" for i in range(1, len(spec.tickets) + 1)]
            assert all(t.created_at.startswith(spec.today) for t in spec.tickets)
    assert lengths == {6, 7, 8}
    canonical = build_episode("expert_queue")
    assert canonical.seed is None and canonical.split is None and 6 <= len(canonical.tickets) <= 8


def test_a_case_ticket_takes_the_place_of_a_ticket_of_its_kind():
    for seed in range(60):
        spec = build_episode("hard_mixed_queue", seed, "train", queue_length=6)
        assert [t.id for t in spec.tickets] == [f"H{i:02d}" for i in range(1, 7)]
        assert sorted(t.truth.kind for t in spec.tickets) == ["critical", "critical", "noise", "routine", "routine", "routine"]


def test_case_library_covers_every_scenario_in_both_splits():
    for split in SPLITS:
        assert {t.scenario for t in case_templates() if t.split == split} == set(scenarios())
    for template in case_templates():
        article = KB.articles[template.article]
        assert not article.archived
        assert set(template.evidence) <= {*RECORDS, "clarification"} and template.resolution in RESOLUTIONS
        for plan in template.plans:
            for key in template.required:
                (KB.articles[key.split(":")[0]] if ":" in key else article).fact(key.split(":")[-1], plan)


def test_the_world_behind_a_case_ticket_holds_its_records_and_nothing_else():
    for seed in range(40):
        spec = build_episode("hard_mixed_queue", seed, "eval")
        if not case_tickets(spec):
            continue
        world = load_world(spec.world, spec.records)
        assert set(world.accounts) == {t.customer.account_id for t in case_tickets(spec)}
        ticket = case_tickets(spec)[0]
        for record in set(ticket.truth.evidence) - {"clarification"}:
            assert world.lookup(ticket.customer.account_id, record), (seed, record)
        targets = {*world.invoices, *world.api_keys, *world.accounts, *world.orders}
        assert {w.target for w in ticket.truth.outcome} <= targets
        assert load_world(spec.world, spec.records) is not world and world.log == []


@pytest.mark.parametrize("split", SPLITS)
def test_generated_case_tickets_are_graded_on_end_state(split):
    """The reference policy resolves them; skipping the operations leaves the case unresolved (0 for it)."""
    seed = next(s for s in range(100) if any(t.truth.outcome for t in case_tickets(build_episode("hard_mixed_queue", s, split))))
    env = SupportEnvironment()
    solved = play(ReferencePolicy(), lambda: env.reset(task_id="hard_mixed_queue", seed=seed, split=split), env.step).grade
    assert solved.score == 1.0, solved
    case_id = next(t.id for t in case_tickets(build_episode("hard_mixed_queue", seed, split)) if t.truth.outcome)
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
