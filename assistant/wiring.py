"""The one place the assistant's objects are built: settings → embedder, store, retriever,
answerer → `Assistant`. Each shared object is made once here and passed in.

The start-up ingest (`ingest_if_empty`) lives here too, so the query side (`service`) never
imports the write side (`indexing.sync`).
"""

from __future__ import annotations

from .answering.backends import Parts, build_answerer
from .config import Settings
from .errors import IngestRunning
from .feedback import feedback_path
from .indexing.embeddings import Embedder, MiniLM
from .indexing.sentence_model import SentenceModel
from .indexing.store import Store, open_index
from .indexing.sync import ingest_lock, lock_path, sync
from .retrieval.hybrid import Retriever
from .runs import RunLog
from .service import Assistant


def build_assistant(settings: Settings, embedder: Embedder | None = None,
                    ingest_if_empty: bool = False) -> Assistant:
    """Open the index (ingesting the corpus first when it is empty and asked to) and build the
    assistant around it, answering with the backend `ASSISTANT_LLM` names."""
    embedder = embedder or MiniLM(threads=settings.indexing.torch_threads)
    sentences = SentenceModel(settings.storage.index_dir, embedder, threads=settings.indexing.torch_threads)
    store = open_index(settings.storage, embedder, create=ingest_if_empty)
    if ingest_if_empty:
        _ingest_if_empty(settings, store, embedder, sentences)
    retriever = Retriever(store, embedder)
    return Assistant(settings=settings, store=store, retriever=retriever,
                     answerer=build_answerer(settings.llm, answer_parts(store, retriever, sentences)))


def answer_parts(store: Store, retriever: Retriever, sentences: Embedder) -> Parts:
    """What an answerer is built from: `sentences` (the reader) embeds the question and the
    sentences it has no stored vector for; only stored vectors that model made are read."""
    # `Retriever.idf` asks the current lexical index: it is rebuilt when an ingest changes the store.
    return Parts(sentences, idf=retriever.idf,
                 sentence_vectors=lambda chunk_ids: store.sentence_vectors(chunk_ids, model=sentences.model_id))


def _ingest_if_empty(settings: Settings, store: Store, embedder: Embedder, sentences: Embedder) -> None:
    """Fill an empty index from the corpus, unless another ingest holds the lock (it fills it;
    the app picks that up when it ends: `Retriever.watch`)."""
    if store.chunk_count() > 0:
        return
    try:
        with ingest_lock(lock_path(settings.storage)):
            if store.chunk_count() == 0:  # an ingest that held the lock before us may have filled it
                report = sync(settings.storage.corpus_dir, store, embedder, group_size=settings.indexing.embed_group,
                              sentences=sentences)
                RunLog(feedback_path(settings.storage)).ingest(report)  # for /owner and /metrics
                print(report.summary(), flush=True)
    except IngestRunning as exc:
        print(f"not ingesting at start-up: {exc}", flush=True)
