"""`policy-desk ingest|add|feeds|status|search|ask|feedback|gaps|eval|tune` (or `python -m assistant …`): a stable contract for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .config import Settings, load_settings
from .errors import AssistantError
from .text import shown


def main(argv: list[str] | None = None, env=None) -> int:
    args = _parser().parse_args(argv)
    import os
    settings = load_settings(os.environ if env is None else env).with_(
        corpus_dir=getattr(args, "corpus", None), index_dir=args.index)
    try:
        return args.run(args, settings)
    except AssistantError as exc:
        print(f"error: {shown(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: not an error of ours
        sys.stderr.close()
        return 0


MAX_K = 50  # the candidates each ranking keeps before fusion (retrieval.hybrid.CANDIDATES)


def _passages(raw: str) -> int:
    try:
        k = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"{k} is not between 1 and {MAX_K}")
    return k


def _parser() -> argparse.ArgumentParser:
    # Named as it was called: the console script, or the module.
    prog = "policy-desk" if Path(sys.argv[0]).name == "policy-desk" else "python -m assistant"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name, run, help):
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--index", type=Path, help="index folder (default: $ASSISTANT_INDEX or index/)")
        p.set_defaults(run=run)
        return p

    p = command("ingest", _ingest, "make the index match the corpus folder")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: $ASSISTANT_CORPUS or corpus/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = command("add", _add, "fetch web pages (HTML or PDF) into the corpus folder, then ingest them")
    p.add_argument("urls", nargs="+", metavar="URL", help="http(s) URL of an article page or PDF")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: $ASSISTANT_CORPUS or corpus/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _allow_arg(p)

    p = command("feeds", _feeds, "add the new entries of RSS/Atom feeds to the corpus folder, then ingest them")
    p.add_argument("--feeds", type=Path, metavar="FILE",
                   help="feed URLs, one a line (default: feeds.txt in the corpus folder)")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: $ASSISTANT_CORPUS or corpus/)")
    p.add_argument("--every", type=_interval, metavar="DURATION",
                   help="run again every DURATION (30m, 1h, 2h30m; at least 1m) until stopped")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _allow_arg(p)

    p = command("status", _status, "what the index holds")
    p.add_argument("--json", action="store_true")

    for name, run, help in (("search", _search, "ranked passages for a question"),
                            ("ask", _ask, "a cited answer to a question")):
        p = command(name, run, help)
        p.add_argument("question", nargs="?", help="the question (or use --questions)")
        p.add_argument("--questions", type=Path, help="a .jsonl file of questions; prints one JSON line each")
        p.add_argument("--json", action="store_true")
        _filter_args(p)
        if name == "search":
            p.add_argument("-k", type=_passages, default=None, help=f"how many passages, 1 to {MAX_K} (default 5)")

    p = command("feedback", _feedback, "readers' feedback on answers, newest first")
    p.add_argument("--since", default="", help="only feedback given on or after YYYY-MM-DD (UTC)")
    p.add_argument("--json", action="store_true")

    p = command("gaps", _gaps, "coverage gaps: refused and 👎 questions grouped into topics, with the closest "
                               "articles the desk has")
    p.add_argument("--since", default="", help="only questions asked on or after YYYY-MM-DD (UTC)")
    p.add_argument("--json", action="store_true", help="a list of topics: {label, count, first, last, questions, "
                                                       "closest, terms}")

    p = command("eval", _eval, "retrieval and answer scores on question sets (pooled when several)")
    p.add_argument("--questions", type=Path, required=True, nargs="+", help=".jsonl question sets")
    p.add_argument("--folds", type=int, default=0, metavar="K",
                   help="also answer each question with weights fitted on the other K-1 parts of the pooled "
                        "sets (cross-validated figures beside the committed weights' in-sample ones)")
    p.add_argument("-k", type=_passages, default=None, help=f"passages given to the answerer, 1 to {MAX_K} (default 5)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--failures", type=Path, help="write per-question records of misses here (.jsonl)")
    p.add_argument("--baseline", choices=["langchain"], help="also score LangChain's stock recipe, side by side")
    p.add_argument("--without-reader", action="store_true",
                   help="with --folds: also score the answerer without the learned reader (the plain MiniLM's "
                        "sentence vectors, every signal fitted), side by side")
    p.add_argument("--corpus", type=Path, help="corpus folder the baseline indexes (default: $ASSISTANT_CORPUS or corpus/)")
    p.add_argument("--llm", metavar="SPEC", help="also answer with this language model (openai:<model>, ollama:<model>, "
                                                 "gguf:<path>), side by side with the extractive answers")

    p = command("tune", _tune, "fit the reader (which sentence answers a question) to this corpus: a language model "
                               "writes questions from its articles, then the reader is trained on them")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: $ASSISTANT_CORPUS or corpus/)")
    p.add_argument("--llm", metavar="SPEC", help="the model that writes the questions: gguf:<path> or openai:<model> "
                                                 "(default: $ASSISTANT_LLM if one of those, else the packaged Qwen "
                                                 "of `make llm`)")
    p.add_argument("--questions", type=int, default=None, metavar="N",
                   help="answerable questions to fit on (default 300; those made before count)")
    p.add_argument("--threads", type=int, default=2, help="threads for the model and the fitting (default 2)")
    p.add_argument("--parallel", type=int, default=2, help="prompts in flight (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _allow_arg(p):
    p.add_argument("--allow", action="append", default=[], type=_origin, metavar="ORIGIN",
                   help="also fetch from this origin (http://127.0.0.1:8799) although its address is loopback, "
                        "private or link-local; exact scheme, host and port (repeatable; also $ASSISTANT_FETCH_ALLOW)")


def _origin(text: str) -> str:
    from .sources.fetch import allowed_origin

    try:
        return allowed_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _filter_args(p):
    p.add_argument("--source", action="append", default=[], help="only this outlet (repeatable)")
    p.add_argument("--since", default="", help="only articles dated on or after YYYY-MM-DD")
    p.add_argument("--until", default="", help="only articles dated on or before YYYY-MM-DD")


def _filters(args):
    from .schema import Filters
    return Filters.parse(args.source, args.since, args.until)


def _ingest(args, settings: Settings) -> int:
    from .sources.corpus import require_corpus_dir
    from .indexing.embeddings import MiniLM
    from .indexing.sync import ingest

    require_corpus_dir(settings.storage.corpus_dir)  # before an empty index is created
    embedder = MiniLM(threads=None)  # a batch job: let torch use every core
    report = ingest(settings, embedder, progress=not args.quiet)
    _record_run(settings, report)
    print(report.summary())
    return 0


def _tune(args, settings: Settings) -> int:
    from .sources.corpus import require_corpus_dir
    from .tuning.tune import QUESTIONS, default_llm, tune

    require_corpus_dir(settings.storage.corpus_dir)
    if args.questions is not None and args.questions < 1:
        raise AssistantError("--questions must be at least 1")
    report = tune(settings, args.llm or default_llm(settings), args.questions or QUESTIONS, threads=args.threads,
                  parallel=args.parallel, progress=not args.quiet)
    print(report.summary())
    return 0


def _add(args, settings: Settings) -> int:
    from .sources.corpus import require_corpus_dir
    from .sources.fetch import add_urls, make_client

    require_corpus_dir(settings.storage.corpus_dir)
    with _one_writer(settings.storage.corpus_dir), \
            make_client(allow=settings.sources.fetch_allow + tuple(args.allow)) as client:
        report = add_urls(args.urls, settings.storage.corpus_dir, client)
        print(report.summary(), flush=True)
        if report.added:
            _ingest_added(settings, quiet=args.quiet)
    return 1 if report.failed else 0


def _feeds(args, settings: Settings) -> int:
    from .sources.corpus import require_corpus_dir
    from .indexing.embeddings import MiniLM
    from .indexing.sentence_model import SentenceModel
    from .sources.feeds import follow_feeds, read_feed_list, run_every
    from .sources.fetch import make_client

    require_corpus_dir(settings.storage.corpus_dir)
    feeds_file = args.feeds or settings.storage.corpus_dir / "feeds.txt"
    embedder = MiniLM(threads=None)  # loads on first use, then serves every round
    sentences = SentenceModel(settings.storage.index_dir, embedder, threads=None)  # so does the reader

    def once() -> int:
        feed_urls = read_feed_list(feeds_file)  # read each round: the operator may edit it
        with _one_writer(settings.storage.corpus_dir), \
                make_client(allow=settings.sources.fetch_allow + tuple(args.allow)) as client:
            reports = follow_feeds(feed_urls, settings.storage.corpus_dir, client)
            _record_run(settings, feeds=reports)
            for report in reports:
                print(report.summary(), flush=True)
            if any(r.articles.added for r in reports):
                _ingest_added(settings, quiet=args.quiet, embedder=embedder, sentences=sentences)
        return 1 if any(r.error or r.articles.failed for r in reports) else 0

    if args.every is None:
        return once()

    def guarded() -> int:  # one bad round (feeds file gone, an ingest running) must not end the loop
        try:
            return once()
        except AssistantError as exc:
            print(f"error: {shown(exc)}", file=sys.stderr, flush=True)
            return 2

    return run_every(args.every, guarded, say=lambda line: print(line, flush=True))


@contextmanager
def _one_writer(corpus_dir: Path):
    """Lock the corpus folder itself (flock on the directory: no lock file) for an add or feeds
    run: two at once, a cron job and a hand-run `add`, could write one new page under two names."""
    import fcntl
    import os

    fd = os.open(corpus_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AssistantError(f"another add or feeds run is writing to {corpus_dir}; "
                                 "try again when it has finished") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _ingest_added(settings: Settings, quiet: bool, embedder=None, sentences=None) -> None:
    from .indexing.embeddings import MiniLM
    from .indexing.sync import ingest

    report = ingest(settings, embedder or MiniLM(threads=None), progress=not quiet, sentences=sentences)
    _record_run(settings, report)
    print(report.summary(), flush=True)


def _record_run(settings: Settings, report=None, feeds=()) -> None:
    """Keep what an ingest or a feeds round did for the owner's page and /metrics (`runs.py`)."""
    from .feedback import feedback_path
    from .runs import RunLog

    runs = RunLog(feedback_path(settings.storage))
    if report is not None:
        runs.ingest(report)
    if feeds:
        runs.feeds(feeds)


def _interval(text: str) -> float:
    from .sources.feeds import parse_interval

    try:
        return parse_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _status(args, settings: Settings) -> int:
    from .indexing.embeddings import MiniLM
    from .indexing.sentence_model import SentenceModel, reader_folder
    from .indexing.store import open_index

    embedder = MiniLM()
    store = open_index(settings.storage, embedder, create=False)
    articles = store.stored_articles()
    reader = SentenceModel(settings.storage.index_dir, embedder)
    folder = reader_folder(settings.storage.index_dir)
    stale = sum(a.sentences != reader.model_id for a in articles.values())
    status = {"articles": len(articles), "chunks": store.chunk_count(),
              "by_article": {a.article_id: a.chunks for a in articles.values()},
              "reader": {"model": reader.model_id, "folder": str(folder or ""), "articles_to_embed_again": stale}}
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        print(f"{status['articles']} articles, {status['chunks']} chunks in {settings.storage.index_dir}/")
        print(f"reader {reader.model_id}" + (f" ({folder})" if folder else "") +
              (f"; {stale} articles' sentences were embedded by another: run ingest" if stale else ""))
    return 0


def _questions(args):
    """(id, question, history, filters) for the single question or each line of --questions."""
    from .evaluation.scoring import read_questions, with_context

    if (args.question is None) == (args.questions is None):
        raise AssistantError("give a question or --questions FILE (not both)")
    if args.question is not None:
        return [(None, args.question, [], _filters(args))]
    given = _filters(args)
    return [(q.id, q.question, history, replace(given, until=given.until or dated.until))
            for q, history, dated in with_context(read_questions(args.questions))]


def _search(args, settings: Settings) -> int:
    from .wiring import build_assistant
    from .web.schemas import PassageOut

    assistant = build_assistant(settings)
    for qid, question, history, filters in _questions(args):
        hits = [PassageOut.of(h).model_dump(mode="json")
                for h in assistant.search(question, history, filters, k=args.k)]
        if args.questions:
            print(json.dumps({"id": qid, "question": question, "passages": hits}, ensure_ascii=False))
        elif args.json:
            print(json.dumps(hits, ensure_ascii=False, indent=1))
        else:
            for h in hits:
                print(shown(f"{h['rank']}. [{h['score']:.4f} sim {h['similarity']:.3f}] {h['title']} "
                            f"({h['source']}, {h['date']})"))
                print("   " + shown(" ".join(h["text"].split())[:300]))
    return 0


def _ask(args, settings: Settings) -> int:
    from .wiring import build_assistant
    from .web.schemas import AnswerOut

    assistant = build_assistant(settings)
    for qid, question, history, filters in _questions(args):
        result = AnswerOut.of(assistant.ask(question, history, filters)).model_dump(mode="json")
        if args.questions:
            print(json.dumps({"id": qid, "question": question, **result}, ensure_ascii=False))
        elif args.json:
            print(json.dumps(result, ensure_ascii=False, indent=1))
        else:
            for line in result["answer"].split("\n"):  # a language model may write paragraphs
                print(shown(line))
            if result["notice"] and not result["refused"]:
                print(shown(f"({result['notice']})"))
            for line in _verification_lines(result.get("verification")):
                print(line)
            for c in result["citations"]:
                print("\n" + shown(f"[{c['n']}] {c['title']} — {c['source']}, {c['date'] or 'date unknown'} "
                                   f"{c['link'] or c['url'] or ''}").rstrip())
                print("    “" + shown(" ".join(c["quote"].split())) + "”")
    return 0


def _feedback(args, settings: Settings) -> int:
    from .feedback import FeedbackStore, entry_lines, feedback_path

    path = feedback_path(settings.storage)
    entries = FeedbackStore(path).entries(since=args.since)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=1))
    elif not entries:
        print(f"No feedback{' since ' + args.since if args.since else ''} in {path}.")
    else:
        ups = sum(e.rating == "up" for e in entries)
        print(f"{len(entries)} entries ({ups} 👍, {len(entries) - ups} 👎) in {path}, newest first:")
        for e in entries:
            print()
            print("\n".join(entry_lines(e)))
    return 0


def _gaps(args, settings: Settings) -> int:
    from .feedback import FeedbackStore, feedback_path
    from .gaps import closest_to, gap_questions, topic_lines, topics
    from .indexing.embeddings import MiniLM
    from .indexing.store import open_index
    from .questionlog import QuestionLog, checked_since

    path = feedback_path(settings.storage)
    asked = gap_questions(QuestionLog(path), FeedbackStore(path), since=checked_since(args.since))
    embedder = MiniLM()
    found = topics(asked, embedder.encode, closest_to(open_index(settings.storage, embedder, create=False)))
    if args.json:
        print(json.dumps([t.to_dict() for t in found], ensure_ascii=False, indent=1))
    elif not found:
        print(f"No refused or 👎 questions{' since ' + args.since if args.since else ''} in {path}.")
    else:
        print(f"{len(asked)} refused or 👎 questions in {len(found)} topics, the most asked first:")
        for topic in found:
            print()
            print("\n".join(topic_lines(topic)))
    return 0


def _eval(args, settings: Settings) -> int:
    from .evaluation.run import evaluate, langchain_baseline, with_llm, without_reader
    from .evaluation.scoring import read_questions
    from .wiring import build_assistant

    if args.folds == 1 or args.folds < 0:
        raise AssistantError("--folds takes 2 or more parts")
    if args.without_reader and not args.folds:
        raise AssistantError("--without-reader compares cross-validated figures: add --folds K")
    assistant = build_assistant(settings.with_(top_k=args.k, backend="extractive"))
    questions = [q for path in args.questions for q in read_questions(path)]
    llm = with_llm(assistant, settings, args.llm) if args.llm else None
    baseline = (langchain_baseline(settings.storage.corpus_dir, settings.storage.index_dir / "baseline-langchain",
                                   assistant.retriever.embedder) if args.baseline else None)
    plain = without_reader(assistant) if args.without_reader else None
    report = evaluate(assistant, questions, folds=args.folds, llm=llm, baseline=baseline, plain=plain)
    tables = report.tables
    if args.failures:
        args.failures.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in report.misses()),
                                 encoding="utf-8")
    if args.json:
        print(json.dumps(tables if len(tables) > 1 else next(iter(tables.values())), indent=1))
    else:
        keys = list(dict.fromkeys(k for table in tables.values() for k in table))  # --llm adds rows
        width = max(map(len, keys))
        for name, table in tables.items():
            print(f"== {name}")
            for key in keys:
                print(f"  {key:<{width}}  {_cell(table.get(key))}")
    return 0


def _verification_lines(v: dict | None) -> list[str]:
    """How each sentence a language model wrote was checked: ✓ verified, ~ corrected, ✗ dropped."""
    if not v:
        return []
    mark = {"verified": "✓ verified", "corrected": "~ citation corrected", "unsupported": "✗ unsupported, dropped"}
    why = {"refused": "; it said the articles do not cover this", "failed": "; it failed, so the answer above is quoted",
           "unsupported": "; nothing it wrote was supported"}
    lines = [f"\nChecked against the passages ({shown(v['model'])}{why.get(v['outcome'], '')}):"]
    lines += [shown(f"  {mark.get(s['status'], s['status'])}: {s['text']}") for s in v["sentences"]]
    return lines


def _cell(value) -> str:
    return "—" if value is None else str(value)
