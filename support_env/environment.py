"""SupportEnvironment: the support queue as an OpenEnv environment.

Tickets come one at a time; closing the current ticket advances the queue.
Every client mistake is an invalid action inside the episode (reward -0.2,
counted, explained in `last_action_error`), never an exception, so a
learning agent is told what went wrong and the episode stays consistent.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any, Callable, Optional

from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from . import __version__
from .grading import (
    PENALTY_INVALID_ACTION,
    PENALTY_REPETITION,
    REPEATS_ALLOWED,
    PENALTY_WRONG_FACTS,
    classification_reward,
    escalation_reward,
    grade_episode,
    grade_reply,
    REWARD_OUTCOME,
    PENALTY_UNEXPECTED_WRITE,
    is_expected_write,
    reply_reward,
    search_reward,
)
from .customer import follow_up
from .encodable import escaped, is_unicode
from .world import PolicyViolation, Write, load_world
from .kb import KnowledgeBase, default_kb
from .models import (
    ACTION_TYPES,
    CATEGORIES,
    RESOLUTIONS,
    Grade,
    HistoryEntry,
    KBResult,
    Reward,
    SupportAction,
    SupportObservation,
    SupportState,
    ThreadMessage,
    TicketView,
)
from .progress import SentReply, TicketProgress
from .scenarios import EpisodeSpec, TicketSpec, build_episode

MAX_STEPS = 50
MAX_INVALID_ACTIONS = 10
MAX_QUERY_CHARS = 500
MAX_REPLY_CHARS = 4000
MAX_REASON_CHARS = 1000
MAX_REFUND_DOLLARS = 1_000_000
QUOTE_CHARS = 60


class InvalidAction(Exception):
    """An action the episode rejects; its message becomes `last_action_error`."""


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
        self._handlers: dict[str, Callable[[SupportAction], tuple[str, dict[str, float]]]] = {
            "classify_ticket": self._classify,
            "search_kb": self._search,
            "reply_ticket": self._reply,
            "escalate_ticket": self._escalate,
            "close_ticket": self._close,
            "lookup_record": self._lookup,
            "issue_refund": self._refund,
            "revoke_api_key": self._revoke,
            "lock_account": self._lock,
            "send_replacement": self._replace,
        }

    # --- OpenEnv API -----------------------------------------------------------

    def reset(
        self,
        seed: Optional[int] = None,
        episode_id: Optional[str] = None,
        task_id: Optional[str] = None,
        split: Optional[str] = None,
        queue_length: Optional[int] = None,
    ) -> SupportObservation:
        """Start `task_id` (default easy_classify): the canonical queue, or with a
        `seed` a generated one from `split` ("train" by default, or "eval") of
        `queue_length` tickets (default: the task's). Raises ValueError (and
        UnknownTaskError, a ValueError) for bad arguments, changing nothing."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if queue_length is not None and (isinstance(queue_length, bool) or not isinstance(queue_length, int)):
            raise ValueError(f"queue_length must be an integer, got {queue_length!r}")
        self._spec = build_episode(task_id, seed, split, queue_length)
        self._episode_id = episode_id or uuid.uuid4().hex
        self._index = 0
        self._steps = 0
        self._invalid = 0
        self._total_reward = 0.0
        self._progress: list[TicketProgress] = [TicketProgress(self._spec.tickets[0].id)]
        self._search_results: list[KBResult] = []
        self._records: dict[str, Any] = {}
        self._world = load_world(self._spec.world, self._spec.records)
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
            result, components = self._dispatch(action, not_unicode)
        except InvalidAction as exc:
            error = str(exc)
            self._invalid += 1
            result, components = f"invalid: {error}", {"invalid_action": PENALTY_INVALID_ACTION}
        if self._count_repeat(action) > REPEATS_ALLOWED and error is None:
            components["repetition"] = PENALTY_REPETITION
        self._end_if_over()
        if self._done:
            components["episode_grade"] = self._grade.score
        reward = Reward(value=round(sum(components.values()), 4), components=components)
        self._total_reward = round(self._total_reward + reward.value, 4)
        self._history.append(HistoryEntry(step=self._steps, action=_render(action, not_unicode), result=result, reward=reward.value))
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
        current = self._current()
        return SupportState(
            episode_id=self._episode_id,
            step_count=self._steps,
            task_id=self._spec.task_id,
            seed=self._spec.seed,
            split=self._spec.split,
            difficulty=self._spec.difficulty,
            done=self._done,
            current_ticket_id=current.id if current else None,
            tickets_total=len(self._spec.tickets),
            tickets_closed=sum(p.closed for p in self._progress),
            invalid_actions=self._invalid,
            max_steps=MAX_STEPS,
            total_reward=self._total_reward,
            progress=[p.view() for p in self._progress],
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

    # --- actions ---------------------------------------------------------------

    def _dispatch(self, action: SupportAction, not_unicode: str | None) -> tuple[str, dict[str, float]]:
        """`not_unicode`: the action's first field that is not Unicode text (`_field_not_unicode`), if any."""
        if not_unicode is not None:
            raise InvalidAction(f"{not_unicode} is not valid Unicode text (it holds a lone surrogate such as \\ud800); send UTF-8 text")
        handler = self._handlers.get(action.action_type)
        if handler is None:
            raise InvalidAction(f"unknown action_type {_quote(action.action_type)}; valid: {', '.join(ACTION_TYPES)}")
        return handler(action)

    def _classify(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        ticket, progress = self._target(action)
        category = _required_text(action.category, "category", 50).lower()
        if category not in CATEGORIES:
            raise InvalidAction(f"category {_quote(action.category)} is not one of {', '.join(CATEGORIES)}")
        if progress.classified_as is not None:
            raise InvalidAction(f"ticket {ticket.id} is already classified as {progress.classified_as}; classification is final")
        progress.classified_as = category
        return f"classified {ticket.id} as {category}", self._pay(progress, "classification", classification_reward(ticket.truth, category))

    def _search(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        query = _required_text(action.query, "query", MAX_QUERY_CHARS)
        hits = self._kb.search(query)
        self._search_results = [KBResult(article_id=a.id, title=a.title, text=a.body, score=s) for a, s in hits]
        ids = [a.id for a, _ in hits]
        ticket, progress = self._spec.tickets[self._index], self._progress[-1]
        progress.retrieved.update(ids)
        found = ", ".join(ids) if ids else "no matching articles"
        return f"search {query[:60]!r} -> {found}", self._pay(progress, "kb_search", search_reward(ticket.truth, ids))

    def _reply(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        ticket, progress = self._target(action)
        text = _required_text(action.reply_text, "reply_text", MAX_REPLY_CHARS)
        progress.replies.append(SentReply(text=text, retrieved_before=frozenset(progress.retrieved)))
        progress.thread.append(ThreadMessage(author="agent", text=text))
        components: dict[str, float] = {}
        result = f"reply sent on {ticket.id} ({len(text)} chars)"
        truth = ticket.truth.reply
        if truth is not None:
            grade = grade_reply(progress.replies, truth, ticket.customer.plan, self._kb)
            gain = reply_reward(progress.best_reply_score, grade)
            progress.best_reply_score = max(progress.best_reply_score, grade.score)
            if gain > 0:
                components["reply"] = round(gain, 4)
            if grade.wrong or grade.forbidden:
                components.update(self._pay(progress, "wrong_facts", PENALTY_WRONG_FACTS))
            answer = follow_up(ticket, text, grade, turn=len(progress.replies), seed=self._spec.seed)
            if answer:
                progress.thread.append(ThreadMessage(author="customer", text=answer))
                result += "; the customer answered in the thread"
        return result, components

    def _escalate(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        ticket, progress = self._target(action)
        reason = _required_text(action.reason, "reason", MAX_REASON_CHARS)
        if progress.escalated:
            raise InvalidAction(f"ticket {ticket.id} is already escalated")
        progress.escalated = True
        progress.escalation_reason = reason
        name, value = escalation_reward(ticket.truth)
        return f"escalated {ticket.id} to the on-call team", self._pay(progress, name, value)

    def _close(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        ticket, progress = self._target(action)
        if not progress.handled:
            raise InvalidAction(f"ticket {ticket.id} has not been handled: classify, reply to or escalate it before closing")
        if action.resolution is not None and action.resolution not in RESOLUTIONS:
            raise InvalidAction(f"resolution {_quote(action.resolution)} is not one of {', '.join(RESOLUTIONS)}")
        progress.resolution = action.resolution
        progress.closed = True
        self._index += 1
        self._search_results = []
        self._records = {}
        if self._index < len(self._spec.tickets):
            nxt = self._spec.tickets[self._index]
            self._progress.append(TicketProgress(nxt.id))
            return f"closed {ticket.id}; next ticket {nxt.id}", {}
        return f"closed {ticket.id}; the queue is empty", {}

    def _lookup(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        ticket, progress = self._target(action)
        account = self._account_of(ticket)
        record = _required_text(action.record, "record", 50)
        if action.account_id is not None and action.account_id != account:
            raise InvalidAction(f"you may only look up the records of this ticket's customer ({account})")
        data = self._world_call(self._world.lookup, account, record)
        self._records[record] = data
        progress.looked_up.add(record)
        rows = f"{len(data)} rows" if isinstance(data, list) else "1 record"
        return f"looked up {record} of {account} ({rows})", {}

    def _refund(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        invoice = _required_text(action.invoice_id, "invoice_id", 64)
        amount = action.amount
        if amount is None or not 0 < amount <= MAX_REFUND_DOLLARS or round(amount * 100) != round(amount * 100, 6):
            raise InvalidAction(
                f"amount is required: a positive number of US dollars up to {MAX_REFUND_DOLLARS:,} with at most 2 decimals"
            )
        return self._write(action, lambda account: self._world.issue_refund(account, invoice, round(action.amount * 100)))

    def _revoke(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        key = _required_text(action.key_id, "key_id", 64)
        return self._write(action, lambda account: self._world.revoke_api_key(account, key))

    def _lock(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        return self._write(action, self._world.lock_account)

    def _replace(self, action: SupportAction) -> tuple[str, dict[str, float]]:
        order = _required_text(action.order_id, "order_id", 64)
        return self._write(action, lambda account: self._world.send_replacement(account, order))

    def _write(self, action: SupportAction, operation: Callable[[str], Write]) -> tuple[str, dict[str, float]]:
        """Run an account operation for the current ticket's customer; policy refusals are invalid actions."""
        ticket, progress = self._target(action)
        write = self._world_call(operation, self._account_of(ticket))
        progress.writes.append(write)
        progress.write_evidence.append(frozenset(progress.looked_up))
        if not is_expected_write(ticket.truth, write):
            return f"done: {write.describe()}", {"unexpected_write": PENALTY_UNEXPECTED_WRITE}
        if not set(ticket.truth.evidence) <= progress.looked_up:
            return f"done: {write.describe()}", {}  # right, but a guess: no credit without the evidence
        paid = self._pay(progress, f"outcome {write.describe()}", REWARD_OUTCOME)
        return f"done: {write.describe()}", {"outcome": v for v in paid.values()}

    def _account_of(self, ticket: TicketSpec) -> str:
        if ticket.customer.account_id is None:
            raise InvalidAction(f"ticket {ticket.id} has no account records in this task")
        return ticket.customer.account_id

    @staticmethod
    def _world_call(operation: Callable[..., Any], *args: Any) -> Any:
        try:
            return operation(*args)
        except PolicyViolation as exc:
            raise InvalidAction(f"refused: {exc}") from exc

    # --- helpers ---------------------------------------------------------------

    def _target(self, action: SupportAction) -> tuple[TicketSpec, TicketProgress]:
        """The current ticket, if the action names it."""
        ticket = self._spec.tickets[self._index]
        if not action.ticket_id:
            raise InvalidAction(f"{action.action_type} needs ticket_id (the current ticket is {ticket.id})")
        if action.ticket_id != ticket.id:
            raise InvalidAction(f"ticket {_quote(action.ticket_id)} is not the current ticket ({ticket.id}); work the queue in order")
        return ticket, self._progress[-1]

    def _count_repeat(self, action: SupportAction) -> int:
        """How many times in a row this exact action has now been taken."""
        # The field values in field order: the same values, compared the same way, as
        # action.model_dump(exclude={"metadata"}) (the model forbids extra fields).
        key = tuple(value for name, value in action.__dict__.items() if name != "metadata")
        self._repeats = self._repeats + 1 if key == self._last_action else 1
        self._last_action = key
        return self._repeats

    @staticmethod
    def _pay(progress: TicketProgress, item: str, value: float) -> dict[str, float]:
        """A rubric item's reward, paid at most once per ticket."""
        if value == 0 or item in progress.paid:
            return {}
        progress.paid.add(item)
        return {item: value}

    def _current(self) -> TicketSpec | None:
        return self._spec.tickets[self._index] if self._index < len(self._spec.tickets) else None

    def _end_if_over(self) -> None:
        failed = self._invalid >= MAX_INVALID_ACTIONS
        if self._current() is None or failed or self._steps >= MAX_STEPS:
            self._done = True
            self._grade = grade_episode(self._spec, self._progress, self._kb, failed=failed)

    def _current_view(self) -> TicketView | None:
        """The current ticket as the agent sees it. It changes only when the queue advances or its
        thread grows, so one view serves every observation in between."""
        current = self._current()
        if current is None or self._done:
            return None
        thread = self._progress[-1].thread
        key = (self._index, len(thread))
        if self._ticket_view is None or self._ticket_view[0] != key:
            self._ticket_view = (key, current.view(thread))
        return self._ticket_view[1]

    def _observation(self, reward: Reward, error: str | None) -> SupportObservation:
        spec = self._spec
        return SupportObservation(
            episode_id=self._episode_id,
            task_id=spec.task_id,
            seed=spec.seed,
            split=spec.split,
            difficulty=spec.difficulty,
            objective=spec.objective,
            current_ticket=self._current_view(),
            tickets_remaining=len(spec.tickets) - self._index,
            tickets_total=len(spec.tickets),
            kb_search_results=list(self._search_results),
            records=dict(self._records),
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


def _quote(value: str) -> str:
    """A client's value, quoted in an error message, cut to a readable length."""
    return repr(value[:QUOTE_CHARS] + "...") if len(value) > QUOTE_CHARS else repr(value)


def _required_text(value: Optional[str], field: str, limit: int) -> str:
    if value is None or not value.strip():
        raise InvalidAction(f"{field} is required and must not be empty")
    if len(value) > limit:
        raise InvalidAction(f"{field} is {len(value)} characters; the limit is {limit}")
    return value.strip()


def _field_not_unicode(action: SupportAction) -> str | None:
    """The first text field that cannot be encoded as UTF-8 (JSON allows "\\ud800"; Unicode does not)."""
    for name, value in vars(action).items():
        if isinstance(value, str) and name != "metadata" and not is_unicode(value):
            return name
    return None


_NOT_RENDERED = frozenset({"metadata", "action_type", "reason"})


def _render(action: SupportAction, not_unicode: str | None) -> str:
    """A one-line rendering of an action for the history log: its values in field order, text that
    is not Unicode escaped so the log can always be encoded. `not_unicode` is
    `_field_not_unicode(action)`."""
    if not_unicode is not None:
        readable = action.model_copy(update={
            name: escaped(value)
            for name, value in action.model_dump(exclude={"metadata"}).items() if isinstance(value, str)
        })
        return _render(readable, None)  # escaped text is Unicode
    # The set fields in field order, as action.model_dump(exclude_none=True, exclude=_NOT_RENDERED)
    # lists them: every field is a str or a float, dumped as itself.
    fields = ((name, value) for name, value in action.__dict__.items() if value is not None and name not in _NOT_RENDERED)
    values = []
    for name, value in fields:
        if name == "reply_text":
            values.append(f"{len(value)} chars")
        elif name == "query":
            values.append(_quote(value))
        else:
            values.append(str(value)[:60])
    return f"{action.action_type[:40]}({', '.join(values)})"


# OpenEnv passes reset_async only the keyword arguments its signature names, as
# it does for reset: show it reset's.
SupportEnvironment.reset_async.__signature__ = inspect.signature(SupportEnvironment.reset)
