"""Wire types: what an agent sends (`SupportAction`) and sees
(`SupportObservation`, `SupportState`), and how it is scored (`Reward`,
`Grade`). Every field carries a description because `/schema` is the first
thing an agent author reads."""

from __future__ import annotations

from typing import Any, Optional

from openenv.core.env_server.types import Action, Observation, State
from pydantic import BaseModel, ConfigDict, Field

ACTION_TYPES = (
    "classify_ticket", "search_kb", "reply_ticket", "escalate_ticket", "close_ticket",
    "lookup_record", "issue_refund", "revoke_api_key", "lock_account", "send_replacement",
)
CATEGORIES = ("billing", "technical", "account")
RECORDS = ("account", "invoices", "api_keys", "usage", "audit_log", "incidents", "orders")
RESOLUTIONS = ("resolved", "refund_issued", "replacement_sent", "escalated", "no_action_needed", "spam")


class SupportAction(Action):
    """One agent action. Set `action_type` and only the fields that action uses.

    An unknown `action_type`, a missing field or a ticket id that is not the
    current ticket is an invalid action inside the episode (reward -0.2,
    counted, explained in `last_action_error`), not an HTTP error.
    """

    action_type: str = Field(
        ...,
        description="One of: classify_ticket, search_kb, reply_ticket, escalate_ticket, close_ticket.",
        examples=list(ACTION_TYPES),
    )
    ticket_id: Optional[str] = Field(
        default=None,
        description="Id of the current ticket (e.g. 'H03'). Required by every action except search_kb.",
    )
    category: Optional[str] = Field(
        default=None, description="classify_ticket: one of billing, technical, account."
    )
    query: Optional[str] = Field(
        default=None, description="search_kb: free-text query over the knowledge base (1-500 characters)."
    )
    reply_text: Optional[str] = Field(
        default=None,
        description="reply_ticket: the message sent to the customer (1-4000 characters). Graded on the "
        "policy facts it states: every required fact must be there and every stated amount must be true.",
    )
    reason: Optional[str] = Field(
        default=None, description="escalate_ticket: why this ticket needs the on-call team (required, non-empty)."
    )
    resolution: Optional[str] = Field(
        default=None,
        description="close_ticket (optional): resolved, refund_issued, replacement_sent, escalated, no_action_needed or spam.",
    )
    record: Optional[str] = Field(
        default=None, description="lookup_record: account, invoices, api_keys, usage, audit_log, incidents or orders."
    )
    account_id: Optional[str] = Field(
        default=None, description="lookup_record (optional): must be the ticket customer's account id if given."
    )
    invoice_id: Optional[str] = Field(default=None, description="issue_refund: invoice to refund, e.g. 'INV-30587'.")
    amount: Optional[float] = Field(default=None, description="issue_refund: amount in US dollars, e.g. 49.0.")
    key_id: Optional[str] = Field(default=None, description="revoke_api_key: id of the key to revoke (from the api_keys record).")
    order_id: Optional[str] = Field(default=None, description="send_replacement: order to replace (from the orders record).")


class Customer(BaseModel):
    """The person who wrote the ticket, as the helpdesk shows them."""

    name: str = Field(description="Customer's full name.")
    company: str = Field(description="Customer's company.")
    plan: str = Field(description="Subscription plan: free, pro, business or enterprise. Plan-specific policy values depend on it.")
    email: str = Field(description="Address the ticket came from.")
    account_id: Optional[str] = Field(
        default=None, description="The customer's account in the records (lookup_record); null when the task has no records."
    )


class ThreadMessage(BaseModel):
    """A message in the ticket thread after the customer's first message."""

    author: str = Field(description="'agent' (your replies) or 'customer' (the customer's answers).")
    text: str = Field(description="The message.")


class TicketView(BaseModel):
    """The current ticket, exactly as a support agent would see it."""

    id: str = Field(description="Ticket id, to pass as ticket_id in actions.")
    subject: str = Field(description="Subject line.")
    body: str = Field(description="The customer's message.")
    customer: Customer = Field(description="Who wrote it and on which plan.")
    priority: str = Field(description="Priority set by the customer: low, normal, high or urgent. Customers often misjudge it.")
    created_at: Optional[str] = Field(
        default=None, description="When the customer opened the ticket (ISO 8601, UTC), on or before the observation's `today`."
    )
    thread: list[ThreadMessage] = Field(
        default_factory=list, description="Replies sent on this ticket and the customer's answers, oldest first."
    )


class KBResult(BaseModel):
    """One knowledge-base article returned by search_kb."""

    article_id: str = Field(description="Article id, e.g. 'KB-B01'.")
    title: str = Field(description="Article title; archived articles say so in the title.")
    text: str = Field(description="Full article text.")
    score: float = Field(description="BM25 relevance score (higher is more relevant).")


class HistoryEntry(BaseModel):
    """One line of the episode log: what was done and what came of it."""

    step: int = Field(description="Step number (1-based).")
    action: str = Field(description="Compact rendering of the action.")
    result: str = Field(description="What happened, or the error.")
    reward: float = Field(description="Reward earned by this step.")


class Reward(BaseModel):
    """A step's reward with its named parts, so a trainer can see why."""

    value: float = Field(description="Total reward for the step (sum of components).")
    components: dict[str, float] = Field(
        default_factory=dict,
        description="Named parts: classification, kb_search, reply, escalation, false_escalation, "
        "wrong_facts, invalid_action, episode_grade.",
    )


class TicketGrade(BaseModel):
    """How one ticket was handled, component by component (shown once done)."""

    ticket_id: str = Field(description="Ticket id.")
    score: float = Field(description="Ticket score in [0, 1].")
    components: dict[str, float] = Field(description="Each graded component in [0, 1]: classification, reply, escalation, no_reply; for tickets with account records also outcome, evidence and resolution.")
    weights: dict[str, float] = Field(description="Weight of each component in the ticket score.")
    notes: list[str] = Field(default_factory=list, description="Plain-language explanation of every deduction.")


class Grade(BaseModel):
    """The episode's deterministic grade."""

    score: float = Field(description="Episode score in [0, 1]: the mean of the ticket scores, or 0 if the episode failed.")
    success: bool = Field(description="True when score >= 0.8, every critical ticket was escalated and the episode did not fail.")
    failed: bool = Field(default=False, description="True when the episode ended on the invalid-action limit (the score is then 0).")
    escalation_precision: float = Field(description="Share of escalations that were genuine emergencies (1.0 when none were made).")
    escalation_recall: float = Field(description="Share of genuine emergencies that were escalated (1.0 when there were none).")
    tickets: list[TicketGrade] = Field(description="Per-ticket breakdown, in queue order.")


class SupportObservation(Observation):
    """What the agent sees after reset and after every step."""

    episode_id: str = Field(default="", description="Session id; send it back as episode_id on /step and /state.")
    task_id: str = Field(default="", description="Task being played.")
    seed: Optional[int] = Field(default=None, description="Seed the episode was generated from (null: the canonical episode).")
    split: Optional[str] = Field(default=None, description="Template split of a generated episode: train or eval (null: canonical).")
    difficulty: str = Field(default="", description="easy, medium, hard or expert.")
    today: str = Field(
        default="", description="Today's date in the support world (ISO 8601). Refund windows, key expiries and ages count from it."
    )
    reward_mode: str = Field(
        default="dense",
        description="dense: shaped step rewards and the grade on the last step; sparse: every step's reward is 0 and "
        "reward_detail empty until the last step, which carries the grade.",
    )
    objective: str = Field(default="", description="What the agent must do in this task, including the category rubric.")
    current_ticket: Optional[TicketView] = Field(default=None, description="The ticket to work on; null once the queue is empty.")
    tickets_remaining: int = Field(default=0, description="Tickets not yet closed, including the current one.")
    tickets_total: int = Field(default=0, description="Tickets in the queue.")
    kb_search_results: list[KBResult] = Field(
        default_factory=list, description="Results of the latest search_kb on the current ticket (cleared when the ticket changes)."
    )
    records: dict[str, Any] = Field(
        default_factory=dict, description="Records looked up on the current ticket, by name (cleared when the ticket changes)."
    )
    conversation_history: list[HistoryEntry] = Field(default_factory=list, description="Compact log of the episode's actions and results.")
    last_action_error: Optional[str] = Field(default=None, description="Why the last action was invalid; null if it was valid.")
    available_actions: list[str] = Field(default_factory=lambda: list(ACTION_TYPES), description="Action types accepted by step.")
    steps_remaining: int = Field(default=0, description="Steps left before the episode is cut off.")
    invalid_actions: int = Field(default=0, description="Invalid actions so far; the episode fails at the limit.")
    max_invalid_actions: int = Field(default=10, description="Invalid actions allowed before the episode fails.")
    reward_detail: Reward = Field(default_factory=lambda: Reward(value=0.0), description="This step's reward, by component.")
    grade: Optional[Grade] = Field(default=None, description="Null until done; then the episode grade with every component explained.")


class TicketProgressView(BaseModel):
    """What the agent has done on one ticket (its own actions only, no answers)."""

    ticket_id: str = Field(description="Ticket id.")
    classified_as: Optional[str] = Field(default=None, description="Category the agent chose, if any.")
    replies: int = Field(default=0, description="Replies sent.")
    escalated: bool = Field(default=False, description="Whether the agent escalated it.")
    writes: list[str] = Field(default_factory=list, description="Account operations the agent performed on it.")
    resolution: Optional[str] = Field(default=None, description="Resolution code given at closing.")
    closed: bool = Field(default=False, description="Whether it is closed.")


class SupportState(State):
    """Server-side episode state as `/state` shows it: progress, never answers."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task_id: str = Field(default="", description="Task being played.")
    seed: Optional[int] = Field(default=None, description="Seed of the episode (null: canonical).")
    split: Optional[str] = Field(default=None, description="Template split of a generated episode (null: canonical).")
    difficulty: str = Field(default="", description="easy, medium, hard or expert.")
    today: str = Field(default="", description="Today's date in the support world (ISO 8601).")
    reward_mode: str = Field(default="dense", description="dense or sparse (sparse: total_reward stays 0 until done).")
    done: bool = Field(default=False, description="Whether the episode has ended.")
    current_ticket_id: Optional[str] = Field(default=None, description="Id of the current ticket; null once the queue is empty.")
    tickets_total: int = Field(default=0, description="Tickets in the queue.")
    tickets_closed: int = Field(default=0, description="Tickets closed so far.")
    invalid_actions: int = Field(default=0, description="Invalid actions so far.")
    max_steps: int = Field(default=50, description="Step limit.")
    total_reward: float = Field(default=0.0, description="Sum of step rewards so far.")
    progress: list[TicketProgressView] = Field(default_factory=list, description="The agent's own actions per ticket reached so far.")
    grade: Optional[Grade] = Field(default=None, description="Null until done; then the episode grade.")
