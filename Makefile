# One venv, set up idempotently: each install step runs again only when its inputs change.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamps

.PHONY: setup test parity demo bench bench-accuracy deploy bench-fit clean bench-lava bench-parity-projections bench-layers bench-interop bench-netx bench-gradients bench-slif bench-quant

setup: $(STAMP)/nodeps

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
	$(BIN)/pip install -q -e ".[test,peers]" $(LAVA_DEPS)
	@touch $@

# Peers whose declared pins fight ours (torch 2.3, lava-nc on Python < 3.11): installed without
# their dependencies, which the venv already has; neurohw's shims make them import (tested).
NODEPS := "snntorch==1.0.0" "norse==1.1.0" "lava-dl==0.6.0"
$(STAMP)/nodeps: $(STAMP)/package
	$(BIN)/pip install -q --no-deps --ignore-requires-python $(NODEPS)
	@touch $@

test: setup
	$(BIN)/python -m pytest -q

parity: setup
	$(BIN)/python -m pytest -q -m parity

# The default pipeline end to end: train, quantize (+QAT), emulate, Lava, parity, report.
demo: setup
	$(BIN)/neurohw run configs/yinyang.yaml

bench: setup
	$(BIN)/python benchmarks/emulator.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/emulator_conv.py
	$(BIN)/python benchmarks/fit_energy.py

bench-accuracy: setup
	$(BIN)/python benchmarks/accuracy.py

# Re-train the reference configs and rewrite deploy/<name> (bundles + expected outputs).
deploy: setup
	$(BIN)/python -m neurohw.deploy

# 1M-neuron fit time, SANA-FE on the Yin-Yang test set, SANA-FE's own DVS example reproduced.
bench-fit: setup
	$(BIN)/python benchmarks/fit_energy.py

clean:
	rm -rf $(VENV)

# The pipeline's Lava stage: in-process recording vs Lava's Monitor.
bench-lava: setup
	$(BIN)/python benchmarks/lava_record.py

# Conv / pool / delay parity against Lava on 204 random networks (19.6 min wall on 2 loaded cores).
bench-parity-projections: setup
	NEUROHW_LAVA_NETWORKS=204 $(BIN)/python -m pytest -q tests/test_parity_projections.py -k lava

# Float accuracy of the conv / delay configs per seed on the validation split (benchmarks/layers_float.py --test adds test).
bench-layers: setup
	$(BIN)/python benchmarks/layers_float.py

# snnTorch / Norse nets onto the chip through NIR and back (benchmarks/interop_results.txt).
bench-interop: setup
	$(BIN)/python benchmarks/interop.py

# Every deploy/ bundle through lava-dl's netx (as it is, or quantized again for netx).
bench-netx: setup
	$(BIN)/python benchmarks/netx_deploy.py

# Gradient estimators (surrogate, score, mixed) against exact and finite-difference references.
bench-gradients: setup
	$(BIN)/python benchmarks/gradients.py

# SLIF seed experiment (background.md 4a) against its sampling floor, + the 20-point gradient checks;
# then the fitted neuron on the chip (emulator and Lava) against the float model.
bench-slif: setup
	$(BIN)/python benchmarks/slif.py
	$(BIN)/python benchmarks/slif_chip.py

# The quantization study: the old and new clip rules over seeds 0-7 (Yin-Yang det., digits).
bench-quant: setup
	$(BIN)/python benchmarks/quant_summary.py --run benchmarks/sweeps/seeds_yinyang.yaml \
		benchmarks/sweeps/seeds_yinyang_stochastic.yaml benchmarks/sweeps/seeds_digits.yaml
