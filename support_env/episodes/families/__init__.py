"""Reasoning families: case scenarios that need records, dates and policy read together.

Each module holds the scenarios of one domain; its case templates (data/cases/*.yaml with a
`family`) tell the tickets. The families: a. refund eligibility by date, b. a computed answer,
c. a claim the records contradict, d. a requester who is not the owner, e. alarm words without
an emergency and an emergency without them, f. two intents in one ticket, g. missing information.
"""

from __future__ import annotations

from ..casebook import Scenario
from . import accounts, billing, incidents

FAMILY_SCENARIOS: dict[str, Scenario] = {**billing.SCENARIOS, **accounts.SCENARIOS, **incidents.SCENARIOS}
