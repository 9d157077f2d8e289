"""The simulated customer: answers back in the ticket thread, by rules, no LLM.

After each agent reply on a ticket that needs one, at most one rule fires:
the customer corrects the reply when it takes them for another plan's
customer, answers a question the agent asked (with the account details it
knows), or points out that part of the question is still open. It disputes
only what a customer knows (its own plan), never a policy value, and never
repeats a grader's finding. Phrasings come from `data/customer_replies.yaml`,
picked by a draw seeded by the episode seed, the ticket and the turn, so the
same episode always gets the same thread.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
import re

from .spec import Clarification, TicketSpec
from ..domain.yamlfile import parse_yaml

REPLIES_FILE = Path(__file__).parent / "data" / "customer_replies.yaml"
MAX_FOLLOW_UPS = 2


# "your Business plan", "you're on Business", "as a Business customer"
_YOUR_PLAN_RE = re.compile(
    r"\b(?:your|you're on(?: the)?|you are on(?: the)?|as an?)\s+(free|pro|business|enterprise)\b(?!\s+(?:days?|hours?))", re.I
)


def plan_taken_for(reply_text: str, plan: str) -> str | None:
    """The plan the reply says the customer is on, when that is not the customer's plan."""
    for m in _YOUR_PLAN_RE.finditer(reply_text):
        if m.group(1).lower() != plan:
            return m.group(1).lower()
    return None


@lru_cache(maxsize=1)
def phrasings() -> dict[str, tuple[str, ...]]:
    return {rule: tuple(texts) for rule, texts in parse_yaml(REPLIES_FILE.read_text(encoding="utf-8")).items()}


def follow_up(ticket: TicketSpec, reply_text: str, incomplete: bool, turn: int, seed: int | None, judging: bool = True) -> str | None:
    """The customer's answer to the agent's `turn`-th reply (1-based), or None. `incomplete`:
    whether part of the customer's question is still unanswered. With `judging` False (sparse
    reward mode) only a question gets an answer: a correction or a reminder would tell the agent
    that its reply was wrong or short."""
    if turn > MAX_FOLLOW_UPS:
        return None
    rng = random.Random(f"{seed}:{ticket.id}:{turn}")
    named = plan_taken_for(reply_text, ticket.customer.plan) if judging else None
    if named:
        return rng.choice(phrasings()["not_our_plan"]).format(plan=ticket.customer.plan.capitalize(), named=named.capitalize())
    if "?" in reply_text:
        extra = f", and the ticket is {ticket.id}" if rng.random() < 0.5 else ""
        return rng.choice(phrasings()["question"]).format(company=ticket.customer.company, email=ticket.customer.email, extra=extra)
    if incomplete and judging:
        return rng.choice(phrasings()["incomplete"])
    return None


def asks_for(clarification: Clarification, reply_text: str) -> bool:
    """Whether the reply asks the customer for the missing information: a sentence that is a
    question and names one of the things the clarification is about."""
    for sentence in _SENTENCE_RE.findall(reply_text):
        if sentence.rstrip().endswith("?") and any(re.search(rf"\b{re.escape(cue)}", sentence, re.I) for cue in clarification.asks):
            return True
    return False


_SENTENCE_RE = re.compile(r"[^.!?\n]*[.!?]?")
