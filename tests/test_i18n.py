"""The interface's languages (`assistant/i18n.py`): picking one, translating templates and errors,
and the catalogues themselves — complete, in step with the code, placeholders intact."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.numbers import format_decimal

from assistant import i18n
from assistant.errors import BadQuestion
from assistant.i18n import N_, Text
from conftest import ROOT

TRANSLATED = [c for c in i18n.LOCALES if c != i18n.DEFAULT]


@pytest.mark.parametrize("wish, header, expected", [
    ("zh", None, "zh_Hans"), ("zh-CN", None, "zh_Hans"), ("zh-Hans-SG", None, "zh_Hans"), ("ru-RU", None, "ru"),
    ("ar-EG", None, "ar"), ("zh-TW", None, "en"), ("xx", None, "en"), ("<script>", None, "en"), ("", None, "en"),
    (None, "fr-FR,ru;q=0.8,en;q=0.5", "ru"), (None, "zh-Hant-TW, zh-CN;q=0.7", "zh_Hans"),
    (None, "ru;q=0, en", "en"), (None, "ar;q=0.2, ru;q=0.9", "ru"), (None, "*", "en"), (None, "q=;;,", "en"),
    ("ru", "zh-CN", "ru"),  # the widget's data-lang before the browser's
])
def test_pick(wish, header, expected):
    assert i18n.pick(wish, header) == expected


def test_language_names_and_directions():
    assert [i18n.language(c).direction for c in i18n.LOCALES] == ["ltr", "ltr", "ltr", "rtl"]
    assert i18n.language("zh_Hans").tag == "zh-Hans"


def test_errors_and_texts_are_said_in_the_readers_language():
    error = BadQuestion(N_("That question is {length:,} characters long; please keep it under {limit:,}."),
                        length=2345, limit=2000)
    assert str(error) == "That question is 2,345 characters long; please keep it under 2,000."
    assert i18n.say("en", error) == str(error)
    for code in TRANSLATED:
        said = i18n.say(code, error)
        assert said != str(error) and format_decimal(2345, locale=code) in said, (code, said)
    assert "2\xa0345" in i18n.say("ru", error) and "2\xa0000" in i18n.say("ru", error)  # Russian groups by spaces
    # A value that is a Text is translated too (the rate limit's period).
    refusal = Text(N_("You're asking faster than this assistant allows ({amount} questions per {period}). "
                      "Please try again in {wait} s."), amount=20, period=Text(N_("minute")), wait=7)
    assert i18n.say("ru", refusal) != str(refusal) and i18n.say("ru", N_("minute")) in i18n.say("ru", refusal)
    assert i18n.say("zh_Hans", "a message no catalogue holds") == "a message no catalogue holds"


def _placeholders(text: str) -> set[str]:
    return {f"{{{name}{':' + spec if spec else ''}}}" for _, name, spec, _ in string.Formatter().parse(text) if name}


def extracted() -> set[str]:
    """Every string the code marks for translation, extracted as `make i18n` does (babel.cfg)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "t": None}
    return {m[2] if isinstance(m[2], str) else m[2][0]
            for m in extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}


@pytest.mark.parametrize("code", TRANSLATED)
def test_each_catalogue_translates_every_string_the_code_marks(code):
    catalogue = i18n.catalogue(code)
    held = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue if m.id}
    missing = extracted() - set(held)
    assert not missing, f"run `make i18n` and translate: {sorted(missing)}"
    for key, message in held.items():
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings) and not message.fuzzy, f"{code}: untranslated or fuzzy: {key!r}"
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(_placeholders(i) for i in ids))
        for s in strings:
            assert _placeholders(s) == wanted, f"{code}: {key!r} → {s!r}: placeholders differ"
        assert not re.search(r"<[a-z/]", "".join(strings)), f"{code}: markup in a translation: {key!r}"
    assert list(catalogue.check()) == []  # Babel's own checks (plural forms, format strings)


def test_no_marked_string_hides_in_an_f_string():
    """Python 3.11 reads an f-string as one token: Babel cannot see `N_("…")` inside one, so the
    string would never reach a catalogue (and the test above could not tell)."""
    hidden = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "assistant").rglob("*.py")
              for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"""\bf(["']).*\b(N_|gettext|ngettext)\(""", line)]
    assert hidden == []


def test_the_scripts_get_their_own_strings_only():
    embed, widget = i18n.messages_of("ru", "static/embed.js"), i18n.messages_of("ru", "static/widget.js")
    assert "Helpful" in embed and "Helpful" not in widget
    assert "Close the chat" in widget and "Close the chat" not in embed
    assert "Please type a question." not in embed  # a server message stays on the server
    assert i18n.messages_of("en", "static/embed.js") == {}


# --- the API in the reader's language ------------------------------------------------------------

@pytest.fixture(scope="module")
def client(seed_assistant):
    from fastapi.testclient import TestClient

    from assistant.config import Settings
    from assistant.web.server import build_api

    return TestClient(build_api(seed_assistant, Settings.of(index_dir=seed_assistant.settings.storage.index_dir,
                                                            rate_limit="1000/minute")))


def test_api_errors_and_refusals_follow_accept_language(client):
    r = client.post("/api/ask", json={"question": "   "}, headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert r.status_code == 422 and r.json()["detail"] == i18n.say("ru", N_("Please type a question."))
    r = client.post("/api/ask", json={"question": "   "})  # no header: English, as before
    assert r.json()["detail"] == "Please type a question."

    r = client.post("/api/ask", json={"question": "What is the population of Brazil?"},
                    headers={"Accept-Language": "zh-CN"})
    body = r.json()
    assert body["refused"] and body["citations"] == []
    assert body["answer"] == i18n.say("zh_Hans", N_("The articles I have don't cover this.")) != \
        "The articles I have don't cover this."
    # An answer's words are the article's, whatever the reader's language.
    r = client.post("/api/ask", json={"question": "How much did China-Russia trade grow this year?"},
                    headers={"Accept-Language": "ar"})
    assert not r.json()["refused"] and "40.7 per cent" in r.json()["answer"]
