"""RSS and Atom feeds → new articles in the corpus folder (`python -m assistant feeds`).

A feeds file lists feed URLs, one a line (`#` starts a comment). Each feed is fetched
with the same bounds as a page (fetch.py) and parsed from those bytes by feedparser,
which never fetches anything itself here. Every entry's link goes through `add_urls`,
so entries already in the folder (by URL, or by text under another URL) are skipped,
and one failing feed or entry does not stop the others.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from ..errors import CorpusError, FetchFailed
from .fetch import MAX_PAGE_BYTES, TOTAL_TIMEOUT, AddReport, Known, add_urls, fetch
from ..text import shown

MAX_FEED_BYTES = 5_000_000
MIN_INTERVAL = 60.0  # seconds: `--every` shorter than a minute would only hammer the feeds
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass
class FeedReport:
    feed: str
    entries: int = 0
    error: str = ""  # why the feed itself could not be read
    articles: AddReport = field(default_factory=AddReport)

    def summary(self) -> str:
        if self.error:
            return f"{shown(self.feed)}: failed: {shown(self.error)}"
        a = self.articles
        entries = f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}"
        lines = [f"{shown(self.feed)}: {entries}: {len(a.added)} added, "
                 f"{len(a.present)} already present, {len(a.failed)} failed"]
        lines += [f"  added    {shown(url)} → {shown(file)}" for url, file in a.added]
        lines += [f"  failed   {shown(url)}: {shown(why)}" for url, why in a.failed]
        return "\n".join(lines)


def read_feed_list(path: Path) -> list[str]:
    """Feed URLs from a file, one a line; blank lines and `#` comments skipped.

    Raises:
        CorpusError: the file is missing or unreadable.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CorpusError(f"no feeds file at {path}: list RSS or Atom feed URLs there, one a line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the feeds file {path}: {exc}") from None
    lines = (line.strip() for line in text.splitlines())
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def feed_links(feed_url: str, client: httpx.Client, *, max_bytes: int = MAX_FEED_BYTES,
               total_timeout: float = TOTAL_TIMEOUT) -> list[str]:
    """The entries' links of one RSS or Atom feed, in feed order, each once.

    Raises:
        FetchFailed: the feed cannot be fetched, or is not a readable RSS or Atom feed.
    """
    import feedparser  # imported here: only the feeds command needs it

    page = fetch(feed_url, client, accept=None, max_bytes=max_bytes, total_timeout=total_timeout)
    # Bytes in, so feedparser does no fetching of its own; the location resolves relative links.
    parsed = feedparser.parse(page.body, response_headers={"content-location": page.final_url,
                                                           "content-type": page.content_type or "application/xml"})
    links = []
    for entry in parsed.entries:
        link = entry.get("link") or next((l.get("href") for l in entry.get("links", []) if l.get("href")), "")
        if link and link not in links:
            links.append(link)
    # A malformed feed whose entries still show their links is read, as feed readers do.
    if not links and parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        problem = getattr(problem, "getMessage", lambda: str(problem))() or type(problem).__name__
        raise FetchFailed(feed_url, f"not a readable RSS or Atom feed ({problem})")
    if not links and not parsed.get("version"):
        raise FetchFailed(feed_url, "not an RSS or Atom feed")
    return links


def follow_feeds(feed_urls: list[str], corpus_dir: Path, client: httpx.Client, *,
                 max_bytes: int = MAX_PAGE_BYTES, total_timeout: float = TOTAL_TIMEOUT) -> list[FeedReport]:
    """Add each feed's new entries to `corpus_dir`; one report per feed, in order.

    The folder is read once, then every written article is remembered, so a page listed
    twice, or by two feeds, is added once.
    """
    known = Known.scan(corpus_dir)
    reports = []
    for feed_url in feed_urls:
        report = FeedReport(feed_url)
        reports.append(report)
        try:
            links = feed_links(feed_url, client, total_timeout=total_timeout)
        except FetchFailed as exc:
            report.error = exc.reason
            continue
        report.entries = len(links)
        report.articles = add_urls(links, corpus_dir, client, known=known, max_bytes=max_bytes,
                                   total_timeout=total_timeout)
    return reports


def parse_interval(text: str) -> float:
    """Seconds in "30m", "1h", "2h30m", "90s", "1d"; at least `MIN_INTERVAL`.

    Raises:
        ValueError: not such a duration, or shorter than a minute.
    """
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 2h30m")
    d, h, m, s = (int(g or 0) for g in match.groups())
    seconds = float(((d * 24 + h) * 60 + m) * 60 + s)
    if seconds < MIN_INTERVAL:
        raise ValueError(f"{text!r} is shorter than a minute")
    return seconds


def run_every(interval: float, job: Callable[[], int], *, rounds: int | None = None,
              sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
              say: Callable[[str], None] = print) -> int:
    """Run `job` now and then every `interval` seconds (from one start to the next), `rounds`
    times or until interrupted; returns the last round's exit code."""
    code, done = 0, 0
    while rounds is None or done < rounds:
        started = clock()
        code = job()
        done += 1
        if rounds is not None and done >= rounds:
            break
        wait = max(0.0, interval - (clock() - started))
        say(f"next run in {wait / 60:.0f} min (Ctrl-C stops)")
        sleep(wait)
    return code
