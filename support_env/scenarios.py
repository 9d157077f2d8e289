"""Task catalogue: turns a task id (and seed) into an episode spec.

The spec carries each ticket's hidden truth. It lives on the server only;
observations are built from `TicketSpec.view()`, which has no truth in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .facts import Fact, make_fact
from .models import Customer, ThreadMessage, TicketView

TASKS_DIR = Path(__file__).parent / "data" / "tasks"
QUEUE_TASKS = ("easy_classify", "medium_kb_reply", "hard_mixed_queue")
CASE_TASKS = ("duplicate_charge_refund", "account_takeover_fraud", "damaged_item_replacement")
TASK_IDS = QUEUE_TASKS + CASE_TASKS
DEFAULT_TASK_ID = "easy_classify"


class UnknownTaskError(ValueError):
    """Raised for a task id that is not in the catalogue; the message lists the valid ones."""

    def __init__(self, task_id: object):
        super().__init__(f"unknown task_id {task_id!r}; valid task ids: {', '.join(TASK_IDS)}")


@dataclass(frozen=True)
class ForbiddenClaim:
    """A promise policy forbids on this ticket, recognised by its phrasings."""

    claim: str
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class ReplyTruth:
    """The article that answers a ticket and the fact keys a reply must state.
    `allowed` names extra facts ("ARTICLE:key") a reply may state; `forbidden`
    lists promises the reply must not make; `ticket_facts` are facts of this
    case a reply must state too (the amount refunded, say)."""

    article: str
    required: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    forbidden: tuple[ForbiddenClaim, ...] = ()
    ticket_facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class ExpectedWrite:
    """An operation the case needs, as `world.Write` records it."""

    operation: str
    target: str
    amount_cents: int = 0


@dataclass(frozen=True)
class TicketTruth:
    kind: str  # routine | noise | critical
    category: str | None  # None for noise: any category is accepted
    reply: ReplyTruth | None
    escalate: bool
    # Case-resolution tickets only: the expected end state and how to reach it.
    outcome: tuple[ExpectedWrite, ...] | None = None
    resolution: str | None = None
    evidence: tuple[str, ...] = ()  # records to look up before the first write


@dataclass(frozen=True)
class TicketSpec:
    id: str
    subject: str
    body: str
    customer: Customer
    priority: str
    truth: TicketTruth
    source: str | None = None  # template id of a generated ticket; None for canonical ones

    def view(self, thread: list[ThreadMessage] | None = None) -> TicketView:
        return TicketView(
            id=self.id, subject=self.subject, body=self.body, customer=self.customer, priority=self.priority, thread=thread or []
        )


@dataclass(frozen=True)
class EpisodeSpec:
    task_id: str
    difficulty: str
    objective: str
    seed: int | None
    tickets: tuple[TicketSpec, ...]
    split: str | None = None  # None for the canonical episode
    world: str | None = None  # the world file behind the tickets, if any
    records: str | None = None  # generated world records (JSON) behind the case tickets of a seeded queue


def _ticket(raw: dict) -> TicketSpec:
    t = raw["truth"]
    reply = t.get("reply")
    return TicketSpec(
        id=raw["id"],
        subject=raw["subject"],
        body=raw["body"],
        customer=Customer(**raw["customer"]),
        priority=raw["priority"],
        truth=TicketTruth(
            kind=t["kind"],
            category=t.get("category"),
            reply=ReplyTruth(
                reply["article"],
                tuple(reply["required"]),
                tuple(reply.get("allowed", ())),
                tuple(ForbiddenClaim(f["claim"], tuple(f["phrases"])) for f in reply.get("forbidden", ())),
                tuple(make_fact(f["key"], f["value"], synonyms=f.get("synonyms")) for f in reply.get("ticket_facts", ())),
            )
            if reply
            else None,
            escalate=bool(t["escalate"]),
            outcome=tuple(ExpectedWrite(**w) for w in t["outcome"]) if "outcome" in t else None,
            resolution=t.get("resolution"),
            evidence=tuple(t.get("evidence", ())),
        ),
    )


@lru_cache(maxsize=None)
def canonical_task(task_id: str) -> EpisodeSpec:
    """The task exactly as written in its data file."""
    if task_id not in TASK_IDS:
        raise UnknownTaskError(task_id)
    raw = json.loads((TASKS_DIR / f"{task_id}.json").read_text(encoding="utf-8"))
    return EpisodeSpec(
        task_id=raw["task_id"],
        difficulty=raw["difficulty"],
        objective=raw["objective"],
        seed=None,
        tickets=tuple(_ticket(t) for t in raw["tickets"]),
        world=raw.get("world"),
    )


def build_episode(
    task_id: str | None = None, seed: int | None = None, split: str | None = None, queue_length: int | None = None
) -> EpisodeSpec:
    """The episode for `task_id`: the canonical queue without a seed, a queue
    generated from the `split`'s templates with one (same arguments, same
    episode, in any process)."""
    if not isinstance(task_id, (str, type(None))):
        raise UnknownTaskError(task_id)
    spec = canonical_task(task_id or DEFAULT_TASK_ID)
    if seed is None:
        if split is not None or queue_length is not None:
            raise ValueError("split and queue_length apply to generated episodes: pass a seed too")
        return spec
    if spec.task_id not in QUEUE_TASKS:
        raise ValueError(f"{spec.task_id} has no generated variants; omit the seed (generated tasks: {', '.join(QUEUE_TASKS)})")
    from .generator import generate_episode  # the generator builds on the types above

    return generate_episode(spec, seed, split or "train", queue_length)
