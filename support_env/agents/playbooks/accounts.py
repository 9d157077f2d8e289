"""Playbook for accounts reasoning cases: what a careful support engineer does, from the observation.

It runs first for every ticket with an account: it opens the account record and, when the sender
is not one of the account's verified contacts, declines to act and sends the request to the owner
(KB-A11), whatever is asked. For the owner's tickets it recognises three more situations and
leaves every other ticket (None) to the next playbook or the original case logic:

- a SecureKey order that "never arrived" while the record shows it delivered and signed for: no
  replacement; say when and by whom, and what to do (KB-A10);
- a replacement or a key revocation that the records leave ambiguous (several recent deliveries,
  several active keys, the ticket naming none): ask which one, then act on the answer;
- the expiry date of a key the ticket names: its creation date plus the key lifetime (KB-T03).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from ...domain.kb import KnowledgeBase
from ...models import SupportAction, SupportObservation, TicketView
from ..reading import emergency
from .steps import act, answer, classify_as, close, first_name, lookup

HARDWARE = ("securekey", "secure key", "security key", "hardware key")
NEVER_ARRIVED = (
    "never arrived", "never received", "not received", "never came", "never got", "never turned up", "hasn't turned up",
    "has not turned up", "haven't received", "have not received", "didn't arrive", "did not arrive", "hasn't arrived",
    "has not arrived", "not arrived", "nothing arrived", "lost in the post", "missing delivery", "lost our", "still no ",
    "no sign of",
)
DAMAGED = ("broken", "cracked", "damaged", "crushed", "smashed", "not recognised", "not recognized", "faulty", "split")
REVOKE = ("revoke", "disable", "remove", "kill", "cut off", "deactivate", "delete")
OUTSIDER = ("contractor", "freelancer", "agency", "consultant", "former", "external", "outside")
EXPIRY = ("expire", "expiry", "expiration", "stop working", "stops working", "good for", "run out", "runs out", "valid")
IN_USE = ("in use", "used", "use it", "using", "idle", "all day", "every day", "constant", "around the clock", "unused")
# KB-A10: damage is reported within 30 days of delivery; KB-T03: keys live 90 days.
REPORT_WINDOW_DAYS = 30
KEY_LIFETIME_DAYS = 90
_ORDER_RE = re.compile(r"\bORD-\d+\b", re.I)


def plan(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction] | None:
    """Every step for this ticket in order, or None when this playbook does not recognise it."""
    records = observation.records
    if "account" not in records:
        return [lookup(ticket, "account")]
    account = records["account"] if isinstance(records["account"], dict) else {}
    contacts = {c.lower() for c in account.get("verified_contacts") or ()}
    if contacts and ticket.customer.email.lower() not in contacts:
        return _not_the_owner(ticket)
    if emergency(ticket) is not None:
        return None
    text = f"{ticket.subject}\n{ticket.body}".lower()
    if _has(text, HARDWARE) and _has(text, NEVER_ARRIVED):
        return _signed_for(ticket, records)
    if _has(text, HARDWARE) and _has(text, DAMAGED):
        return _which_order(ticket, records, _today(observation))
    if "key" in text and _has(text, REVOKE) and _has(text, OUTSIDER):
        return _which_key(ticket, records)
    if "key" in text and _has(text, EXPIRY):
        return _key_expiry(ticket, records)
    return None


# --- d. not the owner ----------------------------------------------------------------------------

def _not_the_owner(ticket: TicketView) -> list[SupportAction]:
    return [lookup(ticket, "account"), classify_as(ticket, "account"), *answer(
        ticket, "who can make requests about an account owner verified contact",
        "Thanks for getting in touch. Requests about an account must come from the account owner or a "
        "verified contact, writing from the verified email address on the account. Your message did not come from one of "
        "those addresses, so we cannot act on this request, and we cannot share account details. We have not made any changes.",
        "Please ask the account owner to send the request from their verified email address, or to add you as a verified "
        "contact in the console.",
    )]


# --- c. never arrived, but delivered and signed for --------------------------------------------------

def _signed_for(ticket: TicketView, records: dict[str, Any]) -> list[SupportAction] | None:
    steps = [lookup(ticket, "account"), lookup(ticket, "orders")]
    if "orders" not in records:
        return steps
    delivered = [o for o in records["orders"] if o.get("status") == "delivered" and o.get("delivered_on")]
    named = {m.upper() for m in _ORDER_RE.findall(f"{ticket.subject} {ticket.body}")}
    if named:
        delivered = [o for o in delivered if o["order_id"].upper() in named] or delivered
    if not delivered:
        return None
    order = max(delivered, key=lambda o: o["delivered_on"])
    signer = order.get("signed_by")
    if not signer:
        return None
    where = re.search(r"delivered to ([^,]+)", order.get("notes") or "")
    at = f" to {where.group(1)}" if where else ""
    return steps + [classify_as(ticket, "account"), *answer(
        ticket, "SecureKey order never arrived delivered signed for replacement",
        f"Thanks for getting in touch. I checked order {order['order_id']}: the carrier shows it was "
        f"delivered on {order['delivered_on']}{at}, and it was signed for by {signer}. The order was signed for, so we cannot "
        f"send a replacement. Please check with the person who signed for it, {signer}, and with your reception or mailroom. "
        "If the keys were lost after delivery, new ones can be ordered under Console > Security > Hardware keys.",
    )]


# --- g. which one? ----------------------------------------------------------------------------------

def _answers(ticket: TicketView) -> str:
    return "\n".join(m.text for m in ticket.thread if m.author == "customer")


def _which_order(ticket: TicketView, records: dict[str, Any], today: date | None) -> list[SupportAction] | None:
    steps = [lookup(ticket, "account"), lookup(ticket, "orders")]
    if "orders" not in records:
        return steps
    recent = [
        o for o in records["orders"]
        if o.get("status") == "delivered" and o.get("delivered_on") and not o.get("replacement_sent")
        and (today is None or (today - date.fromisoformat(o["delivered_on"])).days <= REPORT_WINDOW_DAYS)
    ]
    if len(recent) < 2 or {m.upper() for m in _ORDER_RE.findall(ticket.body)} & {o["order_id"].upper() for o in recent}:
        return None  # one candidate, or the ticket says which: the original case logic handles it
    listed = ", ".join(f"{o['order_id']} ({o['item'].rsplit(' ', 1)[-1]})" for o in sorted(recent, key=lambda o: o["delivered_on"]))
    question = f"Sorry to hear that. I can see {len(recent)} recent SecureKey deliveries on your account: {listed}. Which order arrived damaged?"
    named = {m.upper() for m in _ORDER_RE.findall(_answers(ticket))}
    chosen = [o for o in recent if o["order_id"].upper() in named]
    order = chosen[0] if len(chosen) == 1 else None
    return _ask_then_act(ticket, steps, question, order and (
        act("send_replacement", ticket, order_id=order["order_id"]),
        "replace damaged SecureKey hardware security key",
        f"Thanks for confirming. We have sent a replacement for the whole order {order['order_id']}. It ships within 2 business "
        "days to the delivery address on the order. There is no need to send the damaged keys back.",
        "replacement_sent",
    ))


def _ask_then_act(
    ticket: TicketView, steps: list[SupportAction], question: str, then: tuple[SupportAction, str, str, str] | None
) -> list[SupportAction]:
    """Classify, ask which one (`question`), and once the customer has named it, do `then`: the
    write, a KB query for its policy, the reply saying what was done, the resolution. Without a
    clear answer, close after asking."""
    steps = [*steps, classify_as(ticket, "account"), act("reply_ticket", ticket, reply_text=f"Hi {first_name(ticket)},\n\n{question}")]
    if then is None:
        return steps + [close(ticket, "resolved")]
    write, query, done, resolution = then
    return steps + [write, *answer(ticket, query, done, resolution=resolution)]


def _which_key(ticket: TicketView, records: dict[str, Any]) -> list[SupportAction] | None:
    steps = [lookup(ticket, "account"), lookup(ticket, "api_keys")]
    if "api_keys" not in records:
        return steps
    active = [k for k in records["api_keys"] if k.get("status") == "active"]
    body = f"{ticket.subject} {ticket.body}".lower()
    if len(active) < 2 or any(k["last4"].lower() in body or k["key_id"].lower() in body for k in active):
        return None
    listed = ", ".join(f"ending {k['last4']} (created {k['created_on']})" for k in sorted(active, key=lambda k: k["created_on"]))
    question = f"Happy to help. Your account has {len(active)} active API keys: {listed}. Which key did your contractor use?"
    answer = _answers(ticket).lower()
    chosen = [k for k in active if re.search(rf"\b{re.escape(k['last4'].lower())}\b", answer) or k["key_id"].lower() in answer]
    key = chosen[0] if len(chosen) == 1 else None
    return _ask_then_act(ticket, steps, question, key and (
        act("revoke_api_key", ticket, key_id=key["key_id"]),
        "revoke a former contractor API key access",
        f"Thanks for confirming. We have revoked the API key ending {key['last4']}; requests made with it now fail. "
        "A revoked key cannot be restored. Your other keys are unchanged.",
        "resolved",
    ))


# --- b. a key's expiry date -------------------------------------------------------------------------

def _key_expiry(ticket: TicketView, records: dict[str, Any]) -> list[SupportAction] | None:
    steps = [lookup(ticket, "account"), lookup(ticket, "api_keys")]
    if "api_keys" not in records:
        return steps
    body = f"{ticket.subject} {ticket.body}".lower()
    named = [k for k in records["api_keys"] if re.search(rf"\b{re.escape(k['last4'].lower())}\b", body) or k["key_id"].lower() in body]
    if len(named) != 1:
        return None
    key = named[0]
    expires = date.fromisoformat(key["created_on"]) + timedelta(days=KEY_LIFETIME_DAYS)
    in_use = " Keys expire 90 days after creation whether used or not, so using it every day does not extend it." if _has(body, IN_USE) else ""
    return steps + [classify_as(ticket, "technical"), *answer(
        ticket, "API key expiry and rotation lifetime",
        f"Thanks for asking. Your API key ending {key['last4']} was created on {key['created_on']}. "
        f"API keys expire 90 days after they are created, so this key expires on {expires.isoformat()}.{in_use} "
        "Rotate it before then to avoid failed requests.",
    )]


# --- helpers ----------------------------------------------------------------------------------------

def _has(text: str, cues: tuple[str, ...]) -> bool:
    return any(c in text for c in cues)


def _today(observation: SupportObservation) -> date | None:
    try:
        return date.fromisoformat(observation.today)
    except (TypeError, ValueError):
        return None

