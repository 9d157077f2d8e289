"""Load the labelled replies (one YAML file per ticket family) and grade each as the
environment would: a single reply sent on its ticket after the answering article was
retrieved.

A file may also state what its ticket's reply must say beyond the ticket's own truth, for
reasoning tickets whose answer is a value computed from the case (a key's expiry date, the days
left in a refund window): `ticket_facts: [{key, value, synonyms?}]` (keys of `episodes/spec.TICKET_FACTS`)
are added to the ticket's reply truth, and `required: [...]` replaces its required KB facts.

A reply labelled correct is misjudged (a false negative) when it scores below 0.9;
a reply labelled wrong is misjudged (a false positive) when it keeps more than half
of the reply credit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from support_env.domain.kb import default_kb
from support_env.domain.yamlfile import parse_yaml
from support_env.episodes.catalogue import EXPERT_TASKS, build_episode, canonical_task, one_case_episode
from support_env.episodes.generator import family_ticket, generate_episode
from support_env.episodes.spec import ReplyTruth, TicketSpec, ticket_fact
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
    required: tuple[str, ...] | None = None  # replaces the ticket's required KB facts
    template: str | None = None  # the case template of a `case:<id>` family
    ticket_facts: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, value, synonyms): facts of the case


def load_cases(folder: Path = FOLDER) -> list[Case]:
    cases = []
    for path in sorted(Path(folder).glob("*.yaml")):
        raw = parse_yaml(path.read_text(encoding="utf-8"))
        ticket = raw["ticket"]
        for c in raw["cases"]:
            cases.append(Case(
                id=c["id"], family=raw["family"], template=raw["family"][5:] if raw["family"].startswith("case:") else None, label=c["label"], style=c.get("style", "other"),
                phenomena=tuple(c.get("phenomena") or ()), why=c.get("why", ""), reply=c["reply"].strip(),
                task_id=ticket["task_id"], split=ticket.get("split") if ticket.get("seed") is not None else None,
                seed=ticket.get("seed"), ticket_id=ticket["ticket_id"], plan=raw["plan"], article=raw["article"],
                required=tuple(raw["required"]) if raw.get("required") else None,
                ticket_facts=tuple((f["key"], str(f["value"]), tuple(f.get("synonyms") or ())) for f in raw.get("ticket_facts") or ()),
            ))
    return cases


@lru_cache(maxsize=None)
def ticket(task_id: str, split: str | None, seed: int | None, ticket_id: str, template: str | None = None) -> TicketSpec:
    """The ticket a file is pinned to. A reasoning-family ticket is pinned by its case template:
    `ticket: {task_id: "template:<case template id>", seed: N, ticket_id: X01}` (the one-ticket
    episode `one_case_episode` builds), or by a seeded expert_queue ticket, rebuilt from its case
    template (the file's family, `case:<template id>`) by `family_ticket`: either way no other
    template's arrival changes it."""
    if task_id.startswith("template:"):
        spec = one_case_episode(task_id.split(":", 1)[1], seed)
    elif task_id in EXPERT_TASKS and seed is not None:
        return family_ticket(task_id, template, split, seed, ticket_id)
    elif seed is not None and template is None:
        spec = generate_episode(canonical_task(task_id), seed, split, families=False)  # as the replies were written
    else:
        spec = build_episode(task_id, seed, split)
    (found,) = [t for t in spec.tickets if t.id == ticket_id]
    return found


@lru_cache(maxsize=None)
def reply_truth(case: Case) -> ReplyTruth:
    """The ticket's reply truth, with the file's required facts and facts of the case, if any."""
    truth = ticket(case.task_id, case.split, case.seed, case.ticket_id, case.template).truth.reply
    if case.required is None and not case.ticket_facts:
        return truth
    return replace(
        truth, required=truth.required if case.required is None else case.required,
        ticket_facts=truth.ticket_facts + tuple(ticket_fact(key, value, list(synonyms)) for key, value, synonyms in case.ticket_facts),
    )


def grade(case: Case) -> ReplyGrade:
    spec = ticket(case.task_id, case.split, case.seed, case.ticket_id, case.template)
    truth = reply_truth(case)
    sent = [SentReply(text=case.reply, retrieved_before=frozenset({truth.article}))]
    return grade_reply(sent, truth, spec.customer.plan, default_kb())


def misjudged(case: Case, score: float) -> bool:
    return score < CORRECT_AT_LEAST if case.label == "correct" else score > WRONG_AT_MOST
