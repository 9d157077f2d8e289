"""Stateful HTTP sessions for /reset, /step and /state.

OpenEnv's own HTTP routes build a fresh environment for every request, so an
episode cannot span two HTTP calls. These routes replace them: `/reset`
returns an `episode_id`, later calls name it, and a call without one uses the
default session (the last reset made without an id), so `curl /reset` then
`curl /step` works. Sessions are episode logs in the store SUPPORT_ENV_STORE
names (server/stores/), capped, and expire when idle; any process rebuilds a
session by replaying its log. `/ws` keeps OpenEnv's per-connection sessions. `/reset` also takes OpenEnv's
Task API selection (`split`, `index`), and an unknown split on the Task API
routes is a 400 (`install_task_api_errors`).
"""

from __future__ import annotations

import inspect
import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from openenv.core.env_server.types import SchemaResponse
from pydantic import BaseModel, ConfigDict, Field

from server.errors import sendable
from server.stores import EpisodeLog, Record, SessionCapacityReached, StoreUnavailable
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation, SupportState
from support_env.episodes.catalogue import TASK_IDS
from support_env.episodes.tasks_api import UnknownSplitError

EPISODE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
RESET_PARAMETERS = set(inspect.signature(SupportEnvironment.reset).parameters) - {"self"}


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
    reward_mode: Optional[Literal["dense", "sparse"]] = Field(
        default=None, description="dense (the default): shaped step rewards; sparse: only the final grade."
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


class Trajectory(BaseModel):
    """GET /episodes/{episode_id}/trajectory: an HTTP session's log."""

    episode_id: str = Field(description="The session.")
    reset: dict[str, Any] = Field(description="The reset arguments the episode was started with (those given).")
    actions: list[dict[str, Any]] = Field(description="The actions applied, in order, as sent, to the end of the episode.")
    rewards: list[Optional[float]] = Field(description="The reward each action earned (replayed from the log).")
    done: bool = Field(description="Whether the episode is over.")
    grade: Optional[dict[str, Any]] = Field(default=None, description="The episode grade once done; null before.")


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


class SessionNotFound(Exception):
    pass


class StepConflict(Exception):
    """The episode kept being reset elsewhere while this process tried to step it (409)."""


MAX_STEP_ATTEMPTS = 4  # tries of a step whose episode keeps being reset by other processes meanwhile


@dataclass
class _Live:
    """An episode's environment as this process holds it: at `length` logged actions of `generation`."""

    env: SupportEnvironment
    generation: str
    length: int


def action_json(action: SupportAction) -> str:
    """An action as the log keeps it: the fields the client set (ASCII JSON, so text
    that is not Unicode survives any store)."""
    return json.dumps(action.model_dump(mode="json", exclude_unset=True))


def parse_action(text: str) -> SupportAction:
    return SupportAction.model_validate_json(text)


class SessionStore:
    """HTTP sessions: episode logs in an `EpisodeLog` (SUPPORT_ENV_STORE) and a
    bounded cache of live environments, least recently used first.

    A step appends its action to the log first, before anything else happens: the
    store puts it at the end, atomically, and answers with the actions before it
    that this process has not applied (other processes' steps). The cached
    environment replays those, then takes the action, and the answer is sent.
    A warm step in a process whose copy is current is one store call and
    replays nothing; a process that does not hold the episode rebuilds it from
    the log. Concurrent steps on one episode, from any processes, are thus
    serialised in the order the store received them, each applied once, on the
    state it landed on (no 409): none is lost, none applied twice. Steps after
    the end are answered (the episode is over) but not logged.
    """

    def __init__(
        self,
        factory: Callable[[], SupportEnvironment],
        log: EpisodeLog,
        cache_size: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._factory = factory
        self.log = log
        self.max_sessions = log.max_sessions
        self.idle_ttl_s = log.idle_ttl_s
        self._cache_size = cache_size or log.max_sessions
        self._clock = clock
        self._cache: OrderedDict[str, _Live] = OrderedDict()

    def reset(self, episode_id: str | None, **kwargs: Any) -> SupportObservation:
        """Reset (or create) a session. The episode is built before anything is
        stored, so a bad task id or seed leaves every session as it was. Only the
        arguments given (not None) are logged."""
        arguments = {name: value for name, value in kwargs.items() if value is not None}
        is_default = episode_id is None
        episode_id = episode_id or uuid.uuid4().hex
        env = self._factory()
        observation = env.reset(episode_id=episode_id, **arguments)
        generation = uuid.uuid4().hex
        self.log.start(episode_id, arguments, generation, self._clock())
        self._hold(episode_id, _Live(env, generation, 0))
        if is_default:
            self.log.set_default(episode_id)
        return observation

    def step(self, episode_id: str | None, action: SupportAction) -> SupportObservation:
        key = self._key(episode_id)
        text = action_json(action)
        for _ in range(MAX_STEP_ATTEMPTS):
            live = self._cache.get(key) or self._rebuild(key, episode_id)
            appended = self.log.append(key, live.generation, live.length, text, self._clock())
            if appended.status == "gone":
                self._forget(key)
                raise SessionNotFound(self._not_found(key, episode_id))
            if appended.status == "reset":
                self._forget(key)
                continue
            for earlier in appended.before:
                live.env.step(parse_action(earlier))
            live.length += len(appended.before)
            self._cache.move_to_end(key)
            observation = live.env.step(action)
            if appended.status == "ok":
                live.length += 1
                if observation.done:
                    self._finish(key, live.generation)
            return observation
        raise StepConflict(f"episode {key!r} kept being reset by other clients while this step was tried; it was not applied: retry it")

    def get(self, episode_id: str | None) -> SupportEnvironment:
        """The session's environment, brought up to date with its log."""
        key = self._key(episode_id)
        return self._current(key, episode_id, touch=True).env

    def trajectory(self, episode_id: str) -> dict[str, Any]:
        """The episode's log, replayed: reset arguments, actions and the rewards they
        earned in order (up to the end of the episode), and the grade once it is done."""
        record = self.log.read(episode_id, 0, self._clock(), touch=False)
        if record is None:
            raise SessionNotFound(self._not_found(episode_id, episode_id))
        env = self._factory()
        env.reset(episode_id=episode_id, **record.reset)
        actions, rewards, done = [], [], False
        for text in record.actions:
            observation = env.step(parse_action(text))
            actions.append(json.loads(text))
            rewards.append(observation.reward)
            if observation.done:
                done = True
                break
        grade = env.state.grade if done else None
        env.close()
        return {
            "episode_id": episode_id,
            "reset": record.reset,
            "actions": actions,
            "rewards": rewards,
            "done": done,
            "grade": grade.model_dump(mode="json") if grade is not None else None,
        }

    def _finish(self, key: str, generation: str) -> None:
        """Mark the episode done in the store. The step is already logged and its answer
        valid: if the store cannot be reached now, the next append finds the episode
        still open and logs a step after the end, which replays as the no-op it is."""
        try:
            self.log.finish(key, generation)
        except StoreUnavailable:
            pass

    def _key(self, episode_id: str | None) -> str:
        key = episode_id or self.log.default_id()
        if key is None:
            raise SessionNotFound("no default session: call POST /reset first (or pass the episode_id it returned)")
        return key

    def _current(self, key: str, episode_id: str | None, touch: bool) -> _Live:
        live = self._cache.get(key)
        record = self.log.read(key, live.length if live else 0, self._clock(), touch)
        if record is None:
            self._forget(key)
            raise SessionNotFound(self._not_found(key, episode_id))
        if live is None or live.generation != record.generation or live.length > record.length:
            if live is not None:
                record = self.log.read(key, 0, self._clock(), False) or record
            return self._replay(key, record)
        for text in record.actions:  # actions other processes appended since this copy's last
            live.env.step(parse_action(text))
        live.length = record.length
        self._cache.move_to_end(key)
        return live

    def _rebuild(self, key: str, episode_id: str | None) -> _Live:
        record = self.log.read(key, 0, self._clock(), touch=False)
        if record is None:
            self._forget(key)
            raise SessionNotFound(self._not_found(key, episode_id))
        return self._replay(key, record)

    def _replay(self, key: str, record: Record) -> _Live:
        env = self._factory()
        env.reset(episode_id=key, **record.reset)
        for text in record.actions:
            env.step(parse_action(text))
        live = _Live(env, record.generation, record.length)
        self._hold(key, live)
        return live

    def _hold(self, key: str, live: _Live) -> None:
        old = self._cache.pop(key, None)
        if old is not None and old.env is not live.env:
            old.env.close()
        self._cache[key] = live
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)[1].env.close()

    def _forget(self, key: str) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            old.env.close()

    def _not_found(self, key: str, episode_id: str | None) -> str:
        which = f"episode_id {key!r}" if episode_id else f"the default session ({key})"
        kept = "sessions live in memory and" if self.log.name == "memory" else f"sessions are kept in the {self.log.name} store and"
        return (
            f"unknown or expired {which}: {kept} expire after "
            f"{self.idle_ttl_s:g} s idle; call POST /reset to start a new episode"
        )


_REPLACED_ROUTES = {"/reset", "/step", "/state", "/schema"}


def install_session_routes(app: FastAPI, store: SessionStore, connection_store: SessionStore | None = None) -> None:
    """Swap OpenEnv's stateless /reset, /step, /state (and /schema, to show
    this environment's state model) for session-aware ones, and add the
    trajectory route (HTTP sessions from `store`, then /ws and MCP sessions
    from `connection_store`)."""
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
            503: {"description": "Session capacity reached (the message says when slots free up), or the session store is unavailable"},
        },
    )
    async def reset(request: ResetRequest = Body(default_factory=ResetRequest)) -> ResetResponse:
        try:
            # Only the arguments given: reward_mode reaches the environment only when a client sets it.
            arguments = request.model_dump(exclude={"episode_id"}, exclude_none=True)
            unsupported = sorted(set(arguments) - RESET_PARAMETERS)
            if unsupported:
                raise ValueError(f"{', '.join(unsupported)} is not supported by this server's environment")
            observation = store.reset(request.episode_id, **arguments)
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
        responses={
            404: {"description": "Unknown or expired episode_id, or no default session"},
            409: {"description": "The episode kept being reset by other clients while the step was tried; the action was not applied"},
            503: {"description": "The session store is unavailable; the action was not applied"},
        },
    )
    async def step(request: StepRequest) -> StepResponse:
        try:
            observation = store.step(request.episode_id, request.action)
        except SessionNotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except StepConflict as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return StepResponse(**wire_format(observation))

    @app.get(
        "/state",
        response_model=SupportState,
        tags=["State Management"],
        summary="Episode state (no answers)",
        responses={404: {"description": "Unknown or expired episode_id, or no default session"}},
    )
    async def state(episode_id: Optional[str] = Query(default=None, max_length=128)) -> SupportState:
        return _session(store, episode_id).state

    @app.get(
        "/episodes/{episode_id}/trajectory",
        response_model=Trajectory,
        tags=["State Management"],
        summary="An HTTP session's episode log",
        responses={404: {"description": "Unknown or expired episode_id"}},
    )
    async def trajectory(episode_id: str = Path(max_length=128)) -> Trajectory:
        try:
            return Trajectory(**store.trajectory(episode_id))
        except SessionNotFound as exc:
            if connection_store is not None:
                try:
                    return Trajectory(**connection_store.trajectory(episode_id))
                except SessionNotFound:
                    pass
            raise HTTPException(status_code=404, detail=f"unknown or expired episode_id {sendable(episode_id)!r}: no HTTP, /ws or MCP session has it") from exc

    @app.get("/schema", response_model=SchemaResponse, tags=["Schema"], summary="Action, observation and state schemas")
    async def schema() -> SchemaResponse:
        return SchemaResponse(
            action=SupportAction.model_json_schema(),
            observation=SupportObservation.model_json_schema(),
            state=SupportState.model_json_schema(),
        )


def install_store_errors(app: FastAPI) -> None:
    """The session store out of reach (Redis down, SQLite file gone or locked past
    its busy timeout): 503 saying so, never a 500. Nothing was acknowledged: a
    step is answered only after it is in the log."""

    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": sendable(str(exc))}, headers={"Retry-After": "1"})

    app.add_exception_handler(StoreUnavailable, unavailable)


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
