"""What a reader takes away from an answer: a link that opens the article at the quote, and
the answer with its numbered sources as Markdown to paste elsewhere. Pure functions.

The link is the article's URL with a text fragment (WICG "Scroll to Text Fragment",
`#:~:text=start,end`): browsers that support it scroll to the quoted words and highlight them;
others simply open the article.
"""

from __future__ import annotations

import re
from urllib.parse import quote as percent_encode

_HTTP_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)
# A quote of at most this many words is matched whole; a longer one by its first and last words
# (a range), which still matches when the page words the middle slightly differently.
WHOLE_QUOTE_WORDS = 12
RANGE_WORDS = 6
# Characters CommonMark would read as markup in pasted text.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")
_CITE = re.compile(r"\[(\d+)\]")


def safe_url(url: str) -> str:
    """The URL when it is http(s), else ""; `javascript:` and friends never become links."""
    url = (url or "").strip()
    return url if _HTTP_URL.match(url) else ""


def fragment_term(text: str) -> str:
    """One term of a text directive: percent-encoded, with the spec's `-`, `,` and `&` encoded too."""
    return percent_encode(text, safe="").replace("-", "%2D")


def text_directive(quote: str) -> str:
    """`text=…` for `quote`: the whole quote when short, else `start,end` (its first and last words).
    A quote spanning paragraphs is always a range: one term cannot match across blocks."""
    words = quote.split()
    if not words:
        return ""
    if len(words) <= WHOLE_QUOTE_WORDS and "\n" not in quote.strip():
        return "text=" + fragment_term(" ".join(words))
    n = min(RANGE_WORDS, len(words) // 2)
    return "text=" + fragment_term(" ".join(words[:n])) + "," + fragment_term(" ".join(words[-n:]))


def quote_link(url: str, quote: str) -> str | None:
    """The article URL that opens at `quote` (a text fragment); None without an http(s) URL.

    An existing fragment (`#section`) is kept, as the spec allows (`#section:~:text=…`)."""
    url = safe_url(url)
    if not url:
        return None
    directive = text_directive(quote)
    if not directive:
        return url
    base, _, fragment = url.partition("#")
    fragment = fragment.split(":~:", 1)[0]
    return f"{base}#{fragment}:~:{directive}"


def date_label(date: str) -> str:
    """An article's date as shown to readers."""
    return date or "date unknown"


def md_text(text: str) -> str:
    """Untrusted text as literal Markdown: one line, markup characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text or ""))


def clipboard_markdown(question: str, answer: dict, ask_url: str = "") -> str:
    """The answer as Markdown with numbered sources and their links, for the clipboard.

    Args:
        question: what the reader asked.
        answer: the API's answer object (`web.schemas.AnswerOut`).
        ask_url: a link that asks the question again (`/?q=…`); "" for none.
    Returns:
        Markdown; `[n]` in the text refers to source n of the list below it.
    """
    body = "".join(md_text(part) if i % 2 == 0 else f"[{part}]"
                   for i, part in enumerate(_CITE.split(answer.get("answer", ""))))
    lead = md_text(answer.get("lead", "")).strip()
    lines = [f"**Q: {md_text(question).strip()}**", "", (f"**{lead}** — " if lead else "") + body.strip()]
    citations = answer.get("citations") or []
    if citations:
        lines += ["", "Sources:"]
    for c in citations:
        title = md_text(c.get("title") or c.get("article_id", "")).strip()
        link = c.get("link") or safe_url(c.get("url", ""))
        meta = ", ".join(md_text(x).strip() for x in (c.get("source", ""), date_label(c.get("date", ""))) if x)
        quote = md_text(c.get("quote", "")).strip()
        lines.append(f"{c['n']}. {f'[{title}](<{link}>)' if link else title} — {meta}: “{quote}”")
    if ask_url:
        lines += ["", f"Asked on Policy Desk: <{ask_url}>"]
    return "\n".join(lines)
