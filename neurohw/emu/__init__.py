"""The emulator: runs an IntNetwork on a batch of input rasters exactly as the chip does."""
from __future__ import annotations

import numpy as np

from .. import chip
from ..network import IntNetwork, RunResult
from ..noise import NOISE_TABLES
from . import project, synapses
from .project import NO_CONV, rec_rows
from .kernel import PROJ_CONV, PROJ_DEPTHWISE, PROJ_EVENT, PROJ_MATVEC, PROJ_SUMS, PROJ_TABLE, neuron_layer


def check_raster(net: IntNetwork, raster) -> np.ndarray:
    """Validate an input raster [batch, steps, n_in]; return it as int32."""
    return _checked(net, raster).astype(np.int32)


def _checked(net: IntNetwork, raster) -> np.ndarray:
    """Validate an input raster without converting it: binary uint8 / bool rasters pass as they are."""
    r = np.asarray(raster)
    if r.ndim != 3 or r.shape[2] != net.n_in:
        raise ValueError(f"raster: shape {r.shape} must be [batch, steps, n_in={net.n_in}]")
    if r.dtype != bool and not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"raster: dtype {r.dtype} must be bool or an integer type (uint8 for spikes)")
    hi = 1 if net.input_message_bits == 0 else (1 << net.input_message_bits) - 1
    what = "binary spikes" if net.input_message_bits == 0 else f"{net.input_message_bits}-bit graded payloads"
    fast = r.dtype == bool or (r.dtype == np.uint8 and hi == 1 and (r.size == 0 or r.max() <= 1))
    if r.size and not fast:
        chip.check_range("raster", f"value ({what})", r, 0, hi)
    return r


def layer_arrays(layer, layer_index: int) -> dict:
    """One IntLayer's neuron parameters as neuron_layer takes them (scalars as int64; bias int32:
    |mant << exp| < 2**19, and the neuron update runs in 32-bit lanes)."""
    nz = layer.noise
    return dict(w_exp=layer.weight_exp, r_exp=layer.rec_weight_exp, du=layer.du, dv=layer.dv,
                vth_eff=layer.vth << chip.VTH_SHIFT, bias=np.ascontiguousarray(layer.bias, np.int32),
                noise=(chip.NOISE_INJECT.index(nz.inject), chip.NOISE_DIST.index(nz.dist), nz.mant, nz.exp, nz.seed),
                layer=layer_index)


def conv_tables(layer, depthwise: bool) -> tuple:
    """project.depthwise_kernel(layer) or project.conv_kernel(layer), kept on the layer against
    a fingerprint of its kernel bytes and geometry (so an edited layer gets new tables): building
    them is ~0.2 ms of small NumPy calls per layer, a tenth of a 64-sample batch's whole run."""
    c = layer.conv
    key = (depthwise, layer.weights.shape, layer.weights.dtype.str, layer.weights.tobytes(), tuple(c.in_shape),
           c.stride, c.padding, c.dilation, c.groups)
    memo = layer.__dict__.get("_emu_conv_tables")
    if memo is None or memo[0] != key:
        memo = (key, project.depthwise_kernel(layer) if depthwise else project.conv_kernel(layer))
        layer.__dict__["_emu_conv_tables"] = memo
    return memo[1]


def layer_block(x, weights, pl: project.Plan, p: dict, rows_rec, graded: bool, sample_ids, probes: bool,
                conv: tuple | None = None, n_out: int | None = None):
    """One layer over the whole block: its projection as pl says, then its neurons.

    The event, matvec, table and conv paths are fused into the neuron kernel (one projection step per
    sample and step; conv: project.conv_kernel(layer) and n_out the layer's size, its message
    entering with weight_exp 0);
    the dense path computes all sums first. Returns (spikes, u, v, wraps, sats)."""
    B, T, _ = x.shape
    n = weights.shape[0] if n_out is None else n_out
    proj = {"event": PROJ_EVENT, "matvec": PROJ_MATVEC, "table": PROJ_TABLE, "conv": PROJ_CONV,
            "depthwise": PROJ_DEPTHWISE, "dense": PROJ_SUMS}[pl.path]
    if pl.path == "dense":
        sums = project.project_dense(x, weights, pl)
        rows, xin = np.zeros((1, n), np.int16), np.zeros((1, 1, 0), x.dtype)
    else:
        rows = (np.ascontiguousarray(weights, np.int16) if pl.path == "matvec" else
                project.weight_rows(weights) if pl.path == "event" else
                project.table_rows(weights) if pl.path == "table" else np.zeros((1, n), np.int16))
        sums, xin = np.zeros((1, 1, n), pl.acc), x
    s = np.zeros((B, T, n), np.uint8)
    u = np.zeros((B, T, n) if probes else (1, 1, n), np.int32)
    v = np.zeros_like(u)
    counts = np.zeros((B, 2), np.int64)
    if s.size:
        neuron_layer(sums, xin, rows, proj, NO_CONV if conv is None else conv, graded, rows_rec, p["rec"],
                     0 if conv is not None else p["w_exp"], p["r_exp"], p["du"], p["dv"], p["vth_eff"], p["bias"],
                     *p["noise"], NOISE_TABLES, p["layer"], sample_ids, probes, s, u, v, counts)
    return s, u, v, int(counts[:, 0].sum()), int(counts[:, 1].sum())


def run(net: IntNetwork, raster, probes: bool = False, sample_ids=None, path: str = "auto",
        acc: str = "auto", flags: bool = False) -> RunResult:
    """Run a batch of rasters [batch, steps, n_in]; spikes (and u, v with probes) per layer.

    sample_ids: the sample index each row is given in the noise hash (default 0..batch-1),
    so a sample draws the same noise wherever it sits in a batch. path / acc force a projection
    path ('event', 'matvec', 'table', 'dense') or accumulator ('int32', 'int64', 'float32', 'float64') for every
    layer (for tests and benchmarks; a choice that would not be exact raises); 'auto' picks per
    layer from the weights' bounds and the measured input density (docs/emulator.md). Conv
    layers scatter each spike's kernel ('conv'), except depthwise ones (every sum-pool), which
    sum output-stationary ('depthwise'); path 'event' forces the scatter on them too.
    flags=True also returns the per-layer counts of u wraps and v saturations (RunResult.wraps / .sats)
    and the plans used (RunResult.plans)."""
    r = _checked(net, raster)
    B, T, _ = r.shape
    ids = np.arange(B, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64)
    if ids.shape != (B,):
        raise ValueError(f"sample_ids: shape {ids.shape}, expected ({B},)")
    graded = net.input_message_bits > 0
    if graded:
        x = r.astype(np.int32)
    elif r.dtype == bool or r.dtype == np.uint8:
        x = np.ascontiguousarray(r).view(np.uint8)
    else:
        x = (r != 0).view(np.uint8)
    spikes, us, vs, wraps, sats, plans = [], [], [], [], [], []
    for i, layer in enumerate(net.layers):
        g = graded and i == 0
        p = layer_arrays(layer, i)
        p["rec"] = layer.recurrent
        if layer.conv is not None and layer.rec_delays is None:      # conv / pool, fused
            dw = project.is_depthwise(layer) and path != "event"
            pl = project.Plan("depthwise" if dw else "conv", "int32")
            s, u, v, nw, ns = layer_block(x, layer.weights, pl, p, rec_rows(layer.rec_weights), g, ids, probes,
                                          conv=conv_tables(layer, dw), n_out=layer.n_out)
        elif layer.kind != "dense" or layer.rec_delays is not None:   # delay projections, delayed recurrences
            pl = project.Plan(layer.kind if layer.kind != "dense" else "event", "int64")
            s, u, v, nw, ns = synapses.run_layer(layer, x, p, g, ids, probes)
        else:
            xmax = (1 << net.input_message_bits) - 1 if g else 1
            density = np.count_nonzero(x) / x.size if x.size else 0.0
            pl = project.plan(layer.weights, xmax, g, density, path, acc)
            s, u, v, nw, ns = layer_block(x, layer.weights, pl, p, rec_rows(layer.rec_weights), g, ids, probes)
        spikes.append(s)
        us.append(u)
        vs.append(v)
        wraps.append(nw)
        sats.append(ns)
        plans.append(pl)
        x = s
    fl = dict(wraps=wraps, sats=sats, plans=plans) if flags else {}
    return RunResult(spikes=spikes, u=us if probes else None, v=vs if probes else None, **fl)
