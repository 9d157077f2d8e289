"""Graders: pure, deterministic functions from (truth, what the agent did) to
scores. No LLM judges anything, and nothing here touches the web layer.

Design rules, each closing an exploit:
- A reply earns only the required facts it states, and loses for every
  amount it states that is not true for this customer (other plans' limits,
  archived policies, invented numbers) and for excessive length: pasting
  articles costs more than it earns.
- A reply counts only if the article holding its facts was retrieved on that
  ticket before it was sent (grounding).
- Missing a critical escalation zeroes that ticket; escalating a routine one
  zeroes it too: escalating everything cannot pay.
- Step rewards for a rubric item are paid once per ticket, the same action
  repeated again and again costs a little, and the final grade is added on
  the last step, so loops earn nothing.
- A reply that promises what policy forbids (reissuing a past invoice,
  restoring access before identity checks) loses credit like a wrong value.
- Case tickets are graded on the end state of the world: the operations the
  case needs, done after looking up the records that justify them, less a
  cost for every operation it did not need. A case with no needed operation
  done on evidence is unresolved and scores 0, so guessing or doing every
  write one can scores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .facts import Fact, Quantity, claims, extract_quantities, normalise_text
from .kb import KnowledgeBase
from .models import Grade, TicketGrade
from .progress import SentReply, TicketProgress
from .scenarios import EpisodeSpec, ExpectedWrite, ReplyTruth, TicketSpec, TicketTruth
from .world import Write

# Step rewards (shaping); each rubric item pays once per ticket.
REWARD_CLASSIFICATION = 0.1
REWARD_KB_SEARCH = 0.1
REWARD_REPLY = 0.2
REWARD_ESCALATION = 0.2
PENALTY_FALSE_ESCALATION = -0.2
PENALTY_WRONG_FACTS = -0.1
PENALTY_INVALID_ACTION = -0.2
REWARD_OUTCOME = 0.2  # an account operation the case needs (once each)
PENALTY_UNEXPECTED_WRITE = -0.2  # an account operation the case does not need (every time)

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

# Each stated amount that is not true for the customer, and each forbidden
# promise, takes this share off the reply.
WRONG_FACT_COST = 0.5
# The third identical action in a row, and every one after it, costs this much.
PENALTY_REPETITION = -0.05
REPEATS_ALLOWED = 2
# Replies up to this many characters (summed over the ticket) are not penalised;
# credit falls linearly to zero at REPLY_LENGTH_ZERO.
REPLY_LENGTH_FREE = 1200
REPLY_LENGTH_ZERO = 3000
UNCLOSED_FACTOR = 0.5
SUCCESS_THRESHOLD = 0.8


@dataclass(frozen=True)
class ReplyGrade:
    score: float
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    wrong: tuple[str, ...]
    forbidden: tuple[str, ...]
    grounded: bool
    length: int

    def notes(self, required: Sequence[Fact]) -> list[str]:
        by_key = {f.key: f for f in required}
        notes = []
        if not self.grounded:
            notes.append("no reply was grounded: the answering article was not retrieved on this ticket before replying")
        notes += [f"required fact {k} ({by_key[k].value}) not stated in a grounded reply" for k in self.missing]
        notes += [f"stated {w!r}, which is not true for this customer" for w in self.wrong]
        notes += [f"promised what policy forbids: {claim}" for claim in self.forbidden]
        if self.length > REPLY_LENGTH_FREE:
            notes.append(f"replies total {self.length} characters; credit falls beyond {REPLY_LENGTH_FREE}")
        return notes


def required_facts(truth: ReplyTruth, plan: str, kb: KnowledgeBase) -> tuple[Fact, ...]:
    article = kb.articles[truth.article]
    return tuple(article.fact(key, plan) for key in truth.required) + truth.ticket_facts


def allowed_facts(truth: ReplyTruth, plan: str, kb: KnowledgeBase) -> tuple[Fact, ...]:
    """Facts a reply may state: the answering article's facts for this plan plus any listed extras."""
    extras = []
    for ref in truth.allowed:
        article_id, key = ref.split(":", 1)
        extras.append(kb.articles[article_id].fact(key, plan))
    return kb.articles[truth.article].facts_for(plan) + tuple(extras) + truth.ticket_facts


def wrong_quantities(stated: Sequence[Quantity], required: Sequence[Fact], allowed: Sequence[Fact]) -> list[Quantity]:
    """Stated amounts of the kinds the customer asked about that match no true value.

    Only kinds the required facts use are checked: a refund question is judged
    on the durations it states, not on an amount the customer was charged.
    """
    kinds = {f.quantity.kind for f in required if f.quantity is not None}
    true_values = [f.quantity for f in allowed if f.quantity is not None]
    wrong: list[Quantity] = []
    for q in stated:
        if q.kind in kinds and not any(q.same_as(t) for t in true_values):
            if not any(q.same_as(w) for w in wrong):
                wrong.append(q)
    return wrong


def length_factor(length: int) -> float:
    if length <= REPLY_LENGTH_FREE:
        return 1.0
    return max(0.0, (REPLY_LENGTH_ZERO - length) / (REPLY_LENGTH_ZERO - REPLY_LENGTH_FREE))


def grade_reply(replies: Sequence[SentReply], truth: ReplyTruth, plan: str, kb: KnowledgeBase) -> ReplyGrade:
    """Grade every reply sent on a ticket, taken together."""
    required = required_facts(truth, plan, kb)
    grounded_text = "\n".join(r.text for r in replies if truth.article in r.retrieved_before)
    all_text = "\n".join(r.text for r in replies)
    # Each text is parsed once per episode (`_quantities`) and normalised once per call.
    grounded_normalised = normalise_text(grounded_text) if any(f.quantity is None for f in required) else None
    covered = tuple(
        f.key for f in required
        if grounded_text and f.stated_in(grounded_text, _quantities(replies, grounded_text), grounded_normalised)
    )
    missing = tuple(f.key for f in required if f.key not in covered)
    wrong = wrong_quantities(_quantities(replies, all_text), required, allowed_facts(truth, plan, kb))
    all_normalised = normalise_text(all_text) if truth.forbidden else None
    promised = tuple(f.claim for f in truth.forbidden if claims(all_text, f.phrases, all_normalised))
    length = sum(len(r.text) for r in replies)
    coverage = len(covered) / len(required) if required else 1.0
    score = coverage * max(0.0, 1.0 - WRONG_FACT_COST * (len(wrong) + len(promised))) * length_factor(length)
    return ReplyGrade(
        score=round(score, 4),
        covered=covered,
        missing=missing,
        wrong=tuple(q.text for q in wrong),
        forbidden=promised,
        grounded=bool(grounded_text),
        length=length,
    )


def _quantities(replies: Sequence[SentReply], text: str) -> tuple[Quantity, ...]:
    """The quantities stated in `text` (the replies, or the grounded ones,
    joined), from the memo on the latest reply: parsing is most of the cost of
    grading, and a ticket's replies are graded at every reply and again at the
    end of the episode. Keyed by the exact text, so a hit is the same parse by
    construction; only the latest reply's memo is kept (its predecessors'
    texts are never graded again)."""
    if not replies:
        return tuple(extract_quantities(text))
    memo = replies[-1].parsed
    quantities = memo.get(text)
    if quantities is None:
        if len(replies) > 1:
            replies[-2].parsed.clear()
        quantities = memo[text] = tuple(extract_quantities(text))
    return quantities


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
        outcome, outcome_notes = grade_outcome(truth.outcome, truth.evidence, progress.writes, progress.write_evidence)
        weights["outcome"], components["outcome"] = WEIGHT_OUTCOME, outcome
        notes += outcome_notes
        looked = progress.write_evidence[0] if progress.writes else frozenset(progress.looked_up)
        missing_evidence = [r for r in truth.evidence if r not in looked]
        weights["evidence"] = WEIGHT_EVIDENCE
        components["evidence"] = 1.0 - len(missing_evidence) / len(truth.evidence) if truth.evidence else 1.0
        notes += [f"did not look up {r} before acting" for r in missing_evidence]
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
    expected: Sequence[ExpectedWrite], evidence: Sequence[str], writes: Sequence[Write], write_evidence: Sequence[frozenset[str]]
) -> tuple[float, list[str]]:
    """Compare the end state with the expected one: the share of needed
    operations done on evidence (the justifying records looked up first), less
    a cost for every operation the case did not need."""
    wanted = {(e.operation, e.target, e.amount_cents) for e in expected}
    done, guessed = set(), set()
    for write, looked in zip(writes, write_evidence):
        key = (write.operation, write.target, write.amount_cents)
        (done if set(evidence) <= looked else guessed).add(key)
    notes = [f"{Write(*e).describe()} was done before looking up {', '.join(evidence)}: no credit" for e in sorted((guessed - done) & wanted)]
    notes += [f"expected {Write(*e).describe()}: not done" for e in sorted(wanted - done - guessed)]
    unexpected = [w for w in writes if (w.operation, w.target, w.amount_cents) not in wanted]
    notes += [f"unexpected write: {w.describe()}" for w in unexpected]
    share = len(wanted & done) / len(wanted) if wanted else 1.0
    return max(0.0, share - UNEXPECTED_WRITE_COST * len(unexpected)), notes


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


# --- step rewards --------------------------------------------------------------

def classification_reward(truth: TicketTruth, category: str) -> float:
    return REWARD_CLASSIFICATION if truth.category is not None and category == truth.category else 0.0


def search_reward(truth: TicketTruth, retrieved: Sequence[str]) -> float:
    """Paid when a search first surfaces the article that answers the ticket."""
    return REWARD_KB_SEARCH if truth.reply is not None and truth.reply.article in retrieved else 0.0


def escalation_reward(truth: TicketTruth) -> tuple[str, float]:
    if truth.escalate:
        return "escalation", REWARD_ESCALATION
    return "false_escalation", PENALTY_FALSE_ESCALATION


def reply_reward(previous_best: float, grade: ReplyGrade) -> float:
    """Pays the improvement in the ticket's reply score, so the item pays at most once in total."""
    return REWARD_REPLY * max(0.0, grade.score - previous_best)
