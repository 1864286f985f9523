"""LangChain's stock RAG recipe, as the baseline `eval --baseline langchain` scores us against.

The one place LangChain's vector store is used: `RecursiveCharacterTextSplitter(chunk_size=1000,
chunk_overlap=200)` and `Chroma.similarity_search` with the same embedding model and the same
cleaned articles, so the comparison isolates chunking and retrieval.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..indexing.embeddings import MiniLM
from ..schema import Article, Chunk, Hit

COLLECTION = "langchain_baseline"


class LangChainBaseline:
    def __init__(self, articles: list[Article], embedder: MiniLM, folder: Path):
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        fingerprint = hashlib.sha256("".join(sorted(a.content_hash for a in articles)).encode()).hexdigest()[:16]
        self.store = Chroma(collection_name=f"{COLLECTION}_{fingerprint}", embedding_function=embedder,
                            persist_directory=str(folder),
                            client_settings=ChromaSettings(anonymized_telemetry=False, is_persistent=True,
                                                           persist_directory=str(folder)))
        if not self.store.get(limit=1)["ids"]:  # built once per corpus version, then reused
            splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
            docs = splitter.split_documents([Document(a.text, metadata={"article_id": a.article_id,
                                                                        "title": a.title, "source": a.source,
                                                                        "date": a.date, "url": a.url})
                                             for a in articles])
            for i in range(0, len(docs), 1000):
                self.store.add_documents(docs[i:i + 1000])

    def search(self, query: str, k: int = 4) -> list[Hit]:
        hits = []
        for rank, (doc, distance) in enumerate(self.store.similarity_search_with_score(query, k=k), 1):
            m = doc.metadata
            start = int(m.get("start_index", 0))
            chunk = Chunk(chunk_id=f"baseline-{rank}", article_id=m["article_id"], text=doc.page_content,
                          start=start, end=start + len(doc.page_content), title=m.get("title", ""),
                          source=m.get("source", ""), date=m.get("date", ""), url=m.get("url", ""))
            # Default l2 space on unit vectors: distance = 2 - 2·cosine.
            hits.append(Hit(chunk=chunk, score=-distance, similarity=1 - distance / 2, rank=rank))
        return hits
