"""Case work from records: which records a situation calls for, and which
account operations the records justify. Pure functions over what an agent can
see (the ticket text and the records it looked up), used by the reference
policy; they never read the hidden truth.
"""

from __future__ import annotations

import re
from typing import Any

from ..models import SupportAction, TicketView
from .reading import ticket_words

BILLING_CUES = ("charged twice", "two charges", "double", "duplicate", "charged again", "refund")
HARDWARE_CUES = ("securekey", "hardware security key", "hardware key")
DAMAGE_CUES = ("broken", "cracked", "damaged", "crushed", "not recognised", "not recognized")


def is_takeover(ticket: TicketView, rule_name: str | None) -> bool:
    return rule_name == "account takeover"


def is_hardware_damage(ticket: TicketView) -> bool:
    text = ticket_words(ticket)
    return any(c in text for c in HARDWARE_CUES) and any(c in text for c in DAMAGE_CUES)


def records_to_check(ticket: TicketView, rule_name: str | None) -> list[str]:
    """The records a support engineer would open first for this ticket."""
    text = ticket_words(ticket)
    if is_takeover(ticket, rule_name):
        return ["audit_log", "api_keys"]
    if is_hardware_damage(ticket):
        return ["orders"]
    if any(c in text for c in BILLING_CUES):
        return ["invoices"]
    return []


def planned_writes(ticket: TicketView, records: dict[str, Any], rule_name: str | None) -> list[SupportAction]:
    """The operations the looked-up records justify, and nothing more."""
    writes: list[SupportAction] = []
    if is_takeover(ticket, rule_name) and "audit_log" in records and "api_keys" in records:
        intruder = {row["country"] for row in records["audit_log"] if row["event"] == "login" and "new country" in row["detail"]}
        writes.append(SupportAction(action_type="lock_account", ticket_id=ticket.id))
        writes += [
            SupportAction(action_type="revoke_api_key", ticket_id=ticket.id, key_id=key["key_id"])
            for key in records["api_keys"]
            if key["created_from"] in intruder and key["status"] == "active"
        ]
    if "invoices" in records:
        for invoice in records["invoices"]:
            captured = sum(p["amount_cents"] for p in invoice["payments"] if p["status"] == "captured")
            if captured > invoice["amount_cents"]:
                writes.append(SupportAction(
                    action_type="issue_refund", ticket_id=ticket.id, invoice_id=invoice["invoice_id"],
                    amount=(captured - invoice["amount_cents"]) / 100,
                ))
    if is_hardware_damage(ticket) and records.get("orders"):
        delivered = [o for o in records["orders"] if o["status"] == "delivered"]
        if delivered:
            latest = max(delivered, key=lambda o: o["delivered_on"])
            writes.append(SupportAction(action_type="send_replacement", ticket_id=ticket.id, order_id=latest["order_id"]))
    return writes


# "also refund February", "refund last month as well", "a refund of the previous month too"
_OTHER_CHARGE_RE = re.compile(
    r"refund(?:ed)?\s+(?:of\s+)?(?:the\s+)?(previous\s+month|last\s+month|january|february|march|april|may|june|july|august"
    r"|september|october|november|december)\b",
    re.I,
)


def declined(ticket: TicketView, writes: list[SupportAction]) -> str:
    """The answer to a request to refund another month's charge as well, once the duplicate is
    refunded: a monthly charge is refundable within 14 days only, and that one is older."""
    if not any(w.action_type == "issue_refund" for w in writes):
        return ""
    asked = _OTHER_CHARGE_RE.search(ticket.body)
    if asked is None:
        return ""
    charge = asked.group(1)
    charge = "The previous month" if charge.lower() in ("previous month", "last month") else charge.capitalize()
    return f"{charge} is outside the 14-day refund window for monthly charges, so we cannot refund it."


def summary(writes: list[SupportAction], ticket: TicketView | None = None) -> str:
    """What was done, in the reply, without disclosing account details; and what was asked and declined."""
    lines = []
    for w in writes:
        if w.action_type == "issue_refund":
            lines.append(f"We refunded the duplicate charge of ${w.amount:.2f} on invoice {w.invoice_id}.")
        elif w.action_type == "send_replacement":
            lines.append(f"We have sent a replacement for order {w.order_id}.")
        elif w.action_type == "lock_account":
            lines.append("We have locked the account to stop any further access.")
        elif w.action_type == "revoke_api_key":
            lines.append("We revoked the API key created during the intrusion.")
    if ticket is not None and declined(ticket, writes):
        lines.append(declined(ticket, writes))
    return " ".join(dict.fromkeys(lines))


def case_query(writes: list[SupportAction]) -> str | None:
    """A KB query for the policy behind the operations done."""
    kinds = {w.action_type for w in writes}
    if "issue_refund" in kinds:
        return "duplicate charge double capture refund"
    if "send_replacement" in kinds:
        return "replace damaged SecureKey hardware security key"
    return None


def resolution(writes: list[SupportAction], escalated: bool, noise_kind: str | None) -> str:
    kinds = {w.action_type for w in writes}
    if escalated:
        return "escalated"
    if "issue_refund" in kinds:
        return "refund_issued"
    if "send_replacement" in kinds:
        return "replacement_sent"
    if noise_kind == "spam":
        return "spam"
    if noise_kind == "thanks":
        return "no_action_needed"
    return "resolved"


def write_key(action: SupportAction) -> str:
    """Identity of an operation, to do each one once."""
    return re.sub(r"\s+", " ", f"{action.action_type}:{action.invoice_id}:{action.key_id}:{action.order_id}")
