"""Reading a ticket from its words: keyword cues for categories, noise and emergencies, and a
reply that states an article's facts for the customer's plan. Shared by the reference policy,
its playbooks and the scripted policies of the zoo; reads only what an agent sees."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..domain.kb import Article
from ..models import TicketView


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


def ticket_words(ticket: TicketView) -> str:
    """The subject and body, lower-cased: what the cue lists are matched against."""
    return f"{ticket.subject}\n{ticket.body}".lower()


def has_cue(text: str, cues: tuple[str, ...]) -> bool:
    """Whether `text` holds one of `cues`, starting at a word."""
    return any(re.search(r"(?<![a-z])" + re.escape(c), text) for c in cues)


def classify(ticket: TicketView) -> str:
    """An emergency's type decides its category; otherwise the most cue words win."""
    rule = emergency(ticket)
    if rule is not None:
        return rule.category
    text = ticket_words(ticket)
    scores = {cat: sum(len(re.findall(r"(?<![a-z])" + re.escape(c), text)) for c in cues) for cat, cues in CATEGORY_CUES.items()}
    return max(scores, key=lambda c: (scores[c], c == "technical"))


def noise_kind(ticket: TicketView) -> str | None:
    """'spam', 'thanks' or None (a real request)."""
    text = ticket_words(ticket)
    if has_cue(text, SPAM_CUES):
        return "spam"
    if has_cue(text, THANKS_CUES) and not has_cue(text, QUESTION_CUES):
        return "thanks"
    return None


def is_noise(ticket: TicketView) -> bool:
    return noise_kind(ticket) is not None


def emergency(ticket: TicketView) -> EmergencyRule | None:
    text = ticket_words(ticket)
    return next((r for r in EMERGENCY_RULES if has_cue(text, r.any_of) and has_cue(text, r.and_any_of)), None)


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
