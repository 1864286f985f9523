"""Coverage gaps: what readers asked that the articles do not cover, grouped into topics.

The questions are the refused ones of the question log and those of 👎 feedback. Each is embedded
by the app's own model (`Embedder`, the vectors retrieval compares; no other model) and grouped
by scikit-learn's agglomerative clustering with average linkage on cosine distance, cut at
`DISTANCE`: two questions share a topic when, on average, the questions of their groups are
closer than that. The number of topics follows from the cut, not from a number chosen up front
(one subject asked ten ways stays one topic; ten subjects asked once are ten). `DISTANCE` was
read off the model: questions on one subject sit at cosine similarity 0.4-0.8, on different
subjects below 0.25, and every cut from 0.6 to 0.8 gave the same topics on the tested sets.

Each topic is named by its most central question (the highest mean similarity to the others)
and its top terms (TF-IDF summed over its questions, English stop words out), with its count,
first and last time asked, and the articles closest to its centre (`Store.query`): what the desk
has nearest, often the place to start a new article.

    python -m assistant gaps [--index DIR] [--since YYYY-MM-DD] [--json]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .schema import ArticleRef

DISTANCE = 0.7  # cosine distance at which groups stop merging (average linkage)
MAX_QUESTIONS = 2_000  # the newest questions grouped at most (the clustering is quadratic)
TERMS = 3
EXAMPLES = 20  # questions listed with a topic


@dataclass(frozen=True)
class GapQuestion:
    question: str
    asked: str  # UTC, ISO 8601
    why: str  # "refused" or "down" (a 👎)


@dataclass(frozen=True)
class Topic:
    label: str  # the most central question
    terms: tuple[str, ...]
    count: int
    first: str
    last: str
    questions: tuple[str, ...]  # distinct, most central first
    closest: tuple[ArticleRef, ...] = ()

    def to_dict(self) -> dict:
        return {"label": self.label, "terms": list(self.terms), "count": self.count, "first": self.first,
                "last": self.last, "questions": list(self.questions),
                "closest": [{"article_id": a.article_id, "title": a.title, "source": a.source, "date": a.date,
                             "url": a.url} for a in self.closest]}


def gap_questions(questions, feedback, since: str = "") -> list[GapQuestion]:
    """The refused questions of the log (`questionlog.QuestionLog`, or None when it is off) and
    the questions rated 👎 (`feedback.FeedbackStore`), asked on or after `since`, oldest first."""
    found = [GapQuestion(q.question, q.asked, "refused")
             for q in (questions.entries(since, outcomes=("refused",)) if questions is not None else [])]
    found += [GapQuestion(e.question, e.created, "down") for e in feedback.entries(since) if e.rating == "down"]
    return sorted(found, key=lambda g: g.asked)[-MAX_QUESTIONS:]


def group(vectors: np.ndarray, distance: float = DISTANCE) -> np.ndarray:
    """A topic number for each of the unit-length `vectors`."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                   linkage="average").fit_predict(vectors)


def top_terms(texts: Sequence[str], labels: np.ndarray, n: int = TERMS) -> dict[int, tuple[str, ...]]:
    """The `n` terms that weigh most (TF-IDF over every question) in each topic's questions."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        weights = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b").fit(texts)
    except ValueError:  # nothing but stop words
        return {}
    matrix, vocabulary = weights.transform(texts), weights.get_feature_names_out()
    out = {}
    for label in set(labels.tolist()):
        summed = np.asarray(matrix[labels == label].sum(axis=0)).ravel()
        best = [i for i in np.argsort(-summed, kind="stable")[:n] if summed[i] > 0]
        out[label] = tuple(str(vocabulary[i]) for i in best)
    return out


def topics(items: Sequence[GapQuestion], embed: Callable[[list[str]], np.ndarray],
           closest: Callable[[np.ndarray], Sequence[ArticleRef]] = lambda centre: (),
           distance: float = DISTANCE) -> list[Topic]:
    """`items` grouped into topics, the most asked first (then the most recent).

    Args:
        embed: the app's embedder (`Embedder.encode`): unit-length vectors, one per text.
        closest: the desk's articles nearest a topic's centre (a unit vector).
    """
    if not items:
        return []
    # Each distinct question once (case and spacing folded); its count and dates kept.
    distinct: dict[str, list[GapQuestion]] = {}
    for item in items:
        distinct.setdefault(" ".join(item.question.lower().split()), []).append(item)
    keys = list(distinct)
    texts = [distinct[k][0].question for k in keys]
    vectors = np.asarray(embed(texts), dtype=np.float32)
    labels = group(vectors, distance)
    terms = top_terms(texts, labels)
    found = []
    for label in set(labels.tolist()):
        members = np.flatnonzero(labels == label)
        centrality = (vectors[members] @ vectors[members].T).mean(axis=1)
        order = members[np.argsort(-centrality, kind="stable")]
        asked = [g.asked for i in members for g in distinct[keys[i]]]
        centre = vectors[members].mean(axis=0)
        centre = centre / (np.linalg.norm(centre) or 1.0)
        found.append(Topic(label=texts[order[0]], terms=terms.get(label, ()), count=len(asked), first=min(asked),
                           last=max(asked), questions=tuple(texts[i] for i in order[:EXAMPLES]),
                           closest=tuple(closest(centre))))
    return sorted(found, key=lambda t: (t.count, t.last), reverse=True)


def closest_to(store, n: int = 3) -> Callable[[np.ndarray], tuple[ArticleRef, ...]]:
    """The `n` articles whose passages lie nearest a vector, each once (`Store.query`)."""
    from .answering.base import closest_articles
    from .schema import Hit

    def nearest(centre: np.ndarray) -> tuple[ArticleRef, ...]:
        chunks = store.query(centre.tolist(), n * 4)
        hits = [Hit(chunk=chunk, score=score, similarity=score, rank=rank)
                for rank, (chunk, score) in enumerate(chunks, 1)]
        return closest_articles(hits, n)

    return nearest


def topic_lines(topic: Topic) -> list[str]:
    """A topic for the owner's terminal (`text.shown` keeps what readers typed from driving it)."""
    from .text import shown

    lines = [f"{topic.count} × {topic.label}", f"  terms: {', '.join(topic.terms) or '—'}; "
             f"asked {topic.first[:10]} to {topic.last[:10]}"]
    lines += [f"  - {q}" for q in topic.questions[1:6]]
    lines += [f"  closest: {a.title or a.article_id} ({a.source or 'unknown outlet'}, {a.date or 'undated'})"
              for a in topic.closest]
    return [shown(line) for line in lines]
