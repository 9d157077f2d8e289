"""Ticket and episode grades: pure, deterministic functions from (truth, what
the agent did) to scores. No LLM judges anything.

- Missing a critical escalation zeroes that ticket; escalating a routine one
  zeroes it too: escalating everything cannot pay.
- Case tickets are graded on the end state of the world: the operations the
  case needs, done after looking up the records that justify them, less a
  cost for every operation it did not need. A case with no needed operation
  done on evidence is unresolved and scores 0, so guessing or doing every
  write one can scores nothing.
- The console refuses only the impossible: an operation policy forbids (a
  refund outside its window, a second replacement) happens, its `Write`
  names the rule, and any such breach zeroes the case's outcome, so the case
  scores 0 and the note names the rule.
- A case that needs no operation ("explain, don't act") is resolved only by
  a decision on evidence: its records looked up on the ticket, and nothing
  written.
"""

from __future__ import annotations

from typing import Sequence

from ..domain.kb import KnowledgeBase
from ..domain.world import Write
from ..episodes.spec import EpisodeSpec, ExpectedWrite, TicketSpec, TicketTruth
from ..models import Grade, TicketGrade
from .progress import TicketProgress
from .reply import grade_reply, required_facts

# Component weights inside a ticket's score.
WEIGHT_CLASSIFICATION = 1.0
WEIGHT_REPLY = 3.0
WEIGHT_ESCALATION = 2.0
WEIGHT_NO_REPLY = 1.0
WEIGHT_OUTCOME = 4.0
WEIGHT_EVIDENCE = 1.0
WEIGHT_RESOLUTION = 1.0
# Each unexpected write takes this share off the outcome component.
UNEXPECTED_WRITE_COST = 0.5
UNCLOSED_FACTOR = 0.5
SUCCESS_THRESHOLD = 0.8
# An evidence name that is no record: the customer's answer to the agent's clarifying question.
CLARIFICATION = "clarification"


def grade_ticket(ticket: TicketSpec, progress: TicketProgress, kb: KnowledgeBase) -> TicketGrade:
    truth = ticket.truth
    components: dict[str, float] = {}
    weights: dict[str, float] = {}
    notes: list[str] = []

    if truth.category is not None:
        weights["classification"] = WEIGHT_CLASSIFICATION
        components["classification"] = 1.0 if progress.classified_as == truth.category else 0.0
        if progress.classified_as is None:
            notes.append("not classified")
        elif progress.classified_as != truth.category:
            notes.append(f"classified as {progress.classified_as}, expected {truth.category}")
    if truth.reply is not None:
        reply = grade_reply(progress.replies, truth.reply, ticket.customer.plan, kb)
        weights["reply"] = WEIGHT_REPLY
        components["reply"] = reply.score
        if not progress.replies:
            notes.append("needed a reply; none was sent")
        else:
            notes += reply.notes(required_facts(truth.reply, ticket.customer.plan, kb))
    if truth.kind == "noise":
        weights["no_reply"] = WEIGHT_NO_REPLY
        components["no_reply"] = 0.0 if progress.replies else 1.0
        if progress.replies:
            notes.append("replied to a message that needed no reply")
    if truth.escalate:
        weights["escalation"] = WEIGHT_ESCALATION
        components["escalation"] = 1.0 if progress.escalated else 0.0
    if truth.outcome is not None:
        outcome, outcome_notes = grade_outcome(
            truth.outcome, truth.evidence, progress.writes, progress.write_evidence, frozenset(progress.looked_up)
        )
        weights["outcome"], components["outcome"] = WEIGHT_OUTCOME, outcome
        notes += outcome_notes
        looked = progress.write_evidence[0] if progress.writes else frozenset(progress.looked_up)
        missing_evidence = [r for r in truth.evidence if r not in looked]
        weights["evidence"] = WEIGHT_EVIDENCE
        components["evidence"] = 1.0 - len(missing_evidence) / len(truth.evidence) if truth.evidence else 1.0
        if truth.outcome or progress.writes:  # a case that needs no write says what it missed in its outcome note
            notes += [
                "acted before the customer said which one" if r == CLARIFICATION else f"did not look up {r} before acting"
                for r in missing_evidence
            ]
    if truth.resolution is not None:
        weights["resolution"] = WEIGHT_RESOLUTION
        components["resolution"] = 1.0 if progress.resolution == truth.resolution else 0.0
        if progress.resolution != truth.resolution:
            notes.append(f"closed with resolution {progress.resolution}, expected {truth.resolution}")

    score = sum(weights[k] * components[k] for k in weights) / sum(weights.values()) if weights else 1.0
    if not progress.handled:
        score = 0.0
        notes.append("never handled")
    elif truth.escalate and not progress.escalated:
        score = 0.0
        notes.append("critical ticket was not escalated: the ticket scores 0")
    elif progress.escalated and not truth.escalate:
        score = 0.0
        notes.append("escalated a ticket that was not an emergency: the ticket scores 0")
    elif truth.outcome is not None and components["outcome"] == 0.0:
        score = 0.0
        if any(w.breach for w in progress.writes):
            notes.append("an operation broke policy: the ticket scores 0")
        elif not truth.outcome:
            notes.append("the case was not resolved (no decision on evidence, or an operation it did not need): the ticket scores 0")
        else:
            notes.append("the case was not resolved (no needed operation done on evidence): the ticket scores 0")
    elif not progress.closed:
        score *= UNCLOSED_FACTOR
        notes.append(f"not closed: score x{UNCLOSED_FACTOR}")
    return TicketGrade(
        ticket_id=ticket.id, score=round(score, 4), components=components, weights=weights, notes=notes
    )


def is_expected_write(truth: TicketTruth, write: Write) -> bool:
    return any(
        (e.operation, e.target, e.amount_cents) == (write.operation, write.target, write.amount_cents) for e in truth.outcome or ()
    )


def grade_outcome(
    expected: Sequence[ExpectedWrite],
    evidence: Sequence[str],
    writes: Sequence[Write],
    write_evidence: Sequence[frozenset[str]],
    looked_up: frozenset[str] = frozenset(),
) -> tuple[float, list[str]]:
    """Compare the end state with the expected one: the share of needed
    operations done on evidence (the justifying records looked up first), less
    a cost for every operation the case did not need. Any operation that broke
    policy zeroes it. A case that needs no operation scores 1 only for a
    decision on evidence: every evidence record looked up (`looked_up`, on the
    ticket) and nothing written."""
    breaches = [f"broke policy: {w.describe()}: {w.breach}" for w in writes if w.breach]
    if not expected:
        if writes:
            return 0.0, breaches + [f"no account operation was needed: {w.describe()}" for w in writes if not w.breach]
        missing = [r for r in evidence if r not in looked_up]
        if missing:
            return 0.0, [f"closed {_before(missing, 'without looking up')}: no decision on evidence"]
        return 1.0, []
    wanted = {(e.operation, e.target, e.amount_cents) for e in expected}
    done: set[tuple[str, str, int]] = set()
    guessed: dict[tuple[str, str, int], list[str]] = {}  # a write done before its evidence -> the evidence it lacked
    for write, looked in zip(writes, write_evidence):
        key = (write.operation, write.target, write.amount_cents)
        missing = [r for r in evidence if r not in looked]
        if missing:
            guessed.setdefault(key, missing)
        else:
            done.add(key)
    notes = breaches
    notes += [f"{Write(*e).describe()} was done {_before(guessed[e], 'before looking up')}: no credit" for e in sorted((set(guessed) - done) & wanted)]
    notes += [f"expected {Write(*e).describe()}: not done" for e in sorted(wanted - done - set(guessed))]
    unexpected = [w for w in writes if (w.operation, w.target, w.amount_cents) not in wanted]
    notes += [f"unexpected write: {w.describe()}" for w in unexpected if not w.breach]
    if breaches:
        return 0.0, notes
    share = len(wanted & done) / len(wanted) if wanted else 1.0
    return max(0.0, share - UNEXPECTED_WRITE_COST * len(unexpected)), notes


def _before(missing: Sequence[str], looking: str) -> str:
    """"before looking up invoices", "without looking up invoices", "before the customer said which one"..."""
    records = [r for r in missing if r != CLARIFICATION]
    parts = [f"{looking} {', '.join(records)}"] if records else []
    if CLARIFICATION in missing:
        parts.append("before the customer said which one")
    return " and ".join(parts)


def grade_episode(
    spec: EpisodeSpec, progress: Sequence[TicketProgress], kb: KnowledgeBase, failed: bool = False
) -> Grade:
    """Mean ticket score over the whole queue; tickets never reached score 0.

    An episode that failed on the invalid-action limit scores 0: the limit is
    a cliff, not a toll. Its ticket breakdown is still reported.
    """
    by_id = {p.ticket_id: p for p in progress}
    tickets = [grade_ticket(t, by_id.get(t.id) or TicketProgress(t.id), kb) for t in spec.tickets]
    score = round(sum(t.score for t in tickets) / len(tickets), 4) if tickets and not failed else 0.0
    critical = {t.id for t in spec.tickets if t.truth.escalate}
    escalated = {p.ticket_id for p in progress if p.escalated}
    precision = len(critical & escalated) / len(escalated) if escalated else 1.0
    recall = len(critical & escalated) / len(critical) if critical else 1.0
    return Grade(
        score=score,
        success=(not failed) and score >= SUCCESS_THRESHOLD and recall == 1.0,
        failed=failed,
        escalation_precision=round(precision, 4),
        escalation_recall=round(recall, 4),
        tickets=tickets,
    )
