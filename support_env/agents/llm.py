"""An LLM agent for the support queue over any OpenAI-compatible endpoint.

Each step sends a small, fresh prompt built from the observation rather than the
whole raw observation or a growing chat: the objective (its category rubric only
until the ticket is classified), the current ticket, what was done on it so far,
and what the agent's reads brought into view, in the compact form of
`access/compact.py` (a search's hits with only their fact lines, records one row
per line). A hard_mixed_queue episode costs about a third of the characters of
the earlier prompts (benchmarks/bench_context.py). The model answers with a tool
call when the endpoint supports tools (the TRL adapter's tools, `TOOLS`), else
with a JSON object in text; output that cannot be turned into an action becomes
an action the environment rejects (and penalises), so a bad answer is a learning
signal, not a crash.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

from ..access import compact
from ..access.trl import tool_definitions
from ..models import CATEGORIES, RECORDS, RESOLUTIONS, HistoryEntry, SupportAction, SupportObservation

UNPARSEABLE_ACTION = "unparseable_model_output"

SYSTEM_PROMPT = """You are a Stackwell Cloud support agent working a ticket queue, one ticket at a time. Call one \
tool per turn. In replies, state briefly only values from a current (not archived) article that hold for the \
customer's plan; never disclose account details."""

# Added to the system prompt for endpoints that take no tools: the actions in text.
JSON_ACTIONS = f"""
Answer with one JSON object instead of a tool call: {{"action_type": "...", ...fields}}. Actions:
classify_ticket(ticket_id, category in {list(CATEGORIES)}), search_kb(query), reply_ticket(ticket_id, reply_text),
escalate_ticket(ticket_id, reason), close_ticket(ticket_id, resolution in {list(RESOLUTIONS)}),
lookup_record(ticket_id, record in {list(RECORDS)}), issue_refund(ticket_id, invoice_id, amount in dollars),
revoke_api_key(ticket_id, key_id), lock_account(ticket_id), send_replacement(ticket_id, order_id)."""

# The TRL adapter's tools (support_env.trl.SupportToolEnv): the same names, arguments
# and descriptions a model trained there was shown.
TOOLS = tool_definitions()
_FIELDS = ("ticket_id", "category", "query", "reply_text", "reason", "resolution", "record", "invoice_id", "key_id", "order_id")


def build_prompt(observation: SupportObservation) -> str:
    """The user message for one step: only what the next decision needs. The objective
    keeps its category rubric until the ticket is classified, its rules for replies
    while a reply may come next (a search since the last reply) and its rules for
    records on tickets with an account; a search's hits (the first current article
    with its fact lines) show until a reply."""
    ticket = observation.current_ticket
    done = _this_ticket(observation.conversation_history)
    classified = any(h.action.startswith("classify_ticket(") and h.result.startswith("classified") for h in done)
    searched = max((i for i, h in enumerate(done) if h.action.startswith("search_kb(") and h.result.startswith("search ")), default=None)
    replying = searched is not None and not any(h.action.startswith("reply_ticket(") for h in done[searched + 1 :])
    account = ticket.customer.account_id if ticket is not None else None
    objective = compact.objective_text(
        observation.objective, categories=not classified, reply_rules=replying, records_rules=account is not None
    )
    parts = [f"OBJECTIVE: {objective}"]
    if ticket is not None:
        parts.append("CURRENT " + compact.ticket_text(observation))
    if done:
        lines = [f"{h.action}{' -> ' + _outcome(h) if _outcome(h) else ''} ({h.reward:+.2f})" for h in done]
        parts.append("DONE ON THIS TICKET:\n" + "\n".join(lines))
    if observation.kb_search_results and replying:
        hits = compact.search_hits(observation.kb_search_results, ticket.customer.plan if ticket else None, facts_of=1)
        parts.append("KB RESULTS (latest search):\n" + hits)
    if observation.records:
        parts.append("RECORDS:\n" + "\n".join(compact.record_text(name, data, account) for name, data in observation.records.items()))
    if observation.last_action_error:
        parts.append(f"LAST ACTION WAS INVALID: {observation.last_action_error}")
    parts.append(f"Steps left: {observation.steps_remaining}.")
    return "\n\n".join(parts)


def _this_ticket(history: list[HistoryEntry]) -> list[HistoryEntry]:
    """The history since the current ticket came up (after the last close)."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].action.startswith("close_ticket(") and history[index].result.startswith("closed "):
            return history[index + 1 :]
    return list(history)


def _outcome(entry: HistoryEntry) -> str:
    """What a history line adds to its action: nothing for a classification, an
    escalation or a reply that went through (the action says it all; a reply keeps
    the news that the customer answered), the hits without the query for a search,
    the result otherwise (an error, a record's size, a write)."""
    result = entry.result
    if result.startswith("invalid"):
        return result
    if entry.action.startswith("search_kb("):
        return result.partition(" -> ")[2]
    if result.startswith(("classified ", "escalated ")):
        return ""
    if result.startswith("reply sent on "):
        return result.partition("; ")[2]
    return result


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
    fields = {f: str(data[f]) for f in _FIELDS if data.get(f) is not None}
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
        prompt = build_prompt(observation)
        self.prompt_chars.append(len(self._system_prompt()) + len(prompt))
        message = self._complete(prompt)
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            call = calls[0].function
            try:
                arguments = _loads_lenient(call.arguments or "{}")
            except (json.JSONDecodeError, ValueError):
                return unparseable(call.arguments)
            return action_from_fields(arguments if isinstance(arguments, dict) else {}, call.name)
        return action_from_text(getattr(message, "content", None) or "")

    def _system_prompt(self) -> str:
        """With tools the actions are in the tool definitions; without, they are spelled out here."""
        return SYSTEM_PROMPT if self.use_tools else SYSTEM_PROMPT + JSON_ACTIONS

    def _complete(self, prompt: str) -> Any:
        import openai

        for attempt in range(self.max_retries + 1):
            messages = [{"role": "system", "content": self._system_prompt()}, {"role": "user", "content": prompt}]
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
