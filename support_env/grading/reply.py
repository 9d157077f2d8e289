"""Reply grading: every reply sent on a ticket, read as claims (`claims.py`) and
judged against the facts that hold for this customer.

- Coverage: the share of required facts a grounded reply states rightly (the
  right value for this customer's plan, or the term affirmed), not hedged. A
  reply counts for coverage only if the article holding its facts was
  retrieved on the ticket before it was sent (grounding).
- Every wrong claim in any reply costs half the reply credit: a value that is
  not true for the plan it is about, a true value denied, a requirement
  denied or a prohibition lifted, a superseded policy stated as current, a
  hedge between values, a value of an asked-about kind that is true of
  nothing in scope. So is every forbidden promise and every disclosure
  (`promises.py`). A later reply can complete an answer; it cannot take back
  a wrong claim.
- Concision is judged per reply: each reply up to 1,200 characters is free;
  credit falls linearly to zero at 3,000 for the longest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from ..domain.facts import Fact
from ..domain.kb import KnowledgeBase
from ..episodes.spec import ReplyTruth
from .claims import Claim, read_claims
from .progress import SentReply
from .promises import disclosed, promises

# Each wrong claim and each forbidden promise or disclosure takes this share off the reply.
WRONG_FACT_COST = 0.5
# A reply up to this many characters is not penalised; credit falls linearly
# to zero at REPLY_LENGTH_ZERO (judged per reply: the longest one counts).
REPLY_LENGTH_FREE = 1200
REPLY_LENGTH_ZERO = 3000


@dataclass(frozen=True)
class ReplyGrade:
    score: float
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    wrong: tuple[str, ...]  # one note per wrong claim, naming it
    forbidden: tuple[str, ...]
    grounded: bool
    length: int  # the longest reply, in characters

    def notes(self, required: Sequence[Fact]) -> list[str]:
        by_key = {f.key: f for f in required}
        notes = []
        if not self.grounded:
            notes.append("no reply was grounded: the answering article was not retrieved on this ticket before replying")
        notes += [f"did not state {by_key[k].name} ({by_key[k].value}) in a grounded reply" for k in self.missing]
        notes += list(self.wrong)
        notes += list(self.forbidden)
        if self.length > REPLY_LENGTH_FREE:
            notes.append(f"a reply of {self.length} characters; credit falls beyond {REPLY_LENGTH_FREE} per reply")
        return notes


@dataclass(frozen=True)
class Scope:
    """What a ticket's replies are judged against: every fact a claim may be about."""

    facts: tuple[Fact, ...]  # every plan's values of the answering article and the listed extras, its rules, the case's facts
    superseded: tuple[Fact, ...]  # terms of archived articles for the same keys: no longer policy
    context: tuple[Fact, ...]  # the values of every other current article, for claims that clearly name one
    readable: tuple[Fact, ...] = ()  # `facts` and `superseded`: what the reply's claims are read against
    case_keys: frozenset[str] = frozenset()  # facts of this customer's case (a measured peak, a decision), not of a plan


@lru_cache(maxsize=1024)
def scope_of(truth: ReplyTruth, kb: KnowledgeBase) -> Scope:
    article = kb.articles[truth.article]
    facts = list(article.facts)
    for ref in truth.allowed + tuple(k for k in truth.required if ":" in k):
        article_id, key = ref.split(":", 1)
        facts += [f for f in kb.articles[article_id].facts if f.key == key]
    facts += truth.ticket_facts
    keys = {f.key for f in facts}
    superseded = tuple(
        f for a in kb.articles.values() if a.archived for f in a.facts if f.key in keys and f.quantity is None
    )
    context = tuple(
        f for a in kb.articles.values() if not a.archived for f in a.facts if f.key not in keys and f.quantity is not None
    )
    return Scope(tuple(facts), superseded, context, tuple(facts) + superseded, frozenset(f.key for f in truth.ticket_facts))


def required_facts(truth: ReplyTruth, plan: str, kb: KnowledgeBase) -> tuple[Fact, ...]:
    """The facts a reply must state: the answering article's keys, keys of another article
    written "ARTICLE:key" (a ticket that asks two things, answered from two articles), and the
    case's own facts."""
    def fact(key: str) -> Fact:
        article_id, key = key.split(":", 1) if ":" in key else (truth.article, key)
        return kb.articles[article_id].fact(key, plan)

    return tuple(fact(key) for key in truth.required) + truth.ticket_facts


def length_factor(length: int) -> float:
    if length <= REPLY_LENGTH_FREE:
        return 1.0
    return max(0.0, (REPLY_LENGTH_ZERO - length) / (REPLY_LENGTH_ZERO - REPLY_LENGTH_FREE))


def grade_reply(replies: Sequence[SentReply], truth: ReplyTruth, plan: str, kb: KnowledgeBase) -> ReplyGrade:
    """Grade every reply sent on a ticket, taken together."""
    scope = scope_of(truth, kb)
    required = required_facts(truth, plan, kb)
    claims_of = [_claims(r, scope) for r in replies]
    grounded = [c for r, cs in zip(replies, claims_of) if truth.article in r.retrieved_before for c in cs]
    covered = tuple(f.key for f in required if any(_states(c, f, plan, scope) for c in grounded))
    missing = tuple(f.key for f in required if f.key not in covered)
    wrong: list[str] = []
    for claims in claims_of:
        for claim in claims:
            note = _judge(claim, scope, plan)
            if (
                note and not _derived(claim, claims) and not _about_another(claim, claims_of, required, plan)
                and not _beside_the_truth(claim, claims_of, scope, plan) and not _said_again(claim, claims_of, scope, plan)
                and note not in wrong
            ):
                wrong.append(note)
    forbidden = []
    for rule in truth.forbidden:
        if rule.acts and any(promises(r.text, act, rule.about) for r in replies for act in rule.acts):
            forbidden.append(rule.claim)
        said = tuple(dict.fromkeys(v for r in replies for v in disclosed(r.text, rule.disclose)))
        if said:
            forbidden.append(f"{rule.claim}: {', '.join(said)}")
    length = max((len(r.text) for r in replies), default=0)
    coverage = len(covered) / len(required) if required else 1.0
    score = coverage * max(0.0, 1.0 - WRONG_FACT_COST * (len(wrong) + len(forbidden))) * length_factor(length)
    return ReplyGrade(
        score=round(score, 4),
        covered=covered,
        missing=missing,
        wrong=tuple(wrong),
        forbidden=tuple(forbidden),
        grounded=any(truth.article in r.retrieved_before for r in replies),
        length=length,
    )


def _claims(reply: SentReply, scope: Scope) -> tuple[Claim, ...]:
    """The claims of one reply, read once per episode (the memo lives on the reply)."""
    memo = reply.parsed.get(id(scope))
    if memo is None or memo[0] is not scope:
        memo = reply.parsed[id(scope)] = (scope, tuple(read_claims(reply.text, scope.readable, scope.context)))
    return memo[1]


def _about_another(claim: Claim, claims_of: Sequence[Sequence[Claim]], required: Sequence[Fact], plan: str) -> bool:
    """Whether a value read as a wrong statement of one fact is, charitably, about another the
    customer asked: the replies state the first fact rightly elsewhere, and the value is the
    second's ("keys expire after 90 days … deploy before the 24 hours are up"). A swap, where
    the first fact is never stated rightly, stays wrong."""
    if claim.value is None or claim.fact is None or claim.hedged or not claim.positive:
        return False
    others = [f for f in required if f.key != claim.fact.key and f.quantity is not None and f.holds(claim.value)]
    if not others:
        return False
    stated_elsewhere = any(
        c is not claim and c.fact is not None and c.fact.key == claim.fact.key and c.positive and c.value is not None
        and any(f.key == claim.fact.key and f.quantity is not None and f.holds(c.value) for f in required)
        for claims in claims_of for c in claims
    )
    return stated_elsewhere


def _beside_the_truth(claim: Claim, claims_of: Sequence[Sequence[Claim]], scope: Scope, plan: str) -> bool:
    """Whether an amount of money read as a wrong statement of a fact was bound to it only by a cue
    elsewhere in its sentence (or by being the only fact of its kind), in replies whose own words tie
    the fact's true value to it: read as a reviewer reads it, another amount of the case named beside
    the answer ("your charge of $3,990.00 ... so I've refunded $3,657.50"; "net cost: $3,072.50
    ($3,990.00 charged, minus refunds of $538.50 and $379.00)"), not a second answer. An amount its own
    words tie to the fact stays a claim, and so does any amount when the true one is not tied to it."""
    if claim.value is None or claim.fact is None or claim.cued or not claim.positive:
        return False
    if claim.value.kind != "money":
        return False  # "only the last 12 months show in the console" beside "7 years" is a second claim
    truth = _truth_for(claim.fact, scope, claim.plan or plan)
    if truth is None or truth.quantity is None:
        return False
    return any(
        c is not claim and c.fact is not None and c.fact.key == claim.fact.key and c.positive and not c.hedged and c.cued
        and c.value is not None and c.plan in (None, claim.plan) and truth.holds(c.value)
        for claims in claims_of for c in claims
    )


def _said_again(claim: Claim, claims_of: Sequence[Sequence[Claim]], scope: Scope, plan: str) -> bool:
    """Whether a value read as a wrong statement of one fact points back ("within those 7 days", "inside
    your 7 days") at an earlier mention of the same value that rightly stated another fact: it is that
    fact, said again, not a claim about the one its new sentence cues."""
    if claim.value is None or not claim.said_again or not claim.positive:
        return False
    mine = next(i for i, claims in enumerate(claims_of) if any(c is claim for c in claims))
    for i, claims in enumerate(claims_of[: mine + 1]):
        for c in claims:
            earlier = i < mine or c.start < claim.start
            if earlier and c.value is not None and c.fact is not None and c.positive and c.value.same_as(claim.value):
                truth = _truth_for(c.fact, scope, c.plan or plan)
                if truth is not None and truth.quantity is not None and truth.holds(c.value):
                    return True
    return False


def _derived(claim: Claim, claims: Sequence[Claim]) -> bool:
    """Whether a value is the sum of two other values the same reply states ("within 30 days, then
    backups within 35 days after that: at most 65 days in all"): arithmetic, not a policy claim."""
    if claim.value is None or isinstance(claim.value.value, tuple):
        return False
    others = [c.value.value for c in claims if c is not claim and c.value is not None and c.value.kind == claim.value.kind
              and not isinstance(c.value.value, tuple)]
    return any(abs(a + b - claim.value.value) < 1e-6 for i, a in enumerate(others) for b in others[i + 1:])


def _truth_for(fact: Fact, scope: Scope, plan: str) -> Fact | None:
    """The fact's value that holds on `plan`."""
    return next((f for f in scope.facts + scope.context if f.key == fact.key and f.applies_to(plan)), None)


def _states(claim: Claim, required: Fact, plan: str, scope: Scope) -> bool:
    """Whether `claim` rightly states the required fact for the customer's plan (a value stated
    for another plan states a plan-specific fact for that plan, not for this customer)."""
    if claim.fact is None or claim.fact.key != required.key or not claim.positive or claim.hedged:
        return False
    if claim.fact in scope.superseded or (required.plan is not None and claim.plan not in (None, plan)):
        return False
    if required.quantity is None:
        return claim.value is None and claim.fact.value == required.value
    return claim.value is not None and required.holds(claim.value)


def _judge(claim: Claim, scope: Scope, plan: str) -> str | None:
    """A note naming what is wrong with `claim`, or None when it is right or not a policy claim."""
    if claim.fact is None:
        return None  # a value bound to no fact is not a policy claim
    if claim.value is not None and claim.fact.key in scope.case_keys and (claim.plan not in (None, plan) or claim.elsewhere):
        return None  # "the Enterprise plan has 10,000 per minute", "your other key expires on ...": not the case asked
    if claim.value is not None and claim.since_event and claim.fact.key not in scope.case_keys:
        return None  # "62 days after the charge", "in the next four days", "six weeks to go": the case's timeline, not a policy
    about = claim.plan or plan
    whose = "this customer" if about == plan else f"the {about.capitalize()} plan"
    if claim.value is None:  # a term
        if claim.fact.key in scope.case_keys and claim.plan not in (None, plan) and not claim.destination:
            return None  # "the Enterprise plan ... is enough for your traffic": that plan described, not this case
        if not claim.fact.applies_to(about):
            return None  # a plan's rule, said of another plan
        if claim.hedged:
            return f"hedged on {claim.fact.name}: {claim.text}"
        if claim.fact in scope.superseded:
            return f"stated {claim.fact.value!r}, which is no longer policy" if claim.positive else None
        if not claim.positive:
            return f"said the opposite of: {claim.fact.value}"
        return None
    truth = _truth_for(claim.fact, scope, about)
    if claim.value.weak:
        return None  # "within an hour" can state a fact; "takes a minute" never makes a wrong one
    if claim.hedged:
        return f"hedged between several values for {claim.fact.name}"
    if truth is None or truth.quantity is None:
        return f"stated {claim.fact.name} {claim.value.text} for {whose}, which has no such value" if claim.positive else None
    same = truth.holds(claim.value)
    if claim.positive and not same:
        return f"stated {claim.fact.name} {claim.value.text}; true for {whose}: {truth.value}"
    if not claim.positive and same:
        return f"denied {claim.fact.name} {claim.value.text}, which is true for {whose}"
    return None
