"""The `validation:` block of openenv.yaml (read by the successor package
`openenv` 0.10+) says true things about this environment. CI also runs that
package's own `openenv validate --level static` on it (see .ci/run)."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from support_env.grading import rewards as grading
from support_env.environment import SupportEnvironment
from support_env.models import ACTION_TYPES, CATEGORIES, RECORDS, RESOLUTIONS, SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.episodes.catalogue import TASK_IDS
from support_env.access.mcp_tools import TOOL_NAMES

from .conftest import ROOT

VALIDATION = yaml.safe_load((ROOT / "openenv.yaml").read_text())["validation"]
LOW, HIGH = VALIDATION["reward"]["range"]


def test_declared_tools_and_tasks_are_the_real_ones():
    capabilities = VALIDATION["capabilities"]
    assert capabilities["declared_tools"] == list(TOOL_NAMES)
    assert capabilities["declared_task_count"] == {"canonical": len(TASK_IDS)}
    assert capabilities["verifier"] == {"kind": "reward_channel"} and capabilities["llm_judged"] is False


def test_reward_range_bounds_every_single_step_reward():
    worst = min(
        grading.PENALTY_INVALID_ACTION,
        grading.PENALTY_FALSE_ESCALATION,
        grading.PENALTY_UNEXPECTED_WRITE + grading.PENALTY_REPETITION,
        grading.PENALTY_WRONG_FACTS + grading.PENALTY_REPETITION,
    )
    best_step = max(grading.REWARD_CLASSIFICATION, grading.REWARD_KB_SEARCH, grading.REWARD_REPLY,
                    grading.REWARD_ESCALATION, grading.REWARD_OUTCOME)
    assert LOW == worst and HIGH == best_step + 1.0  # the last step adds the episode grade, at most 1


class Fuzzer:
    """Random actions of every type, with ids seen in the observation, repeats and mistakes."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.previous: SupportAction | None = None

    def act(self, obs: SupportObservation) -> SupportAction:
        rng = self.rng
        if self.previous is not None and rng.random() < 0.25:
            return self.previous
        ticket = obs.current_ticket
        seen = [v for v in _strings(obs.records)] or ["X-1"]
        article = obs.kb_search_results[0].text if obs.kb_search_results else "Refunds take 14 days."
        start = rng.randrange(max(1, len(article) - 300))
        self.previous = SupportAction(
            action_type=rng.choice(ACTION_TYPES),
            ticket_id=(ticket.id if ticket and rng.random() < 0.9 else "Z99"),
            category=rng.choice((*CATEGORIES, "sales")),
            query=(ticket.subject if ticket else "refund"),
            reply_text=article[start:start + rng.randint(0, 400)],
            reason="urgent",
            resolution=rng.choice((None, *RESOLUTIONS)),
            record=rng.choice(RECORDS),
            invoice_id=rng.choice(seen),
            amount=rng.choice((None, 10.0, 49.0, 158.0)),
            key_id=rng.choice(seen),
            order_id=rng.choice(seen),
        )
        return self.previous


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_every_observed_step_reward_is_in_the_declared_range(task_id):
    env = SupportEnvironment()
    rewards = play(ReferencePolicy(), lambda: env.reset(task_id=task_id), env.step).rewards
    for seed in range(6):
        rewards += play(Fuzzer(seed), lambda: env.reset(task_id=task_id), env.step).rewards
    assert all(LOW <= r <= HIGH for r in rewards), json.dumps(sorted(rewards)[:3] + sorted(rewards)[-3:])
    assert min(rewards) < 0 < max(rewards)
