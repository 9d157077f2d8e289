"""Forbidden claims: promises policy forbids on a ticket, and account details it must not disclose.

A promise is a positive commitment to a forbidden act (`domain/data/acts.yaml`)
in any phrasing: one of the act's verbs and one of its objects in one segment
of a sentence that is not negated, not a question and not a condition ("if"),
and whose sentence does not make the act wait for what the act's `unless`
names ("once we have verified your identity, we will change it back"). "We
can't reissue last month's invoice" is a refusal, not a promise.

A disclosure is a record value (an id, an address, a country, a time) stated
to someone who may not see it, in any spelling ("freemail dot example dot
net"), whatever the polarity of the sentence around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

from ..domain.words import plain, stem, stems, tokens
from ..domain.yamlfile import parse_yaml
from .claims import Segment, by_sentence, clean, list_start, segments, unquoted

ACTS_FILE = Path(__file__).resolve().parents[1] / "domain" / "data" / "acts.yaml"
_CONDITION_RE = re.compile(r"^\s*(?:if|unless|whether|in case)\b", re.I)
_WAITING_RE = re.compile(r"\b(?:once|after|when|as soon as|until|till|only if|only after|provided|before)\b", re.I)
# The customer's own moves: "you can update your tax ID", "you'll need to change it".
_CUSTOMER_MOVE_RE = re.compile(r"\byou(?:'ll| will)?\s+(?:can|could|may|might|should|must|need|have to|want|will need)\b", re.I)
# Who does the act: us ("we've switched", "our team will") or nobody named (a passive: "has been
# switched back"). An imperative ("please change your password") is advice to the customer.
_OUR_DOING_RE = re.compile(
    r"\b(?:we|i|us|our|ours|team|support|stackwell|engineers?|agents?)\b"
    r"|\b(?:has|have|had)\s+(?:\w+\s+)?been\b|\bwill\s+(?:\w+\s+)?be\b|\b(?:is|are)\s+(?:now\s+|being\s+|also\s+)?\w+(?:ed|en)\b|\bgot\b"
    r"|\bagain\b|\bback\s+on\b",  # a change reported as done: "is the login address again", "2FA is back on"
    re.I,
)
_FOLLOWS_ON_RE = re.compile(r"\b(?:then|after\s+that|afterwards|once\s+that|for\s+that|at\s+that\s+point)\b", re.I)
_RELATIVE_RE = re.compile(r"^\s*(?:who|which)\b", re.I)
_SPELLED_DOT_RE = re.compile(r"\s*[\[(]?\s*\bdot\b\s*[\])]?\s*", re.I)
_SPELLED_AT_RE = re.compile(r"\s*[\[(]\s*at\s*[\])]\s*|\s+at\s+(?=[a-z0-9-]+\s*(?:[\[(]?\s*dot\b|\.))", re.I)


@dataclass(frozen=True)
class Act:
    id: str
    verbs: tuple[tuple[str, ...], ...]
    objects: tuple[tuple[str, ...], ...]
    exceptions: tuple[tuple[str, ...], ...]
    unless: tuple[tuple[str, ...], ...]
    alone: tuple[tuple[str, ...], ...] = ()  # phrases that commit to the act with no object named

    @cached_property
    def firsts(self) -> frozenset[str]:
        """The first words of the act's verbs and stand-alone phrases."""
        return frozenset(v[0] for v in self.verbs + self.alone)


@lru_cache(maxsize=1)
def acts() -> dict[str, Act]:
    raw = parse_yaml(ACTS_FILE.read_text(encoding="utf-8"))
    return {
        name: Act(
            id=name,
            verbs=tuple(stems(v) for v in entry["verbs"]),
            objects=tuple(stems(o) for o in entry.get("objects") or ()),
            exceptions=tuple(stems(e) for e in entry.get("except") or ()),
            unless=tuple(stems(u) for u in entry.get("unless") or ()),
            alone=tuple(stems(a) for a in entry.get("alone") or ()),
        )
        for name, entry in raw.items()
    }


def _holds(words: list[str], sequence: tuple[str, ...]) -> bool:
    """Whether `words` hold `sequence` in order, with at most three other words between two of its
    words ("put the login email back" holds "put back")."""
    if sequence[0] not in words:
        return False
    for i, w in enumerate(words):
        if w != sequence[0]:
            continue
        k, last = 1, i
        for j in range(i + 1, min(len(words), i + 1 + 4 * len(sequence))):
            if k == len(sequence):
                break
            if words[j] == sequence[k]:
                if j - last > 4:
                    break
                k, last = k + 1, j
        if k == len(sequence):
            return True
    return False


def promises(text: str, act_id: str, about: tuple[str, ...] = ()) -> bool:
    """Whether `text` commits to act `act_id` (see the module docstring). `about` adds objects
    of this ticket's own ("February": the charge the window no longer covers)."""
    act = acts()[act_id]
    if about:
        act = Act(act.id, act.verbs, act.objects + tuple(stems(a) for a in about), act.exceptions, act.unless, act.alone)
    parts, questions = segments(clean(text))  # the claims' reading of the same reply, from the cache
    sentences = by_sentence(parts)
    for index, sentence in sentences.items():
        if index in questions:
            continue
        # what the act waits for may be said in the sentence before: "we can't change it until we have
        # verified your identity; the security team will then help you restore access"
        follows_on = any(_FOLLOWS_ON_RE.search(s.text) for s in sentence)
        context = (sentences.get(index - 1, []) if follows_on else []) + sentence
        sentence_words = [w for s in context for w in s.words]
        waits = act.unless and any(_holds(sentence_words, u) for u in act.unless) and any(
            _WAITING_RE.search(s.text) or s.negated for s in context
        )
        if waits:
            continue
        for k, part in enumerate(sentence):
            if not act.firsts.intersection(part.words):
                continue  # no verb of the act starts here: the cheap test first
            if '"' in part.text or "\u201c" in part.text:
                part = _without_quotations(part)  # 'use the subject "2FA reset"' names words, it does no reset
                if not act.firsts.intersection(part.words):
                    continue
            head = sentence[list_start(sentence, k)]  # "we cannot change the login email, process any refund"
            verb_at = next(i for i, w in enumerate(part.words) if w in act.firsts)
            # the negation that denies the act stands by its verb ("we can't refund"); one further back
            # belongs to another clause ("since nobody used the account, I've made an exception")
            if part.negates(verb_at, before=4, after=1) or (head is not part and head.negated):
                continue
            if _CONDITION_RE.match(part.text) or _CUSTOMER_MOVE_RE.search(plain(part.text)):
                continue
            continues = k > 0 and (part.joined_by in ("and", "then") or _RELATIVE_RE.match(part.text))
            if not _OUR_DOING_RE.search(plain(part.text)) and not (continues and _OUR_DOING_RE.search(plain(sentence[k - 1].text))):
                continue  # nobody of ours does it here, nor in the clause it continues
            if k > 0 and _CONDITION_RE.match(sentence[0].text) and not any(w in ("we", "i") for w in part.words[:2]):
                continue  # the consequence of a condition stated before it
            if any(_holds(part.words, v) for v in act.alone):
                return True  # "we can make an exception": a promise whatever it is about
            if not any(_holds(part.words, v) for v in act.verbs):
                continue
            # the object may stand in the segments that go on from it: "we'll regenerate it, the invoice
            # for March"; "I've refunded October's duplicate and, as a goodwill gesture, September's"
            nearby = list(part.words)
            for following in sentence[k + 1:]:
                if following.joined_by not in (",", "and") or following.negated:
                    break
                nearby += following.words
            if act.objects and not any(_holds(nearby, o) for o in act.objects):
                continue
            if any(_holds(part.words, e) for e in act.exceptions):
                continue
            return True
    return False


def _without_quotations(part: Segment) -> Segment:
    """The segment with its quoted words left out (positions of negations may shift: quotes are rare)."""
    return replace(part, words=[stem(w) for w in tokens(unquoted(part.text))], hits={})


def readable(text: str) -> str:
    """Addresses spelled out to dodge filters, put back: "name at host dot example" -> "name@host.example"."""
    text = _SPELLED_DOT_RE.sub(".", text)
    return _SPELLED_AT_RE.sub("@", text)


def disclosed(text: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """The record values `text` states, in any of the spellings `readable` undoes."""
    found = []
    for value in values:
        # a short code ("IT", "RO") counts only as written: "it" is a pronoun
        flags = 0 if len(value) <= 3 and value.isalpha() else re.I
        pattern = re.compile(rf"(?<![\w.-]){re.escape(value)}(?![\w@-])", flags)
        if pattern.search(text) or pattern.search(readable(text)):
            found.append(value)
    return tuple(found)
