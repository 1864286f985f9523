"""`/metrics` (assistant/web/metrics.py, routes/metrics.py): parsed with prometheus_client's own
parser, over the real server app; who may read it; several processes summed (multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assistant.config import Settings
from assistant.web.metrics import route_label
from assistant.web.server import build_server
from conftest import ROOT, TRADE_QUESTION

TOKEN = "owner-token-for-metrics-0123456789"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def server(seed_assistant, seed_index, tmp_path_factory):
    settings = Settings.of(index_dir=seed_index, rate_limit="3/minute", metrics=True, owner_token=TOKEN,
                           feedback_db=tmp_path_factory.mktemp("metrics") / "fb.sqlite3")
    return build_server(seed_assistant, settings)


def loopback(server, last: int = 1):
    return TestClient(server, client=(f"127.0.0.{last}", 50_000))


def test_metrics_parse_and_count_requests_answers_and_rate_limits(server):
    with loopback(server, 2) as client:
        before = samples(client.get("/metrics").text)
        assert client.get("/api/health").status_code == 200
        for _ in range(4):  # 3 a minute: the 4th is refused
            client.post("/api/ask", json={"question": TRADE_QUESTION})
        client.get("/nowhere")
        after = samples(client.get("/metrics").text)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("policy_desk_requests_total", route="/api/health", status="200") == 1
    assert grew("policy_desk_requests_total", route="/api/ask", status="200") == 3
    assert grew("policy_desk_requests_total", route="/api/ask", status="429") == 1
    assert grew("policy_desk_requests_total", route="other", status="404") == 1
    assert grew("policy_desk_answers_total", outcome="answered", channel="api") == 3
    assert grew("policy_desk_answer_seconds_count", channel="api") == 3
    assert grew("policy_desk_retrieval_seconds_count") == 3
    assert grew("policy_desk_rate_limited_total", limit="questions") == 1
    assert after[("policy_desk_articles", ())] == 3 and after[("policy_desk_chunks", ())] > 3
    assert ("policy_desk_feedback_entries", (("rating", "down"),)) in after
    assert ("policy_desk_ingest_runs_total", ()) in after and ("policy_desk_busy_rejections_total", ()) in after
    assert after[("policy_desk_answers_running", ())] == 0


def test_metrics_are_refused_to_other_clients_without_the_owners_token(server):
    with TestClient(server, client=("203.0.113.9", 50_000)) as outsider:
        refused = outsider.get("/metrics")
        assert refused.status_code == 403 and "policy_desk" not in refused.text
        assert outsider.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 403
        assert outsider.get(f"/metrics?token={TOKEN}").status_code == 403  # never from a URL
        assert outsider.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_behind_a_proxy_the_forwarded_client_is_the_one_checked(seed_assistant, seed_index, tmp_path):
    settings = Settings.of(index_dir=seed_index, metrics=True, trust_proxy=True, feedback_db=tmp_path / "fb.sqlite3")
    with loopback(build_server(seed_assistant, settings)) as proxy:
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
        assert proxy.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}).status_code == 200
        assert proxy.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}",
                                              "X-Forwarded-For": "203.0.113.9"}).status_code == 403  # no token set


def test_metrics_do_not_exist_unless_switched_on(seed_assistant, seed_index, tmp_path):
    settings = Settings.of(index_dir=seed_index, feedback_db=tmp_path / "fb.sqlite3")
    with loopback(build_server(seed_assistant, settings)) as client:
        assert client.get("/metrics").status_code == 404


def test_route_labels_are_a_closed_set():
    assert route_label("/api/feedback/7") == "/api/feedback/{id}"
    assert route_label("/gradio_api/queue/join") == "/gradio_api/*"
    assert route_label("/api/ask") == "/api/ask"
    assert route_label("/" + "x" * 500) == route_label("/wp-admin") == "other"


def test_several_processes_are_summed_in_multiprocess_mode(tmp_path):
    folder = tmp_path / "prom"  # not there yet: the first process makes it
    count = textwrap.dedent("""
        import sys
        from assistant.web.metrics import Metrics
        m = Metrics()
        assert m.multiprocess
        m.requests.labels(route="/api/ask", status="200").inc(int(sys.argv[1]))
        m.answer_seconds.labels(channel="chat").observe(0.3)
        m.running.inc()
        """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for n in (2, 5):  # two app processes, one after the other
        subprocess.run([sys.executable, "-c", count, str(n)], cwd=ROOT, env=env, check=True, timeout=120)
    read = "from assistant.web.metrics import Metrics; print(Metrics().render()[0].decode())"
    text = subprocess.run([sys.executable, "-c", read], cwd=ROOT, env=env, check=True, timeout=120,
                          capture_output=True, text=True).stdout
    got = samples(text)
    assert got[("policy_desk_requests_total", (("route", "/api/ask"), ("status", "200")))] == 7
    assert got[("policy_desk_answer_seconds_count", (("channel", "chat"),))] == 2
    assert got.get(("policy_desk_answers_running", ()), 0) == 0  # both exited: their live gauges left the sum
