"""Reasoning families: billing cases (scenarios registered in SCENARIOS by name).

- `refund_by_date` (a. refund eligibility by date): a refund request for the latest subscription
  charge; whether it is inside the refund window (14 days monthly, KB-B01; 60 days annual and
  prorated, KB-B03) is decided by the capture date, the invoice's `interval` and `today`, never by
  the customer. Inside: refund (the whole monthly charge, the unused months of an annual one).
  Outside by 1-3 days: no write, the reply states the window and declines.
- `refund_balance` (b. a computed answer): an invoice with earlier partial refunds (payment rows
  with status "refunded"); the customer asks what they paid in the end or how much came back.
  No write; the reply states the computed amount.
- `authorisation_hold` (c. a claim the records contradict): a "double charge" that is one capture
  and a card authorisation that was never captured and expires by itself (KB-B08). No write; the
  reply explains the hold, its amount and that it drops off.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from ...domain.world import ANNUAL_REFUND_WINDOW_DAYS, MONTHLY_REFUND_WINDOW_DAYS, annual_refundable_cents
from ..casebook import ANNUAL_PRICE_CENTS, PLAN_PRICE_CENTS, Case, Person, Scenario, account_row, hex_id, money
from ..spec import ExpectedWrite, ForbiddenClaim, ticket_fact

AUTHORISATION_DAYS = 7  # KB-B08: an authorisation never captured drops off after 7 days


def _invoice_ids(rng: random.Random, n: int) -> list[str]:
    return [f"INV-{x}" for x in rng.sample(range(10000, 99999), n)]


def _invoice(person: Person, invoice_id: str, on: date, cents: int, interval: str, kind: str = "subscription") -> dict:
    period = on.strftime("%Y") if interval == "annual" and kind == "subscription" else on.strftime("%Y-%m")
    return {"invoice_id": invoice_id, "account_id": person.account_id, "kind": kind, "interval": interval,
            "period": period, "amount_cents": cents, "status": "paid"}


def _capture(rng: random.Random, invoice_id: str, cents: int, on: date, card: str) -> dict:
    return {"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": invoice_id, "amount_cents": cents, "status": "captured",
            "captured_on": on.isoformat(), "card_last4": card}


def _price(person: Person, interval: str) -> int:
    return (ANNUAL_PRICE_CENTS if interval == "annual" else PLAN_PRICE_CENTS)[person.plan]


def _history(person: Person, rng: random.Random, charged_on: date, interval: str, card: str, ids: list[str]) -> tuple[list, list]:
    """The charge before the latest one: last month's (monthly) or last year's (annual), captured once."""
    earlier = charged_on - timedelta(days=rng.choice((28, 30, 31)) if interval == "monthly" else 365)
    price = _price(person, interval)
    return [_invoice(person, ids[0], earlier, price, interval)], [_capture(rng, ids[0], price, earlier, card)]


def _long_date(day: date) -> str:
    return f"{day.strftime('%B')} {day.day}"


def _refund_by_date(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """The latest subscription charge, asked to be refunded; the dates decide."""
    interval = rng.choice(("monthly", "annual"))
    window = MONTHLY_REFUND_WINDOW_DAYS if interval == "monthly" else ANNUAL_REFUND_WINDOW_DAYS
    inside = rng.random() < 0.5
    age = rng.randint(1, window) if inside else window + rng.randint(1, 3)
    charged_on = today - timedelta(days=age)
    card = f"{rng.randint(0, 9999):04d}"
    ids = _invoice_ids(rng, 3)
    invoices, payments = _history(person, rng, charged_on, interval, card, ids)
    price = _price(person, interval)
    invoices.append(_invoice(person, ids[1], charged_on, price, interval))
    payments.append(_capture(rng, ids[1], price, charged_on, card))
    if interval == "monthly" and rng.random() < 0.5:  # usage overage billed with the charge: never refundable
        cents = rng.randint(5, 90) * 100 + rng.choice((0, 40, 75))
        invoices.append(_invoice(person, ids[2], charged_on, cents, "monthly", kind="overage"))
        payments.append(_capture(rng, ids[2], cents, charged_on, card))
    article = "KB-B01" if interval == "monthly" else "KB-B03"
    # outside the window, any refund of this charge (named by its month or invoice) is one policy forbids
    forbidden = (ForbiddenClaim("promised a refund outside the refund window", acts=("refund_outside_window",),
                                about=(charged_on.strftime("%B"), ids[1])),)
    slots = {"amount": money(price), "invoice_id": ids[1], "month": charged_on.strftime("%B"), "card_last4": card,
             "charge_date": _long_date(charged_on)}
    records = {"accounts": [account_row(person)], "invoices": invoices, "payments": payments}
    if inside:
        cents = price if interval == "monthly" else annual_refundable_cents(price, charged_on, today)
        return Case(
            records=records, outcome=(ExpectedWrite("refund", ids[1], cents),), slots=slots,
            ticket_facts=(ticket_fact("refund_amount", money(cents)),), variant=interval, article=article,
            required=("refund_processing_time",), resolution="refund_issued", evidence=("invoices",),
        )
    return Case(
        records=records, outcome=(), slots=slots, forbidden=forbidden, variant=interval, article=article,
        required=("refund_window",) if interval == "monthly" else ("annual_refund_window",),
        resolution="resolved", evidence=("invoices",),
    )


REFUND_REASONS = ("partial refund: seats removed", "partial refund: service credit", "partial refund: plan changed mid-cycle",
                  "partial refund: goodwill")


def _refund_balance(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """An invoice with one or two earlier partial refunds; how much came back, or what was paid in the end."""
    interval = rng.choice(("monthly", "annual"))
    variant = rng.choice(("net", "refunded"))
    price = _price(person, interval)
    charged_on = today - timedelta(days=rng.randint(20, 80))
    card = f"{rng.randint(0, 9999):04d}"
    ids = _invoice_ids(rng, 2)
    invoices, payments = _history(person, rng, charged_on, interval, card, ids)
    invoices.append(_invoice(person, ids[1], charged_on, price, interval))
    payments.append(_capture(rng, ids[1], price, charged_on, card))
    parts = 2 if variant == "refunded" else rng.choice((1, 2))
    refunds = []
    for n in range(parts):
        share = rng.randint(8, 30) / 100 / parts
        cents = max(100, int(price * share) // 25 * 25)
        refunds.append(cents)
        on = charged_on + timedelta(days=rng.randint(2, 10) + 10 * n)
        payments.append({"payment_id": f"re_{hex_id(rng, 4)}", "invoice_id": ids[1], "amount_cents": cents, "status": "refunded",
                         "refunded_on": min(on, today - timedelta(days=1)).isoformat(), "card_last4": card,
                         "note": rng.choice(REFUND_REASONS)})
    refunded, left = sum(refunds), price - sum(refunds)
    facts = (ticket_fact("amount_left", money(left)),) if variant == "net" else (ticket_fact("refund_amount", money(refunded)),)
    return Case(
        records={"accounts": [account_row(person)], "invoices": invoices, "payments": payments},
        outcome=(),
        slots={"amount": money(price), "invoice_id": ids[1], "month": charged_on.strftime("%B"), "card_last4": card,
               "plan_word": "annual" if interval == "annual" else "monthly"},
        ticket_facts=facts, variant=variant, article="KB-B01" if interval == "monthly" else "KB-B03", required=(),
        resolution="resolved", evidence=("invoices",),
    )


def _authorisation_hold(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """One capture of this month's charge and a card authorisation never captured: the 'second charge'."""
    price = PLAN_PRICE_CENTS[person.plan]
    charged_on = today - timedelta(days=rng.randint(0, 5))
    card = f"{rng.randint(0, 9999):04d}"
    ids = _invoice_ids(rng, 2)
    invoices, payments = _history(person, rng, charged_on, "monthly", card, ids)
    invoices.append(_invoice(person, ids[1], charged_on, price, "monthly"))
    held = price if rng.random() < 0.7 else price + rng.choice((100, 1500, 2500))  # a retry's hold, or one for a pending upgrade
    hold = {"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": ids[1], "amount_cents": held,
            "status": rng.choice(("authorized", "pending")), "captured_on": None, "authorized_on": charged_on.isoformat(),
            "expires_on": (charged_on + timedelta(days=AUTHORISATION_DAYS)).isoformat(), "card_last4": card}
    capture = _capture(rng, ids[1], price, charged_on, card)
    payments += [hold, capture] if rng.random() < 0.5 else [capture, hold]
    return Case(
        records={"accounts": [account_row(person)], "invoices": invoices, "payments": payments},
        outcome=(),
        slots={"amount": money(price), "held": money(held), "invoice_id": ids[1], "month": charged_on.strftime("%B"), "card_last4": card},
        ticket_facts=(ticket_fact("authorised_amount", money(held)),),
        article="KB-B08", required=("authorization_release_time",), resolution="resolved", evidence=("invoices",),
    )


SCENARIOS: dict[str, Scenario] = {
    "refund_by_date": _refund_by_date,
    "refund_balance": _refund_balance,
    "authorisation_hold": _authorisation_hold,
}
