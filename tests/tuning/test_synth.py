"""Synthetic training questions (assistant/tuning): sentence choice, the prompt's reply parsed
defensively, the copy and round-trip filters, resumable runs, and that no article text is kept.
The end-to-end runs use real parts: the project's ingest and retrieval, and the packaged
SmolLM2 (too weak to write good questions: those tests check the machinery, not the questions)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.answering.model_files import packaged_model
from assistant.sources.corpus import load_article
from assistant.text import sentence_spans
from assistant.tuning.cache import Cache, attempted_path, read_jsonl
from assistant.tuning.questions import (CHECK_SYSTEM, build_messages, longest_shared_run, parse_check,
                                        parse_reply, reject_reason, reply_schema)
from assistant.tuning.sentences import files_before, informative, name_date, pick_sentences
from assistant.tuning.synth import RoundTrip, build_retriever, main, plan, run

from conftest import ROOT, write_article

ARTICLES = {
    "wire_2022-03-01_harbour-strike.md": (
        "Harbour strike ends after two weeks",
        "Dock workers in Port Malvern returned to work on Monday after a strike that lasted fourteen days.\n\n"
        "The union said its members won a pay rise of 6 per cent over two years.\n\n"
        "Shipping companies expect the queue of 40 container vessels outside the harbour to clear by June.\n\n"
        "Ok.\n\n"
        "“We are delighted,” she said.\n\n"
        "Sign up for our newsletter to get the latest news from the docks every morning of the week.\n\n"
        "Retailers had warned that shelves of imported electronics could run empty before the spring holidays.\n\n"
        "Is this the end of the dispute at the docks of Port Malvern for good?"),
    "wire_2022-05-10_tram-vote.md": (
        "Council backs airport tram",
        "The council of Elsbridge voted 9 to 4 on Tuesday to build a tram line between the airport and the "
        "cathedral quarter.\n\n"
        "Building work should begin in 2024 and the line is expected to cost 410 million pounds.\n\n"
        "The regional transport authority will pay for two thirds of the construction bill.\n\n"
        "Opponents argued that electric buses would serve the same neighbourhoods at a fraction of the price."),
    "wire_2022-07-20_wheat-harvest.md": (
        "Record wheat harvest on the plains",
        "Farmers across the northern plains brought in a record 530 million bushels of wheat this summer.\n\n"
        "Late rains in the eastern counties lifted yields far above the ten-year average.\n\n"
        "Grain elevators in Carrow County ran out of storage space and piled wheat in open fields.\n\n"
        "Prices for milling wheat fell by 12 per cent in July as the size of the crop became clear."),
}
LATE = ("wire_2022-08-15_bridge-collapse.md", "Old bridge collapses into the river",
        "A disused railway bridge over the river Tane collapsed on Sunday night without injuring anyone.\n\n"
        "Engineers had closed the bridge to walkers in 2019 after finding cracks in two of its piers.")
UNDATED = ("notes-about-the-ferry.md", "Ferry timetable",
           "The island ferry will sail six times a day from the first of May until the end of September.")


@pytest.fixture(scope="module")
def news(tmp_path_factory) -> Path:
    """A corpus of three articles dated before August 2022, one after, one undated."""
    corpus = tmp_path_factory.mktemp("synth") / "corpus"
    corpus.mkdir()
    for name, (title, body) in ARTICLES.items():
        write_article(corpus, name, title, body, date=name_date(name))
    write_article(corpus, LATE[0], LATE[1], LATE[2], date="2022-08-15")
    write_article(corpus, UNDATED[0], UNDATED[1], UNDATED[2], date="2022-01-01")
    return corpus


@pytest.fixture(scope="module")
def built(news, embedder, tmp_path_factory):
    """The round-trip index of the pre-August articles: (retriever, staged corpus, index folder)."""
    index = tmp_path_factory.mktemp("synth-index")
    retriever, stage = build_retriever(news, "2022-08-01", index, embedder, progress=False)
    return retriever, stage, index


def sentence_texts(stage: Path) -> list[str]:
    texts = []
    for path in stage.iterdir():
        article = load_article(path, stage)
        texts += [article.text[s:e] for s, e in sentence_spans(article.text)]
    return texts


def test_only_articles_dated_before_the_cutoff_are_read_or_indexed(news, built):
    retriever, stage, _ = built
    assert [p.name for p in files_before(news, "2022-08-01")] == sorted(ARTICLES)
    assert sorted(p.name for p in stage.iterdir()) == sorted(ARTICLES)
    assert {c.article_id for c in retriever.iter_chunks()} == set(ARTICLES)
    assert name_date("cnn_2022-07-14_slug.md") == "2022-07-14" and name_date(UNDATED[0]) == ""


def test_informative_sentences_are_picked_in_a_seeded_order(built):
    _, stage, _ = built
    article = load_article(stage / "wire_2022-03-01_harbour-strike.md", stage)
    picked = pick_sentences(article, per_article=10)
    texts = [article.text[s.start:s.end] for s in picked]
    assert len(texts) == 4 and all(t in article.text for t in texts)
    assert not any(t.startswith(("Ok", "“We", "Sign up", "Is this")) for t in texts)  # short, quote, furniture, question
    assert [s.start for s in picked] == sorted(s.start for s in picked)
    assert pick_sentences(article, 2, seed=1) == pick_sentences(article, 2, seed=1)
    assert len(pick_sentences(article, 2)) == 2
    assert informative("The union said its members won a pay rise of 6 per cent over two years.")
    assert not informative("“This is a great day for every single one of us here at the docks,” said Ana Ruiz.")


def test_the_reply_is_parsed_defensively():
    reply = ('Sure! ```json\n{"questions": [{"n": 1, "answer": "6 per cent", "q": " how big was the dockers raise? "},'
             '{"n": 1, "answer": "x", "q": "a second question for sentence one"},'
             '{"n": 7, "answer": "x", "q": "out of range"}, {"n": "two", "answer": "x", "q": "not a number"},'
             '{"n": 3, "answer": 5, "q": "answer not a string"}, {"n": 4, "answer": "x", "q": ""},'
             '"just a string", {"n": 2, "answer": "June", "q": "when will the ship queue be gone"}],'
             '"near_misses": ["what did the port malvern mayor say", 3, "", "what did the port malvern mayor say"]}\n```')
    items, misses = parse_reply(reply, 4)
    assert [(i.n, i.answer, i.question) for i in items] == [
        (1, "6 per cent", "how big was the dockers raise?"), (2, "June", "when will the ship queue be gone")]
    assert misses == ["what did the port malvern mayor say"]
    for broken in ("", "no json at all", '{"questions": [{"n": 1, "answer": "x", "q": "cut off', "[1, 2]",
                   '{"questions": "none", "near_misses": "one"}'):
        assert parse_reply(broken, 3) == ([], [])
    schema = reply_schema(3, 2)
    assert schema["properties"]["questions"]["minItems"] == 3 and schema["properties"]["near_misses"]["maxItems"] == 2
    assert parse_check('{"answers": [{"question": "B", "sentence": 0}, {"question": "a", "sentence": 2}, '
                       '{"question": "C", "sentence": 1}, {"question": "A", "sentence": 1}]}', ["q1", "q2"]) == \
        {"q2": 0, "q1": 2}
    messages = build_messages("Title", ["One sentence here.", "Another one."], near=1)
    assert messages[-1]["role"] == "user" and "1. One sentence here." in messages[-1]["content"]


def test_questions_that_copy_the_sentence_are_rejected():
    sentence = "Shipping companies expect the queue of 40 container vessels outside the harbour to clear by June."
    assert longest_shared_run("when will the queue of 40 container ships clear", sentence) == 5
    assert reject_reason("when will the queue of 40 container ships clear", [sentence]) == "copy"
    assert reject_reason("when should the backlog of ships at port malvern be gone", [sentence]) == ""
    assert reject_reason("ships?", [sentence]) == "length"
    assert reject_reason("what does the article say about the harbour queue", [sentence]) == "meta"
    assert reject_reason("when did she say the ships would leave port malvern", [sentence]) == "vague"
    assert reject_reason("who won the port malvern dispute, and what did it cost", [sentence]) == "compound"
    # The human natural dev questions pass (share of them): the filter keeps readers' wording.
    dev = [ROOT.parent / "shared" / "eval" / "news" / f"questions_natural_dev{n}.jsonl" for n in ("", "2")]
    rows = [json.loads(line) for path in dev if path.is_file() for line in path.open(encoding="utf-8")]
    rows = [r for r in rows if r["evidence"] and r["type"] == "single"]
    if rows:
        passed = sum(reject_reason(r["question"], r["evidence"]) in ("", "vague", "compound") for r in rows)
        assert passed / len(rows) >= 0.9


class ScriptedWriter:
    """The `Writer` interface with replies written in advance, one per prompt, in order; a check
    prompt is answered from `verdicts` ({question: sentence number})."""

    model = "scripted"

    def __init__(self, replies: list[dict], verdicts: dict[str, int] | None = None):
        self.replies = list(replies)
        self.verdicts = verdicts or {}
        self.prompts: list[list[dict]] = []

    def complete(self, messages, seed=0, **kwargs) -> str:
        self.prompts.append(messages)
        if messages[0]["content"] == CHECK_SYSTEM:
            lines = messages[-1]["content"].split("Questions:\n")[1].split("\n\n")[0].splitlines()
            return json.dumps({"answers": [{"question": line[0], "sentence": self.verdicts.get(line[3:], 0)}
                                           for line in lines]})
        return json.dumps(self.replies.pop(0))


def test_the_round_trip_and_near_miss_filters(built, tmp_path):
    retriever, stage, _ = built
    article = load_article(stage / "wire_2022-05-10_tram-vote.md", stage)
    jobs = [j for j in plan([article], set(), per_article=4, batch=4) if j.article is article]
    assert len(jobs) == 1 and len(jobs[0].sources) == 4
    texts = jobs[0].texts()
    writer = ScriptedWriter([{"questions": [
        # kept: a paraphrase whose passage retrieval finds
        {"n": 1, "answer": "9 to 4", "q": "how did elsbridge councillors split on the airport tramway"},
        # its answer is in sentence 1, not 2: the question is sentence 1's
        {"n": 2, "answer": "voted 9 to 4 on Tuesday", "q": "which day did elsbridge decide on its tram"},
        # copies a run of words from its sentence
        {"n": 3, "answer": "two thirds", "q": "will the regional transport authority pay for the tram"},
        # retrieval finds the wheat article, not this one
        {"n": 4, "answer": "electric buses", "q": "how much did wheat prices drop during the harvest"},
    ], "near_misses": [
        "what did the mayor of elsbridge think of the tramway",  # kept
        "how do they build trams",  # asks for nothing specific the article lacks
        "how many passengers a day will ride the elsbridge tram in 2030",  # kept: a figure the article lacks
        "how many bushels of wheat did carrow county store",  # retrieval finds the wheat article
    ]}], verdicts={"how did elsbridge councillors split on the airport tramway": 1,
                   "which day did elsbridge decide on its tram": 1,
                   "how much did wheat prices drop during the harvest": 4,
                   "how many passengers a day will ride the elsbridge tram in 2030": 2})  # the check: answered
    cache = Cache(tmp_path / "out.jsonl")
    # Top 1, not 5: in a corpus of three articles every article is in the top 5.
    round_trip = RoundTrip(retriever, k=1)
    tally = run(jobs, writer, round_trip, cache, check=True, progress=False)
    assert len(writer.prompts) == 2  # the questions, then the check
    kept = {(r["kind"], r["question"]): r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert set(kept) == {("answerable", "how did elsbridge councillors split on the airport tramway"),
                         ("answerable", "which day did elsbridge decide on its tram"),
                         ("near_miss", "what did the mayor of elsbridge think of the tramway")}
    first = kept[("answerable", "which day did elsbridge decide on its tram")]
    assert (first["start"], first["end"]) == (jobs[0].sources[0].start, jobs[0].sources[0].end)
    assert first["retrieval_rank"] == 1 and first["chunk_id"] in round_trip.source_chunks(jobs[0].sources[0])
    assert first["sentence_sha1"] == jobs[0].sources[0].sha1
    assert tally.reasons["answerable:copy"] == 1 and tally.reasons["answerable:round_trip"] == 1
    assert tally.reasons["near_miss:nothing_new"] == 1 and tally.reasons["near_miss:round_trip"] == 1
    assert tally.reasons["near_miss:check"] == 1
    miss = kept[("near_miss", "what did the mayor of elsbridge think of the tramway")]
    assert miss["start"] is None and [c[:2] for c in miss["context"]] == [[s.start, s.end] for s in jobs[0].sources]
    log = read_jsonl(attempted_path(tmp_path / "out.jsonl"))
    assert [s[3] for s in log[0]["sentences"]] == ["kept", "missing", "copy", "round_trip"]
    no_article_text(tmp_path, texts)


def no_article_text(folder: Path, sentences: list[str]) -> None:
    """Neither the records nor the log hold a sentence, or 6 words in a row of one."""
    for path in folder.glob("*.jsonl"):
        data = path.read_text(encoding="utf-8")
        for sentence in sentences:
            words = sentence.split()
            assert not any(" ".join(words[i:i + 6]) in data for i in range(max(len(words) - 5, 1))), path


def cli(news, index, out, *extra) -> list[str]:
    return ["--corpus", str(news), "--before", "2022-08-01", "--index", str(index), "--llm",
            f"gguf:{packaged_model()}", "--out", str(out), "--per-article", "4", "--batch", "2",
            "--no-progress", *extra]


@pytest.mark.slow
def test_a_limited_run_continues_without_redoing_work(news, built, tmp_path, capsys):
    _, stage, index = built
    out = tmp_path / "synthetic.jsonl"
    assert main(cli(news, index, out, "--limit", "2")) == 0
    first = read_jsonl(attempted_path(out))
    assert len(first) == 1 and len(first[0]["sentences"]) == 2
    records = read_jsonl(out)
    assert all(r["model"] == packaged_model().stem and r["prompt_version"] for r in records)
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "torn", "kind": "answ')  # a write cut short by a kill
    assert main(cli(news, index, out, "--limit", "4")) == 0
    log = read_jsonl(attempted_path(out))
    keys = [(row["article_id"], s[0], s[1]) for row in log for s in row["sentences"]]
    assert len(log) == 3 and len(keys) == len(set(keys)) == 6
    assert log[0] == first[0] and read_jsonl(out)[:len(records)] == records
    assert out.read_text(encoding="utf-8").endswith("\n") and "torn" not in out.read_text(encoding="utf-8")
    for r in read_jsonl(out):
        assert set(r) >= {"id", "kind", "question", "article_id", "start", "end", "sentence_sha1", "chunk_id",
                          "retrieval_rank", "model", "prompt_version"}
        assert r["article_id"] in ARTICLES and 1 <= r["retrieval_rank"] <= 5
    no_article_text(tmp_path, sentence_texts(stage))
    capsys.readouterr()


@pytest.mark.slow
def test_a_killed_run_continues_where_it_stopped(news, built, tmp_path):
    _, _, index = built
    out = tmp_path / "synthetic.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.tuning.synth", *cli(news, index, out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not read_jsonl(attempted_path(out)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = read_jsonl(attempted_path(out))
    assert done, "the run wrote nothing before it was killed"
    before = Cache(out).attempted
    assert main(cli(news, index, out, "--limit", "2")) == 0
    log = read_jsonl(attempted_path(out))
    keys = [(row["article_id"], s[0], s[1]) for row in log for s in row["sentences"]]
    assert log[:len(done)] == done and len(keys) == len(set(keys))  # no sentence asked about twice
    assert len(Cache(out).attempted) == len(before) + 2
    assert len({r["id"] for r in read_jsonl(out)}) == len(read_jsonl(out))


def test_a_finished_plan_has_nothing_left(built):
    _, stage, _ = built
    articles = [load_article(p, stage) for p in sorted(stage.iterdir())]
    jobs = plan(articles, set(), per_article=4, batch=3)
    # in rounds: every article's first prompt (its first 3 sentences) before any second one
    assert len(jobs) == 6 and len({j.article.article_id for j in jobs[:3]}) == 3
    assert all(len(j.sources) == 3 for j in jobs[:3]) and all(len(j.sources) == 1 for j in jobs[3:])
    done = {s.key for j in jobs for s in j.sources}
    assert len(done) == 12 and plan(articles, done, per_article=4, batch=3) == []
    assert sum(len(j.sources) for j in plan(articles, set(list(sorted(done))[:5]), 4, 3)) == 7
