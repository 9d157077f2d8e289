"""Playing one reasoning-family ticket at a time, for the family tests: the one-ticket episode of
a case template and seed, and the scores of the reference policy, the truth-reading oracle and the
generic keyword script on it."""

from __future__ import annotations

from functools import lru_cache

from support_env.agents.oracle import TruthOracle
from support_env.agents.reference import ReferencePolicy
from support_env.agents.zoo import make
from support_env.environment import SupportEnvironment
from support_env.episodes.catalogue import one_case_episode

SEEDS = range(30)


def play_ticket(policy, spec, extra=None):
    """Play `policy` on the one-ticket episode `spec` and return the ticket's grade; `extra(obs)` may
    return an action to take instead (a write the policy would not do)."""
    env = SupportEnvironment()
    obs = env.start_episode(spec)
    for _ in range(60):
        if obs.done:
            break
        obs = env.step((extra(obs) if extra else None) or policy.act(obs))
    return obs.grade.tickets[0]


@lru_cache(maxsize=None)
def family_spec(template_id: str, seed: int):
    return one_case_episode(template_id, seed)


@lru_cache(maxsize=None)
def family_scores(template_id: str, policy: str) -> tuple[float, ...]:
    """The ticket score of `policy` (reference, oracle or keyword) on seeds 0-29 of the template."""
    out = []
    for seed in SEEDS:
        spec = family_spec(template_id, seed)
        player = {"reference": ReferencePolicy, "oracle": lambda: TruthOracle(spec), "keyword": lambda: make("keyword-generic")}[policy]()
        out.append(play_ticket(player, spec).score)
    return tuple(out)


def family_tickets(template_id: str):
    return [family_spec(template_id, seed).tickets[0] for seed in SEEDS]
