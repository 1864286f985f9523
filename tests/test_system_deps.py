"""scripts/system-deps.sh, which `make test` runs first: silent when the machine has everything,
a stop with the one command to run when it lacks something and is not root, apt-get when root.

Nothing is uninstalled: a PATH without the commands stands for a machine without them, and the
non-root case runs as `nobody`. The root case runs a recording `apt-get` in place of the real one
(which would change this machine); the script's own check afterwards still finds nothing, so it
fails, as it must when apt-get did not install what it needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "system-deps.sh"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
NOBODY = [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []


def run(env: dict[str, str], as_nobody: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([*(NOBODY if as_nobody else []), "/bin/bash", str(SCRIPT)], env=env, cwd="/",
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)


def test_a_machine_with_everything_is_left_alone():
    proc = run({"PATH": os.environ["PATH"], "PYTHON": sys.executable, "VENV": "/nonexistent"})

    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_not_root_stops_at_once_with_the_command_to_run():
    proc = run({"PATH": "/nonexistent", "PYTHON": "/nonexistent/python3", "VENV": "/nonexistent"}, as_nobody=True)

    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "  sudo apt-get install -y chromium redis-server npm caddy systemd python3-venv"


def test_an_existing_venv_needs_no_venv_module():
    with tempfile.TemporaryDirectory() as folder:  # not under pytest's tmp_path: nobody cannot enter that
        Path(folder).chmod(0o755)
        python = Path(folder) / "venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text("#!/bin/sh\n")  # what the script looks at: an executable there
        python.chmod(0o755)

        proc = run({"PATH": "/nonexistent", "PYTHON": "/nonexistent/python3", "VENV": str(python.parents[1])},
                   as_nobody=True)

    assert proc.stderr.splitlines()[-1] == "  sudo apt-get install -y chromium redis-server npm caddy systemd"


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get installs only as root; CI and make test run as root, where this test runs")
def test_root_runs_apt_get_without_questions_then_checks_again(tmp_path):
    log = tmp_path / "apt-get.log"
    apt_get = tmp_path / "bin" / "apt-get"
    apt_get.parent.mkdir()
    apt_get.write_text('#!/bin/sh\necho "$DEBIAN_FRONTEND $* (stdin $(test -t 0 && echo tty || echo none))" >> "$LOG"\n')
    apt_get.chmod(0o755)

    proc = run({"PATH": str(apt_get.parent), "PYTHON": sys.executable, "VENV": "/nonexistent", "LOG": str(log)})

    assert log.read_text().splitlines() == [
        "noninteractive update -qq (stdin none)",
        "noninteractive install -y -qq chromium redis-server npm caddy systemd (stdin none)",
    ]
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "still missing after apt-get install: chromium redis-server npm caddy systemd"


@pytest.mark.skipif(os.geteuid() != 0, reason="apt-get installs only as root; CI and make test run as root, where this test runs")
def test_root_without_apt_get_names_the_packages():
    proc = run({"PATH": "/nonexistent", "PYTHON": sys.executable, "VENV": "/nonexistent"})

    assert proc.returncode == 1
    assert proc.stderr == ("make test needs chromium redis-server npm caddy systemd (Debian's package names); "
                           "install them, then run make test again\n")
