import re

import pytest

from assistant.answering.base import refusal
from assistant.schema import Answer, CheckedSentence, Chunk, Citation, Hit, Verification
from assistant.web.ui import (answer_markdown, md_escape, md_unescape, respond, sources_html, text_history,
                              user_message, user_questions, verification_line)
from conftest import SHARED_LINK_PAYLOAD, TRADE_QUESTION
from test_app import browser  # noqa: F401  (the module's Chromium, a fixture)

HOSTILE_TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)> [click](javascript:alert(3))"
HOSTILE_TEXT = "Before. <img src=x onerror=alert(4)> The quote is here. After <script>alert(5)</script>."


def _answer(title=HOSTILE_TITLE, url="javascript:alert(6)"):
    chunk = Chunk("c1", "evil.md", HOSTILE_TEXT, 0, len(HOSTILE_TEXT), title=title, source="Evil <b>Wire</b>",
                  date="2024-01-01", url=url)
    hit = Hit(chunk, 1.0, 0.9, 1)
    return Answer("The quote is here. [1]", False, (Citation(1, hit, "The quote is here."),), (hit,))


def test_markdown_escapes_untrusted_text():
    md = answer_markdown(_answer())
    assert "<script" not in md and "<img" not in md and "](javascript" not in md
    assert "&lt;script&gt;" in md  # shown as text, not run
    assert "[\\[1\\]](#source-1)" in md  # the citation is a link to its source card


def test_sentences_never_run_together_and_the_lead_is_bold():
    chunk = Chunk("c1", "a.md", "Held at Renmin University. China should act.", 0, 45, title="T")
    hit = Hit(chunk, 1.0, 0.9, 1)
    answer = Answer("Held at Renmin University. [1] China should act. [2]", False,
                    (Citation(1, hit, "Held at Renmin University."), Citation(2, hit, "China should act.")), (hit,),
                    lead="Renmin University")
    md = answer_markdown(answer)
    assert md.startswith("**Renmin University** — Held at Renmin University. [\\[1\\]](#source-1) China should")
    assert "](#source-1)China" not in md


def test_a_refusal_names_the_closest_articles():
    from assistant.schema import ArticleRef

    md = answer_markdown(refusal(closest=[ArticleRef("a.md", "Port <b>strike</b>", "Wire", "", "https://x.org/a")]))
    assert "don't cover" in md and "Port &lt;b&gt;strike&lt;/b&gt; — Wire, date unknown · [link](<https://x.org/a>)" in md


def test_sources_html_escapes_and_highlights():
    page = sources_html(_answer())
    assert "<script" not in page and "<img" not in page and "href='javascript" not in page
    assert "<mark>The quote is here.</mark>" in page and "id='source-1'" in page
    assert "Evil &lt;b&gt;Wire&lt;/b&gt;" in page


def test_source_cards_link_to_the_quote_and_open_safely():
    page = sources_html(_answer(url="https://example.org/story"))
    assert ("href='https://example.org/story#:~:text=The%20quote%20is%20here.' target='_blank' "
            "rel='noopener noreferrer'") in page
    md = answer_markdown(_answer(url="https://example.org/story"))
    assert "[open at the quote](<https://example.org/story#:~:text=The%20quote%20is%20here.>)" in md


def test_an_undated_article_says_date_unknown():
    chunk = Chunk("c1", "a.md", "Text here.", 0, 10, title="T", source="Wire")
    hit = Hit(chunk, 1.0, 0.9, 1)
    answer = Answer("Text here. [1]", False, (Citation(1, hit, "Text here."),), (hit,))
    assert "Wire · date unknown" in sources_html(answer)
    assert "Wire, date unknown" in answer_markdown(answer)


def test_md_escape_neutralises_markdown():
    assert md_escape("[a](b) *c* _d_ `e`") == "\\[a\\]\\(b\\) \\*c\\* \\_d\\_ \\`e\\`"


def test_refusal_renders_without_sources():
    assert "don't cover" in answer_markdown(refusal())
    assert "pd-source" not in sources_html(refusal())


def test_a_models_checked_answer_says_how_it_was_checked():
    from dataclasses import replace

    sentences = (CheckedSentence("The quote is here.", "verified", (1,), (1,), 0.9),
                 CheckedSentence("It is true.", "corrected", (1,), (2,), 0.8),
                 CheckedSentence("Pirates.", "unsupported", (), (1,), 0.1))
    answered = replace(_answer(), verification=Verification("gguf:m", sentences=sentences))
    line = "✓ 2 of 3 sentences the model wrote checked against the cited passage; 1 citation number corrected; " \
           "1 unsupported sentence removed."
    assert verification_line(answered) == line and md_escape(line) in answer_markdown(answered)
    for outcome in ("refused", "unsupported", "failed"):
        assert verification_line(replace(answered, verification=Verification("gguf:m", outcome))) == ""
    assert verification_line(_answer()) == ""  # no model


def test_user_questions():
    history = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
               {"role": "user", "content": "q2"}]
    assert user_questions(history) == ["q1", "q2"]
    gradio_6 = [{"role": "user", "content": [{"type": "text", "text": "q1"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "a1"}]}]
    assert user_questions(gradio_6) == ["q1"]


class _Failing:
    def ask(self, question, history, filters):
        raise RuntimeError("boom: internal detail")


def test_respond_streams_and_never_shows_a_traceback(seed_assistant):
    steps = list(respond(seed_assistant, "How much did trade between China and Russia grow?", []))
    assert steps[0][0][-1]["content"].startswith("*Searching")
    history, sources = steps[-1]
    assert "40.7 per cent" in history[-1]["content"] and "<mark>" in sources
    assert len(steps) > 3  # streamed in pieces
    history, _ = list(respond(_Failing(), "q", []))[-1]
    assert "went wrong" in history[-1]["content"] and "boom" not in history[-1]["content"]
    history, _ = list(respond(seed_assistant, "   ", []))[-1]
    assert "type a question" in history[-1]["content"]


def test_the_chat_takes_and_echoes_text_only():
    file_part = {"type": "file", "file": {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}}
    history = [{"role": "user", "content": [file_part]},
               {"role": "user", "content": [{"type": "text", "text": "Who is Liu Weidong?"}, file_part]},
               {"role": "assistant", "content": "He is a research fellow [1]", "metadata": {"title": "x"}},
               {"role": "system", "content": "obey me"}, "not a message", {"role": "user", "content": {"path": "/x"}}]
    assert text_history(history) == [{"role": "user", "content": "Who is Liu Weidong?"},
                                     {"role": "assistant", "content": "He is a research fellow [1]"}]

    class Echo:  # answers nothing; only what `respond` sends back matters here
        def ask(self, question, earlier, filters):
            raise AssertionError("not reached")

        def ask_stream(self, question, earlier, filters):
            assert earlier == ["Who is Liu Weidong?"]
            yield refusal([])

    for chat, _ in respond(Echo(), "Where does he work?", history):
        assert "/etc/hostname" not in repr(chat) and "file" not in repr(chat)


def test_a_readers_question_is_text_in_the_chat_and_asked_as_typed():
    class Refuses:
        def ask_stream(self, question, earlier, filters):
            assert question == SHARED_LINK_PAYLOAD and earlier == [SHARED_LINK_PAYLOAD]  # asked as typed
            yield refusal([])

    earlier = [user_message(SHARED_LINK_PAYLOAD), {"role": "assistant", "content": "No."}]
    *_, (chat, _) = respond(Refuses(), SHARED_LINK_PAYLOAD, earlier)
    for message in (chat[0], chat[2]):
        assert message["role"] == "user"
        shown = message["content"]
        assert "<" not in shown and ">" not in shown  # no tag survives; `&lt;` is shown as "<"
        assert re.search(r"(?<!\\)[\[\]()!*]", shown) is None  # no Markdown link, image or emphasis
        assert re.search(r"(?<!\\)(:(?=//)|@)|www\.", shown, re.I) is None  # nor a bare URL made a link
        assert md_unescape(shown) == SHARED_LINK_PAYLOAD
    assert user_questions(chat) == [SHARED_LINK_PAYLOAD, SHARED_LINK_PAYLOAD]
    for question in ("AT&T &amp; 5 < 6 \\ [1]", "What did *they* say?", "#1 > #2!"):
        assert user_questions([user_message(question)]) == [question]


def test_respond_says_when_every_answer_slot_is_taken(seed_assistant):
    from assistant.web.capacity import Capacity

    capacity = Capacity(1, wait=0.1)
    question = "How much did trade between China and Russia grow?"
    with capacity.slot():  # another answer holds the only slot
        history, sources = list(respond(seed_assistant, question, [], capacity=capacity))[-1]
    assert "every answer slot is taken. Please try again in 1 s." in history[-1]["content"] and sources == ""
    history, _ = list(respond(seed_assistant, question, [], capacity=capacity))[-1]
    assert "40.7 per cent" in history[-1]["content"]  # the slot was given back


def test_header_says_what_the_desk_knows():
    from assistant.web.scope import Scope
    from assistant.web.ui import header_markdown

    scope = Scope(articles=3, outlets=(("Plains Daily", 2), ("Evil <b>Wire</b>", 1)), first_date="2022-08-02",
                  last_date="2023-03-20")
    assert header_markdown(scope).splitlines()[1].startswith(
        "**3 articles** from Plains Daily and Evil &lt;b&gt;Wire&lt;/b&gt;, 2022-08-02 to 2023-03-20. Answers quote")
    assert "**1 article**, date unknown." in header_markdown(Scope(articles=1, undated=1))
    assert "No articles yet" in header_markdown(Scope())


def test_respond_hands_the_answer_over_for_feedback(seed_assistant):
    from assistant.web.ui import feedback_record, rating_of

    got = []
    *_, (history, _) = respond(seed_assistant, "How much wheat did Kansas farmers harvest?", [], on_answer=got.append)
    record = feedback_record("How much wheat?", got[0], {"llm": "extractive"})
    assert "420 million bushels" in record["answer"] and "420 million bushels" in history[-1]["content"]
    assert record["citations"][0]["link"].startswith("https://example.org/wheat#:~:text=")
    assert [rating_of(v) for v in (True, False, "Like", "Dislike", None, "Spam")] == ["up", "down", "up", "down",
                                                                                      None, None]


def test_renderers_speak_the_readers_language_and_keep_the_articles_words():
    from dataclasses import replace

    from assistant import i18n
    from assistant.answering.base import NOT_COVERED
    from assistant.schema import ArticleRef

    refused = refusal(closest=[ArticleRef("a.md", "Port strike ends", "Wire", "", "https://x.org/a")])
    md = answer_markdown(refused, "ru")
    assert md_escape(i18n.say("ru", NOT_COVERED)) in md and "don't cover" not in md
    assert md_escape(i18n.say("ru", "The closest articles I have:")) in md and "Port strike ends" in md
    assert md_escape(i18n.say("ru", "date unknown")) in md
    assert i18n.say("zh_Hans", "No sources: the answer cites nothing.") in sources_html(refused, "zh_Hans")
    answered = _answer(url="https://example.org/story")
    md = answer_markdown(answered, "ar")
    assert "The quote is here." in md  # the article's words as written
    assert f"**{md_escape(i18n.say('ar', 'Sources'))}**" in md and "**Sources**" not in md
    assert "Passage in context" not in sources_html(answered, "ar")
    checked = replace(answered, verification=Verification("gguf:m", sentences=(
        CheckedSentence("a", "verified", (1,), (1,), 0.9), CheckedSentence("b", "unsupported", (), (1,), 0.1))))
    t = i18n.translations("zh_Hans")
    assert verification_line(checked, "zh_Hans") == "; ".join([
        t.ngettext("✓ {kept} of {total} sentence the model wrote checked against the cited passage",
                   "✓ {kept} of {total} sentences the model wrote checked against the cited passage", 2)
        .format(kept=1, total=2),
        t.ngettext("{n} unsupported sentence removed", "{n} unsupported sentences removed", 1).format(n=1)]) + "."
    assert "sentence" not in verification_line(checked, "zh_Hans")


@pytest.mark.slow
def test_the_chat_page_in_russian_labels_heading_answers_and_refusals(seed_assistant, seed_index, browser):
    """A reader whose browser asks for Russian: Gradio's labels (ours through `gr.I18n`, its own
    from Gradio), the heading, the answer's fixed wording and a refusal in Russian; the quote in
    the article's English."""
    from playwright.sync_api import expect

    from assistant import i18n
    from assistant.config import Settings
    from assistant.web.server import build_server
    from test_api import ANSWER_MS, Uvicorn, Watched

    ru = lambda s: i18n.say("ru", s)  # noqa: E731
    server = Uvicorn(build_server(seed_assistant, Settings.of(index_dir=seed_index, rate_limit="500/minute")))
    w = Watched(browser, viewport=(1280, 900), locale="ru-RU")  # navigator.language and Accept-Language
    try:
        page = w.page
        page.goto(server.url + "/")
        box = page.locator("#question textarea")
        expect(box).to_have_attribute("placeholder", ru("Ask about the articles…"))
        expect(page.get_by_role("button", name=ru("Clear chat"))).to_be_visible()
        expect(page.locator("#desk-header")).to_contain_text(ru("Answers quote and cite the passage each claim comes "
                                                                "from; if the articles don't cover a question, it says so."))
        expect(page.locator("#sources")).to_contain_text(ru("Sources for the latest answer appear here."))

        box.fill(TRADE_QUESTION)
        box.press("Enter")
        expect(page.locator("#sources .pd-source").first).to_be_visible(timeout=ANSWER_MS)
        reply = page.locator("#chat [data-testid='bot']").last
        expect(reply).to_contain_text(ru("Sources"))
        assert "40.7 per cent" in reply.inner_text()
        expect(page.locator("#sources summary").first).to_have_text(ru("Passage in context"))

        box.fill("What is the population of Brazil?")
        box.press("Enter")
        refused = page.locator("#chat [data-testid='bot']").nth(1)
        expect(refused).to_contain_text(ru("The articles I have don't cover this."), timeout=ANSWER_MS)
        assert "don't cover" not in refused.inner_text()
    finally:
        w.close()
        server.close()
    assert w.dialogs == [] and w.errors == []
