# One venv, set up idempotently: each install step runs again only when its inputs change.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamps

.PHONY: setup test demo bench bench-accuracy clean

setup: $(STAMP)/package

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP)/torch: | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	@mkdir -p $(STAMP) && touch $@

# lava-nc 0.10.0 declares Python <3.11. Its dependencies are installed first by a normal
# resolve (so pip picks a scipy for 3.11), then lava itself with --ignore-requires-python.
LAVA_DEPS := "numpy<2" "networkx<=2.8.7" "asteval>=0.9.31,<0.10" "scipy>=1.10.1,<2" "scikit-learn>=1.5,<2"
$(STAMP)/lava: $(STAMP)/torch
	$(BIN)/pip install -q $(LAVA_DEPS)
	$(BIN)/pip install -q --ignore-requires-python "lava-nc==0.10.0" $(LAVA_DEPS)
	@touch $@

$(STAMP)/package: $(STAMP)/lava pyproject.toml
	$(BIN)/pip install -q -e ".[test]" $(LAVA_DEPS)
	@touch $@

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/python -m neurohw.demo

bench: setup
	$(BIN)/python benchmarks/emulator.py

clean:
	rm -rf $(VENV)
