"""Reasoning families: incidents cases (scenarios registered in SCENARIOS by name).

- `alarm_words` (family e): alarm words without an emergency, and an emergency without alarm
  words. A staging database dropped on purpose, a "what would happen if" question and last
  week's outage that the incidents record shows resolved are routine, whatever words they use;
  a production table or bucket whose row or object count fell to 0 overnight, told in plain
  figures (the usage records show the fall), is a data-loss emergency.
- `rate_peak` (family b, a computed answer): the plan's rate limit against the customer's
  measured peak in the usage records, and the decision it gives (upgrade or not).
- `two_intents` (family f): a webhook retry question and a VAT question about a past invoice in
  one ticket, answered from two articles.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from ...domain.facts import Fact, make_fact
from ..casebook import PLAN_PRICE_CENTS, Case, Person, Scenario, account_row, hex_id
from ..spec import ForbiddenClaim, ticket_fact

REGIONS = ("eu-west-1", "eu-west-2", "eu-central-1", "us-east-1", "us-east-2", "us-west-2", "ap-southeast-1", "ap-northeast-1", "sa-east-1")
RATE_LIMITS = {"free": 60, "pro": 600, "business": 3000, "enterprise": 10000}
TABLES = ("orders", "customers", "shipments", "bookings", "events", "messages", "readings", "listings")
BUCKETS = ("media", "uploads", "assets", "exports", "attachments", "scans", "backups-archive", "images")


def _usage(person: Person, rng: random.Random, today: date, days: int = 7, **last: int) -> list[dict]:
    """A week of daily usage rows: requests, the day's peak rate, rejected requests, stored
    objects and database rows; `last` overrides fields of the newest day (today)."""
    objects, rows = rng.randint(20_000, 2_500_000), rng.randint(5_000, 900_000)
    limit = RATE_LIMITS[person.plan]
    out = []
    for back in range(days - 1, -1, -1):
        objects += rng.randint(0, 4000)
        rows += rng.randint(0, 1500)
        row = {
            "account_id": person.account_id, "day": (today - timedelta(days=back)).isoformat(),
            "requests": rng.randint(40_000, 900_000), "peak_rpm": int(limit * rng.uniform(0.2, 0.6)), "rate_limited": 0,
            "stored_objects": objects, "db_rows": rows,
        }
        out.append(row)
    out[-1].update(last)
    return out


def _fmt(n: int) -> str:
    return f"{n:,}"


# --- e. alarm words without an emergency, and an emergency without them -------------------

# Routine tickets in alarm words, and emergencies in none: two templates per split (a case
# template has one kind, and a generated queue swaps a ticket for a case of the same kind).
ROUTINE_VARIANTS = ("staging_drop", "hypothetical", "resolved_outage")
CRITICAL_VARIANTS = ("silent_rows", "silent_objects")


def _incident_resolved() -> Fact:
    return make_fact(
        "incident_resolved", "the incident is resolved",
        synonyms=["+the outage is resolved", "+the incident is over", "+the outage is over", "+the outage ended", "+the incident ended",
                  "+the outage was fixed", "+the incident was fixed", "+service was restored", "+services were restored", "+marked resolved",
                  "+the outage is behind us", "the outage is not ongoing", "the outage is not still happening",
                  "the incident is not still open"],
        label="incident status", about=[],
    )


def _no_data_lost() -> Fact:
    return make_fact(
        "incident_no_data_loss", "no customer data was lost",
        synonyms=["no records were lost", "no files were lost", "your records were not lost", "your files were not lost",
                  "no customer data loss", "no data loss occurred", "+your data is intact", "+your records are intact", "+your files are intact"],
        label="data lost in the incident", about=[],
    )


def _alarm_words(person: Person, rng: random.Random, today: date, pool: dict, variants: tuple[str, ...]) -> Case:
    variant = rng.choice(variants)
    region = rng.choice(REGIONS)
    account = account_row(person, regions=[region])
    table, bucket = rng.choice(TABLES), f"{person.company.split()[0].lower()}-{rng.choice(BUCKETS)}"
    slots = {"table": table, "bucket": bucket, "region": region, "db_name": f"{rng.choice(('staging', 'stage', 'test'))}-{rng.choice(TABLES)}-db"}
    records = {"accounts": [account]}
    if variant == "staging_drop":
        records["usage"] = _usage(person, rng, today)
        return Case(records=records, outcome=(), slots=slots, variant=variant, kind="routine", category="technical",
                    article="KB-T07", required=("backup_retention",),
                    allowed=("KB-T08:deleted_db_recovery_window", "KB-T08:rule_backups_removed", "KB-T08:deleted_db_action"),
                    escalate=False, resolution="resolved", evidence=())
    if variant == "hypothetical":
        records["usage"] = _usage(person, rng, today)
        return Case(records=records, outcome=(), slots=slots, variant=variant, kind="routine", category="technical",
                    article="KB-T08", required=("deleted_db_recovery_window",), allowed=("KB-T07:backup_retention",),
                    escalate=False, resolution="resolved", evidence=())
    if variant == "resolved_outage":
        days_ago = rng.randint(5, 10)
        start = today - timedelta(days=days_ago)
        hours = rng.randint(1, 5)
        service = rng.choice(("managed Postgres", "object storage", "REST API"))
        records["incidents"] = [{
            "incident_id": f"INC-{rng.randint(1000, 9999)}", "region": region, "service": service,
            "title": f"Degraded {service} in {region}", "status": "resolved",
            "started_at": f"{start.isoformat()}T{rng.randint(6, 15):02d}:{rng.randint(0, 59):02d}:00Z",
            "resolved_at": f"{start.isoformat()}T{rng.randint(16, 22):02d}:{rng.randint(0, 59):02d}:00Z",
            "data_loss": False, "summary": f"{service} in {region} returned errors for about {hours} hours; fixed, no customer data was lost",
        }]
        records["usage"] = _usage(person, rng, today)
        slots |= {"outage_weekday": start.strftime("%A"), "service": service}
        return Case(records=records, outcome=(), slots=slots, variant=variant, kind="routine", category="technical",
                    article="KB-T09", required=("status_page",), ticket_facts=(_incident_resolved(), _no_data_lost()),
                    escalate=False, resolution="resolved", evidence=("incidents",))
    # silent data loss: a count that fell to 0 overnight, told in plain figures
    field = "db_rows" if variant == "silent_rows" else "stored_objects"
    usage = _usage(person, rng, today, **{field: 0})
    before = usage[-2][field]
    slots |= {"count_before": _fmt(before), "yesterday": usage[-2]["day"]}
    records["usage"] = usage
    return Case(records=records, outcome=(), slots=slots, variant=variant, kind="critical", category="technical",
                article="KB-S05", required=("data_loss_escalation", "data_loss_first_update"),
                escalate=True, resolution="escalated", evidence=("usage",))


# --- b. a computed answer: the plan's rate limit against the measured peak -------------------

def _decision(needed: bool) -> Fact:
    if needed:
        return make_fact(
            "upgrade_decision", "an upgrade is needed",
            synonyms=["you need to upgrade", "you should upgrade", "we recommend upgrading", "we recommend an upgrade", "upgrading is needed",
                      "you need a higher plan", "you need a bigger plan", "+your traffic is over the limit", "+you are over your limit",
                      "+your peak is above your limit", "+your peak exceeds your limit", "+you exceed your limit", "+you exceeded your limit",
                      "+you are exceeding your limit", "+you went over your limit", "+you are above your limit", "+you are hitting the limit",
                      "+you are hitting your limit", "+you hit the limit", "+you hit your limit", "+an upgrade would fix this",
                      "+upgrade to Business", "+upgrade to Enterprise", "+move to Business", "+move to Enterprise",
                      "your current plan is not enough", "your plan is not enough", "you are not within your limit"],
            label="upgrade decision", about=[],
        )
    return make_fact(
        "upgrade_decision", "you do not need a higher plan",
        synonyms=["an upgrade is not needed", "you do not need a bigger plan", "you do not need a larger plan",
                  "you are not hitting your limit", "you are not hitting the limit", "you are not over your limit", "you are not over the limit",
                  "you have not exceeded your limit", "you do not exceed your limit", "you did not hit the limit", "you have not hit the limit",
                  "+your current plan is enough", "+your plan is enough", "+your current plan is sufficient", "+you are within your limit",
                  "+you are well within your limit", "+you are within the limit", "+your peak is below your limit", "+your peak is under your limit",
                  "+you stay under your limit", "+you stayed under the limit", "+you are below your limit", "+you are below the limit",
                  "+comfortably within your limit", "+plenty of headroom"],
        label="upgrade decision", about=[],
    )


def _rate_peak(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """A week of usage with each day's peak rate; the customer asks whether they hit the limit and
    must upgrade. Over: the peak passes the plan's limit on two days or more (429s follow); under:
    every day stays below it."""
    limit = RATE_LIMITS[person.plan]
    over = rng.random() < 0.5
    usage = _usage(person, rng, today - timedelta(days=1))
    if over:
        peak = int(limit * rng.uniform(1.15, 2.4)) // 10 * 10 + rng.choice((0, 10, 20, 40))
        days = rng.sample(range(len(usage)), rng.randint(2, 4))
        for i in days:
            usage[i]["peak_rpm"] = int(peak * rng.uniform(0.8, 1.0)) if i != days[0] else peak
            usage[i]["peak_rpm"] = max(usage[i]["peak_rpm"], limit + 50)
            usage[i]["rate_limited"] = rng.randint(200, 20_000)
    else:
        peak = int(limit * rng.uniform(0.45, 0.85)) // 10 * 10 + rng.choice((0, 10, 30))
        usage[rng.randrange(len(usage))]["peak_rpm"] = peak
        for row in usage:
            row["peak_rpm"] = min(row["peak_rpm"], peak)
    peak = max(row["peak_rpm"] for row in usage)
    peak_text = f"{_fmt(peak)} requests per minute"
    return Case(
        records={"accounts": [account_row(person)], "usage": usage},
        outcome=(),
        slots={"plan_name": person.plan.capitalize()},
        ticket_facts=(ticket_fact("peak_rate", peak_text), _decision(over)),
        variant=None,
    )


# --- f. two intents in one ticket, answered from two articles --------------------------------

def _two_intents(person: Person, rng: random.Random, today: date, pool: dict) -> Case:
    """A webhook retry question and a VAT-on-a-past-invoice question; the category and answering
    article are the first question's, the other article's facts are required too. The invoice
    record shows it was issued before the tax ID was saved: it is not reissued."""
    webhook_first = rng.random() < 0.5
    issued = today - timedelta(days=rng.randint(3, 25))
    saved = issued + timedelta(days=rng.randint(1, (today - issued).days))
    invoice_id = f"INV-{rng.randint(10000, 99999)}"
    vat = f"{rng.choice(('DE', 'FR', 'NL', 'IE', 'ES', 'IT', 'BE', 'AT'))}{rng.randint(100_000_000, 999_999_999)}"
    invoice = {"invoice_id": invoice_id, "account_id": person.account_id, "kind": "subscription", "period": issued.strftime("%Y-%m"),
               "amount_cents": PLAN_PRICE_CENTS[person.plan], "status": "paid", "issued_on": issued.isoformat(), "tax_id": None}
    payment = {"payment_id": f"pay_{hex_id(rng, 4)}", "invoice_id": invoice_id, "amount_cents": PLAN_PRICE_CENTS[person.plan],
               "status": "captured", "captured_on": issued.isoformat(), "card_last4": f"{rng.randint(0, 9999):04d}"}
    webhook = ("webhook_retry_attempts", "webhook_retry_period")
    tax = ("tax_id_location", "tax_id_not_retroactive")
    if webhook_first:
        article, category, required = "KB-T05", "technical", webhook + tuple(f"KB-B10:{k}" for k in tax)
    else:
        article, category, required = "KB-B10", "billing", tax + tuple(f"KB-T05:{k}" for k in webhook)
    return Case(
        records={"accounts": [account_row(person, tax_id=vat, tax_id_saved_on=saved.isoformat())], "invoices": [invoice], "payments": [payment]},
        outcome=(),
        slots={"invoice_id": invoice_id, "vat_id": vat, "month": issued.strftime("%B")},
        forbidden=(ForbiddenClaim("promised to reissue a past invoice with the tax ID", acts=("reissue_past_invoice",)),),
        variant="webhook_first" if webhook_first else "vat_first",
        category=category, article=article, required=required,
        allowed=("KB-B10:rule_past_invoices_kept",) if webhook_first else ("KB-T05:rule_no_retries_after", "KB-T05:webhook_timeout"),
    )


SCENARIOS: dict[str, Scenario] = {
    "alarm_words": lambda person, rng, today, pool: _alarm_words(person, rng, today, pool, ROUTINE_VARIANTS),
    "quiet_data_loss": lambda person, rng, today, pool: _alarm_words(person, rng, today, pool, CRITICAL_VARIANTS),
    "rate_peak": _rate_peak,
    "two_intents": _two_intents,
}
