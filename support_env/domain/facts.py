"""Facts: the checkable values of policy, and amounts as text states them.

A policy value such as "14 days" or "600 requests per minute" is reduced to a
`Quantity` (a kind plus a canonical value) so that "14 days", "fourteen days",
"two weeks", "a fortnight" and "a 14-day window" are one value.
`extract_quantities` finds every amount a text states, with where it stands;
`grading/claims.py` binds each to the fact it is about.

Values that are not quantities (console paths, procedures, rules) are term
facts, recognised by the content words of the value and its synonyms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .words import STOPWORDS, stem, stems, tokens

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
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_UNIT_WORDS = "|".join(sorted(_UNITS, key=len, reverse=True))
_TEN_WORDS = "|".join(_TENS)
# A spelled-out number: "fourteen", "twenty-four", "two hundred", "ten thousand".
# Two unit words in a row ("five-ten") are a range, not one number.
_WORD_NUMBER = rf"(?:(?:(?:{_TEN_WORDS})(?:[\s-]+(?:{_UNIT_WORDS}))?|(?:{_UNIT_WORDS}))(?:\s+(?:hundred|thousand|million))?)"
_DIGIT_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
# The continental spelling of amounts and counts: "3.990,00", "518,50", "3.000" (a dot groups thousands, a comma
# marks two decimals). Read only as money and as request rates, where three decimals would mean nothing.
_EURO_NUMBER = r"(?:\d{1,3}(?:\.\d{3})+(?:,\d{2})?|\d+,\d{2})(?![\d.,]*\d)"
_AMOUNT = rf"(?:{_EURO_NUMBER}|{_DIGIT_NUMBER})"
_EURO_NUMBER_RE = re.compile(_EURO_NUMBER)
NUMBER = rf"(?:an?\s+(?:hundred|thousand|million)|a\s+couple\s+of|(?:{_DIGIT_NUMBER})\s+million|\d+(?:\.\d+)?k(?![a-z])|{_DIGIT_NUMBER}|{_WORD_NUMBER}|an?)"
# Every number above starts with a digit or one of these letters. Stated before
# a number in a pattern, it changes no match, but the engine tests one character
# at each word instead of trying thirty number words (it halves a pattern's cost).
_NUMBER_START = r"(?=[\daefnostz])"
_DIGIT_NUMBER_RE = re.compile(_DIGIT_NUMBER)
_WORD_SEPARATOR_RE = re.compile(r"[\s-]+")


def parse_amount(text: str) -> float | None:
    """A number as money and rates are written: "3.990,00" and "518,50" (continental) as well as "3,990.00"."""
    text = text.strip()
    if _EURO_NUMBER_RE.fullmatch(text):
        return float(text.replace(".", "").replace(",", "."))
    return parse_number(text)


def parse_number(text: str) -> float | None:
    """Turn "1,500", "12.5", "twenty-four", "a" or "an" into a number."""
    text = text.strip().lower()
    if text in ("a", "an"):
        return 1.0
    if text.startswith("a couple"):
        return 2.0
    if text.startswith(("a ", "an ")):
        text = text.split(" ", 1)[1].strip()  # "a hundred"
    if _DIGIT_NUMBER_RE.fullmatch(text):
        return float(text.replace(",", ""))
    if text.endswith("k") and _DIGIT_NUMBER_RE.fullmatch(text[:-1]):
        return float(text[:-1]) * 1000  # "10k"
    total, current = 0, 0
    for word in _WORD_SEPARATOR_RE.split(text):
        if word == "and":
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif _DIGIT_NUMBER_RE.fullmatch(word):
            current += float(word.replace(",", ""))  # "2 million"
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "million":
            total += max(current, 1) * 1_000_000
            current = 0
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
    rf"\b{_NUMBER_START}(?P<n>{_EURO_NUMBER}|{NUMBER})\s*(?:(?:api\s+)?(?:requests?|calls?|reqs?)\s*)?(?:per|/|a|an|each|every|by(?:\s+the)?)\s*"
    r"(?P<unit>second|sec|s|minute|min|m|hour|hr|h|day)\b",
    re.I,
)
_RPM_RE = re.compile(rf"\b{_NUMBER_START}(?P<n>{_EURO_NUMBER}|{NUMBER})\s*(?P<unit>rps|rpm|rph)\b", re.I)
_MONEY_RE = re.compile(
    rf"(?:\$\s?(?P<a>{_AMOUNT})|\b(?P<b>{_AMOUNT})\s?(?:usd|dollars?)\b|\busd\s?(?P<c>{_AMOUNT})"
    rf"|\b{_NUMBER_START}(?P<d>{_WORD_NUMBER}|an?\s+(?:hundred|thousand))\s+(?:us\s+)?dollars?\b)",
    re.I,
)
_PERCENT_RE = re.compile(rf"\b{_NUMBER_START}(?P<n>{_DIGIT_NUMBER}|{_WORD_NUMBER})\s?(?:%|percent\b|per\s+cent\b)", re.I)
_SIZE_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<n>{_DIGIT_NUMBER}|{_WORD_NUMBER})\s?(?P<unit>kb|mb|gb|tb|kilobytes?|megabytes?|gigabytes?|terabytes?)\b",
    re.I,
)
# "14 days", "14-day", "24h", "14 calendar days", "5 more minutes"
_DURATION_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<n>{NUMBER})(?:[\s-]+(?:(?:calendar|full|whole|consecutive|more|additional|extra|further)[\s-]+)?|(?<=\d))"
    rf"(?P<unit>{_DURATION_UNIT})\b",
    re.I,
)
# "5 retries", "retried 5 more times", "20 seats", "100 buckets", "100 per project", "a million objects"
_COUNT_RE = re.compile(
    rf"\b{_NUMBER_START}(?P<n>{NUMBER})\s+(?:(?:more|additional|extra|further|retry|delivery|included|free)\s+)?"
    r"(?:(?P<unit>times|retries|retry|attempts?|tries|seats?|buckets?|users?|objects?)\b|per\s+project\b)",
    re.I,
)
# "a year and a half", "half a year", "an hour and a half"
_HALF_RE = re.compile(
    rf"\b(?:{_NUMBER_START}(?P<n>{NUMBER})\s+(?P<unit>{_DURATION_UNIT})\s+and\s+(?:a\s+)?half|half\s+an?\s+(?P<unit2>{_DURATION_UNIT}))\b",
    re.I,
)
_WITHIN_THE_HOUR_RE = re.compile(r"\bwithin\s+the\s+hour\b", re.I)

# --- dates: "2026-03-14", "14 March 2026", "14th of March", "March 14th", "Mar 14, 2026", "on Saturday, 14 March".
# Value (year, month, day), year 0 when not stated: a reply rarely states the year, so a date without one
# matches any year (`Quantity.same_as`). Numeric dates other than ISO are read only where day and month
# can be told apart: with dots and a year ("13.01.2027", "10.03.2026") the day comes first, as everywhere
# that writes dates so; with slashes ("3/14/2026", "14/03/2026") only where one of the two cannot be a
# month; "03.14" and "3/4/2026" are left out. A month alone ("in May") and a year alone ("2026") are not
# dates. "May" counts only capitalised: "you may 2 ..." is not a date.
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH = (
    r"(?:(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?"
    r"|nov(?:ember)?|dec(?:ember)?)\b\.?|(?-i:May)\b)"
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16,
    "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
_ORDINAL_DAY = (
    r"(?:(?:twenty|thirty)[\s-]+(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|"
    + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + ")"
)
# A day of the month in figures ("14", "14th") or in words: "the twenty-third of April", "April twenty-third"
# (a word before the month only with "of": "the second March invoice" is no date)
_DIGIT_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_DAY = rf"(?:{_DIGIT_DAY}|{_ORDINAL_DAY})"
_YEAR = r"(?:19|20)\d\d"
_ISO_DATE_RE = re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>0?[1-9]|1[0-2])-(?P<d>[12]\d|3[01]|0?[1-9])\b(?![-/.]\d)")
_DATE_RE = re.compile(
    rf"\b(?:(?:(?P<d1>{_DIGIT_DAY})(?:\s+of)?|(?P<w1>{_ORDINAL_DAY})\s+of)\s+(?P<m1>{_MONTH})(?:,?\s+(?P<y1>{_YEAR})\b)?"
    rf"|(?P<m2>{_MONTH})\s+(?:the\s+)?(?P<d2>{_DAY})(?![\d:.]\d)\b(?![\s-]*(?:%|{_DURATION_UNIT}\b|(?:business|working|calendar|requests?|calls?|per|times|seats?|users?)\b))(?:,?\s+(?P<y2>{_YEAR})\b)?)",
    re.I,
)
_DATE_CUE = tuple(_MONTHS)
_AVAILABILITY_RE = re.compile(r"\s+(?:a|per|by|each|every)\s+(?:day|week)\b", re.I)
_NUMERIC_DATE_RE = re.compile(r"(?<![\d./-])(?P<a>\d{1,2})(?P<sep>[./])(?P<b>\d{1,2})(?P=sep)(?P<y>(?:19|20)\d\d)\b(?![./-]\d)")


def _numeric_date(m: re.Match) -> tuple[int, int, int] | None:
    """A dotted date, day first; a slashed one only where one part cannot be a month."""
    a, b = int(m.group("a")), int(m.group("b"))
    if m.group("sep") == ".":
        day, month = a, b
    elif (a > 12) == (b > 12):
        return None  # "3/4/2026": March or April; "14/15/2026": no date
    else:
        day, month = (a, b) if a > 12 else (b, a)
    return _date(m.group("y"), str(month), str(day)) if 1 <= month <= 12 else None
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _day_number(day: str) -> int:
    """14, "14th", "fourteenth", "twenty-third"."""
    words = _WORD_SEPARATOR_RE.split(day.strip().lower())
    if words[-1] in _ORDINALS:
        return _ORDINALS[words[-1]] + sum(_TENS.get(w, 0) for w in words[:-1])
    return int(day.rstrip("stndrhSTNDRH"))


def _date(year: str | None, month: str, day: str) -> tuple[int, int, int] | None:
    """(year or 0, month, day), or None for a day the month does not have ("31 February")."""
    m = int(month) if month.isdigit() else _MONTHS[_unit(month)[:3]]
    d = _day_number(day)
    return (int(year) if year else 0, m, d) if 1 <= d <= _DAYS_IN_MONTH[m] else None
_WEEKS_ALIASES = {"fortnight": 20160}
_FORTNIGHT_RE = re.compile(r"\b(?:a|one)\s+fortnight\b", re.I)

# Cues: words every match of the pattern above it contains, looked for in the text
# lower-cased (and folded as the patterns fold it). A text without any of them
# cannot match, and a substring test is far cheaper than trying a number at every
# word, or than a case-insensitive regex of alternatives; most replies state no
# rate, size or money. A text with a cue is scanned as before: same result.
_BUSINESS_DAYS_CUE = ("business", "working")
_RATE_CUE = ("per", "/", " a ", " an ", "each", "every", " by ")
_RPM_CUE = ("rps", "rpm", "rph")
_MONEY_CUE = ("$", "usd", "dollar")
_PERCENT_CUE = ("%", "percent", "per cent")
_SIZE_CUE = ("kb", "mb", "gb", "tb", "byte")
_HALF_CUE = ("half",)
_COUNT_CUE = ("time", "retr", "attempt", "tries", "seat", "bucket", "user", "object", "project")
_DURATION_CUE = re.compile(rf"(?:[\s-]|\d){_DURATION_UNIT}\b", re.I)


@dataclass(frozen=True, slots=True)  # slots: graders keep every reply's quantities until the episode ends
class Quantity:
    """A stated amount: `kind` is duration, business_days, money, rate,
    percent, size or date; `value` is canonical (minutes, (low, high) days, cents,
    requests per minute, percent, megabytes, (year or 0, month, day))."""

    kind: str
    value: float | tuple[float, float]
    text: str
    start: int = -1  # where the statement starts in the text it was read from
    weak: bool = False  # counted with "a"/"an" ("takes a minute"): a claim only where its sentence says what it is about
    listed: bool = False  # one member of a list or range of values ("30, 60 or 600 requests per minute")
    approx: bool = False  # given as an approximation ("about three months"): a gloss, true when within 5 %

    def same_as(self, other: "Quantity") -> bool:
        if self.kind != other.kind:
            return False
        if self.kind == "date":  # a date without a year is the same day in any year
            (y1, m1, d1), (y2, m2, d2) = self.value, other.value
            return m1 == m2 and d1 == d2 and (y1 == y2 or not y1 or not y2)
        if isinstance(self.value, tuple) or isinstance(other.value, tuple):
            return self.value == other.value
        tolerance = 0.05 if self.approx or other.approx else 1e-6
        return abs(self.value - other.value) <= tolerance * max(1.0, abs(self.value))


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
    """Every quantity stated in `text`, each span counted once, in order of position.

    More specific patterns run first (business days before durations, rates
    before durations) and claim their spans, so "600 requests per minute" is a
    rate and not also a one-minute duration. A bare number listed before a
    stated amount ("30, 60 or 600 requests per minute", "30 to 60 days") is a
    value of the same unit, and every member of such a list is `listed`.
    """
    found: list[Quantity] = []
    # One flag per character, set where a quantity was claimed: checking a match is
    # linear in its length, not in the quantities found so far (a 4,000-character
    # reply listing 1,000 amounts would otherwise take a quadratic 0.1-0.3 s).
    taken = bytearray(len(text))
    folded = text.translate(_ASCII_FOLD).lower()

    def free(m: re.Match) -> bool:
        return not any(taken[m.start():m.end()])

    def add(m: re.Match, kind: str, value, number: str | None = None) -> None:
        if value is None:
            return
        taken[m.start():m.end()] = b"\x01" * (m.end() - m.start())
        available = _AVAILABILITY_RE.match(text, m.end()) if kind == "duration" else None
        if available:  # "24 hours a day", "7 days a week": when someone is there, not how long anything takes
            taken[m.start():available.end()] = b"\x01" * (available.end() - m.start())
            return
        weak = number is not None and (number.strip().lower() in ("a", "an") or (kind == "count" and number.strip().lower() == "one"))
        if weak and _FREQUENCY_RE.search(text, max(0, m.start() - 12), m.start()):
            return  # "twice a year", "once a month": how often, not how long
        if weak and _MEASURED_RE.search(text, max(0, m.start() - 16), m.start()):
            weak = False  # "within an hour", "up to a week": a stated amount after all
        approx = bool(_APPROX_RE.search(text, max(0, m.start() - 16), m.start()))
        found.append(Quantity(kind, value, m.group(0), m.start(), weak, approx=approx))

    # Dates first: "14 March" is a day, not a count or a duration, and "2026-05-03" holds no other amount.
    for m in _ISO_DATE_RE.finditer(text) if "-" in text else ():
        add(m, "date", _date(m.group("y"), m.group("m"), m.group("d")))
    for m in _NUMERIC_DATE_RE.finditer(text) if ("." in text or "/" in text) else ():
        add(m, "date", _numeric_date(m))
    for m in _matches(_DATE_RE, _DATE_CUE, text, folded):
        if free(m):
            year, month, day = (m.group("y1"), m.group("m1"), m.group("d1") or m.group("w1")) if m.group("m1") else (m.group("y2"), m.group("m2"), m.group("d2"))
            add(m, "date", _date(year, month, day))
    for m in _matches(_BUSINESS_DAYS_RE, _BUSINESS_DAYS_CUE, text, folded):
        lo = parse_number(m.group("lo"))
        hi = parse_number(m.group("hi")) if m.group("hi") else lo
        add(m, "business_days", None if lo is None or hi is None else (lo, hi))
    for m in _matches(_RATE_RE, _RATE_CUE, text, folded):
        if not free(m):
            continue
        n = parse_amount(m.group("n"))
        unit = _unit(m.group("unit"))
        unit = {"sec": "second", "s": "second", "min": "minute", "m": "minute", "hr": "hour", "h": "hour"}.get(unit, unit)
        add(m, "rate", None if n is None else n * _RATE_PER_MINUTE[unit], m.group("n"))
    for m in _matches(_RPM_RE, _RPM_CUE, text, folded):
        if free(m):
            n = parse_amount(m.group("n"))
            per = {"rps": 60, "rpm": 1, "rph": 1 / 60}[_unit(m.group("unit"))]
            add(m, "rate", None if n is None else n * per)
    for m in _matches(_MONEY_RE, _MONEY_CUE, text, folded):
        if free(m):
            raw = m.group("a") or m.group("b") or m.group("c")
            amount = parse_amount(raw) if raw else parse_number(m.group("d"))
            add(m, "money", None if amount is None else round(amount * 100))
    for m in _matches(_PERCENT_RE, _PERCENT_CUE, text, folded):
        if free(m):
            add(m, "percent", parse_number(m.group("n")))
    for m in _matches(_SIZE_RE, _SIZE_CUE, text, folded):
        if free(m):
            n = parse_number(m.group("n"))
            unit = _unit(m.group("unit")).rstrip("s")
            unit = _SIZE_ALIASES.get(unit, unit)
            add(m, "size", None if n is None else n * _SIZE_MB[unit], m.group("n"))
    for m in _matches(_COUNT_RE, _COUNT_CUE, text, folded):
        if free(m):
            add(m, "count", parse_number(m.group("n")), m.group("n"))
    for m in _matches(_HALF_RE, _HALF_CUE, text, folded):
        if free(m):
            if m.group("unit2"):
                add(m, "duration", 0.5 * _DURATION_MINUTES[_duration_unit(m.group("unit2"))])
            else:
                n = parse_number(m.group("n"))
                add(m, "duration", None if n is None else (n + 0.5) * _DURATION_MINUTES[_duration_unit(m.group("unit"))])
    for m in _WITHIN_THE_HOUR_RE.finditer(text):
        if free(m):
            add(m, "duration", 60.0)
    for m in _FORTNIGHT_RE.finditer(text):
        if free(m):
            add(m, "duration", float(_WEEKS_ALIASES["fortnight"]))
    for m in _DURATION_RE.finditer(text) if _DURATION_CUE.search(text) else ():
        if free(m):
            n = parse_number(m.group("n"))
            unit = _duration_unit(m.group("unit"))
            add(m, "duration", None if n is None else n * _DURATION_MINUTES[unit], m.group("n"))
    found.sort(key=lambda q: q.start)
    return _with_listed_values(text, found, taken)


_FREQUENCY_RE = re.compile(r"\b(?:once|twice|thrice|times|per)\s*$", re.I)
_MEASURED_RE = re.compile(r"\b(?:within|up\s+to|over|under|after|about|around|at\s+least|at\s+most|every|only|just)\s*$", re.I)
# "about three months", "roughly a month", "(~30 days)": a gloss, right when close to the truth
_APPROX_RE = re.compile(r"(?:\b(?:about|around|roughly|approximately|approx\.?|nearly|almost|some)|~)\s*$", re.I)
# A list of bare numbers right before a stated amount: "30, 60, 300 or", "30 to", "between 5 and".
_LIST_BEFORE_RE = re.compile(
    rf"(?:\b{_NUMBER_START}(?:{_DIGIT_NUMBER}|{_WORD_NUMBER})\s*(?:,\s*(?:or|and)?|or|and|to|-|–|—)\s*)+$", re.I
)
_LISTED_NUMBER_RE = re.compile(rf"\b{_NUMBER_START}(?:{_DIGIT_NUMBER}|{_WORD_NUMBER})\b", re.I)
_LEADING_NUMBER_RE = re.compile(rf"\s*(?P<n>{NUMBER})\b", re.I)


def _with_listed_values(text: str, found: list[Quantity], taken: bytearray) -> list[Quantity]:
    """Add the bare numbers listed before a scalar amount as amounts of its unit; mark list members."""
    if not found:
        return found
    out: list[Quantity] = []
    for q in found:
        if q.kind == "business_days" or q.start < 0:
            out.append(q)
            continue
        head = _LEADING_NUMBER_RE.match(q.text)
        if q.kind == "date" and (not head or not _DIGIT_NUMBER_RE.fullmatch(head.group("n"))):
            out.append(q)  # a list of days goes before the month only: "23 or 24 March"
            continue
        number = parse_number(head.group("n")) if head else None
        window = text[max(0, q.start - 120):q.start]
        prefix = _LIST_BEFORE_RE.search(window)
        if not number or prefix is None:
            out.append(q)
            continue
        scale = None if q.kind == "date" else q.value / number
        base = q.start - len(window) + prefix.start()
        members = []
        for m in _LISTED_NUMBER_RE.finditer(prefix.group(0)):
            at = base + m.start()
            if any(taken[at:at + len(m.group(0))]):
                continue
            value = parse_number(m.group(0))
            if q.kind == "date":
                day = int(value) if value is not None and value.is_integer() else 0
                year, month, _ = q.value
                if 1 <= day <= _DAYS_IN_MONTH[month]:
                    members.append(Quantity(q.kind, (year, month, day), m.group(0) + q.text[head.end():], at, False, True))
            elif value is not None:
                members.append(Quantity(q.kind, value * scale, m.group(0) + q.text[head.end():], at, False, True))
        if members:
            out += members
            q = Quantity(q.kind, q.value, q.text, q.start, q.weak, True, q.approx)
        out.append(q)
    return out


def _matches(pattern: re.Pattern, cue: tuple[str, ...], text: str, folded: str):
    """`pattern.finditer(text)`, or nothing at once when `folded` (the text lower-cased and
    folded) holds none of the pattern's cue words."""
    return pattern.finditer(text) if any(c in folded for c in cue) else ()


# --- facts -------------------------------------------------------------------

@dataclass(frozen=True)
class Fact:
    """One checkable policy value from a KB article (or of one case).

    `plan` limits the fact to customers on that plan. `quantity` is set when
    the value parses as an amount; otherwise the fact is a term, recognised by
    `phrases`: each the content stems of the value or a synonym, all of which a
    sentence must hold, and whether the phrase states the fact when negated
    (prohibitions and denials: "do not create a new database with the same
    name" is stated by "please don't create a new database with the same
    name"; "payment methods are not transferred" by "we won't move your
    payment methods over"). A synonym written "+..." states the fact as
    written. `negative` marks a value written as a prohibition. `about` holds the cue words (as stem sequences) that name what the
    fact is about ("expire", "valid for"), so a value can be bound to it;
    `label` names the fact in notes ("key lifetime"); a cue written "-annual"
    goes to `unlike` and rules the fact out where it stands. A `rule` is a
    policy statement replies are checked against but need not make.
    """

    key: str
    value: str
    plan: str | None
    quantity: Quantity | None
    phrases: tuple[tuple[bool, tuple[str, ...]], ...]
    label: str = ""
    about: tuple[tuple[str, ...], ...] = ()
    negative: bool = False
    rule: bool = False
    unlike: tuple[tuple[str, ...], ...] = ()  # cue words that rule the fact out: "annual" for the monthly refund window
    # Other amounts that state the value on the day the case is read: a key expiring on 3 May, read on
    # 14 March, "expires in 50 days" (a quantity fact's synonyms that are amounts).
    also: tuple[Quantity, ...] = ()

    def holds(self, q: Quantity) -> bool:
        """Whether the stated amount `q` is this fact's value (or one of the amounts that also state it)."""
        return (self.quantity is not None and q.same_as(self.quantity)) or any(q.same_as(a) for a in self.also)

    def kinds(self) -> frozenset[str]:
        """The kinds of amount that can state the fact: its own, and those of `also`."""
        own = frozenset((self.quantity.kind,)) if self.quantity is not None else frozenset()
        return own | frozenset(a.kind for a in self.also)

    def applies_to(self, plan: str) -> bool:
        return self.plan is None or self.plan == plan

    @property
    def name(self) -> str:
        return self.label or self.key.replace("_", " ")


# Words that make a phrase a prohibition or a denial ("do not recreate", "no need to send it back",
# "payment methods are not transferred"); they are left out of the words the phrase is matched by.
# The words a phrase negates with: the same as a reply is read with (grading/claims.py `_NEGATORS`), so
# "we are unable to act on this request" written as a phrasing and found in a reply read the same way.
_NEGATION_WORDS = frozenset({
    "not", "never", "no", "nothing", "none", "nobody", "noone", "neither", "nor", "without", "unable", "impossible", "avoid",
    "non", "cannot",
})
_NO_NEED = ("need", "needs", "necessary")
# "no problem", "no worries", "no matter how often": a "no" before these negates nothing (a reply and a
# phrasing alike; grading/claims.py reads replies with the same set)
NO_IDIOMS = frozenset({"problem", "problems", "worries", "worry", "issue", "issues", "trouble", "doubt", "hassle", "matter"})


def _phrase(text: str) -> tuple[bool, tuple[str, ...]]:
    """(whether the phrase negates, its content stems without the negation)."""
    words = tokens(text)
    # "whether used or not" states both, it denies nothing
    negates = any(
        w in _NEGATION_WORDS and not (w == "not" and words[i - 1:i] == ["or"]) and not (w == "no" and words[i + 1:i + 2] and words[i + 1] in NO_IDIOMS)
        for i, w in enumerate(words)
    )
    kept = [w for w in words if w not in _NEGATION_WORDS and not (negates and w in _NO_NEED) and w not in STOPWORDS]
    return negates, tuple(stem(w) for w in kept)


def make_fact(
    key: str,
    value: str,
    plan: str | None = None,
    synonyms: list[str] | None = None,
    label: str | None = None,
    about: list[str] | None = None,
    rule: bool = False,
) -> Fact:
    """Build a fact from a KB front-matter entry; a value that reads as one
    whole quantity becomes a quantity fact, anything else a term. A term
    written as a prohibition ("do not ...", "no need to ...") is `negative`;
    a synonym is read the same way, and one written the other way round
    ("keep the damaged key" for "no need to send the damaged key back") is
    prefixed with "+" in the data."""
    quantity = _whole_quantity(value)
    negative = quantity is None and _phrase(value)[0]
    phrases: list[tuple[bool, tuple[str, ...]]] = []
    also = tuple(q for q in (_whole_quantity(s) for s in synonyms or ()) if q is not None) if quantity is not None else ()
    if quantity is None:
        for phrase in [value, *(synonyms or [])]:
            written_positive = phrase.startswith("+")
            prohibition, stems_ = _phrase(phrase.lstrip("+"))
            prohibition = prohibition and not written_positive
            if stems_ and (prohibition, stems_) not in phrases:
                phrases.append((prohibition, stems_))
    cues = tuple(dict.fromkeys(c for c in (stems(a) for a in about or () if not a.startswith("-")) if c))
    unlike = tuple(dict.fromkeys(c for c in (tuple(tokens(a[1:])) for a in about or () if a.startswith("-")) if c))
    return Fact(
        key=key, value=value, plan=plan, quantity=quantity, phrases=tuple(phrases), label=label or "", about=cues,
        negative=negative, rule=rule, unlike=unlike, also=also,
    )


@lru_cache(maxsize=None)
def _whole_quantity(value: str) -> Quantity | None:
    stated = extract_quantities(value)
    if len(stated) == 1 and len(stated[0].text.strip()) >= len(value.strip()) - 1:
        q = stated[0]
        return Quantity(q.kind, q.value, q.text)
    return None
