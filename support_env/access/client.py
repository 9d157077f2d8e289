"""Typed Python client over OpenEnv's WebSocket protocol (one session per connection).

    from support_env import SupportAction
    from support_env.client import SupportEnv

    with SupportEnv(base_url="http://localhost:7860").sync() as env:        # or: async with SupportEnv(...) as env
        result = env.reset(task_id="hard_mixed_queue")                       #     result = await env.reset(...)
        ticket = result.observation.current_ticket
        result = env.step(SupportAction(action_type="classify_ticket", ticket_id=ticket.id, category="billing"))

`SupportEnv.from_docker_image("support-env")` starts the image with Docker
(OpenEnv's LocalDockerProvider): `await` it for a connected async client, or
call `.sync()` on it for a connected blocking one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from openenv.core.client_types import StepResult
from openenv.core.env_client import EnvClient

from ..models import SupportAction, SupportObservation, SupportState

if TYPE_CHECKING:
    from openenv.core.containers.runtime import ContainerProvider
    from openenv.core.env_client import _BootstrapResult


# OpenEnv's LocalDockerProvider publishes the container's port 8000 (`docker run
# -p <host port>:8000`), while the image serves on $PORT, 7860 unless told
# otherwise (Hugging Face Spaces' port). from_docker_image tells it to serve on 8000.
PROVIDER_CONTAINER_PORT = 8000


class SupportEnv(EnvClient[SupportAction, SupportObservation, SupportState]):
    """Client for a running support_env server."""

    @classmethod
    def from_docker_image(cls, image: str, provider: Optional[ContainerProvider] = None, **kwargs: Any) -> _BootstrapResult[SupportEnv]:
        """Start `image` in Docker and connect, as `EnvClient.from_docker_image`,
        with the container serving on the port the provider publishes. Returns
        OpenEnv's handle: `await` it, or call `.sync()` on it."""
        return super().from_docker_image(image, provider=provider, **_serve_on_published_port(provider, kwargs))

    @classmethod
    def from_env(cls, repo_id: str, *, use_docker: bool = True, provider: Any = None, **provider_kwargs: Any) -> _BootstrapResult[SupportEnv]:
        """Run a Hugging Face Space of this environment and connect, as
        `EnvClient.from_env`; with Docker, on the port the provider publishes.
        Returns OpenEnv's handle: `await` it, or call `.sync()` on it."""
        if use_docker:
            provider_kwargs = _serve_on_published_port(provider, provider_kwargs)
        return super().from_env(repo_id, use_docker=use_docker, provider=provider, **provider_kwargs)

    def _step_payload(self, action: SupportAction) -> Dict[str, Any]:
        return action.model_dump(exclude_none=True, exclude={"metadata"})

    def _parse_result(self, payload: Dict[str, Any]) -> StepResult[SupportObservation]:
        observation = SupportObservation.model_validate(
            {**payload.get("observation", {}), "done": payload.get("done", False), "reward": payload.get("reward")}
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: Dict[str, Any]) -> SupportState:
        return SupportState.model_validate(payload)


def _serve_on_published_port(provider: Any, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    # Imported here: the container providers (and `requests`) are needed only to start containers.
    from openenv.core.containers.runtime import LocalDockerProvider

    if provider is None or isinstance(provider, LocalDockerProvider):
        return {**kwargs, "env_vars": {"PORT": str(PROVIDER_CONTAINER_PORT), **(kwargs.get("env_vars") or {})}}
    return kwargs
