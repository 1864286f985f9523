from assistant.retrieval.followup import contextualize


def test_contextualize_carries_the_subject_of_a_follow_up():
    history = ["Who is Liu Weidong?"]
    assert contextualize("What did he say?", history) == "Who is Liu Weidong? What did he say?"
    assert contextualize("What is the tram line's cost in euros?", history) == "What is the tram line's cost in euros?"
    assert contextualize("What did he say?", []) == "What did he say?"


def test_contextualize_keeps_the_query_under_the_limit():
    earlier = "Who is " + "very " * 500 + "Liu Weidong?"  # 2,519 characters
    query = contextualize("What did he say?", [earlier], limit=2000)
    assert len(query) <= 2000 and query.endswith(" What did he say?") and query.startswith("Who is very")
    assert not query[:-len(" What did he say?")].endswith("ver")  # cut at a word
    assert contextualize("And he?", ["Who is Liu Weidong?"], limit=2000) == "Who is Liu Weidong? And he?"
    assert contextualize("x" * 30, ["Who?"], limit=10) == "x" * 10
