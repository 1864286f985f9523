"""pyproject.toml: the wheel holds every module and data file, and installs the `policy-desk` command.

Built from a copy of the project (setuptools writes build/ and *.egg-info beside the sources),
with the venv's setuptools (`--no-build-isolation`, as the Makefile installs), offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "assistant", project / "assistant", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project), "-w", str(out)],
                   check=True, timeout=300)
    (built,) = out.glob("policy_desk-*.whl")
    return built


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())

    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "assistant").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert sources - names == set()


def test_installed_wheel_runs_the_policy_desk_command(wheel, tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run([*PIP, "install", "--no-deps", "--no-index", "--prefix", str(prefix), str(wheel)],
                   check=True, timeout=300)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")} | {"PYTHONPATH": str(site)}

    proc = subprocess.run([prefix / "bin" / "policy-desk", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: policy-desk")
    where = subprocess.run([sys.executable, "-c", "import assistant; print(assistant.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))  # the installed copy answered, not this checkout
