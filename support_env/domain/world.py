"""The business world behind the tickets: accounts, invoices and payments, API
keys, usage, the audit log, incidents and hardware orders, and the operations
that change them.

Each episode gets its own copy of a world file (`data/worlds/<name>.json`), so
sessions never share state. Like a real support console, the world refuses
only what cannot happen (an unknown id, another customer's record, money that
was never captured, a key that is not active): such a write raises
`Impossible` and changes nothing. What policy forbids but a console allows (a
refund outside its window, a second replacement) succeeds, and the `Write`
names the rule it broke in `breach`; the end-state grader reads the breaches
from `log`, where every accepted write is appended. The policy constants below
are the one place the KB's rules live in code, each with its article.
Secrets are never shown whole: API keys appear by id and last four characters.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..models import RECORDS

WORLDS_DIR = Path(__file__).parent / "data" / "worlds"

# --- policy: what the KB allows (a console allows more; breaking these is graded) ---
MONTHLY_REFUND_WINDOW_DAYS = 14  # KB-B01: a monthly subscription charge, within 14 days of the charge
ANNUAL_REFUND_WINDOW_DAYS = 60  # KB-B03: an annual subscription charge, within 60 days of the charge
ANNUAL_TERM_MONTHS = 12  # KB-B03: annual refunds are prorated; months already started are not refunded
REPLACEMENT_WINDOW_DAYS = 30  # KB-A10: damaged hardware is replaced if reported within 30 days of delivery
# Usage overages are never refundable (KB-B01, KB-B03); a duplicate capture, money captured beyond
# the invoice amount, is refundable at any time (KB-B08); one replacement per order (KB-A10).
BREACH_OVERAGE = "usage overages are not refundable (KB-B01)"
BREACH_MONTHLY_WINDOW = f"outside the {MONTHLY_REFUND_WINDOW_DAYS}-day refund window (KB-B01)"
BREACH_ANNUAL_WINDOW = f"outside the {ANNUAL_REFUND_WINDOW_DAYS}-day annual refund window (KB-B03)"
BREACH_ANNUAL_PRORATED = "months already used are not refunded: at most ${:.2f} of the charge is refundable (KB-B03)"
BREACH_SECOND_REPLACEMENT = "one replacement per order (KB-A10)"
BREACH_REPLACEMENT_WINDOW = f"damage reported more than {REPLACEMENT_WINDOW_DAYS} days after delivery (KB-A10)"


class Impossible(Exception):
    """A write the console cannot do (unknown or another customer's record, money not there,
    a state it is already in); the message says why."""


@dataclass(frozen=True)
class Write:
    """One accepted operation, as the grader compares it, and the policy rule it broke, if any
    (`breach`, naming its KB article; not part of the comparison with an expected write)."""

    operation: str  # refund | revoke_key | lock_account | replacement
    target: str  # invoice id, key id, account id or order id
    amount_cents: int = 0
    breach: str = field(default="", compare=False)

    def describe(self) -> str:
        if self.operation == "refund":
            return f"refund of ${self.amount_cents / 100:.2f} on {self.target}"
        return {"revoke_key": "revoked key", "lock_account": "locked account", "replacement": "replacement for order"}[self.operation] + f" {self.target}"


@dataclass
class World:
    today: date
    accounts: dict[str, dict[str, Any]]
    invoices: dict[str, dict[str, Any]]
    payments: list[dict[str, Any]]
    api_keys: dict[str, dict[str, Any]]
    usage: list[dict[str, Any]]
    audit_log: list[dict[str, Any]]
    incidents: list[dict[str, Any]]
    orders: dict[str, dict[str, Any]]
    log: list[Write] = field(default_factory=list)

    # --- reads ---------------------------------------------------------------------

    def lookup(self, account_id: str, record: str) -> Any:
        """The `record` of one account, as a support agent's console shows it."""
        if record not in RECORDS:
            raise Impossible(f"unknown record {record!r}; valid: {', '.join(RECORDS)}")
        account = self._account(account_id)
        if record == "account":
            return dict(account)
        if record == "invoices":
            return [
                {
                    **inv,
                    "payments": [p for p in self.payments if p["invoice_id"] == inv["invoice_id"]],
                    "refunded_cents": self._done("refund", inv["invoice_id"]),
                }
                for inv in self.invoices.values()
                if inv["account_id"] == account_id
            ]
        if record == "orders":
            return [{**o, "replacement_sent": self._done("replacement", o["order_id"]) > 0} for o in self.orders.values() if o["account_id"] == account_id]
        if record == "api_keys":
            return [dict(key) for key in self.api_keys.values() if key["account_id"] == account_id]
        if record == "incidents":
            return [i for i in self.incidents if i["region"] in account.get("regions", [])]
        source = {"usage": self.usage, "audit_log": self.audit_log}[record]
        return [row for row in source if row["account_id"] == account_id]

    # --- writes --------------------------------------------------------------------

    def issue_refund(self, account_id: str, invoice_id: str, amount_cents: int) -> Write:
        """Refund captured, unrefunded money on an invoice; refunding more than is left is impossible.
        Policy (a breach, not a refusal): a duplicate capture (money captured beyond the invoice
        amount) is always refundable, and is refunded first; the charge itself only within its
        refund window (prorated for annual plans), usage overages never."""
        invoice = _owned(self.invoices, invoice_id, account_id, "invoice")
        if amount_cents <= 0:
            raise Impossible("the refund amount must be positive")
        payments = [p for p in self.payments if p["invoice_id"] == invoice_id and p["status"] == "captured"]
        captured = sum(p["amount_cents"] for p in payments)
        refunded = self._done("refund", invoice_id) + sum(  # in this episode, and before it (payment rows "refunded")
            p["amount_cents"] for p in self.payments if p["invoice_id"] == invoice_id and p["status"] == "refunded"
        )
        if amount_cents > captured - refunded:
            raise Impossible(
                f"only ${(captured - refunded) / 100:.2f} of captured, unrefunded money is left on {invoice_id}"
            )
        duplicate = max(0, captured - invoice["amount_cents"])
        charge_before = max(0, refunded - duplicate)  # of the charge itself, refunded already
        charge_after = max(0, refunded + amount_cents - duplicate)
        breach = ""
        if charge_after > charge_before:
            breach = refund_breach(invoice, min(date.fromisoformat(p["captured_on"]) for p in payments), self.today, charge_after)
        return self._record(Write("refund", invoice_id, amount_cents, breach))

    def revoke_api_key(self, account_id: str, key_id: str) -> Write:
        key = _owned(self.api_keys, key_id, account_id, "API key")
        if key["status"] != "active":
            raise Impossible(f"API key {key_id} is already {key['status']}")
        key["status"] = "revoked"
        return self._record(Write("revoke_key", key_id))

    def lock_account(self, account_id: str) -> Write:
        account = self._account(account_id)
        if account["status"] == "locked":
            raise Impossible(f"account {account_id} is already locked")
        account["status"] = "locked"
        return self._record(Write("lock_account", account_id))

    def send_replacement(self, account_id: str, order_id: str) -> Write:
        """Ship a replacement for a delivered order; an order not delivered cannot be replaced.
        Policy (a breach, not a refusal): one replacement per order, reported within the window."""
        order = _owned(self.orders, order_id, account_id, "order")
        if order["status"] != "delivered":
            raise Impossible(f"order {order_id} is {order['status']}; only delivered hardware can be replaced")
        breach = ""
        if self._done("replacement", order_id):
            breach = BREACH_SECOND_REPLACEMENT
        elif order.get("delivered_on") and (self.today - date.fromisoformat(order["delivered_on"])).days > REPLACEMENT_WINDOW_DAYS:
            breach = BREACH_REPLACEMENT_WINDOW
        return self._record(Write("replacement", order_id, breach=breach))

    # --- helpers -------------------------------------------------------------------

    def _account(self, account_id: str) -> dict[str, Any]:
        if account_id not in self.accounts:
            raise Impossible(f"no account {account_id!r}")
        return self.accounts[account_id]

    def _done(self, operation: str, target: str) -> int:
        """Cents refunded on a target, or how many times the operation was done to it."""
        return sum(w.amount_cents or 1 for w in self.log if w.operation == operation and w.target == target)

    def _record(self, write: Write) -> Write:
        self.log.append(write)
        return write


def billing_interval(invoice: dict[str, Any]) -> str:
    """"monthly" or "annual": an invoice's `interval` (or `billing`) field; monthly when it has none."""
    return invoice.get("interval") or invoice.get("billing") or "monthly"


def annual_refundable_cents(amount_cents: int, charged_on: date, today: date) -> int:
    """How much of an annual charge policy lets support refund today (KB-B03): the unused months of
    the term, every month already started counted as used; nothing after the window closes."""
    if (today - charged_on).days > ANNUAL_REFUND_WINDOW_DAYS:
        return 0
    months = (today.year - charged_on.year) * 12 + today.month - charged_on.month - (today.day < charged_on.day)
    started = max(0, months) + 1
    return amount_cents * max(0, ANNUAL_TERM_MONTHS - started) // ANNUAL_TERM_MONTHS


def refund_breach(invoice: dict[str, Any], charged_on: date, today: date, charge_refunded_cents: int) -> str:
    """The policy rule broken by refunding `charge_refunded_cents` in all of an invoice's charge
    itself (its duplicate captures aside), charged on `charged_on`, by `today`; "" if none."""
    if invoice["kind"] == "overage":
        return BREACH_OVERAGE
    age = (today - charged_on).days
    if billing_interval(invoice) == "annual":
        if age > ANNUAL_REFUND_WINDOW_DAYS:
            return BREACH_ANNUAL_WINDOW
        allowed = annual_refundable_cents(invoice["amount_cents"], charged_on, today)
        if charge_refunded_cents > allowed:
            return BREACH_ANNUAL_PRORATED.format(allowed / 100)
        return ""
    return BREACH_MONTHLY_WINDOW if age > MONTHLY_REFUND_WINDOW_DAYS else ""


def _owned(table: dict[str, dict[str, Any]], row_id: str, account_id: str, what: str) -> dict[str, Any]:
    """The row `row_id` of `table` if it belongs to `account_id`; a refusal otherwise."""
    row = table.get(row_id)
    if row is None or row["account_id"] != account_id:
        raise Impossible(f"{what} {row_id!r} does not belong to this customer")
    return row


@lru_cache(maxsize=None)
def _world_file(name: str) -> dict[str, Any]:
    return json.loads((WORLDS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def load_world(name: str | None, records: str | None = None, today: str | None = None) -> World:
    """A fresh, private copy of world `name`, or of generated `records` (JSON); for neither, an
    empty world dated `today` (the episode's date)."""
    if records is not None:
        raw = json.loads(records)
    else:
        raw = copy.deepcopy(_world_file(name)) if name else {"today": today or "2026-01-01"}
    return World(
        today=date.fromisoformat(raw["today"]),
        accounts={a["account_id"]: a for a in raw.get("accounts", [])},
        invoices={i["invoice_id"]: i for i in raw.get("invoices", [])},
        payments=raw.get("payments", []),
        api_keys={k["key_id"]: k for k in raw.get("api_keys", [])},
        usage=raw.get("usage", []),
        audit_log=raw.get("audit_log", []),
        incidents=raw.get("incidents", []),
        orders={o["order_id"]: o for o in raw.get("orders", [])},
    )
