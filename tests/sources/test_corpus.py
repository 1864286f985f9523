"""Tests for assistant.sources.corpus: real files in tmp_path, the seed article, no eval data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.sources.corpus import SUFFIXES, clean_text, iter_corpus, load_article
from assistant.errors import CorpusError, UnreadableFile
from assistant.schema import Article

from conftest import pdf_bytes

SEED_NAME = "000_15735037f31751e9.txt"
HERE = Path(__file__).resolve()

FRONT_MATTER = """\
---
title: "Tariffs and the port of Rotterdam"
source: "Harbour Weekly"
date: 2022-06-12
url: "https://example.org/tariffs"
authors: ["Ada Byron", "Alan Turing"]
---

The port authority published new figures on Monday, showing container volumes fell.

Officials said the decline was expected after the tariff changes took effect.
"""


def write(folder: Path, name: str, data: str | bytes) -> Path:
    """Write a file under `folder`, making parent folders."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def unreadable(path: Path, corpus: Path, **kwargs) -> UnreadableFile:
    """Load `path`, expecting UnreadableFile, and return it."""
    with pytest.raises(UnreadableFile) as info:
        load_article(path, corpus, **kwargs)
    assert info.value.path == path
    return info.value


def seed_text() -> str:
    """The project's sample article: the corpus/ copy if present, else the shared seed."""
    candidates = [HERE.parents[2] / "corpus" / SEED_NAME, HERE.parents[3] / "shared" / "seed" / SEED_NAME]
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.fail(f"seed article {SEED_NAME} not found; looked in: {', '.join(map(str, candidates))}")


# --- Markdown / text ---------------------------------------------------------------


def test_front_matter_fields(tmp_path):
    article = load_article(write(tmp_path, "a.md", FRONT_MATTER), tmp_path)
    assert article.article_id == "a.md"
    assert article.title == "Tariffs and the port of Rotterdam"
    assert article.source == "Harbour Weekly"
    assert article.date == "2022-06-12"  # YAML gave a datetime.date
    assert article.url == "https://example.org/tariffs"
    assert article.authors == ("Ada Byron", "Alan Turing")
    assert article.text.startswith("The port authority published new figures")
    assert "---" not in article.text and "Harbour Weekly" not in article.text
    assert len(article.content_hash) == 64


@pytest.mark.parametrize(
    "date, expected",
    [
        ('"2022-06-12T10:00:00Z"', "2022-06-12"),
        ("2022-06-12T10:00:00Z", "2022-06-12"),  # YAML parses this as a datetime
        ('"June 12, 2022"', "2022-06-12"),
        ('"2022-02-30"', ""),
        ('"sometime last spring"', ""),
        ('""', ""),
    ],
)
def test_front_matter_date_normalised(tmp_path, date, expected):
    text = f"---\ntitle: T\ndate: {date}\n---\n\nA sentence of body text.\n"
    assert load_article(write(tmp_path, "d.md", text), tmp_path).date == expected


def test_front_matter_author_string(tmp_path):
    text = "---\nauthors: Ada Byron\n---\n\nA sentence of body text.\n"
    assert load_article(write(tmp_path, "s.md", text), tmp_path).authors == ("Ada Byron",)


def test_no_front_matter(tmp_path):
    text = "A plain note about harbour fees.\n\nIt has two paragraphs.\n"
    article = load_article(write(tmp_path, "plain.txt", text), tmp_path)
    assert (article.title, article.source, article.date, article.authors) == ("", "", "", ())
    assert article.text == "A plain note about harbour fees.\n\nIt has two paragraphs."


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: [unclosed\n---\n\nBody text here.\n",
        "---\ntitle: fine\n\nBody text but the front matter never closes.\n",
        "---\n- just\n- a list\n---\n\nBody text here.\n",
    ],
)
def test_malformed_front_matter(tmp_path, text):
    error = unreadable(write(tmp_path, "bad.md", text), tmp_path)
    assert "front matter" in error.reason


def test_cp1252_file_is_decoded(tmp_path):
    path = write(tmp_path, "old.txt", "Caf\u00e9 owners said \u201cprices rose\u201d.\n".encode("cp1252"))
    assert load_article(path, tmp_path).text == "Caf\u00e9 owners said \u201cprices rose\u201d."


def test_utf8_bom_and_crlf(tmp_path):
    path = write(tmp_path, "bom.md", "\ufeff---\r\ntitle: Bom\r\n---\r\n\r\nBody line one.  \r\n")
    article = load_article(path, tmp_path)
    assert (article.title, article.text) == ("Bom", "Body line one.")


# --- unreadable files --------------------------------------------------------------


def test_zero_byte_file(tmp_path):
    assert unreadable(write(tmp_path, "empty.md", b""), tmp_path).reason == "empty"


def test_whitespace_and_furniture_only_file(tmp_path):
    path = write(tmp_path, "blank.md", "---\ntitle: x\n---\n\n  \nAdvertisement\n\n")
    assert unreadable(path, tmp_path).reason == "empty"


def test_binary_file_with_nul_bytes(tmp_path):
    path = write(tmp_path, "blob.txt", b"PK\x03\x04\x00\x00binary stuff")
    assert "binary" in unreadable(path, tmp_path).reason


def test_too_large_file_is_not_read(tmp_path):
    path = write(tmp_path, "big.md", "A sentence of body text.\n" * 100)
    error = unreadable(path, tmp_path, max_bytes=1000)
    assert error.reason.startswith("too large:") and "limit 0.001 MB" in error.reason
    assert load_article(path, tmp_path, max_bytes=10_000).text  # fine under a bigger limit


# --- HTML --------------------------------------------------------------------------

HOSTILE_HTML = """<!DOCTYPE html>
<html><head>
<meta charset="utf-8">
<title>Harbour fees &lt;img src=x onerror=alert(1)&gt;</title>
<meta property="og:site_name" content="Harbour Weekly">
<meta name="author" content="Ada Byron">
<meta property="article:published_time" content="2022-06-12T10:00:00Z">
<link rel="canonical" href="https://example.org/harbour-fees">
<script>alert("head")</script>
</head><body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article>
<h1>Harbour fees &lt;img src=x onerror=alert(1)&gt;</h1>
<p>The port authority raised harbour fees by four per cent on Monday, the first rise in six
years, citing higher dredging costs and new environmental rules for the estuary.</p>
<script>alert(1)</script>
<p>Shipping companies said the increase would be passed on to importers within weeks, and
that smaller carriers might move some routes to neighbouring ports with lower charges.</p>
<p>The authority said revenue from the fees would fund a new quay wall and the electrification
of berths, which it expects to finish before the end of the decade.</p>
<img src="x" onerror="alert(2)">
</article>
<footer>Copyright Harbour Weekly</footer>
</body></html>
"""


def test_html_extraction_is_plain_text(tmp_path):
    article = load_article(write(tmp_path, "page.html", HOSTILE_HTML), tmp_path)
    assert "The port authority raised harbour fees by four per cent on Monday" in article.text
    assert "electrification" in article.text
    for markup in ("<script", "alert", "onerror", "<p>", "<img"):
        assert markup not in article.text
    assert article.title == "Harbour fees <img src=x onerror=alert(1)>"  # literal text, kept
    assert article.source == "Harbour Weekly"
    assert article.date == "2022-06-12"
    assert article.url == "https://example.org/harbour-fees"
    assert article.authors == ("Ada Byron",)


def test_html_without_article_text(tmp_path):
    path = write(tmp_path, "nav.htm", "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    assert unreadable(path, tmp_path).reason == "no article text found"


# --- PDF ---------------------------------------------------------------------------


def test_pdf_text_and_title(tmp_path):
    pages = ["The levy applies to all vessels from March.", "Exemptions cover ferries and tugs."]
    path = write(tmp_path, "levy.PDF", pdf_bytes(pages, title="Port levy notice"))
    article = load_article(path, tmp_path)
    assert article.title == "Port levy notice"
    assert article.text == "The levy applies to all vessels from March.\n\nExemptions cover ferries and tugs."


def test_pdf_without_text_layer(tmp_path):
    path = write(tmp_path, "scan.pdf", pdf_bytes([""]))
    assert "no text layer" in unreadable(path, tmp_path).reason


def test_corrupt_pdf(tmp_path):
    path = write(tmp_path, "broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog garbage")
    assert unreadable(path, tmp_path).reason.startswith("not a readable PDF")


# --- the corpus folder -------------------------------------------------------------


def test_iter_corpus_reports_bad_files_and_goes_on(tmp_path):
    write(tmp_path, "b.md", FRONT_MATTER)
    write(tmp_path, "a_empty.txt", b"")
    write(tmp_path, "sub/c.TXT", "A nested article with one sentence.\n")
    write(tmp_path, "sub/broken.pdf", b"not a pdf at all")
    write(tmp_path, ".hidden.md", "Hidden files are skipped.\n")
    write(tmp_path, ".git/d.md", "Hidden folders are skipped.\n")
    write(tmp_path, "notes.docx", "Unsupported suffixes are skipped.\n")

    items = list(iter_corpus(tmp_path))
    good = [item for item in items if isinstance(item, Article)]
    bad = [item for item in items if isinstance(item, UnreadableFile)]
    assert [a.article_id for a in good] == ["b.md", "sub/c.TXT"]
    assert [e.path.name for e in bad] == ["a_empty.txt", "broken.pdf"]  # sorted walk order
    assert all(isinstance(e.reason, str) and e.reason for e in bad)


def test_links_out_of_the_corpus_are_not_followed(tmp_path):
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    write(outside, "secret.txt", "The root password is hunter2.\n")
    write(outside, "folder/also.md", "Another file outside the corpus.\n")
    write(corpus, "a.md", "An article inside the corpus.\n")
    (corpus / "b_inside_link.md").symlink_to(corpus / "a.md")  # a link within the folder is fine
    (corpus / "c_secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "d_zero.txt").symlink_to("/dev/zero")
    (corpus / "e_dir").symlink_to(outside / "folder", target_is_directory=True)
    (corpus / "f_dangling.txt").symlink_to(tmp_path / "nowhere.txt")

    items = list(iter_corpus(corpus))
    assert [a.article_id for a in items if isinstance(a, Article)] == ["a.md", "b_inside_link.md"]
    refused = {e.path.relative_to(corpus).as_posix(): e.reason for e in items if isinstance(e, UnreadableFile)}
    assert set(refused) <= {"c_secret.txt", "d_zero.txt", "e_dir/also.md", "f_dangling.txt"}
    assert {"c_secret.txt", "d_zero.txt", "f_dangling.txt"} <= set(refused)  # the walk may skip a folder link
    assert set(refused.values()) == {"a link to a file outside the corpus folder (not followed)"}
    assert "hunter2" not in repr(items)


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        list(iter_corpus(tmp_path / "nope"))
    with pytest.raises(CorpusError, match="not a folder"):
        list(iter_corpus(write(tmp_path, "file.md", "x")))


def test_suffixes():
    assert set(SUFFIXES) == {".md", ".markdown", ".txt", ".html", ".htm", ".pdf"}


def test_content_hash_tracks_text_and_metadata(tmp_path):
    def hash_of(text: str) -> str:
        return load_article(write(tmp_path, "h.md", text), tmp_path).content_hash

    original = hash_of(FRONT_MATTER)
    assert hash_of(FRONT_MATTER) == original
    assert hash_of(FRONT_MATTER.replace("fell", "rose")) != original
    assert hash_of(FRONT_MATTER.replace("port of Rotterdam", "port of Antwerp")) != original
    assert hash_of(FRONT_MATTER.replace("2022-06-12", "2022-06-13")) != original
    assert hash_of(FRONT_MATTER + "\n\n\nAdvertisement\n") == original  # furniture is not content


# --- cleaning ----------------------------------------------------------------------


def test_seed_article_cleaning(tmp_path):
    text = seed_text()
    article = load_article(write(tmp_path, SEED_NAME, text), tmp_path)
    assert article.article_id == SEED_NAME
    cleaned = article.text
    for furniture in (
        "Advertisement", "myNEWS", "personalised news feed", "Learn more", "02:53",
        "spark security concerns", "Photo: AP", "US-China relations",
        "China should reconsider Russia ties, \u2018make friends with more countries\u2019, scholar says",
        "Chinese and Russian armed forces agree to hold more joint drills",
    ):
        assert furniture not in cleaned, furniture
    assert not cleaned.endswith("145")
    for content in (
        "with the value surging by 40.7 per cent from a year earlier",
        "virtual forum hosted by Renmin University of China\u2019s National Academy of Development and Strategy",
        "China should stand neither with Russia nor with the West",
        "\u2022 Moscow is taking advantage of and \u2018pursuing unilateral use of China\u2019, US affairs "
        "expert says during forum hosted by Renmin University",
        "\u2022 China does not recognise annexation of Ukrainian territories, but war and Western-led "
        "sanctions have not stopped Sino-Russian ties from growing closer",
    ):
        assert content in cleaned, content
    last = [line for line in text.splitlines() if line.strip() and line.strip() != "145"][-1]
    assert cleaned.endswith(last)
    assert "\n\n\n" not in cleaned


def test_clean_text_keeps_lines_verbatim():
    text = seed_text()
    cleaned = clean_text(text)
    for line in cleaned.splitlines():
        assert line in text
    assert set(cleaned.splitlines()) - {""} <= {line.strip() for line in text.splitlines()}


def test_clean_text_rules_on_own_text():
    text = "\n".join([
        "Energy policy",  # topic tag before the story: dropped
        "By Ada Byron",
        "Paris CNN \u2014",
        "",
        "The minister announced a review of the grid on Tuesday, aides said.",
        "",
        "Read more",
        "",
        "More:Grid operators warn of winter shortages",  # link to another story
        "",
        "Engineers at a substation. Jane Doe/AFP/Getty Images",
        "",
        "The review will report in spring. It covers tariffs and connections.",
        "",
        "Costs and timing",  # a section heading: kept
        "",
        "The review costs \u20ac2m. Officials expect results by April.",
        "",
        "2019",  # a year heading inside the story: kept
        "",
        "Capacity rose by 3 per cent that year, the report said.",
        "",
        "  \u2022 Bullet points are content.",
        "",
        "\u2014\u2013",
        "",
        "Quote of the week",
        "",
        "Quote of the week",
        "",
        "The last paragraph ends here.",
        "",
        "37",  # comment count after the story
    ])
    assert clean_text(text) == "\n".join([
        "The minister announced a review of the grid on Tuesday, aides said.",
        "",
        "The review will report in spring. It covers tariffs and connections.",
        "",
        "Costs and timing",
        "",
        "The review costs \u20ac2m. Officials expect results by April.",
        "",
        "2019",
        "",
        "Capacity rose by 3 per cent that year, the report said.",
        "",
        "\u2022 Bullet points are content.",
        "",
        "The last paragraph ends here.",
    ])


def test_clean_text_drops_title_line_and_video_caption():
    text = "\n".join([
        "\u201cPort Fees\u201d  Rise Again",
        "",
        "Fees rose again this year, the authority said.",
        "",
        "01:02:03",
        "",
        "Watch the harbour at dawn",
        "",
        "Watch the harbour at dawn",
        "",
        "A long duplicated paragraph that is printed twice by the scraper, as it happens.",
        "",
        "A long duplicated paragraph that is printed twice by the scraper, as it happens.",
    ])
    assert clean_text(text, title='"Port fees" rise again') == (
        "Fees rose again this year, the authority said.\n\n"
        "A long duplicated paragraph that is printed twice by the scraper, as it happens."
    )


def test_markdown_headings_are_kept():
    text = "# Harbour report\n\nThe harbour reopened on Monday.\n\n## Costs\n\nFees rose."
    assert clean_text(text) == text


# --- HTML whose story sits in JSON-LD ------------------------------------------------

JSONLD_BODY = ("Valdora’s council spent a year promising a new ferry link. Last week it finally published "
               "the tender, and its terms say more about the council’s priorities than any speech.\n\n"
               "The tender asks for two electric ferries carrying 300 passengers each, running every "
               "20 minutes between the old harbour and the island of Mesk from 2026.")


def jsonld_page(article_body: str, markup: str) -> str:
    ld = {"@context": "https://schema.org", "@type": "OpinionNewsArticle",
          "headline": "Valdora’s ferry tender is a test of its promises", "datePublished": "2024-02-11T09:15:00+01:00",
          "author": {"@type": "Person", "name": "Ines Calder"}, "publisher": {"name": "Coast Courier"},
          "mainEntityOfPage": "https://courier.example/opinion/ferry-tender", "articleBody": article_body}
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Ferry tender | Coast Courier</title>'
            f'<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script></head>'
            f'<body><nav><a href="/">Coast Courier</a> <a href="/opinion">Opinion</a></nav>{markup}'
            f'<footer>© Coast Courier</footer></body></html>')


def test_html_story_in_jsonld_is_read_from_there(tmp_path):
    caption = "<figure><img src='/f.jpg'><figcaption>The harbour ferry leaves for Mesk. Photo: AP</figcaption></figure>"
    article = load_article(write(tmp_path, "ferry.html", jsonld_page(JSONLD_BODY, caption)), tmp_path)
    assert article.text == JSONLD_BODY
    assert (article.title, article.source, article.date, article.url, article.authors) == (
        "Valdora’s ferry tender is a test of its promises", "Coast Courier", "2024-02-11",
        "https://courier.example/opinion/ferry-tender", ("Ines Calder",))


def test_html_markup_story_wins_over_a_jsonld_teaser(tmp_path):
    story = "".join(f"<p>{p}</p>" for p in JSONLD_BODY.split("\n\n"))
    article = load_article(write(tmp_path, "ferry.html", jsonld_page("A new ferry link.", f"<article>{story}</article>")),
                           tmp_path)
    assert article.text == JSONLD_BODY  # from the markup: the teaser is far shorter
