"""What the desk knows: how many articles, from which outlets, covering which dates.

Shown in the chat's header, `/embed`'s empty state and `/api/health`. Computed from the
lexical index's article list, once per index build (`Retriever.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


# Outlets named in one line of text; the rest are counted ("and 9 more").
NAMED_OUTLETS = 3


@dataclass(frozen=True)
class Scope:
    articles: int = 0
    outlets: tuple[tuple[str, int], ...] = ()  # (outlet, articles), most articles first
    first_date: str = ""  # ISO; "" when no article is dated
    last_date: str = ""
    undated: int = 0  # articles without a date

    @property
    def count_text(self) -> str:
        return f"{self.articles:,} article{'s' if self.articles != 1 else ''}"

    def describe(self) -> str:
        """One line for readers, without a full stop: "503 articles from Reuters, AP, BBC and 9 more,
        2021-03-01 to 2024-05-10 (2 of unknown date)"."""
        if not self.articles:
            return "No articles yet"
        line = self.count_text
        names = [name for name, _ in self.outlets]
        if names:
            shown, rest = names[:NAMED_OUTLETS], len(names) - NAMED_OUTLETS
            line += " from " + (", ".join(shown) + f" and {rest} more" if rest > 0 else _and(shown))
        if self.first_date:
            span = self.first_date if self.first_date == self.last_date else f"{self.first_date} to {self.last_date}"
            line += f", {span}" + (f" ({self.undated:,} of unknown date)" if self.undated else "")
        else:
            line += ", date unknown"
        return line

    def to_dict(self) -> dict:
        return {"outlets": [{"name": n, "articles": a} for n, a in self.outlets],
                "dates": {"first": self.first_date or None, "last": self.last_date or None,
                          "undated": self.undated}}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def scope_of(rows: Iterable[tuple[str, str, str]]) -> Scope:
    """The scope of these articles, given as (article id, outlet, date)."""
    articles: dict[str, tuple[str, str]] = {}
    for article_id, source, day in rows:
        articles.setdefault(article_id, (source, day))
    by_outlet: dict[str, int] = {}
    for source, _ in articles.values():
        if source:
            by_outlet[source] = by_outlet.get(source, 0) + 1
    dates = sorted(d for _, d in articles.values() if d)
    return Scope(articles=len(articles),
                 outlets=tuple(sorted(by_outlet.items(), key=lambda item: (-item[1], item[0]))),
                 first_date=dates[0] if dates else "", last_date=dates[-1] if dates else "",
                 undated=len(articles) - len(dates))


def desk_scope(assistant) -> Scope:
    """The assistant's scope, computed once per lexical index (a loop over every article: call it
    off the event loop)."""
    return assistant.retriever.summary(scope_of)
