"""An LLM agent for the support queue over any OpenAI-compatible endpoint.

Each step sends a small, fresh prompt built from the observation (objective,
current ticket, trimmed KB results, recent history) rather than the whole raw
observation or a growing chat, so a 10-ticket episode stays far inside an
8k-token window. The model answers with a tool call when the endpoint
supports tools, else with a JSON object in text; output that cannot be turned
into an action becomes an action the environment rejects (and penalises), so
a bad answer is a learning signal, not a crash.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

from ..models import CATEGORIES, RECORDS, RESOLUTIONS, SupportAction, SupportObservation

UNPARSEABLE_ACTION = "unparseable_model_output"
KB_TEXT_CHARS = 900
RECORDS_CHARS = 2500
THREAD_CHARS = 400
HISTORY_LINES = 8

SYSTEM_PROMPT = f"""You are a support agent for Stackwell Cloud, working a ticket queue one ticket at a time.
Each turn, choose exactly ONE action by calling a tool (or, without tools, answer with one JSON object:
{{"action_type": "...", ...fields}}).
Actions: classify_ticket(ticket_id, category in {list(CATEGORIES)}), search_kb(query),
reply_ticket(ticket_id, reply_text), escalate_ticket(ticket_id, reason), close_ticket(ticket_id, resolution?),
and, when the customer has an account_id: lookup_record(ticket_id, record in {list(RECORDS)}),
issue_refund(ticket_id, invoice_id, amount in dollars), revoke_api_key(ticket_id, key_id), lock_account(ticket_id),
send_replacement(ticket_id, order_id).
Rules: classify every ticket once. For questions, search the knowledge base first, then reply with the
exact policy values (durations, limits, amounts) that hold for the customer's plan, briefly; never state a
number you did not read in a current (not archived) article. Escalate only genuine emergencies (production
data deleted or lost, leaked credentials, account takeover). Spam and thank-you notes need no reply.
Before any account operation, look up the records that justify it; do only what the records and policy
support, and never disclose account details to an unverified sender. Close the ticket when done, with a
resolution in {list(RESOLUTIONS)}; closing moves to the next ticket."""

_FIELD_DOCS = {
    "ticket_id": "Id of the current ticket.",
    "category": "billing, technical or account.",
    "query": "Keywords to search the policy knowledge base.",
    "reply_text": "The reply to the customer, stating the relevant policy facts.",
    "reason": "Why this is an emergency.",
    "resolution": "How the ticket was resolved.",
    "record": "Which record of the customer to look up.",
    "invoice_id": "Invoice to refund.",
    "amount": "Amount to refund, in US dollars.",
    "key_id": "API key to revoke.",
    "order_id": "Order to replace.",
}
_ACTION_FIELDS = {
    "classify_ticket": ("ticket_id", "category"),
    "search_kb": ("query",),
    "reply_ticket": ("ticket_id", "reply_text"),
    "escalate_ticket": ("ticket_id", "reason"),
    "close_ticket": ("ticket_id", "resolution"),
    "lookup_record": ("ticket_id", "record"),
    "issue_refund": ("ticket_id", "invoice_id", "amount"),
    "revoke_api_key": ("ticket_id", "key_id"),
    "lock_account": ("ticket_id",),
    "send_replacement": ("ticket_id", "order_id"),
}
_ENUMS = {"category": CATEGORIES, "record": RECORDS, "resolution": RESOLUTIONS}
_OPTIONAL = {"resolution"}
_ACTION_DOCS = {
    "classify_ticket": "Set the ticket's category (final).",
    "search_kb": "Search the policy knowledge base.",
    "reply_ticket": "Send a reply to the customer.",
    "escalate_ticket": "Escalate a genuine emergency to the on-call team.",
    "close_ticket": "Close the current ticket and move to the next.",
    "lookup_record": "Look up one of the ticket customer's records.",
    "issue_refund": "Refund money on one of the customer's invoices.",
    "revoke_api_key": "Revoke one of the customer's API keys.",
    "lock_account": "Lock the customer's account.",
    "send_replacement": "Send a replacement for a delivered hardware order.",
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": _ACTION_DOCS[name],
            "parameters": {
                "type": "object",
                "properties": {
                    f: (
                        {"type": "string", "enum": list(_ENUMS[f])}
                        if f in _ENUMS
                        else {"type": "number"} if f == "amount" else {"type": "string"}
                    )
                    | {"description": _FIELD_DOCS[f]}
                    for f in fields
                },
                "required": [f for f in fields if f not in _OPTIONAL],
            },
        },
    }
    for name, fields in _ACTION_FIELDS.items()
]


def build_prompt(observation: SupportObservation) -> str:
    """The user message for one step: only what the next decision needs."""
    parts = [f"OBJECTIVE: {observation.objective}"]
    ticket = observation.current_ticket
    if ticket is not None:
        parts.append(
            f"CURRENT TICKET {ticket.id} (priority {ticket.priority}; {observation.tickets_remaining} left in queue)\n"
            f"From: {ticket.customer.name}, {ticket.customer.company}, plan: {ticket.customer.plan}"
            f"{', account: ' + ticket.customer.account_id if ticket.customer.account_id else ''}\n"
            f"Subject: {ticket.subject}\n{ticket.body}"
            + "".join(f"\n[{m.author}] {m.text[:THREAD_CHARS]}" for m in ticket.thread)
        )
    if observation.kb_search_results:
        parts.append(
            "KB RESULTS:\n"
            + "\n".join(f"[{r.article_id}] {r.title}\n{r.text[:KB_TEXT_CHARS]}" for r in observation.kb_search_results)
        )
    if observation.records:
        parts.append("RECORDS:\n" + json.dumps(observation.records, separators=(",", ":"))[:RECORDS_CHARS])
    if observation.conversation_history:
        recent = observation.conversation_history[-HISTORY_LINES:]
        parts.append("RECENT STEPS:\n" + "\n".join(f"{h.step}. {h.action} -> {h.result} ({h.reward:+.2f})" for h in recent))
    if observation.last_action_error:
        parts.append(f"LAST ACTION WAS INVALID: {observation.last_action_error}")
    parts.append(f"Steps remaining: {observation.steps_remaining}. Choose the next action.")
    return "\n\n".join(parts)


def _loads_lenient(text: str) -> Any:
    """json.loads that forgives single quotes and trailing commas."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        repaired = re.sub(r",\s*([}\]])", r"\1", text)
        if '"' not in repaired:
            repaired = repaired.replace("'", '"')
        return json.loads(repaired)


def _first_json_object(text: str) -> str | None:
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    if fenced:
        return fenced.group(1)
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    for i, ch in enumerate(text[start:], start):
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0:
            return text[start : i + 1]
    return text[start:]


def action_from_text(text: str) -> SupportAction:
    """Parse a JSON action from model text (fenced, bare or slightly malformed)."""
    candidate = _first_json_object(text or "")
    try:
        data = _loads_lenient(candidate) if candidate else None
    except (json.JSONDecodeError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("action"), dict):
        data = data["action"]
    return action_from_fields(data) if isinstance(data, dict) else unparseable(text)


def action_from_fields(data: dict[str, Any], name: str | None = None) -> SupportAction:
    """Build an action from a tool call's name and arguments or a parsed JSON object."""
    action_type = str(name or data.get("action_type") or data.get("action") or data.get("type") or "")
    fields = {f: str(data[f]) for f in _FIELD_DOCS if data.get(f) is not None and f != "amount"}
    if not action_type:
        return unparseable(json.dumps(data)[:200])
    try:
        amount = None if data.get("amount") is None else float(str(data["amount"]).lstrip("$").replace(",", ""))
    except ValueError:
        amount = None  # the environment then reports the missing amount
    return SupportAction(action_type=action_type, amount=amount, **fields)


def unparseable(text: str) -> SupportAction:
    """An action the environment will reject as unknown, carrying a trace of what the model said."""
    return SupportAction(action_type=UNPARSEABLE_ACTION, metadata={"model_output": (text or "")[:500]})


class EndpointFailed(RuntimeError):
    """The model endpoint failed beyond retrying; the task ends cleanly."""


class LLMPolicy:
    """Asks the model for one action per step, with retries and a tools-to-JSON fallback."""

    def __init__(
        self,
        client: Any,
        model: str,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.name = model
        self.client = client
        self.model = model
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.log = log
        self.use_tools = True
        self.prompt_chars: list[int] = []

    def act(self, observation: SupportObservation) -> SupportAction:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": build_prompt(observation)}]
        self.prompt_chars.append(sum(len(m["content"]) for m in messages))
        message = self._complete(messages)
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            call = calls[0].function
            try:
                arguments = _loads_lenient(call.arguments or "{}")
            except (json.JSONDecodeError, ValueError):
                return unparseable(call.arguments)
            return action_from_fields(arguments if isinstance(arguments, dict) else {}, call.name)
        return action_from_text(getattr(message, "content", None) or "")

    def _complete(self, messages: list[dict]) -> Any:
        import openai

        for attempt in range(self.max_retries + 1):
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0, "max_tokens": 700}
            if self.use_tools:
                kwargs.update(tools=TOOLS, tool_choice="auto")
            try:
                return self.client.chat.completions.create(**kwargs).choices[0].message
            except openai.BadRequestError as exc:
                if self.use_tools and "tool" in str(exc).lower():
                    self.log("endpoint rejected tool calling; falling back to JSON in text")
                    self.use_tools = False
                    continue
                raise EndpointFailed(f"model endpoint rejected the request: {exc}") from exc
            except (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError) as exc:
                if attempt == self.max_retries:
                    raise EndpointFailed(f"model endpoint failed after {attempt + 1} attempts: {exc}") from exc
                delay = self.backoff_s * 2**attempt
                self.log(f"transient model error ({type(exc).__name__}); retrying in {delay:.1f} s")
                self.sleep(delay)
            except openai.APIError as exc:
                raise EndpointFailed(f"model endpoint error: {exc}") from exc
        raise EndpointFailed("model endpoint kept rejecting requests")
