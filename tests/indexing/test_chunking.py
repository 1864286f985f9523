from assistant.indexing.chunking import chunk_article, embedding_text, make_splitter
from assistant.sources.corpus import load_article
from assistant.indexing.embeddings import MAX_TOKENS
from assistant.schema import Article

from conftest import SAMPLE


def test_chunks_map_back_to_the_article_by_offsets(embedder):
    article = load_article(SAMPLE, SAMPLE.parent)
    chunks = chunk_article(article, make_splitter(embedder.count_tokens))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert article.text[chunk.start:chunk.end] == chunk.text
        assert chunk.article_id == article.article_id and chunk.title == article.title
    # Together the chunks cover the whole article, in order: nothing but white space between them.
    assert chunks[0].start == 0 and chunks[-1].end == len(article.text)
    assert all(a.start < b.start and not article.text[a.end:b.start].strip() for a, b in zip(chunks, chunks[1:]))


def test_chunks_fit_the_model_window_with_the_title(embedder):
    article = load_article(SAMPLE, SAMPLE.parent)
    for chunk in chunk_article(article, make_splitter(embedder.count_tokens)):
        assert embedder.count_tokens(embedding_text(chunk)) + 2 <= MAX_TOKENS


def test_chunks_end_at_sentence_boundaries(embedder):
    sentence = "The committee met on Tuesday and agreed on a plan for the port. "
    text = "".join(f"Point {i}: {sentence}" for i in range(60))
    article = Article("long.txt", text.strip(), content_hash="f" * 64)
    chunks = chunk_article(article, make_splitter(embedder.count_tokens, chunk_tokens=100, overlap_tokens=20))
    assert len(chunks) > 5
    assert all(c.text.endswith(".") for c in chunks)
    assert all(c.text.startswith("Point") for c in chunks)
    # overlap: each chunk starts before the previous one ends
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:]))


def test_ids_are_stable_and_change_with_content(embedder):
    splitter = make_splitter(embedder.count_tokens)
    a = Article("a.txt", "One sentence here. Another one there.", content_hash="a" * 64)
    b = Article("a.txt", "One sentence here. Another one there.", content_hash="b" * 64)
    assert [c.chunk_id for c in chunk_article(a, splitter)] == [c.chunk_id for c in chunk_article(a, splitter)]
    assert {c.chunk_id for c in chunk_article(a, splitter)}.isdisjoint(c.chunk_id for c in chunk_article(b, splitter))
