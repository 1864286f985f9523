"""Which articles and which of their sentences questions are written from.

Articles: corpus files whose name carries a date (`cnn_2022-07-14_slug.md`) before a cutoff;
a file without a date in its name is never used. Sentences: spans of the cleaned article text
as `assistant.corpus` produces it (so offsets match the index), informative ones only, a few
per article in a seeded order.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..schema import Article
from ..sources.corpus import corpus_files
from ..text import content_words, sentence_spans

_NAME_DATE = re.compile(r"(?:^|_)(\d{4}-\d{2}-\d{2})(?:_|\.)")

MIN_WORDS, MAX_WORDS = 9, 50
MIN_CONTENT_WORDS = 5
MAX_QUOTED_SHARE = 0.6  # more of the sentence inside quotation marks: a quote, not a reported fact
_ENDS = tuple('.!?"”’)')
_FURNITURE = re.compile(
    r"contributed (?:to )?(?:this|reporting)|this (?:story|article|report) (?:has been|was) updated|"
    r"sign up|newsletter|subscribe|click here|follow (?:us|him|her|them)\b|read more|all rights reserved|"
    r"copyright|https?://|www\.|@\w|\bphotos?:|getty images|editor's note|for more (?:news|information)",
    re.IGNORECASE)
_QUOTED = re.compile(r"[“\"][^”\"]*[”\"]")


def name_date(path: Path | str) -> str:
    """The ISO date in a corpus file's name, or ""."""
    match = _NAME_DATE.search(Path(path).name)
    return match.group(1) if match else ""


def files_before(corpus_dir: Path, before: str) -> list[Path]:
    """The corpus files whose name dates them strictly before `before` (ISO), sorted."""
    return [p for p in corpus_files(corpus_dir) if name_date(p) and name_date(p) < before]


@dataclass(frozen=True)
class Source:
    """A sentence questions are written from; `article.text[start:end]` is its text."""

    article_id: str
    start: int
    end: int
    sha1: str  # of the sentence text, short: tells when the article's text has changed

    @property
    def key(self) -> str:
        return f"{self.article_id}:{self.start}-{self.end}"


def sentence_sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def informative(sentence: str) -> bool:
    """A sentence that states a fact a reader could ask about: long enough, ends like a
    statement, is not page furniture and not mostly a quotation."""
    s = " ".join(sentence.split())
    n = len(s.split())
    if not MIN_WORDS <= n <= MAX_WORDS or not s.endswith(_ENDS) or s.rstrip("\"”’)").endswith("?"):
        return False
    if not (s[0].isupper() or s[0].isdigit() or s[0] in "“\"'$"):  # a fragment cut from a longer line
        return False
    if _FURNITURE.search(s) or len(content_words(s)) < MIN_CONTENT_WORDS:
        return False
    quoted = sum(len(m.group(0)) for m in _QUOTED.finditer(s))
    if s[0] in "“\"" and not _QUOTED.match(s):  # a quote that runs on from the previous paragraph
        quoted = len(s)
    return quoted <= MAX_QUOTED_SHARE * len(s)


def _anchored(sentence: str) -> bool:
    """Holds a figure or a name past its first word: readers ask about those."""
    return bool(re.search(r"\d", sentence) or re.search(r"(?<=\s)[A-Z][a-z]", sentence))


def pick_sentences(article: Article, per_article: int, seed: int = 0) -> list[Source]:
    """Up to `per_article` informative sentences of `article`, in text order; which ones is
    decided by a shuffle seeded by `seed` and the article id (sentences with a figure or a
    name first), so a rerun picks the same."""
    spans = [(s, e) for s, e in sentence_spans(article.text) if informative(article.text[s:e])]
    rng = random.Random(f"{seed}:{article.article_id}")
    rng.shuffle(spans)
    spans.sort(key=lambda se: not _anchored(article.text[se[0]:se[1]]))  # stable: shuffled within each group
    chosen = sorted(spans[:per_article])
    return [Source(article.article_id, s, e, sentence_sha1(article.text[s:e])) for s, e in chosen]
