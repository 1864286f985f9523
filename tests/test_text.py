from assistant.text import content_words, sentence_spans


def test_sentence_spans_respect_abbreviations_and_quotes():
    text = "Mr. Lee said the U.S. rose 2.5 per cent. “It is good,” he said. Is it?\nA new line"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Mr. Lee said the U.S. rose 2.5 per cent.", "“It is good,” he said.", "Is it?", "A new line"]


def test_sentence_spans_trim_and_skip_blank_lines():
    text = "  First one.  \n\n\n  • A bullet line  \nLast"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["First one.", "• A bullet line", "Last"]
    assert sentence_spans("") == [] and sentence_spans(" \n ") == []


def test_content_words_drop_stop_words_and_keep_numbers():
    assert content_words("How much did the U.S. economy grow, 2.5 per cent?") == {"u.s", "economy", "grow", "2.5",
                                                                                 "per", "cent"}


def test_stems_shares_and_number_words():
    from assistant.text import number_words_as_digits, stemmed_terms, weighted_share

    assert stemmed_terms("Chicken nuggets") == stemmed_terms("a chicken nugget")
    assert weighted_share({"a", "b"}, {"a"}, {"a": 3.0, "b": 1.0}.get) == 0.75
    assert weighted_share(set(), set(), lambda t: 1.0) == 0.0
    assert number_words_as_digits("Six months, twenty days, Eleven") == "6 months, 20 days, 11"


def test_shown_escapes_every_control_character_and_keeps_the_rest():
    from assistant.text import shown

    hostile = ("\x1b[2J\x1b[H"  # clear the screen
               "\x1b]0;pwned\x07"  # set the window title
               "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"  # a terminal hyperlink
               "\r\nforged line\x85\u2028\u202egnp.exe\t\x00")
    out = shown(hostile)
    assert out.isprintable() and "\n" not in out and "\x1b" not in out
    assert out.startswith("\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07") and "\\r\\nforged line\\x85\\u2028\\u202egnp.exe\\t\\x00" in out
    assert shown("Liu Weidong 刘卫东 — 40.7 % 👍") == "Liu Weidong 刘卫东 — 40.7 % 👍"
    assert shown(42) == "42"
