"""Episode specs: the tickets of an episode with their hidden truth.

A spec lives on the server only; observations are built from
`TicketSpec.view()`, which has no truth in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.facts import Fact, make_fact
from ..models import Customer, ThreadMessage, TicketView


# Facts of one case (not of the policy) a reply must state: their names and cue words.
# A cue written "-created" rules the fact out where it stands (as in KB front matter): the date a key
# was created is not its expiry date, the date of the charge is not the end of the refund window.
TICKET_FACTS = {
    "refund_amount": ("amount refunded", [
        "refund", "refunded", "amount", "duplicate", "back", "return", "returned", "credit", "credited",
        "-you paid", "-you've paid", "-you have paid", "-actually paid", "-net cost", "-real cost", "-left to pay",  # paid, not returned
    ]),
    # What is left of an invoice after a partial refund: the net amount paid.
    "amount_left": ("amount left to pay", [
        "left", "remaining", "remains", "remain", "net", "still", "balance", "rest", "leaves", "leaving", "outstanding",
        "in the end", "after the refund", "you paid", "you pay", "total paid",
        "cost", "costs", "net cost", "real cost", "effective cost", "actually paid", "comes to", "works out",
    ]),
    # The date an API key expires.
    "expiry_date": ("key expiry date", [
        "expire", "expires", "expired", "expiring", "expiry", "expiration", "valid until", "valid through", "good until",
        "stops working", "stop working", "lifetime ends", "runs out", "last day", "until", "through",
        "left", "remaining", "still have", "to go",  # "expires in 50 days", "50 days left", where `also` has them
        "-created", "-creation", "-generated", "-issued", "-made", "-today", "-now",
    ]),
    # The last date a refund can be requested.
    "window_end": ("last day to request a refund", [
        "until", "last day", "deadline", "by", "closes", "close", "window ends", "ends", "no later than", "latest", "before",
        "through", "cut-off", "cutoff", "left", "remaining", "still have", "to go",
        "-charged", "-billed", "-paid", "-renewed", "-today", "-now",
    ]),
    # Days left in a window.
    "days_left": ("days left", [
        "left", "remaining", "remain", "remains", "still have", "still got", "more days", "days left", "to go", "another",
    ]),
    # The customer's measured peak request rate.
    "peak_rate": ("measured peak rate", [
        "peak", "peaked", "peaks", "highest", "measured", "maximum", "max", "you sent", "you were sending", "your traffic",
        "reached", "hit", "hitting", "spike", "spiked", "burst", "bursts", "topped", "logs show", "we saw", "we see",
        "busiest", "busiest minute", "top rate",
    ]),
    # Money held by a pending card authorisation.
    "authorised_amount": ("amount on hold", [
        "hold", "held", "pending", "authorisation", "authorization", "authorised", "authorized", "temporary", "drop off",
        "drops off", "released", "release", "falls off", "disappear", "disappears", "preauthorisation", "pre-authorisation",
    ]),
}


def ticket_fact(key: str, value: str, synonyms: list[str] | None = None) -> Fact:
    """A fact of this ticket's case (the amount refunded, say), named and cued like a KB fact."""
    label, about = TICKET_FACTS[key]
    return make_fact(key, value, synonyms=synonyms, label=label, about=about)


@dataclass(frozen=True)
class ForbiddenClaim:
    """Something a reply on this ticket must not do: commit to one of the forbidden `acts` (ids in
    `domain/data/acts.yaml`; `about` adds objects of this ticket's own, such as the month the refund
    window no longer covers), or state any of the record values in `disclose`."""

    claim: str
    acts: tuple[str, ...] = ()
    disclose: tuple[str, ...] = ()
    about: tuple[str, ...] = ()

    @classmethod
    def from_data(cls, raw: dict) -> "ForbiddenClaim":
        """As the data files write it: {claim, acts: [...], about?: [...]} or {claim, disclose: [...]}."""
        return cls(raw["claim"], tuple(raw.get("acts", ())), tuple(raw.get("disclose", ())), tuple(raw.get("about", ())))


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
class Clarification:
    """Information the ticket leaves out and only the customer can give (which order, which key).
    The simulated customer gives `answer` to a reply that asks a question naming one of `asks`;
    the right operation comes after that answer."""

    asks: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class TicketSpec:
    id: str
    subject: str
    body: str
    customer: Customer
    priority: str
    truth: TicketTruth
    source: str | None = None  # template id of a generated ticket; None for canonical ones
    created_at: str | None = None  # ISO 8601; `catalogue.dated` fills it for tickets that have none
    clarification: Clarification | None = None
    family: str | None = None  # the reasoning family of a case ticket (see episodes/cases.py), if any

    def view(self, thread: list[ThreadMessage] | None = None) -> TicketView:
        return TicketView(
            id=self.id, subject=self.subject, body=self.body, customer=self.customer, priority=self.priority,
            created_at=self.created_at, thread=thread or [],
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
    today: str = ""  # ISO date of the episode's world; `catalogue.dated` fills it
