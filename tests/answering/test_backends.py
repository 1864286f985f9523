"""The backend registry: one entry per ASSISTANT_LLM name, clear messages for what is missing."""

from __future__ import annotations

import pytest

from assistant.answering.backends import BACKENDS, LocalServer, Parts, build_answerer, require_package
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.model_files import ModelUnavailable
from assistant.config import LLM_BACKENDS, Settings, load_settings


def test_a_missing_package_or_file_names_the_fix(tmp_path):
    with pytest.raises(ModelUnavailable, match="requirements-llm.txt"):
        require_package("no_such_backend_module", "no-such-backend", "openai:x")
    with pytest.raises(ModelUnavailable, match="no model file"):
        LocalServer(tmp_path / "missing.gguf")


def test_the_registry_builds_every_name_the_settings_accept_and_no_other():
    assert BACKENDS.keys() == LLM_BACKENDS.keys()
    for kind, arg in LLM_BACKENDS.items():
        assert load_settings({"ASSISTANT_LLM": f"{kind}:x" if arg else kind}).llm.backend.startswith(kind)


def test_the_extractive_answerer_is_an_entry_like_any_other(embedder):
    vectors = lambda chunk_ids: {}  # noqa: E731
    answerer = build_answerer(Settings().llm, Parts(embedder, sentence_vectors=vectors))
    assert type(answerer) is ExtractiveAnswerer and answerer.sentence_vectors is vectors


def test_a_name_outside_the_registry_names_the_setting(embedder):
    # Settings built in code are not parsed: the registry still names the variable and its values.
    with pytest.raises(ModelUnavailable, match=r"ASSISTANT_LLM='llama:x': use extractive, openai:<model>"):
        build_answerer(Settings.of(backend="llama:x").llm, Parts(embedder))
