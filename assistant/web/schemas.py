"""The JSON shapes of answers and passages: one contract for the HTTP API and `--json`."""

from __future__ import annotations

from ..schema import Answer, Hit, Verification
from .share import quote_link


def hit_to_dict(hit: Hit) -> dict:
    c = hit.chunk
    return {"rank": hit.rank, "article_id": c.article_id, "title": c.title, "source": c.source,
            "date": c.date, "url": c.url, "text": c.text, "score": round(hit.score, 6),
            "similarity": round(hit.similarity, 6), "chunk_id": c.chunk_id, "start": c.start, "end": c.end}


def answer_to_dict(answer: Answer) -> dict:
    return {
        "answer": answer.text,
        "lead": answer.lead,
        "refused": answer.refused,
        "notice": answer.notice,
        "closest": [{"article_id": a.article_id, "title": a.title, "source": a.source, "date": a.date,
                     "url": a.url} for a in answer.closest],
        **({"verification": verification_to_dict(answer.verification)} if answer.verification else {}),
        "citations": [{"n": c.n, "article_id": c.hit.chunk.article_id, "title": c.hit.chunk.title,
                       "source": c.hit.chunk.source, "date": c.hit.chunk.date, "url": c.hit.chunk.url,
                       "quote": c.quote, "link": quote_link(c.hit.chunk.url, c.quote),
                       "passage_rank": c.hit.rank} for c in answer.citations],
        "passages": [hit_to_dict(h) for h in answer.hits],
    }


def verification_to_dict(v: Verification) -> dict:
    """Which sentences a language model wrote and how each fared against its passage
    (`verify.verify`): `verified`, `corrected` (another passage supports it; its number was
    changed) or `unsupported` (dropped). `outcome`: answered, refused (the model said the articles
    do not cover it), unsupported (nothing it wrote was supported) or failed; `fallback`: the
    answer shown is the extractive one."""
    return {"model": v.model, "outcome": v.outcome, "fallback": v.fallback,
            "first_token_s": None if v.first_token is None else round(v.first_token, 3),
            "sentences": [{"text": s.text, "status": s.status, "citations": list(s.citations),
                           "model_cited": list(s.model_cited), "support": s.support} for s in v.sentences]}
