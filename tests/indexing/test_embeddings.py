import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.indexing.embeddings import Embedder, MiniLM


def test_packaged_model_gives_normalised_vectors(embedder):
    vectors = embedder.encode(["Trade between China and Russia grew.", "Wheat harvest in Kansas."])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_meaning_is_closer_than_topic_noise(embedder):
    q, near, far = embedder.encode(["How fast did China-Russia trade grow?",
                                    "Two-way trade between China and Russia surged 40 per cent.",
                                    "The city council approved a new tram line."])
    assert q @ near > q @ far + 0.2


def test_is_an_embedder_and_a_langchain_embeddings(embedder):
    assert isinstance(embedder, Embedder) and isinstance(embedder, Embeddings)
    docs = embedder.embed_documents(["a b c", "d e f"])
    assert len(docs) == 2 and len(docs[0]) == 384 and isinstance(docs[0][0], float)
    assert np.allclose(embedder.embed_query("a b c"), docs[0], atol=1e-5)


def test_model_loads_lazily():
    model = MiniLM()
    assert "model" not in model.__dict__  # constructing it loads nothing


def test_a_question_is_embedded_once_per_request(embedder, monkeypatch):
    import threading

    question = "How fast did China-Russia trade grow?"
    calls = []
    real = embedder.model.encode
    monkeypatch.setattr(embedder.model, "encode", lambda texts, **kw: (calls.append(list(texts)), real(texts, **kw))[1])
    with embedder.remembering():
        first = embedder.encode([question])
        embedder.encode(["Another lone sentence.", "and a batch"])
        again = embedder.encode([question])
        assert np.array_equal(first, again) and again is not first
        again[0, 0] = 9.0  # a copy: changing it changes nothing remembered
        assert np.array_equal(embedder.encode([question]), first)
        other = []  # another thread remembers nothing of this one
        thread = threading.Thread(target=lambda: other.append(embedder._recent.__dict__.get("texts")))
        thread.start()
        thread.join()
        assert other == [None]
    assert calls == [[question], ["Another lone sentence.", "and a batch"]]  # the question once
    assert embedder._recent.texts is None  # nothing kept across requests
    embedder.encode([question])
    assert len(calls) == 3
