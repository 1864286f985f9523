from assistant.web.scope import Scope, desk_scope, scope_of


def chunk(article, source="", date="", n=0):
    """A passage as the lexical index lists it for the scope: (article id, outlet, date)."""
    return (article, source, date)


def test_scope_counts_articles_not_chunks():
    chunks = [chunk("a", "Wire", "2023-03-20", 0), chunk("a", "Wire", "2023-03-20", 1), chunk("b", "Wire", "2022-08-02"),
              chunk("c", "Gazette", "2024-01-01"), chunk("d", "", "")]
    scope = scope_of(chunks)
    assert scope == Scope(articles=4, outlets=(("Wire", 2), ("Gazette", 1)), first_date="2022-08-02",
                          last_date="2024-01-01", undated=1)
    assert scope.describe() == "4 articles from Wire and Gazette, 2022-08-02 to 2024-01-01 (1 of unknown date)"
    assert scope.to_dict() == {"outlets": [{"name": "Wire", "articles": 2}, {"name": "Gazette", "articles": 1}],
                               "dates": {"first": "2022-08-02", "last": "2024-01-01", "undated": 1}}


def test_describe_names_a_few_outlets_and_counts_the_rest():
    many = scope_of([chunk(str(i), f"Outlet {i % 5}", "2024-05-01") for i in range(1000)])
    assert many.describe() == "1,000 articles from Outlet 0, Outlet 1, Outlet 2 and 2 more, 2024-05-01"
    assert scope_of([chunk("x", "South China Morning Post")]).describe() == \
        "1 article from South China Morning Post, date unknown"
    assert scope_of([]).describe() == "No articles yet"
    assert scope_of([]).to_dict()["dates"] == {"first": None, "last": None, "undated": 0}


def test_desk_scope_is_computed_once_per_bm25_index(seed_assistant):
    scope = desk_scope(seed_assistant)
    assert scope.articles == 3 and scope.undated == 1
    assert dict(scope.outlets) == {"South China Morning Post": 1, "Plains Daily": 1, "Metro Gazette": 1}
    assert desk_scope(seed_assistant) is scope  # cached


def test_the_scope_line_in_russian_groups_thousands_as_russian_does():
    many = scope_of([chunk(f"a{i}", "Wire", "2024-05-01") for i in range(1000)])
    assert many.describe("ru").startswith("1\xa0000 ")
    assert many.describe().startswith("1,000 articles")
