"""What the desk knows: how many articles, from which outlets, covering which dates.

Shown in the chat's header, `/embed`'s empty state and `/api/health`. Computed from the
lexical index's article list, once per index build (`Retriever.summary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .. import i18n


# Outlets named in one line of text; the rest are counted ("and 9 more").
NAMED_OUTLETS = 3


@dataclass(frozen=True)
class Scope:
    articles: int = 0
    outlets: tuple[tuple[str, int], ...] = ()  # (outlet, articles), most articles first
    first_date: str = ""  # ISO; "" when no article is dated
    last_date: str = ""
    undated: int = 0  # articles without a date

    def count_text(self, lang: str = i18n.DEFAULT) -> str:
        """ "503 articles", in `lang`."""
        t = i18n.translations(lang)
        return i18n.fill(lang, t.ngettext("{count:,} article", "{count:,} articles", self.articles), count=self.articles)

    def describe(self, lang: str = i18n.DEFAULT) -> str:
        """One line for readers, without a full stop: "503 articles from Reuters, AP, BBC and 9 more,
        2021-03-01 to 2024-05-10 (2 of unknown date)"; in `lang`."""
        t = i18n.translations(lang)
        if not self.articles:
            return t.gettext("No articles yet")
        line = self.count_text(lang)
        names = [name for name, _ in self.outlets]
        if names:
            shown, rest = names[:NAMED_OUTLETS], len(names) - NAMED_OUTLETS
            outlets = (i18n.fill(lang, t.gettext("{outlets} and {more} more"), outlets=", ".join(shown), more=rest)
                       if rest > 0 else shown[0] if len(shown) == 1
                       else t.gettext("{outlets} and {last}").format(outlets=", ".join(shown[:-1]), last=shown[-1]))
            line = t.gettext("{articles} from {outlets}").format(articles=line, outlets=outlets)
        if self.first_date:
            span = (self.first_date if self.first_date == self.last_date
                    else t.gettext("{first} to {last}").format(first=self.first_date, last=self.last_date))
            if self.undated:
                undated = i18n.fill(lang, t.ngettext("({count:,} of unknown date)", "({count:,} of unknown date)",
                                                     self.undated), count=self.undated)
                span = t.gettext("{dates} {undated}").format(dates=span, undated=undated)
        else:
            span = t.gettext("date unknown")
        return t.gettext("{articles}, {dates}").format(articles=line, dates=span)

    def to_dict(self) -> dict:
        return {"outlets": [{"name": n, "articles": a} for n, a in self.outlets],
                "dates": {"first": self.first_date or None, "last": self.last_date or None,
                          "undated": self.undated}}


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
