"""A run directory and what the stages leave in it: the manifest of completed stages (with the
hash of the config sections each depends on) and the loaders of its artifacts. Its own module so
that the pipeline (which writes runs) and the report, the CLI, sweeps and benchmarks (which read
them) all import it, and none of them imports another back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import quant, tasks
from ._io import write_json
from .config import Config

# stage -> config sections its outputs depend on
STAGES = {
    "data": ("data",),
    "train": ("data", "model", "neuron", "train"),
    "quantize": ("data", "model", "neuron", "train", "quant"),
    "emulate": ("data", "model", "neuron", "train", "quant"),
    "lava": ("data", "model", "neuron", "train", "quant", "deploy"),
    "parity": ("data", "model", "neuron", "train", "quant", "deploy", "parity"),
}
ORDER = tuple(STAGES) + ("report",)


# ---------------------------------------------------------------------------------------------
# The manifest

@dataclass
class Run:
    """A run directory: the config, the manifest of completed stages, and loaded artifacts."""

    cfg: Config
    dir: Path
    progress: bool = True
    cache: dict = field(default_factory=dict)

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def manifest(self) -> dict:
        if self.manifest_path.exists():
            return json.loads(self.manifest_path.read_text())
        return {"stages": {}}

    def done(self, stage: str) -> bool:
        entry = self.manifest()["stages"].get(stage)
        return bool(entry and entry["hash"] == self.cfg.section_hash(*STAGES[stage])
                    and all((self.dir / f).exists() for f in entry["files"]))

    def complete(self, stage: str, files: list[str], seconds: float, **info) -> None:
        m = self.manifest()
        m["stages"][stage] = dict(hash=self.cfg.section_hash(*STAGES[stage]), files=files,
                                  seconds=round(seconds, 3), **info)
        write_json(self.manifest_path, m)

    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# Artifacts

def load_data(run: Run) -> tasks.TaskData:
    if "data" not in run.cache:
        z = np.load(run.dir / "data.npz")
        val = (z["x_val"], z["y_val"]) if "x_val" in z else (None, None)
        run.cache["data"] = tasks.TaskData(z["x_train"], z["y_train"], z["x_test"], z["y_test"], *val)
    return run.cache["data"]


def file_model(cfg: Config):
    """A `model: {nir: ...}` / `{netx: ...}` config's float network, and for netx the imported
    IntNetwork with the plans that reproduce it exactly (neurohw.interop)."""
    f = cfg.model.file
    if f.kind == "nir":
        from .interop.nir import from_nir
        net, exact = from_nir(f.path, dt=f.dt, peer=f.peer), None
    else:
        from .interop.netx import load
        inet = load(f.path)
        net, plans = quant.from_int_network(inet)
        exact = (inet, plans)
    if net.n_in != cfg.n_in:
        raise ValueError(f"model.{f.kind} = {f.path}: the network takes {net.n_in} inputs, "
                         f"data.task = {cfg.data.task!r} gives {cfg.n_in}")
    return net, exact


def load_float(run: Run, name: str = "float_model.pt"):
    net = file_model(run.cfg)[0] if run.cfg.model.file is not None else tasks.build_model(run.cfg)
    net.load_state_dict(torch.load(run.dir / name, weights_only=False))
    return net


def load_quantized(run: Run):
    """The float network after QAT and its quantization plans."""
    return load_float(run, "quant_model.pt"), load_plans(run)


def load_plans(run: Run) -> list:
    sp = tasks.spiking_of(run.cfg)
    return [quant.plan_from_dict(p, sp) for p in json.loads((run.dir / "plans.json").read_text())]
