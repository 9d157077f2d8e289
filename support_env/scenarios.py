"""Task catalogue: turns a task id (and seed) into an episode spec.

The spec carries each ticket's hidden truth. It lives on the server only;
observations are built from `TicketSpec.view()`, which has no truth in it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .models import Customer, TicketView

TASKS_DIR = Path(__file__).parent / "data" / "tasks"
TASK_IDS = ("easy_classify", "medium_kb_reply", "hard_mixed_queue")
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
    lists promises the reply must not make."""

    article: str
    required: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    forbidden: tuple[ForbiddenClaim, ...] = ()


@dataclass(frozen=True)
class TicketTruth:
    kind: str  # routine | noise | critical
    category: str | None  # None for noise: any category is accepted
    reply: ReplyTruth | None
    escalate: bool


@dataclass(frozen=True)
class TicketSpec:
    id: str
    subject: str
    body: str
    customer: Customer
    priority: str
    truth: TicketTruth

    def view(self) -> TicketView:
        return TicketView(id=self.id, subject=self.subject, body=self.body, customer=self.customer, priority=self.priority)


@dataclass(frozen=True)
class EpisodeSpec:
    task_id: str
    difficulty: str
    objective: str
    seed: int | None
    tickets: tuple[TicketSpec, ...]


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
            )
            if reply
            else None,
            escalate=bool(t["escalate"]),
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
    )


def build_episode(task_id: str | None = None, seed: int | None = None) -> EpisodeSpec:
    """The episode for `task_id`: canonical order without a seed, a seeded
    permutation of the queue with one (same seed, same order, any process)."""
    spec = canonical_task(task_id or DEFAULT_TASK_ID) if isinstance(task_id, (str, type(None))) else None
    if spec is None:
        raise UnknownTaskError(task_id)
    if seed is None:
        return spec
    tickets = list(spec.tickets)
    random.Random(f"{spec.task_id}:{seed}").shuffle(tickets)
    return EpisodeSpec(spec.task_id, spec.difficulty, spec.objective, seed, tuple(tickets))
