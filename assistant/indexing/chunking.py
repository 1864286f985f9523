"""Article → Chunks: sentence-aware passages that fit the model's window.

Pure: the token counter is passed in. Splitting is LangChain's recursive splitter
(paragraphs, then lines, then sentences, then words); we only add exact character
offsets and stable ids, which the splitter does not give reliably with overlap.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterator

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ..schema import Article, Chunk
from ..text import SENTENCE_END

CHUNK_TOKENS = 200  # leaves room for the title prefix within the 256-token window
OVERLAP_TOKENS = 40
SEPARATORS = [r"\n\s*\n", r"\n", SENTENCE_END, r"(?<=[;:,])\s+", r"\s+", ""]


def make_splitter(count_tokens: Callable[[str], int],
                  chunk_tokens: int = CHUNK_TOKENS,
                  overlap_tokens: int = OVERLAP_TOKENS) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=count_tokens,
        strip_whitespace=True,
    )


def chunk_article(article: Article, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Split `article.text`; each chunk's offsets satisfy `text[start:end] == chunk.text`."""
    # The path is in the id: two files with the same content are two articles with their own chunks.
    key = hashlib.sha256(f"{article.article_id}\0{article.content_hash}".encode("utf-8")).hexdigest()[:16]
    chunks = []
    for text, start in _locate(article.text, splitter.split_text(article.text)):
        end = start + len(text)
        chunks.append(Chunk(
            chunk_id=f"{key}-{start}-{end}",
            article_id=article.article_id,
            text=text,
            start=start,
            end=end,
            title=article.title,
            source=article.source,
            date=article.date,
            url=article.url,
            content_hash=article.content_hash,
        ))
    return chunks


def _locate(text: str, pieces: list[str]) -> Iterator[tuple[str, int]]:
    """Pair each piece with its offset; pieces come in order and may overlap."""
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:  # the splitter returns substrings; anything else is a bug
            raise ValueError(f"chunk not found in article text: {piece[:60]!r}")
        yield piece, start
        cursor = start + 1


def embedding_text(chunk: Chunk) -> str:
    """What the model embeds for a chunk: the title gives a passage its topic."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text

