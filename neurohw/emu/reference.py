"""A slow, plain oracle for the emulator: step by step, int64 matrix sums, kernel.layer_step.

Every layer's Dense and recurrent sums are computed per step as exact int64 matrix products
(NumPy), with no bounds, no dtype choice and no event logic; the neurons go through the same
neuron_step as the fast kernel. Tests compare the fast paths against it."""
from __future__ import annotations

import numpy as np

from .. import chip
from ..network import IntNetwork, RunResult
from ..noise import NOISE_TABLES
from .kernel import layer_step


def reference_run(net: IntNetwork, raster, sample_ids=None):
    """(RunResult with spikes, u, v; wraps per layer; sats per layer)."""
    r = np.asarray(raster).astype(np.int64)
    B, T, _ = r.shape
    ids = np.arange(B, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64)
    graded = net.input_message_bits > 0
    if not graded:
        r = (r != 0).astype(np.int64)
    L = net.layers
    out = {k: [np.zeros((B, T, layer.n_out), dt) for layer in L] for k, dt in
           (("s", np.uint8), ("u", np.int32), ("v", np.int32))}
    u = [np.zeros((B, layer.n_out), np.int64) for layer in L]
    v = [np.zeros((B, layer.n_out), np.int64) for layer in L]
    wraps, sats = [0] * len(L), [0] * len(L)
    for t in range(T):
        for i, layer in enumerate(L):
            if t <= i:
                continue
            src = r[:, t - 1] if i == 0 else out["s"][i - 1][:, t - 1].astype(np.int64)
            acc = src @ layer.weights.astype(np.int64).T
            acc_rec = (out["s"][i][:, t - 1].astype(np.int64) @ layer.rec_weights.astype(np.int64).T
                       if layer.recurrent else np.zeros_like(acc))
            nz = layer.noise
            s, nw, ns = layer_step(u[i], v[i], acc, acc_rec, layer.recurrent, layer.weight_exp, layer.rec_weight_exp,
                                   graded and i == 0, layer.du, layer.dv, layer.vth << chip.VTH_SHIFT,
                                   np.ascontiguousarray(layer.bias, np.int64), chip.NOISE_INJECT.index(nz.inject),
                                   chip.NOISE_DIST.index(nz.dist), nz.mant, nz.exp, nz.seed, NOISE_TABLES, i, t, ids)
            out["s"][i][:, t] = s
            out["u"][i][:, t] = u[i]
            out["v"][i][:, t] = v[i]
            wraps[i] += nw
            sats[i] += ns
    return RunResult(spikes=out["s"], u=out["u"], v=out["v"]), wraps, sats
