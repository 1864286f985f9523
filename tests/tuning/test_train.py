"""Building the reader's training pairs: synthetic records checked against the cleaned article,
dates before the cutoff only; batches without a question twice."""

from __future__ import annotations

import random

from assistant.answering.reader import Sentence
from assistant.sources.corpus import load_article
from assistant.tuning import train
from conftest import write_article

BODY = ("The city council met on Tuesday to discuss the budget. Officials said the new library would open "
        "in March next year. The project cost about 12 million dollars in total. Residents asked about "
        "parking near the site. The mayor promised a public hearing before any decision.")


def record(corpus, name, sentence, **extra):
    article = load_article(corpus / name, corpus)
    start = article.text.index(sentence)
    end = start + len(sentence)
    return {"id": name + sentence[:5], "kind": "answerable", "question": "how much did it cost?", "article_id": name,
            "start": start, "end": end, "sentence_sha1": train.sentence_sha1(article.text[start:end]),
            "chunk_id": f"abc-0-{len(article.text)}", **extra}


def test_synthetic_examples_check_the_sentence_and_the_date(tmp_path):
    early, late = "wire_2022-07-01_budget.md", "wire_2022-09-01_budget.md"
    write_article(tmp_path, early, "Budget", BODY, date="2022-07-01")
    write_article(tmp_path, late, "Budget", BODY, date="2022-09-01")
    cost = "The project cost about 12 million dollars in total."
    good = record(tmp_path, early, cost)
    changed = {**record(tmp_path, early, cost), "sentence_sha1": "000000000000"}
    too_late = record(tmp_path, late, cost)
    near_miss = {**good, "kind": "near_miss", "start": None, "end": None}
    examples, tally = train.synthetic_examples([good, changed, too_late, near_miss], tmp_path)
    assert tally == {"kept": 1, "not_answerable": 1, "late_or_undated": 1, "missing_article": 0,
                     "sha1_mismatch": 1, "no_negatives": 0}
    (ex,) = examples
    assert ex.positives[0].text == cost
    assert ex.positives[0].before.startswith("Officials said")
    assert cost not in {n.text for n in ex.negatives} and len(ex.negatives) == 4
    assert ex.origin == "synthetic"


def test_batches_never_hold_a_question_twice():
    s = Sentence("A sentence long enough.")
    examples = [train.Example(q, (s,), (s,), "dev") for q in "abcabcabcd"]
    for batch in train._batches(examples, 4, random.Random(0)):
        assert len({ex.question for ex in batch}) == len(batch) <= 4
    assert sum(map(len, train._batches(examples, 4, random.Random(0)))) == len(examples)


def test_chunk_range_reads_the_offsets_in_a_chunk_id():
    assert train._chunk_range("c550db86235aed22-0-890", 2000) == (0, 890)
    assert train._chunk_range("odd", 2000) == (0, 2000)
