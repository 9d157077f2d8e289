"""What the agent has done to each ticket: the record the graders read.

The environment appends to it; grading only reads it. Keeping the record
separate from the truth is what lets a grade be replayed from a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import ThreadMessage, TicketProgressView
from ..domain.world import Write


@dataclass(frozen=True)
class SentReply:
    """A reply and the articles that had been retrieved on its ticket when it was sent.

    `parsed` is the grader's memo, not part of the record: the claims this
    reply makes, read once (keyed by the scope they were read against), so
    grading the ticket again at every later reply and at the end of the
    episode reads no reply twice. See `grading.reply.grade_reply`.
    """

    text: str
    retrieved_before: frozenset[str]
    parsed: dict[int, tuple] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class TicketProgress:
    ticket_id: str
    classified_as: str | None = None
    retrieved: set[str] = field(default_factory=set)
    replies: list[SentReply] = field(default_factory=list)
    thread: list[ThreadMessage] = field(default_factory=list)  # replies and the customer's answers
    escalated: bool = False
    escalation_reason: str | None = None
    looked_up: set[str] = field(default_factory=set)  # records looked up on this ticket
    writes: list[Write] = field(default_factory=list)  # account operations performed on this ticket
    write_evidence: list[frozenset[str]] = field(default_factory=list)  # records looked up before each write
    resolution: str | None = None
    closed: bool = False
    paid: set[str] = field(default_factory=set)  # rubric items already rewarded
    best_reply_score: float = 0.0

    @property
    def handled(self) -> bool:
        """A ticket may be closed once the agent has classified, answered, escalated or acted on it."""
        return self.classified_as is not None or bool(self.replies) or self.escalated or bool(self.writes)

    def view(self) -> TicketProgressView:
        return TicketProgressView(
            ticket_id=self.ticket_id,
            classified_as=self.classified_as,
            replies=len(self.replies),
            escalated=self.escalated,
            writes=[w.describe() for w in self.writes],
            resolution=self.resolution,
            closed=self.closed,
        )
