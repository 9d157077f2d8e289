"""Playbook for incidents reasoning cases: what a careful support engineer does, from the observation.

It recognises three kinds of ticket from their words, and decides each from the records:

- An alarm, or a quiet report of numbers: a database dropped on purpose (staging, test) or a
  "what would happen if" question is routine whatever words it uses; an outage the customer
  writes about in alarm is checked against the incidents record (resolved: routine); a row or
  object count that fell to 0 is checked against the usage records (a fall to 0 that nobody
  caused is a data-loss emergency: escalate, even in the calmest words).
- A rate-limit question: the plan's limit (KB-T01) against the measured peak in the usage
  records, and the decision they give.
- A webhook question and a VAT question in one ticket: both answered, the category and lead
  article taken from the first.

Tickets it does not recognise get None, so the original logic (and its EMERGENCY_RULES) keeps
handling them.
"""

from __future__ import annotations

import re

from ...domain.kb import KnowledgeBase
from ...models import SupportAction, SupportObservation, TicketView
from ..reading import has_cue, ticket_words
from .steps import act, answer, classify_as, lookup

DELETE_WORDS = ("deleted", "dropped", "wiped", "removed", "destroyed", "delete", "drop", "wipe")
NON_PRODUCTION = ("staging", "test database", "test db", "test environment", "test-", "stage-")
ON_PURPOSE = ("on purpose", "intentional", "deliberate", "as planned", "myself", "rebuild", "recreating", "start it again", "as part of")
HYPOTHETICAL = ("what would happen", "what happens if", "hypothetical", "in theory", "suppose", "say someone", "if someone",
                "if one of our", "if our production", "were deleted", "tabletop", "nothing has actually happened", "nothing is wrong",
                "planning for the worst", "disaster-recovery", "disaster recovery", "business-continuity", "business continuity")
OUTAGE = ("outage", "went down", "fell over", "was down", "were down", "unreachable")
COUNTED = ("rows", "row count", "objects", "object count", "count(*)", "count")
WEBHOOK = ("webhook",)
TAX = ("vat", "tax id", "tax number", "tax registration")
RATE = ("rate limit", "request limit", "rate cap", "request cap", "throttl", "limit", "cap ", "cap?", "cap,", "cap.")
PLAN_MOVE = ("upgrade", "bigger plan", "higher plan", "larger plan", "plan change", "move up", "big enough", "headroom")
# A count falling to nothing: "... 48,210 rows yesterday ... 0 this morning", "to 0", "zero rows".
_ZERO_RE = re.compile(r"(?<![\d,.])(?:0|zero)(?![\d,.]\d)(?!\.\d)")
_NUMBER_RE = re.compile(r"\d{1,3}(?:,\d{3})+|\d{3,}")

BACKUPS, DELETED_DB, STATUS, DATA_LOSS, RATE_ARTICLE, WEBHOOKS, TAX_ARTICLE = (
    "KB-T07", "KB-T08", "KB-T09", "KB-S05", "KB-T01", "KB-T05", "KB-B10",
)


def _first(text: str, cues: tuple[str, ...]) -> int:
    found = [m.start() for c in cues for m in [re.search(r"(?<![a-z])" + re.escape(c), text)] if m]
    return min(found) if found else len(text)


def recognise(ticket: TicketView) -> str | None:
    """Which of this playbook's situations the ticket tells, from its words alone."""
    text = ticket_words(ticket)
    if has_cue(text, WEBHOOK) and has_cue(text, TAX):
        return "two_intents"
    if has_cue(text, DELETE_WORDS) and has_cue(text, NON_PRODUCTION) and has_cue(text, ON_PURPOSE):
        return "staging_drop"
    if has_cue(text, DELETE_WORDS) and has_cue(text, HYPOTHETICAL):
        return "hypothetical"
    if has_cue(text, OUTAGE):
        return "outage"
    if has_cue(text, COUNTED) and _NUMBER_RE.search(text) and _ZERO_RE.search(text):
        return "count_fell"
    if has_cue(text, RATE) and has_cue(text, PLAN_MOVE):
        return "rate_peak"
    return None


def plan(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction] | None:
    """Every step for this ticket in order, or None when this playbook does not recognise it."""
    situation = recognise(ticket)
    if situation is None:
        return None
    return _PLANS[situation](ticket, observation, kb)


# --- steps ---------------------------------------------------------------------------------

def _value(kb: KnowledgeBase, article: str, key: str, plan: str) -> str:
    return kb.articles[article].fact(key, plan).value


# --- e. alarm words, and emergencies without them -------------------------------------------

def _staging_drop(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    plan_name = ticket.customer.plan
    retention = _value(kb, BACKUPS, "backup_retention", plan_name)
    return [
        classify_as(ticket, "technical"),
        *answer(
            ticket, kb.articles[BACKUPS].title,
            "Thanks for letting us know. Since you removed the non-production database on purpose to rebuild it, there is nothing "
            "for us to recover and no incident on our side.",
            f"On your {plan_name.capitalize()} plan, automated backups are kept for {retention}. Point-in-time recovery lets you restore "
            "to any moment inside that window, and a restore creates a new database instance next to the original.",
        ),
    ]


def _hypothetical(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    window = _value(kb, DELETED_DB, "deleted_db_recovery_window", ticket.customer.plan)
    return [
        classify_as(ticket, "technical"),
        *answer(
            ticket, kb.articles[DELETED_DB].title,
            f"Good question to settle in advance. If a production database is deleted, our support engineers can recover it for {window} "
            "after the deletion; after that the data is erased for good. There is no self-service undelete in the console: you would "
            "email support right away, and the window counts from the moment of deletion.",
            "While you wait, do not create a new database with the same name, because that makes recovery impossible. The recovered "
            "database comes back with new connection credentials.",
        ),
    ]


def _open_incidents(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("status") != "resolved" or r.get("data_loss")]


def _outage(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    steps = [classify_as(ticket, "technical"), lookup(ticket, "incidents")]
    incidents = observation.records.get("incidents")
    if incidents is None:
        return steps  # the rest waits for the record
    if _open_incidents(incidents):
        return steps + _data_loss_steps(ticket, kb)
    status = _value(kb, STATUS, "status_page", ticket.customer.plan)
    interval = _value(kb, STATUS, "incident_update_interval", ticket.customer.plan)
    if incidents:
        latest = max(incidents, key=lambda r: r.get("resolved_at") or "")
        day = (latest.get("resolved_at") or "")[:10]
        found = (f"I checked our incident record: the incident {latest.get('incident_id', '')} ({latest.get('title', 'the outage')}) "
                 f"was resolved on {day}, and no customer data was lost in it. There is nothing ongoing and nothing you need to do.")
    else:
        found = "I checked our incident record for your regions: there is no open incident, and no customer data was lost."
    return steps + answer(
        ticket, kb.articles[STATUS].title, found,
        f"You can follow incidents on our status page at {status}; while an incident is active we post an update at least every "
        f"{interval}, and you can subscribe to updates there.",
    )


def count_fell_to_zero(usage: list[dict]) -> str | None:
    """The usage field (stored objects, database rows) that fell from a positive count to 0 from
    one day to the next, if any."""
    rows = sorted(usage, key=lambda r: r.get("day", ""))
    for field in ("db_rows", "stored_objects"):
        for before, after in zip(rows, rows[1:]):
            if (before.get(field) or 0) > 0 and after.get(field) == 0:
                return field
    return None


def _data_loss_steps(ticket: TicketView, kb: KnowledgeBase) -> list[SupportAction]:
    who = _value(kb, DATA_LOSS, "data_loss_escalation", ticket.customer.plan)
    first_update = _value(kb, DATA_LOSS, "data_loss_first_update", ticket.customer.plan)
    return [
        act("escalate_ticket", ticket, reason="Data loss: the records show the count falling to 0 with no change by the customer."),
        *answer(
            ticket, kb.articles[DATA_LOSS].title,
            "Our records confirm the count fell to 0 overnight, and nothing on your side explains it, so we are treating this as a "
            f"data-loss emergency. It is escalated to {who} now, and you will get a first update within {first_update}.",
            "In the meantime, please stop writes to the affected resource if you can, for example by pausing jobs and deployments, "
            "so that nothing overwrites the data needed for recovery.",
            resolution="escalated",
        ),
    ]


def _count_fell(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    steps = [classify_as(ticket, "technical"), lookup(ticket, "usage")]
    usage = observation.records.get("usage")
    if usage is None:
        return steps
    if count_fell_to_zero(usage):
        return steps + _data_loss_steps(ticket, kb)
    status = _value(kb, STATUS, "status_page", ticket.customer.plan)
    return steps + answer(
        ticket, kb.articles[STATUS].title,
        "I checked your usage records: the stored counts did not fall to 0 on our side, so this looks like a "
        f"reporting delay. If it persists, check {status} and reply here.",
    )


# --- b. the plan's rate limit against the measured peak -------------------------------------

def _rate_peak(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    steps = [classify_as(ticket, "technical"), lookup(ticket, "usage")]
    usage = observation.records.get("usage")
    if usage is None:
        return steps
    plan_name = ticket.customer.plan
    limit_fact = kb.articles[RATE_ARTICLE].fact("rate_limit", plan_name)
    limit = limit_fact.quantity.value if limit_fact.quantity else 0
    rows = [r for r in usage if r.get("peak_rpm") is not None]
    if not rows:
        rows = [{"peak_rpm": 0, "day": "no day"}]
    top = max(rows, key=lambda r: r["peak_rpm"])
    over = [r for r in rows if r["peak_rpm"] > limit]
    peak = f"{top['peak_rpm']:,} requests per minute"
    if over:
        decision = (f"That is above your limit, on {len(over)} of the days recorded, and requests over it were rejected with "
                    "HTTP 429, so you need to upgrade: upgrading your plan raises the rate limit as soon as it is applied.")
    else:
        decision = "That is below your limit on every day, so you do not need to upgrade; your current plan is enough for this traffic."
    return steps + answer(
        ticket, kb.articles[RATE_ARTICLE].title,
        f"Your {plan_name.capitalize()} plan's rate limit is {limit_fact.value}. I checked your usage records: your measured "
        f"peak was {peak}, on {top.get('day', 'one day')}.",
        decision,
    )


# --- f. two intents: webhook retries and a VAT ID on a past invoice -------------------------

def _two_intents(ticket: TicketView, observation: SupportObservation, kb: KnowledgeBase) -> list[SupportAction]:
    body = ticket.body.lower()
    webhook_first = _first(body, WEBHOOK) < _first(body, TAX)
    steps = [classify_as(ticket, "technical" if webhook_first else "billing"), lookup(ticket, "invoices")]
    invoices = observation.records.get("invoices")
    if invoices is None:
        return steps
    plan_name = ticket.customer.plan
    attempts = _value(kb, WEBHOOKS, "webhook_retry_attempts", plan_name)
    period = _value(kb, WEBHOOKS, "webhook_retry_period", plan_name)
    location = _value(kb, TAX_ARTICLE, "tax_id_location", plan_name)
    issued = ", ".join(f"{i['invoice_id']} (issued {i.get('issued_on') or i.get('period')})" for i in invoices)
    webhooks = (f"Webhooks: a failed delivery is retried automatically, {attempts} spread over {period}. After the last retry "
                "the event is not sent again automatically; use Redeliver in the webhook log once your endpoint is back.")
    tax = (f"VAT: add your tax ID in {location}. A tax ID applies to future invoices only, so invoice {issued} keeps the details it "
           "was issued with and past invoices are not reissued; your next invoice will show it.")
    query = f"{kb.articles[WEBHOOKS].title} {kb.articles[TAX_ARTICLE].title}"
    return steps + answer(ticket, query, *((webhooks, tax) if webhook_first else (tax, webhooks)))


_PLANS = {
    "staging_drop": _staging_drop,
    "hypothetical": _hypothetical,
    "outage": _outage,
    "count_fell": _count_fell,
    "rate_peak": _rate_peak,
    "two_intents": _two_intents,
}
