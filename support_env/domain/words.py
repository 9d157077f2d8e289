"""Words as the graders compare them: lower-cased tokens cut to a rough stem, so
"locked", "locks" and "lock" are one word, and "owners" is "owner".

Deliberately crude and fixed: no dictionary, no model, the same answer in every
process. It only has to make inflections of one word meet, not to be linguistics.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Letters and digits, keeping "2.0", "1,500", "e-mail" style joins out of the way:
# a token is a run of letters/digits, or a number with inner dots or commas.
TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*|[a-z]+(?:'[a-z]+)?|[@$%]")
# Contractions spelled out, so "can't" and "cannot" read the same.
_CONTRACTIONS = {
    "can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not", "n't": " not",
    "'ll": " will", "'ve": " have", "'re": " are", "'d": " would", "'m": " am", "'s": "",
}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_CONTRACTION_RE = re.compile(r"can't|cannot|won't|shan't|n't|'ll|'ve|'re|'d|'m|'s\b")

# Words that carry no subject: ignored when a phrase is matched.
STOPWORDS = frozenset(
    "a an the your our my their his her its this that these those of to for with and or in on at by from as is are be "
    "been being was were it they we you i me us them please just also then so will would can could may might shall "
    "should have has had do does did any some all there here when once up".split()
)


def plain(text: str) -> str:
    """Lower case, curly quotes straightened, contractions spelled out ("we've" -> "we have")."""
    text = text.translate(_APOSTROPHES).lower()
    return _CONTRACTION_RE.sub(lambda m: _CONTRACTIONS[m.group(0)], text)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A rough stem: common English endings cut ("revoked", "revoking", "revoke" -> "revok")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, keep in (("sses", "ss"), ("ies", "y"), ("ied", "y"), ("able", ""), ("ing", ""), ("ed", ""), ("es", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= (4 if suffix == "ly" else 3):
            word = word[: -len(suffix)] + keep
            break
    else:
        if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
            word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]  # "stopp" (stopped) -> "stop"
    return word


def tokens(text: str) -> list[str]:
    """The words of `text`, in order (after `plain`), unstemmed."""
    return TOKEN_RE.findall(plain(text))


def stems(text: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in tokens(text))


def content_stems(text: str) -> tuple[str, ...]:
    """The stems of the words that carry meaning: stop words left out."""
    return tuple(stem(t) for t in tokens(text) if t not in STOPWORDS)
