# One venv, set up idempotently: each install step runs again only when its inputs change.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamps

.PHONY: setup test parity demo bench bench-accuracy deploy clean

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

parity: setup
	$(BIN)/python -m pytest -q -m parity

# The default pipeline end to end: train, quantize (+QAT), emulate, Lava, parity, report.
demo: setup
	$(BIN)/neurohw run configs/yinyang.yaml

# snnTorch is installed for benchmarking only (train_speed.py compares against it).
$(STAMP)/snntorch: $(STAMP)/package
	$(BIN)/pip install -q --no-deps "snntorch==1.0.0"
	@touch $@

bench: setup $(STAMP)/snntorch
	$(BIN)/python benchmarks/emulator.py
	$(BIN)/python benchmarks/train_speed.py

bench-accuracy: setup
	$(BIN)/python benchmarks/accuracy.py

# Re-train the reference configs and rewrite deploy/<name> (bundles + expected outputs).
deploy: setup
	$(BIN)/python -m neurohw.deploy

clean:
	rm -rf $(VENV)
