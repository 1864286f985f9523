"""The one place gradio is imported: pure renderers, `build_app(assistant)`, and
`mount_chat`, which puts the chat page on the server's FastAPI app (`server.build_server`).

Article text is untrusted: every title, quote and URL goes through `md_escape`,
`html.escape` or `share.safe_url` before it reaches the page. What a client sends is untrusted
too: the chat takes text only (`text_history`; `security.TextOnly` refuses a request naming a
file before Gradio reads it) and counts against the API's rate limit.
"""

from __future__ import annotations

import html
import logging
import re
from contextlib import nullcontext
from typing import Callable, Iterator, Sequence

from .. import i18n
from ..config import WebSettings
from ..errors import SOMETHING_WRONG, AssistantError
from ..i18n import N_
from ..feedback import MAX_COMMENT, FeedbackStore, answer_settings, feedback_path, over_limit
from ..schema import Answer, ArticleRef, Citation, Filters
from .capacity import Capacity
from .observe import Observer
from .scope import Scope, desk_scope
from .schemas import CitationOut
from .share import clipboard_markdown, quote_link, safe_url

log = logging.getLogger(__name__)

# Gradio's own API, where the page posts questions: requests here carry text (`security.TextOnly`).
CHAT_API = "/gradio_api/"
# The paths the chat page and `gradio_client` use; Gradio's others (uploads, file and proxy
# routes, monitoring, run history, the `call/` API for curl, ...) answer 404 (`security.OnlyPaths`):
# curl has our own `/api/ask`.
# `/gradio_api/run/predict` runs the unqueued events (an example into the box); it refuses queued
# ones (`api_open=False`), so questions always wait in the bounded queue.
CHAT_PATHS = ("/", "/config", "/config/", "/theme.css", "/favicon.ico", "/robots.txt", "/assets/*", "/static/*",
              "/gradio_api/info", "/gradio_api/info/", "/gradio_api/queue/join", "/gradio_api/queue/data",
              "/gradio_api/cancel", "/gradio_api/run/predict",
              # The page keeps one connection here while open, because the chat holds per-reader state
              # (what each answer was, for 👍/👎); when it closes, Gradio drops that state.
              "/gradio_api/heartbeat/*")
QUEUE_SIZE = 32

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")
# Where the chat's Markdown (marked, GitHub-flavoured) would make a link of plain text: `https://`,
# `www.` and e-mail addresses. A backslash before the `:`, `.` or `@` keeps it text.
_AUTOLINK = re.compile(r"(:(?=//)|(?<=www)\.|@)", re.IGNORECASE)
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+!|~>:.@])")
_CITE = re.compile(r"\[(\d+)\]")
CSS = """
.pd-source { border-left: 3px solid var(--color-accent); padding: 0.4em 0.8em; margin: 0 0 1em 0; }
.pd-source blockquote { margin: 0.4em 0; font-style: italic; }
.pd-source .pd-meta { font-size: 0.9em; opacity: 0.8; }
.pd-source mark { background: rgba(255, 214, 0, 0.35); color: inherit; }
footer .show-api { color: var(--body-text-color) !important; }  /* Gradio's grey fails contrast (axe) */
"""


# "Copy answer": the answer's Markdown plus a link asking its question again, to the clipboard.
COPY_JS = """async (markdown, question) => {
  const ask = new URL("./", location.href);
  ask.searchParams.set("q", question);
  const text = markdown + "\\n\\nAsked on Policy Desk: <" + ask.href + ">";
  try { await navigator.clipboard.writeText(text); } catch (e) { window.prompt("Copy the answer:", text); }
}"""


def md_escape(text: str) -> str:
    """Untrusted text as literal Markdown: no tags, links or emphasis survive."""
    return _AUTOLINK.sub(r"\\\1", _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False)))


def md_unescape(markdown: str) -> str:
    """The text `md_escape` was given (white space folded)."""
    return html.unescape(_ESCAPED.sub(r"\1", markdown))


def user_message(question: str) -> dict:
    """The reader's question as a chat message: text (`md_escape`), whatever it holds, as `/embed`
    shows it; a shared link (`/?q=…`) is someone else's words. `user_questions` reads it back."""
    return {"role": "user", "content": md_escape(question)}


def _dated(date: str, lang: str) -> str:
    """An article's date, or "date unknown" in the reader's language."""
    return date or i18n.say(lang, N_("date unknown"))


def source_line(c: Citation, lang: str = i18n.DEFAULT) -> str:
    chunk = c.hit.chunk
    parts = [md_escape(chunk.title or chunk.article_id)]
    meta = ", ".join(md_escape(x) for x in (chunk.source, _dated(chunk.date, lang)) if x)
    line = f"[\\[{c.n}\\]](#source-{c.n}) " + " — ".join(p for p in (parts[0], meta) if p)
    link = quote_link(chunk.url, c.quote)
    opens = md_escape(i18n.say(lang, N_("open at the quote")))
    return line + (f" · [{opens}](<{link}>)" if link else "")


def answer_markdown(answer: Answer, lang: str = i18n.DEFAULT) -> str:
    """The chat message: the answer with `[n]` as links to its source card, then the source list;
    the fixed wording (a refusal, notices, headings) in `lang`, the articles' words as written."""
    answer = i18n.answer_in(lang, answer)
    if answer.refused:
        closest = "".join(f"\n- {article_line(a, lang)}" for a in answer.closest)
        named = md_escape(i18n.say(lang, N_("The closest articles I have:")))
        return (md_escape(answer.text) + (f"\n\n*{md_escape(answer.notice)}*" if answer.notice else "")
                + (f"\n\n{named}{closest}" if closest else ""))
    pieces = _CITE.split(answer.text)  # text, n, text, n, ...
    # Each text piece keeps its own edge spaces: "… University [1] China …" never runs together.
    body = "".join(_spaced(p) if i % 2 == 0 else f"[\\[{p}\\]](#source-{p})" for i, p in enumerate(pieces))
    body = (f"**{md_escape(answer.lead)}** — " if answer.lead else "") + body
    sources = "\n".join(f"- {source_line(c, lang)}" for c in answer.citations)
    note = "".join(f"\n\n*{md_escape(line)}*" for line in (answer.notice, verification_line(answer, lang)) if line)
    heading = md_escape(i18n.say(lang, N_("Sources")))
    return f"{body}{note}\n\n**{heading}**\n{sources}"


def _spaced(text: str) -> str:
    """`md_escape`, keeping one space where `text` began or ended with white space."""
    if not text.strip():
        return " " if text else ""
    return (" " if text[0].isspace() else "") + md_escape(text) + (" " if text[-1].isspace() else "")


def article_line(a: ArticleRef, lang: str = i18n.DEFAULT) -> str:
    """An article named (not cited) in Markdown: title — outlet, date · link."""
    meta = ", ".join(md_escape(x) for x in (a.source, _dated(a.date, lang)) if x)
    url = safe_url(a.url)
    link = md_escape(i18n.say(lang, N_("link")))
    return f"{md_escape(a.title or a.article_id)} — {meta}" + (f" · [{link}](<{url}>)" if url else "")


def verification_line(answer: Answer, lang: str = i18n.DEFAULT) -> str:
    """What the check of a language model's answer found, in one line ("" without a model)."""
    v = answer.verification
    if not v or v.outcome != "answered":
        return ""
    t = i18n.translations(lang)
    statuses = [s.status for s in v.sentences]
    kept = sum(s != "unsupported" for s in statuses)
    parts = [t.ngettext("✓ {kept} of {total} sentence the model wrote checked against the cited passage",
                        "✓ {kept} of {total} sentences the model wrote checked against the cited passage",
                        len(statuses)).format(kept=kept, total=len(statuses))]
    if n := statuses.count("corrected"):
        parts.append(t.ngettext("{n} citation number corrected", "{n} citation numbers corrected", n).format(n=n))
    if n := statuses.count("unsupported"):
        parts.append(t.ngettext("{n} unsupported sentence removed", "{n} unsupported sentences removed", n).format(n=n))
    return "; ".join(parts) + "."


def sources_html(answer: Answer, lang: str = i18n.DEFAULT) -> str:
    """Source cards: each cited passage with its quote highlighted, verbatim from the article."""
    if answer.refused or not answer.citations:
        return "<p class='pd-empty'>" + html.escape(i18n.say(lang, N_("No sources: the answer cites nothing."))) + "</p>"
    opens = i18n.say(lang, N_("Opens the article at the quote"))
    context = i18n.say(lang, N_("Passage in context"))
    cards = []
    for c in answer.citations:
        chunk = c.hit.chunk
        at = chunk.text.find(c.quote)
        if at >= 0:
            passage = (html.escape(chunk.text[:at]) + "<mark>" + html.escape(c.quote) + "</mark>"
                       + html.escape(chunk.text[at + len(c.quote):]))
        else:
            passage = html.escape(chunk.text)
        url = quote_link(chunk.url, c.quote)
        title = html.escape(chunk.title or chunk.article_id)
        link = (f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer' "
                f"title='{html.escape(opens, quote=True)}'>{title}</a>" if url else title)
        meta = " · ".join(html.escape(x) for x in (chunk.source, _dated(chunk.date, lang)) if x)
        cards.append(
            f"<div class='pd-source' id='source-{c.n}'><div><strong>[{c.n}]</strong> {link}</div>"
            f"<div class='pd-meta'>{meta}</div><blockquote>“{html.escape(c.quote)}”</blockquote>"
            f"<details><summary>{html.escape(context)}</summary><p>{passage.replace(chr(10), '<br>')}</p></details></div>")
    return "\n".join(cards)


def header_markdown(scope: Scope, lang: str = i18n.DEFAULT) -> str:
    """The chat's heading: what the desk holds, and what it does with it."""
    if not scope.articles:
        return "# Policy Desk\n" + md_escape(i18n.say(lang, N_("No articles yet: run `python -m assistant ingest`.")))
    t = i18n.translations(lang)
    line, count = scope.describe(lang), scope.count_text(lang)
    rest = line[len(count):]  # " from …, dates" or ", date unknown"
    what = (f"**{md_escape(count)}**" + (" " if rest.startswith(" ") else "") + md_escape(rest)
            if line.startswith(count) else md_escape(line))
    what = t.gettext("{scope}.").format(scope=what)
    does = md_escape(t.gettext("Answers quote and cite the passage each claim comes from; "
                               "if the articles don't cover a question, it says so."))
    return f"# Policy Desk\n{what} {does}"


def user_questions(history: Sequence[dict]) -> list[str]:
    """The user's earlier questions, as asked (`user_message` shows them escaped). Gradio 6 hands
    content back as a list of `{"type": "text", "text": ...}` parts; our own history holds plain strings."""
    out = []
    for m in history:
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if isinstance(content, str) and content.strip():
            out.append(md_unescape(content))
    return out


def text_history(history: Sequence[dict]) -> list[dict]:
    """The chat as the client sent it, text only: each user or assistant message as a string;
    any other part (a file, an image) or role is dropped, never echoed back."""
    out = []
    for m in history or ():
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p["text"] for p in content
                               if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))
        if isinstance(content, str) and content:
            out.append({"role": m["role"], "content": content})
    return out


def respond(assistant, question: str, history: list[dict], filters: Filters = Filters(),
            on_answer: Callable[[Answer], None] | None = None,
            capacity: Capacity | None = None, observer: Observer | None = None,
            lang: str = i18n.DEFAULT) -> Iterator[tuple[list, str]]:
    """The chat handler: yields (chat history, sources html) as the answer streams in;
    `on_answer` gets the final `Answer` before the last update. `capacity`: the answer slots
    shared with the API; the answer holds one while it is computed. `observer`: where the
    question's outcome goes (the question log, the metrics). `lang`: the reader's language."""
    history = text_history(history)
    earlier = user_questions(history)
    searching = "*" + md_escape(i18n.say(lang, N_("Searching the articles…"))) + "*"
    history = history + [user_message(question), {"role": "assistant", "content": searching}]
    yield list(history), ""
    answer, draft = None, ""
    try:
        with (observer or Observer()).asking("chat", question) as answered, \
                capacity.slot() if capacity else nullcontext():
            stream = getattr(assistant, "ask_stream", None)
            for piece in stream(question, earlier, filters) if stream else [assistant.ask(question, earlier, filters)]:
                if isinstance(piece, str):  # a language model's draft, replaced by the checked answer
                    draft += piece
                    history[-1] = {"role": "assistant", "content": md_escape(draft) + " ▍"}
                    yield list(history), ""
                else:
                    answer = piece
                    answered(answer)
    except AssistantError as exc:  # Busy included: "…every answer slot is taken. Please try again in 10 s."
        history[-1] = {"role": "assistant", "content": f"⚠️ {md_escape(i18n.say(lang, exc))}"}
        yield history, ""
        return
    except Exception:  # never a traceback in the chat
        log.exception("answering %r failed", question[:200])
        history[-1] = {"role": "assistant", "content": f"⚠️ {md_escape(i18n.say(lang, SOMETHING_WRONG))}"}
        yield history, ""
        return
    text = answer_markdown(answer, lang)
    # Stream word by word up to the source list, then everything at once (a draft was streamed already).
    words = [] if draft else text.split(" ")
    for i in range(0, len(words), 6):
        history[-1] = {"role": "assistant", "content": " ".join(words[:i + 6])}
        yield list(history), ""
    history[-1] = {"role": "assistant", "content": text}
    if on_answer is not None:
        on_answer(answer)
    yield history, sources_html(answer, lang)


def feedback_record(question: str, answer: Answer, settings: dict) -> dict:
    """What the chat keeps of a shown answer, for feedback on it and for "Copy answer"."""
    return {"question": question, "answer": answer.text, "lead": answer.lead,
            "citations": [CitationOut.of(c).model_dump(mode="json") for c in answer.citations], "settings": settings}


def rating_of(liked) -> str | None:
    """Gradio's like value as a rating; None when the reader took a rating back."""
    return {True: "up", False: "down", "Like": "up", "Dislike": "down"}.get(liked)


# Where Gradio's page looks for a language (the browser's `navigator.language`, then its base
# language): Simplified Chinese under its regional tags only, so zh-TW keeps English labels.
GRADIO_LOCALES = {"zh_Hans": ("zh-CN", "zh-SG", "zh-Hans"), "ru": ("ru",), "ar": ("ar",)}


def labels():
    """`gr.I18n` holding the chat page's labels (every string marked in `build_app`) in each shipped
    language, keyed by the English; the page translates them to the browser's language."""
    import gradio as gr

    table = {tag: i18n.messages_of(code, "web/ui.py") for code, tags in GRADIO_LOCALES.items() for tag in tags}
    return gr.I18n(en={m: m for m in table["ru"]}, **table)


def build_app(assistant, examples: Sequence[str] = (), limiter=None, queue_size: int = QUEUE_SIZE,
              feedback: FeedbackStore | None = None, feedback_limiter=None, capacity: Capacity | None = None,
              observer: Observer | None = None):
    """The chat page as gradio Blocks; the caller launches it. `limiter`: the server's
    `security.RateLimiter`, which each question counts against; `feedback`: where 👍/👎 go
    (default: `feedback.feedback_path(assistant.settings.storage)`), each counting against `feedback_limiter`
    (the API's for `/api/feedback`); `capacity`: the answer slots (the API's too); `observer`:
    where each question's outcome goes (the API's too)."""
    import gradio as gr

    feedback = feedback or FeedbackStore(feedback_path(assistant.settings.storage))
    L = labels()  # a component's fixed text, translated by the page to the browser's language
    with gr.Blocks(title="Policy Desk") as app:
        header = gr.Markdown(header_markdown(desk_scope(assistant)), elem_id="desk-header")
        # message index → what produced that answer (`feedback_record`); index → (entry id, token) once rated
        shown, rated, commenting = gr.State({}), gr.State({}), gr.State(None)
        with gr.Row():
            with gr.Column(scale=3, min_width=280):
                chat = gr.Chatbot(label=L(N_("Chat")), height=480, elem_id="chat", buttons=["copy"],
                                  feedback_options=("Like", "Dislike"))
                with gr.Group(visible=False, elem_id="feedback-comment") as comment_group:
                    comment = gr.Textbox(label=L(N_("What was right or wrong with that answer? (optional)")), max_lines=4,
                                         max_length=MAX_COMMENT, elem_id="feedback-text")
                    send_comment = gr.Button(L(N_("Send comment")), size="sm", elem_id="feedback-send")
                feedback_status = gr.Markdown("", elem_id="feedback-status")
                question = gr.Textbox(placeholder=L(N_("Ask about the articles…")), show_label=False,
                                      elem_id="question", max_lines=4, submit_btn=True)
                with gr.Row():
                    clear = gr.ClearButton([chat, question], value=L(N_("Clear chat")))
                    copy = gr.Button(L(N_("Copy answer as Markdown")), elem_id="copy-answer", interactive=False)
                if examples:
                    gr.Examples(examples=[[e] for e in examples], inputs=[question], label=L(N_("Try")))
                with gr.Accordion(L(N_("Filters")), open=False):
                    with gr.Row():
                        only = gr.Dropdown(choices=assistant.sources, value=[], multiselect=True, label=L(N_("Outlets")),
                                           elem_id="filter-sources")
                        since = gr.Textbox(value="", label=L(N_("From (YYYY-MM-DD)")), elem_id="filter-since")
                        until = gr.Textbox(value="", label=L(N_("Until (YYYY-MM-DD)")), elem_id="filter-until")
            with gr.Column(scale=2, min_width=280):
                gr.Markdown("## " + L(N_("Sources")))
                sources = gr.HTML("<p class='pd-empty'>" + L(N_("Sources for the latest answer appear here.")) + "</p>",
                                  elem_id="sources", js_on_load=None)
        # The latest answer as Markdown, and its question, for "Copy answer" (which runs in the browser).
        latest_markdown = gr.Textbox(visible=False, elem_id="latest-markdown")
        latest_question = gr.Textbox(visible=False, elem_id="latest-question")

        def cleared():
            return "", {}, {}, None, gr.update(visible=False), "", gr.update(interactive=False)

        for event in (clear.click, chat.clear):  # the button, and the chat's own trash icon
            event(cleared, outputs=[sources, shown, rated, commenting, comment_group, feedback_status, copy])

        def on_submit(q, history, outlets=(), start="", end="", answers=None, request=None):
            answers = dict(answers or {})

            lang = i18n.of_request(request)

            def refused(message) -> tuple:
                turn = [user_message(q), {"role": "assistant", "content": f"⚠️ {md_escape(i18n.say(lang, message))}"}]
                return text_history(history) + turn, "", answers

            wait = limiter.wait(request.request or request) if limiter and request else 0
            if wait:
                yield refused(limiter.refusal(wait))
                return
            try:
                filters = Filters.parse(outlets, start, end)
            except AssistantError as exc:
                yield refused(exc)
                return
            got: list[Answer] = []
            settings = answer_settings(assistant.settings, filters, user_questions(history or []))
            for messages, cards in respond(assistant, q, history or [], filters, on_answer=got.append,
                                           capacity=capacity, observer=observer, lang=lang):
                if got:
                    answers[len(messages) - 1] = feedback_record(q, got[0], settings)
                yield messages, cards, answers

        def latest(answers):
            if not answers:
                return "", "", gr.update(interactive=False)
            last = answers[max(answers)]
            return clipboard_markdown(last["question"], last), last["question"], gr.update(interactive=True)

        on_submit.__annotations__["request"] = gr.Request  # so typed, Gradio passes the request

        ask = dict(inputs=[question, chat, only, since, until, shown], outputs=[chat, sources, shown])
        question.submit(on_submit, api_name="ask", **ask).then(lambda: "", outputs=[question]).then(
            latest, [shown], [latest_markdown, latest_question, copy])

        def shared_question(request: gr.Request):
            """`/?q=…`: the question a shared link asks; the box is left alone without one."""
            q = request.query_params.get("q", "") if request else ""
            q = " ".join(q.split())[:assistant.settings.answers.max_question_chars]
            return q or gr.skip(), q

        # Gradio finds its special arguments by annotation; this module's are strings (`__future__`).
        shared_question.__annotations__ = {"request": gr.Request}

        def ask_shared(q, history, outlets, start, end, answers, request=None):
            if not q:
                yield gr.skip(), gr.skip(), gr.skip()
                return
            yield from on_submit(q, history, outlets, start, end, answers, request)

        ask_shared.__annotations__["request"] = gr.Request

        def heading(request: gr.Request):
            """The heading in the reader's language (the page is built once, in English)."""
            return header_markdown(desk_scope(assistant), i18n.of_request(request))

        heading.__annotations__ = {"request": gr.Request}
        app.load(heading, None, header, api_visibility="private")
        shared = gr.State("")
        app.load(shared_question, None, [question, shared], api_visibility="private").then(
            ask_shared, [shared, *ask["inputs"][1:]], ask["outputs"], api_visibility="private").then(
            lambda q, answers: ("", *latest(answers)) if q else (gr.skip(),) * 4, [shared, shown],
            [question, latest_markdown, latest_question, copy], api_visibility="private")

        def too_fast(request) -> str:
            """The refusal when this reader sends feedback faster than the limit, else ""."""
            wait = feedback_limiter.wait(request.request or request) if feedback_limiter and request else 0
            return f"⚠️ {md_escape(i18n.say(i18n.of_request(request), over_limit(wait)))}" if wait else ""

        def on_like(answers, ratings, data: gr.LikeData, request=None):
            index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            record, rating = answers.get(index), rating_of(data.liked)
            if record is None or rating is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            if refusal := too_fast(request):
                return gr.skip(), gr.skip(), gr.skip(), refusal
            ratings = dict(ratings)
            try:
                if index in ratings:
                    feedback.amend(*ratings[index], rating=rating)
                else:
                    ratings[index] = feedback.add(record["question"], record["answer"], rating, "", record["citations"],
                                                  record["settings"], via="chat")
            except AssistantError as exc:
                return ratings, None, gr.update(visible=False), f"⚠️ {md_escape(i18n.say(i18n.of_request(request), exc))}"
            return (ratings, index, gr.update(visible=True),
                    md_escape(i18n.say(i18n.of_request(request), N_("Thanks for the feedback. Tell us more below, if you like."))))

        on_like.__annotations__ = {"data": gr.LikeData, "request": gr.Request}
        chat.like(on_like, [shown, rated], [rated, commenting, comment_group, feedback_status])

        def on_comment(text, index, ratings, request=None):
            if index is None or index not in ratings or not text.strip():
                return gr.skip(), gr.skip(), gr.skip()
            if refusal := too_fast(request):
                return gr.skip(), gr.skip(), refusal
            try:
                feedback.amend(*ratings[index], comment=text.strip())
            except AssistantError as exc:
                return gr.skip(), gr.skip(), f"⚠️ {md_escape(i18n.say(i18n.of_request(request), exc))}"
            return "", gr.update(visible=False), md_escape(i18n.say(i18n.of_request(request), N_("Comment sent. Thank you!")))

        on_comment.__annotations__["request"] = gr.Request

        for event in (send_comment.click, comment.submit):
            event(on_comment, [comment, commenting, rated], [comment, comment_group, feedback_status])

        copy.click(None, [latest_markdown, latest_question], None, js=COPY_JS)
    # 2 answers at once: 2 cores, 1 torch thread each (docs/operating.md). A full queue answers 503, which the
    # page shows as "This application is currently busy. Please try again." `api_open=False`:
    # Gradio's REST routes would otherwise run queued events without the queue.
    return app.queue(default_concurrency_limit=2, max_size=queue_size, api_open=False)


def mount_chat(server, assistant, web: WebSettings = WebSettings(), *, limiter=None,
               feedback: FeedbackStore | None = None, feedback_limiter=None, capacity: Capacity | None = None,
               observer: Observer | None = None):
    """Serve the chat page at `/` of the FastAPI app `server` (its examples, queue and path
    prefix from `web`), with the objects the server shares with the API; returns `server`."""
    import gradio as gr

    blocks = build_app(assistant, web.examples, limiter=limiter, queue_size=web.queue_size, feedback=feedback,
                       feedback_limiter=feedback_limiter, capacity=capacity, observer=observer)
    server = gr.mount_gradio_app(server, blocks, path="/", css=CSS, footer_links=["api"], i18n=labels(),
                                 root_path=web.root_path or None, max_file_size=0, enable_monitoring=False)
    # Gradio checks where a file named in a request may come from only once the app "has launched"
    # (`processing_utils._check_allowed`), which `launch()` marks and `mount_gradio_app` does not:
    # unmarked, a chat turn naming /etc/passwd had it copied into the cache and served, and
    # /dev/zero hung the server. Served by uvicorn, the mounted app is launched.
    if not hasattr(blocks, "has_launched"):
        raise RuntimeError("this gradio has no Blocks.has_launched: check how it guards file paths first")
    blocks.has_launched = True
    return server
