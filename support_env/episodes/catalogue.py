"""Task catalogue: the task ids, and a task id (and seed) turned into an episode spec:
the canonical episode from its data file, or a generated one."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..models import Customer
from .generator import generate_episode
from .spec import EpisodeSpec, ExpectedWrite, ForbiddenClaim, ReplyTruth, TicketSpec, TicketTruth, ticket_fact

TASKS_DIR = Path(__file__).parent / "data" / "tasks"
QUEUE_TASKS = ("easy_classify", "medium_kb_reply", "hard_mixed_queue")
CASE_TASKS = ("duplicate_charge_refund", "account_takeover_fraud", "damaged_item_replacement")
TASK_IDS = QUEUE_TASKS + CASE_TASKS
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
def canonical_task(task_id: str) -> EpisodeSpec:
    """The task exactly as written in its data file."""
    if task_id not in TASK_IDS:
        raise UnknownTaskError(task_id)
    raw = json.loads((TASKS_DIR / f"{task_id}.json").read_text(encoding="utf-8"))
    return EpisodeSpec(
        task_id=raw["task_id"],
        difficulty=raw["difficulty"],
        objective=raw["objective"],
        seed=None,
        tickets=tuple(_ticket(t) for t in raw["tickets"]),
        world=raw.get("world"),
    )


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
    if spec.task_id not in QUEUE_TASKS:
        raise ValueError(f"{spec.task_id} has no generated variants; omit the seed (generated tasks: {', '.join(QUEUE_TASKS)})")
    return generate_episode(spec, seed, split or "train", queue_length)
