"""Episode specs: the tickets of an episode with their hidden truth.

A spec lives on the server only; observations are built from
`TicketSpec.view()`, which has no truth in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.facts import Fact
from ..models import Customer, ThreadMessage, TicketView


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
