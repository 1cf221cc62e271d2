"""Spike-for-spike comparison of backend results."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import RunResult


@dataclass
class Mismatch:
    layer: int
    field: str          # spikes | u | v
    count: int          # differing entries
    first: tuple        # (sample, step, neuron) of the first difference


def compare(a: RunResult, b: RunResult) -> list[Mismatch]:
    """Every differing entry of spikes, and of u and v where both have them."""
    out = []
    fields = ["spikes"] + (["u", "v"] if a.u is not None and b.u is not None else [])
    if len(a.spikes) != len(b.spikes):
        raise ValueError(f"results have {len(a.spikes)} and {len(b.spikes)} layers")
    for f in fields:
        for layer, (x, y) in enumerate(zip(getattr(a, f), getattr(b, f))):
            if x.shape != y.shape:
                raise ValueError(f"layer {layer} {f}: shapes {x.shape} and {y.shape} differ")
            diff = np.argwhere(np.asarray(x) != np.asarray(y))
            if diff.size:
                out.append(Mismatch(layer, f, int(diff.shape[0]), tuple(int(i) for i in diff[0])))
    return out
