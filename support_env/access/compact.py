"""Compact tool results: what an action produced, in a few lines of text or JSON.

An observation is the whole view of the episode: the objective, the ticket, three
knowledge-base articles in full, every record looked up, the history. Sent after
every step (as /step replies and full-observation prompts do), that is ~6 KB a
step, most of it the same as the step before. An agent in a conversation has
already seen the ticket and the objective; what it needs from a step is what the
step produced:

- `search_kb`: each hit's id, title and status (current or archived), and for a
  current article only the lines that hold facts (figures, dates, menu paths,
  "do not" / "never" rules), not its prose;
- `lookup_record`: the record looked up, one row per line;
- `reply_ticket`: the customer's new words in the thread, if they answered;
- `close_ticket`: the next ticket, or the grade once the queue is empty;
- any action: the error if it was invalid, and the step's reward.

Everything here is a pure function of (action, observation): it reads what any
client sees (over /ws, HTTP or in process) and nothing hidden. `produced` makes
the one selection of what an action produced; `result` renders it as text (the
TRL adapter, `access/trl.py`, and the SFT export, `agents/transcripts.py`) and
`structured` as JSON (the MCP action tools, `access/mcp_tools.py`). The LLM
agent's prompts (`agents/llm.py`) are built from the same pieces, so a model
sees the same text in training and at inference.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Literal, Optional

from pydantic import BaseModel, Field

from ..models import ACTION_TYPES, Grade, KBResult, SupportAction, SupportObservation, TicketView

FACT_LINES_PER_ARTICLE = 8  # an article's fact lines shown per hit, at most
FACT_LINE_CHARS = 240  # a fact line longer than this is cut
THREAD_MESSAGE_CHARS = 600  # a customer's message in the thread is shown at most this long
OWN_MESSAGE_CHARS = 120  # the agent's own replies in the thread, on one line: it wrote them, a reminder is enough
RECORD_CHARS = 2500  # a record's text is cut here, saying how many rows were left out
NOTE_CHARS = 140  # a grade note is cut here

# What makes a sentence of an article a fact: a figure (amounts, durations, dates,
# status codes; not the digits inside "2FA" or "KB-S01"), a menu path or console
# name in backticks, an address other than the general support one, or a rule's
# wording. Policy bullets keep their first sentence (the rule itself) and any later
# sentence with a fact; numbered steps keep only sentences with figures, paths or
# addresses; the prose around them only sentences with figures.
_FIGURE = r"(?<![A-Za-z0-9])\d+(?:[.,:/-]\d+)*(?![A-Za-z0-9])"
_PLACE = r"`|\s>\s|\b(?!support@)[\w.]+@[\w.]+\w|\b[a-z]+\.stackwell\.example\b"
_RULE = r"\b(?:not|never|no longer|cannot|can't|don't|doesn't|won't|isn't|aren't|no need|only)\b"
_FACT = re.compile("|".join([_FIGURE, _PLACE, _RULE]), re.IGNORECASE)
_STEP_FACT = re.compile("|".join([_FIGURE, _PLACE]), re.IGNORECASE)
_PROSE_FACT = re.compile(_FIGURE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`*\"])")
_BULLET = re.compile(r"^[-*+]\s+")
_STEP = re.compile(r"^\d+[.)]\s+")
_PLAN_LABEL = re.compile(r"^((?:free|pro|business|enterprise)(?:(?:,\s*|\s+and\s+|\s+or\s+)(?:free|pro|business|enterprise))*)(?:\s+plans?)?:", re.IGNORECASE)
_ARCHIVED = re.compile(r"\barchived\b", re.IGNORECASE)
# Sentences of a task's objective that only some steps need: the category rubric
# (until the ticket is classified; it runs to the records rule or the end), the
# rules for replies (when a reply may come next) and for records (tickets whose
# customer has an account).
_RUBRIC = re.compile(r"\s*Categories:.*?(?=\s+Tickets whose customer has an account_id|\Z)", re.DOTALL)
_REPLY_RULES = re.compile(r"\s*Replies are graded on what they claim:[^.]*\.")
_RECORDS_RULES = re.compile(r"\s*Tickets whose customer has an account_id[^.]*\.")


# --- pieces -------------------------------------------------------------------------


def reward_text(observation: SupportObservation) -> str:
    return f"reward {observation.reward or 0.0:+.2f}"


def article_status(hit: KBResult) -> str:
    """'archived' or 'current': archived articles say so in their title."""
    return "archived" if _ARCHIVED.search(hit.title) else "current"


def fact_lines(text: str, limit: int = FACT_LINES_PER_ARTICLE) -> list[str]:
    """The lines of an article that state facts, without markdown and without the
    sentences around them that state none; at most `limit` lines."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip().replace("**", "")
        if not line or line.startswith("#"):
            continue
        if _BULLET.match(line):
            first, *rest = _SENTENCE_END.split(_BULLET.sub("", line))
            kept = [first] + [s for s in rest if _FACT.search(s)]
        elif _STEP.match(line):
            kept = [s for s in _SENTENCE_END.split(_STEP.sub("", line)) if _STEP_FACT.search(s)]
        else:
            kept = [s for s in _SENTENCE_END.split(line) if _PROSE_FACT.search(s)]
        if kept:
            fact = " ".join(kept)
            if len(fact) > FACT_LINE_CHARS:  # too long: leave out the sentences that state no fact before cutting
                fact = " ".join([s for s in kept if _FACT.search(s)] or kept)
            lines.append(fact if len(fact) <= FACT_LINE_CHARS else fact[: FACT_LINE_CHARS - 3] + "...")
        if len(lines) == limit:
            break
    return lines


class Hit(BaseModel):
    """A search hit as a result shows it: no article text, only its fact lines."""

    article_id: str = Field(description="Article id, e.g. 'KB-B01'.")
    title: str = Field(description="Article title.")
    status: Literal["current", "archived"] = Field(description="archived articles state outdated policy: do not quote them.")
    facts: list[str] = Field(
        default_factory=list,
        description="The article's lines that state facts (figures, paths, addresses, rules), without other plans' "
        "lines; empty for archived articles.",
    )


def hits_of(hits: Iterable[KBResult], plan: Optional[str] = None, facts_of: int = 3) -> list[Hit]:
    """Each hit's id, title and status; the first `facts_of` current articles with
    their fact lines, without the lines for plans other than `plan` (if given)."""
    shown, current = [], 0
    for hit in hits:
        status = article_status(hit)
        facts: list[str] = []
        if status == "current" and current < facts_of:
            current += 1
            facts = [line for line in fact_lines(hit.text) if _holds_for(line, plan)]
        shown.append(Hit(article_id=hit.article_id, title=hit.title, status=status, facts=facts))
    return shown


def hits_text(hits: list[Hit]) -> str:
    """Each hit as 'id title [status]' followed by its fact lines."""
    blocks = ["\n".join([f"{h.article_id} {h.title} [{h.status}]", *(f"- {line}" for line in h.facts)]) for h in hits]
    return "\n".join(blocks) if blocks else "no matching articles"


def search_hits(hits: Iterable[KBResult], plan: Optional[str] = None, facts_of: int = 3) -> str:
    """Each hit as 'id title [status]'; the first `facts_of` current articles followed
    by their fact lines, without the lines for plans other than `plan` (if given)."""
    return hits_text(hits_of(hits, plan, facts_of))


def _holds_for(line: str, plan: Optional[str]) -> bool:
    """False for a line of a per-plan list ('Pro: 600 requests per minute', 'Free and
    Pro plans: ...') that names other plans only."""
    label = _PLAN_LABEL.match(line)
    return plan is None or label is None or plan.lower() in re.findall(r"\w+", label.group(1).lower())


def _value_text(value: Any, inherited: dict[str, Any]) -> str:
    if isinstance(value, dict):
        return "(" + _row_text(value, inherited) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(v, inherited) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if (";" in value or "=" in value or not value) else value
    return json.dumps(value)


def _row_text(row: dict[str, Any], inherited: dict[str, Any]) -> str:
    """'key=value; ...', leaving out values a parent row already gave (an invoice's
    payments repeat its invoice id and account)."""
    here = {**inherited, **row}
    return "; ".join(f"{k}={_value_text(v, here)}" for k, v in row.items() if inherited.get(k, object()) != v)


def record_text(name: str, data: Any, account_id: Optional[str] = None) -> str:
    """A record as a header and one line per row; the customer's account id, known
    from the ticket, is not repeated on every row."""
    inherited = {"account_id": account_id} if account_id else {}
    if isinstance(data, list):
        if not data:
            return f"{name}: no rows"
        text, shown = f"{name} ({len(data)} rows):", 0
        for row in data:
            line = _row_text(row, inherited) if isinstance(row, dict) else _value_text(row, inherited)
            if len(text) + len(line) > RECORD_CHARS and shown:
                return text + f"\n... {len(data) - shown} more rows not shown"
            text, shown = text + "\n" + line, shown + 1
        return text
    if isinstance(data, dict):
        return f"{name}: {_row_text(data, inherited)}"[:RECORD_CHARS]
    return f"{name}: {_value_text(data, inherited)}"[:RECORD_CHARS]


def customer_words(observation: SupportObservation) -> list[str]:
    """What the customer wrote in the thread after the agent's last reply."""
    ticket = observation.current_ticket
    if ticket is None:
        return []
    words: list[str] = []
    for message in reversed(ticket.thread):
        if message.author != "customer":
            break
        words.insert(0, _cut(message.text, THREAD_MESSAGE_CHARS))
    return words


def ticket_text(observation: SupportObservation) -> str:
    """The current ticket as a helpdesk shows it: id, priority, place in the queue, when it
    was opened and today's date (windows and ages count from it), who wrote it (address, plan,
    account), subject, body, and the thread so far."""
    ticket = observation.current_ticket
    if ticket is None:
        return "no current ticket: the queue is empty"
    customer = ticket.customer
    place = observation.tickets_total - observation.tickets_remaining + 1
    account = f"; account {customer.account_id}" if customer.account_id else ""
    opened = f"; opened {ticket.created_at}" if ticket.created_at else ""
    lines = [
        f"TICKET {ticket.id} (priority {ticket.priority}; ticket {place} of {observation.tickets_total}{opened}; today is {observation.today})",
        f"From: {customer.name} <{customer.email}>, {customer.company} (plan {customer.plan}{account})",
        f"Subject: {ticket.subject}",
        ticket.body,
    ]
    if ticket.thread:
        lines.append("Thread:")
        lines += [
            f"[customer] {_cut(m.text, THREAD_MESSAGE_CHARS)}" if m.author == "customer"
            else f"[{m.author}] {_cut(' '.join(m.text.split()), OWN_MESSAGE_CHARS)}"
            for m in ticket.thread
        ]
    return "\n".join(lines)


def grade_text(grade: Grade) -> str:
    """The episode's grade and each ticket's score, with the first note of each
    ticket that lost points."""
    verdict = "failed (invalid-action limit)" if grade.failed else ("success" if grade.success else "not a success")
    lines = [f"Episode over: grade {grade.score:.2f}, {verdict}."]
    for ticket in grade.tickets:
        note = f" ({_cut(ticket.notes[0], NOTE_CHARS)})" if ticket.notes and ticket.score < 1 else ""
        lines.append(f"{ticket.ticket_id} {ticket.score:.2f}{note}")
    return "\n".join(lines)


def objective_text(objective: str, categories: bool = True, reply_rules: bool = True, records_rules: bool = True) -> str:
    """The task's objective without the parts the next step does not need: the
    category rubric ('Categories: ...') once the ticket is classified, the rules for
    replies when no reply is coming, the rules for records when the ticket's
    customer has no account."""
    for keep, sentence in ((categories, _RUBRIC), (reply_rules, _REPLY_RULES), (records_rules, _RECORDS_RULES)):
        if not keep:
            objective = sentence.sub("", objective, count=1)
    return objective.strip()


def tools_line() -> str:
    return (
        "Tools: " + ", ".join(ACTION_TYPES) + ". Call one tool at a time; each answers with what it did and "
        "its reward, and closing a ticket shows the next one."
    )


# --- whole results ---------------------------------------------------------------------


def first_prompt(observation: SupportObservation) -> str:
    """The episode's first message: objective, the first ticket, the tools."""
    return "\n\n".join([observation.objective, ticket_text(observation), tools_line()])


class Record(BaseModel):
    """A record looked up, as the observation's `records` holds it."""

    name: str = Field(description="Which record: account, invoices, api_keys, usage, audit_log, incidents or orders.")
    data: Any = Field(description="Its rows (a list) or its fields (an object).")


class ActionResult(BaseModel):
    """What an action produced: its outcome, reward and error, and only what it
    brought into view. The whole observation stays with get_observation."""

    result: str = Field(description="What the action did, in one line ('invalid: <why>' for an invalid action).")
    reward: float = Field(description="This step's reward.")
    done: bool = Field(description="Whether the episode is over.")
    error: Optional[str] = Field(description="Why the action was invalid; null if it was valid.")
    search_hits: Optional[list[Hit]] = Field(default=None, description="search_kb: the articles found, with their fact lines.")
    record: Optional[Record] = Field(default=None, description="lookup_record: the record looked up.")
    customer_words: Optional[list[str]] = Field(
        default=None, description="reply_ticket: what the customer wrote back after the reply, if anything."
    )
    next_ticket: Optional[TicketView] = Field(default=None, description="close_ticket: the ticket now current, when the queue goes on.")
    tickets_remaining: Optional[int] = Field(default=None, description="With next_ticket: tickets not yet closed, including it.")
    grade: Optional[Grade] = Field(default=None, description="Once the episode is over: its grade, every component explained.")


def produced(action: SupportAction, observation: SupportObservation) -> ActionResult:
    """What `action` produced, given the observation that followed it: the history
    line, what the action brought into view (search hits, the record, the
    customer's answer, the next ticket), the error if it was invalid, the reward,
    and the grade once the episode is over. The one selection behind both
    `result` (text) and `structured` (JSON)."""
    error = observation.last_action_error
    kind = action.action_type
    line = observation.conversation_history[-1].result if observation.conversation_history else kind
    found: dict[str, Any] = {}
    ticket = observation.current_ticket
    if error is not None:
        line = f"invalid: {error}"
    elif kind == "search_kb":  # the history line repeats the query; the hits name the articles
        line = f"found {len(observation.kb_search_results)} articles"
        found["search_hits"] = hits_of(observation.kb_search_results, ticket.customer.plan if ticket else None)
    elif kind == "lookup_record" and action.record in observation.records:
        found["record"] = Record(name=action.record, data=observation.records[action.record])
    elif kind == "reply_ticket":
        found["customer_words"] = customer_words(observation)
    elif kind == "close_ticket" and ticket is not None and not observation.done:
        found.update(next_ticket=ticket, tickets_remaining=observation.tickets_remaining)
    return ActionResult(
        result=line, reward=observation.reward or 0.0, done=observation.done, error=error,
        grade=observation.grade if observation.done else None, **found,
    )


def result(action: SupportAction, observation: SupportObservation) -> str:
    """What `action` produced (`produced`) as text: the outcome line with its
    reward, then the hits with their fact lines, the record one row per line, the
    customer's words, the next ticket, and the grade once the episode is over."""
    shown = produced(action, observation)
    parts = [f"{shown.result} ({reward_text(observation)})"]
    if shown.search_hits is not None:
        parts.append(hits_text(shown.search_hits))
    if shown.record is not None:
        account = observation.current_ticket.customer.account_id if observation.current_ticket else None
        parts.append(record_text(shown.record.name, shown.record.data, account))
    parts += [f"[customer] {words}" for words in shown.customer_words or ()]
    if shown.next_ticket is not None:
        parts.append(ticket_text(observation))
    return "\n".join(parts + _ending(observation))


def structured(action: SupportAction, observation: SupportObservation) -> dict[str, Any]:
    """What `action` produced (`produced`) as JSON: `result`, `reward`, `done` and
    `error` always, and only the pieces the action brought into view."""
    data = produced(action, observation).model_dump(mode="json")
    return {key: value for key, value in data.items() if value is not None or key == "error"}


def error_text(observation: SupportObservation) -> str:
    """An invalid action's message, with the grade if it ended the episode."""
    return "\n".join([observation.last_action_error or "", *_ending(observation)])


def _ending(observation: SupportObservation) -> list[str]:
    if not observation.done:
        return []
    return [grade_text(observation.grade)] if observation.grade is not None else ["Episode over."]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
