"""The simulated customer: answers back in the ticket thread, by rules, no LLM.

After each agent reply on a ticket that needs one, at most one rule fires:
the customer disputes a wrong value or forbidden promise, answers a question
the agent asked (with the account details it knows), or points out that part
of the question is still open. Phrasings come from `data/customer_replies.yaml`,
picked by a draw seeded by the episode seed, the ticket and the turn, so the
same episode always gets the same thread.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .spec import TicketSpec
from ..domain.yamlfile import parse_yaml

REPLIES_FILE = Path(__file__).parent / "data" / "customer_replies.yaml"
MAX_FOLLOW_UPS = 2


@lru_cache(maxsize=1)
def phrasings() -> dict[str, tuple[str, ...]]:
    return {rule: tuple(texts) for rule, texts in parse_yaml(REPLIES_FILE.read_text(encoding="utf-8")).items()}


def follow_up(
    ticket: TicketSpec, reply_text: str, wrong: Sequence[str], promised: bool, incomplete: bool, turn: int, seed: int | None
) -> str | None:
    """The customer's answer to the agent's `turn`-th reply (1-based), or None. `wrong`: the
    values the replies so far stated that are not true; `promised`: whether they made a
    forbidden promise; `incomplete`: whether a required fact is still missing."""
    if turn > MAX_FOLLOW_UPS:
        return None
    rng = random.Random(f"{seed}:{ticket.id}:{turn}")
    if wrong or promised:
        claim = f"'{wrong[0]}'" if wrong else "that promise"
        return rng.choice(phrasings()["wrong"]).format(claim=claim)
    if "?" in reply_text:
        extra = f", and the ticket is {ticket.id}" if rng.random() < 0.5 else ""
        return rng.choice(phrasings()["question"]).format(company=ticket.customer.company, email=ticket.customer.email, extra=extra)
    if incomplete:
        return rng.choice(phrasings()["incomplete"])
    return None
