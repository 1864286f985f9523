"""The packaged model files: found in their packages, joined in order and checked."""

from __future__ import annotations

import pytest

from assistant.answering.model_files import ModelUnavailable, join_parts, main, packaged_model, packaged_qwen


def test_a_missing_model_package_names_the_fix():
    with pytest.raises(ModelUnavailable, match="requirements-llm.txt"):
        packaged_model("no_such_model_package")


def test_the_test_model_ships_in_its_package():
    path = packaged_model()
    assert path.suffix == ".gguf" and path.read_bytes()[:4] == b"GGUF"


def test_parts_are_joined_in_order_and_checked(tmp_path):
    import hashlib

    parts = []
    for i, data in enumerate((b"GGUF" + b"a" * 10, b"b" * 7, b"c")):
        parts.append(tmp_path / f"part{i:02}.bin")
        parts[-1].write_bytes(data)
    whole = b"GGUF" + b"a" * 10 + b"b" * 7 + b"c"
    target = join_parts(parts, tmp_path / "out" / "m.gguf", hashlib.sha256(whole).hexdigest())
    assert target.read_bytes() == whole
    assert join_parts(parts, target, hashlib.sha256(whole).hexdigest()) == target  # already there: kept
    with pytest.raises(ModelUnavailable, match="not the expected model file"):
        join_parts(parts[1:], tmp_path / "bad.gguf")  # no GGUF header
    with pytest.raises(ModelUnavailable, match="not the expected model file"):
        join_parts(parts, tmp_path / "bad.gguf", "0" * 64)
    assert not list(tmp_path.glob("bad.gguf*"))  # nothing half-written is left behind


def test_make_llm_without_the_parts_says_what_to_install(tmp_path, capsys, monkeypatch):
    import assistant.answering.model_files as model_files

    monkeypatch.setattr(model_files, "QWEN_PARTS", ("no_such_part_package",))
    with pytest.raises(ModelUnavailable, match="make llm"):
        packaged_qwen(tmp_path)
    assert main([str(tmp_path)]) == 2 and "make llm" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_make_llm_runs_this_module():
    from pathlib import Path

    makefile = (Path(__file__).parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "-m assistant.answering.model_files models" in makefile
