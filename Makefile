# relaygate: `make run` starts the gateway on 127.0.0.1:8081, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test lint typecheck unit clean bench bench-peers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/relaygate serve

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

unit: $(STAMP_TEST)
	$(BIN)/pytest -q tests/unit

test: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

# `make bench` measures the gateway against a direct call, a bare relay and LiteLLM (after `make bench-peers`)
# on a mock upstream on 127.0.0.1 and writes docs/benchmarks.md; BENCH_ARGS=--quick runs in under two minutes.
BENCH_ARGS   ?=
PEERS_HOME   ?= $(HOME)/.cache/relaygate-bench
# Pinned: 1.82.7 and 1.82.8 on PyPI were a credential-stealing supply-chain compromise.
LITELLM_SPEC ?= litellm[proxy]==1.82.6

bench: $(STAMP_RUN)
	BENCH_COMMAND='make bench BENCH_ARGS="$(BENCH_ARGS)"' $(BIN)/python -m bench --litellm-venv $(PEERS_HOME)/litellm-venv $(BENCH_ARGS)

bench-peers:
	mkdir -p $(PEERS_HOME)
	{ $(PYTHON) -m venv $(PEERS_HOME)/litellm-venv \
	  && $(PEERS_HOME)/litellm-venv/bin/python -m pip install --quiet --upgrade pip \
	  && $(PEERS_HOME)/litellm-venv/bin/python -m pip install --quiet '$(LITELLM_SPEC)'; } \
	|| echo "bench-peers: installing $(LITELLM_SPEC) failed; make bench runs without LiteLLM"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
