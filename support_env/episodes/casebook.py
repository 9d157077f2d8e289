"""The building blocks of record-backed cases: the customer behind a case, what a
scenario builds (`Case`), and the record rows every scenario writes the same way.

A scenario is a function `(person, rng, today, pool) -> Case`: it draws the
account records from the episode's random stream and states, with them, what
the case needs: the expected end state and, where the case decides them, the
ticket's kind, category, answering article, required facts, escalation,
resolution, evidence and prose variant. Scenarios live in `cases.py` (the
original three) and in `families/` (the reasoning families).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from ..domain.facts import Fact
from .prose import email_address
from .spec import Clarification, ExpectedWrite, ForbiddenClaim

PLAN_PRICE_CENTS = {"pro": 4900, "business": 39900, "enterprise": 129900}
ANNUAL_PRICE_CENTS = {"pro": 49000, "business": 399000, "enterprise": 1299000}


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    company: str
    plan: str
    account_id: str
    home: str  # country code of the customer's own logins

    @property
    def email(self) -> str:
        return email_address(self.first, self.company)


@dataclass(frozen=True)
class Case:
    """What a scenario builds: the records, the expected end state, the slots the prose may use,
    and the case's own reply rules. Every field left None takes the template's value."""

    records: dict[str, list[dict[str, Any]]]
    outcome: tuple[ExpectedWrite, ...]
    slots: dict[str, str]
    ticket_facts: tuple[Fact, ...] = ()
    forbidden: tuple[ForbiddenClaim, ...] = ()
    variant: str | None = None  # which of the template's `variants` tells this case
    kind: str | None = None  # routine | critical
    category: str | None = None
    article: str | None = None
    required: tuple[str, ...] | None = None
    allowed: tuple[str, ...] = ()
    escalate: bool | None = None
    resolution: str | None = None
    evidence: tuple[str, ...] | None = None
    clarification: Clarification | None = None
    sender: str | None = None  # the address the ticket came from, when it is not the account owner's
    sender_name: str | None = None  # and the name it is signed with
    created_at: str | None = None  # ISO 8601 time the ticket was opened


Scenario = Callable[[Person, random.Random, date, dict], Case]


def hex_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def last4(rng: random.Random) -> str:
    """Last four characters of a key: digit, letter, digit, any; never a word or a year a reply might contain."""
    return f"{rng.choice(string.digits)}{rng.choice('abcdef')}{rng.choice(string.digits)}{hex_id(rng, 1)}"


def account_row(person: Person, **overrides: Any) -> dict[str, Any]:
    return {
        "account_id": person.account_id, "name": person.company, "owner": f"{person.first} {person.last}",
        "email": person.email, "plan": person.plan, "status": "active", "two_factor": True,
        "verified_contacts": [person.email], "regions": [], **overrides,
    }


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"
