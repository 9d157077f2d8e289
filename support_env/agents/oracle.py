"""The truth-reading oracle: plays every ticket exactly as its hidden truth says.

Not an agent: it reads the episode spec, which no agent can see. It is the proof
that every ticket can score 1.0 (each reasoning family on every seed), and the
top line the audit measures other policies against.
"""

from __future__ import annotations

from ..domain.kb import KnowledgeBase, default_kb
from ..episodes.spec import EpisodeSpec, ExpectedWrite, TicketSpec
from ..grading.reply import required_facts
from ..models import SupportAction, SupportObservation


class TruthOracle:
    """Plays from `spec` (the episode's truth): classify, look up the evidence, ask for what the
    ticket leaves out, do exactly the expected operations, escalate emergencies, reply with every
    required fact, close with the expected resolution."""

    name = "oracle"

    def __init__(self, spec: EpisodeSpec, kb: KnowledgeBase | None = None):
        self.spec = spec
        self.kb = kb or default_kb()
        self._ticket: str | None = None
        self._done: set[int] = set()

    def act(self, observation: SupportObservation) -> SupportAction:
        view = observation.current_ticket
        if view.id != self._ticket:
            self._ticket, self._done = view.id, set()
        ticket = next(t for t in self.spec.tickets if t.id == view.id)
        answered = any(m.author == "customer" for m in view.thread)
        for index, step in enumerate(self._plan(ticket, answered)):
            if step is None:  # wait for the customer's answer: nothing else to do first
                break
            if index not in self._done:
                self._done.add(index)
                return step
        return SupportAction(action_type="close_ticket", ticket_id=ticket.id, resolution=ticket.truth.resolution or _resolution(ticket))

    def _plan(self, ticket: TicketSpec, answered: bool) -> list[SupportAction | None]:
        truth, tid = ticket.truth, ticket.id
        steps: list[SupportAction | None] = [SupportAction(action_type="classify_ticket", ticket_id=tid, category=truth.category or "technical")]
        steps += [SupportAction(action_type="lookup_record", ticket_id=tid, record=r) for r in truth.evidence if r != "clarification"]
        if ticket.clarification is not None:
            steps.append(SupportAction(action_type="reply_ticket", ticket_id=tid,
                                       reply_text=f"Before we act: which {ticket.clarification.asks[0]} do you mean?"))
            if not answered:
                steps.append(None)
        steps += [_write(tid, w) for w in truth.outcome or ()]
        if truth.escalate:
            steps.append(SupportAction(action_type="escalate_ticket", ticket_id=tid, reason="Emergency, per the ticket and its records."))
        if truth.reply is not None:
            steps.append(SupportAction(action_type="search_kb", query=self.kb.articles[truth.reply.article].title))
            steps.append(SupportAction(action_type="reply_ticket", ticket_id=tid, reply_text=self._reply(ticket)))
        return steps

    def _reply(self, ticket: TicketSpec) -> str:
        reply = ticket.truth.reply
        lines = [f"- {fact.name[0].upper() + fact.name[1:]}: {fact.value}." for fact in required_facts(reply, ticket.customer.plan, self.kb)]
        return "Hello,\n\nHere is what applies to your request:\n" + "\n".join(lines) + "\n\nStackwell Support"


def _write(ticket_id: str, write: ExpectedWrite) -> SupportAction:
    if write.operation == "refund":
        return SupportAction(action_type="issue_refund", ticket_id=ticket_id, invoice_id=write.target, amount=write.amount_cents / 100)
    if write.operation == "revoke_key":
        return SupportAction(action_type="revoke_api_key", ticket_id=ticket_id, key_id=write.target)
    if write.operation == "lock_account":
        return SupportAction(action_type="lock_account", ticket_id=ticket_id)
    return SupportAction(action_type="send_replacement", ticket_id=ticket_id, order_id=write.target)


def _resolution(ticket: TicketSpec) -> str:
    if ticket.truth.escalate:
        return "escalated"
    if ticket.truth.kind == "noise":
        return "no_action_needed"
    return "resolved"
