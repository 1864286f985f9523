"""Coverage gaps (assistant/gaps.py): real questions embedded by the app's own model, grouped by
scikit-learn, the closest articles from the real seed index."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from assistant.feedback import FeedbackStore
from assistant.gaps import GapQuestion, closest_to, gap_questions, topics
from assistant.questionlog import QuestionLog
from conftest import ROOT

MARS = ["When will the next Mars rover launch?", "What did NASA find on Mars?", "Is there water on Mars?",
        "How is the Mars Perseverance mission going?", "mars rover landing date"]
CUP = ["Who won the football World Cup final?", "World Cup 2022 final score", "Which team won the World Cup?",
       "When is the next football World Cup?"]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def asked(questions, start=0):
    return [GapQuestion(q, f"2026-04-{10 + start + i:02d}T08:00:00Z", "refused") for i, q in enumerate(questions)]


def test_questions_on_two_unsupported_subjects_land_in_two_topics(embedder, seed_assistant):
    found = topics(asked(MARS) + asked(CUP, start=5) + asked(["IS THERE WATER ON MARS?"], start=12),
                   embedder.encode, closest_to(seed_assistant.store))

    assert len(found) == 2
    mars, cup = found  # the most asked first
    assert set(mars.questions) == set(MARS) and mars.count == 6  # the repeat counted, listed once
    assert set(cup.questions) == set(CUP) and cup.count == 4
    assert mars.label in MARS and cup.label in CUP
    assert "mars" in mars.terms and "cup" in cup.terms
    assert (mars.first, mars.last) == ("2026-04-10T08:00:00Z", "2026-04-22T08:00:00Z")
    assert 1 <= len(cup.closest) <= 3  # the articles the desk has nearest, each once
    assert len({a.article_id for a in cup.closest}) == len(cup.closest)
    assert set(mars.to_dict()) == {"label", "terms", "count", "first", "last", "questions", "closest"}


def test_one_question_is_one_topic_and_none_is_none(embedder):
    assert topics([], embedder.encode) == []
    (only,) = topics(asked(["Is there water on Mars?"]), embedder.encode)
    assert (only.label, only.count, only.closest) == ("Is there water on Mars?", 1, ())


def test_gap_questions_are_refused_and_thumbs_down_since_a_date(tmp_path):
    db = tmp_path / "feedback.sqlite3"
    log, feedback = QuestionLog(db), FeedbackStore(db)
    log.record("Is there water on Mars?", "refused", "chat", 0.1, now=NOW)
    log.record("Old refused", "refused", "chat", 0.1, now=NOW - timedelta(days=30))
    log.record("How much did trade grow?", "answered", "api", 0.1, now=NOW)
    feedback.add("Who won the cup?", "…", "down")
    feedback.add("Who is Liu Weidong?", "A scholar.", "up")

    got = gap_questions(log, feedback, since="2026-04-15")
    assert sorted((g.question, g.why) for g in got) == [("Is there water on Mars?", "refused"),
                                                       ("Who won the cup?", "down")]
    assert [g.question for g in gap_questions(None, feedback)] == ["Who won the cup?"]


def test_the_gaps_command_lists_topics_as_json(seed_index, tmp_path):
    index = tmp_path / "index"
    subprocess.run(["cp", "-r", str(seed_index), str(index)], check=True)
    (index / "feedback.sqlite3").unlink(missing_ok=True)  # what other tests' servers logged there
    log = QuestionLog(index / "feedback.sqlite3")
    for i, q in enumerate(MARS + CUP):
        log.record(q, "refused", "embed", 0.2, now=datetime.now(timezone.utc) - timedelta(hours=i))

    proc = subprocess.run([sys.executable, "-m", "assistant", "gaps", "--index", str(index), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert [t["count"] for t in found] == [5, 4]
    assert {k for t in found for k in t} >= {"label", "count", "first", "last", "questions", "closest"}
    assert set(found[1]["questions"]) == set(CUP)
    human = subprocess.run([sys.executable, "-m", "assistant", "gaps", "--index", str(index), "--since", "2999-01-01"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert human.returncode == 0 and human.stdout.startswith("No refused or 👎 questions since 2999-01-01")
    bad = subprocess.run([sys.executable, "-m", "assistant", "gaps", "--index", str(index), "--since", "soon"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a date" in bad.stderr
