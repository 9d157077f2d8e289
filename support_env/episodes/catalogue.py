"""Task catalogue: the task ids, and a task id (and seed) turned into an episode spec:
the canonical episode from its data file, or a generated one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from ..domain.world import WORLDS_DIR

from ..models import Customer
from .generator import family_episode, generate_family_queue, generate_episode
from .spec import EpisodeSpec, ExpectedWrite, ForbiddenClaim, ReplyTruth, TicketSpec, TicketTruth, ticket_fact

TASKS_DIR = Path(__file__).parent / "data" / "tasks"
QUEUE_TASKS = ("easy_classify", "medium_kb_reply", "hard_mixed_queue")
CASE_TASKS = ("duplicate_charge_refund", "account_takeover_fraud", "damaged_item_replacement")
EXPERT_TASKS = ("expert_queue",)  # every ticket a reasoning-family case (episodes/families/)
TASK_IDS = QUEUE_TASKS + CASE_TASKS + EXPERT_TASKS
GENERATED_TASKS = QUEUE_TASKS + EXPERT_TASKS  # tasks with seeded variants
DEFAULT_TASK_ID = "easy_classify"


class UnknownTaskError(ValueError):
    """Raised for a task id that is not in the catalogue; the message lists the valid ones."""

    def __init__(self, task_id: object):
        super().__init__(f"unknown task_id {task_id!r}; valid task ids: {', '.join(TASK_IDS)}")


def _ticket(raw: dict) -> TicketSpec:
    t = raw["truth"]
    reply = t.get("reply")
    return TicketSpec(
        id=raw["id"],
        subject=raw["subject"],
        body=raw["body"],
        customer=Customer(**raw["customer"]),
        priority=raw["priority"],
        truth=TicketTruth(
            kind=t["kind"],
            category=t.get("category"),
            reply=ReplyTruth(
                reply["article"],
                tuple(reply["required"]),
                tuple(reply.get("allowed", ())),
                tuple(ForbiddenClaim.from_data(f) for f in reply.get("forbidden", ())),
                tuple(ticket_fact(f["key"], f["value"], f.get("synonyms")) for f in reply.get("ticket_facts", ())),
            )
            if reply
            else None,
            escalate=bool(t["escalate"]),
            outcome=tuple(ExpectedWrite(**w) for w in t["outcome"]) if "outcome" in t else None,
            resolution=t.get("resolution"),
            evidence=tuple(t.get("evidence", ())),
        ),
    )


@lru_cache(maxsize=None)
def _task_file(task_id: str) -> dict:
    if task_id not in TASK_IDS:
        raise UnknownTaskError(task_id)
    return json.loads((TASKS_DIR / f"{task_id}.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def canonical_task(task_id: str) -> EpisodeSpec:
    """The task exactly as written in its data file. A task file without tickets names the
    generated queue that is its canonical episode (`canonical`: split and seed)."""
    raw = _task_file(task_id)
    spec = EpisodeSpec(
        task_id=raw["task_id"],
        difficulty=raw["difficulty"],
        objective=raw["objective"],
        seed=None,
        tickets=tuple(_ticket(t) for t in raw["tickets"]),
        world=raw.get("world"),
        today=raw.get("today", ""),
    )
    if "canonical" in raw:
        drawn = generate_family_queue(spec, raw["canonical"]["seed"], raw["canonical"]["split"], None, raw["ticket_prefix"])
        spec = replace(drawn, seed=None, split=None)
    return dated(spec)


def dated(spec: EpisodeSpec) -> EpisodeSpec:
    """`spec` with its world's date and every ticket's opening time: tickets that have none were
    opened on the morning of `today`, a quarter of an hour or so apart, in queue order."""
    today = spec.today or _world_today(spec.world)
    start = datetime.fromisoformat(f"{today}T08:00:00")
    tickets = tuple(
        t if t.created_at else replace(t, created_at=(start + timedelta(minutes=13 * i + (7 * i * i) % 11)).isoformat() + "Z")
        for i, t in enumerate(spec.tickets)
    )
    return replace(spec, today=today, tickets=tickets)


def _world_today(world: str | None) -> str:
    if world is None:
        raise ValueError("an episode needs a date: its task file or its world file gives `today`")
    return json.loads((WORLDS_DIR / f"{world}.json").read_text(encoding="utf-8"))["today"]


def build_episode(
    task_id: str | None = None, seed: int | None = None, split: str | None = None, queue_length: int | None = None
) -> EpisodeSpec:
    """The episode for `task_id`: the canonical queue without a seed, a queue
    generated from the `split`'s templates with one (same arguments, same
    episode, in any process)."""
    if not isinstance(task_id, (str, type(None))):
        raise UnknownTaskError(task_id)
    spec = canonical_task(task_id or DEFAULT_TASK_ID)
    if seed is None:
        if split is not None or queue_length is not None:
            raise ValueError("split and queue_length apply to generated episodes: pass a seed too")
        return spec
    if spec.task_id not in GENERATED_TASKS:
        raise ValueError(f"{spec.task_id} has no generated variants; omit the seed (generated tasks: {', '.join(GENERATED_TASKS)})")
    return dated(generate_episode(spec, seed, split or "train", queue_length))


def one_case_episode(template_id: str, seed: int, task_id: str = "expert_queue") -> EpisodeSpec:
    """`task_id` with a queue of one case ticket of case template `template_id` (seeded): one
    family's ticket on its own, for tests and audits."""
    raw = _task_file(task_id)
    return dated(family_episode(EpisodeSpec(task_id, raw["difficulty"], raw["objective"], None, ()), template_id, seed))
