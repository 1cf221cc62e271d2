"""Spike-for-spike comparison of backend results."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import chip
from .chip import lif_update
from .network import IntLayer, IntNetwork, RunResult
from .noise import NOISE_TABLES, noise_terms


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


# ============================================================================================
# A slow, plain reference run: NumPy projections (chip.*_reference), chip.lif_update neurons
# ============================================================================================
@njit(cache=True)
def _lif_layer(u, v, a, du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, t, sid):
    s = np.zeros(u.shape[0], np.uint8)
    for k in range(u.shape[0]):
        n_u, n_v, n_th = noise_terms(kind, dist, mant, exp, seed, tables, layer, k, t, sid)
        u[k], v[k], s[k], _ = lif_update(u[k], v[k], a[k], du, dv, vth_eff, bias[k], n_u, n_v, n_th)
    return s


def _projection(layer: IntLayer, graded: bool, rec: bool = False):
    """A step function x(t-1) -> message(t) of the layer's input (or recurrent) projection."""
    if rec:
        if layer.rec_delays is not None:
            return chip.DelayBuffer(layer.rec_weights, layer.rec_delays, layer.rec_weight_exp).step
        return lambda x: chip.dense_reference(x, layer.rec_weights, layer.rec_weight_exp)
    if layer.conv is not None:
        c = layer.conv
        return lambda x: chip.conv_reference(x, layer.weights, c.in_shape, c.stride, c.padding, c.dilation,
                                             c.groups, graded)
    if layer.delays is not None:
        return chip.DelayBuffer(layer.weights, layer.delays, layer.weight_exp, graded).step
    return lambda x: chip.dense_reference(x, layer.weights, layer.weight_exp, graded)


def reference_run(net: IntNetwork, raster, sample_ids=None) -> RunResult:
    """The network run sample by sample, step by step, with the NumPy reference projections:
    a second, independent implementation of every projection for the parity suite (the
    neuron is chip.lif_update, shared). Same layout and at-rest rule as emu.run."""
    r = np.asarray(raster).astype(np.int64)
    B, T, _ = r.shape
    ids = np.arange(B) if sample_ids is None else np.asarray(sample_ids)
    out = {f: [np.zeros((B, T, layer.n_out), np.uint8 if f == "spikes" else np.int32) for layer in net.layers]
           for f in ("spikes", "u", "v")}
    for b in range(B):
        projs = [(_projection(layer, net.input_message_bits > 0 and l == 0),
                  _projection(layer, False, rec=True) if layer.recurrent else None)
                 for l, layer in enumerate(net.layers)]
        state = [(np.zeros(layer.n_out, np.int64), np.zeros(layer.n_out, np.int64)) for layer in net.layers]
        for t in range(T):
            for l, (layer, (proj, rec), (u, v)) in enumerate(zip(net.layers, projs, state)):
                if t <= l:
                    continue
                x = r[b, t - 1] if l == 0 else out["spikes"][l - 1][b, t - 1]
                a = proj(x).astype(np.int64)
                if rec is not None:
                    a = chip.wrap32.py_func(a + rec(out["spikes"][l][b, t - 1]))
                nz = layer.noise
                s = _lif_layer(u, v, a, layer.du, layer.dv, layer.vth << chip.VTH_SHIFT, layer.bias,
                               chip.NOISE_INJECT.index(nz.inject), chip.NOISE_DIST.index(nz.dist), nz.mant, nz.exp,
                               nz.seed, NOISE_TABLES, l, t, int(ids[b]))
                out["spikes"][l][b, t], out["u"][l][b, t], out["v"][l][b, t] = s, u, v
    return RunResult(**out)
