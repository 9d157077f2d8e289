"""Scripted policies that play from the observation alone.

`ReferencePolicy` is the offline baseline and the proof that every task is
solvable: it reads only what an agent sees (the ticket, the search results)
plus the public knowledge base, never the hidden truth. It knows keyword
cues for categories, noise and emergencies, and it states the facts of the
article it found that hold for the customer's plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from . import casework
from ..domain.kb import Article, KnowledgeBase, default_kb
from ..models import SupportAction, SupportObservation, TicketView


class Policy(Protocol):
    name: str

    def act(self, observation: SupportObservation) -> SupportAction: ...


CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "billing": (
        "refund", "invoice", "charge", "charged", "payment", "card", "billing", "bill", "price", "vat",
        "tax", "receipt", "subscription", "paid", "pay", "money", "credit card", "declined", "upgrade", "downgrade",
    ),
    "technical": (
        "error", "429", "500", "503", "api", "webhook", "rate limit", "latency", "database", "backup", "token",
        "timeout", "sdk", "bucket", "storage", "deploy", "endpoint", "request", "requests", "objects", "files",
        "postgres", "oauth", "outage", "down", "region", "snapshot", "restore",
    ),
    "account": (
        "login", "log in", "logged", "sign in", "password", "2fa", "two-factor", "two factor", "authenticator",
        "owner", "ownership", "seat", "seats", "teammate", "invite", "email address", "sso", "hacked", "leaked",
        "github", "takeover", "access", "locked out", "phone", "member", "transfer", "securekey", "security key",
    ),
}

SPAM_CUES = ("seo", "backlink", "link building", "link-building", "guest post", "ranking", "marketing services",
             "promote your", "unsubscribe", "limited offer", "special offer", "outreach")
THANKS_CUES = ("thank you", "thanks", "thank u", "appreciate", "grateful", "kudos")
QUESTION_CUES = ("?", "how ", "can you", "could you", "please help", "what ", "when ", "why ", "need ")

@dataclass(frozen=True)
class EmergencyRule:
    """An emergency is recognised when the ticket has one cue from each list;
    `query` is how a support engineer would look up the runbook for it."""

    name: str
    category: str
    any_of: tuple[str, ...]
    and_any_of: tuple[str, ...]
    query: str


EMERGENCY_RULES = (
    EmergencyRule("deleted production data", "technical", ("deleted", "dropped", "wiped", "destroyed"),
                  ("production", "prod ", "prod db", "live database", "customer data"), "recover a deleted database"),
    EmergencyRule("leaked credential", "account", ("leaked", "exposed", "pushed", "committed", "public repo", "publicly"),
                  ("api key", "secret key", "production key", "live key", "credentials"), "leaked API key exposed revoke"),
    EmergencyRule("account takeover", "account", ("not me", "wasn't me", "was not me", "didn't do", "did not do", "not us",
                                       "unrecognised", "unrecognized", "unknown"),
                  ("login", "log in", "logged in", "sign-in", "signed in", "2fa", "email was changed", "email changed"),
                  "suspected account takeover lock"),
    EmergencyRule("data loss", "technical", ("vanish", "disappear", "missing", "gone", "lost"),
                  ("objects", "files", "bucket", "data loss", "records"), "data loss incident emergency engineering"),
)


def _text(ticket: TicketView) -> str:
    return f"{ticket.subject}\n{ticket.body}".lower()


def _has(text: str, cues: tuple[str, ...]) -> bool:
    return any(re.search(r"(?<![a-z])" + re.escape(c), text) for c in cues)


def classify(ticket: TicketView) -> str:
    """An emergency's type decides its category; otherwise the most cue words win."""
    rule = emergency(ticket)
    if rule is not None:
        return rule.category
    text = _text(ticket)
    scores = {cat: sum(len(re.findall(r"(?<![a-z])" + re.escape(c), text)) for c in cues) for cat, cues in CATEGORY_CUES.items()}
    return max(scores, key=lambda c: (scores[c], c == "technical"))


def noise_kind(ticket: TicketView) -> str | None:
    """'spam', 'thanks' or None (a real request)."""
    text = _text(ticket)
    if _has(text, SPAM_CUES):
        return "spam"
    if _has(text, THANKS_CUES) and not _has(text, QUESTION_CUES):
        return "thanks"
    return None


def is_noise(ticket: TicketView) -> bool:
    return noise_kind(ticket) is not None


def emergency(ticket: TicketView) -> EmergencyRule | None:
    text = _text(ticket)
    return next((r for r in EMERGENCY_RULES if _has(text, r.any_of) and _has(text, r.and_any_of)), None)


def compose_reply(ticket: TicketView, article: Article, done: str = "") -> str:
    """A short reply: what was done (if anything), then every fact of `article`
    that holds for the customer's plan."""
    first_name = ticket.customer.name.split()[0]
    lines = [f"- {f.name[0].upper() + f.name[1:]}: {f.value}." for f in article.facts_for(ticket.customer.plan) if not f.rule]
    return (
        f"Hi {first_name},\n\nThanks for contacting Stackwell support. {done + ' ' if done else ''}"
        f"Per our policy \"{article.title}\":\n"
        + "\n".join(lines)
        + "\n\nReply here if anything is unclear.\nStackwell Support"
    )


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
    """Steps are done once each; texts do not make a step new."""
    return casework.write_key(action) + f":{action.record}"
