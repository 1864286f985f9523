"""Past one machine (docs/scaling.md, deploy/): one real `chroma run`, one real redis-server, the
command line ingesting into that server, and two real app processes serving from it, then the same
behind a real Caddy with deploy/'s configuration (Debian's `caddy`, when installed); then the
files in deploy/ checked against the code they start: every variable they set is a setting with a
valid value, every command line names a real entry point with options it takes, and the parts
name each other consistently (hosts, ports, upstreams).

The app processes run with TRUST_PROXY=1, as behind the proxy of deploy/: each request names its
client in `X-Forwarded-For`, the last entry, as the proxy appends it. That is how the checks keep
out of each other's rate-limit budget (a client address per check).
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from assistant.config import load_settings, variables
from conftest import ROOT, SAMPLE, SEED_ID, TRADE_QUESTION, free_port, stop, write_article
from test_app import STARTUP_SECONDS, TRADE_QUOTE, app_env, md_unescape, message_text, wait_until_serving
from test_cli import cli_env, ok

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
LIMIT = 6  # questions a minute per client, in all processes together
TRAM_QUESTION = "When does construction of the airport tram line start?"
CATCH_UP_SECONDS = 90  # bound on an ingest reaching both processes (refresh every second)

# Variables the deploy files may set that are not the desk's settings: the libraries' own.
THIRD_PARTY = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED", "ANONYMIZED_TELEMETRY"}
SETTINGS = {env for _, env, _, _ in variables()}


# --- two app processes on one Chroma server and one Redis -----------------------------------

def server_cli(chroma: tuple[str, int], lock: Path, *args) -> subprocess.CompletedProcess:
    """`python -m assistant …` against the Chroma server, as a separate process (the ingest job)."""
    host, port = chroma
    return subprocess.run([sys.executable, "-m", "assistant", *map(str, args)], cwd=ROOT,
                          env={**cli_env(), "CHROMA_HOST": host, "CHROMA_PORT": str(port),
                               "ASSISTANT_INGEST_LOCK": str(lock),
                               "ASSISTANT_INDEX": str(lock.parent / "ingest-job")},  # its machine's folder
                          capture_output=True, text=True, encoding="utf-8", timeout=300)


@contextmanager
def app_processes(base: Path, corpus: Path, env: dict[str, str], count: int = 2):
    """`count` `python app.py` processes on free loopback ports, started together (each loads its
    model at the same time), with `env` added: yields [(url, index folder, log file)] once each
    answers `/api/health`."""
    started = []
    try:
        for n in range(1, count + 1):
            folder = base / f"app-{n}"
            folder.mkdir(parents=True)
            port = free_port()
            log_path = folder / "app.log"
            with open(log_path, "w", encoding="utf-8") as log:  # a file: a full pipe would stall the app
                proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                        cwd=ROOT, env={**app_env(corpus, folder / "index"), **env},
                                        stdout=log, stderr=subprocess.STDOUT)
            started.append((proc, f"http://127.0.0.1:{port}", folder / "index", log_path))
        deadline = time.monotonic() + STARTUP_SECONDS  # one for all: they load their models together
        for proc, url, _, log_path in started:
            wait_until_serving(proc, url, log_path, "/api/health", deadline)
        yield [(url, index, log_path) for _, url, index, log_path in started]
    finally:
        for proc, *_ in started:
            stop(proc)


def as_client(address: str) -> dict[str, str]:
    """Headers of a request the proxy forwards for the client at `address`."""
    return {"X-Forwarded-For": address}


@contextmanager
def deployment(chroma: tuple[str, int], redis_url: str, base: Path):
    """The sample corpus ingested into the Chroma server by the command line, then two app
    processes serving from that server, sharing the rate limit in Redis, behind a proxy
    (TRUST_PROXY=1): yields (corpus folder, ingest lock, [(url, index folder, log file)])."""
    corpus = base / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    lock = base / "ingest.lock"
    assert "added 1" in ok(server_cli(chroma, lock, "ingest", "--corpus", corpus, "--quiet"))
    host, port = chroma
    env = {"CHROMA_HOST": host, "CHROMA_PORT": str(port), "ASSISTANT_INGEST_LOCK": str(lock),
           "ASSISTANT_RATE_LIMIT": f"{LIMIT}/minute", "ASSISTANT_RATE_LIMIT_STORAGE": redis_url,
           "ASSISTANT_REFRESH_SECONDS": "1", "TRUST_PROXY": "1"}
    with app_processes(base, corpus, env) as apps:
        yield corpus, lock, apps
    for _, index, log_path in apps:
        # Server mode: nothing of the index was written on the app's side.
        assert not (index / "chroma.sqlite3").exists()
        assert "Traceback" not in log_path.read_text(encoding="utf-8"), log_path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_two_app_processes_share_one_chroma_server_and_one_rate_limit(chroma_server, redis_server, tmp_path):
    with deployment(chroma_server, redis_server, tmp_path) as (corpus, lock, apps):
        urls = [url for url, _, _ in apps]

        # (a) Both answer from what the ingest job wrote to the server.
        for url in urls:
            health = httpx.get(url + "/api/health", timeout=30).json()
            assert (health["articles"], health["status"]) == (1, "ok")
            r = httpx.post(url + "/api/ask", json={"question": TRADE_QUESTION}, timeout=60,
                           headers=as_client("198.51.100.1"))
            assert r.status_code == 200, r.text
            answer = r.json()
            assert not answer["refused"] and "40.7" in answer["answer"]
            assert any(TRADE_QUOTE in c["quote"] and c["article_id"] == SEED_ID for c in answer["citations"])

        # (b) A new article, ingested by the job while both serve, reaches both. Each poll is asked
        # as another client, so that polling never meets the limit checked below.
        write_article(corpus, "tram.md", "City council approves new tram line",
                      "The city council voted 7 to 2 on Monday to build a 12-kilometre tram line linking the "
                      "airport with the old town.\n\nConstruction is due to start in 2025 and cost 310 million "
                      "euros.", source="Metro Gazette", date="2023-03-20", url="https://example.org/tram")
        assert "added 1" in ok(server_cli(chroma_server, lock, "ingest", "--corpus", corpus, "--quiet"))
        pollers = (f"10.0.{n // 250}.{n % 250 + 1}" for n in itertools.count())
        waiting = set(urls)
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while waiting and time.monotonic() < deadline:
            for url in sorted(waiting):
                # Two articles in /api/health: this process rebuilt its BM25 index from the server.
                articles = httpx.get(url + "/api/health", timeout=30).json()["articles"]
                r = httpx.post(url + "/api/search", json={"question": TRAM_QUESTION, "k": 3}, timeout=60,
                               headers=as_client(next(pollers)))
                assert r.status_code == 200, r.text
                hits = r.json()
                if articles == 2 and hits and hits[0]["article_id"] == "tram.md" and "2025" in hits[0]["text"]:
                    waiting.discard(url)
            time.sleep(0.5)
        assert not waiting, f"the new article did not reach {sorted(waiting)} within {CATCH_UP_SECONDS} s"
        for url in urls:
            r = httpx.post(url + "/api/ask", json={"question": TRAM_QUESTION}, timeout=60,
                           headers=as_client("198.51.100.2"))
            answer = r.json()
            assert r.status_code == 200 and not answer["refused"] and "2025" in answer["answer"]
            assert {c["article_id"] for c in answer["citations"]} == {"tram.md"}

        # (c) One limit for both processes: LIMIT questions a minute from a client in all, not LIMIT each.
        client = as_client("203.0.113.7")
        codes = [httpx.post(url + "/api/search", json={"question": TRADE_QUESTION}, timeout=60,
                            headers=client).status_code for url in urls * (LIMIT // 2 + 1)]
        assert codes == [200] * LIMIT + [429, 429]
        for url in urls:
            refused = httpx.post(url + "/api/ask", json={"question": TRADE_QUESTION}, timeout=60, headers=client)
            assert refused.status_code == 429 and f"{LIMIT} questions per minute" in refused.json()["detail"]
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            # Per client: another one is still answered, by either process.
            other = httpx.post(url + "/api/search", json={"question": TRADE_QUESTION}, timeout=60,
                               headers=as_client("203.0.113.8"))
            assert other.status_code == 200


@contextmanager
def caddy_in_front(caddy: str, base: Path, urls: list[str]):
    """`caddy run` with deploy/systemd/Caddyfile, its upstreams made `urls`, on a free loopback
    port: yields its URL once it answers."""
    port = free_port()
    text = (SYSTEMD / "Caddyfile").read_text(encoding="utf-8")
    upstreams = " ".join(caddy_upstreams(SYSTEMD / "Caddyfile"))
    assert upstreams in text and ":80 {" in text
    text = text.replace(upstreams, " ".join(urlsplit(url).netloc for url in urls))
    text = "{\n\tadmin off\n}\n\n" + text.replace(":80 {", f":{port} {{\n\tbind 127.0.0.1", 1)
    config = base / "Caddyfile"
    config.write_text(text, encoding="utf-8")
    log_path = base / "caddy.log"
    home = {"HOME": str(base), "XDG_DATA_HOME": str(base / "data"), "XDG_CONFIG_HOME": str(base / "config")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
                                env={**cli_env(), **home}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"caddy did not answer on {url}:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop(proc)


@pytest.mark.slow
def test_through_caddy_a_chat_stays_on_its_process_and_a_forged_address_counts_for_nothing(
        chroma_server, redis_server, tmp_path):
    from gradio_client import Client

    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("caddy is not installed: `make test` installs it (scripts/system-deps.sh), or apt-get install caddy")
    with deployment(chroma_server, redis_server, tmp_path) as (_, _, apps), \
            caddy_in_front(caddy, tmp_path, [url for url, _, _ in apps]) as proxy:
        assert httpx.get(proxy + "/api/health", timeout=30).json()["articles"] == 1
        # The Gradio chat's queue lives in one process: `join` and its `data` stream must reach
        # the same one. gradio_client keeps the cookie of its first response, as a browser does.
        asked = 2
        for _ in range(asked):
            chat = Client(proxy, verbose=False, analytics_enabled=False, download_files=False)
            assert "desk_upstream" in chat.cookies
            history, _ = chat.predict(TRADE_QUESTION, [], api_name="/ask")
            assert "40.7 per cent" in md_unescape(message_text(history[-1]))
        # Caddy puts the address it sees in X-Forwarded-For, whatever the client wrote there:
        # one client (127.0.0.1, whose chat questions counted too) however it signs its requests.
        codes = [httpx.post(proxy + "/api/search", json={"question": TRADE_QUESTION}, timeout=60,
                            headers=as_client(f"192.0.2.{n + 1}")).status_code for n in range(LIMIT - asked + 1)]
        assert codes == [200] * (LIMIT - asked) + [429]
        # Scripts calling the API hold no cookie: spread over both processes, limited as one client.
        refused = httpx.post(proxy + "/api/ask", json={"question": TRADE_QUESTION}, timeout=60)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60


# --- deploy/compose.yaml and deploy/Dockerfile ----------------------------------------------

def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # - NAME=value
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def check_environment(env: dict[str, str], where: str) -> None:
    """Every variable is one of the desk's settings (or a library's own), with a value it takes."""
    unknown = set(env) - SETTINGS - THIRD_PARTY
    assert not unknown, f"{where} sets variables that are no setting: {sorted(unknown)}"
    load_settings(env)  # raises ValueError naming the variable whose value is not valid


def requirement(name: str) -> str:
    """The version requirements.txt pins for `name`."""
    pins = re.findall(rf"^{re.escape(name)}==(\S+)", (ROOT / "requirements.txt").read_text(encoding="utf-8"),
                      flags=re.MULTILINE | re.IGNORECASE)
    assert len(pins) == 1, f"requirements.txt pins {name} {len(pins)} times"
    return pins[0]


def app_options() -> set[str]:
    """The options app.py's own parser takes."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
            and node.args and isinstance(node.args[0], ast.Constant)}


def check_app_command(argv: list[str]) -> dict[str, str]:
    """`… app.py [--option value]…`: app.py exists and takes each option; returns the options."""
    script = argv.index("app.py")
    assert (ROOT / "app.py").is_file()
    pairs = argv[script + 1:]
    assert len(pairs) % 2 == 0, argv
    options = dict(zip(pairs[::2], pairs[1::2]))
    assert set(options) <= app_options(), f"app.py takes no {sorted(set(options) - app_options())}"
    return options


def check_cli_command(argv: list[str]) -> None:
    """`… -m assistant COMMAND …`: the desk's own parser takes it."""
    from assistant.cli import _parser

    module = argv.index("-m")
    assert argv[module + 1] == "assistant", argv
    _parser().parse_args(argv[module + 2:])  # SystemExit on anything it does not take


def test_compose_runs_one_chroma_one_redis_an_ingest_job_and_two_apps_behind_a_proxy():
    services = compose()["services"]
    apps = [name for name, s in services.items() if "app.py" in (s.get("command") or [])]
    assert apps == ["app-1", "app-2"]
    assert set(services) == {"chroma", "redis", "ingest", "proxy", *apps}

    chroma = services["chroma"]
    image, _, tag = chroma["image"].partition(":")
    assert image == "chromadb/chroma" and tag == requirement("chromadb")  # the server of the client's version
    command = chroma["command"]
    assert command[0] == "run" and command[command.index("--path") + 1] == "/data"
    assert any(v.endswith(":/data") for v in chroma["volumes"])
    chroma_port = command[command.index("--port") + 1]
    assert services["redis"]["image"].startswith("redis:")

    for name in (*apps, "ingest"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        env = environment(service)
        check_environment(env, f"compose.yaml's {name}")
        assert (env["CHROMA_HOST"], env["CHROMA_PORT"]) == ("chroma", chroma_port)
        assert service["depends_on"]["chroma"]["condition"] == "service_healthy"
        assert "../corpus:/app/corpus" in {v.removesuffix(":ro") for v in service["volumes"]}
        # One lock for the apps' start-up ingest and the job: on the volume they share.
        assert env["ASSISTANT_INGEST_LOCK"].startswith("/app/index/") and "index:/app/index" in service["volumes"]
    check_cli_command(services["ingest"]["command"])
    assert services["ingest"]["restart"] == "no"

    for name in apps:
        app = services[name]
        env = environment(app)
        assert check_app_command(app["command"]) == {}
        storage = urlsplit(env["ASSISTANT_RATE_LIMIT_STORAGE"])
        assert (storage.scheme, storage.hostname) == ("redis", "redis")
        assert env["TRUST_PROXY"] == "1" and env["ASSISTANT_HOST"] == "0.0.0.0"
        # TRUST_PROXY believes X-Forwarded-For: only the proxy may reach an app.
        assert "ports" not in app
        assert app["depends_on"] == {"chroma": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"},
                                     "ingest": {"condition": "service_completed_successfully"}}
        assert f":{env['ASSISTANT_PORT']}/api/health" in " ".join(app["healthcheck"]["test"])
    assert environment(services["app-1"]) == environment(services["app-2"])
    assert not any("ports" in services[name] for name in ("chroma", "redis", "ingest"))

    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:") and proxy["ports"] == ["8080:80"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["depends_on"] == {name: {"condition": "service_healthy"} for name in apps}
    port = environment(services["app-1"])["ASSISTANT_PORT"]
    assert caddy_upstreams(DEPLOY / "Caddyfile") == [f"{name}:{port}" for name in apps]


def test_the_image_installs_the_pinned_requirements_and_serves_app_py():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()  # continuation lines joined
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim$", dockerfile, flags=re.MULTILINE)
    copied = [word for line in lines if line.startswith("COPY ") for word in line.split()[1:-1]]
    for name in copied:
        assert (ROOT / name).exists(), f"the Dockerfile copies {name}, which the repository lacks"
    run = " ".join(line for line in lines if line.startswith("RUN "))
    assert "pip install -r requirements.txt" in run and "pip install --no-deps --no-build-isolation -e ." in run
    # torch from the CPU index at requirements.txt's own pin, read from the file at build time.
    assert "download.pytorch.org/whl/cpu" in run and "sed -n 's/^torch==//p' requirements.txt" in run
    assert requirement("torch")
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", next(line for line in lines if line.startswith("ENV "))))
    assert {name: env[name] for name in THIRD_PARTY} == {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
        "ANONYMIZED_TELEMETRY": "False"}
    assert lines[-1] == 'CMD ["python", "app.py"]'
    # The build context is the repository root; its ignore file lets in what the image copies.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "*" in ignore and {f"!{name}" for name in copied} <= set(ignore)


# --- deploy/systemd -------------------------------------------------------------------------

def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: {section: {key: [values, in order]}}."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (SYSTEMD / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def env_file() -> dict[str, str]:
    lines = (SYSTEMD / "policy-desk.env").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def caddy_upstreams(path: Path) -> list[str]:
    (line,) = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines()
               if ln.strip().startswith("reverse_proxy ")]
    assert line[-1] == "{" and "lb_policy cookie" in path.read_text(encoding="utf-8")  # sticky chat sessions
    return line[1:-1]


def test_the_systemd_units_start_the_real_entry_points():
    env = env_file()
    check_environment(env, "policy-desk.env")
    storage = urlsplit(env["ASSISTANT_RATE_LIMIT_STORAGE"])
    assert storage.scheme == "redis" and env["TRUST_PROXY"] == "1"
    # Each unit has its own /tmp (PrivateTmp): the default lock in the temp folder would not be shared.
    assert not env["ASSISTANT_INGEST_LOCK"].startswith("/tmp/")

    app = unit("policy-desk@.service")["Service"]
    argv = shlex.split(app["ExecStart"][0])
    assert argv[0] == "/srv/policy-desk/.venv/bin/python" and app["WorkingDirectory"] == ["/srv/policy-desk"]
    assert check_app_command(argv) == {"--host": "127.0.0.1", "--port": "%i"}  # one process per instance port
    assert app["EnvironmentFile"] == ["/etc/policy-desk/env"]

    ingest = unit("policy-desk-ingest.service")["Service"]
    assert ingest["Type"] == ["oneshot"] and ingest["EnvironmentFile"] == ["/etc/policy-desk/env"]
    argv = shlex.split(ingest["ExecStart"][0])
    assert argv[0] == "/srv/policy-desk/.venv/bin/python" and argv[1:4] == ["-m", "assistant", "ingest"]
    check_cli_command(argv)
    timer = unit("policy-desk-ingest.timer")
    assert timer["Timer"]["Unit"] == ["policy-desk-ingest.service"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]

    chroma = unit("chroma.service")["Service"]
    argv = shlex.split(chroma["ExecStart"][0])
    assert argv[:2] == ["/srv/policy-desk/.venv/bin/chroma", "run"]
    assert Path(sys.executable).with_name("chroma").exists()  # `chroma` ships with the chromadb package
    assert argv[argv.index("--port") + 1] == env["CHROMA_PORT"]
    assert argv[argv.index("--host") + 1] == env["CHROMA_HOST"]
    assert argv[argv.index("--path") + 1].startswith("/var/lib/" + chroma["StateDirectory"][0] + "/")

    # The host's proxy: the two instances that scaling.md enables.
    assert caddy_upstreams(SYSTEMD / "Caddyfile") == ["127.0.0.1:7861", "127.0.0.1:7862"]
    scaling = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    assert "policy-desk@7861" in scaling and "policy-desk@7862" in scaling


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """systemd's own checks on the units, with /srv/policy-desk pointing at this checkout."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed: `make test` installs it (scripts/system-deps.sh), "
                    "or apt-get install systemd")
    srv = tmp_path / "srv"
    srv.symlink_to(ROOT)
    units = []
    for path in SYSTEMD.glob("*.service"):
        name = path.name.replace("@.", "@7861.")  # a template is verified as an instance
        (tmp_path / name).write_text(path.read_text(encoding="utf-8").replace("/srv/policy-desk", str(srv)),
                                     encoding="utf-8")
        units.append(str(tmp_path / name))
    shutil.copy(SYSTEMD / "policy-desk-ingest.timer", tmp_path)
    units.append(str(tmp_path / "policy-desk-ingest.timer"))
    run = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    # What it may say about this machine rather than the units: no such user, or no systemd running.
    noise = re.compile(r"Failed to resolve user|not running|Failed to connect to bus|System has not been booted"
                       r"|Failed to initialize manager|/etc/policy-desk/env")
    problems = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.strip() and not noise.search(ln)]
    assert not problems, "\n".join(problems)
