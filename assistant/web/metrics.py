"""Operator metrics in Prometheus's text format, with the official `prometheus_client`
(`ASSISTANT_METRICS=1`; served at `/metrics` by `routes/metrics.py`).

Several app processes: **multiprocess mode**. With `PROMETHEUS_MULTIPROC_DIR` set (one empty
folder per machine, shared by its app processes), each process writes its counters, histograms
and gauges to memory-mapped files there and any process's `/metrics` sums them all; a scrape
that a balancer sends to any one process sees the whole machine. (Per-process labels would give
a scrape only the process it reached, and series that die with each restart.) Without the
variable the numbers are the one process's own. What every process sees alike (the corpus, the
ingest runs, the feedback) is read at scrape time from the index and the SQLite file
(`DeskCollector`), never summed.

    policy_desk_requests_total{route, status}         every response, by route template
    policy_desk_answers_total{outcome, channel}        answered / refused / error / busy; chat / embed / api
    policy_desk_answer_seconds{channel}                histogram: asking to the whole answer
    policy_desk_retrieval_seconds                      histogram: the search step of an answer
    policy_desk_answers_waiting / _running             answers waiting for a slot / holding one (gauges)
    policy_desk_busy_rejections_total                  requests that got no answer slot in time
    policy_desk_rate_limited_total{limit}              over ASSISTANT_RATE_LIMIT: questions / feedback / sign-in
    policy_desk_ingest_runs_total, _ingest_failures_total, _last_ingest_timestamp_seconds
    policy_desk_articles, policy_desk_chunks           what the index holds
    policy_desk_feedback_entries{rating}               feedback kept, by rating
"""

from __future__ import annotations

import atexit
import os
import re
from datetime import datetime
from typing import Callable

from ..runs import RunLog

PREFIX = "policy_desk"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# Routes counted by name; any other path is "other" (a client cannot grow the label set).
ROUTES = frozenset(("/", "/embed", "/owner", "/owner/login", "/owner/logout", "/metrics", "/config", "/theme.css",
                    "/favicon.ico", "/robots.txt", "/api/ask", "/api/ask/stream", "/api/search", "/api/feedback",
                    "/api/health", "/api/openapi.json"))
_FEEDBACK_ID = re.compile(r"^/api/feedback/[^/]+$")


def route_label(path: str) -> str:
    """The route a request path counts under: its template, a family, or "other"."""
    if path in ROUTES:
        return path
    if _FEEDBACK_ID.match(path):
        return "/api/feedback/{id}"
    for family in ("/gradio_api/", "/assets/", "/static/"):
        if path.startswith(family):
            return family + "*"
    return "other"


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


class Metrics:
    """The metrics of one app process (built once by `server.build_shared`); `render()` gives the
    text a scrape gets. `desk` adds what is read at scrape time (`DeskCollector`)."""

    def __init__(self, desk: "DeskCollector | None" = None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(multiprocess_dir())
        if self.multiprocess:  # prometheus_client writes there without creating it
            os.makedirs(multiprocess_dir(), exist_ok=True)
        self.registry = CollectorRegistry()
        own = None if self.multiprocess else self.registry  # in multiprocess mode the files are the registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP responses by route and status", ["route", "status"],
                                registry=own)
        self.answers = Counter(f"{PREFIX}_answers", "questions by outcome and channel", ["outcome", "channel"],
                               registry=own)
        self.answer_seconds = Histogram(f"{PREFIX}_answer_seconds", "seconds from a question to its whole answer",
                                        ["channel"], buckets=LATENCY_BUCKETS, registry=own)
        self.retrieval_seconds = Histogram(f"{PREFIX}_retrieval_seconds", "seconds the search step of an answer took",
                                           buckets=RETRIEVAL_BUCKETS, registry=own)
        self.waiting = Gauge(f"{PREFIX}_answers_waiting", "answers waiting for an answer slot", registry=own,
                             multiprocess_mode="livesum")
        self.running = Gauge(f"{PREFIX}_answers_running", "answers holding an answer slot", registry=own,
                             multiprocess_mode="livesum")
        self.busy = Counter(f"{PREFIX}_busy_rejections", "requests that got no answer slot in time", registry=own)
        self.rate_limited = Counter(f"{PREFIX}_rate_limited", "requests over a rate limit, by limit", ["limit"],
                                    registry=own)
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
            pid = os.getpid()
            atexit.register(lambda: multiprocess.mark_process_dead(pid))  # its live gauges leave the sum
        if desk is not None:
            self.registry.register(desk)

    def refused_by(self, limit: str) -> Callable[[], None]:
        """What a rate limiter calls when it refuses a request."""
        return self.rate_limited.labels(limit=limit).inc

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of a scrape."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class DeskCollector:
    """What every process sees alike, read when scraped: the index's size, the recorded ingest
    runs and the feedback kept (the SQLite file beside the index)."""

    def __init__(self, articles: Callable[[], int], chunks: Callable[[], int], db_path):
        self.articles = articles
        self.chunks = chunks
        self.db_path = db_path

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from ..feedback import FeedbackStore

        runs, failed, last = RunLog(self.db_path).ingests()
        yield CounterMetricFamily(f"{PREFIX}_ingest_runs", "ingest runs recorded (command line and start-up)",
                                  value=runs)
        yield CounterMetricFamily(f"{PREFIX}_ingest_failures", "files the recorded ingest runs could not index",
                                  value=failed)
        if last is not None:
            finished = datetime.fromisoformat(last.finished.replace("Z", "+00:00")).timestamp()
            yield GaugeMetricFamily(f"{PREFIX}_last_ingest_timestamp_seconds", "when the last ingest finished",
                                    value=finished)
        yield GaugeMetricFamily(f"{PREFIX}_articles", "articles in the index", value=self.articles())
        yield GaugeMetricFamily(f"{PREFIX}_chunks", "passages in the index", value=self.chunks())
        ratings = GaugeMetricFamily(f"{PREFIX}_feedback_entries", "feedback entries kept, by rating", labels=["rating"])
        for rating, n in FeedbackStore(self.db_path).counts().items():
            ratings.add_metric([rating], n)
        yield ratings


class CountRequests:
    """ASGI middleware: every response counted by route and status (`Metrics.requests`)."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from .security import route_path

        route = route_label(route_path(scope))

        async def counted(message):
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(route=route, status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)
