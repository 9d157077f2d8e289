"""Play a policy through any transport: in process, HTTP or WebSocket.

A transport is just two callables, so the same loop drives the tests, the
baseline script, the audit and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..models import Grade, SupportAction, SupportObservation


@dataclass
class Rollout:
    """The trace of one episode."""

    actions: list[SupportAction] = field(default_factory=list)
    observations: list[SupportObservation] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    @property
    def final(self) -> SupportObservation:
        return self.observations[-1]

    @property
    def grade(self) -> Grade | None:
        return self.final.grade

    @property
    def total_reward(self) -> float:
        return round(sum(self.rewards), 4)


def play(
    policy,
    reset: Callable[[], SupportObservation],
    step: Callable[[SupportAction], SupportObservation],
    max_steps: int = 1000,
) -> Rollout:
    """Run `policy.act` until the episode is done (or `max_steps` as a safety net)."""
    rollout = Rollout(observations=[reset()])
    while not rollout.final.done and len(rollout.actions) < max_steps:
        action = policy.act(rollout.final)
        observation = step(action)
        rollout.actions.append(action)
        rollout.observations.append(observation)
        rollout.rewards.append(observation.reward or 0.0)
    return rollout
