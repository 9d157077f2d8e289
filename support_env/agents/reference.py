"""Scripted policies that play from the observation alone.

`ReferencePolicy` is the offline baseline and the proof that every task is
solvable: it reads only what an agent sees (the ticket, the search results)
plus the public knowledge base, never the hidden truth. It knows keyword
cues for categories, noise and emergencies, and it states the facts of the
article it found that hold for the customer's plan.
"""

from __future__ import annotations

from typing import Protocol

from . import casework
from .playbooks import PLAYBOOKS
from .reading import classify, compose_reply, emergency, noise_kind
from ..domain.kb import Article, KnowledgeBase, default_kb
from ..models import SupportAction, SupportObservation, TicketView


class Policy(Protocol):
    name: str

    def act(self, observation: SupportObservation) -> SupportAction: ...


class ReferencePolicy:
    """Best scripted play: classify; for case tickets look up the records and do
    the operations they justify; escalate emergencies; search and answer from the
    first current article; close with a resolution code."""

    name = "reference"

    def __init__(self, kb: KnowledgeBase | None = None):
        self.kb = kb or default_kb()
        self._ticket_id: str | None = None
        self._done: set[str] = set()

    def act(self, observation: SupportObservation) -> SupportAction:
        ticket = observation.current_ticket
        if ticket is None:
            raise ValueError("the episode has no current ticket")
        if ticket.id != self._ticket_id:
            self._ticket_id, self._done = ticket.id, set()
        for step in self._plan(ticket, observation):
            key = _step_key(step)
            if key not in self._done:
                self._done.add(key)
                return step
        raise RuntimeError("the plan ended without closing the ticket")

    def _plan(self, ticket: TicketView, observation: SupportObservation) -> list[SupportAction]:
        """Every step for this ticket, in order; `act` takes the first not yet done."""
        if ticket.customer.account_id:
            for playbook in PLAYBOOKS:
                steps = playbook(ticket, observation, self.kb)
                if steps is not None:
                    return steps
        objective = observation.objective.lower()
        noise = noise_kind(ticket)
        answers = ("reply" in objective or "answer" in objective) and noise is None
        rule = emergency(ticket)
        rule_name = rule.name if rule else None
        plan = [SupportAction(action_type="classify_ticket", ticket_id=ticket.id, category=classify(ticket))]
        writes: list[SupportAction] = []
        if ticket.customer.account_id:
            plan += [
                SupportAction(action_type="lookup_record", ticket_id=ticket.id, record=r) for r in casework.records_to_check(ticket, rule_name)
            ]
            writes = casework.planned_writes(ticket, observation.records, rule_name)
            plan += writes
        if rule:
            plan.append(SupportAction(action_type="escalate_ticket", ticket_id=ticket.id, reason=f"Emergency: {rule.name}."))
        if answers:
            query = casework.case_query(writes) or (rule.query if rule else f"{ticket.subject} {ticket.body}"[:500])
            plan.append(SupportAction(action_type="search_kb", query=query))
            article = self._answering_article(observation)
            if article is not None:
                text = compose_reply(ticket, article, casework.summary(writes, ticket))
                plan.append(SupportAction(action_type="reply_ticket", ticket_id=ticket.id, reply_text=text))
        code = casework.resolution(writes, rule is not None, noise)
        plan.append(SupportAction(action_type="close_ticket", ticket_id=ticket.id, resolution=code))
        return plan

    def _answering_article(self, observation: SupportObservation) -> Article | None:
        for result in observation.kb_search_results:
            article = self.kb.articles.get(result.article_id)
            if article is not None and not article.archived:
                return article
        return None


def _step_key(action: SupportAction) -> str:
    """Steps are done once each; texts do not make a step new, except that a reply asking the
    customer a question and the reply after the answer are two steps."""
    asks = action.action_type == "reply_ticket" and (action.reply_text or "").rstrip().endswith("?")
    return casework.write_key(action) + f":{action.record}" + (":asks" if asks else "")
