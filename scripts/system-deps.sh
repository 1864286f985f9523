#!/usr/bin/env bash
# What `make test` needs from a Debian machine besides Python packages: chromium (the browser
# tests), redis-server (the rate limit shared across app processes), npm (axe-core for the
# accessibility checks), caddy (the reverse proxy deploy/ configures, in front of two app
# processes), systemd (systemd-analyze checks deploy/'s units), and Python's venv module while
# .venv does not exist yet.
# As root it installs the missing ones with apt-get, without asking; otherwise it stops at once
# with the one command to run. Nothing to do: silent.
#
#   PYTHON   the interpreter that creates the venv (default python3)
#   VENV     the venv folder (default .venv)
set -euo pipefail
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

missing() {
  local packages=""
  command -v chromium >/dev/null 2>&1 || packages+=" chromium"
  command -v redis-server >/dev/null 2>&1 || packages+=" redis-server"
  command -v npm >/dev/null 2>&1 || packages+=" npm"
  command -v caddy >/dev/null 2>&1 || packages+=" caddy"
  command -v systemd-analyze >/dev/null 2>&1 || packages+=" systemd"
  # Debian's python3 creates venvs only with python3-venv (it holds ensurepip).
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m ensurepip --version >/dev/null 2>&1 || packages+=" python3-venv"
  echo "${packages# }"
}

packages="$(missing)"
[ -z "$packages" ] && exit 0
if [ "$EUID" -ne 0 ]; then
  echo "make test needs $packages; install them, then run make test again:" >&2
  echo "  sudo apt-get install -y $packages" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make test needs $packages (Debian's package names); install them, then run make test again" >&2
  exit 1
fi
echo "installing $packages (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq $packages </dev/null >/dev/null
still="$(missing)"
if [ -n "$still" ]; then
  echo "still missing after apt-get install: $still" >&2
  exit 1
fi
