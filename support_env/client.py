"""Typed Python client over OpenEnv's WebSocket protocol (one session per connection).

    from support_env import SupportAction
    from support_env.client import SupportEnv

    with SupportEnv(base_url="http://localhost:7860").sync() as env:
        result = env.reset(task_id="hard_mixed_queue")
        ticket = result.observation.current_ticket
        result = env.step(SupportAction(action_type="classify_ticket", ticket_id=ticket.id, category="billing"))
"""

from __future__ import annotations

from typing import Any, Dict

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from .models import SupportAction, SupportObservation, SupportState


class SupportEnv(EnvClient[SupportAction, SupportObservation, SupportState]):
    """Client for a running support_env server."""

    def _step_payload(self, action: SupportAction) -> Dict[str, Any]:
        return action.model_dump(exclude_none=True, exclude={"metadata"})

    def _parse_result(self, payload: Dict[str, Any]) -> StepResult[SupportObservation]:
        observation = SupportObservation.model_validate(
            {**payload.get("observation", {}), "done": payload.get("done", False), "reward": payload.get("reward")}
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: Dict[str, Any]) -> SupportState:
        return SupportState.model_validate(payload)
