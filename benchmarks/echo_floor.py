"""The framework floor: the smallest environment OpenEnv can serve.

`EchoEnvironment` does no work at all (it echoes the message back), and the
app is built by the same `create_app` our server uses, with the same
concurrency settings and the same `uvicorn.run` call. Whatever it costs to
serve a step here is the cost of OpenEnv + FastAPI + uvicorn themselves;
`bench_server.py` measures our server against it.

OpenEnv's /ws handler steps a plain environment in a worker thread. With
ECHO_IN_PLACE=true the environment overrides reset_async/step_async, as ours
does, so /ws steps it on the event loop: the floor for an environment that
steps in place (`bench_server.py --in-place-floor`).

    PORT=8001 [ECHO_IN_PLACE=true] python benchmarks/echo_floor.py
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Optional

from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, ConcurrencyConfig, Observation, State
from pydantic import Field


class EchoAction(Action):
    message: str = Field(default="", description="Text to echo back.")


class EchoObservation(Observation):
    echoed: str = Field(default="", description="The message of the last action.")
    step: int = Field(default=0, description="Steps taken in this episode.")


class EchoEnvironment(Environment[EchoAction, EchoObservation, State]):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._state = State(episode_id=uuid.uuid4().hex, step_count=0)

    def reset(self, seed: Optional[int] = None, episode_id: Optional[str] = None, **kwargs: Any) -> EchoObservation:
        self._state = State(episode_id=episode_id or uuid.uuid4().hex, step_count=0)
        return EchoObservation(echoed="", step=0, reward=0.0, done=False)

    def step(self, action: EchoAction, timeout_s: Optional[float] = None, **kwargs: Any) -> EchoObservation:
        self._state.step_count += 1
        return EchoObservation(echoed=action.message, step=self._state.step_count, reward=0.0, done=False)

    @property
    def state(self) -> State:
        return self._state


class InPlaceEchoEnvironment(EchoEnvironment):
    async def reset_async(self, *args: Any, **kwargs: Any) -> EchoObservation:
        return self.reset(*args, **kwargs)

    async def step_async(self, action: EchoAction, timeout_s: Optional[float] = None, **kwargs: Any) -> EchoObservation:
        return self.step(action, timeout_s=timeout_s, **kwargs)


IN_PLACE = os.environ.get("ECHO_IN_PLACE", "false").lower() == "true"
MAX_SESSIONS = int(os.environ.get("SUPPORT_ENV_MAX_SESSIONS", "256"))
SESSION_TTL_S = float(os.environ.get("SUPPORT_ENV_SESSION_TTL", "1800"))

app = create_app(
    InPlaceEchoEnvironment if IN_PLACE else EchoEnvironment,
    EchoAction,
    EchoObservation,
    env_name="echo_floor",
    concurrency_config=ConcurrencyConfig(max_concurrent_envs=MAX_SESSIONS, session_timeout=SESSION_TTL_S),
)


def main() -> None:
    import uvicorn

    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8001")))


if __name__ == "__main__":
    main()
