"""Facts: the checkable claims a support reply makes.

A policy value such as "14 days" or "600 requests per minute" is reduced to a
`Quantity` (a kind plus a canonical value) so that "14 days", "fourteen days",
"two weeks" and "a 14-day window" are one fact. Replies are graded on the
quantities they state, not on the words around them, which is what makes
keyword stuffing useless: every extra number is a claim that can be wrong.

Values that are not quantities (console paths, procedures) are `term` facts,
matched on normalised text against the value and its listed synonyms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

# --- numbers -----------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}
_UNIT_WORDS = "|".join(sorted(_UNITS, key=len, reverse=True))
_TEN_WORDS = "|".join(_TENS)
# A spelled-out number: "fourteen", "twenty-four", "two hundred", "ten thousand".
# Two unit words in a row ("five-ten") are a range, not one number.
_WORD_NUMBER = rf"(?:(?:(?:{_TEN_WORDS})(?:[\s-]+(?:{_UNIT_WORDS}))?|(?:{_UNIT_WORDS}))(?:\s+(?:hundred|thousand))?)"
_DIGIT_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
NUMBER = rf"(?:{_DIGIT_NUMBER}|{_WORD_NUMBER}|an?)"
# Every number above starts with a digit or one of these letters. Stated before
# a number in a pattern, it changes no match, but the engine tests one character
# at each word instead of trying thirty number words (it halves a pattern's cost).
_NUMBER_START = r"(?=[\daefnostz])"
_DIGIT_NUMBER_RE = re.compile(_DIGIT_NUMBER)
_WORD_SEPARATOR_RE = re.compile(r"[\s-]+")


def parse_number(text: str) -> float | None:
    """Turn "1,500", "12.5", "twenty-four", "a" or "an" into a number."""
    text = text.strip().lower()
    if text in ("a", "an"):
        return 1.0
    if _DIGIT_NUMBER_RE.fullmatch(text):
        return float(text.replace(",", ""))
    total, current = 0, 0
    for word in _WORD_SEPARATOR_RE.split(text):
        if word == "and":
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            return None
    return float(total + current)


# --- quantities --------------------------------------------------------------

_DURATION_MINUTES = {
    "second": 1 / 60, "minute": 1, "hour": 60, "day": 1440, "week": 10080,
    "month": 43800, "year": 525600,
}
_DURATION_ALIASES = {
    "sec": "second", "secs": "second", "min": "minute", "mins": "minute",
    "h": "hour", "hr": "hour", "hrs": "hour", "yr": "year", "yrs": "year",
}
_RATE_PER_MINUTE = {"second": 60, "minute": 1, "hour": 1 / 60, "day": 1 / 1440}
_SIZE_MB = {"kb": 0.001, "mb": 1, "gb": 1000, "tb": 1_000_000}
_SIZE_ALIASES = {"kilobyte": "kb", "megabyte": "mb", "gigabyte": "gb", "terabyte": "tb"}

_SEP = r"(?:\s*(?:-|–|—|to|and)\s*)"
_DURATION_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?|yrs?)"

_BUSINESS_DAYS_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<lo>{NUMBER})(?:{_SEP}(?P<hi>{NUMBER}))?[\s-]*(?:business|working)[\s-]+days?\b", re.I
)
_RATE_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<n>{NUMBER})\s*(?:api\s+)?(?:requests?|calls?|reqs?)\s*(?:per|/|a|an|each|every)\s*"
    r"(?P<unit>second|sec|s|minute|min|m|hour|hr|h|day)\b",
    re.I,
)
_RPM_RE = re.compile(rf"\b{_NUMBER_START}(?P<n>{NUMBER})\s*(?P<unit>rps|rpm|rph)\b", re.I)
_MONEY_RE = re.compile(
    rf"(?:\$\s?(?P<a>{_DIGIT_NUMBER})|\b(?P<b>{_DIGIT_NUMBER})\s?(?:usd|dollars?)\b|\busd\s?(?P<c>{_DIGIT_NUMBER}))",
    re.I,
)
_PERCENT_RE = re.compile(rf"\b{_NUMBER_START}(?P<n>{_DIGIT_NUMBER}|{_WORD_NUMBER})\s?(?:%|percent\b|per\s+cent\b)", re.I)
_SIZE_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<n>{_DIGIT_NUMBER}|{_WORD_NUMBER})\s?(?P<unit>kb|mb|gb|tb|kilobytes?|megabytes?|gigabytes?|terabytes?)\b",
    re.I,
)
_DURATION_RE = re.compile(rf"\b{_NUMBER_START}(?P<n>{NUMBER})(?:[\s-]+|(?<=\d))(?P<unit>{_DURATION_UNIT})\b", re.I)
_WEEKS_ALIASES = {"fortnight": 20160}
_HALF_HOUR_RE = re.compile(r"\bhalf\s+an?\s+hour\b", re.I)
_FORTNIGHT_RE = re.compile(r"\b(?:a|one)\s+fortnight\b", re.I)

# Cues: a part every match of the pattern above it contains (same flags, so the
# same case folding). A text without the cue cannot match, and scanning for a
# literal is far cheaper than trying a number at every word (tens of µs per
# pattern on a 280-character reply), and most replies state no rate, size or
# money. A text with the cue is scanned as before, so the result is unchanged.
_BUSINESS_DAYS_CUE = re.compile(r"(?:business|working)[\s-]+day", re.I)
_RATE_CUE = re.compile(r"req|call", re.I)
_RPM_CUE = re.compile(r"rps|rpm|rph", re.I)
_MONEY_CUE = re.compile(r"\$|usd|dollar", re.I)
_PERCENT_CUE = re.compile(r"%|percent|per\s+cent", re.I)
_SIZE_CUE = re.compile(r"kb|mb|gb|tb|kilobyte|megabyte|gigabyte|terabyte", re.I)
# A duration's unit is preceded by a space or hyphen, or directly by a digit.
_DURATION_CUE = re.compile(rf"(?:[\s-]|\d){_DURATION_UNIT}\b", re.I)


@dataclass(frozen=True, slots=True)  # slots: graders keep every reply's quantities until the episode ends
class Quantity:
    """A stated amount: `kind` is duration, business_days, money, rate,
    percent or size; `value` is canonical (minutes, (low, high) days, cents,
    requests per minute, percent, megabytes)."""

    kind: str
    value: float | tuple[float, float]
    text: str

    def same_as(self, other: "Quantity") -> bool:
        if self.kind != other.kind:
            return False
        if isinstance(self.value, tuple) or isinstance(other.value, tuple):
            return self.value == other.value
        return abs(self.value - other.value) <= 1e-6 * max(1.0, abs(self.value))


# The patterns match case-insensitively, under which these four letters also
# match ASCII ones ("5 ſeconds" is a duration): fold them before looking a unit
# up, which otherwise raised KeyError and failed the step.
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _unit(raw: str) -> str:
    return raw.translate(_ASCII_FOLD).lower()


def _duration_unit(raw: str) -> str:
    unit = _unit(raw)
    unit = _DURATION_ALIASES.get(unit, unit)
    return unit[:-1] if unit.endswith("s") and unit[:-1] in _DURATION_MINUTES else unit


def extract_quantities(text: str) -> list[Quantity]:
    """Every quantity stated in `text`, each span counted once.

    More specific patterns run first (business days before durations, rates
    before durations) and claim their spans, so "600 requests per minute" is a
    rate and not also a one-minute duration.
    """
    found: list[Quantity] = []
    # One flag per character, set where a quantity was claimed: checking a match is
    # linear in its length, not in the quantities found so far (a 4,000-character
    # reply listing 1,000 amounts would otherwise take a quadratic 0.1-0.3 s).
    taken = bytearray(len(text))

    def free(m: re.Match) -> bool:
        return not any(taken[m.start():m.end()])

    def add(m: re.Match, kind: str, value) -> None:
        if value is None:
            return
        taken[m.start():m.end()] = b"\x01" * (m.end() - m.start())
        found.append(Quantity(kind, value, m.group(0)))

    for m in _matches(_BUSINESS_DAYS_RE, _BUSINESS_DAYS_CUE, text):
        lo = parse_number(m.group("lo"))
        hi = parse_number(m.group("hi")) if m.group("hi") else lo
        add(m, "business_days", None if lo is None or hi is None else (lo, hi))
    for m in _matches(_RATE_RE, _RATE_CUE, text):
        if not free(m):
            continue
        n = parse_number(m.group("n"))
        unit = _unit(m.group("unit"))
        unit = {"sec": "second", "s": "second", "min": "minute", "m": "minute", "hr": "hour", "h": "hour"}.get(unit, unit)
        add(m, "rate", None if n is None else n * _RATE_PER_MINUTE[unit])
    for m in _matches(_RPM_RE, _RPM_CUE, text):
        if free(m):
            n = parse_number(m.group("n"))
            per = {"rps": 60, "rpm": 1, "rph": 1 / 60}[_unit(m.group("unit"))]
            add(m, "rate", None if n is None else n * per)
    for m in _matches(_MONEY_RE, _MONEY_CUE, text):
        if free(m):
            raw = m.group("a") or m.group("b") or m.group("c")
            add(m, "money", round(float(raw.replace(",", "")) * 100))
    for m in _matches(_PERCENT_RE, _PERCENT_CUE, text):
        if free(m):
            add(m, "percent", parse_number(m.group("n")))
    for m in _matches(_SIZE_RE, _SIZE_CUE, text):
        if free(m):
            n = parse_number(m.group("n"))
            unit = _unit(m.group("unit")).rstrip("s")
            unit = _SIZE_ALIASES.get(unit, unit)
            add(m, "size", None if n is None else n * _SIZE_MB[unit])
    for m in _HALF_HOUR_RE.finditer(text):
        if free(m):
            add(m, "duration", 30.0)
    for m in _FORTNIGHT_RE.finditer(text):
        if free(m):
            add(m, "duration", float(_WEEKS_ALIASES["fortnight"]))
    for m in _matches(_DURATION_RE, _DURATION_CUE, text):
        if free(m):
            n = parse_number(m.group("n"))
            unit = _duration_unit(m.group("unit"))
            add(m, "duration", None if n is None else n * _DURATION_MINUTES[unit])
    return found


def _matches(pattern: re.Pattern, cue: re.Pattern, text: str):
    """`pattern.finditer(text)`, or nothing at once when `text` lacks the pattern's cue."""
    return pattern.finditer(text) if cue.search(text) else ()


# --- terms -------------------------------------------------------------------

def normalise_text(text: str) -> str:
    """Lower-case, and fold every run of punctuation and space into one space,
    so "Console > Billing > Invoices" and "console → billing → invoices" match."""
    text = _FULL_STOP_RE.sub(" ", text.lower())  # a full stop, not the dot in an address
    return " " + _NOT_WORD_RE.sub(" ", text).strip() + " "


_FULL_STOP_RE = re.compile(r"\.(?![a-z0-9])")
_NOT_WORD_RE = re.compile(r"[^a-z0-9@.]+")
# Claim phrases come from the task files: a small, fixed set, normalised once.
_normalised_phrase = lru_cache(maxsize=4096)(normalise_text)


@dataclass(frozen=True)
class Fact:
    """One checkable policy value from a KB article.

    `plan` limits the fact to customers on that plan. `quantity` is set when
    the value parses as an amount; otherwise the fact is a term matched via
    `phrases` (the value and its synonyms, normalised).
    """

    key: str
    value: str
    plan: str | None
    quantity: Quantity | None
    phrases: tuple[str, ...]

    def applies_to(self, plan: str) -> bool:
        return self.plan is None or self.plan == plan

    def stated_in(self, text: str, quantities: Sequence[Quantity] | None = None, normalised: str | None = None) -> bool:
        """`quantities` and `normalised`, when given, are `extract_quantities(text)` and `normalise_text(text)`."""
        if self.quantity is not None:
            stated = extract_quantities(text) if quantities is None else quantities
            return any(q.same_as(self.quantity) for q in stated)
        norm = normalise_text(text) if normalised is None else normalised
        return any(p in norm for p in self.phrases)


def make_fact(key: str, value: str, plan: str | None = None, synonyms: list[str] | None = None) -> Fact:
    """Build a fact from a KB front-matter entry; a value that reads as one
    whole quantity becomes a quantity fact, anything else a term."""
    quantity = _whole_quantity(value)
    phrases: tuple[str, ...] = ()
    if quantity is None:
        phrases = tuple(
            dict.fromkeys(normalise_text(p) for p in [value, *(synonyms or [])] if normalise_text(p).strip())
        )
    return Fact(key=key, value=value, plan=plan, quantity=quantity, phrases=phrases)


@lru_cache(maxsize=None)
def _whole_quantity(value: str) -> Quantity | None:
    stated = extract_quantities(value)
    if len(stated) == 1 and len(stated[0].text.strip()) >= len(value.strip()) - 1:
        return stated[0]
    return None


_NEGATORS = {"not", "never", "cannot", "can't", "cant", "won't", "wont", "unable", "no"}


def claims(text: str, phrases: tuple[str, ...], normalised: str | None = None) -> bool:
    """Whether `text` makes a claim in one of its `phrases`, not negated
    ("we will reissue" claims it; "we cannot reissue" does not).
    `normalised`, when given, is `normalise_text(text)`."""
    norm = normalise_text(text) if normalised is None else normalised
    for phrase in phrases:
        target = _normalised_phrase(phrase)
        start = norm.find(target)
        while start >= 0:
            before = norm[:start].split()[-3:]
            if not _NEGATORS.intersection(before):
                return True
            start = norm.find(target, start + 1)
    return False
