"""The business world behind the tickets: accounts, invoices and payments, API
keys, usage, the audit log, incidents and hardware orders, and the operations
that change them.

Each episode gets its own copy of a world file (`data/worlds/<name>.json`), so
sessions never share state. Every write is checked against policy here, in
code; a refused write raises `PolicyViolation` and changes nothing. Every
accepted write is appended to `log`, which is what the end-state grader reads.
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
SUBSCRIPTION_REFUND_WINDOW_DAYS = 14  # KB-B01; duplicate captures are exempt (KB-B08)


class PolicyViolation(Exception):
    """A write that policy forbids; the message says which rule."""


@dataclass(frozen=True)
class Write:
    """One accepted operation, as the grader compares it."""

    operation: str  # refund | revoke_key | lock_account | replacement
    target: str  # invoice id, key id, account id or order id
    amount_cents: int = 0

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
            raise PolicyViolation(f"unknown record {record!r}; valid: {', '.join(RECORDS)}")
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
        """Refund captured money on an invoice. A duplicate capture (money captured
        beyond the invoice amount) is always refundable; the charge itself only
        within the subscription refund window, and usage overages never."""
        invoice = _owned(self.invoices, invoice_id, account_id, "invoice")
        if amount_cents <= 0:
            raise PolicyViolation("the refund amount must be positive")
        payments = [p for p in self.payments if p["invoice_id"] == invoice_id and p["status"] == "captured"]
        captured = sum(p["amount_cents"] for p in payments)
        refunded = self._done("refund", invoice_id)
        if amount_cents > captured - refunded:
            raise PolicyViolation(
                f"only ${(captured - refunded) / 100:.2f} of captured, unrefunded money is left on {invoice_id}"
            )
        duplicate_left = max(0, captured - invoice["amount_cents"] - refunded)
        if amount_cents > duplicate_left:
            if invoice["kind"] == "overage":
                raise PolicyViolation("usage overages are not refundable (KB-B01)")
            first_capture = min(date.fromisoformat(p["captured_on"]) for p in payments)
            if (self.today - first_capture).days > SUBSCRIPTION_REFUND_WINDOW_DAYS:
                raise PolicyViolation(
                    f"{invoice_id} was charged on {first_capture}, outside the {SUBSCRIPTION_REFUND_WINDOW_DAYS}-day refund window (KB-B01)"
                )
        return self._record(Write("refund", invoice_id, amount_cents))

    def revoke_api_key(self, account_id: str, key_id: str) -> Write:
        key = _owned(self.api_keys, key_id, account_id, "API key")
        if key["status"] != "active":
            raise PolicyViolation(f"API key {key_id} is already {key['status']}")
        key["status"] = "revoked"
        return self._record(Write("revoke_key", key_id))

    def lock_account(self, account_id: str) -> Write:
        account = self._account(account_id)
        if account["status"] == "locked":
            raise PolicyViolation(f"account {account_id} is already locked")
        account["status"] = "locked"
        return self._record(Write("lock_account", account_id))

    def send_replacement(self, account_id: str, order_id: str) -> Write:
        order = _owned(self.orders, order_id, account_id, "order")
        if order["status"] != "delivered":
            raise PolicyViolation(f"order {order_id} is {order['status']}; only delivered hardware can be replaced")
        if self._done("replacement", order_id):
            raise PolicyViolation(f"a replacement for {order_id} was already sent")
        return self._record(Write("replacement", order_id))

    # --- helpers -------------------------------------------------------------------

    def _account(self, account_id: str) -> dict[str, Any]:
        if account_id not in self.accounts:
            raise PolicyViolation(f"no account {account_id!r}")
        return self.accounts[account_id]

    def _done(self, operation: str, target: str) -> int:
        """Cents refunded on a target, or how many times the operation was done to it."""
        return sum(w.amount_cents or 1 for w in self.log if w.operation == operation and w.target == target)

    def _record(self, write: Write) -> Write:
        self.log.append(write)
        return write


def _owned(table: dict[str, dict[str, Any]], row_id: str, account_id: str, what: str) -> dict[str, Any]:
    """The row `row_id` of `table` if it belongs to `account_id`; a refusal otherwise."""
    row = table.get(row_id)
    if row is None or row["account_id"] != account_id:
        raise PolicyViolation(f"{what} {row_id!r} does not belong to this customer")
    return row


@lru_cache(maxsize=None)
def _world_file(name: str) -> dict[str, Any]:
    return json.loads((WORLDS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def load_world(name: str | None, records: str | None = None) -> World:
    """A fresh, private copy of world `name`, or of generated `records` (JSON); an empty world for neither."""
    if records is not None:
        raw = json.loads(records)
    else:
        raw = copy.deepcopy(_world_file(name)) if name else {"today": "2026-01-01"}
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
