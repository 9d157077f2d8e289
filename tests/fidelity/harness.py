"""Load the labelled replies (one YAML file per ticket family) and grade each as the
environment would: a single reply sent on its ticket after the answering article was
retrieved.

A reply labelled correct is misjudged (a false negative) when it scores below 0.9;
a reply labelled wrong is misjudged (a false positive) when it keeps more than half
of the reply credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from support_env.domain.kb import default_kb
from support_env.domain.yamlfile import parse_yaml
from support_env.episodes.catalogue import build_episode
from support_env.episodes.spec import TicketSpec
from support_env.grading.progress import SentReply
from support_env.grading.reply import ReplyGrade, grade_reply

FOLDER = Path(__file__).parent
CORRECT_AT_LEAST = 0.9
WRONG_AT_MOST = 0.5


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    label: str  # correct | wrong
    style: str
    phenomena: tuple[str, ...]
    why: str
    reply: str
    task_id: str
    split: str | None
    seed: int | None
    ticket_id: str
    plan: str
    article: str


def load_cases(folder: Path = FOLDER) -> list[Case]:
    cases = []
    for path in sorted(Path(folder).glob("*.yaml")):
        raw = parse_yaml(path.read_text(encoding="utf-8"))
        ticket = raw["ticket"]
        for c in raw["cases"]:
            cases.append(Case(
                id=c["id"], family=raw["family"], label=c["label"], style=c.get("style", "other"),
                phenomena=tuple(c.get("phenomena") or ()), why=c.get("why", ""), reply=c["reply"].strip(),
                task_id=ticket["task_id"], split=ticket.get("split") if ticket.get("seed") is not None else None,
                seed=ticket.get("seed"), ticket_id=ticket["ticket_id"], plan=raw["plan"], article=raw["article"],
            ))
    return cases


@lru_cache(maxsize=None)
def ticket(task_id: str, split: str | None, seed: int | None, ticket_id: str) -> TicketSpec:
    spec = build_episode(task_id, seed, split)
    (found,) = [t for t in spec.tickets if t.id == ticket_id]
    return found


def grade(case: Case) -> ReplyGrade:
    spec = ticket(case.task_id, case.split, case.seed, case.ticket_id)
    sent = [SentReply(text=case.reply, retrieved_before=frozenset({spec.truth.reply.article}))]
    return grade_reply(sent, spec.truth.reply, spec.customer.plan, default_kb())


def misjudged(case: Case, score: float) -> bool:
    return score < CORRECT_AT_LEAST if case.label == "correct" else score > WRONG_AT_MOST
