"""Reading a reply as claims: values and decisions bound to the facts they are about.

A reply is cut into sentences and each sentence into segments (at commas,
semicolons, "and", "but", "so", brackets). Then:

- A stated amount is bound to the fact whose cue words ("expire", "keeps
  working") stand in its segment (or, failing that, its sentence); a value with
  no cue binds to the only fact of its kind, or to the fact whose value it is.
  A value of a kind nothing in scope uses is not a policy claim.
- A term fact (a procedure, a requirement, a prohibition) is stated where a
  sentence holds all the content words of one of its phrasings, in any order
  and inflection ("we've locked your account" states "lock the account").
- A rule written in the passive ("past invoices are not recalculated") is
  also stated in the active, by whoever does it ("we recalculate your past
  invoices").
- Polarity: a negation in the segment ("not", "can't", "no need to", "no
  longer", "non-") turns the claim round. "You don't need a photo ID" denies
  the requirement; "please don't create a new database with the same name"
  states the prohibition. A negation, or a doubt ("maybe"), does not reach
  past its clause: a segment that opens with a connective or a subject, or
  holds a finite verb, is a clause of its own ("... without a migration is
  data loss, so we have escalated it").
- Not asserted: a sentence that asks, and a segment that reports what someone
  else said or what used to be true ("the forum said 30 days").
- A plan named in the segment ("Business raises it to 3,000") makes the value
  a claim about that plan, judged for that plan.
- Several values for one fact in one sentence ("either 300 or 600 requests per
  minute", "30 to 60 days") are a hedge.
- Amounts of money that add up to one stated after them ("$1,234.00 and
  $1,558.75, so $2,792.75 refunded") are its parts, not claims that the total
  is each of them; one amount given alone as the total is still a claim.
- "takes a minute", "twice a year": amounts counted with "a"/"an" are claims
  only where their segment says what they are about.
- A reply that is not in English states nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import combinations
from typing import Sequence

from ..domain.facts import NO_IDIOMS, Fact, Quantity, extract_quantities
from ..domain.words import STOPWORDS, plain, stem, stems, tokens

PLANS = ("free", "pro", "business", "enterprise")

# Markdown emphasis and code marks, and list bullets, carry no meaning here.
_MARKUP_RE = re.compile(r"(\*\*|__|\*|`|~~)")
_QUOTED_RE = re.compile(r"\"[^\"\n]{0,80}\"|\u201c[^\u201d\n]{0,80}\u201d")
_BULLET_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.M)
# Sentence ends: . ! ? followed by space or the end (not the dot in "2.0" or "stackwell.example"), new lines, ";".
_SENTENCE_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+|;\s*")
# Segment boundaries inside a sentence. "then" joins clauses ("check the log, then redeliver it"), but
# not where it names a time ("from then on", "until then", "by then").
_SEGMENT_RE = re.compile(
    r",(?!\d)(?!\s*(?:which|whose)\b)\s*|:\s+|\s+(?:and|but|so|while|whereas|although|though|however|because|since)\s+"
    r"|(?<!\bfrom)(?<!\buntil)(?<!\btill)(?<!\bsince)(?<!\bby)(?<!\bbefore)\s+then\s+|\s*[()\u2014\u2013]\s*|\s+-\s+",
    re.I,
)
_PLAN_RE = re.compile(
    r"\b(?:(?P<cap>Free|Pro|Business|Enterprise)\b(?![\s-]+(?:days?|hours?|working)\b)"
    r"|(?P<low>free|pro|business|enterprise)[\s-]+(?:plans?|tiers?|customers?|accounts?|users?|subscriptions?|teams?)\b)"
)
_NEGATORS = frozenset({
    "not", "never", "no", "nothing", "none", "nobody", "noone", "neither", "nor", "without", "unable", "impossible", "avoid", "non",
})
# Someone else's words, or the past: not asserted by the reply.
_REPORTED_RE = re.compile(
    r"\b(?:forum|blog|rumou?r|used\s+to|previously|formerly|in\s+the\s+past|outdated|out\s+of\s+date|archived"
    r"|no\s+longer\s+(?:true|valid|current|applies|in\s+force)|(?:old|older|earlier)\s+(?:policy|article|page|docs?|guidance|rules?|limits?|numbers?|figures?)"
    r"|another\s+agent|said|claimed|told\s+you|mentioned"
    r"|(?:you|they|someone|somebody|he|she)\s+(?:may\s+have\s+|might\s+have\s+|have\s+|had\s+|'ve\s+)?(?:read|seen|saw|heard|been\s+told|were\s+told|was\s+told))\b",
    re.I,
)
# The agent's own follow-up plans ("I'll check back in 2 days") are not policy claims.
_OWN_PLAN_RE = re.compile(
    r"\b(?:i|we)\s*(?:will|'ll|shall|am going to|are going to)\s+(?:check|follow|get back|circle back|update you|reply|write|look)",
    re.I,
)
# Function words of English: a reply in which they are rare is not in English.
_ENGLISH = frozenset(
    "the a an and or of to for in on at by with is are be was were it this that you your we our i my me us not no "
    "can will have has do does please if as from so but all any there here what when which how".split()
)
# ... and of the languages customers most often write in instead (German, French, Spanish, Italian,
# Portuguese, Dutch), leaving out words English shares.
_FOREIGN = frozenset(
    "der das und ist nicht ein eine ich sie wir ihr mit für auf dem den des zu le la les et est pas un une je vous "
    "nous avec pour sur du au el los las y es que por para una su sus lo il di che gli sono della het een "
    "niet met voor zijn wordt ik wij não você uma com para os seu sua".split()
)


@dataclass(frozen=True)
class Claim:
    """One thing a reply states: a value or a term, bound to the fact it is about.

    `fact` is None for a value bound to nothing in scope. For a value,
    `positive` is False when the segment negates it; for a term, `positive`
    says whether the reply affirms the fact (a prohibition is affirmed by
    stating the act negated). `plan` is the plan the segment names, if any.
    `hedged` marks a value stated beside other values for the same fact.
    """

    fact: Fact | None
    value: Quantity | None
    text: str
    positive: bool
    plan: str | None = None
    hedged: bool = False
    start: int = 0  # where the claim starts in the cleaned reply
    cued: bool = True  # a value: a cue of its fact stands in its own segment (not only elsewhere in its sentence)
    elsewhere: bool = False  # its sentence is about another record than the one asked ("your other key ...")
    destination: bool = False  # the plan it names is where to go ("upgrade to Enterprise"), not what it describes
    since_event: bool = False  # a time counted from an event of the case or from today: "62 days after the charge", "in the next four days"
    said_again: bool = False  # "within those 7 days": the value points back at an earlier mention


@dataclass
class Segment:
    text: str
    words: list[str]  # stems, in order
    raw: list[str]  # the words as written (after `plain`), in order
    start: int  # offset in the cleaned reply
    end: int
    sentence: int
    negated: bool
    reported: bool
    plan: str | None
    negations: tuple[int, ...] = ()  # word positions of the negations
    joined_by: str = ""  # the separator before the segment: ",", ":", "and", ...
    aspects: frozenset[int] = frozenset()  # negations that only mark time ("any more"): they deny alone, not twice
    until: int | None = None  # position of "until"/"unless"/"before": a negation before it frames a time, it does not reach past it
    conditional: bool = False  # "if the invoice is still unpaid 21 days after ...": a rule's condition, not a denial
    destination: bool = False  # its plan is named as where to go: "upgrade to Enterprise", "move to the Business plan"
    hits: dict = field(default_factory=dict)  # cue hits per fact pool, found once (`_CueIndex.hits`)

    def negates(self, position: int, before: int = 6, after: int = 4) -> bool:
        """Whether the negations near the word at `position` (not cut off by "until") deny it: an
        odd number of them ("never stops ... without half a year of warning" affirms)."""
        if self.conditional:
            return False
        near = [n for n in self.negations if position - before <= n <= position + after
                and not (self.until is not None and n < self.until <= position)]
        core = sum(1 for n in near if n not in self.aspects)
        return core % 2 == 1 if core else bool(near)


def clean(text: str) -> str:
    """The reply with markup removed and list bullets turned into sentences of their own."""
    return _BULLET_RE.sub("\n", _MARKUP_RE.sub("", text))


def unquoted(text: str) -> str:
    """The text without its quotations: a quotation names words, it does not do what they say
    ('use the subject "2FA reset"')."""
    return _QUOTED_RE.sub(" ", text)


def is_english(text: str) -> bool:
    """False when the function words of other languages outnumber those of English."""
    words = tokens(text)
    foreign = sum(w in _FOREIGN for w in words)
    return foreign < 3 or foreign <= sum(w in _ENGLISH for w in words)


def read_claims(text: str, facts: Sequence[Fact], context: Sequence[Fact] = ()) -> list[Claim]:
    """The claims `text` makes about `facts` (every plan's values of the facts the ticket is
    about) and, where a segment clearly names one, about the `context` facts (the rest of the
    current policy)."""
    text = clean(text)
    if not text.strip() or not is_english(text):
        return []
    parts, questions = segments(text)
    claims = _value_claims(text, parts, questions, facts, context) + _term_claims(parts, questions, facts)
    return _mark_hedges(claims, parts)


# --- cutting ------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def segments(text: str) -> tuple[list[Segment], set[int]]:
    """The segments of a cleaned reply, and the indices of the sentences that ask. Read once per
    text: the claims and the forbidden promises of a reply are found in the same segments."""
    found: list[Segment] = []
    questions: set[int] = set()
    sentence_index = 0
    # Most replies report nobody and name no plan: look for either once, not in every segment.
    checks = (bool(_REPORTED_RE.search(plain(text))), bool(_PLAN_WORD_RE.search(text)))
    for sentence, offset in _split(_SENTENCE_RE, text):
        if not sentence.strip():
            continue
        if sentence.rstrip().endswith("?"):
            questions.add(sentence_index)
        # "Business: 3,000 requests per minute", "Enterprise (10,000/min)": the plan before a colon or an
        # opening bracket holds after it
        heading_plan = None
        previous_end = 0
        for part, at in _split(_SEGMENT_RE, sentence):
            if not part.strip():
                continue
            segment = _describe(part, offset + at, sentence_index, heading_plan, checks, tokens(part))
            segment.joined_by = sentence[previous_end:at].strip().lower()
            found.append(segment)
            previous_end = at + len(part)
            after = sentence[at + len(part):].lstrip()[:1]
            heading_plan = segment.plan if after in (":", "(") else None
        sentence_index += 1
    return found, questions


def by_sentence(parts: list[Segment]) -> dict[int, list[Segment]]:
    """The segments of each sentence, in order, by sentence index."""
    grouped: dict[int, list[Segment]] = {}
    for part in parts:
        grouped.setdefault(part.sentence, []).append(part)
    return grouped


def _split(pattern: re.Pattern, text: str) -> list[tuple[str, int]]:
    parts, last = [], 0
    for m in pattern.finditer(text):
        parts.append((text[last:m.start()], last))
        last = m.end()
    parts.append((text[last:], last))
    return parts


def _describe(part: str, start: int, sentence: int, plan: str | None, checks: tuple[bool, bool], raw: list[str]) -> Segment:
    negations = tuple(i for i, w in enumerate(raw) if w in _NEGATION_START and _negates(raw, i))
    may_report, may_name_plan = checks
    plan_match = _PLAN_RE.search(part) if may_name_plan else None
    destination = False
    if plan_match:
        plan = (plan_match.group("cap") or plan_match.group("low")).lower()
        destination = bool(_DESTINATION_RE.search(part, 0, plan_match.start()))
    until = next((i for i, w in enumerate(raw) if w in _FRAMES), None)
    aspects = frozenset(i for i in negations if raw[i] in ("any", "anymore"))
    return Segment(
        text=part, words=[stem(w) for w in raw], raw=raw, start=start, end=start + len(part), sentence=sentence,
        negated=bool(negations), reported=may_report and bool(_REPORTED_RE.search(plain(part))), plan=plan, negations=negations,
        conditional=bool(_CONDITION_RE.match(part)), until=until, aspects=aspects, destination=destination,
    )


_FRAMES = frozenset({"until", "till", "unless", "before"})
_DESTINATION_RE = re.compile(r"\b(?:to|into|onto)\s+(?:the\s+|a\s+|an\s+)?$", re.I)
_PLAN_WORD_RE = re.compile(r"free|pro|business|enterprise", re.I)


def _negates(words: list[str], i: int) -> bool:
    """Whether the word at `i` negates: "not", "never", "no longer", "any more", "non-"; but
    not a bound ("no more than 600", "not later than 30 days")."""
    w = words[i]
    following = words[i + 1:i + 3]
    if w in ("no", "not") and len(following) == 2 and following[0] in _COMPARATIVES and following[1] == "than":
        return False
    if w == "not" and following[:1] == ["exceed"]:
        return False
    if w == "no" and following[:1] and following[0] in NO_IDIOMS:
        return False  # "no problem creating it", "no worries"
    if w == "not" and i and words[i - 1] == "or" and not following:
        return False  # "whether they are used or not": both, not a denial
    if w in _NEGATORS:
        return True
    return (w == "any" and following[:1] == ["more"]) or w == "anymore"


_NEGATION_START = _NEGATORS | {"any", "anymore"}
# "not answering within 10 seconds": the negation denies the action, not the time it is measured by.
_NEGATED_ACTION_RE = re.compile(r"\b(?:not|never|without)\s+\w+ing\s+(?:\w+\s+){0,2}$")
_COMPARATIVES = frozenset({"more", "later", "less", "fewer", "longer", "earlier", "sooner", "over"})
_CONDITION_RE = re.compile(r"^\s*(?:if|unless|when|whenever|once|whether|in case)\b", re.I)


# --- values -------------------------------------------------------------------------


class _CueIndex:
    """The cues of a set of facts by their first word, so a segment's hits are found in one pass
    over its words, not one pass per cue (a reply is read against ~100 facts)."""

    def __init__(self, facts: Sequence[Fact]):
        self.facts = facts
        self.by_first: dict[str, list[tuple[Fact, tuple[str, ...]]]] = {}
        for fact in facts:
            for cue in fact.about:
                self.by_first.setdefault(cue[0], []).append((fact, cue))

    def hits(self, segment: "Segment") -> dict[Fact, list[tuple[int, int]]]:
        """Per fact, (position, length) of each of its cues in the segment: the first place each is found."""
        memo = segment.hits.get(id(self))
        if memo is not None:
            return memo
        found: dict[Fact, list[tuple[int, int]]] = {}
        seen: set[tuple[int, tuple[str, ...]]] = set()
        words = segment.words
        for i, word in enumerate(words):
            for fact, cue in self.by_first.get(word, ()):
                if (id(fact), cue) in seen:
                    continue
                n = len(cue)
                if n == 1 or tuple(words[i:i + n]) == cue:
                    seen.add((id(fact), cue))
                    found.setdefault(fact, []).append((i, n))
        segment.hits[id(self)] = found
        return found


_INDEXES: dict[int, tuple[Sequence[Fact], _CueIndex]] = {}


def _index(facts: Sequence[Fact]) -> _CueIndex:
    """The cue index of a fact pool, built once per pool (pools are the cached scopes of tickets)."""
    entry = _INDEXES.get(id(facts))
    if entry is None or entry[0] is not facts:
        if len(_INDEXES) > 4096:
            _INDEXES.clear()
        entry = _INDEXES[id(facts)] = (facts, _CueIndex(facts))
    return entry[1]


def _value_claims(
    text: str, segments: list[Segment], questions: set[int], facts: Sequence[Fact], context: Sequence[Fact]
) -> list[Claim]:
    own_index, other_index = _index(facts), _index(context)
    own = [f for f in facts if f.quantity is not None]
    kinds = {k for f in own for k in f.kinds()}
    if not own:
        return []
    claims = []
    stated = extract_quantities(text)
    dates = [q for q in stated if q.kind == "date"]
    parts = _summands(text, stated, segments)
    about_another_record = _sentences_matching(_ANOTHER_RECORD_RE, text, segments)
    for q in stated:
        segment = next((s for s in segments if s.start <= q.start < s.end), None)
        if segment is None or segment.sentence in questions or segment.reported or _OWN_PLAN_RE.search(segment.text):
            continue
        if _ELAPSED_RE.match(text, q.start + len(q.text)):
            continue  # "40 days old", "charged 5 days ago": time gone by, not a policy value
        if q.kind != "money" and _WHOLE_RE.search(text, max(0, q.start - 24), q.start):
            continue  # "11 of 12 months", "on four of the seven days": the whole a count is out of
        if (q.kind not in ("duration", "business_days", "date") and _MARGIN_BEFORE_RE.search(text, max(0, q.start - 20), q.start)
                and _MARGIN_AFTER_RE.match(text, q.start + len(q.text))):
            continue
        position = _word_index(segment, q)
        if q.kind == "date":
            fact = _bind_date(q, position, segment, segments, own, own_index, dates)
        else:
            fact = _bind(q, position, segment, segments, own, own_index, other_index)
        if q.kind not in kinds and (fact is None or (fact in facts and fact not in own_index.hits(segment))):
            continue  # an amount of a kind nothing asked about uses, not named as one: not a policy claim
        if fact is None and (q.weak or q.kind == "money"):
            continue  # "takes a minute", "$98.00 in total": not about a policy fact
        negated = segment.negates(position) and not _NEGATED_ACTION_RE.search(plain(segment.text[: q.start - segment.start]))
        # Tied to its fact by its own words: a cue in its segment (or the heading it completes), or named as
        # the total of what the sentence adds up ("$442.00 in total")
        cued = fact is not None and (bool(_TOTAL_RE.search(segment.text)) or any(
            any(f is fact for f in index.hits(part)) and not _excluded(fact, part.raw)  # by identity: a Fact's hash is not cached
            for part in _own_words(segment, segments) for index in (own_index, other_index)
        ))
        elsewhere = segment.sentence in about_another_record
        after = q.start + len(q.text)
        elapsed = bool(_SINCE_EVENT_RE.match(text, after)) and not _WINDOW_WORDS_RE.search(text, max(0, q.start - 16), q.start)
        since_event = elapsed or bool(_TIME_LEFT_RE.match(text, after) or _FROM_NOW_RE.search(text, max(0, q.start - 24), q.start))
        said_again = bool(_ANAPHORA_RE.search(text, max(0, q.start - 12), q.start))
        claims.append(Claim(fact=fact, value=q, text=q.text, positive=not negated, plan=segment.plan, start=q.start, cued=cued,
                            elsewhere=elsewhere, since_event=since_event, said_again=said_again))
    if parts:
        # A part of a total stated as that same fact's value says what the part is, not what the total is:
        # "$1,234.00 and $1,558.75, so $2,792.75 refunded". An amount given alone as the total is still a claim.
        about = {id(c.value): c.fact for c in claims}
        claims = [
            c for c in claims
            if not (id(c.value) in parts and c.fact is about.get(id(parts[id(c.value)])) and not c.fact.holds(c.value))
        ]
    return claims


def _own_words(segment: Segment, segments: list[Segment]) -> list[Segment]:
    """The segment a value stands in and, after a colon, the heading it completes ("net cost: $3,072.50")."""
    if segment.joined_by == ":":
        before = [s for s in segments if s.sentence == segment.sentence and s.end <= segment.start]
        if before:
            return [segment, before[-1]]
    return [segment]


def _sentences_matching(pattern: re.Pattern, text: str, segments: list[Segment]) -> set[int]:
    """The sentences one of whose segments `pattern` finds (none looked at where the reply has no match)."""
    if not pattern.search(text):
        return set()
    return {i for i, parts in by_sentence(segments).items() if any(pattern.search(s.text) for s in parts)}


_COUNT = r"(?:\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"  # not "one": "the other one of $1,324"
_WHOLE_RE = re.compile(rf"\b{_COUNT}\s+(?:of|out\s+of)\s+(?:the\s+|those\s+|these\s+)?(?:last\s+|past\s+)?$", re.I)
# Another record of the customer's than the one the ticket is about: "your other key (ending 9c0c)",
# "the older order", "another invoice".
_ANOTHER_RECORD_RE = re.compile(
    r"\b(?:(?:your|the)\s+other|another|the\s+(?:older|earlier|previous|second))\s+"
    r"(?:api\s+)?(?:keys?|orders?|invoices?|charges?|cards?|payments?|subscriptions?|accounts?)\b", re.I,
)
_SINCE_EVENT_RE = re.compile(
    r"\s+(?:after|since|from)\s+(?:the|your|its|it\s+was|you\s+were)\s+(?:\w+\s+)?"
    r"(?:charge|charged|payment|paid|purchase|invoice|invoiced|renewal|renewed|delivery|delivered|creation|created|order|billed)\b",
    re.I,
)
# "within 14 days after the charge", "up to 60 days from the charge": a window, not the time gone by
_WINDOW_WORDS_RE = re.compile(r"\b(?:within|up\s+to|for|until|till|no\s+later\s+than|no\s+more\s+than|at\s+most|by|before)\s+$", re.I)
_FROM_NOW_RE = re.compile(r"\b(?:in|within|over|during)\s+the\s+next\s+$", re.I)
_TIME_LEFT_RE = re.compile(
    r"(?:\s+(?:or\s+more|or\s+so|still|later|left|remaining|to\s+go)\b)*?\s*(?:later|left|remaining|to\s+go|from\s+(?:today|now))\b", re.I
)
# "Within those 7 days": a value said again, pointing back at where it was first said
_ANAPHORA_RE = re.compile(r"\b(?:those|these|the\s+same|that|your)\s+$", re.I)
_MINUS_RE = re.compile(r"\b(?:less|minus|deduct(?:ed|ing)?|subtract(?:ed|ing)?|take\s+off|taken\s+off|after\s+(?:the\s+)?(?:two\s+|both\s+)?refunds?)\b|\s[-\u2212]\s", re.I)
_BREAKDOWN_RE = re.compile(r"\s*\(")  # a total, then its parts in brackets
# "came within 430 requests per minute of the cap": a margin to the fact, not a value of it (a window,
# "within 14 days of the charge", is a duration and stays one)
_MARGIN_BEFORE_RE = re.compile(r"\bwithin\s+(?:about\s+|roughly\s+|just\s+)?$", re.I)
_MARGIN_AFTER_RE = re.compile(r"\s+of\s+(?:the|your|its|their)\b", re.I)
_ELAPSED_RE = re.compile(r"\s+(?:old|ago)\b", re.I)
_MAX_SUMMANDS = 8
_TOTAL_RE = re.compile(r"\b(?:total|altogether|combined|together|sum|overall|in\s+all)\b", re.I)


def _summands(text: str, stated: list[Quantity], segments: list[Segment]) -> dict[int, Quantity]:
    """The amounts of money that are parts of another one, each (by id) with its total: two or more
    that add up to an amount stated after them in their sentence or the next ("two refunds, $1,234.00
    and $1,558.75, so $2,792.75 in total"), or an amount and what is taken off it to give another in
    their sentence ("$11,236.50: $12,990.00 less $519.50 and $1,234.00")."""
    money = [q for q in stated if q.kind == "money"]
    if len(money) < 3:
        return {}
    where = {}
    for q in money:
        segment = next((s for s in segments if s.start <= q.start < s.end), None)
        if segment is not None:
            where[id(q)] = segment
    parts: dict[int, Quantity] = {}
    subtracting = _sentences_matching(_MINUS_RE, text, segments)
    for total in money:
        if id(total) not in where:
            continue
        at = where[id(total)].sentence
        # The parts come before their total, unless the total is named as one ("$2,792.75 in total: ...",
        # "Total refunded: $857.50 ...") or they follow it in brackets ("$857.50 ($518.50 + $339.00)");
        # "$399.00 less a $4.00 fee, so $395.00" subtracts: $395.00 is a result, not a part.
        named = any(_TOTAL_RE.search(part.text) for part in _own_words(where[id(total)], segments)) or bool(
            _BREAKDOWN_RE.match(text, total.start + len(total.text)))
        pool = [
            q for q in money if q is not total and id(q) in where and where[id(q)].sentence in (at, at - 1)
            and q.value < total.value and (named or q.start < total.start)
        ][:_MAX_SUMMANDS]
        for q in _adding_up(pool, total.value):
            parts.setdefault(id(q), total)
        # A result and the amounts it is worked out from, in either order: "$11,236.50 net: the $12,990.00
        # charge less the two refunds of $519.50 and $1,234.00" (the charge less the refunds is the result).
        if at not in subtracting:
            continue  # "$399.00 plus $43.00, $442.00 in total" adds: $442.00 is not worked out from $399.00
        around = [q for q in money if q is not total and id(q) in where and where[id(q)].sentence == at][:_MAX_SUMMANDS]
        for start in (q for q in around if q.value > total.value):
            taken = _adding_up([q for q in around if q is not start and q.value < start.value], start.value - total.value, least=1)
            if taken:
                for q in (start, *taken):
                    parts.setdefault(id(q), total)
                break
    return parts


def _adding_up(pool: list[Quantity], value: float, least: int = 2) -> tuple[Quantity, ...]:
    """At least `least` members of `pool` (in cents) that add up to `value`, if any: the first such set."""
    for size in range(least, len(pool) + 1):
        for chosen in combinations(pool, size):
            if sum(q.value for q in chosen) == value:
                return chosen
    return ()

# A fact of another article is what a value is about only where its cues (weighed by the words
# they hold) outweigh those of the ticket's own facts, and weigh at least two.
_OWN_BONUS = 0.5
_CONTEXT_MIN_WEIGHT = 2
# A value may be bound to a fact of another kind (and so be wrong) only between these kinds:
# "request a refund within 5-10 business days" states the window in the processing time's unit.
_SWAPPABLE = frozenset({"duration", "business_days"})
_SWAP_MIN_WEIGHT = 2


def _candidates(
    q: Quantity, position: int, segment: Segment, own: _CueIndex, others: _CueIndex, same_kind_only: bool, width: int = 0
):
    """The facts cued in `segment` a value may be about, ranked. `width` is the value's length in words when
    it stands in `segment` at `position`: a cue inside it is its unit ("1,340 requests per minute"), not
    what it is about."""
    found = []
    for bonus, index in ((_OWN_BONUS, own), (0.0, others)):
        for fact, hits in index.hits(segment).items():
            if fact.quantity is None:
                continue
            if width:
                hits = [h for h in hits if not position <= h[0] < position + width]
                if not hits:
                    continue
            kind = fact.quantity.kind
            also = kind != q.kind and bool(fact.also) and q.kind in fact.kinds()  # "expires in 50 days" for an expiry date
            if kind != q.kind and not also and (same_kind_only or not bonus or not {kind, q.kind} <= _SWAPPABLE):
                continue
            if _excluded(fact, segment.raw):
                continue
            if kind != q.kind and not also and sum(length for _, length in hits) < _SWAP_MIN_WEIGHT:
                continue  # a value in another unit is about a fact only where the segment clearly names it
            weight = sum(length for _, length in hits)
            if not bonus and weight < _CONTEXT_MIN_WEIGHT:
                continue
            distance = min(abs(at - position) for at, _ in hits)
            found.append(((weight + bonus, kind == q.kind, bool(bonus), -distance), fact))
    return found


def _bind(
    q: Quantity, position: int, segment: Segment, segments: list[Segment], own: Sequence[Fact], own_index: _CueIndex,
    other_index: _CueIndex,
) -> Fact | None:
    """The fact a stated amount is about: by cue words in its segment (a fact of the same kind
    first), then in its sentence, then by being the only fact of its kind the ticket is about."""
    candidates = _candidates(q, position, segment, own_index, other_index, False, len(tokens(q.text)))
    same_kind = [c for c in candidates if c[1].quantity.kind == q.kind or (c[1].also and q.kind in c[1].kinds())]
    # Read charitably, as a reviewer does: of the facts the segment may be about, one whose value
    # this is ("refunds are returned within 5-10 business days" on a refund question).
    true_reading = [c for c in same_kind if c[1].holds(q) and c[1] in own]
    pool = true_reading or same_kind or candidates
    if pool:
        best = max(pool, key=lambda c: c[0])[1]
        if best not in own and best.quantity.kind == q.kind:
            # Another article's fact wins only where the value is not simply one of the ticket's own
            # ("restore to any moment inside those 35 days" on an Enterprise backup question).
            mine = next((f for f in own if f.quantity.kind == q.kind and q.same_as(f.quantity)), None)
            if mine is not None:
                return mine
        return best
    if q.weak:
        return None  # "a minute", "a month": about something only where its own segment says so
    # No cue in the segment: the best-cued fact of the same kind elsewhere in the sentence.
    nearby = []
    for other in segments:
        if other.sentence == segment.sentence and other is not segment:
            distance = abs(other.start - segment.start)
            nearby += [((rank[0], -distance), fact) for rank, fact in _candidates(q, 0, other, own_index, other_index, True)]
    true_reading = [c for c in nearby if c[1].holds(q) and c[1] in own]
    if true_reading or nearby:
        best = max(true_reading or nearby, key=lambda c: c[0])[1]
        if best not in own:  # as in the segment: another article's fact, unless the value is simply one of the ticket's own
            mine = next((f for f in own if f.quantity.kind == q.kind and q.same_as(f.quantity)), None)
            if mine is not None:
                return mine
        return best
    if q.kind == "money":
        return None
    same = {f.key: f for f in own if f.quantity.kind == q.kind}
    if len(same) == 1 and not _excluded(next(iter(same.values())), segment.raw):
        return next(iter(same.values()))
    return next((f for f in own if f.quantity.kind == q.kind and q.same_as(f.quantity)), None)


def _bind_date(
    q: Quantity, position: int, segment: Segment, segments: list[Segment], own: Sequence[Fact], index: _CueIndex,
    dates: list[Quantity],
) -> Fact | None:
    """The date fact a stated date is about: by cue words in its segment (a cue nearer another date there
    is that date's: "went live on 2026-02-02, which puts its expiry at 2026-05-03"), else in the nearest
    segment before it in the sentence that states no date of its own ("Last day to request: Monday,
    23 March"), else the date fact whose value it is. Not by being the only date in scope: a reply states
    other dates (the charge, the key's creation, today) that are not the date asked. A fact ruled out by
    the words just before the date ("created on 2 February") is not what it is about."""
    near = segment.raw[max(0, position - 4):position]
    dated = [f for f in own if f.quantity.kind == "date" and not (f.unlike and _excluded(f, near))]
    if not dated:
        return None
    width = len(tokens(q.text))
    others = [  # the other dates of the segment, but not those of a list `q` is in ("23 or 24 March")
        _word_index(segment, d) for d in dates
        if d is not q and segment.start <= d.start < segment.end and not (q.listed and d.listed)
    ]
    earlier = [
        s for s in reversed(segments) if s.sentence == segment.sentence and s.end <= segment.start
        and not any(s.start <= d.start < s.end for d in dates)
    ]
    for part in [segment, *earlier]:
        found = []
        for fact, hits in index.hits(part).items():
            if fact in dated:
                spots = [
                    at for at, _ in hits if part is not segment
                    or (not position <= at < position + width and all(_nearer(at, position, o) for o in others))
                ]
                if spots:
                    distance = min(abs(at - position) for at in spots) if part is segment else 0
                    found.append(((fact.holds(q), len(spots), -distance), fact))
        if found:
            return max(found, key=lambda c: c[0])[1]
    return next((f for f in dated if f.holds(q)), None)


def _nearer(cue: int, date: int, other: int) -> bool:
    """Whether the cue at word `cue` is about the date at `date` rather than the one at `other`: the
    nearer, or at the same distance the one after it ("the last day to ask for the 9 March charge is
    23 March")."""
    mine, theirs = abs(cue - date), abs(cue - other)
    return mine < theirs or (mine == theirs and date > cue)


def _excluded(fact: Fact, words: list[str]) -> bool:
    """Whether the words, as written, name something that rules the fact out ("annual" for the
    monthly window; "monthly", not "months", for the annual one)."""
    return any(tuple(words[i:i + len(cue)]) == cue for cue in fact.unlike for i in range(len(words) - len(cue) + 1))


def _word_index(segment: Segment, q: Quantity) -> int:
    offset = q.start - segment.start
    return len(tokens(segment.text[: max(0, offset)]))


# --- terms --------------------------------------------------------------------------


def _term_claims(segments: list[Segment], questions: set[int], facts: Sequence[Fact]) -> list[Claim]:
    term_facts = [f for f in facts if f.quantity is None and f.phrases]
    if not term_facts:
        return []
    claims = []
    for index, parts in by_sentence(segments).items():
        if index in questions:
            continue
        words = [(w, k) for k, s in enumerate(parts) for w in s.words]
        content = [(w, k, j) for k, s in enumerate(parts) for j, w in enumerate(s.words)
                   if w not in _STOP_STEMS and w not in _NEGATORS and w not in "$%@"]
        present = {w for w, _ in words}
        for fact in term_facts:
            # Each phrasing that the sentence holds is a reading; the most specific one (most words) at
            # each place is what the sentence says about the fact.
            readings: dict[int, tuple[int, Claim]] = {}
            for prohibition, phrase in fact.phrases:
                if not set(phrase) <= present:
                    continue
                # A rule is a whole statement: its words close together, in order. A fact's words may
                # spread over a sentence ("both the current owner and, once invited, the new owner").
                if fact.rule:
                    spanned = _ordered_span(content, phrase, len(phrase) + 2) or _active_span(content, phrase, parts)
                else:
                    spanned = _span(words, phrase, 3 * len(phrase) + 6)
                if spanned is None:
                    continue
                first, last = spanned
                touched = parts[list_start(parts, first):last + 1]
                if any(s.reported for s in touched):
                    continue
                negated = any(_negates_phrase(s, phrase) for s in touched) or bool(_DENIED_AFTER_RE.search(touched[-1].text))
                after = parts[last + 1] if last + 1 < len(parts) else None
                before = parts[first - 1] if first > 0 and parts[first].joined_by == ":" else None
                if any(s is not None and _BARE_REFUSAL_RE.match(s.text) for s in (after, before)):
                    negated = not negated  # "a fresh database with the same name, but please don't"; "Please don't: ..."
                named = next((s for s in touched if s.plan), None)
                plan = named.plan if named else None
                # A term claim is positive when it affirms the fact: a prohibition must be stated negated.
                claim = Claim(
                    fact=fact, value=None, text=" ".join(s.text.strip() for s in touched), positive=negated == prohibition,
                    plan=plan, start=touched[0].start, destination=bool(named and named.destination),
                )
                if claim.start not in readings or len(phrase) > readings[claim.start][0]:
                    readings[claim.start] = (len(phrase), claim)
            claims += [claim for _, claim in readings.values()]
    return claims


def _negates_phrase(segment: Segment, phrase: tuple[str, ...]) -> bool:
    """Whether the negations in `segment` deny the phrase: those before its last word there
    ("we can't lock the account", "overages aren't refundable"), not one after it ("invoices
    older than a year are not shown there") nor past an "until"."""
    if not segment.negations:
        return False
    matched = [i for i, w in enumerate(segment.words) if w in phrase]
    if not matched:
        return segment.negates(len(segment.words), before=len(segment.words), after=0)
    first, last = matched[0], matched[-1]
    return segment.negates(first, before=len(segment.words), after=last - first)


# "Call by phone is not possible with Pro", "OpenID Connect isn't available": denied after it is named.
_DENIED_AFTER_RE = re.compile(
    r"\b(?:is|are|was|were)\s+(?:not|n't)\s+(?:possible|available|included|supported|allowed|offered|an\s+option)\b"
    r"|\b(?:isn't|aren't)\s+(?:possible|available|included|supported|allowed|offered)\b",
    re.I,
)
_BARE_REFUSAL_RE = re.compile(r"^\s*(?:(?:but|and|so)\s+)?(?:please\s+)?(?:don't|do\s+not|never)\s*[.!:;]?\s*$", re.I)
_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS) | STOPWORDS
_LIST_ITEM_WORDS = 3


def list_start(parts: list[Segment], first: int) -> int:
    """Where the statement holding segment `first` starts: a short segment after a comma is an
    item of a list whose verb, and negation, came before it ("we don't take PayPal, cheques,
    gift cards or crypto"); a clause of its own is not ("..., so we have escalated it")."""
    while (
        first > 0 and parts[first].joined_by == "," and sum(w not in _STOP_STEMS for w in parts[first].words) <= _LIST_ITEM_WORDS
        and not is_clause(parts[first])
    ):
        first -= 1
    return first


# A segment that opens with a connective or a subject, or holds a finite verb, is a clause of its own:
# a negation or a doubt in the clause before it does not reach it ("... without a migration is data loss,
# so we have escalated it"; "ask the person who signed for it, maybe the parcel is still at the dock").
_CONNECTIVES = frozenset({
    "so", "but", "yet", "because", "since", "while", "whereas", "although", "though", "therefore", "hence", "thus",
})
_SUBJECTS = frozenset({"we", "i", "you", "they", "he", "she"})
_FINITE = frozenset({"is", "are", "was", "were", "am", "has", "had", "will", "would", "can", "could", "shall", "should", "must"})


def is_clause(segment: Segment) -> bool:
    """Whether `segment` is a clause of its own rather than an item of a list begun before it."""
    raw = segment.raw
    if not raw:
        return False
    lead = raw[1:2] if raw[0] in ("and", "or") else raw[:1]
    opens = bool(lead) and (lead[0] in _CONNECTIVES or lead[0] in _SUBJECTS)
    return opens or any(w in _FINITE for w in raw)


def _ordered_span(words: list[tuple], phrase: tuple[str, ...], limit: int) -> tuple[int, int] | None:
    """Like `_span`, but the words must come in the phrase's order: a rule is a statement, and
    "SSO is Enterprise only, you're on Pro" does not say "SSO is on the Pro plan"."""
    for i, (w, *_) in enumerate(words):
        if w != phrase[0]:
            continue
        k, j = 1, i + 1
        while k < len(phrase) and j < len(words) and j - i < limit:
            if words[j][0] == phrase[k]:
                k += 1
            j += 1
        if k == len(phrase):
            return words[i][1], words[j - 1][1]
    return None


# The active voice of a rule written in the passive: "past invoices are not recalculated" is also said
# "we do not recalculate past invoices", its last word (the verb) first, done by someone named before it.
_AGENTS = frozenset({"we", "i", "they", "support", "team", "engineer", "engineers", "engineering", "stackwell", "staff"})
_AUXILIARIES = frozenset({
    "will", "would", "can", "could", "shall", "should", "may", "might", "must", "do", "does", "did", "not", "never", "also",
    "then", "now", "already", "just", "always", "have", "has", "had", "am", "are", "is", "going", "to", "happily", "simply",
})


def _active_span(content: list[tuple[str, int, int]], phrase: tuple[str, ...], parts: list[Segment]) -> tuple[int, int] | None:
    """Like `_ordered_span` for the phrase said in the active voice: its last word first, right after
    the one who does it ("we recalculate your past invoices" for "past invoices are recalculated")."""
    if len(phrase) < 2:
        return None
    active = (phrase[-1],) + phrase[:-1]
    for i, (w, k, j) in enumerate(content):
        if w != active[0] or not _acted_by_agent(parts[k].raw, j):
            continue
        window = content[i:i + len(active) + 2]
        spanned = _ordered_span(window, active, len(active) + 2)
        if spanned is not None and spanned[0] == k:
            return spanned
    return None


def _acted_by_agent(raw: list[str], at: int) -> bool:
    """Whether the verb at `at` follows its doer: "we", "our team", "support will not"."""
    for w in reversed(raw[max(0, at - 5):at]):
        if w in _AGENTS:
            return True
        if w not in _AUXILIARIES:
            return False
    return False


def _span(words: list[tuple[str, int]], phrase: tuple[str, ...], limit: int) -> tuple[int, int] | None:
    """The first and last segment of the shortest window of `words` holding every stem of
    `phrase`, if that window spans at most `limit` words."""
    need = set(phrase)
    best = None
    for i, (w, _) in enumerate(words):
        if w not in need:
            continue
        seen = set()
        for j in range(i, len(words)):
            if words[j][0] in need:
                seen.add(words[j][0])
            if seen == need:
                if best is None or j - i < best[1] - best[0]:
                    best = (i, j)
                break
    if best is None or best[1] - best[0] + 1 > limit:
        return None
    return words[best[0]][1], words[best[1]][1]


# --- hedges -------------------------------------------------------------------------


# "usually 24 hours, sometimes a bit longer", "4 hours in most cases, occasionally longer", "or so"
_SOFTENER_RE = re.compile(
    r"\b(?:sometimes|occasionally|at\s+times|now\s+and\s+then|a\s+bit|a\s+little|somewhat|even)\s+(?:a\s+(?:bit|little)\s+)?"
    r"(?:longer|more|slower|later|less|shorter)\b|\bor\s+(?:so|longer)\b|\bgive\s+or\s+take\b"
    r"|\b(?:can|may|might|could)\s+(?:also\s+)?(?:take|be|run)\s+(?:a\s+(?:bit|little)\s+|much\s+|even\s+)?(?:longer|more|slower)\b|\b(?:can|may|might|could)\s+take\s+up\s+to\b"
    r"|\bsometimes\b[^.;]{0,40}\b(?:takes?|longer|more|later)\b|\b(?:if|when)\s+(?:we\s+are|we're|it\s+is|it's|things\s+are)\s+busy\b"
    r"|\bat\s+busy\s+times\b",
    re.I,
)
# Identifiers a term may be: an address, a console path. Another one beside it, joined by "or", is a hedge.
_PATH_STEP = r"[A-Z][\w-]*(?:\s+[a-z][\w-]*){0,2}"
_IDENTIFIER_RE = re.compile(rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|{_PATH_STEP}(?:\s*>\s*{_PATH_STEP})+")
_DOUBT_RE = re.compile(r"\b(?:maybe|perhaps|possibly|probably)\b|\bnot\s+(?:entirely\s+)?sure\b", re.I)
_ALTERNATIVE_RE = re.compile(r"\b(?:or|either|alternatively)\b", re.I)


def _mark_hedges(claims: list[Claim], segments: list[Segment]) -> list[Claim]:
    """Hedged claims: values of one kind for one fact that differ within one segment, or within one
    list or range ("30, 60 or 600"; "30 to 60 days"), with no plan to tell them apart; a value in a
    sentence that softens it ("sometimes a bit longer"); an address or console path beside another
    one offered as an alternative ("phishing@... or security@..., either works")."""
    sentences = {index: " ".join(s.text for s in parts) for index, parts in by_sentence(segments).items()}
    groups: dict[tuple, list[Claim]] = {}
    hedged = set()
    for claim in claims:
        if claim.fact is None or not claim.positive:
            continue
        index = next((i for i, s in enumerate(segments) if s.start <= claim.start < s.end), 0)
        sentence = sentences.get(segments[index].sentence, "") if segments else ""
        local = claim.text if claim.value is None else segments[index].text
        if claim.value is None:  # a list the term heads goes on after it: "Visa, Mastercard and maybe Discover"
            for nxt in segments[index + 1:]:
                items = sum(w not in _STOP_STEMS for w in nxt.words)
                if nxt.sentence != segments[index].sentence or nxt.joined_by not in (",", "and", "or") or items > 4:
                    break
                if is_clause(nxt):
                    break  # "ask the person who signed for it, maybe the parcel is still at the dock": a clause of its own
                local += " " + nxt.text
        if _DOUBT_RE.search(local):
            hedged.add(id(claim))
        if claim.value is None:
            if _IDENTIFIER_RE.search(claim.fact.value) and _offers_alternative(claim.fact, sentence):
                hedged.add(id(claim))
            continue
        if _SOFTENER_RE.search(sentence):
            hedged.add(id(claim))
        if claim.value.approx or claim.since_event:
            continue  # "90 days (about three months)": a gloss beside the value; "within the next four days": the time left
        where = ("list", segments[index].sentence) if claim.value.listed else ("segment", index)
        groups.setdefault((where, claim.fact.key, claim.value.kind, claim.plan), []).append(claim)
    for members in groups.values():
        values: list[Quantity] = []
        for claim in members:
            if not any(claim.value.same_as(v) for v in values):
                values.append(claim.value)
        if len(values) > 1:
            hedged.update(id(c) for c in members)
    if not hedged:
        return claims
    return [replace(c, hedged=True) if id(c) in hedged else c for c in claims]


def _offers_alternative(fact: Fact, sentence: str) -> bool:
    """Whether `sentence` offers, beside the fact's address or path, another one as an alternative."""
    if not _ALTERNATIVE_RE.search(sentence):
        return False
    for m in _IDENTIFIER_RE.finditer(sentence):
        words = set(stems(m.group(0)))
        if not any(set(phrase) <= words for _, phrase in fact.phrases):
            return True
    return False
