"""Tests for assistant.sources.fetch against a real HTTP server on 127.0.0.1 (the `site` fixture)."""

from __future__ import annotations

import json

import pytest
import yaml

from assistant.sources.corpus import iter_corpus, load_article
from assistant.errors import FetchFailed
from assistant.sources.fetch import (AddReport, Known, add_urls, allowed_origin, check_url, fetch, file_name,
                                     make_client, normalise_url, not_public, origin)
from conftest import article_page, pdf_bytes, write_article

LEVY = [
    "The port authority of Valdora approved a levy of 14 euros per container on Tuesday, to take effect "
    "on 1 April, the first such charge in the harbour's history.",
    "Shipping lines said the levy would be passed on to importers, while the authority said the money "
    "would pay for dredging the northern channel and for shore power at three berths.",
    "Critics on the city council argued the charge would push smaller carriers to the rival port of "
    "Estrel, forty kilometres along the coast, where no such levy applies.",
]
LEVY_FILE = "harbour-times_2024-03-05_valdora-port-approves-container-levy.md"
FURNITURE = ("Most read", "All rights reserved", "Subscribe", "cookies", "Privacy", "Ferry timetable", "Business")


def snapshot(folder):
    """Every file in the folder (hidden ones too) with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def front_matter(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def add_one(url, corpus_dir, web_client, **kwargs) -> tuple[str, str]:
    """(outcome, detail) of adding one URL: ("added", file), ("present", file) or ("failed", reason)."""
    report = add_urls([url], corpus_dir, web_client, **kwargs)
    (outcome, pairs), = [(k, v) for k, v in vars(report).items() if v]
    return outcome, pairs[0][1]


# --- a good page ------------------------------------------------------------------


def test_page_becomes_markdown_with_front_matter_and_no_furniture(site, corpus_dir, web_client):
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    assert add_one(url, corpus_dir, web_client) == ("added", LEVY_FILE)

    path = corpus_dir / LEVY_FILE
    assert front_matter(path) == {"title": "Valdora port approves container levy", "source": "Harbour Times",
                                  "date": "2024-03-05", "url": url, "authors": ["Mara Quint"]}
    article = load_article(path, corpus_dir)  # what ingest will read
    assert article.url == url and article.date == "2024-03-05" and article.source == "Harbour Times"
    for paragraph in LEVY:
        assert paragraph in article.text
    for word in FURNITURE:
        assert word not in article.text
    assert [p.name for p in corpus_dir.iterdir()] == [LEVY_FILE]  # no temporary file left behind


def test_same_url_again_changes_nothing_and_fetches_nothing(site, corpus_dir, web_client):
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    add_urls([url], corpus_dir, web_client)
    before = snapshot(corpus_dir)

    report = add_urls([url, url + "#comments", url + "?utm_source=rss"], corpus_dir, web_client)
    assert report.added == [] and report.failed == []
    assert [file for _, file in report.present] == [LEVY_FILE] * 3
    assert snapshot(corpus_dir) == before
    assert site.hits["/news/levy"] == 1  # known by URL: not fetched again


def test_same_text_under_another_url_is_present(site, corpus_dir, web_client):
    page = article_page("Valdora port approves container levy", LEVY)
    add_urls([site.serve("/news/levy", page)], corpus_dir, web_client)
    before = snapshot(corpus_dir)
    assert add_one(site.serve("/amp/levy", page), corpus_dir, web_client) == ("present", LEVY_FILE)
    assert snapshot(corpus_dir) == before


def test_url_given_twice_in_one_call_is_added_once(site, corpus_dir, web_client):
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    report = add_urls([url, url], corpus_dir, web_client)
    assert report.added == [(url, LEVY_FILE)] and report.present == [(url, LEVY_FILE)]


def test_redirect_is_followed_and_remembered(site, corpus_dir, web_client):
    final = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    short = site.redirect("/s/abc", "/news/levy", status=301)
    assert add_one(short, corpus_dir, web_client) == ("added", LEVY_FILE)
    meta = front_matter(corpus_dir / LEVY_FILE)
    assert meta["url"] == final and meta["via"] == short

    assert add_one(short, corpus_dir, web_client) == ("present", LEVY_FILE)  # a fresh scan of the folder
    assert site.hits["/s/abc"] == 1
    assert add_one(final, corpus_dir, web_client) == ("present", LEVY_FILE)
    assert site.hits["/news/levy"] == 1


def test_pdf(site, corpus_dir, web_client):
    url = site.serve("/papers/estuary-plan.pdf", pdf_bytes(["The estuary plan sets a cap of 90 ships a day."],
                                                           title="Estuary management plan"),
                     content_type="application/pdf", headers={"Last-Modified": "Wed, 06 Mar 2024 10:00:00 GMT"})
    assert add_one(url, corpus_dir, web_client) == ("added", "127-0-0-1_2024-03-06_estuary-management-plan.md")
    article = load_article(corpus_dir / "127-0-0-1_2024-03-06_estuary-management-plan.md", corpus_dir)
    assert article.text == "The estuary plan sets a cap of 90 ships a day."
    assert (article.title, article.source, article.date, article.url) == (
        "Estuary management plan", "127.0.0.1", "2024-03-06", url)


def test_pdf_sent_as_a_generic_download(site, corpus_dir, web_client):
    url = site.serve("/dl?id=7", pdf_bytes(["Berth 4 reopens in June."], title="Berth notice"),
                     content_type="application/octet-stream")
    assert add_one(url, corpus_dir, web_client) == ("added", "127-0-0-1_undated_berth-notice.md")
    site.serve("/dl?id=8", b"PK\x03\x04 a zip file", content_type="application/octet-stream")
    assert add_one(site.url("/dl?id=8"), corpus_dir, web_client) == (
        "failed", "not an article: the server sent application/octet-stream (only HTML and PDF pages are added)")


def test_jsonld_page_is_read_from_its_article_body(site, corpus_dir, web_client):
    body = ("The council published the ferry tender on Monday. It asks for two electric ferries "
            "carrying 300 passengers each.\n\nBidders have until 30 June to apply.")
    ld = {"@type": "NewsArticle", "headline": "Ferry tender published", "datePublished": "2024-02-11T09:15:00+01:00",
          "publisher": {"name": "Coast Courier"}, "articleBody": body}
    page = (f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script></head><body>'
            '<div id="app"><figure><figcaption>The harbour ferry. Photo: Coast Courier</figcaption></figure></div>'
            '</body></html>')
    assert add_one(site.serve("/ferry", page), corpus_dir, web_client) == (
        "added", "coast-courier_2024-02-11_ferry-tender-published.md")
    article = load_article(corpus_dir / "coast-courier_2024-02-11_ferry-tender-published.md", corpus_dir)
    assert article.text == ("The council published the ferry tender on Monday. It asks for two electric ferries "
                            "carrying 300 passengers each.\n\nBidders have until 30 June to apply.")


def test_one_failure_does_not_stop_the_others(site, corpus_dir, web_client):
    good = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    report = add_urls([site.url("/gone"), good, "file:///etc/passwd"], corpus_dir, web_client)
    assert report.added == [(good, LEVY_FILE)]
    assert report.failed == [(site.url("/gone"), "HTTP 404 Not Found"),
                             ("file:///etc/passwd", "not an http(s) URL: only http:// and https:// pages can be added")]
    assert "failed   " + site.url("/gone") + ": HTTP 404 Not Found" in report.summary()


# --- what fails, and why -------------------------------------------------------------


def failed(site, corpus_dir, web_client, path, **kwargs) -> str:
    """The reason adding `path` failed; the folder must be unchanged."""
    before = snapshot(corpus_dir)
    outcome, reason = add_one(site.url(path) if path.startswith("/") else path, corpus_dir, web_client, **kwargs)
    assert outcome == "failed"
    assert snapshot(corpus_dir) == before
    return reason


def test_not_found(site, corpus_dir, web_client):
    assert failed(site, corpus_dir, web_client, "/missing") == "HTTP 404 Not Found"


def test_server_error(site, corpus_dir, web_client):
    site.serve("/broken", "oops", status=500)
    assert failed(site, corpus_dir, web_client, "/broken") == "HTTP 500 Internal Server Error"


def test_timeout(site, corpus_dir):
    site.serve("/slow", b"", stall=True)
    with make_client(timeout=0.3, allow=[site.url("")]) as quick:
        assert failed(site, corpus_dir, quick, "/slow") == "timed out: no answer within 0.3 s"


def test_too_big_by_content_length(site, corpus_dir, web_client):
    site.serve("/huge", article_page("Huge", LEVY * 200))
    assert failed(site, corpus_dir, web_client, "/huge", max_bytes=20_000).startswith("too big: 0.")


def test_too_big_without_content_length(site, corpus_dir, web_client):
    site.serve("/stream", article_page("Huge", LEVY * 200), send_length=False)
    reason = failed(site, corpus_dir, web_client, "/stream", max_bytes=20_000)
    assert reason.startswith("too big: over ") and reason.endswith("limit 0.02 MB")


@pytest.mark.parametrize("ctype", ["application/json", "image/png", "text/plain"])
def test_not_an_article_type(site, corpus_dir, web_client, ctype):
    site.serve("/data", b'{"a": 1}', content_type=ctype)
    assert failed(site, corpus_dir, web_client, "/data") == (
        f"not an article: the server sent {ctype} (only HTML and PDF pages are added)")


def test_page_without_article_text(site, corpus_dir, web_client):
    site.serve("/nav", "<html><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></body></html>")
    assert failed(site, corpus_dir, web_client, "/nav") == "no article text found"


def test_empty_page(site, corpus_dir, web_client):
    site.serve("/empty", b"")
    assert failed(site, corpus_dir, web_client, "/empty") == "no article text found"


def test_page_of_furniture_only(site, corpus_dir, web_client):
    site.serve("/furniture", "<html><body><article><p>Advertisement</p><p>Share this article</p>"
                             "<p>Read more</p></article></body></html>")
    assert failed(site, corpus_dir, web_client, "/furniture") == "no article text found"


def test_redirect_loop(site, corpus_dir, web_client):
    site.redirect("/loop-a", "/loop-b")
    site.redirect("/loop-b", "/loop-a")
    assert failed(site, corpus_dir, web_client, "/loop-a") == "too many redirects (more than 5)"
    assert site.hits["/loop-a"] + site.hits["/loop-b"] == 6  # the first request and five redirects


def test_redirect_to_another_scheme(site, corpus_dir, web_client):
    site.redirect("/to-file", "file:///etc/passwd")
    assert failed(site, corpus_dir, web_client, "/to-file") == "redirected to a URL that is not http(s)"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.html", "file:///etc/passwd", "javascript:alert(1)",
                                 "data:text/html,<p>hi</p>", "127.0.0.1/no-scheme", "http://", ""])
def test_non_http_urls_are_refused_before_any_request(site, corpus_dir, web_client, url):
    reason = failed(site, corpus_dir, web_client, url)
    assert reason == "not an http(s) URL: only http:// and https:// pages can be added"
    assert sum(site.hits.values()) == 0


def test_connection_refused(corpus_dir):
    from conftest import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    with make_client(timeout=2, allow=[closed]) as client:
        assert failed(None, corpus_dir, client, closed + "/a").startswith("cannot fetch: ")


# --- whose addresses (issue 18, finding 2) -------------------------------------------


def refusal(origin: str) -> str:
    return f" (to fetch from it anyway, allow {origin} with --allow or ASSISTANT_FETCH_ALLOW)"


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("10.1.2.3", "a private address"),
    ("172.16.0.9", "a private address"), ("192.168.1.1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"), ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"), ("fd12:3456::1", "a unique-local address"),
    ("0.0.0.0", "the unspecified address (this machine)"), ("::", "the unspecified address (this machine)"),
    ("100.64.0.1", "not a public address"), ("224.0.0.251", "a multicast address"),
    ("::ffff:127.0.0.1", "a loopback address (::ffff:7f00:1 is 127.0.0.1)"),
    ("::ffff:169.254.169.254", "a cloud metadata address (::ffff:a9fe:a9fe is 169.254.169.254)"),
    ("::10.0.0.1", "a private address (::a00:1 is 10.0.0.1)"),
    ("2002:7f00:1::", "a loopback address (2002:7f00:1:: is 127.0.0.1)"),
    ("64:ff9b::a9fe:a9fe", "a cloud metadata address (64:ff9b::a9fe:a9fe is 169.254.169.254)"),
    ("93.184.215.14", ""), ("2606:4700::1111", ""), ("::ffff:93.184.215.14", ""),
])
def test_which_addresses_are_public(address, why):
    assert not_public(address) == why


@pytest.mark.parametrize("host, shown", [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is a loopback address (::ffff:7f00:1 is 127.0.0.1)"),
    ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),  # 127.0.0.1 as one number
    ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ("0.0.0.0", "0.0.0.0 is the unspecified address (this machine)"),
])
def test_loopback_is_refused_in_every_spelling_and_nothing_is_sent(site, corpus_dir, host, shown):
    site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    url = f"http://{host}:{site.port}/news/levy"
    with make_client(timeout=2) as client:
        assert failed(site, corpus_dir, client, url) == f"refused: {shown}" + refusal(origin(url))
    assert sum(site.hits.values()) == 0


@pytest.mark.parametrize("url, shown", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "fd00:ec2::254 is a cloud metadata address"),
    ("http://10.0.0.1/admin", "10.0.0.1 is a private address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("https://[fd12:3456::1]/", "fd12:3456::1 is a unique-local address"),
])
def test_internal_addresses_are_refused_before_connecting(corpus_dir, url, shown):
    with make_client(timeout=2) as client:  # refused before any connection: nothing here listens
        assert failed(None, corpus_dir, client, url) == f"refused: {shown}" + refusal(origin(url))


def test_a_name_is_refused_by_every_address_it_resolves_to(corpus_dir, monkeypatch):
    """The guard resolves the name itself and connects only to an address it checked; a name with
    one internal address among public ones is refused (a rebinding name could pick either)."""
    import socket

    def resolve(host, port, *args, **kwargs):
        assert host == "news.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with make_client(timeout=2) as client:
        assert failed(None, corpus_dir, client, "http://news.example/levy") == (
            "refused: news.example resolves to 10.0.0.7, a private address" + refusal("http://news.example:80"))


def test_an_allowed_origin_opens_no_other(site, other_site, corpus_dir, web_client):
    """`web_client` allows `site`'s origin alone: another loopback port, the same port by another
    name or scheme, and redirects to any of them are refused, the URL and the reason named."""
    page = article_page("Valdora port approves container levy", LEVY)
    other_site.serve("/secret", page)
    site.redirect("/out", other_site.url("/secret"))
    site.redirect("/out-by-name", f"http://localhost:{site.port}/news/levy")
    loopback = refusal(other_site.url(""))
    assert failed(site, corpus_dir, web_client, other_site.url("/secret")) == (
        "refused: 127.0.0.1 is a loopback address" + loopback)
    assert failed(site, corpus_dir, web_client, "/out") == (
        f"refused: redirected to {other_site.url('/secret')}; 127.0.0.1 is a loopback address" + loopback)
    by_name = failed(site, corpus_dir, web_client, "/out-by-name")
    assert by_name.startswith(f"refused: redirected to http://localhost:{site.port}/news/levy; localhost resolves to ")
    assert by_name.endswith(", a loopback address" + refusal(f"http://localhost:{site.port}"))
    assert failed(site, corpus_dir, web_client, f"https://127.0.0.1:{site.port}/news/levy") == (
        "refused: 127.0.0.1 is a loopback address" + refusal(f"https://127.0.0.1:{site.port}"))
    assert other_site.hits == {} and site.hits["/news/levy"] == 0
    site.serve("/news/levy", page)
    assert add_one(site.url("/news/levy"), corpus_dir, web_client) == ("added", LEVY_FILE)  # the allowed one


def test_allowed_origins_are_exact():
    assert allowed_origin("HTTP://127.0.0.1:8799/") == "http://127.0.0.1:8799"
    assert allowed_origin("http://intranet.example") == "http://intranet.example:80"
    assert allowed_origin("https://[::1]") == "https://[::1]:443"
    for bad in ("127.0.0.1:8799", "http://127.0.0.1:8799/feeds", "ftp://127.0.0.1", "http://user@127.0.0.1", ""):
        with pytest.raises(ValueError, match="is not an origin like"):
            allowed_origin(bad)


# --- pieces --------------------------------------------------------------------------


def test_fetch_returns_the_final_url_and_type(site, web_client):
    site.serve("/a", article_page("A", LEVY))
    site.redirect("/b", "/a")
    page = fetch(site.url("/b"), web_client)
    assert (page.url, page.final_url, page.content_type) == (site.url("/b"), site.url("/a"), "text/html")
    with pytest.raises(FetchFailed) as info:
        check_url("gopher://example.org/")
    assert info.value.url == "gopher://example.org/"


def test_normalise_url():
    assert normalise_url("HTTPS://Example.ORG/a/?utm_source=x&id=3&fbclid=y#top") == "https://example.org/a?id=3"
    assert normalise_url("https://example.org") == normalise_url("https://example.org/")


def test_file_name_is_stable_and_safe():
    assert file_name("Harbour Times", "2024-03-05", "Valdora: port approves a levy!", "u") == (
        "harbour-times_2024-03-05_valdora-port-approves-a-levy.md")
    assert file_name("", "", "../../etc/passwd", "u") == "web_undated_etc-passwd.md"
    name = file_name("南华早报", "2024-01-01", "中国", "https://example.org/x")
    assert name.startswith("web_2024-01-01_") and len(name) == len("web_2024-01-01_") + 12 + 3
    long = file_name("X", "2024-01-01", "word " * 40, "u")
    assert len(long) < 100 and not long.endswith("-.md")


def test_same_name_for_another_article_gets_a_suffix(site, corpus_dir, web_client):
    add_urls([site.serve("/one", article_page("Port levy", LEVY))], corpus_dir, web_client)
    other = [p.replace("Valdora", "Estrel") for p in LEVY]
    outcome, file = add_one(site.serve("/two", article_page("Port levy", other)), corpus_dir, web_client)
    assert outcome == "added" and file.startswith("harbour-times_2024-03-05_port-levy-") and file.endswith(".md")
    assert len(list(corpus_dir.iterdir())) == 2


def test_known_reads_files_dropped_in_by_hand(corpus_dir, site, web_client):
    write_article(corpus_dir, "levy.md", "Levy", "The levy is 14 euros per container.", url=site.url("/news/levy"))
    known = Known.scan(corpus_dir)
    assert known.file_for(site.url("/news/levy/")) == "levy.md"
    assert add_one(site.url("/news/levy"), corpus_dir, web_client) == ("present", "levy.md")
    assert sum(site.hits.values()) == 0


def test_added_file_ingests_as_an_article(site, corpus_dir, web_client):
    url = site.serve("/news/levy", article_page("Valdora port approves container levy", LEVY))
    add_urls([url], corpus_dir, web_client)
    (article,) = list(iter_corpus(corpus_dir))
    assert article.article_id == LEVY_FILE and article.title == "Valdora port approves container levy"


def test_report_summary_counts():
    report = AddReport(added=[("u1", "f1")], present=[("u2", "f2")], failed=[("u3", "HTTP 404 Not Found")])
    assert report.summary().splitlines() == [
        "added 1, already present 1, failed 1",
        "  added    u1 → f1",
        "  present  u2 (already in f2)",
        "  failed   u3: HTTP 404 Not Found",
    ]


def test_report_lines_escape_control_characters():
    """Issue 18, finding 4: a feed's link (or a server's reason) is printed in the summary; it can
    neither drive the terminal nor forge a line."""
    link = "https://evil.example/\x1b]0;pwned\x07a\n  added    https://forged.example → forged.md"
    report = AddReport(added=[(link, "f.md")], present=[(link, "g.md")], failed=[(link, "HTTP 404 \x1b[2J")])
    lines = report.summary().splitlines()
    assert len(lines) == 4 and all(line.isprintable() for line in lines)
    assert lines[1] == "  added    https://evil.example/\\x1b]0;pwned\\x07a\\n  added    https://forged.example → forged.md → f.md"
    assert lines[3].endswith(": HTTP 404 \\x1b[2J")


def test_only_the_command_line_imports_fetching():
    """The chat and the API can never make the server fetch: no module but the CLI imports these."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "assistant"
    importers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                       if re.search(r"^\s*from\s+(?:\.+|assistant\.)(?:sources\.)?(?:fetch|feeds)\s+import|"
                                    r"^\s*import\s+assistant\.sources\.(?:fetch|feeds)", p.read_text(encoding="utf-8"), re.M))
    assert importers == ["cli.py", "sources/feeds.py"]
