"""The emulator: runs an IntNetwork on a batch of input rasters exactly as the chip does."""
from __future__ import annotations

import numpy as np

from .. import chip
from ..network import IntNetwork, RunResult
from ..noise import NOISE_TABLES
from .kernel import run_batch


def check_raster(net: IntNetwork, raster) -> np.ndarray:
    """Validate an input raster [batch, steps, n_in]; return it as int32."""
    r = np.asarray(raster)
    if r.ndim != 3 or r.shape[2] != net.n_in:
        raise ValueError(f"raster: shape {r.shape} must be [batch, steps, n_in={net.n_in}]")
    if r.dtype != bool and not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"raster: dtype {r.dtype} must be bool or an integer type (uint8 for spikes)")
    hi = 1 if net.input_message_bits == 0 else (1 << net.input_message_bits) - 1
    what = "binary spikes" if net.input_message_bits == 0 else f"{net.input_message_bits}-bit graded payloads"
    if r.size:
        chip.check_range("raster", f"value ({what})", r, 0, hi)
    return r.astype(np.int32)


def pack(net: IntNetwork) -> dict:
    """The network as flat arrays for the compiled kernel (weights transposed to rows)."""
    sizes = np.array(net.sizes, np.int64)
    n_off = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)
    chunks, w_off, r_off, pos = [], [], [], 0
    for layer in net.layers:
        w_off.append(pos)
        chunks.append(layer.weights.T.ravel())
        pos += layer.weights.size
        if layer.recurrent:
            r_off.append(pos)
            chunks.append(layer.rec_weights.T.ravel())
            pos += layer.rec_weights.size
        else:
            r_off.append(-1)
    L = net.layers
    arr = lambda f: np.array([f(layer) for layer in L], np.int64)  # noqa: E731
    return dict(
        sizes=sizes, n_off=n_off, w=np.concatenate(chunks).astype(np.int16),
        w_off=np.array(w_off, np.int64), w_exp=arr(lambda x: x.weight_exp),
        r_off=np.array(r_off, np.int64), r_exp=arr(lambda x: x.rec_weight_exp),
        du=arr(lambda x: x.du), dv=arr(lambda x: x.dv), vth_eff=arr(lambda x: x.vth << chip.VTH_SHIFT),
        bias=np.concatenate([x.bias for x in L]).astype(np.int64),
        nz_kind=arr(lambda x: chip.NOISE_INJECT.index(x.noise.inject)),
        nz_dist=arr(lambda x: chip.NOISE_DIST.index(x.noise.dist)),
        nz_mant=arr(lambda x: x.noise.mant), nz_exp=arr(lambda x: x.noise.exp),
        nz_seed=arr(lambda x: x.noise.seed), tables=NOISE_TABLES)


def split_layers(net: IntNetwork, flat: np.ndarray) -> list[np.ndarray]:
    """[batch, steps, sum(n)] -> one contiguous [batch, steps, n] array per layer."""
    edges = np.cumsum([0] + [layer.n_out for layer in net.layers])
    return [np.ascontiguousarray(flat[:, :, a:b]) for a, b in zip(edges[:-1], edges[1:])]


def run(net: IntNetwork, raster, probes: bool = False, sample_ids=None) -> RunResult:
    """Run a batch of rasters [batch, steps, n_in]; spikes (and u, v with probes) per layer.

    sample_ids: the sample index each row is given in the noise hash (default 0..batch-1),
    so a sample draws the same noise wherever it sits in a batch."""
    r = check_raster(net, raster)
    B, T, _ = r.shape
    ids = np.arange(B, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64)
    if ids.shape != (B,):
        raise ValueError(f"sample_ids: shape {ids.shape}, expected ({B},)")
    if any(layer.kind != "dense" for layer in net.layers):
        return _run_layers(net, r, ids, probes)
    p = pack(net)
    N = int(p["n_off"][-1])
    out_s = np.zeros((B, T, N), np.uint8)
    shape_uv = (B, T, N) if probes else (1, 1, 1)
    out_u = np.zeros(shape_uv, np.int32)
    out_v = np.zeros(shape_uv, np.int32)
    run_batch(r, net.input_message_bits > 0, ids, p["sizes"], p["n_off"], p["w"], p["w_off"], p["w_exp"],
              p["r_off"], p["r_exp"], p["du"], p["dv"], p["vth_eff"], p["bias"], p["nz_kind"], p["nz_dist"],
              p["nz_mant"], p["nz_exp"], p["nz_seed"], p["tables"], probes, out_s, out_u, out_v)
    if not probes:
        return RunResult(spikes=split_layers(net, out_s))
    return RunResult(spikes=split_layers(net, out_s), u=split_layers(net, out_u), v=split_layers(net, out_v))


def _run_layers(net: IntNetwork, r: np.ndarray, ids: np.ndarray, probes: bool) -> RunResult:
    """Layer by layer over the whole block, each projection as event rows (conv, delay, dense;
    neurohw.emu.synapses): the path for networks with conv, pool or delay layers."""
    from .synapses import run_layer
    graded = net.input_message_bits > 0
    x = r if graded else (r != 0).astype(np.uint8)
    spikes, us, vs = [], [], []
    for i, layer in enumerate(net.layers):
        s, u, v, _, _ = run_layer(layer, i, x, graded and i == 0, ids, probes)
        spikes.append(s)
        us.append(u)
        vs.append(v)
        x = s
    return RunResult(spikes=spikes, u=us, v=vs) if probes else RunResult(spikes=spikes)
