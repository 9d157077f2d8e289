"""Stateful HTTP sessions for /reset, /step and /state.

OpenEnv's own HTTP routes build a fresh environment for every request, so an
episode cannot span two HTTP calls. These routes replace them: `/reset`
returns an `episode_id`, later calls name it, and a call without one uses the
default session (the last reset made without an id), so `curl /reset` then
`curl /step` works. Sessions are in memory, capped, and expire when idle.
`/ws` keeps OpenEnv's per-connection sessions. `/reset` also takes OpenEnv's
Task API selection (`split`, `index`), and an unknown split on the Task API
routes is a 400 (`install_task_api_errors`).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from openenv.core.env_server.types import SchemaResponse
from pydantic import BaseModel, ConfigDict, Field

from server.errors import sendable
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation, SupportState
from support_env.episodes.catalogue import TASK_IDS
from support_env.episodes.tasks_api import UnknownSplitError

EPISODE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


class ResetRequest(BaseModel):
    """Body of POST /reset. Every field is optional: `{}` starts easy_classify."""

    model_config = ConfigDict(extra="forbid")

    task_id: Optional[str] = Field(default=None, description=f"Task to play: one of {', '.join(TASK_IDS)} (default easy_classify).")
    seed: Optional[int] = Field(default=None, ge=0, description="Seed: omit for the canonical episode; with one, a generated episode (same task, split and seed give the same episode).")
    split: Optional[Literal["canonical", "train", "eval"]] = Field(
        default=None,
        description="With a seed: the template split of the generated episode (train, the default, or eval). With an index: "
        "the Task API split to pick from (canonical, the default, train or eval; see GET /support_env/splits).",
    )
    queue_length: Optional[int] = Field(default=None, ge=1, le=10, description="Tickets in a generated queue (needs a seed; default: the task's).")
    index: Optional[int] = Field(
        default=None,
        ge=0,
        description="Task API: start task `index` of `split` (POST /support_env/task shows it); it chooses the task_id and seed.",
    )
    episode_id: Optional[str] = Field(
        default=None,
        pattern=EPISODE_ID_PATTERN,
        description="Session id to use (letters, digits, . _ : -). Omit to get a fresh id and make it the default session.",
    )


class StepRequest(BaseModel):
    """Body of POST /step."""

    model_config = ConfigDict(extra="forbid")

    action: SupportAction = Field(description="The action to take.")
    episode_id: Optional[str] = Field(default=None, max_length=128, description="Session to act on; omit for the default session.")
    timeout_s: Optional[float] = Field(default=None, gt=0, description="Accepted for OpenEnv compatibility; steps never block.")
    request_id: Optional[str] = Field(default=None, max_length=255, description="Optional id echoed nowhere; for client-side tracing.")


# /reset and /step answer in OpenEnv's wire format as openenv-core 0.3 defined it (the
# same models, so /openapi.json is unchanged): openenv 0.10's added a top-level `metadata`.


class ResetResponse(BaseModel):
    """Response model for environment reset."""

    model_config = ConfigDict(extra="forbid")

    observation: dict[str, Any] = Field(description="Initial observation from the environment")
    reward: Optional[float] = Field(default=None, description="Initial reward (typically None at reset)")
    done: bool = Field(default=False, description="Whether episode is already done (typically False)")


class StepResponse(BaseModel):
    """Response model for environment step."""

    model_config = ConfigDict(extra="forbid")

    observation: dict[str, Any] = Field(description="Observation resulting from the action")
    reward: Optional[float] = Field(default=None, description="Reward signal from the action")
    done: bool = Field(default=False, description="Whether the episode has terminated")


def wire_format(observation: SupportObservation) -> dict[str, Any]:
    """An observation as /reset and /step send it: its fields under "observation",
    with reward and done beside them. OpenEnv 0.10's serializer also sends the
    base class's `metadata` (always empty here) twice; these answers keep the
    shape they have always had."""
    return {
        "observation": observation.model_dump(exclude={"reward", "done", "metadata"}),
        "reward": observation.reward,
        "done": observation.done,
    }


class SessionCapacityReached(Exception):
    pass


class SessionNotFound(Exception):
    pass


@dataclass
class _Session:
    env: SupportEnvironment
    last_used: float


class SessionStore:
    """Environments by episode id, least recently used first."""

    def __init__(
        self,
        factory: Callable[[], SupportEnvironment],
        max_sessions: int,
        idle_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._factory = factory
        self.max_sessions = max_sessions
        self.idle_ttl_s = idle_ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self.default_id: str | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def reset(self, episode_id: str | None, **kwargs: Any) -> SupportObservation:
        """Reset (or create) a session. The episode is built before anything is
        stored, so a bad task id or seed leaves every session as it was."""
        self._expire()
        is_default = episode_id is None
        episode_id = episode_id or uuid.uuid4().hex
        session = self._sessions.get(episode_id)
        env = session.env if session else self._factory()
        observation = env.reset(episode_id=episode_id, **kwargs)
        if session is None:
            self._make_room()
            session = self._sessions[episode_id] = _Session(env, self._clock())
        session.last_used = self._clock()
        self._sessions.move_to_end(episode_id)
        if is_default:
            self.default_id = episode_id
        return observation

    def get(self, episode_id: str | None) -> SupportEnvironment:
        self._expire()
        key = episode_id or self.default_id
        if key is None:
            raise SessionNotFound("no default session: call POST /reset first (or pass the episode_id it returned)")
        session = self._sessions.get(key)
        if session is None:
            which = f"episode_id {key!r}" if episode_id else f"the default session ({key})"
            raise SessionNotFound(
                f"unknown or expired {which}: sessions live in memory and expire after "
                f"{self.idle_ttl_s:g} s idle; call POST /reset to start a new episode"
            )
        session.last_used = self._clock()
        self._sessions.move_to_end(key)
        return session.env

    def _expire(self) -> None:
        cutoff = self._clock() - self.idle_ttl_s
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if oldest.last_used > cutoff:
                break
            self._drop(key)

    def _make_room(self) -> None:
        """At the cap, a finished episode gives up its slot (oldest first); a
        running one never does."""
        if len(self._sessions) < self.max_sessions:
            return
        for key, session in self._sessions.items():
            if session.env.state.done:
                self._drop(key)
                return
        raise SessionCapacityReached(
            f"session capacity reached ({self.max_sessions} running episodes); finish or abandon "
            f"episodes (idle ones expire after {self.idle_ttl_s:g} s) and retry"
        )

    def _drop(self, key: str) -> None:
        self._sessions.pop(key).env.close()
        if self.default_id == key:
            self.default_id = None


_REPLACED_ROUTES = {"/reset", "/step", "/state", "/schema"}


def install_session_routes(app: FastAPI, store: SessionStore) -> None:
    """Swap OpenEnv's stateless /reset, /step, /state (and /schema, to show
    this environment's state model) for session-aware ones."""
    app.router.routes[:] = [
        r for r in app.router.routes if not (isinstance(r, APIRoute) and r.path in _REPLACED_ROUTES)
    ]

    @app.post(
        "/reset",
        response_model=ResetResponse,
        tags=["Environment Control"],
        summary="Start an episode",
        responses={
            400: {"description": "Unknown task_id (the message lists the valid ones), an index outside its split, or arguments that do not fit together"},
            503: {"description": "Session capacity reached; the message says when slots free up"},
        },
    )
    async def reset(request: ResetRequest = Body(default_factory=ResetRequest)) -> ResetResponse:
        try:
            observation = store.reset(
                request.episode_id,
                task_id=request.task_id,
                seed=request.seed,
                split=request.split,
                queue_length=request.queue_length,
                index=request.index,
            )
        except ValueError as exc:  # includes UnknownTaskError
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        except SessionCapacityReached as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        return ResetResponse(**wire_format(observation))

    @app.post(
        "/step",
        response_model=StepResponse,
        tags=["Environment Control"],
        summary="Take an action in an episode",
        responses={404: {"description": "Unknown or expired episode_id, or no default session"}},
    )
    async def step(request: StepRequest) -> StepResponse:
        env = _session(store, request.episode_id)
        return StepResponse(**wire_format(env.step(request.action)))

    @app.get(
        "/state",
        response_model=SupportState,
        tags=["State Management"],
        summary="Episode state (no answers)",
        responses={404: {"description": "Unknown or expired episode_id, or no default session"}},
    )
    async def state(episode_id: Optional[str] = Query(default=None, max_length=128)) -> SupportState:
        return _session(store, episode_id).state

    @app.get("/schema", response_model=SchemaResponse, tags=["Schema"], summary="Action, observation and state schemas")
    async def schema() -> SchemaResponse:
        return SchemaResponse(
            action=SupportAction.model_json_schema(),
            observation=SupportObservation.model_json_schema(),
            state=SupportState.model_json_schema(),
        )


def _session(store: SessionStore, episode_id: str | None) -> SupportEnvironment:
    try:
        return store.get(episode_id)
    except SessionNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


def install_task_api_errors(app: FastAPI) -> None:
    """OpenEnv's Task API routes (/support_env/splits, /tasks, /num_tasks, /task,
    /task_range) turn an index out of range into 400 but let any other error of
    the environment through as a 500. An unknown split is the client's mistake:
    400, naming the splits there are."""

    async def unknown_split(request: Request, exc: UnknownSplitError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": sendable(str(exc))})

    app.add_exception_handler(UnknownSplitError, unknown_split)
