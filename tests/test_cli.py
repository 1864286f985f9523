"""The `python -m assistant` contract, run as real subprocesses against a tmp index.

Each call loads the model (~5 s), so one module-scoped index serves every test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant.sources.corpus import load_article
from conftest import ROOT, SAMPLE, SEED_ID, TRADE_QUESTION, article_page

pytestmark = pytest.mark.slow

SEED_QUESTIONS = ROOT.parent / "shared" / "eval" / "seed_questions.jsonl"
TRADE_EVIDENCE = "with the value surging by 40.7 per cent"
UNCOVERED = "Who won the 2018 FIFA World Cup?"
HIT_KEYS = {"rank", "article_id", "title", "source", "date", "url", "text", "score"}
SCORE_KEYS = {"recall@1", "recall@5", "recall@10", "mrr", "refusal_accuracy", "false_refusal_rate",
              "answer_contains_gold", "quote_verbatim_rate"}


def cli_env() -> dict[str, str]:
    """The caller's environment without `ASSISTANT_*`, offline and without telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False")
    return env


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant", *map(str, args)], cwd=ROOT,
                          env={**cli_env(), **(env or {})}, capture_output=True, text=True, encoding="utf-8",
                          timeout=180)


def ok(proc: subprocess.CompletedProcess) -> str:
    """stdout of a run that must have succeeded; its stderr is shown otherwise."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc.stdout


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one `error:` line of a run that must have failed cleanly."""
    assert proc.returncode != 0, f"expected failure, got exit 0\nstdout:\n{proc.stdout}"
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"expected one 'error:' line on stderr, got:\n{proc.stderr}"
    return errors[0]


@dataclass(frozen=True)
class Ingested:
    corpus: Path
    index: Path
    first_run: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Ingested:
    """A copy of the sample corpus, ingested once through the CLI."""
    base = tmp_path_factory.mktemp("cli")
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    index = base / "index"
    return Ingested(corpus, index, cli("ingest", "--corpus", corpus, "--index", index, "--quiet"))


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_ingest_adds_then_changes_nothing(ingested):
    assert "added 1" in ok(ingested.first_run)

    again = ok(cli("ingest", "--corpus", ingested.corpus, "--index", ingested.index, "--quiet"))

    assert "nothing changed" in again
    assert "unchanged 1" in again


def test_ingest_missing_corpus_fails_with_message(tmp_path):
    proc = cli("ingest", "--corpus", tmp_path / "no-such-corpus", "--index", tmp_path / "index", "--quiet")

    assert "corpus folder not found" in error_line(proc)
    assert not (tmp_path / "index").exists()  # a failed ingest leaves no empty index behind


def test_status_json_counts_articles_and_chunks(ingested):
    status = json.loads(ok(cli("status", "--index", ingested.index, "--json")))

    assert status["articles"] == 1
    assert status["chunks"] > 0
    assert status["by_article"] == {SEED_ID: status["chunks"]}
    # The reader in use, and that ingest embedded every article's sentences with it.
    assert status["reader"]["model"] and status["reader"]["articles_to_embed_again"] == 0


def test_status_without_index_points_to_ingest(tmp_path):
    proc = cli("status", "--index", tmp_path / "never-built", "--json")

    assert "ingest" in error_line(proc)


def test_search_json_ranks_passages(ingested):
    hits = json.loads(ok(cli("search", TRADE_QUESTION, "-k", "3", "--json", "--index", ingested.index)))

    assert isinstance(hits, list) and len(hits) == 3
    for hit in hits:
        assert HIT_KEYS <= hit.keys(), f"missing {HIT_KEYS - hit.keys()}"
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert any(TRADE_EVIDENCE in h["text"] for h in hits)


def test_ask_json_cites_a_verbatim_quote(ingested):
    result = json.loads(ok(cli("ask", TRADE_QUESTION, "--json", "--index", ingested.index)))

    assert result["refused"] is False
    assert "40.7 per cent" in result["answer"]
    assert "[1]" in result["answer"]
    first = result["citations"][0]
    assert first["n"] == 1
    article = load_article(ingested.corpus / SEED_ID, ingested.corpus)
    assert first["quote"] and first["quote"] in article.text
    assert isinstance(result["passages"], list) and result["passages"]


def test_ask_uncovered_question_refuses_without_citations(ingested):
    result = json.loads(ok(cli("ask", UNCOVERED, "--json", "--index", ingested.index)))

    assert result["refused"] is True
    assert result["citations"] == []


def test_ask_questions_file_prints_one_line_each_in_order(ingested, tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "liu", "question": "Who is Liu Weidong?", "type": "single"},
        {"id": "cup", "question": UNCOVERED, "type": "unanswerable"},
        {"id": "work", "question": "Where does he work?", "type": "followup:liu"},
    ])

    lines = ok(cli("ask", "--questions", questions, "--index", ingested.index)).splitlines()

    assert len(lines) == 3, lines
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ["liu", "cup", "work"]
    assert records[0]["refused"] is False
    assert records[1]["refused"] is True and records[1]["citations"] == []
    # As a follow-up of the Liu question, "Where does he work?" is searched with its subject:
    # the history reached retrieval.
    assert "Liu Weidong" in records[2]["passages"][0]["text"]
    assert records[2]["refused"] or "[1]" in records[2]["answer"]


def test_search_questions_file_prints_passages_per_question(ingested, tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "trade", "question": TRADE_QUESTION},
        {"id": "liu", "question": "Who is Liu Weidong?"},
    ])

    lines = ok(cli("search", "--questions", questions, "--index", ingested.index)).splitlines()

    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ["trade", "liu"]
    for record in records:
        assert record["passages"] and HIT_KEYS <= record["passages"][0].keys()


def test_eval_on_seed_questions(ingested, tmp_path):
    if not SEED_QUESTIONS.is_file():
        pytest.fail(f"shared eval set missing: {SEED_QUESTIONS} (expected next to the project, in ../shared/eval/)")
    failures = tmp_path / "failures.jsonl"

    scores = json.loads(ok(cli("eval", "--questions", SEED_QUESTIONS, "--index", ingested.index,
                               "--json", "--failures", failures)))

    assert SCORE_KEYS <= scores.keys(), f"missing {SCORE_KEYS - scores.keys()}"
    assert scores["quote_verbatim_rate"] == 1.0
    assert scores["refusals_with_citations"] == 0
    # Measured 1.0 on the seed index (10 answerable questions); 0.8 leaves room for two misses.
    assert scores["recall@5"] >= 0.8
    assert failures.is_file()
    for line in failures.read_text(encoding="utf-8").splitlines():
        assert "id" in json.loads(line)


@pytest.mark.parametrize("question", ["", "x" * 5000], ids=["empty", "5000-chars"])
def test_ask_rejects_unusable_question(ingested, question):
    line = error_line(cli("ask", question, "--index", ingested.index))

    assert "question" in line.lower()


@pytest.mark.parametrize("k", ["-1", "0", "51", "many"])
def test_search_k_out_of_bounds_is_refused(k):
    proc = cli("search", TRADE_QUESTION, "-k", k)  # refused by the parser, before any index is opened

    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument -k:" in proc.stderr and ("between 1 and 50" in proc.stderr or "whole number" in proc.stderr)


def test_feedback_lists_newest_first_and_says_when_there_is_none(tmp_path):
    from assistant.feedback import FeedbackStore

    assert ok(cli("feedback", "--index", tmp_path)) == f"No feedback in {tmp_path / 'feedback.sqlite3'}.\n"
    assert json.loads(ok(cli("feedback", "--index", tmp_path, "--json"))) == []
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    store.add("Who is Liu Weidong?", "A research fellow [1]", "up")
    store.add(TRADE_QUESTION, "It grew [1]", "down", comment="Say which months")

    listed = json.loads(ok(cli("feedback", "--index", tmp_path, "--json")))
    assert [e["question"] for e in listed] == [TRADE_QUESTION, "Who is Liu Weidong?"]
    text = ok(cli("feedback", "--index", tmp_path, "--since", "2000-01-01"))
    assert text.startswith("2 entries (1 👍, 1 👎)") and "comment: Say which months" in text
    assert "No feedback since 2999-01-01" in ok(cli("feedback", "--index", tmp_path, "--since", "2999-01-01"))
    assert "use YYYY-MM-DD" in error_line(cli("feedback", "--index", tmp_path, "--since", "last week"))


# --- add and feeds: pages from a real HTTP server on 127.0.0.1 -------------------------

LEVY = [
    "The port authority of Valdora approved a levy of 14 euros per container on Tuesday, to take effect "
    "on 1 April, the first such charge in the harbour's history.",
    "Shipping lines said the levy would be passed on to importers, while the authority said the money "
    "would pay for dredging the northern channel and for shore power at three berths.",
]
LEVY_FILE = "harbour-times_2024-03-05_valdora-port-approves-container-levy.md"


def fresh(tmp_path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return corpus, tmp_path / "index"


def test_add_dead_url_changes_nothing_and_says_why(site, tmp_path):
    corpus, index = fresh(tmp_path)
    proc = cli("add", site.url("/gone"), "ftp://127.0.0.1/a", "--corpus", corpus, "--index", index,
               "--allow", site.url(""))
    assert proc.returncode == 1, proc.stderr
    assert f"  failed   {site.url('/gone')}: HTTP 404 Not Found" in proc.stdout
    assert "  failed   ftp://127.0.0.1/a: not an http(s) URL" in proc.stdout
    assert list(corpus.iterdir()) == [] and not index.exists()  # nothing written, no ingest


def test_add_then_ask_cites_the_page_url_and_date(site, tmp_path):
    corpus, index = fresh(tmp_path)
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))

    proc = cli("add", url, site.url("/gone"), "--corpus", corpus, "--index", index, "--quiet", "--allow", site.url(""))
    assert proc.returncode == 1  # one URL failed; the other still went in and was ingested
    assert f"  added    {url} → {LEVY_FILE}" in proc.stdout
    assert f"  added    {LEVY_FILE}" in proc.stdout  # the ingest's report

    again = ok(cli("add", url, "--corpus", corpus, "--index", index, "--quiet"))  # known: nothing fetched
    assert again.splitlines() == ["added 0, already present 1, failed 0", f"  present  {url} (already in {LEVY_FILE})"]
    assert site.hits["/news/levy"] == 1

    result = json.loads(ok(cli("ask", "How much is the container levy in Valdora?", "--json", "--index", index)))
    assert not result["refused"] and "14 euros" in result["answer"]
    (citation, *_) = result["citations"]
    assert (citation["url"], citation["date"], citation["source"]) == (url, "2024-03-05", "Harbour Times")
    assert citation["quote"] in load_article(corpus / LEVY_FILE, corpus).text


def test_feeds_adds_new_entries_once(site, tmp_path):
    corpus, index = fresh(tmp_path)
    site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    site.serve("/rss.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Times</title>'
                           f'<item><title>Levy</title><link>{site.url("/news/levy")}</link></item>'
                           f'<item><title>Levy again</title><link>{site.url("/news/levy")}</link></item>'
                           '</channel></rss>', content_type="application/rss+xml")
    (corpus / "feeds.txt").write_text(f"# outlets we follow\n{site.url('/rss.xml')}\n{site.url('/gone.xml')}\n",
                                      encoding="utf-8")

    first = cli("feeds", "--corpus", corpus, "--index", index, "--quiet", env={"ASSISTANT_FETCH_ALLOW": site.url("")})
    assert first.returncode == 1  # the second feed is gone
    assert f"{site.url('/rss.xml')}: 1 entry: 1 added, 0 already present, 0 failed" in first.stdout
    assert f"{site.url('/gone.xml')}: failed: HTTP 404 Not Found" in first.stdout
    assert f"  added    {LEVY_FILE}" in first.stdout

    feeds = tmp_path / "feeds.txt"
    feeds.write_text(site.url("/rss.xml") + "\n", encoding="utf-8")
    second = ok(cli("feeds", "--feeds", feeds, "--corpus", corpus, "--index", index, "--allow", site.url("")))
    assert second.splitlines() == [f"{site.url('/rss.xml')}: 1 entry: 0 added, 1 already present, 0 failed"]
    assert site.hits["/news/levy"] == 1
    assert sorted(p.name for p in corpus.iterdir()) == ["feeds.txt", LEVY_FILE]


def test_add_and_feeds_refuse_loopback_unless_that_origin_is_allowed(site, other_site, tmp_path):
    """Issue 18, finding 2, through the command line: refused and named, nothing written, no ingest;
    `--allow` and ASSISTANT_FETCH_ALLOW open the named origin only."""
    corpus, index = fresh(tmp_path)
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    proc = cli("add", url, "--corpus", corpus, "--index", index)
    assert proc.returncode == 1 and proc.stdout.splitlines() == [
        "added 0, already present 0, failed 1",
        f"  failed   {url}: refused: 127.0.0.1 is a loopback address (to fetch from it anyway, allow {site.url('')} "
        "with --allow or ASSISTANT_FETCH_ALLOW)"]
    assert list(corpus.iterdir()) == [] and not index.exists() and site.hits == {}

    site.serve("/rss.xml", '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                           f'<item><title>Other</title><link>{other_site.url("/admin")}</link></item>'
                           '</channel></rss>', content_type="application/rss+xml")
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(site.url("/rss.xml") + "\n", encoding="utf-8")
    for allow in (["--allow", f"http://localhost:{site.port}"], ["--allow", other_site.url("")]):
        refused = cli("feeds", "--feeds", feeds, "--corpus", corpus, "--index", index, *allow)
        assert refused.returncode == 1 and refused.stdout.startswith(f"{site.url('/rss.xml')}: failed: refused: ")
    proc = cli("feeds", "--feeds", feeds, "--corpus", corpus, "--index", index, env={
        "ASSISTANT_FETCH_ALLOW": f"https://127.0.0.1:{site.port},{site.url('')}"})
    assert proc.returncode == 1
    assert f"  failed   {other_site.url('/admin')}: refused: 127.0.0.1 is a loopback address" in proc.stdout
    assert other_site.hits == {} and list(corpus.iterdir()) == [] and not index.exists()
    bad = cli("add", url, "--corpus", corpus, "--allow", "127.0.0.1:8799")
    assert bad.returncode == 2 and "is not an origin like http://127.0.0.1:8799" in bad.stderr


def test_human_output_escapes_control_characters_and_json_stays_as_is(tmp_path):
    """Issue 18, finding 4: article titles in `ask`/`search` and what readers sent in `feedback`
    reach the owner's terminal with control characters escaped; `--json` is unchanged."""
    from assistant.feedback import FeedbackStore

    corpus, index = fresh(tmp_path)
    title = "Valdora \x1b[2J\x1b]0;pwned\x07 levy"
    (corpus / "evil.md").write_text('---\ntitle: "Valdora \\e[2J\\e]0;pwned\\a levy"\nsource: "Harbour \\e[31mTimes"\n'
                                    'date: "2024-03-05"\nurl: "https://example.org/levy"\n---\n\n' + "\n\n".join(LEVY)
                                    + "\n", encoding="utf-8")
    ok(cli("ingest", "--corpus", corpus, "--index", index, "--quiet"))
    question = "How much is the container levy in Valdora?"
    for command in ("ask", "search"):
        text = ok(cli(command, question, "--index", index))
        assert "\x1b" not in text and "\x07" not in text
        assert "Valdora \\x1b[2J\\x1b]0;pwned\\x07 levy" in text and "Harbour \\x1b[31mTimes" in text
        found = json.loads(ok(cli(command, question, "--index", index, "--json")))
        assert (found["citations"] if command == "ask" else found)[0]["title"] == title  # --json as it was

    store = FeedbackStore(index / "feedback.sqlite3")
    store.add("Who \x1b[2Jis he?", "An answer", "up", comment="\x1b]8;;https://evil.example\x1b\\here\x1b]8;;\x1b\\",
              citations=[{"n": 1, "title": "T\n\n2026-01-01 00:00:00 UTC  👍 up  #9 via chat"}])
    text = ok(cli("feedback", "--index", index))
    assert "\x1b" not in text and not any(line.startswith("2026-01-01") for line in text.splitlines())
    assert json.loads(ok(cli("feedback", "--index", index, "--json")))[0]["question"] == "Who \x1b[2Jis he?"


def test_feeds_without_a_feeds_file_says_where_to_put_it(tmp_path):
    corpus, index = fresh(tmp_path)
    line = error_line(cli("feeds", "--corpus", corpus, "--index", index))
    assert line == f"error: no feeds file at {corpus / 'feeds.txt'}: list RSS or Atom feed URLs there, one a line"


def test_add_while_another_run_writes_says_so(site, tmp_path):
    import fcntl

    corpus, index = fresh(tmp_path)
    fd = os.open(corpus, os.O_RDONLY)  # what a running add or feeds holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = error_line(cli("add", site.url("/news/levy"), "--corpus", corpus, "--index", index))
    finally:
        os.close(fd)
    assert line == f"error: another add or feeds run is writing to {corpus}; try again when it has finished"
    assert sum(site.hits.values()) == 0 and list(corpus.iterdir()) == []
