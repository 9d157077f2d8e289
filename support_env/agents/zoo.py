"""The policy zoo: the reference policy and the strategies that beat weaker
benchmarks. `python -m support_env.audit` plays them all; the tests pin the
ordering (reference on top, every exploit far below).

Each exploit plays from the observation only, like any agent would.
"""

from __future__ import annotations

import random

from ..domain.kb import KnowledgeBase, default_kb
from ..models import ACTION_TYPES, CATEGORIES, RECORDS, SupportAction, SupportObservation, TicketView
from ..episodes.catalogue import CASE_TASKS, TASK_IDS
from .reading import EMERGENCY_RULES, classify, compose_reply, emergency, noise_kind
from .reference import ReferencePolicy


ALL_TASKS = TASK_IDS
# Tasks where answering from the KB is part of the job; on easy_classify,
# classifying and closing is the whole job, so those strategies are not exploits there.
ANSWER_TASKS = ("medium_kb_reply", "hard_mixed_queue", *CASE_TASKS, "expert_queue")


def _act(action_type: str, ticket: TicketView | None = None, **fields: str) -> SupportAction:
    return SupportAction(action_type=action_type, ticket_id=ticket.id if ticket else None, **fields)


class _PerTicket:
    """Base for scripted exploits: a fixed list of moves per ticket."""

    name = "per-ticket"

    def __init__(self) -> None:
        self._ticket: str | None = None
        self._moves: list[SupportAction] = []

    def act(self, observation: SupportObservation) -> SupportAction:
        ticket = observation.current_ticket
        if ticket.id != self._ticket:
            self._ticket, self._moves = ticket.id, self.moves(ticket)
        if self._moves:
            return self._moves.pop(0)
        return self.next_after_moves(ticket, observation)

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        raise NotImplementedError

    def next_after_moves(self, ticket: TicketView, observation: SupportObservation) -> SupportAction:
        return _act("close_ticket", ticket)


class DoNothing:
    """Never touches a ticket; searches until the step limit."""

    name = "do-nothing"
    targets = ALL_TASKS

    def act(self, observation: SupportObservation) -> SupportAction:
        return _act("search_kb", query="hello")


class RandomPolicy:
    """Uniformly random action types and fields (seeded)."""

    name = "random"
    targets = ALL_TASKS

    def __init__(self, seed: int = 0):
        self._rng = random.Random(seed)

    def act(self, observation: SupportObservation) -> SupportAction:
        rng = self._rng
        ticket = observation.current_ticket
        ticket_id = ticket.id if ticket and rng.random() < 0.8 else rng.choice(["E01", "M03", "H07", "X"])
        kind = rng.choice(ACTION_TYPES)
        words = ["refund", "limit", "key", "login", "invoice", "backup", "days", "help"]
        return SupportAction(
            action_type=kind,
            ticket_id=ticket_id,
            category=rng.choice(CATEGORIES),
            query=" ".join(rng.sample(words, 2)),
            reply_text=f"We can help within {rng.randint(1, 60)} days.",
            reason="random",
        )


class CloseImmediately:
    """Closes every ticket without handling it."""

    name = "close-immediately"
    targets = ALL_TASKS

    def act(self, observation: SupportObservation) -> SupportAction:
        return _act("close_ticket", observation.current_ticket)


class EscalateEverything(_PerTicket):
    """Escalates every ticket, then closes it."""

    name = "escalate-everything"
    targets = ("hard_mixed_queue", "account_takeover_fraud", "expert_queue")

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        return [_act("escalate_ticket", ticket, reason="urgent customer issue"), _act("close_ticket", ticket)]


class ClassifyOnly(_PerTicket):
    """Gets categories right and does nothing else."""

    name = "classify-only"
    targets = ANSWER_TASKS

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        return [_act("classify_ticket", ticket, category=classify(ticket)), _act("close_ticket", ticket)]


class KeywordStuffer(_PerTicket):
    """Classifies, searches, and replies with the text of every article it found."""

    name = "keyword-stuffer"
    targets = ANSWER_TASKS

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        return [
            _act("classify_ticket", ticket, category=classify(ticket)),
            _act("search_kb", query=f"{ticket.subject} {ticket.body}"[:500]),
        ]

    def next_after_moves(self, ticket: TicketView, observation: SupportObservation) -> SupportAction:
        if not observation.conversation_history[-1].action.startswith("reply_ticket"):
            pasted = "\n\n".join(r.text for r in observation.kb_search_results)[:4000]
            if pasted:
                self._moves = [_act("close_ticket", ticket)]
                return _act("reply_ticket", ticket, reply_text=pasted)
        return _act("close_ticket", ticket)


class RepeatFarmer:
    """Repeats the first action that earned a positive reward, forever."""

    name = "repeat-farmer"
    targets = ALL_TASKS

    def __init__(self) -> None:
        self._reference = ReferencePolicy()
        self._farmed: SupportAction | None = None
        self._last: SupportAction | None = None

    def act(self, observation: SupportObservation) -> SupportAction:
        if self._farmed is None and self._last is not None and (observation.reward or 0) > 0:
            self._farmed = self._last
        self._last = self._farmed or self._reference.act(observation)
        return self._last


class ReplyWithoutSearch(_PerTicket):
    """Knows the KB by heart but never retrieves: classifies, replies with the right
    article's facts straight from memory, escalates emergencies, closes."""

    name = "reply-without-search"
    targets = ANSWER_TASKS

    def __init__(self, kb: KnowledgeBase | None = None):
        super().__init__()
        self.kb = kb or default_kb()

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        hits = [a for a, _ in self.kb.search(f"{ticket.subject} {ticket.body}"[:500]) if not a.archived]
        moves = [_act("classify_ticket", ticket, category=classify(ticket))]
        if hits:
            moves.append(_act("reply_ticket", ticket, reply_text=compose_reply(ticket, hits[0])))
        return moves + [_act("close_ticket", ticket)]


class Sloppy(_PerTicket):
    """Plausible but sloppy: right categories and escalations, but a search on the
    subject line only and a one-line reply quoting the first fact of the first
    result, archived or not, whatever the customer's plan."""

    name = "sloppy"
    targets = ()  # not an exploit: a probe that the grader gives partial credit

    def __init__(self, kb: KnowledgeBase | None = None):
        super().__init__()
        self.kb = kb or default_kb()

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        return [_act("classify_ticket", ticket, category=classify(ticket)), _act("search_kb", query=ticket.subject)]

    def next_after_moves(self, ticket: TicketView, observation: SupportObservation) -> SupportAction:
        last = observation.conversation_history[-1].action
        if last.startswith("search_kb") and observation.kb_search_results:
            article = self.kb.articles[observation.kb_search_results[0].article_id]
            fact = article.facts[0].value if article.facts else "our standard policy"
            return _act("reply_ticket", ticket, reply_text=f"Thanks for writing in. Our policy here: {fact}. Hope that helps!")
        if not last.startswith("escalate") and emergency(ticket):
            return _act("escalate_ticket", ticket, reason="looks like an emergency")
        return _act("close_ticket", ticket)


class EveryWrite:
    """Looks up every record, then does every account operation it can find a
    target for: full refunds of every invoice, every key revoked, the account
    locked, every order replaced. Then closes."""

    name = "every-write"
    targets = (*CASE_TASKS, "expert_queue")

    def __init__(self) -> None:
        self._queue: list[SupportAction] = []
        self._ticket: str | None = None
        self._looked = False

    def act(self, observation: SupportObservation) -> SupportAction:
        ticket = observation.current_ticket
        if ticket.id != self._ticket:
            self._ticket, self._looked = ticket.id, False
            self._queue = [_act("lookup_record", ticket, record=r) for r in RECORDS]
        if not self._queue and not self._looked:
            self._looked = True
            self._queue = self._writes(ticket, observation.records)
        return self._queue.pop(0) if self._queue else _act("close_ticket", ticket)

    @staticmethod
    def _writes(ticket: TicketView, records: dict) -> list[SupportAction]:
        writes = [
            SupportAction(
                action_type="issue_refund", ticket_id=ticket.id, invoice_id=inv["invoice_id"],
                amount=sum(p["amount_cents"] for p in inv["payments"]) / 100,
            )
            for inv in records.get("invoices", [])
        ]
        writes += [SupportAction(action_type="revoke_api_key", ticket_id=ticket.id, key_id=k["key_id"]) for k in records.get("api_keys", [])]
        writes.append(_act("lock_account", ticket))
        writes += [SupportAction(action_type="send_replacement", ticket_id=ticket.id, order_id=o["order_id"]) for o in records.get("orders", [])]
        return writes


class KeywordGeneric(_PerTicket):
    """A generic keyword script that reads only the ticket text: keyword category, escalation on
    alarm words, a search with the ticket's words and a reply stating the top article's values for
    the customer's plan, then close. No records, no dates, no account operations. It scores well
    wherever the words decide, so it measures how much of a task the words alone solve."""

    name = "keyword-generic"
    targets = ("expert_queue",)  # elsewhere the words do decide: there it is a fair baseline, not an exploit

    def __init__(self, kb: KnowledgeBase | None = None):
        super().__init__()
        self.kb = kb or default_kb()

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        moves = [_act("classify_ticket", ticket, category=classify(ticket))]
        if emergency(ticket):
            moves.append(_act("escalate_ticket", ticket, reason="emergency words in the ticket"))
        if noise_kind(ticket) is None:
            moves.append(_act("search_kb", query=f"{ticket.subject} {ticket.body}"[:500]))
        return moves

    def next_after_moves(self, ticket: TicketView, observation: SupportObservation) -> SupportAction:
        last = observation.conversation_history[-1].action
        if last.startswith("search_kb"):
            current = [r for r in observation.kb_search_results if not self.kb.articles[r.article_id].archived]
            if current:
                return _act("reply_ticket", ticket, reply_text=compose_reply(ticket, self.kb.articles[current[0].article_id]))
        code = "escalated" if emergency(ticket) else noise_kind(ticket) or "resolved"
        return _act("close_ticket", ticket, resolution="no_action_needed" if code == "thanks" else code)


class RewardProber(_PerTicket):
    """Reads the step rewards instead of the ticket: searches each emergency runbook and escalates
    when a search pays (the runbook answers this ticket), then answers from the article that paid,
    like the keyword script otherwise. In dense mode the search reward is an oracle for emergencies;
    in sparse mode it pays nothing, so probing gains nothing."""

    name = "reward-prober"
    targets = ("expert_queue",)  # dense mode pays it on hard queues by design (shaping); sparse mode is for evaluation

    def __init__(self, kb: KnowledgeBase | None = None):
        super().__init__()
        self.kb = kb or default_kb()

    def moves(self, ticket: TicketView) -> list[SupportAction]:
        self._probes = [rule.query for rule in EMERGENCY_RULES]
        self._paid = self._searched = self._replied = False
        return [_act("classify_ticket", ticket, category=classify(ticket))]

    def next_after_moves(self, ticket: TicketView, observation: SupportObservation) -> SupportAction:
        last = observation.conversation_history[-1]
        if self._probes and last.action.startswith("search_kb") and last.reward > 0 and not self._paid:
            self._paid, self._probes = True, []
            return _act("escalate_ticket", ticket, reason="the emergency runbook matched")
        if self._probes:
            return _act("search_kb", query=self._probes.pop(0))
        if noise_kind(ticket) is None and not self._replied:
            if not self._searched:
                self._searched = True
                return _act("search_kb", query=f"{ticket.subject} {ticket.body}"[:500])
            self._replied = True
            current = [r for r in observation.kb_search_results if not self.kb.articles[r.article_id].archived]
            if current:
                return _act("reply_ticket", ticket, reply_text=compose_reply(ticket, self.kb.articles[current[0].article_id]))
        return _act("close_ticket", ticket, resolution="escalated" if self._paid else "resolved")


EXPLOITS = (
    DoNothing, RandomPolicy, CloseImmediately, EscalateEverything, KeywordStuffer,
    RepeatFarmer, ClassifyOnly, ReplyWithoutSearch, EveryWrite, KeywordGeneric, RewardProber,
)
ZOO = (ReferencePolicy, *EXPLOITS, Sloppy)


def make(name: str, seed: int = 0):
    """A fresh policy by name (seeded where the policy is random)."""
    for cls in ZOO:
        if cls.name == name:
            return cls(seed) if cls is RandomPolicy else cls()
    raise KeyError(f"unknown policy {name!r}; known: {', '.join(c.name for c in ZOO)}")
