"""Article text and metadata from a page's schema.org JSON-LD (`articleBody` of a `NewsArticle`).

Some outlets render the story with JavaScript and ship it only inside
`<script type="application/ld+json">`; the markup then holds little but a photo
caption, and a markup extractor finds no article. `read_jsonld` returns what the
JSON-LD says (plain text: any markup in `articleBody` is reduced to its text), or
None when the page has no article object with a body. Pure: bytes in, values out.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

# schema.org types whose `articleBody` is the story: Article and its subtypes
# (NewsArticle, OpinionNewsArticle, ReportageNewsArticle, ScholarlyArticle…), blog posts, reports.
_ARTICLE_TYPE = re.compile(r"(?:Article|BlogPosting|Report)$")
_MAX_DEPTH = 12  # JSON-LD graphs are shallow; a deeper one is not worth walking


@dataclass(frozen=True)
class JsonLdArticle:
    body: str
    title: str = ""
    date: str = ""  # as written in the page ("2020-01-20T10:00:08+08:00"); the caller normalises it
    source: str = ""
    url: str = ""
    authors: tuple[str, ...] = ()


def read_jsonld(raw: bytes | str) -> JsonLdArticle | None:
    """The article object with the longest `articleBody` in the page's JSON-LD, or None."""
    best: JsonLdArticle | None = None
    for block in _script_blocks(raw):
        for node in _article_nodes(block, 0):
            body = _plain(node.get("articleBody"))
            if body and (best is None or len(body) > len(best.body)):
                best = JsonLdArticle(
                    body=body,
                    title=_text(node.get("headline") or node.get("name")),
                    date=_text(node.get("datePublished") or node.get("dateCreated")),
                    source=next(iter(_names(node.get("publisher"))), ""),
                    url=_url(node.get("url") or node.get("mainEntityOfPage")),
                    authors=tuple(_names(node.get("author"))),
                )
    return best


def _script_blocks(raw: bytes | str) -> list:
    """Parsed JSON of every `application/ld+json` script; blocks that do not parse are skipped."""
    import lxml.html  # imported here: only HTML pages need it

    try:
        tree = lxml.html.fromstring(raw)
    except (ValueError, TypeError, lxml.etree.ParserError):
        return []
    blocks = []
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            blocks.append(json.loads(script.text, strict=False))  # strict=False: raw newlines in strings
        except ValueError:
            continue
    return blocks


def _article_nodes(value, depth: int):
    """Dicts typed as an article anywhere in a JSON-LD value (`@graph`, lists, nesting)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, list):
        for item in value:
            yield from _article_nodes(item, depth + 1)
    elif isinstance(value, dict):
        types = value.get("@type")
        types = types if isinstance(types, list) else [types]
        if any(isinstance(t, str) and _ARTICLE_TYPE.search(t) for t in types):
            yield value
        for key, item in value.items():
            if key != "articleBody" and isinstance(item, (dict, list)):
                yield from _article_nodes(item, depth + 1)


def _plain(value) -> str:
    """`articleBody` as plain text, one paragraph per block, blank lines between."""
    if isinstance(value, list):
        value = "\n\n".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str) or not value.strip():
        return ""
    if re.search(r"<(?:p|br|div|a|em|strong|span|h\d)\b", value, re.IGNORECASE):
        value = _markup_text(value)
    value = html.unescape(value)
    paragraphs = (" ".join(p.split()) for p in re.split(r"\s*\n\s*", value))
    return "\n\n".join(p for p in paragraphs if p)


def _markup_text(fragment: str) -> str:
    """The text of an HTML fragment, block elements on lines of their own; scripts dropped."""
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return re.sub(r"<[^>]*>", " ", fragment)
    for bad in root.xpath(".//script|.//style|.//template"):
        bad.drop_tree()
    for block in root.xpath(".//p|.//div|.//br|.//li|.//h1|.//h2|.//h3|.//h4|.//h5|.//h6|.//blockquote"):
        block.tail = "\n" + (block.tail or "")
    return root.text_content()


def _text(value) -> str:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), "")
    return " ".join(value.split()) if isinstance(value, str) else ""


def _names(value) -> list[str]:
    """Names of people or organisations: a string, a `{"name": …}` object, a list of either, or a
    JSON string of one (some pages double-encode `author`)."""
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, str):
        value = [value]
    names = []
    for item in value if isinstance(value, list) else []:
        name = _text(item.get("name") if isinstance(item, dict) else item)
        if name and name not in names:
            names.append(name)
    return names


def _url(value) -> str:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    url = _text(value)
    return url if url.startswith(("http://", "https://")) else ""
