"""Tests for assistant.sources.feeds: real RSS and Atom feeds served on 127.0.0.1 (the `site` fixture)."""

from __future__ import annotations

import pytest

from assistant.errors import CorpusError, FetchFailed
from assistant.sources.feeds import FeedReport, feed_links, follow_feeds, parse_interval, read_feed_list, run_every
from conftest import article_page

STORIES = {
    "/news/levy": ("Valdora port approves container levy", [
        "The port authority of Valdora approved a levy of 14 euros per container on Tuesday, to take effect "
        "on 1 April, the first such charge in the harbour's history.",
        "Shipping lines said the levy would be passed on to importers."]),
    "/news/ferry": ("Ferry tender published", [
        "The council published the tender for two electric ferries on Monday, each to carry 300 passengers "
        "between the old harbour and the island of Mesk.",
        "Bidders have until 30 June to apply."]),
    "/news/dredging": ("Dredging of the northern channel to start in May", [
        "Dredging of the northern channel will start in May and last eleven weeks, the port authority said, "
        "deepening it to 14 metres for the largest container ships.",
        "Fishing boats will use the southern channel meanwhile."]),
}


def rss(*items: tuple[str, str]) -> str:
    entries = "".join(f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid></item>" for t, link in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Harbour Times</title>'
            f"<link>http://example.org/</link><description>News</description>{entries}</channel></rss>")


def atom(*items: tuple[str, str]) -> str:
    entries = "".join(f'<entry><title>{t}</title><link rel="alternate" href="{link}"/><id>{link}</id>'
                      f"<updated>2024-03-05T08:00:00Z</updated></entry>" for t, link in items)
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Coast Courier</title><id>urn:courier</id><updated>2024-03-05T08:00:00Z</updated>{entries}</feed>")


@pytest.fixture
def news(site):
    """The site with three stories, an RSS feed of two and an Atom feed of two (one shared)."""
    for path, (title, paragraphs) in STORIES.items():
        site.serve(path, article_page(title, paragraphs))
    site.serve("/rss.xml", rss(("Levy", site.url("/news/levy")), ("Ferry", site.url("/news/ferry"))),
               content_type="application/rss+xml")
    site.serve("/atom.xml", atom(("Ferry", site.url("/news/ferry")), ("Dredging", "/news/dredging")),
               content_type="application/atom+xml")  # a relative link: resolved against the feed
    return site


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_entries_are_added_once(news, corpus_dir, web_client):
    reports = follow_feeds([news.url("/rss.xml"), news.url("/atom.xml")], corpus_dir, web_client)
    rss_report, atom_report = reports
    assert rss_report.error == "" and rss_report.entries == 2
    assert [url for url, _ in rss_report.articles.added] == [news.url("/news/levy"), news.url("/news/ferry")]
    assert [url for url, _ in atom_report.articles.added] == [news.url("/news/dredging")]
    assert [url for url, _ in atom_report.articles.present] == [news.url("/news/ferry")]  # listed by both feeds
    assert files(corpus_dir) == ["harbour-times_2024-03-05_dredging-of-the-northern-channel-to-start-in-may.md",
                             "harbour-times_2024-03-05_ferry-tender-published.md",
                             "harbour-times_2024-03-05_valdora-port-approves-container-levy.md"]
    assert all(news.hits[path] == 1 for path in STORIES)
    assert rss_report.summary().splitlines()[0] == (
        f"{news.url('/rss.xml')}: 2 entries: 2 added, 0 already present, 0 failed")


def test_second_run_adds_nothing_and_fetches_no_page(news, corpus_dir, web_client):
    feeds = [news.url("/rss.xml"), news.url("/atom.xml")]
    follow_feeds(feeds, corpus_dir, web_client)
    before = {p.name: p.read_bytes() for p in corpus_dir.iterdir()}
    reports = follow_feeds(feeds, corpus_dir, web_client)
    assert [len(r.articles.added) for r in reports] == [0, 0]
    assert [len(r.articles.present) for r in reports] == [2, 2]
    assert {p.name: p.read_bytes() for p in corpus_dir.iterdir()} == before
    assert all(news.hits[path] == 1 for path in STORIES)  # skipped by URL, before any request
    assert news.hits["/rss.xml"] == 2


def test_entry_whose_url_changed_is_skipped_by_its_text(news, corpus_dir, web_client):
    follow_feeds([news.url("/rss.xml")], corpus_dir, web_client)
    title, paragraphs = STORIES["/news/levy"]
    news.serve("/2024/03/05/levy-approved", article_page(title, paragraphs))  # the outlet moved the story
    news.serve("/rss.xml", rss(("Levy", news.url("/2024/03/05/levy-approved"))), content_type="application/rss+xml")
    (report,) = follow_feeds([news.url("/rss.xml")], corpus_dir, web_client)
    assert report.articles.added == []
    assert report.articles.present == [(news.url("/2024/03/05/levy-approved"),
                                        "harbour-times_2024-03-05_valdora-port-approves-container-levy.md")]
    assert len(files(corpus_dir)) == 2


def test_feed_listing_the_same_page_twice(news, corpus_dir, web_client):
    link = news.url("/news/levy")
    news.serve("/twice.xml", rss(("Levy", link), ("Levy (updated)", link)), content_type="application/rss+xml")
    (report,) = follow_feeds([news.url("/twice.xml")], corpus_dir, web_client)
    assert report.entries == 1 and len(report.articles.added) == 1 and report.articles.failed == []
    assert news.hits["/news/levy"] == 1


def test_a_failing_feed_does_not_stop_the_others(news, corpus_dir, web_client):
    news.serve("/broken.xml", '<?xml version="1.0"?><rss><channel><item><title>Levy</ti',
               content_type="application/rss+xml")
    news.serve("/page.html", "<html><body><p>Not a feed at all.</p></body></html>")
    news.serve("/books.xml", '<?xml version="1.0"?><catalog><book>Moby Dick</book></catalog>',
               content_type="application/xml")
    feeds = [news.url("/broken.xml"), news.url("/missing.xml"), news.url("/page.html"), news.url("/books.xml"),
             "ftp://127.0.0.1/feed.xml", news.url("/rss.xml")]
    reports = follow_feeds(feeds, corpus_dir, web_client)
    broken, missing, page, books, ftp, good = reports
    assert books.error == "not an RSS or Atom feed"
    assert broken.error == "not a readable RSS or Atom feed (unclosed token)"
    assert missing.error == "HTTP 404 Not Found"
    assert page.error == "not a readable RSS or Atom feed (text/html is not an XML media type)"
    assert ftp.error == "not an http(s) URL: only http:// and https:// pages can be added"
    assert len(good.articles.added) == 2
    assert broken.summary() == f"{news.url('/broken.xml')}: failed: {broken.error}"


def test_failing_entries_are_named(news, corpus_dir, web_client):
    news.serve("/mixed.xml", rss(("Levy", news.url("/news/levy")), ("Gone", news.url("/news/gone")),
                                 ("Script", "javascript:alert(1)")), content_type="application/rss+xml")
    (report,) = follow_feeds([news.url("/mixed.xml")], corpus_dir, web_client)
    assert len(report.articles.added) == 1
    assert report.articles.failed == [
        (news.url("/news/gone"), "HTTP 404 Not Found"),
        ("javascript:alert(1)", "not an http(s) URL: only http:// and https:// pages can be added")]
    assert f"  failed   {news.url('/news/gone')}: HTTP 404 Not Found" in report.summary()


def test_entries_linking_to_internal_addresses_are_refused_one_by_one(news, other_site, corpus_dir, web_client):
    """Issue 18, finding 2: a feed (on the allowed site) whose entries point at another loopback
    port, the cloud metadata address, or a page that redirects to another port: each of those
    is refused with its reason, nothing is fetched or written for it; the good entry goes in."""
    other_site.serve("/admin", article_page("Internal only", STORIES["/news/levy"][1]))
    news.redirect("/go/admin", other_site.url("/admin"))
    news.serve("/mixed.xml", rss(("Levy", news.url("/news/levy")), ("Admin", other_site.url("/admin")),
                                 ("Metadata", "http://169.254.169.254/latest/meta-data/"),
                                 ("Short link", news.url("/go/admin"))), content_type="application/rss+xml")
    (report,) = follow_feeds([news.url("/mixed.xml")], corpus_dir, web_client)
    assert [url for url, _ in report.articles.added] == [news.url("/news/levy")]
    allow = f" (to fetch from it anyway, allow {other_site.url('')} with --allow or ASSISTANT_FETCH_ALLOW)"
    assert report.articles.failed == [
        (other_site.url("/admin"), "refused: 127.0.0.1 is a loopback address" + allow),
        ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a cloud metadata address (to fetch "
                                                     "from it anyway, allow http://169.254.169.254:80 with --allow or "
                                                     "ASSISTANT_FETCH_ALLOW)"),
        (news.url("/go/admin"), f"refused: redirected to {other_site.url('/admin')}; 127.0.0.1 is a loopback address"
                                + allow)]
    assert other_site.hits == {}
    assert files(corpus_dir) == ["harbour-times_2024-03-05_valdora-port-approves-container-levy.md"]
    assert f"  failed   {other_site.url('/admin')}: refused: 127.0.0.1 is a loopback address" in report.summary()


def test_a_feed_on_an_address_not_allowed_is_refused(news, other_site, corpus_dir, web_client):
    other_site.serve("/rss.xml", rss(("Levy", news.url("/news/levy"))), content_type="application/rss+xml")
    (report,) = follow_feeds([other_site.url("/rss.xml")], corpus_dir, web_client)
    assert report.error.startswith("refused: 127.0.0.1 is a loopback address (to fetch from it anyway, allow "
                                   f"{other_site.url('')} with")
    assert other_site.hits == {} and files(corpus_dir) == []


def test_feed_links(news, web_client):
    assert feed_links(news.url("/atom.xml"), web_client) == [news.url("/news/ferry"), news.url("/news/dredging")]
    with pytest.raises(FetchFailed) as info:
        feed_links(news.url("/nope.xml"), web_client)
    assert info.value.reason == "HTTP 404 Not Found"


def test_empty_feed_is_fine(news, corpus_dir, web_client):
    news.serve("/empty.xml", rss(), content_type="application/rss+xml")
    (report,) = follow_feeds([news.url("/empty.xml")], corpus_dir, web_client)
    assert (report.error, report.entries, report.articles.added) == ("", 0, [])


def test_read_feed_list(tmp_path):
    path = tmp_path / "feeds.txt"
    path.write_text("# outlets\nhttps://a.example/rss\n\n  https://b.example/atom.xml  \nhttps://a.example/rss\n"
                    "https://c.example/feed#main\n", encoding="utf-8")
    assert read_feed_list(path) == ["https://a.example/rss", "https://b.example/atom.xml",
                                    "https://c.example/feed#main"]
    with pytest.raises(CorpusError, match="no feeds file at .*missing.txt"):
        read_feed_list(tmp_path / "missing.txt")


def test_parse_interval():
    assert parse_interval("30m") == 1800
    assert parse_interval("1h") == 3600
    assert parse_interval("2h30m") == 9000
    assert parse_interval("1d") == 86400
    for bad in ("", "30", "soon", "10s", "m30"):
        with pytest.raises(ValueError):
            parse_interval(bad)


def test_run_every_waits_from_start_to_start():
    now, slept, said, calls = [0.0], [], [], []

    def job():
        calls.append(now[0])
        now[0] += 100  # a round takes 100 s
        return len(calls) % 2

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    code = run_every(1800, job, rounds=3, sleep=sleep, clock=lambda: now[0], say=said.append)
    assert calls == [0, 1800, 3600] and slept == [1700, 1700] and code == 1
    assert said == ["next run in 28 min (Ctrl-C stops)"] * 2


def test_feed_report_lines_escape_control_characters():
    failed = FeedReport("https://a.example/rss\x1b[2J", error="not a readable RSS or Atom feed (\x1b]0;x\x07)")
    assert failed.summary() == "https://a.example/rss\\x1b[2J: failed: not a readable RSS or Atom feed (\\x1b]0;x\\x07)"
    report = FeedReport("u", entries=1)
    report.articles.failed.append(("https://evil.example/\nu: 9 entries: 9 added", "HTTP 404 Not Found"))
    assert report.summary().splitlines()[1] == "  failed   https://evil.example/\\nu: 9 entries: 9 added: HTTP 404 Not Found"


def test_feed_report_summary_for_no_entries():
    assert FeedReport("u").summary() == "u: 0 entries: 0 added, 0 already present, 0 failed"
