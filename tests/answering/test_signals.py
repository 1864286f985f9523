from assistant.answering import signals


def test_expected_type_reads_the_question_form():
    assert signals.expected_type("how long is it before you start feeling sick?") == signals.NUMBER
    assert signals.expected_type("What percentage of voters agreed?") == signals.NUMBER
    assert signals.expected_type("when did the strike end") == signals.DATE
    assert signals.expected_type("Who said China should balance its ties?") == signals.PERSON
    assert signals.expected_type("Who is Liu Weidong?") == signals.OTHER  # asks for a description
    assert signals.expected_type("which country hosted the forum") == signals.PLACE
    assert signals.expected_type("does beijing accept crimea as part of russia now?") == signals.OTHER


def test_typed_spans_find_numbers_dates_people_and_places():
    text = "On Friday Joey Chestnut ate 63 hot dogs in Coney Island, up 40.7 per cent since June 2021."
    found = {kind: [text[s:e] for s, e in signals.typed_spans(text, kind)]
             for kind in (signals.NUMBER, signals.DATE, signals.PERSON, signals.PLACE)}
    assert "63" in found[signals.NUMBER] and any("40.7 per cent" in x for x in found[signals.NUMBER])
    assert "Friday" in found[signals.DATE] and "June 2021" in found[signals.DATE]
    assert "Joey Chestnut" in found[signals.PERSON]
    assert "Coney Island" in found[signals.PLACE]
    fellow = "Liu Weidong, a research fellow at the Chinese Academy of Social Sciences (CASS), said so."
    assert signals.short_answer(fellow, "where does liu weidong work?", signals.PLACE) == \
        "the Chinese Academy of Social Sciences"  # a name with "of" in it, whole
    assert signals.short_answer("Talks were held in Lisbon of all places.", "where were talks held?",
                                signals.PLACE) == "Lisbon"
    assert signals.typed_spans(text, signals.OTHER) == []


def test_short_answer_is_a_verbatim_span_the_question_does_not_already_say():
    sentence = "Liu Weidong, a research fellow at CASS, said Moscow had tried to take advantage."
    lead = signals.short_answer(sentence, "who said moscow tried to take advantage of china?", signals.PERSON)
    assert lead == "Liu Weidong" and lead in sentence
    assert signals.short_answer("Trade surged by 40.7 per cent.", "how much did trade grow", signals.NUMBER) \
        == "40.7 per cent"
    # The only name in the sentence is the one asked about: no lead.
    assert signals.short_answer("Joey Chestnut won again.", "who is joey chestnut", signals.PERSON) == ""


def test_term_share_and_missing_signals():
    idf = {"chestnut": 3.0, "hot": 1.0, "dog": 1.0, "2019": 4.0, "eat": 0.5}.get
    asked = signals.question_terms("how many hot dogs did chestnut eat in 2019 this week")
    assert "week" not in asked  # time words do not count as what is asked about
    text = "Chestnut ate 63 hot dogs in 2022."
    assert 0 < signals.share(asked, text, lambda t: idf(t, 1.0)) < 1
    assert signals.missing_rare(asked, text, lambda t: idf(t, 1.0)) == 1.0  # 2019, the rarest, is missing
    assert signals.missing_numbers("what happened in 2019?", text) == 1.0
    assert signals.missing_numbers("what happened in 2022?", text) == 0.0
    assert signals.missing_numbers("what happened?", text) == 0.0


def test_logistic_is_a_probability():
    assert signals.logistic([1.0, -1.0], 0.0, [0.0, 0.0]) == 0.5
    assert signals.logistic([100.0], 0.0, [1.0]) > 0.99 and signals.logistic([100.0], 0.0, [-1.0]) < 0.01
