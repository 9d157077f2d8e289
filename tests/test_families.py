"""Every reasoning family is solvable and resistant: on seeds 0-29 of each family template, the
truth-reading oracle scores 1.0, the reference policy (observation and public KB only) at least
0.95 on average and 0.8 on every seed, and the generic keyword script at most 0.35; and on the
family tickets seeded hard queues carry, every exploit of the zoo at most 0.35. The families' own
behaviour is pinned in tests/test_family_{billing,accounts,incidents}.py."""

from __future__ import annotations

import statistics

import pytest

from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.agents.zoo import EXPLOITS, make
from support_env.environment import SupportEnvironment
from support_env.episodes.catalogue import build_episode
from support_env.episodes.cases import case_templates
from tests.family_play import family_scores

FAMILY_TEMPLATES = sorted(t.id for t in case_templates() if t.family)


def test_every_family_has_a_train_and_an_eval_template():
    splits: dict[str, set[str]] = {}
    for t in case_templates():
        if t.family:
            splits.setdefault(t.family, set()).add(t.split)
    assert len(splits) >= 7 and all(s == {"train", "eval"} for s in splits.values()), splits


@pytest.mark.parametrize("template_id", FAMILY_TEMPLATES)
def test_the_reference_policy_solves_every_seed(template_id):
    scores = family_scores(template_id, "reference")
    assert statistics.mean(scores) >= 0.95 and min(scores) >= 0.8, scores


@pytest.mark.parametrize("template_id", FAMILY_TEMPLATES)
def test_the_truth_oracle_scores_one(template_id):
    assert set(family_scores(template_id, "oracle")) == {1.0}


@pytest.mark.parametrize("template_id", FAMILY_TEMPLATES)
def test_a_keyword_script_without_lookups_cannot_pass(template_id):
    assert statistics.mean(family_scores(template_id, "keyword")) <= 0.35


def _hard_queues_with_a_family_ticket(split: str, count: int = 6) -> list[int]:
    return [s for s in range(60) if any(t.family for t in build_episode("hard_mixed_queue", s, split).tickets)][:count]


def _family_ticket_scores(name: str) -> list[float]:
    scores = []
    for split in ("train", "eval"):
        for seed in _hard_queues_with_a_family_ticket(split):
            env = SupportEnvironment()
            first = env.reset(task_id="hard_mixed_queue", seed=seed, split=split)
            policy = ReferencePolicy() if name == "reference" else make(name, seed)
            grade = play(policy, lambda: first, env.step).grade
            family = {t.id for t in env._spec.tickets if t.family}
            scores += [t.score for t in grade.tickets if t.ticket_id in family]
    return scores


@pytest.mark.parametrize("name", ["reference", *(cls.name for cls in EXPLOITS)])
def test_the_reasoning_tickets_of_hard_queues_keep_exploits_and_the_keyword_script_at_most_0_35(name):
    scores = _family_ticket_scores(name)
    assert len(scores) >= 10
    if name == "reference":
        assert statistics.mean(scores) >= 0.95, scores
    else:
        assert statistics.mean(scores) <= 0.35, (name, scores)
