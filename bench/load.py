"""Load test: concurrent clients on the HTTP API on loopback, answers (`POST /api/ask`) against
retrieval alone (`POST /api/search`), one after the other in one run on the same app.

    python bench/load.py --index /tmp/seed-index              # launches app.py on a free port, 50 clients, 60 s each
    python bench/load.py --index /tmp/news-index --questions ../shared/eval/news/questions_dev.jsonl
    python bench/load.py --index /tmp/news-index --app /tmp/before --endpoints ask   # an older commit's app
    python bench/load.py --url http://127.0.0.1:7860 --clients 20 --seconds 30

Bounded: at most `--seconds` of load per endpoint and `--max-requests` requests per endpoint,
loopback only (a `--url` that is not 127.0.0.1/localhost is refused). A launched app gets its
rate limit raised (`ASSISTANT_RATE_LIMIT`), since one address sends everything. Prints p50/p95/p99
latency, throughput, answers/s over searches/s, and every non-200 answer; exits non-zero if
there was any.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
from benchmark import percentile  # noqa: E402

QUESTIONS = ["How much did trade between China and Russia grow?", "Who is Liu Weidong?",
             "What did Zuo Xiying say China should do?", "What is the population of Brazil?",
             "Why does Beijing avoid openly backing Moscow?", "What did he say about sanctions?"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(index: Path, log: Path, app: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ASSISTANT_INDEX": str(index), "ASSISTANT_PORT": str(port), "ASSISTANT_HOST": "127.0.0.1",
           "ASSISTANT_RATE_LIMIT": "1000000/minute", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([sys.executable, str(app / "app.py")], cwd=app, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit(f"app.py did not answer within 120 s:\n{log.read_text()[-3000:]}")


async def load(url: str, questions: list[str], clients: int, seconds: float,
               max_requests: int, endpoint: str = "ask") -> tuple[list[float], collections.Counter, list[str], float]:
    latencies: list[float] = []
    statuses: collections.Counter = collections.Counter()
    failures: list[str] = []
    sent = 0
    stop_at = time.monotonic() + seconds

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        i = n
        while time.monotonic() < stop_at and sent < max_requests:
            sent += 1
            question = questions[i % len(questions)]
            i += 1
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/api/{endpoint}", json={"question": question})
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    latencies.append((time.perf_counter() - start) * 1000)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                failures.append(repr(exc))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(n, http) for n in range(clients)))
        elapsed = time.monotonic() - started
    return latencies, statuses, failures, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", type=Path, help="launch app.py on this built index")
    where.add_argument("--url", help="a running app on loopback, e.g. http://127.0.0.1:7860")
    parser.add_argument("--app", type=Path, default=ROOT, help="the checkout whose app.py to launch (default: "
                        "this one; an older commit's worktree for a before/after)")
    parser.add_argument("--endpoints", default="search,ask", help="comma-separated, run in this order: search, ask")
    parser.add_argument("--questions", type=Path, help="a .jsonl file with a `question` per line (default: "
                        "questions about the sample article)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60, help="per endpoint")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per endpoint")
    args = parser.parse_args()

    questions = ([json.loads(line)["question"] for line in args.questions.read_text(encoding="utf-8").splitlines()
                  if line.strip()] if args.questions else QUESTIONS)
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if not set(endpoints) <= {"ask", "search"}:
        sys.exit("--endpoints: ask and/or search")
    proc = None
    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("loopback only: --url must be on 127.0.0.1 or localhost")
        url = args.url.rstrip("/")
    else:
        log = Path(tempfile.mkstemp(prefix="pd-load-", suffix=".log")[1])
        proc, url = launch(args.index, log, args.app)
    results = {}
    try:
        for endpoint in endpoints:
            httpx.post(f"{url}/api/{endpoint}", json={"question": questions[0]}, timeout=120)  # warm-up, not counted
            results[endpoint] = asyncio.run(load(url, questions, args.clients, args.seconds, args.max_requests,
                                                 endpoint))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)
            log.unlink()  # the app's log only matters when it fails to start (shown then)
    figures: dict = {"clients": args.clients, "app": str(args.app)}
    errors = 0
    for endpoint, (latencies, statuses, failures, elapsed) in results.items():
        failed = sum(n for status, n in statuses.items() if status != 200)
        errors += failed
        f = {"seconds": round(elapsed, 1), "requests": sum(statuses.values()), "ok": statuses.get(200, 0),
             "errors": failed, "throughput_rps": round(statuses.get(200, 0) / elapsed, 2),
             **({f"p{p}_ms": round(percentile(latencies, p)) for p in (50, 95, 99)} if latencies else {}),
             "statuses": {str(k): v for k, v in statuses.items()}}
        figures[endpoint] = f
        print(f"/api/{endpoint}: {args.clients} clients, {f['seconds']} s: {f['ok']} ok, {failed} errors, "
              f"{f['throughput_rps']}/s; latency p50 {f.get('p50_ms')} ms, p95 {f.get('p95_ms')} ms, "
              f"p99 {f.get('p99_ms')} ms")
        for failure in failures[:10]:
            print("  error:", failure)
    if "ask" in figures and "search" in figures and figures["search"]["throughput_rps"]:
        figures["answers_vs_searches"] = round(figures["ask"]["throughput_rps"] / figures["search"]["throughput_rps"], 2)
        print(f"answers/s over searches/s: {figures['answers_vs_searches']} (goal ≥ 0.7)")
    print(json.dumps(figures))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
