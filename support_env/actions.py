"""The actions: one handler per action type, each a function of the desk and the action.

A handler reads or changes the `Desk` (the episode's working state) and returns
a one-line result for the history log and its reward components. A mistake
inside the rules raises `InvalidAction`, whose message becomes
`last_action_error`; the handler changes nothing before it raises.

Read actions: `search_kb`, `lookup_record`. Ticket actions: `classify_ticket`,
`reply_ticket`, `escalate_ticket`, `close_ticket`. Account operations (writes
to the world): `issue_refund`, `revoke_api_key`, `lock_account`,
`send_replacement`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .domain.kb import KnowledgeBase
from .domain.world import Impossible, World, Write
from .encodable import escaped
from .episodes.customer import asks_for, follow_up
from .episodes.spec import EpisodeSpec, TicketSpec
from .grading.progress import SentReply, TicketProgress
from .grading.reply import grade_reply
from .grading.rewards import (
    PENALTY_POLICY_BREACH,
    PENALTY_UNEXPECTED_WRITE,
    PENALTY_WRONG_FACTS,
    REWARD_OUTCOME,
    classification_reward,
    escalation_reward,
    reply_reward,
    search_reward,
)
from .grading.tickets import is_expected_write
from .models import ACTION_TYPES, CATEGORIES, RESOLUTIONS, KBResult, SupportAction, ThreadMessage

MAX_QUERY_CHARS = 500
MAX_REPLY_CHARS = 4000
MAX_REASON_CHARS = 1000
MAX_REFUND_DOLLARS = 1_000_000
QUOTE_CHARS = 60

Outcome = tuple[str, dict[str, float]]  # (result line for the history, reward components)


class InvalidAction(Exception):
    """An action the episode rejects; its message becomes `last_action_error`."""


@dataclass
class Desk:
    """What the agent works with during an episode: the queue and where it stands in it, what it
    did on each ticket so far, the latest search results and records, and its private copy of
    the world."""

    spec: EpisodeSpec
    kb: KnowledgeBase
    world: World
    index: int = 0
    progress: list[TicketProgress] = field(default_factory=list)
    search_results: list[KBResult] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    sparse: bool = False  # sparse reward mode: nothing the agent sees may tell whether an action was right

    @property
    def current(self) -> TicketSpec | None:
        tickets = self.spec.tickets
        return tickets[self.index] if self.index < len(tickets) else None


def classify_ticket(desk: Desk, action: SupportAction) -> Outcome:
    ticket, progress = _target(desk, action)
    category = _required_text(action.category, "category", 50).lower()
    if category not in CATEGORIES:
        raise InvalidAction(f"category {quote(action.category)} is not one of {', '.join(CATEGORIES)}")
    if progress.classified_as is not None:
        raise InvalidAction(f"ticket {ticket.id} is already classified as {progress.classified_as}; classification is final")
    progress.classified_as = category
    return f"classified {ticket.id} as {category}", _pay(progress, "classification", classification_reward(ticket.truth, category))


def search_kb(desk: Desk, action: SupportAction) -> Outcome:
    query = _required_text(action.query, "query", MAX_QUERY_CHARS)
    hits = desk.kb.search(query)
    desk.search_results = [KBResult(article_id=a.id, title=a.title, text=a.body, score=s) for a, s in hits]
    ids = [a.id for a, _ in hits]
    ticket, progress = desk.spec.tickets[desk.index], desk.progress[-1]
    progress.retrieved.update(ids)
    found = ", ".join(ids) if ids else "no matching articles"
    return f"search {query[:60]!r} -> {found}", _pay(progress, "kb_search", search_reward(ticket.truth, ids))


def reply_ticket(desk: Desk, action: SupportAction) -> Outcome:
    ticket, progress = _target(desk, action)
    text = _required_text(action.reply_text, "reply_text", MAX_REPLY_CHARS)
    progress.replies.append(SentReply(text=text, retrieved_before=frozenset(progress.retrieved)))
    progress.thread.append(ThreadMessage(author="agent", text=text))
    components: dict[str, float] = {}
    result = f"reply sent on {ticket.id} ({len(text)} chars)"
    truth = ticket.truth.reply
    if truth is not None:
        grade = grade_reply(progress.replies, truth, ticket.customer.plan, desk.kb)
        gain = reply_reward(progress.best_reply_score, grade)
        progress.best_reply_score = max(progress.best_reply_score, grade.score)
        if gain > 0:
            components["reply"] = round(gain, 4)
        if grade.wrong or grade.forbidden:
            components.update(_pay(progress, "wrong_facts", PENALTY_WRONG_FACTS))
        if ticket.clarification and "clarification" not in progress.looked_up and asks_for(ticket.clarification, text):
            answer = ticket.clarification.answer
            progress.looked_up.add("clarification")  # what the customer said counts as evidence for the operation
        else:
            answer = follow_up(ticket, text, bool(grade.missing), turn=len(progress.replies), seed=desk.spec.seed, judging=not desk.sparse)
        if answer:
            progress.thread.append(ThreadMessage(author="customer", text=answer))
            result += "; the customer answered in the thread"
    return result, components


def escalate_ticket(desk: Desk, action: SupportAction) -> Outcome:
    ticket, progress = _target(desk, action)
    reason = _required_text(action.reason, "reason", MAX_REASON_CHARS)
    if progress.escalated:
        raise InvalidAction(f"ticket {ticket.id} is already escalated")
    progress.escalated = True
    progress.escalation_reason = reason
    name, value = escalation_reward(ticket.truth)
    return f"escalated {ticket.id} to the on-call team", _pay(progress, name, value)


def close_ticket(desk: Desk, action: SupportAction) -> Outcome:
    ticket, progress = _target(desk, action)
    if not progress.handled:
        raise InvalidAction(f"ticket {ticket.id} has not been handled: classify, reply to or escalate it before closing")
    if action.resolution is not None and action.resolution not in RESOLUTIONS:
        raise InvalidAction(f"resolution {quote(action.resolution)} is not one of {', '.join(RESOLUTIONS)}")
    progress.resolution = action.resolution
    progress.closed = True
    desk.index += 1
    desk.search_results = []
    desk.records = {}
    nxt = desk.current
    if nxt is not None:
        desk.progress.append(TicketProgress(nxt.id))
        return f"closed {ticket.id}; next ticket {nxt.id}", {}
    return f"closed {ticket.id}; the queue is empty", {}


def lookup_record(desk: Desk, action: SupportAction) -> Outcome:
    ticket, progress = _target(desk, action)
    account = _account_of(ticket)
    record = _required_text(action.record, "record", 50)
    if action.account_id is not None and action.account_id != account:
        raise InvalidAction(f"you may only look up the records of this ticket's customer ({account})")
    data = _world_call(desk.world.lookup, account, record)
    desk.records[record] = data
    progress.looked_up.add(record)
    rows = f"{len(data)} rows" if isinstance(data, list) else "1 record"
    return f"looked up {record} of {account} ({rows})", {}


def issue_refund(desk: Desk, action: SupportAction) -> Outcome:
    invoice = _required_text(action.invoice_id, "invoice_id", 64)
    amount = action.amount
    if amount is None or not 0 < amount <= MAX_REFUND_DOLLARS or round(amount * 100) != round(amount * 100, 6):
        raise InvalidAction(
            f"amount is required: a positive number of US dollars up to {MAX_REFUND_DOLLARS:,} with at most 2 decimals"
        )
    return _write(desk, action, lambda account: desk.world.issue_refund(account, invoice, round(amount * 100)))


def revoke_api_key(desk: Desk, action: SupportAction) -> Outcome:
    key = _required_text(action.key_id, "key_id", 64)
    return _write(desk, action, lambda account: desk.world.revoke_api_key(account, key))


def lock_account(desk: Desk, action: SupportAction) -> Outcome:
    return _write(desk, action, desk.world.lock_account)


def send_replacement(desk: Desk, action: SupportAction) -> Outcome:
    order = _required_text(action.order_id, "order_id", 64)
    return _write(desk, action, lambda account: desk.world.send_replacement(account, order))


HANDLERS: dict[str, Callable[[Desk, SupportAction], Outcome]] = {
    "classify_ticket": classify_ticket,
    "search_kb": search_kb,
    "reply_ticket": reply_ticket,
    "escalate_ticket": escalate_ticket,
    "close_ticket": close_ticket,
    "lookup_record": lookup_record,
    "issue_refund": issue_refund,
    "revoke_api_key": revoke_api_key,
    "lock_account": lock_account,
    "send_replacement": send_replacement,
}
assert tuple(HANDLERS) == ACTION_TYPES


def perform(desk: Desk, action: SupportAction) -> Outcome:
    """Run the action's handler; an unknown action type is an invalid action."""
    handler = HANDLERS.get(action.action_type)
    if handler is None:
        raise InvalidAction(f"unknown action_type {quote(action.action_type)}; valid: {', '.join(ACTION_TYPES)}")
    return handler(desk, action)


# --- shared by the handlers ------------------------------------------------------


def _write(desk: Desk, action: SupportAction, operation: Callable[[str], Write]) -> Outcome:
    """Run an account operation for the current ticket's customer. What cannot happen is refused
    (an invalid action); what policy forbids happens, and costs like an operation the case does
    not need, every time, whatever its target: the grade then zeroes the case."""
    ticket, progress = _target(desk, action)
    write = _world_call(operation, _account_of(ticket))
    progress.writes.append(write)
    progress.write_evidence.append(frozenset(progress.looked_up))
    if write.breach:
        return f"done: {write.describe()}", {"policy_breach": PENALTY_POLICY_BREACH}
    if not is_expected_write(ticket.truth, write):
        return f"done: {write.describe()}", {"unexpected_write": PENALTY_UNEXPECTED_WRITE}
    if not set(ticket.truth.evidence) <= progress.looked_up:
        return f"done: {write.describe()}", {}  # right, but a guess: no credit without the evidence
    paid = _pay(progress, f"outcome {write.describe()}", REWARD_OUTCOME)
    return f"done: {write.describe()}", {"outcome": v for v in paid.values()}


def _account_of(ticket: TicketSpec) -> str:
    if ticket.customer.account_id is None:
        raise InvalidAction(f"ticket {ticket.id} has no account records in this task")
    return ticket.customer.account_id


def _world_call(operation: Callable[..., Any], *args: Any) -> Any:
    try:
        return operation(*args)
    except Impossible as exc:
        raise InvalidAction(f"refused: {exc}") from exc


def _target(desk: Desk, action: SupportAction) -> tuple[TicketSpec, TicketProgress]:
    """The current ticket, if the action names it."""
    ticket = desk.spec.tickets[desk.index]
    if not action.ticket_id:
        raise InvalidAction(f"{action.action_type} needs ticket_id (the current ticket is {ticket.id})")
    if action.ticket_id != ticket.id:
        raise InvalidAction(f"ticket {quote(action.ticket_id)} is not the current ticket ({ticket.id}); work the queue in order")
    return ticket, desk.progress[-1]


def _pay(progress: TicketProgress, item: str, value: float) -> dict[str, float]:
    """A rubric item's reward, paid at most once per ticket."""
    if value == 0 or item in progress.paid:
        return {}
    progress.paid.add(item)
    return {item: value}


def _required_text(value: Optional[str], field: str, limit: int) -> str:
    if value is None or not value.strip():
        raise InvalidAction(f"{field} is required and must not be empty")
    if len(value) > limit:
        raise InvalidAction(f"{field} is {len(value)} characters; the limit is {limit}")
    return value.strip()


def quote(value: str) -> str:
    """A client's value, quoted in an error message, cut to a readable length."""
    return repr(value[:QUOTE_CHARS] + "...") if len(value) > QUOTE_CHARS else repr(value)


# --- the history log ---------------------------------------------------------------

_NOT_RENDERED = frozenset({"metadata", "action_type", "reason"})


def render(action: SupportAction, not_unicode: str | None) -> str:
    """A one-line rendering of an action for the history log: its values in field order, text that
    is not Unicode escaped so the log can always be encoded. `not_unicode` names the action's first
    field that is not Unicode text, if any."""
    if not_unicode is not None:
        readable = action.model_copy(update={
            name: escaped(value)
            for name, value in action.model_dump(exclude={"metadata"}).items() if isinstance(value, str)
        })
        return render(readable, None)  # escaped text is Unicode
    # The set fields in field order, as action.model_dump(exclude_none=True, exclude=_NOT_RENDERED)
    # lists them: every field is a str or a float, dumped as itself.
    fields = ((name, value) for name, value in action.__dict__.items() if value is not None and name not in _NOT_RENDERED)
    values = []
    for name, value in fields:
        if name == "reply_text":
            values.append(f"{len(value)} chars")
        elif name == "query":
            values.append(quote(value))
        else:
            values.append(str(value)[:60])
    return f"{action.action_type[:40]}({', '.join(values)})"
