from pathlib import Path

import pytest

from assistant.config import Settings, load_settings


def test_defaults_without_environment():
    s = load_settings({})
    assert s == Settings()
    assert (s.corpus_dir, s.index_dir, s.host, s.port) == (Path("corpus"), Path("index"), "127.0.0.1", 7860)


def test_environment_overrides():
    s = load_settings({"ASSISTANT_CORPUS": "/data/c", "ASSISTANT_INDEX": "/data/i", "ASSISTANT_PORT": "8000",
                       "ASSISTANT_HOST": "0.0.0.0", "ASSISTANT_MIN_SIMILARITY": "0.5", "ASSISTANT_EXAMPLES": "a | b"})
    assert s.corpus_dir == Path("/data/c") and s.index_dir == Path("/data/i")
    assert (s.port, s.host, s.min_similarity, s.examples) == (8000, "0.0.0.0", 0.5, ("a", "b"))
    assert load_settings({"ASSISTANT_EXAMPLES": ""}).examples == ()
    assert load_settings({"ASSISTANT_FEEDBACK_DB": "/data/fb.sqlite3"}).feedback_db == Path("/data/fb.sqlite3")


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="ASSISTANT_PORT"):
        load_settings({"ASSISTANT_PORT": "eighty"})


def test_with_ignores_none():
    s = Settings().with_(port=None, host="h")
    assert s.port == 7860 and s.host == "h"


def test_chroma_server_settings():
    s = load_settings({"CHROMA_HOST": "chroma.internal", "CHROMA_PORT": "8001", "CHROMA_AUTH_TOKEN": "t0ken",
                       "ASSISTANT_INGEST_LOCK": "/shared/ingest.lock"})
    assert (s.chroma_host, s.chroma_port, s.chroma_auth_token) == ("chroma.internal", 8001, "t0ken")
    assert s.ingest_lock == Path("/shared/ingest.lock")
    assert load_settings({}).chroma_host == ""  # embedded index by default


def test_embedding_and_limit_settings():
    s = load_settings({"EMBED_ALLOWED_ORIGINS": "https://News.example.org/, http://localhost:8000",
                       "ASSISTANT_RATE_LIMIT": "5/minute; 100 per day", "TRUST_PROXY": "1",
                       "ASSISTANT_ROOT_PATH": "/policy-desk/"})
    assert s.embed_allowed_origins == ("https://news.example.org", "http://localhost:8000")
    assert (s.rate_limit, s.trust_proxy, s.root_path) == ("5/minute; 100 per day", True, "/policy-desk")
    assert (Settings().embed_allowed_origins, Settings().rate_limit, Settings().trust_proxy) == ((), "20/minute", False)
    s = load_settings({"ASSISTANT_QUEUE_SIZE": "4", "ASSISTANT_MAX_BODY_BYTES": "65536"})
    assert (s.queue_size, s.max_body_bytes) == (4, 65536) and (Settings().queue_size, Settings().max_body_bytes) == (32, 1_000_000)
    for name, bad in (("EMBED_ALLOWED_ORIGINS", "https://a.org/path"), ("EMBED_ALLOWED_ORIGINS", "*"),
                      ("ASSISTANT_RATE_LIMIT", "lots"), ("TRUST_PROXY", "maybe"), ("ASSISTANT_ROOT_PATH", "pd"),
                      ("ASSISTANT_QUEUE_SIZE", "0"), ("ASSISTANT_MAX_BODY_BYTES", "-5"), ("ASSISTANT_QUEUE_SIZE", "many")):
        with pytest.raises(ValueError, match=name):
            load_settings({name: bad})


def test_capacity_and_refresh_settings():
    s = load_settings({"ASSISTANT_MAX_ANSWERS": "3", "ASSISTANT_ANSWER_WAIT": "2.5", "ASSISTANT_REFRESH_SECONDS": "0"})
    assert (s.max_answers, s.answer_wait, s.refresh_seconds) == (3, 2.5, 0.0)
    assert (Settings().max_answers, Settings().answer_wait, Settings().refresh_seconds) == (0, 10.0, 5.0)
    with pytest.raises(ValueError, match="ASSISTANT_MAX_ANSWERS"):
        load_settings({"ASSISTANT_MAX_ANSWERS": "many"})


def test_rate_limit_storage_setting():
    assert Settings().rate_limit_storage == "memory://"
    assert load_settings({"ASSISTANT_RATE_LIMIT_STORAGE": "redis://10.0.0.5:6379"}).rate_limit_storage == \
        "redis://10.0.0.5:6379"
    with pytest.raises(ValueError, match="ASSISTANT_RATE_LIMIT_STORAGE"):
        load_settings({"ASSISTANT_RATE_LIMIT_STORAGE": "mongodb://x"})


def test_fetch_allow_setting():
    s = load_settings({"ASSISTANT_FETCH_ALLOW": "http://127.0.0.1:8799, https://Intranet.example"})
    assert s.fetch_allow == ("http://127.0.0.1:8799", "https://intranet.example")
    assert Settings().fetch_allow == () and load_settings({}).fetch_allow == ()
    for bad in ("127.0.0.1:8799", "http://127.0.0.1:8799/feeds", "*"):
        with pytest.raises(ValueError, match="ASSISTANT_FETCH_ALLOW"):
            load_settings({"ASSISTANT_FETCH_ALLOW": bad})
