"""Record-backed tickets for generated queues.

A case template (`data/cases/*.yaml`) gives the prose of a ticket whose
customer has account records; its scenario (`duplicate_charge`,
`account_takeover`, `damaged_hardware`) builds those records from the
episode's random stream, and with them the expected end state: which
operation on which invoice, key, account or order. Nothing is written per
ticket, so every seed gets fresh ids, amounts, dates and countries, and an
eval case shows phrasings and entities never seen in training.

A generated `hard_mixed_queue` may swap one of its tickets for such a case
(`mix_in_case`); the canonical queue never does.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..models import Customer
from .families import FAMILY_SCENARIOS
from .casebook import PLAN_PRICE_CENTS, Case, Person, Scenario, account_row, hex_id, last4
from .prose import signed, write_up
from .spec import ExpectedWrite, ForbiddenClaim, ReplyTruth, TicketSpec, TicketTruth, ticket_fact
from ..domain.yamlfile import parse_yaml

CASES_DIR = Path(__file__).parent / "data" / "cases"
# Share of generated episodes of a task that carry a case ticket of the original scenarios, and
# (drawn apart) a reasoning-family case ticket.
CASE_CHANCE = {"hard_mixed_queue": 0.5}
FAMILY_CHANCE = {"hard_mixed_queue": 0.5}
RECORDS_OBJECTIVE = (
    " Tickets whose customer has an account_id come with account records: look up the records the"
    " ticket calls for (lookup_record), take the account actions they justify within policy (and only"
    " those), and close the ticket with a resolution code (resolved, refund_issued, replacement_sent,"
    " escalated, no_action_needed, spam)."
)
RECORD_LISTS = ("accounts", "invoices", "payments", "api_keys", "usage", "audit_log", "incidents", "orders")
# Acts a takeover reply must not commit to before the owner's identity is verified.
TAKEOVER_ACTS = (
    "change_login_email_unverified", "restore_access_unverified", "refund_unverified", "return_payment_unverified", "reset_credentials_unverified",
)


@dataclass(frozen=True)
class Prose:
    """The subjects and bodies (by tone) that tell a case."""

    subjects: tuple[str, ...]
    bodies: dict[str, tuple[str, ...]]

    @classmethod
    def from_data(cls, raw: dict) -> "Prose":
        return cls(tuple(raw["subjects"]), {tone: tuple(texts) for tone, texts in raw["bodies"].items()})


@dataclass(frozen=True)
class CaseTemplate:
    """A case template file. `family` names the reasoning family of the case (None for the
    original three scenarios); `variants` tell the cases a scenario builds differently (a refund
    inside the window and one outside it), each with its own prose; the scenario names its
    variant. Kind, category, article, required facts, evidence and resolution are the template's
    unless the scenario decides them for its case."""

    id: str
    split: str
    scenario: str
    kind: str
    category: str
    article: str | None
    required: tuple[str, ...]
    evidence: tuple[str, ...]
    resolution: str
    plans: tuple[str, ...]
    priorities: tuple[str, ...]
    prose: Prose
    family: str | None = None
    variants: dict[str, Prose] | None = None

    def prose_for(self, variant: str | None) -> Prose:
        if variant is None or not self.variants:
            return self.prose
        return self.variants[variant]


def _template(raw: dict) -> CaseTemplate:
    variants = {name: Prose.from_data(v) for name, v in raw["variants"].items()} if raw.get("variants") else None
    return CaseTemplate(
        id=raw["id"],
        split=raw["split"],
        scenario=raw["scenario"],
        kind=raw["kind"],
        category=raw["category"],
        article=raw.get("article"),
        required=tuple(raw.get("required") or ()),
        evidence=tuple(raw.get("evidence") or ()),
        resolution=raw["resolution"],
        plans=tuple(raw["plans"]),
        priorities=tuple(raw["priorities"]),
        prose=Prose.from_data(raw) if "bodies" in raw else next(iter(variants.values())),
        family=raw.get("family"),
        variants=variants,
    )


@lru_cache(maxsize=1)
def case_templates() -> tuple[CaseTemplate, ...]:
    return tuple(_template(parse_yaml(p.read_text(encoding="utf-8"))) for p in sorted(CASES_DIR.glob("*.yaml")))


# --- scenarios: records and expected end state -------------------------------------------

def _duplicate_charge(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """This month's subscription was captured twice; last month's once; sometimes an overage too."""
    price = PLAN_PRICE_CENTS[person.plan]
    charged_on = today - timedelta(days=rng.randint(2, 20))
    previous_on = charged_on - timedelta(days=rng.choice((28, 30, 31)))
    card = f"{rng.randint(0, 9999):04d}"
    numbers = rng.sample(range(10000, 99999), 3)
    current, previous, overage = (f"INV-{n}" for n in numbers)
    invoices = [
        {"invoice_id": previous, "account_id": person.account_id, "kind": "subscription", "period": previous_on.strftime("%Y-%m"), "amount_cents": price, "status": "paid"},
        {"invoice_id": current, "account_id": person.account_id, "kind": "subscription", "period": charged_on.strftime("%Y-%m"), "amount_cents": price, "status": "paid"},
    ]
    payments = [
        {"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": previous, "amount_cents": price, "status": "captured", "captured_on": previous_on.isoformat(), "card_last4": card},
        *({"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": current, "amount_cents": price, "status": "captured", "captured_on": charged_on.isoformat(), "card_last4": card} for _ in range(2)),
    ]
    if rng.random() < 0.5:  # an overage billed with the charge: captured once, never refundable
        cents = rng.randint(5, 90) * 100 + rng.choice((0, 40, 75))
        invoices.append({"invoice_id": overage, "account_id": person.account_id, "kind": "overage", "period": previous_on.strftime("%Y-%m"), "amount_cents": cents, "status": "paid"})
        payments.append({"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": overage, "amount_cents": cents, "status": "captured", "captured_on": charged_on.isoformat(), "card_last4": card})
    amount = f"${price / 100:,.2f}"
    return Case(
        records={"accounts": [account_row(person)], "invoices": invoices, "payments": payments},
        outcome=(ExpectedWrite("refund", current, price),),
        slots={"amount": amount, "invoice_id": current, "month": charged_on.strftime("%B"), "card_last4": card},
        ticket_facts=(ticket_fact("refund_amount", amount),),
        # last month's charge is outside the refund window; an overage is never refundable
        forbidden=(ForbiddenClaim("promised a refund outside the 14-day window", acts=("refund_outside_window",),
                                  about=(previous_on.strftime("%B"), "overage")),),
    )


def _account_takeover(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """Overnight: a login from a new country, 2FA off, the email changed and an admin key created."""
    intruder = rng.choice([c for c in pool["countries"] if c != person.home])
    attacker_email = f"{rng.choice(pool['handles'])}.{hex_id(rng, 3)}@{rng.choice(pool['mail_domains'])}"
    keys = [
        {"key_id": f"key_{hex_id(rng, 4)}", "account_id": person.account_id, "last4": last4(rng), "scopes": scopes, "status": "active",
         "created_on": (today - timedelta(days=rng.randint(30, 400))).isoformat(), "created_from": person.home, "last_used": today.isoformat()}
        for scopes in (["read", "write"], ["deploy"])[: rng.randint(1, 2)]
    ]
    new_key = {"key_id": f"key_{hex_id(rng, 4)}", "account_id": person.account_id, "last4": last4(rng), "scopes": ["admin", "read", "write", "billing"],
               "status": "active", "created_on": today.isoformat(), "created_from": intruder, "last_used": today.isoformat()}
    keys.insert(rng.randint(0, len(keys)), new_key)
    night = f"{today.isoformat()}T0{rng.randint(1, 5)}:{rng.randint(10, 50)}"
    yesterday = (today - timedelta(days=1)).isoformat()
    audit = [
        {"account_id": person.account_id, "at": f"{yesterday}T17:{rng.randint(10, 59)}:02Z", "event": "login", "detail": "owner login", "country": person.home},
        {"account_id": person.account_id, "at": f"{night}:05Z", "event": "login", "detail": "login from a new country", "country": intruder},
        {"account_id": person.account_id, "at": f"{night}:41Z", "event": "two_factor_disabled", "detail": "2FA turned off", "country": intruder},
        {"account_id": person.account_id, "at": f"{night}:52Z", "event": "email_changed", "detail": "account email changed", "country": intruder},
        {"account_id": person.account_id, "at": f"{night}:58Z", "event": "api_key_created", "detail": f"key {new_key['key_id']} created with admin scope", "country": intruder},
    ]
    # What the records show and the sender may not learn: the intruder's address, key and country, the night's times.
    disclosures = (
        attacker_email, attacker_email.split("@")[1], new_key["key_id"], intruder, night[-5:],
        *(k["last4"] for k in keys), *(k["key_id"] for k in keys),
    )
    return Case(
        records={"accounts": [account_row(person, email=attacker_email, two_factor=False)], "api_keys": keys, "audit_log": audit},
        outcome=(ExpectedWrite("lock_account", person.account_id), ExpectedWrite("revoke_key", new_key["key_id"])),
        slots={"own_email": person.email},
        forbidden=(
            ForbiddenClaim("disclosed account details to an unverified sender", disclose=disclosures),
            ForbiddenClaim("changed login details or refunded before identity verification", acts=TAKEOVER_ACTS),
        ),
    )


def _damaged_hardware(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """The latest delivered SecureKey order arrived damaged; an older one is fine; one may be on its way."""
    ids = [f"ORD-{n}" for n in rng.sample(range(1000, 9999), 3)]
    item = "SecureKey hardware security key, {}-pack"
    delivered = today - timedelta(days=rng.randint(1, 6))
    older = delivered - timedelta(days=rng.randint(60, 200))
    pack = rng.choice((2, 5, 10))
    orders = [
        {"order_id": ids[0], "account_id": person.account_id, "item": item.format(2), "status": "delivered", "shipped_on": (older - timedelta(days=3)).isoformat(), "delivered_on": older.isoformat(), "notes": "delivered to reception"},
        {"order_id": ids[1], "account_id": person.account_id, "item": item.format(pack), "status": "delivered", "shipped_on": (delivered - timedelta(days=rng.randint(2, 4))).isoformat(), "delivered_on": delivered.isoformat(), "notes": rng.choice(("courier reported a crushed outer box", "parcel arrived wet", "box left outside in the rain"))},
    ]
    if rng.random() < 0.5:
        orders.append({"order_id": ids[2], "account_id": person.account_id, "item": item.format(2), "status": "in_transit", "shipped_on": (today - timedelta(days=1)).isoformat(), "delivered_on": None, "notes": ""})
    return Case(
        records={"accounts": [account_row(person)], "orders": orders},
        outcome=(ExpectedWrite("replacement", ids[1]),),
        slots={"pack": f"{pack}-pack", "delivered_weekday": delivered.strftime("%A")},
    )


SCENARIOS: dict[str, Scenario] = {
    "duplicate_charge": _duplicate_charge,
    "account_takeover": _account_takeover,
    "damaged_hardware": _damaged_hardware,
}


def scenarios() -> dict[str, Scenario]:
    """Every scenario by name: the three above and the reasoning families'."""
    return {**SCENARIOS, **FAMILY_SCENARIOS}


# --- filling and mixing ----------------------------------------------------------------

def _person(template: CaseTemplate, rng: random.Random, pool: dict) -> Person:
    return Person(
        first=rng.choice(pool["first_names"]), last=rng.choice(pool["last_names"]), company=rng.choice(pool["companies"]),
        plan=rng.choice(template.plans), account_id="acct_" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(4)),
        home=rng.choice(pool["countries"]),
    )


def _either(value, default):
    return default if value is None else value


def fill_case(template: CaseTemplate, ticket_id: str, rng: random.Random, split: str, today: date, pool: dict) -> tuple[TicketSpec, Case]:
    """A ticket from `template` and the records behind it, all drawn from `rng`."""
    person = _person(template, rng, pool)
    case = scenarios()[template.scenario](person, rng, today, pool)
    slots = {"first_name": person.first, "company": person.company, "weekday": rng.choice(pool["weekdays"]), **case.slots}
    prose = template.prose_for(case.variant)
    subject, body = write_up(prose.bodies, prose.subjects, slots, rng)
    kind = _either(case.kind, template.kind)
    article = _either(case.article, template.article)
    sender_first, sender_last = (case.sender_name or f"{person.first} {person.last}").split(" ", 1)
    ticket = TicketSpec(
        id=ticket_id,
        subject=subject,
        body=signed(body, sender_first, sender_last, person.company),
        customer=Customer(name=f"{sender_first} {sender_last}", company=person.company, plan=person.plan,
                          email=case.sender or person.email, account_id=person.account_id),
        priority=rng.choice(template.priorities),
        truth=TicketTruth(
            kind=kind,
            category=_either(case.category, template.category),
            reply=ReplyTruth(article, _either(case.required, template.required), case.allowed, forbidden=case.forbidden,
                             ticket_facts=case.ticket_facts) if article else None,
            escalate=_either(case.escalate, kind == "critical"),
            outcome=case.outcome,
            resolution=_either(case.resolution, template.resolution),
            evidence=_either(case.evidence, template.evidence),
        ),
        source=template.id,
        created_at=case.created_at,
        clarification=case.clarification,
        family=template.family,
    )
    return ticket, case


def world_records(cases: list[Case], today: date) -> str:
    """The world of a queue's case tickets as JSON: every case's rows, one list per record type."""
    world: dict[str, Any] = {"today": today.isoformat()}
    for name in RECORD_LISTS:
        world[name] = [row for case in cases for row in case.records.get(name, [])]
    return json.dumps(world, sort_keys=True)


_ROW_IDS = {"accounts": "account_id", "invoices": "invoice_id", "api_keys": "key_id", "orders": "order_id", "payments": "payment_id"}


def _row_ids(case: Case) -> set[str]:
    """The ids of `case`'s rows (accounts, invoices, keys, orders, payments)."""
    return {row[key] for name, key in _ROW_IDS.items() for row in case.records.get(name, [])}


def case_stream(seed_key: str, index: int, attempt: int = 0) -> random.Random:
    """The random stream of the `index`-th case ticket of a queue (drawn again on `attempt` > 0)."""
    return random.Random(f"{seed_key}:case{index}:{attempt}")


def fill_cases(
    templates: list[CaseTemplate], ticket_ids: list[str], seed_key: str, split: str, today: date, pool: dict
) -> tuple[list[TicketSpec], list[Case]]:
    """One case ticket per template, each drawn from a stream of its own (so a ticket does not
    change when another is added); a case whose ids clash with an earlier one's is drawn again."""
    tickets, cases, taken = [], [], set()
    for index, (template, ticket_id) in enumerate(zip(templates, ticket_ids)):
        for attempt in range(20):
            ticket, case = fill_case(template, ticket_id, case_stream(seed_key, index, attempt), split, today, pool)
            ids = _row_ids(case)
            if not ids & taken:
                break
        taken |= ids
        tickets.append(ticket)
        cases.append(case)
    return tickets, cases


def mix_in_case(tickets: list[TicketSpec], rng: random.Random, split: str, pool: dict) -> tuple[list[TicketSpec], Case, date] | None:
    """`tickets` with one swapped for a case ticket of one of the original scenarios, of the same
    kind, its case and the world's date; None when no case template fits the queue's kinds. (Drawn
    as the queues were before the reasoning families, so those episodes keep their tickets.)"""
    kinds = {t.truth.kind for t in tickets}
    fitting = [t for t in case_templates() if t.split == split and t.kind in kinds and t.family is None]
    if not fitting:
        return None
    template = rng.choice(fitting)
    slot = rng.choice([i for i, t in enumerate(tickets) if t.truth.kind == template.kind])
    today = date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))
    ticket, case = fill_case(template, tickets[slot].id, rng, split, today, pool)
    return [*tickets[:slot], ticket, *tickets[slot + 1:]], case, today


def mix_in_family(
    tickets: list[TicketSpec], rng: random.Random, split: str, pool: dict, today: date, seed_key: str
) -> tuple[list[TicketSpec], Case] | None:
    """`tickets` with one routine or critical ticket that is not a case already swapped for a
    reasoning-family case ticket of the same kind, and its case; None when none fits."""
    free = [i for i, t in enumerate(tickets) if t.customer.account_id is None and t.truth.kind in ("routine", "critical")]
    kinds = {tickets[i].truth.kind for i in free}
    fitting = [t for t in case_templates() if t.split == split and t.family is not None and t.kind in kinds]
    if not fitting:
        return None
    template = rng.choice(fitting)
    slot = rng.choice([i for i in free if tickets[i].truth.kind == template.kind])
    (ticket,), (case,) = fill_cases([template], [tickets[slot].id], f"{seed_key}:family", split, today, pool)
    return [*tickets[:slot], ticket, *tickets[slot + 1:]], case
