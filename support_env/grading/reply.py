"""Reply grading: every reply sent on a ticket, taken together, against the
facts the customer needs.

- A reply earns only the required facts it states, and loses for every
  amount it states that is not true for this customer (other plans' limits,
  archived policies, invented numbers) and for excessive length: pasting
  articles costs more than it earns.
- A reply counts only if the article holding its facts was retrieved on that
  ticket before it was sent (grounding).
- A reply that promises what policy forbids (reissuing a past invoice,
  restoring access before identity checks) loses credit like a wrong value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..domain.facts import Fact, Quantity, claims, extract_quantities, normalise_text
from ..domain.kb import KnowledgeBase
from ..episodes.spec import ReplyTruth
from .progress import SentReply

# Each stated amount that is not true for the customer, and each forbidden
# promise, takes this share off the reply.
WRONG_FACT_COST = 0.5
# Replies up to this many characters (summed over the ticket) are not penalised;
# credit falls linearly to zero at REPLY_LENGTH_ZERO.
REPLY_LENGTH_FREE = 1200
REPLY_LENGTH_ZERO = 3000


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
