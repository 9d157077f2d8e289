"""Seeded episode generator: fills scenario templates into ticket queues.

A template (`data/templates/*.yaml`) describes a family of tickets: its kind,
category, answering article and required fact keys, and several phrasings per
tone. The hidden truth of a generated ticket is derived from its template and
the KB, never written per ticket. Templates and entity pools are split into
train and eval, so an eval episode shows phrasings and entities never seen in
training. The same (task, split, seed) gives the same episode in any process:
all randomness comes from one `random.Random` seeded by that triple.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from .cases import CASE_CHANCE, FAMILY_CHANCE, RECORDS_OBJECTIVE, case_stream, case_templates, fill_case, fill_cases, mix_in_case, mix_in_family, world_records
from ..models import Customer
from .prose import email_address, signed, write_up
from .spec import EpisodeSpec, ForbiddenClaim, ReplyTruth, TicketSpec, TicketTruth
from ..domain.yamlfile import parse_yaml

TEMPLATES_DIR = Path(__file__).parent / "data" / "templates"
POOLS_FILE = Path(__file__).parent / "data" / "pools.yaml"
SPLITS = ("train", "eval")
MAX_QUEUE_LENGTH = 10
SLOTS = ("first_name", "company", "project", "region", "month", "weekday", "error_code", "amount", "invoice_id", "key_last4")

# Kinds of tickets in a queue of each task, as shares of its length.
TASK_MIX = {
    "easy_classify": {"routine": 1.0},
    "medium_kb_reply": {"routine": 1.0},
    "hard_mixed_queue": {"routine": 0.4, "noise": 0.2, "critical": 0.4},
}
# Tasks whose every ticket is a reasoning-family case, and their queue lengths.
FAMILY_TASKS = ("expert_queue",)
EXPERT_LENGTH = (6, 8)
# Chance that a ticket carries an extra, irrelevant detail sentence.
DETAIL_CHANCE = {"easy": 0.3, "medium": 0.5, "hard": 0.7}


@dataclass(frozen=True)
class Template:
    id: str
    split: str
    kind: str
    category: str | None
    article: str | None
    required: tuple[str, ...]
    forbidden: tuple[ForbiddenClaim, ...]
    plans: tuple[str, ...]
    priorities: tuple[str, ...]
    subjects: tuple[str, ...]
    bodies: dict[str, tuple[str, ...]]
    details: tuple[str, ...]


def _template(raw: dict) -> Template:
    return Template(
        id=raw["id"],
        split=raw["split"],
        kind=raw["kind"],
        category=raw.get("category"),
        article=raw.get("article"),
        required=tuple(raw.get("required") or ()),
        forbidden=tuple(ForbiddenClaim.from_data(f) for f in raw.get("forbidden") or ()),
        plans=tuple(raw["plans"]),
        priorities=tuple(raw["priorities"]),
        subjects=tuple(raw["subjects"]),
        bodies={tone: tuple(texts) for tone, texts in raw["bodies"].items()},
        details=tuple(raw.get("details") or ()),
    )


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    return tuple(_template(parse_yaml(p.read_text(encoding="utf-8"))) for p in sorted(TEMPLATES_DIR.glob("*.yaml")))


@lru_cache(maxsize=1)
def pools() -> dict[str, dict[str, tuple[str, ...]]]:
    raw = parse_yaml(POOLS_FILE.read_text(encoding="utf-8"))
    return {split: {name: tuple(map(str, values)) for name, values in raw[split].items()} for split in SPLITS}


def queue_kinds(task_id: str, length: int) -> list[str]:
    """The kinds of a queue of `length` tickets, in the task's proportions (largest remainder)."""
    mix = TASK_MIX[task_id]
    exact = {kind: share * length for kind, share in mix.items()}
    counts = {kind: int(n) for kind, n in exact.items()}
    for kind in sorted(mix, key=lambda k: exact[k] - counts[k], reverse=True)[: length - sum(counts.values())]:
        counts[kind] += 1
    return [kind for kind in mix for _ in range(counts[kind])]


def fill_ticket(template: Template, ticket_id: str, rng: random.Random, split: str, difficulty: str, with_reply: bool) -> TicketSpec:
    pool = pools()[split]
    first, last, company = rng.choice(pool["first_names"]), rng.choice(pool["last_names"]), rng.choice(pool["companies"])
    slots = {
        "first_name": first,
        "company": company,
        "project": rng.choice(pool["projects"]),
        "region": rng.choice(pool["regions"]),
        "month": rng.choice(pool["months"]),
        "weekday": rng.choice(pool["weekdays"]),
        "error_code": rng.choice(pool["error_codes"]),
        "amount": f"${rng.randint(19, 480)}.00",
        "invoice_id": f"INV-{rng.randint(10000, 99999)}",
        "key_last4": "".join(rng.choice(string.hexdigits.lower()[:16]) for _ in range(4)),
    }
    subject, body = write_up(template.bodies, template.subjects, slots, rng, template.details, DETAIL_CHANCE[difficulty])
    reply = ReplyTruth(template.article, template.required, forbidden=template.forbidden) if with_reply and template.article else None
    return TicketSpec(
        id=ticket_id,
        subject=subject,
        body=signed(body, first, last, company),
        customer=Customer(name=f"{first} {last}", company=company, plan=rng.choice(template.plans), email=email_address(first, company)),
        priority=rng.choice(template.priorities),
        truth=TicketTruth(kind=template.kind, category=template.category, reply=reply, escalate=template.kind == "critical"),
        source=template.id,
    )


def draw_today(seed_key: str) -> date:
    """The world's date for a generated episode: a day of 2026, from a stream of its own."""
    return date(2026, 1, 1) + timedelta(days=random.Random(f"{seed_key}:today").randint(0, 364))


def generate_episode(
    canonical: EpisodeSpec, seed: int, split: str = "train", queue_length: int | None = None, families: bool = True
) -> EpisodeSpec:
    """A fresh queue with the shape and difficulty of `canonical`, drawn from `split`'s templates.
    `families=False` leaves out the reasoning-family ticket a hard queue may carry: the queue as
    it was before the families, whose tickets labelled replies are pinned to."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if canonical.task_id in FAMILY_TASKS:
        return generate_family_queue(canonical, seed, split, queue_length)
    length = len(canonical.tickets) if queue_length is None else queue_length
    if not 1 <= length <= MAX_QUEUE_LENGTH:
        raise ValueError(f"queue_length must be between 1 and {MAX_QUEUE_LENGTH}, got {queue_length!r}")
    seed_key = f"{canonical.task_id}:{split}:{seed}:{length}"
    rng = random.Random(seed_key)
    with_reply = any(t.truth.reply for t in canonical.tickets)
    kinds = queue_kinds(canonical.task_id, length)
    rng.shuffle(kinds)
    # One shuffled deck per kind, dealt in turn: no template repeats in a queue until its deck runs out.
    decks = {kind: rng.sample(ts, len(ts)) for kind in sorted(set(kinds)) for ts in [[t for t in templates() if t.split == split and t.kind == kind]]}
    dealt = {kind: 0 for kind in decks}
    prefix = canonical.tickets[0].id[0]
    tickets = []
    for index, kind in enumerate(kinds):
        template = decks[kind][dealt[kind] % len(decks[kind])]
        dealt[kind] += 1
        tickets.append(fill_ticket(template, f"{prefix}{index + 1:02d}", rng, split, canonical.difficulty, with_reply))
    # Record-backed cases come from streams of their own: a queue without one is the same with or without them.
    case_rng = random.Random(f"{seed_key}:case")
    cases, today = [], None
    if case_rng.random() < CASE_CHANCE.get(canonical.task_id, 0.0):
        mixed = mix_in_case(tickets, case_rng, split, pools()[split])
        if mixed is not None:
            tickets, case, today = mixed
            cases.append(case)
    today = today or draw_today(seed_key)
    family_rng = random.Random(f"{seed_key}:family")
    if families and family_rng.random() < FAMILY_CHANCE.get(canonical.task_id, 0.0):
        mixed = mix_in_family(tickets, family_rng, split, pools()[split], today, seed_key)
        if mixed is not None:
            tickets, case = mixed
            cases.append(case)
    if not cases:
        return EpisodeSpec(canonical.task_id, canonical.difficulty, canonical.objective, seed, tuple(tickets), split, today=today.isoformat())
    return EpisodeSpec(canonical.task_id, canonical.difficulty, canonical.objective + RECORDS_OBJECTIVE, seed, tuple(tickets), split,
                       records=world_records(cases, today), today=today.isoformat())


def generate_family_queue(canonical: EpisodeSpec, seed: int, split: str, queue_length: int | None, prefix: str | None = None) -> EpisodeSpec:
    """A queue made only of reasoning-family case tickets (`expert_queue`): 6-8 tickets unless
    `queue_length` says otherwise, the families dealt from a shuffled deck (no family twice until
    every family has had a ticket), each ticket with its own customer and records. A ticket's words
    and records depend only on the seed, its place and its template (`family_ticket` rebuilds it)."""
    rng, length = _family_queue_length(canonical.task_id, split, seed, queue_length)
    if not 1 <= length <= EXPERT_LENGTH[1]:  # a family ticket takes up to 8 steps: more would not fit in 50
        raise ValueError(f"queue_length of {canonical.task_id} must be between 1 and {EXPERT_LENGTH[1]}, got {queue_length!r}")
    by_family: dict[str, list] = {}
    for template in case_templates():
        if template.split == split and template.family is not None:
            by_family.setdefault(template.family, []).append(template)
    if not by_family:
        raise ValueError(f"no reasoning-family case templates in the {split} split")
    families = rng.sample(sorted(by_family), len(by_family))
    chosen = [rng.choice(by_family[families[i % len(families)]]) for i in range(length)]
    rng.shuffle(chosen)
    seed_key = f"{canonical.task_id}:{split}:{seed}:{length}"
    today = draw_today(seed_key)
    prefix = prefix or canonical.tickets[0].id[0]
    tickets, cases = fill_cases(chosen, [f"{prefix}{i + 1:02d}" for i in range(length)], seed_key, split, today, pools()[split])
    return EpisodeSpec(canonical.task_id, canonical.difficulty, canonical.objective, seed, tuple(tickets), split,
                       records=world_records(cases, today), today=today.isoformat())


def family_ticket(task_id: str, template_id: str, split: str, seed: int, ticket_id: str) -> TicketSpec:
    """The ticket `ticket_id` of a seeded family queue as template `template_id` fills it, without
    dealing the queue: for labelled replies pinned to a ticket, which then stay pinned when
    templates are added (and the deal changes)."""
    (template,) = [t for t in case_templates() if t.id == template_id]
    _, length = _family_queue_length(task_id, split, seed, None)
    seed_key = f"{task_id}:{split}:{seed}:{length}"
    stream = case_stream(seed_key, int(ticket_id[1:]) - 1)
    ticket, _ = fill_case(template, ticket_id, stream, split, draw_today(seed_key), pools()[split])
    return ticket


def _family_queue_length(task_id: str, split: str, seed: int, queue_length: int | None) -> tuple[random.Random, int]:
    """The dealing stream of a family queue, and its length: `queue_length`, or 6-8 drawn first."""
    rng = random.Random(f"{task_id}:{split}:{seed}:{queue_length}")
    return rng, rng.randint(*EXPERT_LENGTH) if queue_length is None else queue_length


def family_episode(canonical: EpisodeSpec, template_id: str, seed: int) -> EpisodeSpec:
    """An episode of `canonical`'s task holding one case ticket of case template `template_id`, for
    tests and audits of one family."""
    (template,) = [t for t in case_templates() if t.id == template_id]
    seed_key = f"{canonical.task_id}:{template.split}:{seed}:{template_id}"
    today = draw_today(seed_key)
    tickets, cases = fill_cases([template], ["X01"], seed_key, template.split, today, pools()[template.split])
    return EpisodeSpec(canonical.task_id, canonical.difficulty, canonical.objective, seed, tuple(tickets), template.split,
                       records=world_records(cases, today), today=today.isoformat())
