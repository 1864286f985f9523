"""URLs → Markdown article files in the corpus folder (`python -m assistant add`).

`fetch` gets one page over http(s) within bounds: timeouts, at most five redirects,
a size cap, HTML and PDF only, and only from public addresses: a loopback, private,
link-local, unique-local or cloud-metadata address is refused (checked on the address
connected to, for the URL and each redirect) unless the operator allows its origin by
name (`make_client(allow=…)`: `--allow`, ASSISTANT_FETCH_ALLOW). Connections go direct
(HTTP_PROXY is not used: a proxy would connect where it pleases). `add_urls` reads each
page with the corpus readers (corpus.py: trafilatura with the JSON-LD fallback, pypdf),
writes it as Markdown with front matter, and skips what the folder already holds: the same URL, or the same
text under another URL. One URL failing is reported with its reason; the rest go on.
Ingesting the folder is the caller's next step, as for any file dropped into it.

Only the operator's command line calls this: nothing in the chat or the API fetches. But the
URLs it fetches are often someone else's choice (a feed's links, a page's redirect), hence the
address check.
"""

from __future__ import annotations

import email.utils
import hashlib
import ipaddress
import os
import re
import socket
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpcore
import httpx
import yaml

from .corpus import MAX_BYTES, article_from_bytes, iter_corpus, read_document, require_corpus_dir
from ..errors import FetchFailed, UnreadableFile
from ..schema import Article
from ..text import shown

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


def make_client(timeout: float = TIMEOUT, transport: httpx.BaseTransport | None = None,
                allow: Iterable[str] = ()) -> httpx.Client:
    """An httpx client for `fetch`, with `timeout` per step, that connects to public addresses
    only (`Guarded`), except for the origins in `allow` (`http://127.0.0.1:8799`). `fetch`
    follows the redirects itself. A `transport` given is used as it is (no address check)."""
    return httpx.Client(follow_redirects=False, timeout=timeout, transport=transport or Guarded(allow),
                        headers={"User-Agent": USER_AGENT,
                                 "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.1"})


# --- which addresses may be fetched ------------------------------------------------

# Cloud instance metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6; Alibaba; AWS ECS),
# named as such when refused. All are link-local, unique-local or shared addresses anyway.
METADATA = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "fd00:ec2::254", "100.100.100.200",
                                                "169.254.170.2")))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def not_public(address: str) -> str:
    """Why the IP `address` may not be fetched from ("a loopback address", …); "" when it is public.
    An IPv6 address carrying an IPv4 one (mapped, compatible, 6to4, NAT64) is judged by that one."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and (ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1)):  # ::a.b.c.d
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            why = not_public(str(carried))
            return f"{why} ({ip} is {carried})" if why else ""
    for refused, why in ((ip in METADATA, "a cloud metadata address"),
                         (ip.is_unspecified, "the unspecified address (this machine)"),
                         (ip.is_loopback, "a loopback address"),
                         (ip.is_link_local, "a link-local address"),
                         (ip.version == 6 and ip in _UNIQUE_LOCAL, "a unique-local address"),
                         (ip.is_multicast, "a multicast address"),
                         (ip.is_reserved, "a reserved address"),
                         (ip.is_private, "a private address"),
                         (not ip.is_global, "not a public address")):
        if refused:
            return why
    return ""


class Refused(Exception):
    """A connection `PublicOnly` will not make: `host` is, or resolves to, `address`, which is `why`."""

    def __init__(self, host: str, address: str, why: str):
        super().__init__(f"{host} is {why}" if host == address else f"{host} resolves to {address}, {why}")
        self.host, self.address, self.why = host, address, why


class PublicOnly(httpcore.NetworkBackend):
    """httpcore's network backend, connecting to public addresses only. The host name is resolved
    here, every address it has is checked, and the connection goes to an address checked: a DNS
    answer that changes between the check and the connection (rebinding) cannot lead elsewhere."""

    def __init__(self):
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in found if info[0] in (socket.AF_INET, socket.AF_INET6)))
        for address in addresses:  # every one: a name with a public and a private address is refused
            if why := not_public(address):
                raise Refused(host, address, why)
        error = httpcore.ConnectError(f"{host} has no IPv4 or IPv6 address")
        for address in addresses:
            try:
                return self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address, as socket.create_connection does
                error = exc
        raise error


class _PublicTransport(httpx.HTTPTransport):
    def __init__(self):
        super().__init__()
        # httpx 0.28's transport takes no network backend; its connection pool (`_pool`) does.
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=PublicOnly())


class Guarded(httpx.BaseTransport):
    """Requests to an origin in `allow` go out as they are; every other request may only connect
    to a public address (`PublicOnly`). Origins match exactly: scheme, host and port."""

    def __init__(self, allow: Iterable[str] = ()):
        self.allow = frozenset(allowed_origin(o) for o in allow)
        self.public = _PublicTransport()
        self.open = httpx.HTTPTransport() if self.allow else None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.open is not None and origin(request.url) in self.allow:
            return self.open.handle_request(request)
        return self.public.handle_request(request)

    def close(self) -> None:
        self.public.close()
        if self.open is not None:
            self.open.close()


def origin(url: str | httpx.URL) -> str:
    """`scheme://host:port` of an http(s) URL, the port always written: the form origins are
    compared in (`http://127.0.0.1` and `http://127.0.0.1:80` are one origin)."""
    url = httpx.URL(url)
    host = url.raw_host.decode("ascii").lower()
    return f"{url.scheme}://{f'[{host}]' if ':' in host else host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def allowed_origin(text: str) -> str:
    """An origin the operator allows (`--allow`, ASSISTANT_FETCH_ALLOW), in `origin`'s form.

    Raises:
        ValueError: not `http(s)://host[:port]`.
    """
    try:
        url = httpx.URL(text.strip())
    except httpx.InvalidURL:
        url = None
    if (url is None or url.scheme not in ("http", "https") or not url.host or url.userinfo
            or url.raw_path not in (b"", b"/") or url.fragment):
        raise ValueError(f"{text!r} is not an origin like http://127.0.0.1:8799 (scheme, host and port only)")
    return origin(url)


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
        FetchFailed: with a short reason (HTTP status, timeout, too big, wrong type, refused…).
    """
    url = check_url(url)
    started = time.monotonic()
    try:
        with _followed(url, client) as response:
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
    except httpx.TimeoutException:
        raise FetchFailed(url, f"timed out: no answer within {client.timeout.read:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FetchFailed(url, f"cannot fetch: {exc or type(exc).__name__}") from None


@contextmanager
def _followed(url: str, client: httpx.Client) -> Iterator[httpx.Response]:
    """The streamed response at the end of `url`'s redirects, followed one at a time: each must
    be http(s), and goes through the client's address check like the first (`Guarded`)."""
    request = client.build_request("GET", url)
    for redirects in range(MAX_REDIRECTS + 1):
        try:
            response = client.send(request, stream=True)
        except Refused as exc:
            where = f"redirected to {request.url}; " if redirects else ""
            raise FetchFailed(url, f"refused: {where}{exc} (to fetch from it anyway, allow "
                                   f"{origin(request.url)} with --allow or ASSISTANT_FETCH_ALLOW)") from None
        if response.next_request is None:
            try:
                yield response
            finally:
                response.close()
            return
        response.close()
        request = response.next_request
        if request.url.scheme not in ("http", "https"):
            raise FetchFailed(url, "redirected to a URL that is not http(s)")
    raise FetchFailed(url, f"too many redirects (more than {MAX_REDIRECTS})")


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
        lines = [f"  added    {shown(url)} → {shown(file)}" for url, file in self.added]
        lines += [f"  present  {shown(url)} (already in {shown(file)})" for url, file in self.present]
        lines += [f"  failed   {shown(url)}: {shown(why)}" for url, why in self.failed]
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
