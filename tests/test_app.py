"""The real app: `python app.py` launched on a free port, driven by gradio_client, Chromium and
plain HTTP (the API, the embed page and their headers are tested in depth in test_api.py).

The app starts on an empty tmp index, so it ingests a copy of the sample corpus first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from assistant.web.share import clipboard_markdown
from conftest import ROOT, SAMPLE, SHARED_LINK_PAYLOAD, TRADE_QUESTION, axe_violations

pytestmark = pytest.mark.slow

TRADE_QUOTE = "with the value surging by 40.7 per cent"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STARTUP_SECONDS = 90
ANSWER_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(corpus: Path, index: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.pop("EMBED_ALLOWED_ORIGINS", None)
    env.pop("TRUST_PROXY", None)
    env.update(ASSISTANT_CORPUS=str(corpus), ASSISTANT_INDEX=str(index), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False",
               PYTHONUNBUFFERED="1")
    return env


EMBEDDER = "https://news.example.org"


@contextmanager
def launched(base: Path, env: dict[str, str] | None = None, corpus: Path | None = None, index: Path | None = None):
    """`python app.py` on a free loopback port, with `env` added, serving `corpus` (default: a tmp
    copy of the sample corpus in `base`) from `index` (default: an empty index in `base`, so it
    ingests first): yields (url, log file)."""
    if corpus is None:
        corpus = base / "corpus"
        corpus.mkdir()
        shutil.copy(SAMPLE, corpus / SAMPLE.name)
    base.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{(port := free_port())}"
    log_path = base / "app.log"
    with open(log_path, "w", encoding="utf-8") as log:  # a file, not a pipe: a full pipe would stall the app
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env={**app_env(corpus, index or base / "index"), **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(proc, url, log_path, "/")
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_until_serving(proc: subprocess.Popen, url: str, log_path: Path, path: str,
                       deadline: float | None = None) -> None:
    """Wait until `app.py` (`proc`) answers `url + path` with 200; fail with its log if it exits
    first or `deadline` (a `time.monotonic()`; default STARTUP_SECONDS from now) passes."""
    deadline = deadline or time.monotonic() + STARTUP_SECONDS
    while True:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode} before serving:\n{log_path.read_text()}")
        try:
            if httpx.get(url + path, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"app.py did not answer on {url} within {STARTUP_SECONDS} s:\n{log_path.read_text()}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """`python app.py` serving a tmp copy of the sample corpus: (url, log file)."""
    with launched(tmp_path_factory.mktemp("app"), {"EMBED_ALLOWED_ORIGINS": EMBEDDER}) as served:
        yield served


@pytest.fixture(scope="module")
def app_url(app) -> str:
    return app[0]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Chat:
    """The chat page in a fresh browser context, with the dialogs and errors it raised."""

    def __init__(self, page):
        self.page = page
        self.context = page.context
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.box = page.locator("#question textarea")
        self.bot = page.locator("#chat [data-testid='bot']")
        self.user = page.locator("#chat [data-testid='user']")
        self.sources = page.locator("#sources")

    def submit(self) -> str:
        """Press Enter in the question box; wait for the whole answer; return its text."""
        before = self.bot.count()
        self.box.press("Enter")
        expect(self.bot).to_have_count(before + 1, timeout=ANSWER_MS)
        # The last update fills the sources panel (cards, or "no sources"); then the box is emptied.
        expect(self.sources.locator(".pd-source, .pd-empty").first).to_be_visible(timeout=ANSWER_MS)
        expect(self.box).to_have_value("", timeout=ANSWER_MS)
        return self.bot.last.inner_text()

    def ask(self, question: str) -> str:
        self.box.fill(question)
        return self.submit()


def open_chat(browser, url: str, viewport=(1280, 900), **options) -> Chat:
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **options)
    page = context.new_page()
    chat = Chat(page)
    page.goto(url)
    chat.box.wait_for(timeout=30_000)
    return chat


def closed(chat: Chat) -> None:
    """Close the chat's context; no dialog may have opened and no error been logged."""
    chat.context.close()
    assert chat.dialogs == [], f"the page opened dialogs: {chat.dialogs}"
    assert chat.errors == [], f"the page logged errors: {chat.errors}"


@pytest.fixture
def chat(browser, app_url):
    """The page in its own context; afterwards, no dialog may have opened and no error been logged."""
    chat = open_chat(browser, app_url + "/")
    yield chat
    closed(chat)


def message_text(message: dict) -> str:
    """A chat message's text: a plain string, or Gradio 6's list of typed parts."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def md_unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def test_page_reports_the_ingested_article(app_url):
    # The index started empty, so this count proves the app ingested the corpus at start-up.
    page = httpx.get(app_url + "/", timeout=10).text
    assert "**1 article** from South China Morning Post, date unknown." in page
    health = httpx.get(app_url + "/api/health", timeout=10).json()
    assert health["outlets"] == [{"name": "South China Morning Post", "articles": 1}]
    assert health["dates"] == {"first": None, "last": None, "undated": 1}


def test_app_serves_api_and_embed_with_the_allowlist_from_the_environment(app):
    url, log = app
    assert httpx.get(url + "/api/health", timeout=10).json()["articles"] == 1
    embed = httpx.get(url + "/embed", timeout=10)
    assert embed.status_code == 200 and 'id="pd-question"' in embed.text
    assert f"frame-ancestors 'self' {EMBEDDER}" in embed.headers["content-security-policy"]
    assert httpx.get(url + "/", timeout=10).headers["content-security-policy"] == "frame-ancestors 'self'"
    r = httpx.post(url + "/api/ask", json={"question": TRADE_QUESTION}, headers={"Origin": EMBEDDER}, timeout=30)
    assert "40.7 per cent" in r.json()["answer"] and r.headers["access-control-allow-origin"] == EMBEDDER
    assert f"/embed may be framed by, and /api/* called from: {EMBEDDER}" in log.read_text()


def test_gradio_api_ask_returns_cited_answer_and_sources(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False, analytics_enabled=False, download_files=False)
    history, sources = client.predict(TRADE_QUESTION, [], api_name="/ask")  # a generator: the final output

    last = history[-1]
    assert last["role"] == "assistant"
    text = message_text(last)
    assert "40.7 per cent" in md_unescape(text)  # the chat message is Markdown, with `.` escaped
    assert "(#source-1)" in text  # `[1]` links to its source card
    assert "<mark>" in sources
    assert TRADE_QUOTE in sources
    assert "id='source-1'" in sources


def test_gradio_api_filters_by_outlet_and_date(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False, analytics_enabled=False, download_files=False)
    history, sources = client.predict(TRADE_QUESTION, [], ["South China Morning Post"], "", "", api_name="/ask")
    assert "40.7 per cent" in md_unescape(message_text(history[-1]))
    # The sample article is undated: a date range excludes it, and the answer says no article matches.
    history, sources = client.predict(TRADE_QUESTION, [], [], "2020-01-01", "", api_name="/ask")
    assert "No article matches these filters" in message_text(history[-1]) and "pd-source" not in sources
    history, _ = client.predict(TRADE_QUESTION, [], [], "last week", "", api_name="/ask")
    assert "use YYYY-MM-DD" in message_text(history[-1])


def test_browser_trade_question_cites_and_highlights(chat, tmp_path):
    answer = chat.ask(TRADE_QUESTION)

    assert "40.7 per cent" in answer
    assert "[1]" in answer
    assert chat.sources.locator(".pd-source").count() >= 1
    assert TRADE_QUOTE in chat.sources.inner_text()
    assert chat.sources.locator("mark").count() >= 1
    # The same view as docs/screenshot.png; written to tmp so tests never touch the repo.
    shot = tmp_path / "answer.png"
    chat.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_browser_example_then_clear_chat(chat):
    chat.page.get_by_text("Who is Liu Weidong?", exact=True).click()
    expect(chat.box).to_have_value("Who is Liu Weidong?")

    answer = chat.submit()

    assert "Liu Weidong" in answer
    assert "[1]" in answer
    assert chat.sources.locator(".pd-source").count() >= 1

    chat.page.get_by_role("button", name="Clear chat").click()

    expect(chat.bot).to_have_count(0)
    expect(chat.user).to_have_count(0)
    expect(chat.sources.locator(".pd-source")).to_have_count(0)


def test_browser_uncovered_question_shows_no_sources(chat):
    answer = chat.ask("What is the population of Brazil?")

    assert "don't cover" in answer
    assert chat.sources.locator(".pd-source").count() == 0


def test_browser_followup_uses_earlier_question(chat):
    first = chat.ask("Who is Liu Weidong?")
    assert "Liu Weidong" in first

    second = chat.ask("What did he say the Biden administration was trying to do?")

    # The article: "He said the Biden administration was trying to link the two countries together
    # on various issues to induce an alliance between Beijing and Moscow."
    assert "alliance" in second


def test_browser_followup_carries_the_chat_history(chat):
    chat.ask("Who is Liu Weidong?")

    answer = chat.ask("Where does he work?")

    # The follow-up reached the assistant with its subject (the API and CLI tests check the
    # passages); whether it is answered is the answer-or-refuse model's call, and either way
    # the reader gets a cited answer or a refusal naming where to look.
    assert "[1]" in answer or ("don't cover" in answer and "closest articles" in answer)


def test_an_ingest_while_serving_adds_edits_and_deletes_without_a_failed_request(tmp_path):
    from conftest import write_article

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    tram = write_article(corpus, "tram.md", "Council approves tram line", "The city council approved a tram line to "
                         "the airport on Monday. The tram line will cost 310 million euros.")
    write_article(corpus, "wheat.md", "Wheat harvest hits record", "Farmers in Kansas harvested a record 420 million "
                  "bushels of wheat this summer, the state agriculture department said.")
    port_question = "Why did dock workers at Zeebrugge end their strike?"
    questions = [TRADE_QUESTION, "How many bushels of wheat did Kansas farmers harvest?",
                 "How much will the tram line cost?", port_question]
    with launched(tmp_path, {"ASSISTANT_REFRESH_SECONDS": "0.5", "ASSISTANT_RATE_LIMIT": "100000/minute"},
                  corpus=corpus) as (url, log):
        asked: list[tuple[float, str, int, dict]] = []  # (when, question, status, body)
        stop = threading.Event()

        def reader() -> None:  # one client asking without pause, bounded by `stop` and a count
            with httpx.Client(timeout=60) as http:
                for i in range(2000):
                    if stop.is_set():
                        return
                    question = questions[i % len(questions)]
                    try:
                        r = http.post(url + "/api/ask", json={"question": question})
                        asked.append((time.monotonic(), question, r.status_code,
                                      r.json() if r.status_code == 200 else {"text": r.text}))
                    except httpx.HTTPError as exc:  # counted as a failed request
                        asked.append((time.monotonic(), question, repr(exc), {}))

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            time.sleep(2)
            tram.write_text(tram.read_text().replace("310 million", "450 million"))
            write_article(corpus, "port.md", "Port strike ends", "Dock workers at the Zeebrugge port ended their "
                          "strike on Friday after winning a 6 per cent raise.")
            (corpus / "wheat.md").unlink()
            ingest = subprocess.run([sys.executable, "-m", "assistant", "ingest", "--quiet"], cwd=ROOT,
                                    env=app_env(corpus, tmp_path / "index"), capture_output=True, text=True,
                                    timeout=300)
            assert ingest.returncode == 0, ingest.stderr
            assert "added 1, updated 1, removed 1" in ingest.stdout
            deadline = time.monotonic() + 60
            while not any(q == port_question and status == 200 and not body["refused"]
                          and body["citations"][0]["article_id"] == "port.md" for _, q, status, body in asked):
                assert time.monotonic() < deadline, ("the new article was not answered within 60 s of the ingest:\n"
                                                     f"{asked[-4:]}\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            swapped = time.monotonic()
            time.sleep(2)
        finally:
            stop.set()
            thread.join(timeout=120)
    assert [status for *_, status, _ in asked if status != 200] == []  # 0 failed requests
    after = [body for when, _, _, body in asked if when > swapped]
    assert len(after) >= 2 and len(asked) > 10
    for body in after:  # the deleted article is gone from passages and citations; the edit is in
        assert "wheat.md" not in {p["article_id"] for p in body["passages"]}
        assert "310 million" not in " ".join(p["text"] for p in body["passages"])
    assert "lexical index rebuilt" in log.read_text()


def test_browser_shared_link_asks_on_load_and_copy_gives_markdown(browser, app_url):
    chat = open_chat(browser, app_url + "/?q=" + quote_plus(TRADE_QUESTION),
                     permissions=["clipboard-read", "clipboard-write"])
    expect(chat.bot.last).to_contain_text("40.7 per cent", timeout=ANSWER_MS)
    expect(chat.sources.locator(".pd-source").first).to_be_visible(timeout=ANSWER_MS)
    expect(chat.user.last).to_have_text(TRADE_QUESTION)
    copy = chat.page.locator("#copy-answer")
    expect(copy).to_be_enabled(timeout=ANSWER_MS)
    copy.click()
    expected = clipboard_markdown(TRADE_QUESTION, httpx.post(app_url + "/api/ask", json={"question": TRADE_QUESTION},
                                                             timeout=30).json(),
                                  ask_url=app_url + "/?q=" + quote_plus(TRADE_QUESTION))
    chat.page.wait_for_function("async (want) => (await navigator.clipboard.readText()) === want", arg=expected,
                                timeout=10_000)
    assert "Sources:\n1. China should reconsider Russia ties" in expected and "date unknown" in expected
    closed(chat)


def test_browser_shared_link_question_is_text_everywhere(browser, app_url):
    """Issue 18, finding 1: a `/?q=` link's question is the reader's words shown as text, as in
    `/embed` — no form, link, image, video or style from it reaches the chat bubble or the clipboard."""
    chat = open_chat(browser, app_url + "/?q=" + quote_plus(SHARED_LINK_PAYLOAD),
                     permissions=["clipboard-read", "clipboard-write"])
    copy = chat.page.locator("#copy-answer")
    expect(copy).to_be_enabled(timeout=ANSWER_MS)  # asked and answered
    expect(chat.user.last).to_have_text(SHARED_LINK_PAYLOAD)
    for tag in ("form", "input", "a", "img", "video", "style"):
        assert chat.user.last.locator(tag).count() == 0, tag
    assert chat.page.locator("[href*='evil.example'], [src*='evil.example'], [action*='evil.example']").count() == 0
    copy.click()
    chat.page.wait_for_function("async () => (await navigator.clipboard.readText()).startsWith('**Q: ')",
                                timeout=10_000)
    pasted = chat.page.evaluate("async () => await navigator.clipboard.readText()")
    question, _, asked = pasted.partition("\n\nAsked on Policy Desk: ")
    assert question.startswith("**Q: \\<form action=") and "](https://evil" not in question
    assert parse_qs(urlsplit(asked.strip("<>")).query)["q"] == [SHARED_LINK_PAYLOAD]  # the link asks it as typed
    closed(chat)


def test_browser_feedback_is_stored_and_listed_by_the_cli(chat, app, tmp_path):
    chat.ask(TRADE_QUESTION)
    chat.page.locator("#chat button[aria-label='Dislike']").last.click()
    expect(chat.page.locator("#feedback-status")).to_contain_text("Thanks for the feedback", timeout=ANSWER_MS)
    comment = chat.page.locator("#feedback-text textarea")
    comment.fill("Which months? The answer should say.")
    chat.page.screenshot(path=str(tmp_path / "chat-feedback.png"))  # to look at by hand; no page in docs/ shows it
    chat.page.locator("#feedback-send").click()
    expect(chat.page.locator("#feedback-status")).to_contain_text("Comment sent", timeout=ANSWER_MS)

    index = app[1].parent / "index"
    listed = subprocess.run([sys.executable, "-m", "assistant", "feedback", "--index", str(index), "--json"],
                            cwd=ROOT, env=app_env(index.parent / "corpus", index), capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    entry = next(e for e in json.loads(listed.stdout) if e["comment"] == "Which months? The answer should say.")
    assert (entry["rating"], entry["question"], entry["via"]) == ("down", TRADE_QUESTION, "chat")
    assert "40.7 per cent" in entry["answer"] and entry["citations"][0]["n"] == 1
    assert entry["citations"][0]["link"] is None  # the sample article has no URL
    assert entry["settings"]["top_k"] == 5
    text = subprocess.run([sys.executable, "-m", "assistant", "feedback", "--index", str(index)], cwd=ROOT,
                          env=app_env(index.parent / "corpus", index), capture_output=True, text=True, timeout=120)
    assert "👎 down" in text.stdout and "comment: Which months? The answer should say." in text.stdout


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_browser_chat_on_a_phone_passes_axe(browser, app_url, scheme):
    chat = open_chat(browser, app_url + "/?q=" + quote_plus(TRADE_QUESTION), viewport=(390, 844),
                     color_scheme=scheme, bypass_csp=True)  # axe is injected as a script
    expect(chat.sources.locator(".pd-source").first).to_be_visible(timeout=ANSWER_MS)
    expect(chat.box).to_have_value("", timeout=ANSWER_MS)
    assert chat.page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    expect(chat.box).to_be_in_viewport()
    assert axe_violations(chat.page) == []
    closed(chat)
