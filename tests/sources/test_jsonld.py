"""Tests for assistant.sources.jsonld: pages of our own, shaped like script-rendered news pages."""

from __future__ import annotations

import json

from assistant.sources.jsonld import JsonLdArticle, read_jsonld

BODY = ("Valdora’s council spent a year promising a new ferry link. Last week it published the tender.\n\n"
        "The tender asks for two electric ferries carrying 300 passengers each.")


def page(*blocks, body: str = "<div id='app'><figcaption>The old harbour. Photo: AP</figcaption></div>") -> str:
    # As pages write it: "</" escaped, so a "</script>" in the JSON does not end the element.
    texts = (b if isinstance(b, str) else json.dumps(b).replace("</", "<\\/") for b in blocks)
    scripts = "".join(f'<script type="application/ld+json">{t}</script>' for t in texts)
    return f"<!DOCTYPE html><html><head><title>x</title>{scripts}</head><body>{body}</body></html>"


def test_opinion_news_article_with_its_metadata():
    ld = {"@context": "https://schema.org", "@type": "OpinionNewsArticle",
          "headline": "Valdora’s ferry tender is a test of its promises",
          "datePublished": "2024-02-11T09:15:00+01:00",
          # Some outlets write `author` as a JSON string inside the JSON.
          "author": json.dumps({"@type": "Person", "name": "Ines Calder"}),
          "publisher": {"@type": "NewsMediaOrganization", "name": "Coast Courier"},
          "mainEntityOfPage": "https://courier.example/opinion/ferry-tender", "articleBody": BODY}
    organisation = {"@context": "https://schema.org", "@type": "Organization", "name": "Coast Courier"}
    assert read_jsonld(page(organisation, ld).encode("utf-8")) == JsonLdArticle(
        body=BODY, title="Valdora’s ferry tender is a test of its promises", date="2024-02-11T09:15:00+01:00",
        source="Coast Courier", url="https://courier.example/opinion/ferry-tender", authors=("Ines Calder",))


def test_graph_lists_and_several_authors():
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": "WebPage", "@id": "https://x.example/a"},
        {"@type": ["NewsArticle", "Thing"], "name": "Ferry tender", "dateCreated": "2024-02-10",
         "author": [{"@type": "Person", "name": "A. Writer"}, "B. Writer", {"name": "A. Writer"}],
         "publisher": [{"name": "Coast Courier"}], "url": {"@id": "https://x.example/a"},
         "articleBody": ["First paragraph.", "Second paragraph."]},
    ]}
    article = read_jsonld(page(graph))
    assert article.body == "First paragraph.\n\nSecond paragraph."
    assert (article.title, article.date, article.source, article.url, article.authors) == (
        "Ferry tender", "2024-02-10", "Coast Courier", "https://x.example/a", ("A. Writer", "B. Writer"))


def test_markup_in_the_body_becomes_text():
    body = ("<p>The levy is <strong>14 euros</strong> per container.</p><script>alert(1)</script>"
            "<p>It starts on 1&nbsp;April &amp; lasts a year.</p><img src=x onerror=alert(2)>")
    article = read_jsonld(page({"@type": "NewsArticle", "articleBody": body}))
    assert article.body == "The levy is 14 euros per container.\n\nIt starts on 1 April & lasts a year."


def test_longest_article_body_wins():
    teaser = {"@type": "NewsArticle", "headline": "Related", "articleBody": "Short teaser."}
    main = {"@type": "ReportageNewsArticle", "headline": "Main", "articleBody": BODY}
    assert read_jsonld(page(teaser, main)).title == "Main"


def test_nothing_to_read():
    assert read_jsonld(page()) is None
    assert read_jsonld(page({"@type": "Organization", "name": "Coast Courier"})) is None
    assert read_jsonld(page({"@type": "NewsArticle", "headline": "No body"})) is None
    assert read_jsonld(page({"@type": "NewsArticle", "articleBody": "   "})) is None
    assert read_jsonld(page("{not json")) is None
    assert read_jsonld(b"") is None
    assert read_jsonld("<html></html>") is None


def test_a_bad_block_does_not_hide_a_good_one():
    assert read_jsonld(page("{broken", {"@type": "NewsArticle", "articleBody": BODY})).body == BODY


def test_raw_newlines_inside_json_strings_are_accepted():
    raw = '{"@type": "NewsArticle", "articleBody": "Line one.\n\nLine two."}'  # invalid strict JSON
    assert read_jsonld(page(raw)).body == "Line one.\n\nLine two."


def test_urls_other_than_http_are_dropped():
    article = read_jsonld(page({"@type": "NewsArticle", "articleBody": BODY, "url": "javascript:alert(1)"}))
    assert article.url == ""


def test_deep_nesting_is_not_walked_forever():
    deep = {"@type": "NewsArticle", "articleBody": "Deep."}
    for _ in range(50):
        deep = {"child": deep}
    assert read_jsonld(page(deep)) is None
