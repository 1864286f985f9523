"""Each question's outcome from the chat, the embed and the API lands in the question log
(assistant/web/observe.py): the real assistant over the seed index, real SQLite."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from assistant.config import Settings
from assistant.errors import Busy
from assistant.questionlog import QuestionLog
from assistant.web.capacity import Capacity
from assistant.web.observe import Observer
from assistant.web.server import build_api
from assistant.web.ui import respond
from conftest import TRADE_QUESTION

UNCOVERED = "Who won the football World Cup final?"


@pytest.fixture
def log(tmp_path):
    return QuestionLog(tmp_path / "feedback.sqlite3")


def test_the_api_and_the_embed_log_answered_refused_and_busy(seed_assistant, seed_index, log):
    settings = Settings.of(index_dir=seed_index, rate_limit="1000/minute", answer_wait=0.0)
    capacity = Capacity(1, 0.0)
    with TestClient(build_api(seed_assistant, settings, questions=log, capacity=capacity)) as client:
        assert client.post("/api/ask", json={"question": TRADE_QUESTION}).status_code == 200
        assert client.post("/api/ask", json={"question": UNCOVERED}).json()["refused"]
        embed = {"X-Desk-Channel": "embed"}
        assert "event: answer" in client.post("/api/ask/stream", json={"question": TRADE_QUESTION}, headers=embed).text
        assert client.post("/api/ask/stream", json={"question": "   "}, headers=embed).status_code == 422  # not asked
        assert capacity.acquire()  # every slot taken
        try:
            assert client.post("/api/ask/stream", json={"question": UNCOVERED}, headers=embed).status_code == 503
            assert client.post("/api/ask", json={"question": UNCOVERED}).status_code == 503
        finally:
            capacity.release()
        assert client.post("/api/search", json={"question": TRADE_QUESTION}).status_code == 200  # a search is no question

    got = [(a.question, a.outcome, a.channel) for a in log.entries()]
    assert got == [(TRADE_QUESTION, "answered", "api"), (UNCOVERED, "refused", "api"),
                   (TRADE_QUESTION, "answered", "embed"), (UNCOVERED, "busy", "embed"), (UNCOVERED, "busy", "api")]
    answered = log.entries()[0]
    assert answered.cited == (seed_assistant.ask(TRADE_QUESTION).citations[0].hit.chunk.article_id,)
    assert answered.latency_ms > 0


def test_the_chat_logs_answered_refused_and_busy(seed_assistant, log):
    observer = Observer(log)
    list(respond(seed_assistant, TRADE_QUESTION, [], observer=observer))
    list(respond(seed_assistant, UNCOVERED, [], observer=observer))
    capacity = Capacity(1, 0.0)
    assert capacity.acquire()
    *_, (messages, _) = respond(seed_assistant, UNCOVERED, [], capacity=capacity, observer=observer)
    capacity.release()

    assert "every answer slot is taken" in messages[-1]["content"]
    assert [(a.outcome, a.channel) for a in log.entries()] == [("answered", "chat"), ("refused", "chat"),
                                                               ("busy", "chat")]


def test_an_exception_while_answering_is_logged_as_an_error_and_goes_on(log):
    observer = Observer(log)
    with pytest.raises(RuntimeError), observer.asking("api", "Who?"):
        raise RuntimeError("the index went away")
    with pytest.raises(Busy), observer.asking("chat", "Who?"):
        raise Busy("busy", retry_after=1)
    with observer.asking("embed", "Who?"):
        pass  # no answer came
    assert [(a.outcome, a.channel) for a in log.entries()] == [("error", "api"), ("busy", "chat"), ("error", "embed")]


def test_with_the_log_off_nothing_is_written(seed_assistant, seed_index, tmp_path):
    settings = Settings.of(index_dir=seed_index, rate_limit="1000/minute", question_log=False,
                           feedback_db=tmp_path / "fb.sqlite3")
    with TestClient(build_api(seed_assistant, settings)) as client:
        assert client.post("/api/ask", json={"question": TRADE_QUESTION}).status_code == 200
    assert not (tmp_path / "fb.sqlite3").exists()
