"""Shared fixtures: the real packaged model (loaded once) and real Chroma in tmp dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_15735037f31751e9.txt"
SEED_ID = SAMPLE.name
TRADE_QUESTION = "How much did trade between China and Russia grow?"


@pytest.fixture(scope="session")
def embedder():
    from assistant.embeddings import MiniLM

    model = MiniLM(threads=None)
    assert model.dimension == 384  # loads the model, once for the whole session
    return model


@pytest.fixture
def seed_corpus(tmp_path) -> Path:
    """A corpus folder holding a copy of the sample article."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    return corpus


def write_article(folder: Path, name: str, title: str, body: str, source: str = "Test Wire",
                  date: str = "2024-01-15", url: str = "https://example.org/a") -> Path:
    path = folder / name
    path.write_text(f'---\ntitle: "{title}"\nsource: "{source}"\ndate: "{date}"\nurl: "{url}"\n---\n\n{body}\n',
                    encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    """An index of the sample article plus two articles of our own, built once (read-only use)."""
    from assistant.index import open_store
    from assistant.ingest import sync

    base = tmp_path_factory.mktemp("seed")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    write_article(corpus, "wheat.md", "Wheat harvest hits record in Kansas",
                  "Farmers in Kansas harvested a record 420 million bushels of wheat this summer, "
                  "the state agriculture department said on Tuesday.\n\nDry weather in the west cut yields "
                  "there, but rain in the east more than made up for it.", source="Plains Daily", date="2022-08-02",
                  url="https://example.org/wheat")
    write_article(corpus, "rail.md", "City council approves new tram line",
                  "The city council voted 7 to 2 on Monday to build a 12-kilometre tram line linking the "
                  "airport with the old town.\n\nConstruction is due to start in 2025 and cost 310 million euros.",
                  source="Metro Gazette", date="2023-03-20", url="https://example.org/tram")
    index = base / "index"
    sync(corpus, open_store(index, embedder), embedder, progress=False)
    return index


@pytest.fixture(scope="session")
def seed_assistant(seed_index, embedder):
    from assistant.config import Settings
    from assistant.service import build_assistant

    return build_assistant(Settings(index_dir=seed_index), embedder=embedder)
