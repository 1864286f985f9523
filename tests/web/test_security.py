"""The guards of the public surface (assistant/web/security.py): first each piece on a tiny app, then
every probe of issue #9 against `python app.py` launched as the README says (default settings,
but a small rate limit and queue), over loopback. A probe from its own client address
(127.0.0.x: all of 127/8 is loopback) has its own rate-limit bucket, so tests do not share one.
"""

from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from assistant.web.security import OnlyPaths, RateLimiter, TextOnly, client_address, guard, names_a_file, route_path
from conftest import ROOT, TRADE_QUESTION
from test_app import launched, message_text

RATE = 5  # questions per minute per client, for the launched app
QUEUE = 2
FILE_PART = {"type": "file", "file": {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}}
SECRETS = ("/etc/hostname", "/dev/zero", str(ROOT / "app.py"), "index/chroma.sqlite3")
HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


# --- the pieces ------------------------------------------------------------------------------

def test_client_address_believes_only_the_proxys_own_entry():
    def request(forwarded):
        headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
        return Request({"type": "http", "headers": headers, "client": ("127.0.0.1", 5000)})

    assert client_address(request(["6.6.6.6"]), trust_proxy=False) == "127.0.0.1"
    assert client_address(request(["6.6.6.6, 203.0.113.7"]), trust_proxy=True) == "203.0.113.7"
    assert client_address(request(["6.6.6.6", "203.0.113.7"]), trust_proxy=True) == "203.0.113.7"
    assert client_address(request([]), trust_proxy=True) == "127.0.0.1"
    # Gradio's request, rebuilt from a dict in its queue: plain mappings.
    gradio = SimpleNamespace(headers={"x-forwarded-for": "6.6.6.6, 198.51.100.4"}, client=SimpleNamespace(host="10.0.0.1"))
    assert client_address(gradio, trust_proxy=True) == "198.51.100.4"
    assert client_address(gradio, trust_proxy=False) == "10.0.0.1"


def test_rate_limiter_counts_per_key_and_says_when_to_come_back():
    limiter = RateLimiter("2/minute")
    assert [limiter.hit("a"), limiter.hit("a"), limiter.hit("b")] == [0, 0, 0]
    wait = limiter.hit("a")
    assert 1 <= wait <= 60
    assert limiter.refusal(wait) == (f"You're asking faster than this assistant allows (2 questions per minute). "
                                     f"Please try again in {wait} s.")


def test_names_a_file_finds_gradio_file_references_anywhere():
    assert names_a_file({"data": ["q", [{"role": "user", "content": [FILE_PART]}]]})
    assert names_a_file([[[{"path": "http://example.org/x.bin", "meta": {"_type": "gradio.FileData"}}]]])
    assert not names_a_file({"data": ["q", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                                      ["South China Morning Post"], "", ""], "fn_index": 4, "meta": "text"})


def test_route_path_strips_the_proxy_prefix():
    assert route_path({"path": "/policy-desk/api/ask", "root_path": "/policy-desk"}) == "/api/ask"
    assert route_path({"path": "/policy-desk", "root_path": "/policy-desk"}) == "/"
    assert route_path({"path": "/api/ask", "root_path": ""}) == "/api/ask"
    assert route_path({"path": "/policy-desks/x", "root_path": "/policy-desk"}) == "/policy-desks/x"


@pytest.fixture(scope="module")
def tiny():
    """A tiny app behind `guard`: its POST routes answer with the size of the body they read."""
    app = FastAPI()

    @app.post("/api/echo")
    @app.post("/gradio_api/echo")
    @app.post("/other/echo")
    async def echo(request: Request):
        return {"bytes": len(await request.body())}

    @app.get("/gradio_api/upload")
    def upload():
        return {"uploaded": True}

    with TestClient(guard(app, paths=["/api/*", "/gradio_api/echo", "/other/echo"],
                          text_prefixes=["/api/", "/gradio_api/"], max_body_bytes=10_000)) as client:
        yield client


def test_guard_refuses_paths_bodies_and_files_with_the_headers_on(tiny):
    assert tiny.post("/api/echo", content=b'"' + b"x" * 9_998 + b'"').json() == {"bytes": 10_000}
    assert tiny.post("/gradio_api/echo", json={"data": ["q"]}).json()["bytes"] > 0
    chunked = tiny.post("/api/echo", content=iter([b"x" * 6_000, b"x" * 6_000]))  # no Content-Length
    assert "content-length" not in chunked.request.headers and chunked.status_code == 413
    refusals = [
        (tiny.post("/api/echo", content=b"x" * 10_001), 413),
        (tiny.get("/gradio_api/upload"), 404),  # served by the app, not on the list
        (tiny.get("/elsewhere"), 404),
        (tiny.post("/gradio_api/echo", json={"data": [FILE_PART]}), 422),
        (tiny.post("/api/echo", json={"history": [FILE_PART]}), 422),
        (tiny.post("/gradio_api/echo", content=b"not json"), 400),
        (tiny.post("/api/echo", content=b'{"question": NaN}'), 400),
        (tiny.post("/api/echo", content=b'{"data": ["q", [1]], "data": ["q", []]}'), 400),
        (tiny.post("/api/echo", content=b'{"question": "\\ud800 Liu"}'), 400),
        (tiny.post("/api/echo", content=b"[" * 3_000 + b"]" * 3_000), 400),  # too deep for the parser
    ]
    for response, status in refusals:
        assert response.status_code == status, response.text
        assert {k: response.headers.get(k) for k in HEADERS} == HEADERS
        assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert tiny.post("/gradio_api/echo", json={"data": [FILE_PART]}).json()["detail"] == "This chat takes text only."
    assert "a key appears twice" in tiny.post("/api/echo", content=b'{"a": 1, "a": 2}').json()["detail"]
    # Only bodies to the API and the chat are read first.
    assert tiny.post("/other/echo", content=b"not json").json() == {"bytes": 8}


def test_only_paths_and_text_only_pass_other_scopes():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    for middleware in (OnlyPaths(app, ["/x"]), TextOnly(app, ["/gradio_api/"])):
        asyncio.run(middleware({"type": "lifespan"}, None, None))
    assert seen == ["lifespan", "lifespan"]


# --- the launched app ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`python app.py` with the defaults the README documents, but RATE questions a minute and a
    queue of QUEUE; EMBED_ALLOWED_ORIGINS and TRUST_PROXY unset. (url, log, fn_index of `ask`)."""
    env = {"ASSISTANT_RATE_LIMIT": f"{RATE}/minute", "ASSISTANT_QUEUE_SIZE": str(QUEUE)}
    with launched(tmp_path_factory.mktemp("security"), env) as (url, log):
        config = httpx.get(url + "/config", timeout=10).json()
        ask = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "ask")
        yield SimpleNamespace(url=url, log=log, ask=ask)


_addresses = iter(range(2, 100))  # 100-229: the burst tests' own


def client(last_octet: int | None = None) -> httpx.Client:
    """An HTTP client from its own loopback address (a fresh rate-limit bucket)."""
    address = f"127.0.0.{last_octet or next(_addresses)}"
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def chat_turn(http: httpx.Client, site, question: str, history=(), outlets=(), since="", until="",
              session: str = "probe"):
    """One turn of the Gradio chat as the page sends it (queue/join, then the event stream):
    (status of the join, its JSON body or the `process_completed` message)."""
    body = {"data": [question, list(history), list(outlets), since, until, None], "fn_index": site.ask,
            "session_hash": session, "event_data": None, "trigger_id": None}
    joined = http.post(site.url + "/gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return joined.status_code, joined.json()
    with http.stream("GET", site.url + "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and (message := json.loads(line[5:]))["msg"] == "process_completed":
                return 200, message
    raise AssertionError("the event stream ended without process_completed")


def last_message(completed: dict) -> str:
    return message_text(completed["output"]["data"][0][-1])


def assert_healthy(site):
    with client() as http:
        assert http.get(site.url + "/api/health").json()["status"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("path", SECRETS)
def test_a_chat_turn_naming_a_file_is_refused(site, path):
    """Finding 1 (critical) and 2 (/dev/zero hung the server): the exact queue payload."""
    part = {"type": "file", "file": {"path": path, "meta": {"_type": "gradio.FileData"}}}
    with client() as http:
        for history in ([{"role": "user", "content": [part]}],
                        [{"role": "user", "content": [{"type": "text", "text": "Who is Liu Weidong?"}, part]}]):
            status, body = chat_turn(http, site, "Who is Liu Weidong?", history)
            assert (status, body) == (422, {"detail": "This chat takes text only."})
        # Named anywhere else in the request (the outlets, a URL to fetch): refused the same way.
        status, _ = chat_turn(http, site, "Who is Liu Weidong?", [], outlets=[part["file"]])
        assert status == 422
        url_part = {"path": site.url + "/api/health", "url": site.url + "/api/health", "meta": {"_type": "gradio.FileData"}}
        assert chat_turn(http, site, "q", [{"role": "user", "content": [{"type": "file", "file": url_part}]}])[0] == 422
        # Gradio's other ways in are not served at all.
        for route in ("/gradio_api/run/ask", "/gradio_api/api/ask", "/gradio_api/call/ask"):
            r = http.post(site.url + route, json={"data": ["Who is Liu Weidong?", [{"role": "user", "content": [part]}],
                                                           [], "", ""]})
            assert r.status_code in (404, 422), route
    assert_healthy(site)


@pytest.mark.slow
def test_the_chat_answers_and_echoes_text_only(site):
    with client() as http:
        status, completed = chat_turn(http, site, "What did he say the Biden administration was trying to do?",
                                      [{"role": "user", "content": [{"type": "text", "text": "Who is Liu Weidong?"}]},
                                       {"role": "assistant", "content": [{"type": "text", "text": "A fellow [1]"}]}])
    assert status == 200 and completed["success"]
    chat = completed["output"]["data"][0]
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant"]
    assert all(p["type"] == "text" for m in chat for p in m["content"])
    assert "alliance" in last_message(completed) and "(#source-1)" in last_message(completed)  # answered, cited


@pytest.mark.slow
def test_cache_files_and_gradio_routes_the_app_does_not_use_are_gone(site):
    """Uploads (finding 5), monitoring and docs (8), and the rest of Gradio's API the page does not use."""
    gone = {"GET": ["/gradio_api/file=/etc/hostname", "/gradio_api/file=/tmp/gradio/x/hostname",
                    "/gradio_api/file/etc/hostname", "/gradio_api/proxy=http://127.0.0.1/", "/gradio_api/upload_progress",
                    "/gradio_api/startup-events", "/gradio_api/run-history/buckets", "/gradio_api/dev/reload",
                    "/gradio_api/vibe-code", "/gradio_api/runs", "/gradio_api/user", "/gradio_api/token",
                    "/gradio_api/app_id", "/gradio_api/login_check", "/logout", "/monitoring", "/monitoring/summary",
                    "/monitoring/x", "/api/docs", "/api/redoc", "/docs/oauth2-redirect", "/openapi.json",
                    "/svelte/x.js", "/manifest.json", "/gradio_api/theme.css"],
            "POST": ["/gradio_api/upload", "/gradio_api/process_recording", "/gradio_api/component_server",
                     "/gradio_api/vibe-edit", "/gradio_api/reset", "/gradio_api/stream/x", "/login",
                     "/gradio_api/run-history/connect", "/gradio_api/call/ask", "/gradio_api/call/v2/ask"]}
    with client() as http:
        for method, paths in gone.items():
            for path in paths:
                r = http.request(method, site.url + path, files={"files": ("a.txt", b"hello")} if method == "POST" else None)
                assert r.status_code == 404, (method, path, r.status_code)
                assert {k: r.headers.get(k) for k in HEADERS} == HEADERS
        # Unqueued events (an example into the box) run here; a question may not skip the queue.
        r = http.post(site.url + "/gradio_api/run/predict", json={"data": [TRADE_QUESTION, [], [], "", ""],
                                                                  "fn_index": site.ask, "session_hash": "skip"})
        assert r.status_code == 404 and "join the queue" in r.json()["detail"]
        # A big upload is refused before it is read (413 by its Content-Length).
        r = http.post(site.url + "/gradio_api/upload", files={"files": ("big.bin", b"\0" * 2_000_000)})
        assert r.status_code == 413
        assert http.get(site.url + "/api/openapi.json").json()["info"]["title"] == "Policy Desk API"
    assert_healthy(site)


@pytest.mark.slow
def test_one_rate_limit_for_the_api_and_the_chat(site):
    """Finding 3: the chat counts against the API's per-client limit, with a message a person understands."""
    with client() as http:
        for i in range(RATE):
            if i % 2:
                assert http.post(site.url + "/api/ask", json={"question": TRADE_QUESTION}).status_code == 200
            else:
                assert chat_turn(http, site, TRADE_QUESTION, session=f"rate{i}")[1]["success"]
        status, completed = chat_turn(http, site, TRADE_QUESTION, session="rate-over")
        assert status == 200
        message = last_message(completed)
        assert message.startswith("⚠️ You're asking faster than this assistant allows") and "Please try again in" in message
        assert "5 questions per minute" in message.replace("\\", "")
        r = http.post(site.url + "/api/ask", json={"question": TRADE_QUESTION})
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        # X-Forwarded-For is not believed without TRUST_PROXY: still the same client.
        assert http.post(site.url + "/api/ask", json={"question": TRADE_QUESTION},
                         headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429
        assert http.get(site.url + "/api/health").status_code == 200  # only questions count
    with client() as other:  # another client is not held back
        assert chat_turn(other, site, TRADE_QUESTION)[1]["success"]


@pytest.mark.slow
def test_a_full_queue_says_busy_and_the_server_keeps_answering(site):
    """Finding 3: the Gradio queue is bounded. 16 chat turns at once from 16 clients, with 2 answer
    slots and QUEUE places: the rest are turned away with 503, which the page shows as "This
    application is currently busy. Please try again."."""
    start, results = threading.Barrier(16), []

    def join(i):
        with client(100 + i) as http:
            start.wait()
            r = http.post(site.url + "/gradio_api/queue/join",
                          json={"data": [TRADE_QUESTION, [], [], "", "", None], "fn_index": site.ask,
                                "session_hash": f"burst{i}", "event_data": None, "trigger_id": None})
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=join, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    full = [body for status, body in results if status == 503]
    assert len(results) == 16 and full and {status for status, _ in results} <= {200, 503}
    assert all(body["detail"].startswith(f"Queue is full. Max size is {QUEUE}") for body in full)
    assert_healthy(site)


@pytest.mark.slow
def test_history_items_are_capped(site):
    """Finding 4: a history item over the question cap, and a body over the limit (finding 6)."""
    with client() as http:
        r = http.post(site.url + "/api/ask", json={"question": "And he?", "history": ["Liu " * 1_000]})
        assert r.status_code == 422 and "at most 2,000" in r.json()["detail"]
        r = http.post(site.url + "/api/ask", json={"question": TRADE_QUESTION, "history": ["x" * 2_000] * 50})
        assert r.status_code == 200  # the most a client may send is well under the body limit
        big = json.dumps({"question": TRADE_QUESTION, "history": ["x" * 2_000] * 600}).encode()  # 1.2 MB
        assert http.post(site.url + "/api/ask", content=big, headers={"Content-Type": "application/json"}).status_code == 413
        chunked = http.post(site.url + "/api/ask", content=iter([big[:600_000], big[600_000:]]),
                            headers={"Content-Type": "application/json"})
        assert "content-length" not in chunked.request.headers and chunked.status_code == 413
        r = http.post(site.url + "/api/ask", json={"question": "q", "filters": {"since": "2024-13-45"}})
        assert r.status_code == 422 and "use YYYY-MM-DD" in r.json()["detail"]  # finding 9
    assert_healthy(site)


@pytest.mark.slow
def test_bodies_the_layers_behind_choke_on_get_400_not_500(site):
    """Found probing the fixed app: NaN crashed FastAPI's own 422 page, a lone surrogate the API's
    reply and Gradio's event stream (500s, a broken stream, tracebacks in the log)."""
    bodies = {"/api/ask": [b'{"question": NaN}', b'{"question": "Who is Liu Weidong?", "history": ["\\ud800"]}',
                           b'{"question": "q", "filters": {"sources": ["\\udfff"]}}'],
              "/gradio_api/queue/join": [b'{"data": ["q\\ud800", [], [], "", ""], "fn_index": 4, "session_hash": "s"}',
                                         b'{"data": ["q", [], [], "", ""], "fn_index": Infinity, "session_hash": "s"}']}
    logged = len(site.log.read_text())
    with client() as http:
        for path, payloads in bodies.items():
            for body in payloads:
                r = http.post(site.url + path, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code == 400 and r.json()["detail"].startswith("The request body is not JSON text"), body
    assert_healthy(site)
    assert "Traceback" not in site.log.read_text()[logged:]


@pytest.mark.slow
def test_headers_on_every_response_and_frames(site):
    """Finding 8: nosniff and Referrer-Policy everywhere; the chat page framed by this site only, the
    embed by any site (EMBED_ALLOWED_ORIGINS is unset); no foreign Origin echoed anywhere; forwarded
    headers ignored (found probing: Gradio put `X-Forwarded-Host` into the page's API root)."""
    with client() as http:
        for method, path in (("GET", "/"), ("GET", "/embed"), ("GET", "/api/health"), ("GET", "/api/openapi.json"),
                             ("GET", "/config"), ("GET", "/gradio_api/info"), ("GET", "/theme.css"),
                             ("GET", "/nowhere"), ("POST", "/api/ask")):
            r = http.request(method, site.url + path, headers={"Origin": "https://evil.example"},
                             json={"question": "   "} if method == "POST" else None)
            assert {k: r.headers.get(k) for k in HEADERS} == HEADERS, path
            assert "access-control-allow-origin" not in r.headers, path
            policy = r.headers.get("content-security-policy", "")
            if path == "/embed":
                assert "default-src 'none'" in policy and "frame-ancestors" not in policy
            else:
                assert policy == "frame-ancestors 'self'", path
        # Without TRUST_PROXY, X-Forwarded-* are the client's words: Gradio must not build the page's URLs from them.
        spoofed = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "Forwarded": "host=evil.example"}
        assert http.get(site.url + "/config", headers=spoofed).json()["root"] == site.url
        assert "evil.example" not in http.get(site.url + "/", headers=spoofed).text


@pytest.mark.slow
def test_30_concurrent_answer_streams_complete(site):
    """What held before: 30 SSE streams at once all end with their answer; health keeps answering."""
    results = []

    def stream(i):
        with client(200 + i) as http, http.stream("POST", site.url + "/api/ask/stream",
                                                   json={"question": TRADE_QUESTION}) as r:
            results.append((r.status_code, "event: answer" in r.read().decode()))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    assert_healthy(site)
    for t in threads:
        t.join(timeout=120)
    assert results == [(200, True)] * 30


# --- the root fix, without the guards --------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path", ["/etc/hostname", "/dev/zero"])
def test_gradio_itself_refuses_a_file_the_client_names(seed_assistant, path):
    """Without `security.TextOnly`, the mounted chat must still refuse: `mount_chat` marks the
    Blocks launched, so Gradio checks the path (only its own uploads may be named; there are none)."""
    from assistant.web.ui import mount_chat

    server = mount_chat(FastAPI(), seed_assistant)
    with TestClient(server) as c:
        ask = next(i for i, d in enumerate(c.get("/config").json()["dependencies"]) if d.get("api_name") == "ask")
        history = [{"role": "user", "content": [{"type": "file", "file": {"path": path,
                                                                          "meta": {"_type": "gradio.FileData"}}}]}]
        done = {}

        def turn():
            c.post("/gradio_api/queue/join", json={"data": ["Who is Liu Weidong?", history, [], "", "", None],
                                                   "fn_index": ask, "session_hash": "root", "trigger_id": None})
            with c.stream("GET", "/gradio_api/queue/data", params={"session_hash": "root"}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:") and (m := json.loads(line[5:]))["msg"] == "process_completed":
                        done.update(m)
                        return

        worker = threading.Thread(target=turn, daemon=True)
        worker.start()
        worker.join(timeout=60)  # /dev/zero read whole would never end
        assert done and done["success"] is False
        assert "Cannot move" in done["output"]["error"] and "not uploaded by a user" in done["output"]["error"]
        assert c.get("/api/nothing").status_code == 404  # the server still answers
