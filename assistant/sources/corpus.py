"""Corpus files → `Article`s: front matter, HTML, PDF, and page-furniture removal.

`load_article` reads one file and raises `UnreadableFile` with a short reason;
`iter_corpus` walks a folder and yields that exception instead of raising it,
so one bad file is reported by name and the rest still load. `clean_text`
drops scraped page furniture by rule and keeps every other line verbatim,
because quotes are later checked character for character against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Iterator

import yaml
from pypdf import PdfReader

from ..errors import CorpusError, OutsideCorpus, UnreadableFile
from .jsonld import read_jsonld
from ..schema import Article

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
MAX_BYTES = 20_000_000
# A page's JSON-LD `articleBody` replaces the text found in its markup when it has this many
# times the words (a script-rendered page: the markup held a caption or a teaser).
JSONLD_RATIO = 2

# Lines that are page furniture when they are the whole line (compared lowercased).
BOILERPLATE = frozenset(
    phrase.lower()
    for phrase in (
        "Advertisement", "Learn more", "Read more", "Get more with myNEWS",
        "A personalised news feed of stories that matter to you", "Sign up",
        "Subscribe", "Share", "Share this article", "Related", "Related articles",
        "Most read", "Continue reading", "Click here", "Skip to content",
    )
)
BOILERPLATE_PREFIXES = ("get more with mynews",)

_TIMESTAMP = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_NUMBER = re.compile(r"^\d+$")
# A caption ending in a credit: "... Photo: AP", "... (Photo by Jane Doe)", "... Jane Doe/AFP/Getty Images".
_CREDIT = re.compile(
    r"(?:\b(?:Photo|Photograph|Image|Credit):\s*(?P<credit>[^:]{1,80})|\(Photo by [^()]{1,80}\))$"
)
# Longer "captions" are photo galleries: many captions run together, facts included.
MAX_CAPTION_WORDS = 60
_AGENCY_CREDIT = re.compile(r"[A-Z][\w.'’&-]*(?: [\w.'’&-]+){0,4}/[A-Z][\w.'’&/ -]*$")
# A link to another story: "►Headline", "More:Headline", "PHOTOS: Headline".
_LINK = re.compile(r"^(?:►|[^:]{2,60}[^\d:/]:(?!//)\S|[A-Z][A-Z0-9'’ ]{2,}:\s)")
# "CNN —", "(CNN) —", "London CNN Business —": a dateline whose story starts on the next line.
_DATELINE = re.compile(r"^[^.!?]{1,60}\s[—–]$")
_BYLINE = re.compile(r"^By (?:[A-Z][\w.'’-]*|and|,|&|\s)+$")
_SENTENCE_END = tuple('.!?:;”"’)…')
_BULLET = re.compile(r"^(?:[•*-]\s|\d+\.\s)")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})

_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y")


def load_article(path: Path, corpus_dir: Path, *, max_bytes: int = MAX_BYTES) -> Article:
    """Read one corpus file into a cleaned `Article`.

    Args:
        path: the file; its suffix picks the reader (Markdown/text, HTML, PDF).
        corpus_dir: the corpus folder; `article_id` is `path` relative to it.
        max_bytes: larger files are rejected without being read.

    Returns:
        The article, with `content_hash` covering its text and metadata.

    Raises:
        UnreadableFile: with a short reason a user can act on.
    """
    path, corpus_dir = Path(path), Path(corpus_dir)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnreadableFile(path, f"too large: {_mb(size)} MB, limit {_mb(max_bytes)} MB")
        if size == 0:
            raise UnreadableFile(path, "empty")
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, f"cannot read: {exc.strerror or exc}") from None
    return article_from_bytes(raw, path.suffix, path.relative_to(corpus_dir).as_posix(), where=path)


def read_document(raw: bytes, suffix: str, where) -> tuple[str, dict]:
    """Body text (before cleaning) and metadata of a document's bytes; `suffix` picks the
    reader, `where` (a path or URL) names it in the `UnreadableFile` it may raise."""
    suffix = suffix.lower()
    if suffix == ".pdf":
        return _read_pdf(where, raw)
    if suffix in (".html", ".htm"):
        return _read_html(where, raw)
    return _read_text(where, raw)


def article_from_bytes(raw: bytes, suffix: str, article_id: str, where) -> Article:
    """The cleaned `Article` a corpus file with these bytes and this suffix reads as."""
    suffix = suffix.lower()
    body, meta = read_document(raw, suffix, where)
    text = clean_text(body, meta.get("title", ""))
    if not text:
        raise UnreadableFile(where, "no article text found" if suffix in (".html", ".htm") else "empty")
    fields = {
        "title": meta.get("title", ""),
        "source": meta.get("source", ""),
        "date": meta.get("date", ""),
        "url": meta.get("url", ""),
        "authors": tuple(meta.get("authors", ())),
    }
    # Hash metadata too, so a fixed title or date counts as a change on re-ingest.
    payload = json.dumps([text, fields["title"], fields["source"], fields["date"],
                          fields["url"], list(fields["authors"])], ensure_ascii=False)
    return Article(
        article_id=article_id,
        text=text,
        content_hash=hashlib.sha256(payload.encode("utf-8")).hexdigest(),
        **fields,
    )


def require_corpus_dir(corpus_dir: Path) -> Path:
    """`corpus_dir` as a Path; raises CorpusError when it is missing or not a folder."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path is not a folder: {corpus_dir}")
    return corpus_dir


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The candidate article files under `corpus_dir`, recursively, in sorted order; hidden files
    and folders are skipped, as are files whose suffix is not in `SUFFIXES`. Links are not yet
    checked: `iter_corpus` reports those that lead out of the folder.

    Raises:
        CorpusError: if `corpus_dir` is missing or is not a folder.
    """
    corpus_dir = require_corpus_dir(corpus_dir)
    return sorted(
        (p for p in corpus_dir.rglob("*")
         if p.suffix.lower() in SUFFIXES
         and not any(part.startswith(".") for part in p.relative_to(corpus_dir).parts)),
        key=lambda p: p.relative_to(corpus_dir).as_posix(),
    )


def iter_corpus(corpus_dir: Path, *, max_bytes: int = MAX_BYTES) -> Iterator[Article | UnreadableFile]:
    """Yield an `Article` per readable file of `corpus_files` and an `UnreadableFile` (not
    raised) per bad one, one file at a time. A link to a file outside the folder is not
    followed (an `OutsideCorpus`).

    Args:
        corpus_dir: the corpus folder.
        max_bytes: passed on to `load_article`.

    Raises:
        CorpusError: if `corpus_dir` is missing or is not a folder.
    """
    corpus_dir = require_corpus_dir(corpus_dir)
    paths = corpus_files(corpus_dir)
    root = corpus_dir.resolve()
    for path in paths:
        if not _inside(path, root):
            # A link out of the folder would put any file the ingest can read into answers.
            yield OutsideCorpus(path)
            continue
        if not path.is_file():  # a folder named like an article, a device, a pipe
            continue
        try:
            article = load_article(path, corpus_dir, max_bytes=max_bytes)
        except UnreadableFile as exc:
            article = exc
        except Exception as exc:  # a reader's bug or a file nobody foresaw: this file fails, not the run
            article = UnreadableFile(path, f"could not be read ({type(exc).__name__}: {exc})")
        yield article


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, links resolved, is in the folder `root`."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a loop of links
        return False


# --- readers: each returns (body text, metadata dict) ------------------------------


def _read_text(path: Path, raw: bytes) -> tuple[str, dict]:
    """Markdown or plain text, with optional YAML front matter."""
    text = _decode(path, raw)
    meta: dict = {}
    lines = text.split("\n")
    if lines[0].strip() == "---":
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
        if end is None:
            raise UnreadableFile(path, "front matter has no closing '---'")
        try:
            data = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise UnreadableFile(path, f"malformed front matter: {problem}") from None
        if not isinstance(data, dict):
            raise UnreadableFile(path, "malformed front matter: not a mapping of fields")
        meta = _front_matter(data)
        text = "\n".join(lines[end + 1:])
    return text, meta


def _front_matter(data: dict) -> dict:
    """The Article fields from parsed front matter."""
    authors = data.get("authors") or data.get("author") or ()
    if isinstance(authors, str):
        authors = re.split(r"\s*[;,]\s*|\s+and\s+", authors)
    elif not isinstance(authors, (list, tuple)):  # `authors: 42`
        authors = [authors]
    return {
        "title": _str(data.get("title")),
        "source": _str(data.get("source")),
        "date": normalise_date(data.get("date")),
        "url": _str(data.get("url")),
        "authors": tuple(s for s in (_str(a) for a in authors) if s),
    }


def _read_html(path: Path, raw: bytes) -> tuple[str, dict]:
    """Article text and metadata of a saved web page, via trafilatura."""
    # Imported here: it is slow to import and only HTML files need it.
    try:
        import trafilatura
    except ImportError as exc:  # a broken install should cost the HTML files, not the run
        raise UnreadableFile(path, f"HTML reader unavailable: {exc}") from None

    # Extraction returns plain text only, so no markup in the page is ever interpreted.
    try:
        text = trafilatura.extract(raw, output_format="txt", include_comments=False,
                                   include_tables=True, with_metadata=False, favor_precision=True) or ""
        ld = read_jsonld(raw)
        doc = trafilatura.extract_metadata(raw) if text.strip() or ld else None
    except Exception as exc:  # lxml and trafilatura raise many types on odd input
        raise UnreadableFile(path, f"not readable HTML: {exc}") from None
    # trafilatura puts one paragraph per line; blank lines between them, as in Markdown.
    text = "\n\n".join(line for line in text.splitlines() if line.strip())
    # Pages that render the story with JavaScript keep it in JSON-LD; the markup then
    # yields a caption or nothing. Their `articleBody` wins when it is much the longer.
    if ld and len(ld.body.split()) > JSONLD_RATIO * len(text.split()):
        text = ld.body
    if not text:
        raise UnreadableFile(path, "no article text found")
    meta = {}
    if doc is not None:
        meta = {
            "title": _str(doc.title),
            "source": _str(doc.sitename or doc.hostname),
            "date": normalise_date(doc.date),
            "url": _str(doc.url),
            "authors": tuple(a.strip() for a in (doc.author or "").split(";") if a.strip()),
        }
    if ld:  # what trafilatura's metadata left empty
        for key, value in (("title", ld.title), ("source", ld.source), ("date", normalise_date(ld.date)),
                           ("url", ld.url), ("authors", ld.authors)):
            meta[key] = meta.get(key) or value
    return text, meta


def _read_pdf(path: Path, raw: bytes) -> tuple[str, dict]:
    """Text layer of a PDF, pages separated by blank lines."""
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile(path, "encrypted PDF")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = _str(reader.metadata.title) if reader.metadata else ""
    except UnreadableFile:
        raise
    except Exception as exc:  # pypdf raises many types on broken files
        raise UnreadableFile(path, f"not a readable PDF: {exc}") from None
    if not any(pages):
        raise UnreadableFile(path, "no text layer (scanned PDF?)")
    return "\n\n".join(p for p in pages if p), {"title": title}


# --- helpers ----------------------------------------------------------------------


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 (with or without BOM), else cp1252; NUL bytes mean a binary file."""
    if b"\x00" in raw:
        raise UnreadableFile(path, "binary file, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile(path, "not UTF-8 or cp1252 text")


def normalise_date(value) -> str:
    """An ISO "YYYY-MM-DD" from a date, datetime or date-like string; "" if unknown."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _str(value)
    # A timestamp ("2022-06-12T10:00:00Z") only needs its date part.
    match = re.match(r"(\d{4}-\d{2}-\d{2})(?:[T ]|$)", text)
    if match:
        text = match.group(1)
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return ""


def _str(value) -> str:
    """Metadata value as a trimmed string; None becomes ""."""
    return "" if value is None else " ".join(str(value).split())


def _mb(n: int) -> str:
    """Bytes as megabytes, short: 20000000 → "20", 1500 → "0.0015"."""
    return f"{n / 1_000_000:.3g}"


# --- cleaning ---------------------------------------------------------------------


def clean_text(text: str, title: str = "") -> str:
    """Drop page furniture by rule; every kept line is kept verbatim (bullets lose indent)."""
    lines, _ = _clean_lines(text, title)
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def _clean_lines(text: str, title: str = "") -> tuple[list[str], list[tuple[str, str]]]:
    """Kept lines, and the dropped ones as (rule, line) pairs."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line.lstrip() if _BULLET.match(line.lstrip()) else line for line in lines]
    drop: dict[int, str] = {}
    title_key = _key(title)
    prose = [i for i, line in enumerate(lines) if _is_prose(line)]

    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        low = s.lower()
        if low in BOILERPLATE or low.startswith(BOILERPLATE_PREFIXES):
            drop[i] = "boilerplate"
        elif _TIMESTAMP.match(s):
            drop[i] = "video"
            # A video's caption is printed twice right after its timestamp.
            j = _next_text(lines, i)
            k = _next_text(lines, j)
            if k is not None and lines[j].strip() == lines[k].strip():
                drop[j] = drop[k] = "video"
        elif _NUMBER.match(s):
            # Comment and share counts sit outside the story; numbers inside it are list headings.
            if not prose or i < prose[0] or i > prose[-1]:
                drop[i] = "number"
        elif not any(c.isalnum() for c in s):
            drop[i] = "separator"
        elif title_key and _key(s) == title_key:
            drop[i] = "title"
        elif _DATELINE.match(s) or (_BYLINE.match(s) and len(s.split()) <= 8):
            drop[i] = "byline"
        elif (_LINK.match(s) and len(s.split()) <= 25 and not s.endswith(_SENTENCE_END)
              and _blank(lines, i - 1) and _blank(lines, i + 1)):
            drop[i] = "link"
        elif len(s.split()) <= MAX_CAPTION_WORDS and (
            ((m := _CREDIT.search(s)) and len((m.group("credit") or "x").split()) <= 6)
            or (not s.endswith(_SENTENCE_END) and _AGENCY_CREDIT.search(s))
        ):
            drop[i] = "credit"

    # Same line twice in a row (blank lines between): a caption, or a pasted repeat.
    prev = None
    for i, line in enumerate(lines):
        if not line.strip() or i in drop:
            continue
        if prev is not None and lines[prev].strip() == line.strip():
            drop[i] = "duplicate"
            if _is_orphan(line, max_words=19):
                drop[prev] = "duplicate"
        prev = i

    # Paragraphs as they read once the furniture is gone: runs of kept lines between blanks.
    paragraphs: list[list[int]] = [[]]
    for i, line in enumerate(lines):
        if line.strip() and i not in drop:
            paragraphs[-1].append(i)
        elif not line.strip() and paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [p for p in paragraphs if p]

    # A paragraph of short unpunctuated lines before the story starts is a tag, dek or byline.
    # Inside the story a one-line one is a section heading (kept), unless it echoes the
    # paragraph before it more than the one after: then it links to a related story.
    started = False
    for n, para in enumerate(paragraphs):
        if not started and all(_is_orphan(lines[i]) for i in para):
            drop.update((i, "orphan-lead") for i in para)
        elif started and len(para) == 1 and _is_orphan(line := lines[para[0]]):
            before = lines[paragraphs[n - 1][-1]]
            after = lines[paragraphs[n + 1][0]] if n + 1 < len(paragraphs) else ""
            echo = _shared_words(line, before)
            if (_is_prose(before) and (not after or _is_prose(after))
                    and echo >= 2 and echo > _shared_words(line, after)):
                drop[para[0]] = "orphan-inline"
        started = started or any(_is_prose(lines[i]) for i in para)

    return (
        [line for i, line in enumerate(lines) if i not in drop],
        [(drop[i], lines[i]) for i in sorted(drop)],
    )


def _is_prose(line: str) -> bool:
    """A line of running text: ends like a sentence and is not a bullet or a short caption."""
    s = line.strip()
    return s.endswith(_SENTENCE_END) and not _BULLET.match(s)


def _is_orphan(line: str, max_words: int = 12) -> bool:
    """A short line with no sentence-final punctuation that is not a bullet or heading."""
    s = line.strip()
    return (
        len(s.split()) <= max_words
        and not s.endswith(_SENTENCE_END)
        and not _BULLET.match(s)
        and not s.startswith("#")
    )


def _shared_words(a: str, b: str) -> int:
    """How many distinct words longer than three letters `a` and `b` share."""
    words = lambda s: {w for w in re.findall(r"\w+", s.lower()) if len(w) > 3}
    return len(words(a) & words(b))


def _next_text(lines: list[str], i: int | None) -> int | None:
    """Index of the next non-blank line after `i`, or None."""
    return None if i is None else next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)


def _blank(lines: list[str], i: int) -> bool:
    """True if line `i` is blank or outside the text."""
    return not (0 <= i < len(lines)) or not lines[i].strip()


def _key(s: str) -> str:
    """Comparison form of a line: lowercased, straight quotes, single spaces."""
    return " ".join(s.translate(_QUOTES).lower().split())
