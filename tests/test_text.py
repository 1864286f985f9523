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
