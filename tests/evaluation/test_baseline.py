from assistant.evaluation.baseline import LangChainBaseline
from assistant.sources.corpus import load_article

from conftest import SAMPLE, TRADE_QUESTION


def test_stock_recipe_indexes_once_and_searches(tmp_path, embedder):
    article = load_article(SAMPLE, SAMPLE.parent)
    baseline = LangChainBaseline([article], embedder, tmp_path / "baseline")
    hits = baseline.search(TRADE_QUESTION, k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert any("40.7 per cent" in h.chunk.text for h in hits)
    assert all(len(h.chunk.text) <= 1000 and h.chunk.text in article.text for h in hits)
    # reopening the same corpus reuses the built collection
    again = LangChainBaseline([article], embedder, tmp_path / "baseline")
    assert again.store.get()["ids"] == baseline.store.get()["ids"]
