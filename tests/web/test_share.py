from urllib.parse import unquote

from assistant.web.share import clipboard_markdown, date_label, fragment_term, quote_link, safe_url, text_directive


def test_links_are_http_only():
    assert safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "  JAVASCRIPT:alert(1)", "https://x.org/\"onmouseover=1",
                "ftp://x.org", "", None):
        assert safe_url(bad) == ""


def test_fragment_terms_encode_the_spec_delimiters_and_non_ascii():
    assert fragment_term("a-b, c & d") == "a%2Db%2C%20c%20%26%20d"
    assert fragment_term("“no limits” €") == "%E2%80%9Cno%20limits%E2%80%9D%20%E2%82%AC"
    assert fragment_term("40.7 per_cent~") == "40.7%20per_cent~"  # unreserved characters stay
    for text in ("a-b, c & d", "“no limits” €", "#:~:text=x"):
        assert unquote(fragment_term(text)) == text
        assert not set(fragment_term(text)) & set("-,&#: ")


def test_a_short_quote_is_matched_whole():
    assert text_directive("  Trade grew by  40.7 per cent. ") == "text=Trade%20grew%20by%2040.7%20per%20cent."
    assert text_directive("") == ""


def test_a_long_quote_is_matched_by_its_first_and_last_words():
    quote = ("Trade between China and Russia reached US$65 billion in the first five months, "
             "with the value surging by 40.7 per cent, customs data showed.")
    start, end = text_directive(quote).removeprefix("text=").split(",")
    assert unquote(start) == "Trade between China and Russia reached"
    assert unquote(end) == "40.7 per cent, customs data showed."
    assert "%2C" in end  # the comma inside a term is not a delimiter
    # A quote over two paragraphs cannot match as one term; a range can.
    assert text_directive("First paragraph ends.\n\nSecond one.").count(",") == 1


def test_quote_link_keeps_the_url_and_any_fragment():
    assert quote_link("https://example.org/a?x=1", "Wheat grew.") == "https://example.org/a?x=1#:~:text=Wheat%20grew."
    assert quote_link("https://example.org/a#part", "Wheat") == "https://example.org/a#part:~:text=Wheat"
    assert quote_link("https://example.org/a#:~:text=old", "new") == "https://example.org/a#:~:text=new"
    assert quote_link("https://example.org/a", "") == "https://example.org/a"
    assert quote_link("", "Wheat") is None
    assert quote_link("javascript:alert(1)", "Wheat") is None
    assert quote_link("file:///etc/passwd", "Wheat") is None


def test_date_label():
    assert date_label("2024-01-15") == "2024-01-15" and date_label("") == "date unknown"


def test_clipboard_markdown_numbers_sources_with_links_and_escapes_article_text():
    answer = {"answer": "Kansas harvested 420 million bushels [1]. Trams *cost* more [2].", "lead": "420 million",
              "citations": [
                  {"n": 1, "article_id": "w.md", "title": "Wheat [record](javascript:x)", "source": "Plains Daily",
                   "date": "2022-08-02", "url": "https://example.org/wheat", "quote": "420 million bushels",
                   "link": "https://example.org/wheat#:~:text=420%20million%20bushels"},
                  {"n": 2, "article_id": "t.md", "title": "", "source": "", "date": "", "url": "javascript:x",
                   "quote": "310 <b>million</b>", "link": None}]}
    md = clipboard_markdown("How *much* wheat?", answer, ask_url="http://127.0.0.1:7860/?q=How+much+wheat%3F")
    assert md.splitlines() == [
        "**Q: How \\*much\\* wheat?**",
        "",
        "**420 million** — Kansas harvested 420 million bushels [1]. Trams \\*cost\\* more [2].",
        "",
        "Sources:",
        "1. [Wheat \\[record\\]\\(javascript:x\\)](<https://example.org/wheat#:~:text=420%20million%20bushels>)"
        " — Plains Daily, 2022-08-02: “420 million bushels”",
        "2. t.md — date unknown: “310 \\<b\\>million\\</b\\>”",
        "",
        "Asked on Policy Desk: <http://127.0.0.1:7860/?q=How+much+wheat%3F>",
    ]
    assert "Sources" not in clipboard_markdown("q", {"answer": "The articles don't cover this.", "citations": []})
