"""SupportEnvironment: the support queue as an OpenEnv environment.

Tickets come one at a time; closing the current ticket advances the queue.
Every client mistake is an invalid action inside the episode (reward -0.2,
counted, explained in `last_action_error`), never an exception, so a
learning agent is told what went wrong and the episode stays consistent.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from .actions import Desk, InvalidAction, perform, render
from .domain.kb import KnowledgeBase, default_kb
from .domain.world import load_world
from .encodable import is_unicode
from .episodes import tasks_api
from .episodes.catalogue import build_episode
from .episodes.spec import EpisodeSpec
from .grading.progress import TicketProgress
from .grading.rewards import PENALTY_INVALID_ACTION, PENALTY_REPETITION, REPEATS_ALLOWED
from .grading.tickets import grade_episode
from .version import __version__
from .models import Grade, HistoryEntry, Reward, SupportAction, SupportObservation, SupportState, TicketView

MAX_STEPS = 50
MAX_INVALID_ACTIONS = 10
REWARD_MODES = ("dense", "sparse")


class EpisodeNotStarted(RuntimeError):
    """step() or state before reset()."""

    def __init__(self) -> None:
        super().__init__("no episode in progress: call reset() first")


class SupportEnvironment(Environment[SupportAction, SupportObservation, SupportState]):
    """One support-queue episode at a time; one instance per session."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, kb: KnowledgeBase | None = None):
        super().__init__()
        self._kb = kb or default_kb()
        self._spec: EpisodeSpec | None = None
        self._desk: Desk | None = None

    # --- OpenEnv API -----------------------------------------------------------

    def reset(
        self,
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        task_id: Optional[str] = None,
        split: Optional[str] = None,
        queue_length: Optional[int] = None,
        index: Optional[int] = None,
        reward_mode: Optional[str] = None,
    ) -> SupportObservation:
        """Start `task_id` (default easy_classify): the canonical queue, or with a
        `seed` a generated one from `split` ("train" by default, or "eval") of
        `queue_length` tickets (default: the task's). Or start task `index` of
        Task API `split` ("canonical" by default; see `get_task`).
        `reward_mode` "dense" (the default) pays shaped step rewards and adds
        the grade on the last step; "sparse" pays 0 on every step and shows no
        reward detail until the last, whose reward is the grade, and nothing
        the episode shows before then tells whether an action was right.
        Raises ValueError (and UnknownTaskError, a ValueError) for bad
        arguments, changing nothing."""
        if reward_mode is not None and reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode must be one of {', '.join(REWARD_MODES)}, got {reward_mode!r}")
        for name, value in (("seed", seed), ("index", index)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if queue_length is not None and (isinstance(queue_length, bool) or not isinstance(queue_length, int)):
            raise ValueError(f"queue_length must be an integer, got {queue_length!r}")
        task_id, seed, split = tasks_api.resolve_reset(task_id, seed, split, index)
        return self.start_episode(build_episode(task_id, seed, split, queue_length), episode_id, reward_mode)

    def start_episode(self, spec: EpisodeSpec, episode_id: Optional[str] = None, reward_mode: Optional[str] = None) -> SupportObservation:
        """Start the episode `spec` (as `reset` does once it has built one): for tests, audits and
        tools that make their own episodes, such as one ticket of one reasoning family."""
        self._spec = spec
        self._episode_id = episode_id or uuid.uuid4().hex
        self._desk = Desk(
            spec=self._spec,
            kb=self._kb,
            world=load_world(self._spec.world, self._spec.records, self._spec.today),
            progress=[TicketProgress(self._spec.tickets[0].id)],
            sparse=reward_mode == "sparse",
        )
        self._steps = 0
        self._invalid = 0
        self._total_reward = 0.0
        self._history: list[HistoryEntry] = []
        self._done = False
        self._grade: Grade | None = None
        self._last_action: tuple | None = None
        self._repeats = 0
        self._ticket_view: tuple[tuple[int, int], TicketView] | None = None
        return self._observation(Reward(value=0.0), error=None)

    def step(self, action: SupportAction, timeout_s: Optional[float] = None, **kwargs: Any) -> SupportObservation:
        if self._spec is None:
            raise EpisodeNotStarted()
        if self._done:
            return self._observation(Reward(value=0.0), error="the episode is over; call reset() to start another")
        self._steps += 1
        error = None
        not_unicode = _field_not_unicode(action)
        try:
            if not_unicode is not None:
                raise InvalidAction(f"{not_unicode} is not valid Unicode text (it holds a lone surrogate such as \\ud800); send UTF-8 text")
            result, components = perform(self._desk, action)
        except InvalidAction as exc:
            error = str(exc)
            self._invalid += 1
            result, components = f"invalid: {error}", {"invalid_action": PENALTY_INVALID_ACTION}
        if self._count_repeat(action) > REPEATS_ALLOWED and error is None:
            components["repetition"] = PENALTY_REPETITION
        self._end_if_over()
        if self._desk.sparse:  # the grade on the last step, nothing before it
            components = {"episode_grade": self._grade.score} if self._done else {}
        elif self._done:
            components["episode_grade"] = self._grade.score
        reward = Reward(value=round(sum(components.values()), 4), components=components)
        self._total_reward = round(self._total_reward + reward.value, 4)
        self._history.append(HistoryEntry(step=self._steps, action=render(action, not_unicode), result=result, reward=reward.value))
        return self._observation(reward, error)

    # OpenEnv's /ws handler sends reset and step to a worker thread unless the
    # environment overrides reset_async/step_async; then it awaits them on its
    # event loop. Both are pure CPU and short: a step takes 40-90 µs (~2.5 ms
    # for a 4,000-character reply), a reset 0.3 ms (at most ~1.2 ms once
    # `preload` has read the data). A hand-off to a thread and back costs
    # ~150 µs, and the GIL keeps the thread from running beside the loop
    # anyway. So /ws runs them in place, as the HTTP session routes do.

    async def reset_async(self, *args: Any, **kwargs: Any) -> SupportObservation:
        return self.reset(*args, **kwargs)

    async def step_async(self, action: SupportAction, timeout_s: Optional[float] = None, **kwargs: Any) -> SupportObservation:
        return self.step(action, timeout_s=timeout_s, **kwargs)

    @property
    def state(self) -> SupportState:
        if self._spec is None:
            raise EpisodeNotStarted()
        current = self._desk.current
        return SupportState(
            episode_id=self._episode_id,
            step_count=self._steps,
            task_id=self._spec.task_id,
            seed=self._spec.seed,
            split=self._spec.split,
            difficulty=self._spec.difficulty,
            today=self._spec.today,
            reward_mode="sparse" if self._desk.sparse else "dense",
            done=self._done,
            current_ticket_id=current.id if current else None,
            tickets_total=len(self._spec.tickets),
            tickets_closed=sum(p.closed for p in self._desk.progress),
            invalid_actions=self._invalid,
            max_steps=MAX_STEPS,
            total_reward=self._total_reward,
            progress=[p.view() for p in self._desk.progress],
            grade=self._grade,
        )

    def get_metadata(self) -> EnvironmentMetadata:
        return EnvironmentMetadata(
            name="support_env",
            description="Work the customer-support queue of a cloud API company: classify tickets, search the "
            "policy knowledge base, reply with correct facts, escalate genuine emergencies, close tickets. "
            "Deterministic graders score every episode in [0, 1].",
            version=__version__,
        )

    # --- OpenEnv Task API (support_env/episodes/tasks_api.py): numbered tasks per split;
    # reset(split=..., index=...) starts one. Pure look-ups, usable before reset().

    def list_splits(self) -> list[dict[str, Any]]:
        return tasks_api.list_splits()

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return tasks_api.list_tasks(split)

    def num_tasks(self, split: str) -> int:
        return tasks_api.num_tasks(split)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return tasks_api.get_task(split, index)

    def get_task_range(self, split: str, start: Optional[int] = None, stop: Optional[int] = None) -> list[dict[str, Any]]:
        return tasks_api.get_task_range(split, start, stop)

    # --- helpers ---------------------------------------------------------------

    def _count_repeat(self, action: SupportAction) -> int:
        """How many times in a row this exact action has now been taken."""
        # The field values in field order: the same values, compared the same way, as
        # action.model_dump(exclude={"metadata"}) (the model forbids extra fields).
        key = tuple(value for name, value in action.__dict__.items() if name != "metadata")
        self._repeats = self._repeats + 1 if key == self._last_action else 1
        self._last_action = key
        return self._repeats

    def _end_if_over(self) -> None:
        failed = self._invalid >= MAX_INVALID_ACTIONS
        if self._desk.current is None or failed or self._steps >= MAX_STEPS:
            self._done = True
            self._grade = grade_episode(self._spec, self._desk.progress, self._kb, failed=failed)

    def _current_view(self) -> TicketView | None:
        """The current ticket as the agent sees it. It changes only when the queue advances or its
        thread grows, so one view serves every observation in between."""
        current = self._desk.current
        if current is None or self._done:
            return None
        thread = self._desk.progress[-1].thread
        key = (self._desk.index, len(thread))
        if self._ticket_view is None or self._ticket_view[0] != key:
            self._ticket_view = (key, current.view(thread))
        return self._ticket_view[1]

    def _observation(self, reward: Reward, error: str | None) -> SupportObservation:
        spec, desk = self._spec, self._desk
        return SupportObservation(
            episode_id=self._episode_id,
            task_id=spec.task_id,
            seed=spec.seed,
            split=spec.split,
            difficulty=spec.difficulty,
            today=spec.today,
            reward_mode="sparse" if self._desk.sparse else "dense",
            objective=spec.objective,
            current_ticket=self._current_view(),
            tickets_remaining=len(spec.tickets) - desk.index,
            tickets_total=len(spec.tickets),
            kb_search_results=list(desk.search_results),
            records=dict(desk.records),
            conversation_history=list(self._history),
            last_action_error=error,
            steps_remaining=MAX_STEPS - self._steps,
            invalid_actions=self._invalid,
            max_invalid_actions=MAX_INVALID_ACTIONS,
            reward_detail=reward,
            grade=self._grade,
            done=self._done,
            reward=reward.value,
        )


def _field_not_unicode(action: SupportAction) -> str | None:
    """The first text field that cannot be encoded as UTF-8 (JSON allows "\\ud800"; Unicode does not)."""
    for name, value in vars(action).items():
        if isinstance(value, str) and name != "metadata" and not is_unicode(value):
            return name
    return None


# OpenEnv passes reset_async only the keyword arguments its signature names, as
# it does for reset: show it reset's.
SupportEnvironment.reset_async.__signature__ = inspect.signature(SupportEnvironment.reset)
