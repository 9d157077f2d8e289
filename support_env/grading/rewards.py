"""Step rewards (dense mode): shaping that pays for pieces of the graded work.

Each rubric item pays once per ticket, the same action repeated again and
again costs a little, and the episode's grade is added on the last step, so
loops earn nothing.
"""

from __future__ import annotations

from typing import Sequence

from ..episodes.spec import TicketTruth
from .reply import ReplyGrade

REWARD_CLASSIFICATION = 0.1
REWARD_KB_SEARCH = 0.1
REWARD_REPLY = 0.2
REWARD_ESCALATION = 0.2
PENALTY_FALSE_ESCALATION = -0.2
PENALTY_WRONG_FACTS = -0.1
PENALTY_INVALID_ACTION = -0.2
REWARD_OUTCOME = 0.2  # an account operation the case needs (once each)
PENALTY_UNEXPECTED_WRITE = -0.2  # an account operation the case does not need (every time)
PENALTY_POLICY_BREACH = PENALTY_UNEXPECTED_WRITE  # an operation policy forbids (every time, even on a needed target)
# The third identical action in a row, and every one after it, costs this much.
PENALTY_REPETITION = -0.05
REPEATS_ALLOWED = 2


def classification_reward(truth: TicketTruth, category: str) -> float:
    return REWARD_CLASSIFICATION if truth.category is not None and category == truth.category else 0.0


def search_reward(truth: TicketTruth, retrieved: Sequence[str]) -> float:
    """Paid when a search first surfaces the article that answers the ticket."""
    return REWARD_KB_SEARCH if truth.reply is not None and truth.reply.article in retrieved else 0.0


def escalation_reward(truth: TicketTruth) -> tuple[str, float]:
    if truth.escalate:
        return "escalation", REWARD_ESCALATION
    return "false_escalation", PENALTY_FALSE_ESCALATION


def reply_reward(previous_best: float, grade: ReplyGrade) -> float:
    """Pays the improvement in the ticket's reply score, so the item pays at most once in total."""
    return REWARD_REPLY * max(0.0, grade.score - previous_best)
