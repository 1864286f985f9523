"""URLs → Markdown article files in the corpus folder (`python -m assistant add`).

`fetch` gets one page over http(s) within bounds: timeouts, at most five redirects,
a size cap, HTML and PDF only. `add_urls` reads each page with the corpus readers
(corpus.py: trafilatura with the JSON-LD fallback, pypdf), writes it as Markdown with
front matter, and skips what the folder already holds: the same URL, or the same
text under another URL. One URL failing is reported with its reason; the rest go on.
Ingesting the folder is the caller's next step, as for any file dropped into it.

Only the operator's command line calls this: nothing in the chat or the API fetches.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import yaml

from .corpus import MAX_BYTES, article_from_bytes, iter_corpus, read_document, require_corpus_dir
from ..errors import FetchFailed, UnreadableFile
from ..schema import Article

TIMEOUT = 20.0  # seconds to connect, and between two pieces of the answer
TOTAL_TIMEOUT = 120.0  # seconds for a whole download, however slowly it trickles in
MAX_REDIRECTS = 5
MAX_PAGE_BYTES = MAX_BYTES  # what the corpus reader would read from a file
PAGE_TYPES = {"text/html": ".html", "application/xhtml+xml": ".html", "application/pdf": ".pdf"}
# Servers often label a PDF as a generic download; such an answer is taken only if it is one.
GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream", "application/download"})
USER_AGENT = "PolicyDesk/1.0 (adds articles to a policy desk's reading list)"
_TRACKING = re.compile(r"^(?:utm_\w+|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    url: str  # as asked
    final_url: str  # after redirects
    content_type: str  # "text/html", "application/pdf", … ("" if the server sent none)
    body: bytes
    last_modified: str = ""  # the Last-Modified header as an ISO date, or ""


def make_client(timeout: float = TIMEOUT, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client that follows at most `MAX_REDIRECTS` redirects, with `timeout` per step."""
    return httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout,
                        transport=transport, headers={
                            "User-Agent": USER_AGENT,
                            "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.1"})


def check_url(url: str) -> str:
    """`url` trimmed; raises FetchFailed unless it is an http(s) URL with a host."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchFailed(url, "not an http(s) URL: only http:// and https:// pages can be added")
    return url


def fetch(url: str, client: httpx.Client, *, accept: dict[str, str] | None = PAGE_TYPES,
          max_bytes: int = MAX_PAGE_BYTES, total_timeout: float = TOTAL_TIMEOUT) -> Page:
    """GET one http(s) URL.

    Args:
        url: the page; any other scheme is refused before anything is sent.
        client: from `make_client` (its timeout and redirect limit apply).
        accept: content types taken (None: any); others fail as "not an article".
        max_bytes: a larger answer fails as "too big" as soon as that shows.
        total_timeout: seconds the whole download may take.

    Raises:
        FetchFailed: with a short reason (HTTP status, timeout, too big, wrong type…).
    """
    url = check_url(url)
    started = time.monotonic()
    try:
        with client.stream("GET", url) as response:
            if not response.is_success:
                raise FetchFailed(url, f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            generic = ctype in GENERIC_TYPES and accept is PAGE_TYPES
            if accept is not None and ctype and ctype not in accept and not generic:
                raise FetchFailed(url, _not_an_article(ctype))
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise FetchFailed(url, _too_big(int(length), max_bytes))
            body, size = [], 0
            for piece in response.iter_bytes():
                size += len(piece)
                if size > max_bytes:
                    raise FetchFailed(url, _too_big(size, max_bytes, at_least=True))
                if time.monotonic() - started > total_timeout:
                    raise FetchFailed(url, f"timed out: still downloading after {total_timeout:g} s")
                body.append(piece)
            body = b"".join(body)
            if generic:
                if not _is_pdf(body):
                    raise FetchFailed(url, _not_an_article(ctype))
                ctype = "application/pdf"
            return Page(url=url, final_url=str(response.url), content_type=ctype, body=body,
                        last_modified=_http_date(response.headers.get("last-modified", "")))
    except httpx.TooManyRedirects:
        raise FetchFailed(url, f"too many redirects (more than {MAX_REDIRECTS})") from None
    except httpx.TimeoutException:
        raise FetchFailed(url, f"timed out: no answer within {client.timeout.read:g} s") from None
    except httpx.UnsupportedProtocol:  # the URL itself was checked: a redirect led elsewhere
        raise FetchFailed(url, "redirected to a URL that is not http(s)") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(url, f"cannot fetch: {exc or type(exc).__name__}") from None


# --- what the corpus already holds ------------------------------------------------


def normalise_url(url: str) -> str:
    """The form URLs are compared in: lowercase scheme and host, no fragment, no tracking
    parameters (utm_*, fbclid…), no trailing slash on the path."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/") or "/", query, ""))


def text_fingerprint(article: Article) -> str:
    """Same text, same fingerprint, whatever the URL, spacing or letter case."""
    return hashlib.sha256(" ".join(article.text.lower().split()).encode("utf-8")).hexdigest()


@dataclass
class Known:
    """What the corpus folder holds: article file by URL, and by text fingerprint."""

    urls: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def scan(cls, corpus_dir: Path) -> "Known":
        """Read every article in the folder (the folder is the one source of truth)."""
        corpus_dir = require_corpus_dir(corpus_dir)
        known = cls()
        for item in iter_corpus(corpus_dir):
            if isinstance(item, Article):
                via = _front_matter(corpus_dir / item.article_id).get("via", "")
                known.remember(item, item.article_id, item.url, str(via))
        return known

    def remember(self, article: Article, file: str, *urls: str) -> None:
        self.texts.setdefault(text_fingerprint(article), file)
        for url in urls:
            if url:
                self.urls.setdefault(normalise_url(url), file)

    def file_for(self, url: str) -> str | None:
        return self.urls.get(normalise_url(url))


# --- adding pages -----------------------------------------------------------------


@dataclass
class AddReport:
    added: list[tuple[str, str]] = field(default_factory=list)  # (url, file written)
    present: list[tuple[str, str]] = field(default_factory=list)  # (url, file that already holds it)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)

    def summary(self) -> str:
        lines = [f"  added    {url} → {file}" for url, file in self.added]
        lines += [f"  present  {url} (already in {file})" for url, file in self.present]
        lines += [f"  failed   {url}: {why}" for url, why in self.failed]
        head = f"added {len(self.added)}, already present {len(self.present)}, failed {len(self.failed)}"
        return "\n".join([head, *lines])


def add_urls(urls: Iterable[str], corpus_dir: Path, client: httpx.Client, *, known: Known | None = None,
             max_bytes: int = MAX_PAGE_BYTES, total_timeout: float = TOTAL_TIMEOUT) -> AddReport:
    """Fetch each URL and write it into `corpus_dir` as a Markdown article, unless the folder
    already holds it. Never raises for one URL: its reason goes into the report.

    Args:
        urls: pages to add, in order; a URL given twice is added once.
        corpus_dir: the corpus folder (must exist).
        client: from `make_client`.
        known: what the folder holds (`Known.scan`); updated with what is written.

    Returns:
        Which URLs were added (and as which file), already present, or failed and why.
    """
    corpus_dir = require_corpus_dir(corpus_dir)
    known = Known.scan(corpus_dir) if known is None else known
    report = AddReport()
    for url in urls:
        try:
            url = check_url(url)
            if file := known.file_for(url):
                report.present.append((url, file))
                continue
            page = fetch(url, client, max_bytes=max_bytes, total_timeout=total_timeout)
            if file := known.file_for(page.final_url):
                report.present.append((url, file))
                continue
            report_to, file = _write_page(page, corpus_dir, known)
            getattr(report, report_to).append((url, file))
        except FetchFailed as exc:
            report.failed.append((exc.url, exc.reason))
        except UnreadableFile as exc:
            report.failed.append((url, exc.reason))
    return report


def _write_page(page: Page, corpus_dir: Path, known: Known) -> tuple[str, str]:
    """("added", file) after writing the page, or ("present", file) when its text is there."""
    kind = PAGE_TYPES.get(page.content_type) or (".pdf" if _is_pdf(page.body) else ".html")
    body, meta = read_document(page.body, kind, page.final_url)
    host = (urlsplit(page.final_url).hostname or "").removeprefix("www.")
    fields = {
        "title": meta.get("title") or _title_from_url(page.final_url),
        "source": meta.get("source") or host,
        "date": meta.get("date") or (page.last_modified if kind == ".pdf" else ""),
        "url": page.final_url,
        "authors": list(meta.get("authors", ())),
    }
    if normalise_url(page.url) != normalise_url(page.final_url):
        fields["via"] = page.url  # what was asked for: asking again is then known without a fetch
    text = markdown(fields, body)
    try:
        article = article_from_bytes(text.encode("utf-8"), ".md", "", where=page.final_url)
    except UnreadableFile:  # what the page held was all furniture (menus, "Share", "Read more")
        raise UnreadableFile(page.final_url, "no article text found") from None
    if file := known.texts.get(text_fingerprint(article)):
        known.remember(article, file, page.url, page.final_url)  # this run asks no more for these URLs
        return "present", file
    name = file_name(fields["source"], fields["date"], fields["title"], page.final_url)
    if (corpus_dir / name).exists():  # another article with the same outlet, date and title
        name = f"{Path(name).stem}-{hashlib.sha256(page.final_url.encode()).hexdigest()[:8]}.md"
    _write_atomically(corpus_dir / name, text)
    known.remember(article, name, page.url, page.final_url)
    return "added", name


def markdown(fields: dict, body: str) -> str:
    """A corpus Markdown file: YAML front matter, a blank line, the body."""
    front = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=10_000)
    return f"---\n{front}---\n\n{body.strip()}\n"


def file_name(source: str, date: str, title: str, url: str) -> str:
    """`outlet_YYYY-MM-DD_title-words.md`: stable for the same article, readable in a listing."""
    outlet = _slug(source, 40) or "web"
    words = _slug(title, 80) or hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{outlet}_{date or 'undated'}_{words}.md"


def _slug(text: str, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rsplit("-", 1)[0] if len(slug) > limit else slug


def _title_from_url(url: str) -> str:
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[-_]+", " ", re.sub(r"\.\w{2,4}$", "", last)).strip()


def _write_atomically(path: Path, text: str) -> None:
    """Write via a hidden temporary file (which ingest skips), then rename into place."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".adding-", suffix=".md")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _front_matter(path: Path) -> dict:
    """The YAML front matter of a Markdown file we may have written ({} for anything else)."""
    if path.suffix.lower() not in (".md", ".markdown", ".txt"):
        return {}
    try:
        with open(path, encoding="utf-8-sig") as handle:
            if handle.readline().strip() != "---":
                return {}
            lines = []
            for line in handle:
                if line.strip() == "---":
                    data = yaml.safe_load("".join(lines))
                    return data if isinstance(data, dict) else {}
                lines.append(line)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        pass
    return {}


def _http_date(value: str) -> str:
    try:
        return email.utils.parsedate_to_datetime(value).date().isoformat() if value else ""
    except (TypeError, ValueError):
        return ""


def _is_pdf(body: bytes) -> bool:
    return body.lstrip()[:5] == b"%PDF-"


def _not_an_article(ctype: str) -> str:
    return f"not an article: the server sent {ctype} (only HTML and PDF pages are added)"


def _too_big(size: int, limit: int, at_least: bool = False) -> str:
    return f"too big: {'over ' if at_least else ''}{size / 1e6:.3g} MB, limit {limit / 1e6:.3g} MB"
