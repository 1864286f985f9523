import os
import signal
import subprocess
import sys

import pytest

from assistant.errors import IngestRunning
from assistant.index import open_store
from assistant.ingest import ingest_lock, sync

from conftest import ROOT, SEED_ID, write_article
from test_cli import cli_env, error_line


def _by_article(store):
    out = {}
    for chunk in store.all_chunks():
        out.setdefault(chunk.article_id, set()).add(chunk.chunk_id)
    return out


def test_second_ingest_changes_nothing_and_says_so(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    first = sync(seed_corpus, store, embedder, progress=False)
    assert first.added == [SEED_ID] and first.chunks_written > 0
    before = _by_article(store)
    second = sync(seed_corpus, store, embedder, progress=False)
    assert second.unchanged == [SEED_ID] and not second.changed and second.chunks_written == 0
    assert "nothing changed" in second.summary()
    assert _by_article(store) == before


def test_editing_one_article_replaces_only_its_chunks(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line. "
                         "It will open in 2027.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    before = _by_article(store)
    path.write_text(path.read_text(encoding="utf-8").replace("2027", "2029"), encoding="utf-8")
    report = sync(seed_corpus, store, embedder, progress=False)
    after = _by_article(store)
    assert report.updated == ["tram.md"] and report.unchanged == [SEED_ID]
    assert after[SEED_ID] == before[SEED_ID]
    assert after["tram.md"].isdisjoint(before["tram.md"])
    assert "2029" in store.article_text("tram.md")


def test_deleting_an_article_removes_its_chunks(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    os.remove(path)
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.removed == ["tram.md"]
    assert set(_by_article(store)) == {SEED_ID}
    assert "tram.md" not in store.stored_articles()


def test_broken_file_is_reported_and_the_rest_ingests(seed_corpus, tmp_path, embedder):
    (seed_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (seed_corpus / "empty.txt").write_bytes(b"")
    store = open_store(tmp_path / "index", embedder)
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.added == [SEED_ID]
    assert sorted(name for name, _ in report.failed) == ["broken.pdf", "empty.txt"]
    assert "skipped  broken.pdf" in report.summary()


def test_a_file_that_becomes_unreadable_keeps_its_indexed_version(seed_corpus, tmp_path, embedder):
    path = write_article(seed_corpus, "tram.md", "Tram line approved", "The council approved a tram line.")
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    path.write_bytes(b"\x00\x01binary junk\x00")
    report = sync(seed_corpus, store, embedder, progress=False)
    assert [name for name, _ in report.failed] == ["tram.md"] and report.removed == []
    assert "tram.md" in store.stored_articles()


def test_interrupted_ingest_is_completed_by_the_next_one(seed_corpus, tmp_path, embedder):
    store = open_store(tmp_path / "index", embedder)
    sync(seed_corpus, store, embedder, progress=False)
    complete = _by_article(store)
    # Simulate a crash between writing chunks and the article record: drop the record.
    store.articles.delete(ids=[SEED_ID])
    report = sync(seed_corpus, store, embedder, progress=False)
    assert report.added == [SEED_ID]
    assert _by_article(store) == complete  # stable ids: rewritten in place, no duplicates


# -- one ingest at a time --------------------------------------------------------------------

def test_lock_refuses_a_second_holder(tmp_path):
    with ingest_lock(tmp_path / "ingest.lock"):
        with pytest.raises(IngestRunning, match=f"an ingest is already running \\(process {os.getpid()}"):
            with ingest_lock(tmp_path / "ingest.lock"):
                pass
    with ingest_lock(tmp_path / "ingest.lock"):  # released on exit
        pass


@pytest.mark.slow
def test_cli_ingest_while_another_runs_says_so_and_fails(seed_corpus, tmp_path):
    index = tmp_path / "index"
    with ingest_lock(index / "ingest.lock"):  # this process is "the running ingest"
        proc = subprocess.run([sys.executable, "-m", "assistant", "ingest", "--corpus", str(seed_corpus),
                               "--index", str(index), "--quiet"], cwd=ROOT, env=cli_env(),
                              capture_output=True, text=True, timeout=120)
    assert "an ingest is already running" in error_line(proc)
    assert not (index / "chroma.sqlite3").exists()


@pytest.mark.slow
def test_a_killed_lock_holder_leaves_no_stale_lock(tmp_path):
    lock = tmp_path / "ingest.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from assistant.ingest import ingest_lock\n"
                               f"with ingest_lock({str(lock)!r}):\n print('locked', flush=True); time.sleep(120)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IngestRunning):
            with ingest_lock(lock):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with ingest_lock(lock):  # the kernel released it with the process
        pass
