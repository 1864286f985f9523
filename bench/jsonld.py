"""How many saved news pages yield a title, a date, an outlet and body text, without and with
the JSON-LD `articleBody` fallback (assistant/sources/jsonld.py), through the corpus reader.

    .venv/bin/python bench/jsonld.py DIR [--min-words 100]

DIR holds saved pages (*.html). "Without" runs the same reader with `read_jsonld` answering
None, which is the reader as it was before the fallback. Body text counts when the cleaned
article has at least --min-words words (a photo caption does not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

from assistant.errors import UnreadableFile
from assistant.sources import corpus

FIELDS = ("title", "date", "outlet", "body")


def read(path: Path, min_words: int) -> tuple[dict[str, bool], int, str]:
    """Which fields the page yields, the body's word count, and why it failed ("" if it did not)."""
    try:
        article = corpus.load_article(path, path.parent)
    except UnreadableFile as exc:
        return dict.fromkeys(FIELDS, False), 0, exc.reason
    words = len(article.text.split())
    return {"title": bool(article.title), "date": bool(article.date), "outlet": bool(article.source),
            "body": words >= min_words}, words, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--min-words", type=int, default=100)
    args = parser.parse_args(argv)
    pages = sorted(args.folder.glob("*.htm*"))
    if not pages:
        parser.error(f"no .html files in {args.folder}")
    totals = {"without": dict.fromkeys(FIELDS, 0), "with": dict.fromkeys(FIELDS, 0)}
    complete = {"without": 0, "with": 0}
    print(f"{'page':<48} {'without JSON-LD':<28} {'with JSON-LD':<28}")
    for path in pages:
        cells = []
        for label in ("without", "with"):
            if label == "without":
                with mock.patch.object(corpus, "read_jsonld", lambda raw: None):
                    got, words, why = read(path, args.min_words)
            else:
                got, words, why = read(path, args.min_words)
            for field in FIELDS:
                totals[label][field] += got[field]
            complete[label] += all(got.values())
            marks = "".join(f[0].upper() if got[f] else "-" for f in FIELDS)
            cells.append(why[:27] if why else f"{marks} {words:>5} words")
        print(f"{path.name[:47]:<48} {cells[0]:<28} {cells[1]:<28}")
    print(f"\n{len(pages)} pages (T title, D date, O outlet, B body of at least {args.min_words} words)")
    for label in ("without", "with"):
        counts = ", ".join(f"{field} {totals[label][field]}" for field in FIELDS)
        print(f"{label + ' JSON-LD:':<18} {counts}; all four {complete[label]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
