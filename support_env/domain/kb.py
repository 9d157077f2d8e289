"""Knowledge base: policy articles loaded from `data/kb/*.md`, ranked with BM25.

Loaded and indexed once per process (`default_kb()`); episodes only read it,
so every session shares one immutable index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from .facts import Fact, make_fact
from .yamlfile import parse_yaml

KB_DIR = Path(__file__).parent / "data" / "kb"
DEFAULT_TOP_K = 3
# Rankings remembered per knowledge base, by exact query: agents (and the reference policy)
# often search with a ticket's own text, so the same query recurs across episodes of a task.
# Bounded: at most this many queries (an episode's queries are at most 500 characters).
SEARCH_MEMO_SIZE = 512


@dataclass(frozen=True)
class Article:
    """A policy article. `facts` are the checkable values its text states."""

    id: str
    title: str
    category: str
    status: str
    superseded_by: str | None
    body: str
    facts: tuple[Fact, ...]

    @property
    def archived(self) -> bool:
        return self.status == "archived"

    def facts_for(self, plan: str) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.applies_to(plan))

    def fact(self, key: str, plan: str) -> Fact:
        """The value of `key` that holds for a customer on `plan`."""
        for f in self.facts:
            if f.key == key and f.applies_to(plan):
                return f
        raise KeyError(f"{self.id} has no fact {key!r} for plan {plan!r}")


def parse_article(text: str, source: str = "<string>") -> Article:
    """Parse one Markdown file with YAML front matter into an Article."""
    if not text.startswith("---"):
        raise ValueError(f"{source}: missing front matter")
    _, header, body = text.split("---", 2)
    meta = parse_yaml(header)
    facts = tuple(
        make_fact(
            f["key"], str(f["value"]), f.get("plan"), f.get("synonyms"), f.get("label"), f.get("about"), bool(f.get("rule"))
        )
        for f in meta.get("facts") or []
    )
    return Article(
        id=meta["id"],
        title=meta["title"],
        category=meta["category"],
        status=meta.get("status", "current"),
        superseded_by=meta.get("superseded_by"),
        body=body.strip(),
        facts=facts,
    )


# bm25s.tokenize(texts, stopwords="en", return_ids=False) does exactly this, plus
# progress bars and a vocabulary round trip that cost 15x the work on a query.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)


def _tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased word tokens (2+ characters) without English stop words; the index and queries share it."""
    return [[token for token in _TOKEN.findall(text.lower()) if token not in _STOPWORDS] for text in texts]


class KnowledgeBase:
    """Articles by id plus a BM25 index over title and body."""

    def __init__(self, articles: list[Article]):
        self.articles: dict[str, Article] = {a.id: a for a in articles}
        self._order = [a.id for a in articles]
        # The title is repeated so a match in it outweighs one in passing prose.
        corpus = _tokenize([f"{a.title} {a.title} {a.body}" for a in articles])
        self._index = bm25s.BM25()
        self._index.index(corpus, show_progress=False)
        # The index never changes after this point, so a query's ranking is the same every time it
        # is asked: remember recent ones. Scoring a ticket-length query (60+ terms) costs ~150 µs.
        self._ranked = lru_cache(maxsize=SEARCH_MEMO_SIZE)(self._rank)

    def search(self, query: str, k: int = DEFAULT_TOP_K) -> list[tuple[Article, float]]:
        """Top `k` articles with a positive score, best first; ties keep file order."""
        return list(self._ranked(query, k))

    def _rank(self, query: str, k: int) -> tuple[tuple[Article, float], ...]:
        tokens = _tokenize([query])[0]
        if not tokens:
            return ()
        scores = self._index.get_scores(tokens)
        best = np.argsort(-scores, kind="stable")[:k]
        return tuple((self.articles[self._order[i]], round(float(scores[i]), 4)) for i in best if scores[i] > 0)


def load_kb(directory: Path = KB_DIR) -> KnowledgeBase:
    paths = sorted(directory.glob("*.md"))
    return KnowledgeBase([parse_article(p.read_text(encoding="utf-8"), str(p)) for p in paths])


@lru_cache(maxsize=1)
def default_kb() -> KnowledgeBase:
    return load_kb()
