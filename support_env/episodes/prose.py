"""The words of a generated ticket: a template's phrasings filled in, signed by its customer.

Shared by the template generator (`generator.py`) and the record-backed cases
(`cases.py`), so both write tickets the same way and draw from the random
stream in the same order: tone, body, distractor detail (if any), subject.
"""

from __future__ import annotations

import random
from typing import Mapping, Sequence


def write_up(
    bodies: Mapping[str, Sequence[str]],
    subjects: Sequence[str],
    slots: Mapping[str, str],
    rng: random.Random,
    details: Sequence[str] = (),
    detail_chance: float = 0.0,
) -> tuple[str, str]:
    """(subject, body): a body in a tone drawn at random, sometimes followed by one of the
    distractor `details`, and a subject, each with its slots filled."""
    tone = rng.choice(sorted(bodies))
    body = rng.choice(bodies[tone]).format_map(slots)
    if details and rng.random() < detail_chance:
        body = f"{body} {rng.choice(details).format_map(slots)}"
    return rng.choice(subjects).format_map(slots), body


def signed(body: str, first: str, last: str, company: str) -> str:
    return f"{body}\n\n{first} {last}, {company}"


def email_address(first: str, company: str) -> str:
    """The customer's address at their company's (fictional) domain."""
    return f"{first.lower()}@{company.lower().replace(' ', '')}.example.com"
