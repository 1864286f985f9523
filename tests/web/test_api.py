"""The HTTP API, the embed page and the frame/CORS policy: FastAPI's TestClient over the real
assistant first, then a real uvicorn server in Chromium, framed by host pages on another site."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from urllib.parse import quote_plus

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from assistant.config import Settings
from assistant.feedback import FeedbackStore
from assistant.web.capacity import Capacity
from assistant.web.routes.ask import pieces
from assistant.web.routes.embed import EmbedOptions, embed_page, embed_sources
from assistant.web.schemas import AnswerOut, PassageOut
from assistant.web.server import build_api, build_server
from assistant.web.share import clipboard_markdown, quote_link
from conftest import ROOT, TRADE_QUESTION, axe_violations, free_port, write_article
from test_app import browser  # noqa: F401  (the module's Chromium, a fixture)

ALLOWED = "https://news.example.org"
ANSWER_MS = 30_000


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.replace("\r\n", "\n").strip().split("\n\n"):
        lines = block.split("\n")
        event = next((ln[6:].strip() for ln in lines if ln.startswith("event:")), "message")
        data = "\n".join(ln[5:].lstrip() for ln in lines if ln.startswith("data:"))
        events.append((event, json.loads(data)))
    return events


@pytest.fixture(scope="module")
def settings(seed_index) -> Settings:
    return Settings.of(index_dir=seed_index, embed_allowed_origins=(ALLOWED,), rate_limit="1000/minute")


@pytest.fixture(scope="module")
def client(seed_assistant, settings):
    with TestClient(build_api(seed_assistant, settings)) as c:
        yield c


# --- contract -------------------------------------------------------------------------------

def test_ask_returns_the_cli_object(client, seed_assistant):
    r = client.post("/api/ask", json={"question": TRADE_QUESTION})

    assert r.status_code == 200
    body = r.json()
    assert body == AnswerOut.of(seed_assistant.ask(TRADE_QUESTION)).model_dump(mode="json")  # as `ask --json`
    assert set(body) == {"answer", "lead", "refused", "closest", "notice", "citations", "passages"}
    assert body["lead"] == "40.7 per cent" and body["closest"] == []
    assert "40.7 per cent" in body["answer"] and "[1]" in body["answer"] and not body["refused"]
    cite = body["citations"][0]
    assert set(cite) == {"n", "article_id", "title", "source", "date", "url", "quote", "link", "passage_rank"}
    assert cite["link"] is None  # the sample article has no URL
    assert cite["quote"] in body["passages"][cite["passage_rank"] - 1]["text"]


def test_search_returns_the_cli_ranked_passages(client, seed_assistant):
    r = client.post("/api/search", json={"question": TRADE_QUESTION})
    assert r.status_code == 200
    assert r.json() == [PassageOut.of(h).model_dump(mode="json")  # as `search --json`
                        for h in seed_assistant.search(TRADE_QUESTION)]
    assert "40.7 per cent" in r.json()[0]["text"] and len(r.json()) == seed_assistant.settings.answers.top_k
    two = client.post("/api/search", json={"question": "wheat harvest", "k": 2,
                                           "filters": {"sources": ["Plains Daily"]}}).json()
    assert len(two) == 1 and two[0]["source"] == "Plains Daily"  # one passage in that outlet
    assert client.post("/api/search", json={"question": " "}).json()["detail"] == "Please type a question."
    assert client.post("/api/search", json={"question": "q", "k": 500}).status_code == 422


def test_ask_takes_history_and_filters(client):
    alone = client.post("/api/ask", json={"question": "Where does he work?"}).json()
    followup = client.post("/api/ask", json={"question": "Where does he work?",
                                              "history": ["Who is Liu Weidong?"]}).json()
    # The history reaches retrieval: the follow-up is searched with its subject.
    assert "Liu Weidong" in followup["passages"][0]["text"]
    assert "Liu Weidong" not in alone["passages"][0]["text"]

    wheat = {"question": "How much wheat did Kansas farmers harvest?"}
    assert "420 million bushels" in client.post("/api/ask", json=wheat).json()["answer"]
    other = client.post("/api/ask", json={**wheat, "filters": {"sources": ["Metro Gazette"]}}).json()
    assert all(p["source"] == "Metro Gazette" for p in other["passages"]) and "420" not in other["answer"]
    none = client.post("/api/ask", json={**wheat, "filters": {"since": "2030-01-01"}}).json()
    assert none["refused"] and none["notice"] == "No article matches these filters."


def test_stream_sends_text_pieces_then_the_answer(client):
    with client.stream("POST", "/api/ask/stream", json={"question": TRADE_QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())

    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"delta"} and len(names) > 3
    final = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]) == final["answer"]
    assert final == client.post("/api/ask", json={"question": TRADE_QUESTION}).json()


def test_bad_requests_get_422_with_a_message(client):
    too_long = "why " * 600  # 2,400 characters; the cap is 2,000
    for path in ("/api/ask", "/api/ask/stream"):
        r = client.post(path, json={"question": too_long})
        assert r.status_code == 422 and r.headers["content-type"] == "application/json"
        assert "please keep it under 2,000" in r.json()["detail"]
    assert client.post("/api/ask", json={"question": " \n "}).json()["detail"] == "Please type a question."
    for body in ({}, {"question": "q", "filters": {"since": "last week"}}, {"question": "q", "extra": 1},
                 {"question": ["q"]}):
        assert client.post("/api/ask", json=body).status_code == 422
    # Dates as the chat checks them: a real day of the calendar, not only the shape.
    r = client.post("/api/ask", json={"question": "q", "filters": {"until": "2024-13-45"}})
    assert r.status_code == 422 and r.json()["detail"] == "'2024-13-45' is not a date: use YYYY-MM-DD for until."
    # History items are capped like the question (a follow-up's query carries the last one along).
    r = client.post("/api/ask/stream", json={"question": "And he?", "history": ["x" * 2001]})
    assert r.status_code == 422 and "An earlier question in `history` is 2,001 characters long" in r.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(seed_assistant, settings):
    with TestClient(build_api(seed_assistant, settings.with_(rate_limit="2/minute"))) as c:
        question = {"question": "Who is Liu Weidong?"}
        assert [c.post("/api/ask", json=question).status_code for _ in range(2)] == [200, 200]
        for path in ("/api/ask", "/api/ask/stream"):
            r = c.post(path, json=question, headers={"X-Forwarded-For": "10.9.9.9"})  # not trusted: same client
            assert r.status_code == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            assert "2 questions per minute" in r.json()["detail"] and "try again in" in r.json()["detail"]
        assert c.get("/api/health").status_code == 200  # only questions count

    with TestClient(build_api(seed_assistant, settings.with_(rate_limit="1/minute", trust_proxy=True))) as c:
        as_from = lambda ip: c.post("/api/ask", json={"question": "   "}, headers={"X-Forwarded-For": f"1.1.1.1, {ip}"})
        assert as_from("192.0.2.1").status_code == 422  # counted, then refused as empty
        assert as_from("192.0.2.1").status_code == 429
        assert as_from("192.0.2.2").status_code == 422  # another client behind the proxy


def test_health_and_openapi_description(client):
    assert client.get("/api/health").json() == {
        "status": "ok", "articles": 3, "chunks": 7,
        "outlets": [{"name": "Metro Gazette", "articles": 1}, {"name": "Plains Daily", "articles": 1},
                    {"name": "South China Morning Post", "articles": 1}],
        "dates": {"first": "2022-08-02", "last": "2023-03-20", "undated": 1},
        "summary": "3 articles from Metro Gazette, Plains Daily and South China Morning Post, "
                   "2022-08-02 to 2023-03-20 (1 of unknown date)"}
    spec = client.get("/api/openapi.json").json()
    assert {"/api/ask", "/api/ask/stream", "/api/health", "/api/feedback"} <= set(spec["paths"])
    assert "/embed" not in spec["paths"]
    assert set(spec["components"]["schemas"]["AnswerOut"]["properties"]) == {
        "answer", "lead", "refused", "closest", "notice", "citations", "passages", "verification"}  # verification: with ASSISTANT_LLM
    for page in ("/api/docs", "/api/redoc", "/docs/oauth2-redirect"):  # FastAPI's pages load from a CDN
        assert client.get(page).status_code == 404


def test_citations_link_to_the_quote_in_the_article(client):
    cite = client.post("/api/ask", json={"question": "How much wheat did Kansas farmers harvest?"}).json()["citations"][0]
    assert cite["url"] == "https://example.org/wheat"
    assert cite["link"] == quote_link(cite["url"], cite["quote"]) and cite["link"].startswith(cite["url"] + "#:~:text=")


def test_every_url_field_is_http_or_null(embedder, reader, tmp_path):
    """Issue 18, "Also": `citations[].url` returned an article's raw `javascript:` URL (its `link`
    was already null); every URL field of `/api/ask` and `/api/search` (the `--json` shapes) is now
    an http(s) URL or null."""
    from assistant.indexing.store import open_store
    from assistant.indexing.sync import sync
    from assistant.wiring import build_assistant

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, url in (("js.md", "javascript:alert(1)"), ("data.md", "data:text/html,<b>x</b>"),
                      ("ftp.md", "ftp://example.org/levy")):
        write_article(corpus, name, f"Valdora levy ({name})", "The port authority of Valdora approved a levy of "
                      f"14 euros per container on Tuesday, the {name} report said.", url=url)
    sync(corpus, open_store(tmp_path / "index", embedder), embedder, progress=False, sentences=reader)
    settings = Settings.of(index_dir=tmp_path / "index", rate_limit="1000/minute")
    with TestClient(build_api(build_assistant(settings, embedder=embedder), settings)) as c:
        answered = c.post("/api/ask", json={"question": "How much is the container levy in Valdora?"}).json()
        refused = c.post("/api/ask", json={"question": "Who won the 2018 FIFA World Cup?"}).json()
        passages = c.post("/api/search", json={"question": "Valdora levy", "k": 3}).json()
    assert answered["citations"] and refused["closest"] and len(passages) == 3
    for item in answered["citations"] + answered["passages"] + refused["closest"] + passages:
        assert item["url"] is None, item
    assert all(c["link"] is None for c in answered["citations"])


def test_feedback_is_stored_with_citations_and_settings(seed_assistant, settings, tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with TestClient(build_api(seed_assistant, settings.with_(rate_limit="3/minute"), feedback=store)) as c:
        answer = c.post("/api/ask", json={"question": "How much wheat did Kansas farmers harvest?"}).json()
        r = c.post("/api/feedback", json={"question": "How much wheat did Kansas farmers harvest?",
                                          "answer": answer["answer"], "rating": "down",
                                          "citations": answer["citations"], "filters": {"sources": ["Plains Daily"]},
                                          "history": []})
        assert r.status_code == 201 and set(r.json()) == {"id", "token"}
        entry = store.entries()[0]
        assert (entry.rating, entry.answer, entry.via) == ("down", answer["answer"], "api")
        assert entry.citations[0]["link"] == answer["citations"][0]["link"]
        assert "passage_rank" not in entry.citations[0]  # only what identifies the source
        assert entry.settings["filters"]["sources"] == ["Plains Daily"] and entry.settings["llm"] == "extractive"

        amend = c.patch(f"/api/feedback/{r.json()['id']}", json={"token": r.json()["token"], "comment": "Old figure"})
        assert amend.status_code == 204 and store.entries()[0].comment == "Old figure"
        # Rate-limited like questions, counted apart from them: the 4th feedback call in a minute waits.
        bad = c.patch(f"/api/feedback/{r.json()['id']}", json={"token": "guess", "comment": "x"})
        assert bad.status_code == 404 and bad.json()["detail"] == "No such feedback entry."
        over = c.post("/api/feedback", json={"question": "q", "answer": "a", "rating": "up"})
        assert over.status_code == 429 and "Please try again in" in over.json()["detail"]
        assert c.post("/api/ask", json={"question": "Who is Liu Weidong?"}).status_code == 200
    assert len(store.entries()) == 1


def test_bad_feedback_gets_422_and_stores_nothing(client, seed_assistant, settings, tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    with TestClient(build_api(seed_assistant, settings, feedback=store)) as c:
        for body in ({"question": "q", "answer": "a", "rating": "meh"}, {"question": "", "answer": "a", "rating": "up"},
                     {"question": "q", "answer": "a", "rating": "up", "comment": "x" * 2001},
                     {"question": "q", "answer": "a" * 20_001, "rating": "up"},
                     {"question": "q", "answer": "a", "rating": "up", "ip": "1.2.3.4"},
                     # Issue 18, finding 3: ~1 MB of outlet name per entry filled the store in ~105 requests.
                     {"question": "q", "answer": "a", "rating": "up", "filters": {"sources": ["x" * 900_000]}},
                     {"question": "q", "answer": "a", "rating": "up", "filters": {"sources": ["x" * 201]}},
                     {"question": "q", "answer": "a", "rating": "up",
                      "citations": [{"n": i, "quote": "z" * 2_000, "title": "t" * 1_000} for i in range(20)]}):
            r = c.post("/api/feedback", json=body)
            assert r.status_code == 422, (r.status_code, str(body)[:200])
        assert "an entry keeps at most 50,000" in r.json()["detail"]  # each citation within its caps, not the entry
    assert store.entries() == []


def test_a_feedback_id_beyond_64_bits_gets_422_not_500(seed_assistant, settings, tmp_path):
    """Issue 18, finding 6: `PATCH /api/feedback/<2**64>` raised OverflowError in SQLite (500)."""
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    entry, token = store.add("q", "a", "up")
    with TestClient(build_api(seed_assistant, settings, feedback=store), raise_server_exceptions=False) as c:
        for entry_id in (2**64, 2**63, 10**40, 0, -1, "1e3", "x" * 5_000):
            r = c.patch(f"/api/feedback/{entry_id}", json={"token": token, "comment": "x"})
            assert r.status_code == 422, (str(entry_id)[:20], r.status_code)
        assert c.patch(f"/api/feedback/{2**63 - 1}", json={"token": token, "comment": "x"}).status_code == 404
        assert c.patch(f"/api/feedback/{entry}", json={"token": token, "comment": "x"}).status_code == 204
    assert store.amend(2**64, token, comment="y") is False and store.entries()[0].comment == "x"


def test_pieces_join_back_to_the_text():
    text = "Trade grew by 40.7 per cent  in the first five months, customs said. [1] More [2]"
    assert "".join(pieces(text)) == text and len(pieces(text)) == 3
    assert pieces("") == [""]


# --- frames and CORS, with the Gradio chat mounted ------------------------------------------

@pytest.fixture(scope="module")
def server_client(seed_assistant, settings):
    with TestClient(build_server(seed_assistant, settings), base_url="http://policy.example.org") as c:
        yield c


def test_frame_ancestors_when_origins_are_set(server_client):
    embed = server_client.get("/embed").headers["content-security-policy"]
    assert f"frame-ancestors 'self' {ALLOWED}" in embed and "default-src 'none'" in embed
    chat = server_client.get("/")
    assert chat.status_code == 200 and "Policy Desk" in chat.text
    assert chat.headers["content-security-policy"] == "frame-ancestors 'self'"  # the chat page: this site only
    assert server_client.get("/api/health").headers["content-security-policy"] == "frame-ancestors 'self'"


def test_without_origins_any_site_may_frame_the_embed_only_and_startup_says_so(seed_assistant, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="assistant.web.server"):
        app = build_server(seed_assistant, settings.with_(embed_allowed_origins=()))
    assert "EMBED_ALLOWED_ORIGINS is not set: any site may frame /embed" in caplog.text
    with TestClient(app) as c:
        assert "frame-ancestors" not in c.get("/embed").headers["content-security-policy"]
        assert c.get("/").headers["content-security-policy"] == "frame-ancestors 'self'"  # the chat: this site only
        r = c.options("/api/ask", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers  # no allowlist: no CORS at all


def test_cors_only_for_allowed_origins_and_only_on_the_api(server_client):
    def preflight(path, origin):
        return server_client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "content-type"})

    ok = preflight("/api/ask", ALLOWED)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in ok.headers
    bad = preflight("/api/ask", "https://evil.example")
    assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers

    r = server_client.post("/api/ask", json={"question": TRADE_QUESTION}, headers={"Origin": ALLOWED})
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert r.headers["access-control-expose-headers"] == "Retry-After"
    r = server_client.post("/api/ask", json={"question": TRADE_QUESTION}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # the browser withholds it

    # Gradio's own CORS would echo any origin, with credentials, under a real host name; it is off.
    for origin in ("https://evil.example", ALLOWED):
        for path in ("/gradio_api/info", "/config"):
            r = server_client.get(path, headers={"Origin": origin})
            assert r.status_code == 200 and "access-control-allow-origin" not in r.headers, (path, origin)
        assert "access-control-allow-origin" not in preflight("/gradio_api/queue/join", origin).headers


def test_embed_page_is_one_self_contained_file():
    page = embed_page(EmbedOptions(), "1 article", 2000)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == 1  # one script to run (hashed in the CSP); the options are JSON data beside it
    script = scripts[0]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
    assert "localStorage" not in script and "sessionStorage" not in script and "document.cookie" not in script
    assert not re.search(r"\b(src|href)=", page)  # nothing loaded from anywhere
    assert 'maxlength="2000"' in page
    sources = embed_sources()
    assert sources.startswith("script-src 'sha256-") and "style-src 'sha256-" in sources
    digest = "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
    assert f"script-src {digest};" in sources  # the hash is of the script as served


# --- a real server in Chromium ----------------------------------------------------------------

HOSTILE_TITLE = ("<script>window.__pwned=1;alert(1)</script><img src=x onerror=window.__pwned=2;alert(2)> "
                 "Harbour dredging plan [more](javascript:window.__pwned=3)")
HOSTILE_BODY = ("The port authority said dredging the harbour channel will cost 48 million dollars. "
                "<script>window.__pwned=4;alert(4)</script> <img src=x onerror=\"window.__pwned=5;alert(5)\"> "
                "[details](javascript:window.__pwned=6) Work on the harbour starts in the spring.")
HOSTILE_QUESTION = "How much will dredging the harbour channel cost?"


def host_page(embed_url: str) -> bytes:
    """A news site's article page with the chat beside it, as a site owner would embed it."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>The Harbour Times</title><style>
body {{ margin: 0; font: 16px/1.55 Georgia, serif; color: #222; background: #f6f3ee; }}
.top {{ background: #16324f; color: #fff; padding: 14px 32px; font: 700 22px system-ui, sans-serif; }}
.wrap {{ display: flex; gap: 32px; padding: 24px 32px; align-items: flex-start; }}
article {{ flex: 1; max-width: 560px; }} h1 {{ font-size: 28px; line-height: 1.2; margin: 0 0 12px; }}
.by {{ color: #666; font: 14px system-ui, sans-serif; }}
iframe {{ border: 1px solid #c9c2b6; border-radius: 10px; background: #fff; flex: none; }}
</style></head><body><div class="top">The Harbour Times</div><div class="wrap"><article>
<h1>Beijing weighs its ties with Moscow as trade surges</h1><p class="by">Analysis · 6 min read</p>
<p>Chinese scholars are openly debating how close Beijing should stay to Moscow, even as trade between the
two countries climbs. Customs figures released last week show the value of two-way trade rising sharply
in the first five months of the year, while trade with the United States shrank.</p>
<p>Ask our policy desk about the articles behind this story: every answer quotes and cites its source.</p>
</article><iframe id="policy-desk" src="{embed_url}" width="400" height="600" title="Policy Desk"></iframe>
</div></body></html>""".encode()


class StaticSite:
    """A tiny HTTP server on localhost (another site than 127.0.0.1) serving one page at any path."""

    def __init__(self, port: int, page: bytes, path: str = "/"):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://localhost:{port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class HostSite(StaticSite):
    """A news site's article page framing the embed."""

    def __init__(self, port: int, embed_url: str):
        super().__init__(port, host_page(embed_url))


LIGHTHOUSE_TITLE = "Gull Rock lighthouse to shine again"
LIGHTHOUSE_BODY = ("The maritime trust said restoring the Gull Rock lighthouse will cost 2.4 million pounds, with "
                   "work on the tower finishing in the autumn of 2026.\n\nThe lighthouse has been dark since 1998. "
                   "Volunteers will run a small museum in the keeper's cottage.")
LIGHTHOUSE_QUESTION = "How much will restoring the Gull Rock lighthouse cost?"


class ArticleSite(StaticSite):
    """A news site on localhost serving the lighthouse story below a long page of other news."""

    def __init__(self, port: int):
        other = "".join(f"<p>Item {i}: the ferry timetable, the weather and the tides, as every week.</p>"
                        for i in range(120))
        story = "".join(f"<p>{p}</p>" for p in LIGHTHOUSE_BODY.split("\n\n"))
        super().__init__(port, (f"<!doctype html><html><head><meta charset='utf-8'><title>{LIGHTHOUSE_TITLE}</title>"
                                f"</head><body><h1>Coast Courier</h1>{other}<h2>{LIGHTHOUSE_TITLE}</h2>"
                                f"<div id='story'>{story}</div></body></html>").encode(), "/news/gull-rock-lighthouse")


class Uvicorn:
    """The server app on a free 127.0.0.1 port, in a thread of this process (the model is loaded once)."""

    def __init__(self, app, root_path: str = ""):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    proxy_headers=False, access_log=False, root_path=root_path))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory, seed_index, embedder, reader):
    """The server over the seed corpus plus a hostile article; host pages on two other sites."""
    from assistant.indexing.store import open_store
    from assistant.indexing.sync import sync
    from assistant.wiring import build_assistant

    corpus = tmp_path_factory.mktemp("embed") / "corpus"
    shutil.copytree(seed_index.parent / "corpus", corpus)  # the sample, wheat (with a URL) and tram
    newsroom = ArticleSite(free_port())  # the lighthouse story, online, for its quote link
    write_article(corpus, "lighthouse.md", LIGHTHOUSE_TITLE, LIGHTHOUSE_BODY, source="Coast Courier",
                  date="2025-06-12", url=newsroom.url)
    (corpus / "hostile.md").write_text(
        "---\ntitle: '" + HOSTILE_TITLE.replace("'", "''") + "'\nsource: 'Evil <b>Wire</b>'\ndate: '2024-05-01'\n"
        "url: 'javascript:window.__pwned=7;alert(7)'\n---\n\n" + HOSTILE_BODY + "\n", encoding="utf-8")
    index = corpus.parent / "index"
    sync(corpus, open_store(index, embedder), embedder, progress=False, sentences=reader)

    allowed_port, other_port = free_port(), free_port()
    settings = Settings.of(index_dir=index, rate_limit="500/minute",
                        embed_allowed_origins=(f"http://localhost:{allowed_port}",))
    server = Uvicorn(build_server(build_assistant(settings, embedder=embedder), settings))
    allowed = HostSite(allowed_port, server.url + "/embed")
    other = HostSite(other_port, server.url + "/embed")
    yield {"app": server.url, "allowed": allowed.url, "other": other.url, "allowed_site": allowed,
           "index": index, "newsroom": newsroom}
    newsroom.close()
    allowed.close()
    other.close()
    server.close()


class Watched:
    """A page in a fresh context, with the dialogs it opened and the errors it logged."""

    def __init__(self, browser, viewport=(1100, 720), **options):
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **options)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} {m.location}"))

    def frame(self):
        return self.page.frame_locator("#policy-desk")

    def close(self):
        self.context.close()


def embed_ask(frame, question: str):
    """Type `question` into the embed, press Enter; the answer bubble once the answer is in."""
    frame.locator("#pd-question").fill(question)
    frame.locator("#pd-question").press("Enter")
    answer = frame.locator(".pd-a").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_MS)
    return answer


def third_party_storage(page, app_url: str) -> str:
    frame = next(f for f in page.frames if f.url.startswith(app_url))
    return frame.evaluate("() => { try { localStorage.length; return 'allowed'; } catch (e) { return e.name; } }")


@pytest.mark.slow
def test_embed_answers_in_a_cross_site_frame_with_third_party_storage_blocked_10_of_10(site, browser, tmp_path):
    for attempt in range(10):
        w = Watched(browser)
        w.page.goto(site["allowed"])
        frame = w.frame()
        expect(frame.locator("#pd-question")).to_be_editable(timeout=10_000)
        # The frame is third-party (localhost hosts 127.0.0.1), and its storage is blocked.
        assert third_party_storage(w.page, site["app"]) == "SecurityError"

        answer = embed_ask(frame, TRADE_QUESTION)

        assert "40.7 per cent" in answer.locator(".pd-text").inner_text(), attempt
        ref = answer.locator(".pd-ref").first
        expect(ref).to_have_text("[1]")
        note = answer.locator(".pd-notes details").first
        assert note.get_attribute("open") is None
        ref.click()
        expect(note).to_have_attribute("open", "")
        expect(note.locator("blockquote")).to_contain_text("with the value surging by 40.7 per cent")
        if attempt == 0:  # docs/embedding.md's picture (docs/embed.png), written to tmp (copied by hand)
            frame.locator("#pd-log").evaluate("log => { log.scrollTop = 0; }")
            w.page.screenshot(path=str(tmp_path / "embed.png"))
            assert (tmp_path / "embed.png").stat().st_size > 20_000
        w.close()
        assert w.dialogs == [] and w.errors == [], (attempt, w.dialogs, w.errors)


@pytest.mark.slow
def test_footnote_links_open_a_new_tab_safely_and_options_apply(site, browser):
    w = Watched(browser, viewport=(400, 600))
    w.page.goto(site["app"] + "/embed?theme=dark&title=%3Cb%3EHarbour%20desk%3C%2Fb%3E&source=Plains%20Daily")
    page = w.page
    expect(page.locator("#pd-title")).to_have_text("<b>Harbour desk</b>")  # text, not markup
    assert page.title() == "<b>Harbour desk</b>"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    expect(page.locator("#pd-scope")).to_contain_text("Plains Daily")

    wheat = embed_ask(page, "How much wheat did Kansas farmers harvest?")
    assert "420 million bushels" in wheat.inner_text()
    link = wheat.locator(".pd-notes a")
    assert link.get_attribute("href").startswith("https://example.org/wheat#:~:text=")
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel").split()
    # Only Plains Daily: the trade article is out of bounds, so the answer is a refusal.
    trade = embed_ask(page, TRADE_QUESTION)
    assert "40.7" not in trade.inner_text() and trade.locator(".pd-notes").count() == 0
    w.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.slow
def test_frames_outside_the_allowlist_are_refused_by_the_browser(site, browser):
    w = Watched(browser)
    w.page.goto(site["other"])  # localhost on a port that is not in EMBED_ALLOWED_ORIGINS
    w.page.wait_for_timeout(1500)
    assert any("frame-ancestors" in e for e in w.errors), w.errors
    frame = next(f for f in w.page.frames if f != w.page.main_frame)
    assert frame.evaluate("() => document.getElementById('pd-question')") is None
    w.close()

    # The chat page itself may be framed by this site only, even from an allowed origin.
    w = Watched(browser)
    w.page.goto(site["allowed"])
    expect(w.frame().locator("#pd-question")).to_be_visible(timeout=10_000)
    w.page.evaluate("url => document.getElementById('policy-desk').src = url", site["app"] + "/")
    w.page.wait_for_timeout(1500)
    assert any("frame-ancestors" in e for e in w.errors), w.errors
    assert w.frame().locator("#question").count() == 0
    w.close()


@pytest.mark.slow
def test_hostile_article_runs_nothing_in_the_embed(site, browser):
    w = Watched(browser)
    w.page.goto(site["allowed"])
    frame = w.frame()
    answer = embed_ask(frame, HOSTILE_QUESTION)

    assert "48 million dollars" in answer.inner_text()
    answer.locator(".pd-ref").first.click()
    note = answer.locator(".pd-notes li").first
    assert "<script>window.__pwned=1" in note.locator(".pd-title").inner_text()  # shown as text
    assert note.locator("a").count() == 0  # the javascript: URL is no link
    assert answer.locator("script, img").count() == 0
    embed = next(f for f in w.page.frames if f.url.startswith(site["app"]))
    assert embed.evaluate("() => window.__pwned") is None
    w.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.slow
def test_hostile_article_runs_nothing_in_the_chat_page(site, browser):
    w = Watched(browser, viewport=(1280, 900))
    page = w.page
    page.goto(site["app"] + "/")
    box = page.locator("#question textarea")
    box.fill(HOSTILE_QUESTION)
    box.press("Enter")
    sources = page.locator("#sources")
    expect(sources.locator(".pd-source").first).to_be_visible(timeout=ANSWER_MS)
    expect(box).to_have_value("", timeout=ANSWER_MS)

    assert "48 million dollars" in page.locator("#chat [data-testid='bot']").last.inner_text()
    assert "<script>window.__pwned=1" in sources.inner_text()
    sources.locator("details").first.click()  # the passage in context, payloads included
    assert "onerror" in sources.inner_text()
    assert page.locator("#chat script, #chat img[src='x'], #sources script, #sources img").count() == 0
    assert page.locator("#chat a[href^='javascript'], #sources a[href^='javascript']").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    w.close()
    assert w.dialogs == [] and w.errors == []


def test_every_slot_taken_answers_503_with_retry_after_and_health_still_answers(seed_assistant, settings):
    capacity = Capacity(1, wait=0.2)
    with TestClient(build_api(seed_assistant, settings, capacity=capacity)) as c:
        with capacity.slot():  # another answer holds the only slot
            for path in ("/api/ask", "/api/ask/stream", "/api/search"):
                r = c.post(path, json={"question": TRADE_QUESTION})
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert r.json()["detail"] == ("Many people are asking right now, and every answer slot is taken. "
                                              "Please try again in 1 s.")
            assert c.get("/api/health").json()["articles"] == 3
        assert c.post("/api/ask", json={"question": TRADE_QUESTION}).status_code == 200  # given back
        with c.stream("POST", "/api/ask/stream", json={"question": TRADE_QUESTION}) as r:
            assert r.status_code == 200 and sse_events(r.read().decode())[-1][0] == "answer"
        with capacity.slot():  # the stream gave its slot back when it ended
            pass


@pytest.mark.slow
def test_health_answers_at_once_and_waiting_requests_starve_no_answer(seed_assistant, settings):
    capacity = Capacity(1, wait=60)
    server = Uvicorn(build_api(seed_assistant, settings, capacity=capacity))
    try:
        codes: list[int] = []

        def ask():
            with httpx.Client(timeout=120) as http:
                codes.append(http.post(server.url + "/api/ask", json={"question": TRADE_QUESTION}).status_code)

        askers = [threading.Thread(target=ask) for _ in range(60)]  # more than the 40 worker threads
        with capacity.slot():
            for t in askers:
                t.start()
            time.sleep(1.5)
            started = time.monotonic()
            health = httpx.get(server.url + "/api/health", timeout=5)
            assert health.status_code == 200 and time.monotonic() - started < 1.0
        for t in askers:
            t.join(timeout=120)
        # Waiting for the slot takes no worker thread, so the answers holding it always get one.
        assert codes == [200] * 60
    finally:
        server.close()


@pytest.mark.slow
def test_embed_shows_the_busy_message(seed_assistant, settings, browser):
    capacity = Capacity(1, wait=0.2)
    server = Uvicorn(build_api(seed_assistant, settings, capacity=capacity))
    try:
        w = Watched(browser, viewport=(400, 600))
        w.page.goto(server.url + "/embed")
        with capacity.slot():
            answer = embed_ask(w.page, TRADE_QUESTION)
            expect(answer.locator(".pd-error")).to_contain_text("every answer slot is taken. Please try again in 1 s.")
        assert "40.7" in embed_ask(w.page, TRADE_QUESTION).inner_text()
        w.close()
        assert [e for e in w.errors if "503" not in e] == [] and w.dialogs == []
    finally:
        server.close()


@pytest.mark.slow
def test_a_limit_in_redis_holds_across_two_app_processes(seed_index, redis_server, tmp_path):
    from test_app import launched

    env = {"ASSISTANT_RATE_LIMIT": "3/minute", "ASSISTANT_RATE_LIMIT_STORAGE": redis_server,
           "ASSISTANT_REFRESH_SECONDS": "0"}
    corpus = seed_index.parent / "corpus"
    with launched(tmp_path / "a", env, corpus=corpus, index=seed_index) as (a, _), \
            launched(tmp_path / "b", env, corpus=corpus, index=seed_index) as (b, _):
        question = {"question": "Who is Liu Weidong?"}
        codes = [httpx.post(url + "/api/ask", json=question, timeout=60).status_code for url in (a, b, a, b, a)]
        assert codes == [200, 200, 200, 429, 429]  # 3 a minute in all, not 3 per process
        refused = httpx.post(b + "/api/search", json=question, timeout=60)
        assert refused.status_code == 429 and "3 questions per minute" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Feedback is counted apart from questions, in the same Redis: questions used up, it is still taken.
        feedback = {"question": "Who is Liu Weidong?", "answer": "A researcher [1]", "rating": "up"}
        assert httpx.post(b + "/api/feedback", json=feedback, timeout=60).status_code == 201


def test_a_limit_store_that_does_not_answer_counts_nothing_and_refuses_nobody(seed_assistant, settings, caplog):
    nowhere = f"redis://127.0.0.1:{free_port()}"  # nobody listens there
    with TestClient(build_api(seed_assistant, settings.with_(rate_limit="1/minute", rate_limit_storage=nowhere))) as c:
        assert [c.post("/api/search", json={"question": "wheat"}).status_code for _ in range(3)] == [200, 200, 200]
    assert f"rate limit storage {nowhere}" in caplog.text and "does not answer" in caplog.text


@pytest.mark.slow
def test_embed_shows_the_rate_limit_message(seed_assistant, settings, browser):
    server = Uvicorn(build_api(seed_assistant, settings.with_(rate_limit="1/minute")))
    try:
        w = Watched(browser, viewport=(400, 600))
        w.page.goto(server.url + "/embed")
        assert "40.7" in embed_ask(w.page, TRADE_QUESTION).inner_text()
        second = embed_ask(w.page, "Who is Liu Weidong?")
        expect(second.locator(".pd-error")).to_contain_text("You're asking faster than this assistant allows")
        expect(w.page.locator("#pd-question")).to_have_value("Who is Liu Weidong?")  # kept for a retry
        w.close()
        # The browser logs the 429 response itself; nothing else may be logged.
        assert [e for e in w.errors if "429" not in e] == [] and w.dialogs == []
    finally:
        server.close()


@pytest.mark.slow
def test_real_requests_with_origin_headers(site):
    allowed = site["allowed"].rstrip("/")
    for host in (None, "policy.example.org"):  # loopback, and a real host name (where Gradio would echo)
        headers = {"Host": host} if host else {}
        r = httpx.post(site["app"] + "/api/ask", json={"question": TRADE_QUESTION}, timeout=30,
                       headers={**headers, "Origin": allowed})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == allowed
        r = httpx.post(site["app"] + "/api/ask", json={"question": TRADE_QUESTION}, timeout=30,
                       headers={**headers, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(site["app"] + "/gradio_api/info", timeout=30, headers={**headers, "Origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


class PrefixProxy:
    """A reverse proxy on localhost as a site would run one: `/policy-desk/*` → the app's `/*`,
    prefix stripped, X-Forwarded-* set, responses streamed through (SSE included)."""

    PREFIX = "/policy-desk"

    def __init__(self, upstream: str):
        client = httpx.Client(timeout=30)
        prefix = self.PREFIX

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                if not self.path.startswith(prefix + "/"):  # the rest of the site (the browser asks for /favicon.ico)
                    self.send_response(204)
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length", "accept-encoding")}
                headers.update({"X-Forwarded-For": self.client_address[0], "X-Forwarded-Host": self.headers["Host"],
                                "X-Forwarded-Proto": "http", "Accept-Encoding": "identity"})
                request = client.build_request(self.command, upstream + self.path[len(prefix):],
                                               headers=headers, content=body)
                r = client.send(request, stream=True)
                try:
                    self.send_response(r.status_code)
                    for k, v in r.headers.multi_items():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in r.iter_raw():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                finally:
                    r.close()

            do_GET = do_POST = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}{prefix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_served_under_a_path_prefix_behind_a_reverse_proxy(seed_assistant, settings, browser):
    proxied = settings.with_(root_path=PrefixProxy.PREFIX, trust_proxy=True)
    server = Uvicorn(build_server(seed_assistant, proxied), root_path=proxied.web.root_path)
    proxy = PrefixProxy(server.url)
    try:
        w = Watched(browser, viewport=(400, 600))
        w.page.goto(proxy.url + "/embed")
        answer = embed_ask(w.page, TRADE_QUESTION)
        assert "40.7 per cent" in answer.inner_text() and answer.locator(".pd-notes li").count() >= 1

        w.page.goto(proxy.url + "/")
        box = w.page.locator("#question textarea")
        box.fill("Who is Liu Weidong?")
        box.press("Enter")
        expect(w.page.locator("#sources .pd-source").first).to_be_visible(timeout=ANSWER_MS)
        w.close()
        assert w.dialogs == [] and w.errors == []
    finally:
        proxy.close()
        server.close()


# --- a reader trusts an answer at a glance (issue #13) ----------------------------------------

def ask_api(app_url: str, question: str) -> dict:
    return httpx.post(app_url + "/api/ask", json={"question": question}, timeout=30).json()


@pytest.mark.slow
def test_quote_link_opens_the_article_scrolled_to_the_quote(site, browser):
    w = Watched(browser, viewport=(400, 600))
    w.page.goto(site["app"] + "/embed")
    answer = embed_ask(w.page, LIGHTHOUSE_QUESTION)
    assert "2.4 million pounds" in answer.locator(".pd-text").inner_text()
    cited = next(c for c in ask_api(site["app"], LIGHTHOUSE_QUESTION)["citations"] if "2.4 million" in c["quote"])
    assert cited["link"] == quote_link(site["newsroom"].url, cited["quote"]) and "#:~:text=" in cited["link"]

    answer.locator(".pd-ref").first.click()
    link = answer.locator(".pd-notes details[open] a")
    assert link.get_attribute("href") == cited["link"]
    with w.context.expect_page() as opened:
        link.click()
    article = opened.value
    article.wait_for_load_state()
    assert article.url == cited["link"]
    # The browser scrolled past 120 other items to the quoted paragraph, which is now on screen.
    article.wait_for_function("() => window.scrollY > 1000", timeout=10_000)
    box = article.locator("#story p", has_text="2.4 million pounds").bounding_box()
    assert 0 <= box["y"] < article.viewport_size["height"], box
    w.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.slow
def test_a_shared_embed_link_asks_on_load_and_copy_gives_markdown_with_sources(site, browser):
    w = Watched(browser, viewport=(400, 600), permissions=["clipboard-read", "clipboard-write"])
    question = "How much wheat did Kansas farmers harvest?"
    w.page.goto(site["app"] + "/embed?q=" + quote_plus(question))
    answer = w.page.locator(".pd-a").last
    expect(answer).to_contain_text("420 million bushels", timeout=ANSWER_MS)
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_MS)
    expect(w.page.locator(".pd-q")).to_have_text(question)

    answer.get_by_role("button", name="Copy").click()
    expect(answer.locator(".pd-status")).to_have_text("Copied the answer and its sources.")
    copied = w.page.evaluate("navigator.clipboard.readText()")
    expected = clipboard_markdown(question, ask_api(site["app"], question),
                                  ask_url=site["app"] + "/?q=" + quote_plus(question))
    assert copied == expected  # the page builds the same Markdown as share.clipboard_markdown
    assert "1. [Wheat harvest hits record in Kansas](<https://example.org/wheat#:~:text=" in copied
    w.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.slow
def test_embed_at_320_px_by_keyboard_alone_and_feedback_listed_by_the_cli(site, browser, tmp_path):
    w = Watched(browser, viewport=(320, 640))
    page = w.page
    page.goto(site["app"] + "/embed")
    expect(page.locator("#pd-knows")).to_have_text(
        "5 articles from Coast Courier, Evil <b>Wire</b>, Metro Gazette and 2 more, "
        "2022-08-02 to 2025-06-12 (1 of unknown date).")  # what the desk knows, as text

    def focused() -> dict:
        return page.evaluate("""() => { const e = document.activeElement;
            return {id: e.id, cls: e.className, text: e.textContent, tag: e.tagName,
                    outline: getComputedStyle(e).outlineStyle}; }""")

    def tab_to(test, back=False) -> dict:
        for _ in range(20):
            page.keyboard.press("Shift+Tab" if back else "Tab")
            if test(now := focused()):
                return now
        raise AssertionError(f"never reached by Tab; last focus {now}")

    tab_to(lambda f: f["id"] == "pd-question")
    page.keyboard.type(LIGHTHOUSE_QUESTION)
    page.keyboard.press("Enter")  # Enter asks
    answer = page.locator(".pd-a").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=ANSWER_MS)
    assert "2.4 million pounds" in answer.locator(".pd-text").inner_text()

    ref = tab_to(lambda f: "pd-ref" in f["cls"], back=True)
    assert re.fullmatch(r"\[\d+\]", ref["text"]) and ref["outline"] == "solid"  # focus is visible
    page.keyboard.press("Enter")  # its footnote opens, and takes the focus
    expect(answer.locator(f"#pd-note-1-{ref['text'][1:-1]}")).to_have_attribute("open", "")
    assert focused()["tag"] == "SUMMARY"
    assert tab_to(lambda f: f["text"].strip() == "Helpful")["outline"] == "solid"
    page.keyboard.press("Enter")
    expect(answer.locator(".pd-status")).to_contain_text("Thanks!")
    assert focused()["tag"] == "TEXTAREA"  # the optional comment
    page.keyboard.type("Right figure, but which year?")
    page.keyboard.press("Enter")
    expect(answer.locator(".pd-status")).to_have_text("Comment sent. Thank you!")

    # Nothing scrolls sideways at 320 px, with a footnote and the actions open.
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.getElementById('pd-log').scrollWidth]")
    assert max(widths) <= 320, widths
    page.locator("#pd-log").evaluate("log => { log.scrollTop = log.scrollHeight; }")
    page.screenshot(path=str(tmp_path / "embed-320.png"))  # docs/embed-narrow.png (copied by hand)
    w.close()
    assert w.dialogs == [] and w.errors == []

    listed = subprocess.run([sys.executable, "-m", "assistant", "feedback", "--index", str(site["index"]), "--json"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    entry = next(e for e in json.loads(listed.stdout) if e["comment"] == "Right figure, but which year?")
    assert (entry["rating"], entry["question"], entry["via"]) == ("up", LIGHTHOUSE_QUESTION, "api")
    assert "2.4 million pounds" in entry["answer"]
    assert entry["citations"][0]["link"].startswith(site["newsroom"].url + "#:~:text=")
    assert entry["settings"]["llm"] == "extractive"


@pytest.mark.slow
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_embed_passes_axe_and_is_readable_in_light_and_dark(site, browser, theme):
    w = Watched(browser, viewport=(400, 600), bypass_csp=True)  # axe is injected as a script
    w.page.goto(site["app"] + f"/embed?theme={theme}")
    assert axe_violations(w.page) == []  # the empty state
    embed_ask(w.page, "What is the population of Brazil?")  # a refusal, naming the closest articles
    answer = embed_ask(w.page, "How much wheat did Kansas farmers harvest?")
    answer.locator(".pd-ref").first.click()
    answer.get_by_role("button", name="Not helpful").click()
    expect(answer.locator(".pd-comment textarea")).to_be_visible()
    background = w.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == {"light": "rgb(255, 255, 255)", "dark": "rgb(13, 17, 23)"}[theme]
    assert axe_violations(w.page) == []  # includes colour contrast: every text readable on its background
    w.close()
    assert w.dialogs == [] and w.errors == []


@pytest.mark.slow
def test_chat_feedback_is_rate_limited_like_asking(seed_assistant, settings, browser, tmp_path):
    limited = settings.with_(rate_limit="2/minute", feedback_db=tmp_path / "feedback.sqlite3")
    server = Uvicorn(build_server(seed_assistant, limited))
    try:
        w = Watched(browser, viewport=(1280, 900))
        page = w.page
        page.goto(server.url + "/?q=" + quote_plus(TRADE_QUESTION))
        expect(page.locator("#sources .pd-source").first).to_be_visible(timeout=ANSWER_MS)
        page.locator("#chat button[aria-label='Like']").last.click()  # 1
        status = page.locator("#feedback-status")
        expect(status).to_contain_text("Thanks for the feedback", timeout=ANSWER_MS)
        page.locator("#feedback-text textarea").fill("First comment")
        page.locator("#feedback-send").click()  # 2
        expect(status).to_contain_text("Comment sent", timeout=ANSWER_MS)
        page.locator("#chat button[aria-label='Dislike']").last.click()  # 3: over the limit
        expect(status).to_contain_text("That is more feedback at once than this assistant takes. Please try again in",
                                       timeout=ANSWER_MS)
        w.close()
        entry, = FeedbackStore(limited.storage.feedback_db).entries()
        assert (entry.rating, entry.comment, entry.via) == ("up", "First comment", "chat")
        assert w.dialogs == [] and w.errors == []
    finally:
        server.close()
