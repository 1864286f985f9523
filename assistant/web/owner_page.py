"""The owner's page as HTML: pure renderers from `OwnerView` (gathered by `routes/owner.py`).

Everything a reader typed or an article holds is escaped (`html.escape`). The plots are SVG made
here (no script, no third party): bars with their numbers, each followed by the same numbers as a
table for screen readers and for anyone who would rather read them.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..feedback import Feedback
from ..gaps import Topic
from ..questionlog import Asked
from ..runs import FeedState, IngestRun
from .scope import Scope
from .share import safe_url

CSS = """
:root { color-scheme: light dark; --fg: #1b1b1b; --bg: #fff; --muted: #4a4a4a; --bar: #1f5fa8; --bar2: #b34700;
        --line: #c8c8c8; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #f0f0f0; --bg: #161616; --muted: #c4c4c4; --bar: #7fb2f0; --bar2: #f4a36b; --line: #555; } }
body { font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto;
       max-width: 80rem; padding: 1rem; }
a { color: inherit; } :focus-visible { outline: 3px solid var(--bar); outline-offset: 2px; }
table { border-collapse: collapse; margin: .5rem 0 1rem; } th, td { text-align: left; padding: .2rem .6rem;
        border-bottom: 1px solid var(--line); vertical-align: top; } td.n { text-align: right; }
.muted { color: var(--muted); } section { margin-bottom: 2rem; } svg { max-width: 100%; height: auto; }
svg text { fill: var(--fg); font-size: 11px; } .bar { fill: var(--bar); } .bar2 { fill: var(--bar2); }
nav ul { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; list-style: none; padding: 0; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 0 2rem; }
header { display: flex; justify-content: space-between; align-items: center; flex-wrap: wrap; gap: 1rem; }
button, input { font: inherit; padding: .3rem .7rem; } .error { color: #b00020; font-weight: bold; }
@media (prefers-color-scheme: dark) { .error { color: #ff8a80; } }
"""
CSS_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode() + "'"
# No script at all; the one style block by its hash; forms post only here; never in a frame.
POLICY = (f"default-src 'none'; style-src {CSS_HASH}; img-src 'self'; form-action 'self'; base-uri 'none'; "
          "frame-ancestors 'none'")
# `same-origin`, not the server's `no-referrer`: under it Chromium sends `Origin: null` with the
# page's own form posts, and the sign-in checks `Origin` (`owner_auth.from_this_site`).
HEADERS = {"Content-Security-Policy": POLICY, "X-Frame-Options": "DENY", "Cache-Control": "no-store",
           "Referrer-Policy": "same-origin"}


@dataclass(frozen=True)
class OwnerView:
    scope: Scope
    by_month: tuple[tuple[str, int], ...] = ()  # ("2024-05", articles), oldest first
    ingest_runs: int = 0
    last_ingest: IngestRun | None = None
    feeds: tuple[FeedState, ...] = ()
    per_day: tuple[tuple[str, dict], ...] = ()  # (day, {outcome: questions}), oldest first
    topics: tuple[Topic, ...] = ()
    feedback: tuple[Feedback, ...] = ()
    slowest: tuple[Asked, ...] = ()
    question_log: bool = True
    days: int = 30  # the span of the questions shown
    logout_form: str = field(default="", repr=False)  # the sign-out form's CSRF token
    base: str = ""  # the path prefix a reverse proxy serves the app under


def by_month(rows: Sequence[tuple[str, str, str]]) -> tuple[tuple[str, int], ...]:
    """Articles per month (dated ones), oldest first, from (article id, outlet, date) rows."""
    months = Counter({aid: day[:7] for aid, _, day in rows if day}.values())
    return tuple(sorted(months.items()))


def e(text) -> str:
    return html.escape(str(text), quote=True)


def bar_chart(title: str, bars: Sequence[tuple[str, Sequence[int]]], legend: Sequence[str] = (),
              width: int = 640, height: int = 180) -> str:
    """A bar chart as inline SVG: one (label, stacked values) per bar; named for screen readers."""
    top = max((sum(v) for _, v in bars), default=0) or 1
    width = min(width, 60 + 40 * len(bars))  # a few bars stay bars, not blocks
    slot = width / max(1, len(bars))
    bar_w = max(2.0, slot * 0.7)
    inner = height - 48
    parts = []
    for i, (label, values) in enumerate(bars):
        x, y = i * slot + (slot - bar_w) / 2, inner + 18
        for j, value in enumerate(values):
            h = inner * value / top
            y -= h
            parts.append(f'<rect class="{"bar" if j == 0 else "bar2"}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}"/>')
        if len(bars) <= 16 or i % max(1, len(bars) // 8) == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 14}" text-anchor="middle">{e(label)}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{sum(values)}</text>'
                     if len(bars) <= 31 else "")
    key = ", ".join(f"{name} ({'blue' if j == 0 else 'orange'})" for j, name in enumerate(legend))
    desc = f"{title}{': ' + key if key else ''}; the same numbers follow as a table."
    return (f'<svg role="img" aria-label="{e(desc)}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{e(desc)}</title>{"".join(parts)}</svg>')


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[int] = ()) -> str:
    if not rows:
        return f"<p class='muted'>{e(caption)}: none yet.</p>"
    th = "".join(f"<th scope='col'>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='n'>{e(c)}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><caption class='muted'>{e(caption)}</caption><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _article(a) -> str:
    url = safe_url(a.url)
    title = e(a.title or a.article_id)
    name = f"<a href='{e(url)}' rel='noopener noreferrer'>{title}</a>" if url else title
    return f"{name} <span class='muted'>({e(a.source or 'unknown outlet')}, {e(a.date or 'undated')})</span>"


def corpus_section(view: OwnerView) -> str:
    s = view.scope
    outlets = _table("Articles by outlet", ("outlet", "articles"), [(e(n), a) for n, a in s.outlets], numeric=(1,))
    months = view.by_month[-36:]
    plot = bar_chart("Articles per month", [(m[2:], [n]) for m, n in months]) if months else ""
    month_table = (f"<details><summary>Articles per month as a table</summary>"
                   f"{_table('Articles per month', ('month', 'articles'), months, numeric=(1,))}</details>")
    last = view.last_ingest
    if last is None:
        ingest = "<p>No ingest recorded yet (runs of <code>ingest</code>, <code>add</code>, <code>feeds</code> " \
                 "and the start-up ingest are).</p>"
    else:
        failures = "".join(f"<li>{e(f)}: {e(why)}</li>" for f, why in last.failures)
        ingest = (f"<p>Last ingest {e(last.finished.replace('T', ' ').rstrip('Z'))} UTC: {last.added} added, "
                  f"{last.updated} updated, {last.removed} removed, <strong>{last.failed} failed</strong> "
                  f"({view.ingest_runs} run{'s' if view.ingest_runs != 1 else ''} recorded).</p>" + (f"<ul>{failures}</ul>" if failures else ""))
    feeds = _table("Feeds, as the feeds runs recorded them", ("feed", "last read (UTC)", "last brought an article",
                                                               "last error"),
                   [(e(f.feed), e(f.last_run), e(f.last_added or "never"), e(f.error or "—")) for f in view.feeds])
    return (f"<section aria-labelledby='corpus'><h2 id='corpus'>Corpus</h2><p>{e(s.describe())}.</p>"
            f"{plot}{month_table}{outlets}<h3>Ingest</h3>{ingest}<h3>Feeds</h3>{feeds}</section>")


def questions_section(view: OwnerView) -> str:
    if not view.question_log:
        return ("<section aria-labelledby='questions'><h2 id='questions'>Questions</h2><p>The question log is off "
                "(<code>ASSISTANT_QUESTION_LOG=0</code>).</p></section>")
    rows = []
    for day, n in view.per_day:
        total = sum(n.values())
        answered = n.get("answered", 0)
        refused = n.get("refused", 0)
        rows.append((e(day), total, f"{answered / total:.0%}", f"{refused / total:.0%}",
                     n.get("error", 0) + n.get("busy", 0)))
    plot = bar_chart(f"Questions per day, last {view.days} days", [
        (day[5:], [n.get("answered", 0), sum(n.values()) - n.get("answered", 0)]) for day, n in view.per_day],
        legend=("answered", "refused, error or busy")) if view.per_day else ""
    table = _table(f"Questions per day, last {view.days} days", ("day", "questions", "answered", "refused",
                                                                 "error or busy"), rows, numeric=(1, 2, 3, 4))
    return (f"<section aria-labelledby='questions'><h2 id='questions'>Questions</h2>{plot}"
            f"<details><summary>Questions per day as a table</summary>{table}</details></section>")


def gaps_section(view: OwnerView) -> str:
    items = []
    for t in view.topics:
        asked = "".join(f"<li>{e(q)}</li>" for q in t.questions)
        closest = "".join(f"<li>{_article(a)}</li>" for a in t.closest) or "<li>none</li>"
        items.append(f"<li><h3>{e(t.label)}</h3><p>{t.count} question{'s' if t.count != 1 else ''}; terms: "
                     f"{e(', '.join(t.terms) or '—')}; first {e(t.first[:10])}, last {e(t.last[:10])}.</p>"
                     f"<details><summary>The questions</summary><ul>{asked}</ul></details>"
                     f"<p>Closest articles the desk has:</p><ul>{closest}</ul></li>")
    body = (f"<ol>{''.join(items)}</ol>" if items
            else "<p class='muted'>No refused or down-rated questions in that time.</p>")
    return (f"<section aria-labelledby='gaps'><h2 id='gaps'>Coverage gaps</h2><p>Refused questions and questions "
            f"rated down, grouped by topic, the most asked first (last {view.days} days).</p>{body}</section>")


def feedback_section(view: OwnerView) -> str:
    rows = [(e(f.created.replace('T', ' ').rstrip('Z')), "up" if f.rating == "up" else "down", e(f.question),
             e(f.comment) or "<span class='muted'>—</span>", e(f.via)) for f in view.feedback]
    return (f"<section aria-labelledby='feedback'><h2 id='feedback'>Recent feedback</h2>"
            f"{_table('Newest first', ('when (UTC)', 'rating', 'question', 'comment', 'via'), rows)}</section>")


def slowest_section(view: OwnerView) -> str:
    rows = [(e(a.asked.replace('T', ' ').rstrip('Z')), f"{a.latency_ms / 1000:.2f} s", e(a.outcome), e(a.channel),
             e(a.question)) for a in view.slowest]
    return (f"<section aria-labelledby='slowest'><h2 id='slowest'>Slowest answers</h2>"
            f"{_table(f'Last {view.days} days, slowest first', ('when (UTC)', 'took', 'outcome', 'channel', 'question'), rows)}"
            f"</section>")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'>"
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def owner_html(view: OwnerView) -> str:
    logout = (f"<form method='post' action='{e(view.base)}/owner/logout'><input type='hidden' name='csrf' "
              f"value='{e(view.logout_form)}'><button type='submit'>Sign out</button></form>")
    header = f"<header><h1>Policy Desk: the owner's page</h1>{logout}</header>"
    nav = ("<nav aria-label='Sections'><ul><li><a href='#corpus'>Corpus</a></li><li><a href='#questions'>Questions"
           "</a></li><li><a href='#gaps'>Coverage gaps</a></li><li><a href='#feedback'>Recent feedback</a></li>"
           "<li><a href='#slowest'>Slowest answers</a></li></ul></nav>")
    sections = "".join(f(view) for f in (corpus_section, questions_section, gaps_section, feedback_section,
                                         slowest_section))
    return _page("Owner · Policy Desk", f"{header}{nav}<main>{sections}</main>")


def login_html(form: str, error: str = "", base: str = "") -> str:
    """The sign-in form: the token goes in the body of a POST, never in a URL."""
    message = f"<p class='error' role='alert'>{e(error)}</p>" if error else ""
    return _page("Sign in · Policy Desk owner", (
        f"<main><h1>Policy Desk: the owner's page</h1>{message}"
        f"<form method='post' action='{e(base)}/owner/login'><p><label for='token'>Owner token</label><br>"
        f"<input id='token' name='token' type='password' autocomplete='current-password' required "
        f"size='40'></p><input type='hidden' name='csrf' value='{e(form)}'>"
        f"<p><button type='submit'>Sign in</button></p></form>"
        f"<p class='muted'>Scripts send <code>Authorization: Bearer &lt;token&gt;</code> instead.</p></main>"))
