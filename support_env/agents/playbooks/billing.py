"""Playbook for billing reasoning cases: what a careful support engineer does, from the observation.

A billing ticket about a charge or a refund is worked from the invoices: look them up first, then
decide from what they show, never from what the customer says.

- A double capture (money captured beyond an invoice's amount) is the original duplicate-charge
  case: this playbook steps aside (None) and the reference's case work refunds the duplicate.
- A "second charge" that is a card authorisation never captured (status authorized / pending):
  nothing to refund; explain the hold, its amount and when it drops off (KB-B08).
- A question about an invoice with partial refunds: add up the refunds, state the total refunded
  or what was paid in the end.
- A refund request: the latest subscription charge, its capture date, its interval and `today`
  decide. Inside the window (KB-B01 monthly, KB-B03 annual): refund it (an annual charge prorated:
  months already started are not refunded); outside: decline and state the window.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from .. import casework
from ..reading import classify, emergency, ticket_words
from .steps import act, classify_as, close, first_name, lookup, search
from ...domain.kb import KnowledgeBase
from ...models import SupportAction, SupportObservation, TicketView

TICKET_CUES = ("refund", "reimburs", "money back", "charge", "charged", "payment", "invoice", "billed", "twice", "double",
               "duplicate", "returned", "give back", "give the extra")
# Words that make a ticket about a charge or a refund whatever else it says.
STRONG_CUES = ("refund", "reimburs", "money back", "charged", "billed", "double charge", "charges", "payments")
HOLD_STATUSES = ("authorized", "authorised", "pending")
# A question about what an invoice cost once its partial refunds are taken off (else: how much came back).
NET_RE = re.compile(r"\b(?:net|in the end|end(?:ed)? up|effective(?:ly)?|real cost|really cost|what is left|left after"
                    r"|actually pa(?:y|id))\b")
ANNUAL_TERM_MONTHS = 12


def _days(value: str) -> int:
    return int(re.match(r"\d+", value).group(0))


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _long(day: date) -> str:
    return f"{day.strftime('%B')} {day.day}, {day.year}"


def _captured(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in invoice.get("payments", []) if p.get("status") == "captured"]


def _charged_on(invoice: dict[str, Any]) -> date | None:
    days = [date.fromisoformat(p["captured_on"]) for p in _captured(invoice) if p.get("captured_on")]
    return min(days) if days else None


def _refunds(invoice: dict[str, Any]) -> list[int]:
    rows = [p["amount_cents"] for p in invoice.get("payments", []) if p.get("status") == "refunded"]
    return rows + ([invoice["refunded_cents"]] if invoice.get("refunded_cents") else [])


def _is_double_capture(invoice: dict[str, Any]) -> bool:
    return sum(p["amount_cents"] for p in _captured(invoice)) > invoice["amount_cents"]


def _months_started(charged_on: date, today: date) -> int:
    months = (today.year - charged_on.year) * 12 + today.month - charged_on.month - (today.day < charged_on.day)
    return max(0, months) + 1


def plan(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction] | None:
    """Every step for this ticket in order, or None when this playbook does not recognise it."""
    text = ticket_words(ticket)
    if emergency(ticket) is not None or casework.is_hardware_damage(ticket):
        return None
    if not (any(c in text for c in STRONG_CUES) or (classify(ticket) == "billing" and any(c in text for c in TICKET_CUES))):
        return None
    head = [classify_as(ticket, "billing"), lookup(ticket, "invoices")]
    invoices = observation.records.get("invoices")
    if invoices is None:
        return head
    if any(_is_double_capture(inv) for inv in invoices):
        return None  # a real double capture: the reference's case work refunds the duplicate
    today = date.fromisoformat(observation.today) if observation.today else date.today()
    first = first_name(ticket)
    held = [(inv, p) for inv in invoices for p in inv.get("payments", []) if p.get("status") in HOLD_STATUSES]
    if held:
        return head + _explain_hold(ticket, held, first, kb)
    refunded = [inv for inv in invoices if _refunds(inv)]
    if refunded:
        return head + _explain_balance(ticket, text, refunded, first)
    subscriptions = [inv for inv in invoices if inv.get("kind") == "subscription" and _charged_on(inv)]
    if not subscriptions:
        return None
    named = [inv for inv in subscriptions if inv["invoice_id"].lower() in text]
    invoice = named[0] if named else max(subscriptions, key=_charged_on)
    return head + _refund_by_date(ticket, invoice, today, first, kb)


def _reply(ticket: TicketView, first: str, lines: list[str]) -> SupportAction:
    text = f"Hi {first},\n\nThanks for contacting Stackwell support. " + " ".join(lines) + "\n\nReply here if anything is unclear.\nStackwell Support"
    return act("reply_ticket", ticket, reply_text=text)


def _explain_hold(ticket: TicketView, held: list, first: str, kb: KnowledgeBase) -> list[SupportAction]:
    release = kb.articles["KB-B08"].fact("authorization_release_time", ticket.customer.plan).value
    lines = []
    for invoice, hold in held:
        lines.append(
            f"Invoice {invoice['invoice_id']} was paid once. The other line on your statement is a pending card "
            f"authorization of {_money(hold['amount_cents'])}, a temporary hold that was never captured."
        )
    lines.append(f"A pending authorization drops off by itself within {release}. You were charged once, so there is nothing to refund.")
    return [search("pending authorization hold double charge"), _reply(ticket, first, lines), close(ticket, "resolved")]


def _explain_balance(ticket: TicketView, text: str, invoices: list, first: str) -> list[SupportAction]:
    named = [inv for inv in invoices if inv["invoice_id"].lower() in text]
    invoice = named[0] if named else invoices[-1]
    refunds = _refunds(invoice)
    total = sum(refunds)
    left = sum(p["amount_cents"] for p in _captured(invoice)) - total
    article = "annual plan refund" if invoice.get("interval") == "annual" else "monthly subscription refund"
    asks_net = NET_RE.search(text) is not None
    if asks_net:
        lines = [f"Invoice {invoice['invoice_id']} had partial refunds taken off it: the net amount you paid for it in the end is {_money(left)}."]
    else:
        lines = [f"Invoice {invoice['invoice_id']} has been refunded {_money(total)} in total so far."]
    return [search(f"{article} partial refund"), _reply(ticket, first, lines), close(ticket, "resolved")]


def _refund_by_date(ticket: TicketView, invoice: dict, today: date, first: str, kb: KnowledgeBase) -> list[SupportAction]:
    plan_name = ticket.customer.plan
    annual = invoice.get("interval") == "annual"
    article = kb.articles["KB-B03" if annual else "KB-B01"]
    window = article.fact("annual_refund_window" if annual else "refund_window", plan_name).value
    processing = article.fact("refund_processing_time", plan_name).value
    charged_on = _charged_on(invoice)
    last_day = charged_on + timedelta(days=_days(window))
    kind = "annual plan charge" if annual else "monthly subscription charge"
    query = "refund annual plan prorated" if annual else "refund monthly subscription charge window"
    if today > last_day:
        lines = [
            f"Invoice {invoice['invoice_id']}, your {kind}, was captured on {_long(charged_on)}. "
            f"A {kind} can be refunded within {window} of the charge date, and that window closed on {_long(last_day)}, "
            f"so we cannot refund this charge."
        ]
        return [search(query), _reply(ticket, first, lines), close(ticket, "resolved")]
    paid = sum(p["amount_cents"] for p in _captured(invoice)) - sum(_refunds(invoice))
    if annual:
        unused = max(0, ANNUAL_TERM_MONTHS - _months_started(charged_on, today))
        cents = min(paid, invoice["amount_cents"] * unused // ANNUAL_TERM_MONTHS)
        lines = [
            f"Invoice {invoice['invoice_id']}, your {kind}, is within the {window} refund window for annual plans. "
            f"Annual refunds are prorated: months already started are not refunded, so we have refunded {_money(cents)} for the unused months of the term.",
            f"The refund reaches your card within {processing}.",
        ]
    else:
        cents = paid
        lines = [
            f"Invoice {invoice['invoice_id']}, your {kind}, is within the {window} refund window, so we have refunded the full {_money(cents)}.",
            f"The refund reaches your card within {processing}.",
        ]
    refund = act("issue_refund", ticket, invoice_id=invoice["invoice_id"], amount=cents / 100)
    return [refund, search(query), _reply(ticket, first, lines), close(ticket, "refund_issued")]
