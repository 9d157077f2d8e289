"""The actions a playbook plans, built one way for all of them: classify, look up, search,
reply (greeting, paragraphs, sign-off), escalate and close, on the ticket at hand."""

from __future__ import annotations

from typing import Any

from ...models import SupportAction, TicketView


def act(action_type: str, ticket: TicketView, **fields: Any) -> SupportAction:
    return SupportAction(action_type=action_type, ticket_id=ticket.id, **fields)


def classify_as(ticket: TicketView, category: str) -> SupportAction:
    return act("classify_ticket", ticket, category=category)


def lookup(ticket: TicketView, record: str) -> SupportAction:
    return act("lookup_record", ticket, record=record)


def search(query: str) -> SupportAction:
    return SupportAction(action_type="search_kb", query=query)


def first_name(ticket: TicketView) -> str:
    return ticket.customer.name.split()[0]


def reply(ticket: TicketView, *paragraphs: str) -> SupportAction:
    """A reply: "Hi <first name>," then the paragraphs given (empty ones left out), signed."""
    text = f"Hi {first_name(ticket)},\n\n" + "\n\n".join(p for p in paragraphs if p) + "\n\nStackwell Support"
    return act("reply_ticket", ticket, reply_text=text)


def close(ticket: TicketView, resolution: str) -> SupportAction:
    return act("close_ticket", ticket, resolution=resolution)


def answer(ticket: TicketView, query: str, *paragraphs: str, resolution: str = "resolved") -> list[SupportAction]:
    """The end of most plans: search for the policy (`query`), reply, close."""
    return [search(query), reply(ticket, *paragraphs), close(ticket, resolution)]
