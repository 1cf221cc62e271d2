"""lava-dl netx HDF5, in and out: the format that reaches Loihi 2 through Lava.

The mapping (lava-dl 0.6.0, ``lava/lib/dl/netx/{hdf5,utils}.py``, ``blocks/process.py``;
docs/interop.md has the tables):

* ``layer/0`` is of type ``input`` holding only ``shape`` (no neuron: netx then builds no
  input process and the first block reads the network's input port): ``[n_in]``, or
  ``(C, H, W)`` when the first layer is a conv / pool (netx reverses it to its (W, H, C) ports);
* a Dense layer is a block ``dense`` (``dense_rec`` with a recurrent Dense; ``delay`` adds
  per-synapse delays, Lava's DelayDense); a Conv2d layer a block ``conv`` (weight
  ``(C_out, C_in/groups, kh, kw)``, stride / padding / dilation as (height, width), groups);
  a sum-pool is written as the conv it is on the chip (groups = C, weights w * ones): netx
  cannot load ``pool`` blocks at all; a Dense after a conv / pool map is preceded by a
  ``flatten`` block and its weight columns are in netx's flatten order (torch's (C, H, W));
* neuron ``CUBA``: ``vThMant`` = vth, ``iDecay`` = du + 1 (netx passes du = iDecay - 1 to Lava),
  ``vDecay`` = dv; netx fixes bias_exp = 6, so the file's ``bias`` is our effective bias / 64
  (a conv block's per channel when it is the same at every position, else per neuron in netx's
  (W, H, C) layout);
* a dense ``weight`` is the layer's exact integer weight W with W @ s = our Dense output:
  w << weight_exp. netx re-derives num_weight_bits and weight_exp from W
  (``optimize_weight_bits``), which keeps W @ s exact when W fits its rules; we run that very
  function to check, and refuse otherwise. A conv ``weight`` goes to Lava's Conv unchanged
  (no optimizer, no clip: our representable weights, weight_exp 0).

A memoryless layer (du = 4095, dv = 4096) that is not netx-native (a bias off the 64 grid, or
weight_exp != 0) is *remapped* exactly for its spikes: it spikes iff its input sum X exceeds a
per-neuron integer T (checked: no u wrap over X's whole range), which netx expresses with the
weights at weight_exp 0, one vth and per-neuron biases on the 64 grid. Its u and v then differ
from ours; a readout read through v (the last layer with vth out of reach) is never remapped.

What netx cannot express is refused with a NetxError naming the layer and the feature: on-chip
noise, weights netx's optimizer would clip or zero, a weight_exp < 0 that discards bits, a bias
off the 64 grid (or whose mantissa at exponent 6 leaves 13 bits), a conv after a flat layer, a
recurrent conv layer, and a netx start-up that would differ from neurohw's at-rest layers
(`early_spikes`: a bias-driven spike that reaches a recurrent or delayed synapse after the reset).
Our own choices (weight_exp, num_weight_bits, bias_exp, the network's input_message_bits) ride
along as HDF5 attributes, which netx ignores, so that neurohw -> netx -> neurohw is the identity.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import chip
from .._io import atomic_path
from ..network import Conv2d, IntLayer, IntNetwork, RunResult

NETX_BIAS_EXP = 6
NETX_MAX_DELAY = 62          # netx clips delays to [0, 62] (hdf5.py create_dense)
MEMORYLESS = (chip.DU_RANGE[1], chip.DV_RANGE[1])   # du = 4095, dv = 4096: u and v forget each step


class NetxError(ValueError):
    """A network or file that netx and neurohw cannot exchange exactly; the message says where."""


def _optimize(weight: np.ndarray):
    """lava-dl's own optimize_weight_bits, quiet (it prints its clipping warnings)."""
    import neurohw  # noqa: F401  (lava import hooks)
    from lava.lib.dl.netx.utils import optimize_weight_bits
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        try:
            w, nwb, wexp, _ = optimize_weight_bits(np.asarray(weight))
        except (OverflowError, ValueError):
            return None
    return np.asarray(w, np.int64), int(nwb), int(wexp)


def netx_effective(weight: np.ndarray) -> np.ndarray | None:
    """The exact weight netx's Dense applies to a file weight W (float64, exact for these
    sizes), or None if netx cannot load W (all zero: its optimizer divides by the maximum).

    netx passes W << sb with num_weight_bits nwb and weight_exp -sb to Lava's Dense, which
    clips and truncates by sign mode; the Dense's output is (w_lava @ s) * 2**weight_exp."""
    opt = _optimize(weight)
    if opt is None:
        return None
    w, nwb, wexp = opt
    if not 1 <= nwb <= 16 or not -16 <= wexp <= 16:
        return None
    w_lava = _lava_dense_weights(w, nwb)
    return w_lava.astype(np.float64) * 2.0 ** wexp


def _lava_dense_weights(w: np.ndarray, nwb: int) -> np.ndarray:
    """Lava's own clip + truncate (lava.utils.weightutils), as its bit-accurate Dense applies them."""
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
    mode = determine_sign_mode(w)
    return truncate_weights(clip_weights(w, mode, num_bits=8), mode, nwb).astype(np.int64)


# ================================================================================================
# layouts: neurohw's maps are (H, W, C) in C order; netx's ports are (x, y, c) = (W, H, C), its
# files (C, H, W) as torch / slayer write them, and its flatten reads a map in (C, H, W) order
# ================================================================================================
def flatten_order(shape) -> np.ndarray:
    """p with netx_flat[j] = ours[p[j]] for an (H, W, C) map: netx's flatten transposes its
    (W, H, C) port to (C, H, W) before flattening (torch's order); ours is (H, W, C)."""
    H, W, C = shape
    return np.arange(H * W * C).reshape(H, W, C).transpose(2, 0, 1).reshape(-1)


def to_port(x: np.ndarray, shape) -> np.ndarray:
    """[..., H*W*C] in neurohw's order -> [..., W, H, C], netx's (x, y, c) port."""
    H, W, C = shape
    x = np.asarray(x)
    return np.swapaxes(x.reshape(x.shape[:-1] + (H, W, C)), -3, -2)


def from_port(x: np.ndarray, shape) -> np.ndarray:
    """[..., W*H*C], netx's (W, H, C) port flattened in C order, of an (H, W, C) map -> [..., H*W*C], ours."""
    H, W, C = shape
    x = np.asarray(x)
    x = x.reshape(x.shape[:-1] + (W, H, C))
    return np.swapaxes(x, -3, -2).reshape(x.shape[:-3] + (H * W * C,))


# ================================================================================================
# export
# ================================================================================================
def _file_weight(where: str, name: str, w: np.ndarray, e: int) -> np.ndarray:
    w = np.asarray(w, np.int64)
    if e >= 0:
        return w << e
    if np.any(w % (1 << -e)):
        raise NetxError(f"{where}: {name}: weight_exp = {e} with weights that are not multiples of {1 << -e} "
                        f"cannot be expressed in netx (its Dense keeps W @ s exact, ours floors (w @ s) >> {-e}); "
                        f"requantize with weight_exp >= 0")
    return w >> -e


def _check_exact(where: str, what: str, W: np.ndarray) -> None:
    if not np.any(W):
        raise NetxError(f"{where}: {what} are all zero; netx's optimize_weight_bits cannot load that "
                        f"(it divides by the largest weight)")
    eff = netx_effective(W)
    if eff is None or not np.array_equal(eff, W.astype(np.float64)):
        bad = np.argwhere(eff != W) if eff is not None else np.argwhere(W == W)
        i = tuple(int(x) for x in bad[0])
        raise NetxError(f"{where}: {what}: netx's optimize_weight_bits and Lava's Dense would change weight {i} "
                        f"= {int(W[i])} (netx has no weight exponent > 0: its weights w << weight_exp must lie in "
                        f"[-256, 254] for mixed signs, within 255 of zero for one sign)")


def _file_bias(where: str, layer: IntLayer) -> np.ndarray:
    eff = layer.bias
    bad = np.flatnonzero(eff % (1 << NETX_BIAS_EXP))
    if bad.size:
        i = int(bad[0])
        raise NetxError(f"{where}: bias of neuron {i} = {int(eff[i])} (bias_mant {int(layer.bias_mant[i])}, "
                        f"bias_exp {int(layer.bias_exp[i])}) is not a multiple of 64; netx fixes bias_exp = 6")
    b = eff >> NETX_BIAS_EXP
    lo, hi = chip.BIAS_MANT_RANGE
    bad = np.flatnonzero((b < lo) | (b > hi))
    if bad.size:
        i = int(bad[0])
        raise NetxError(f"{where}: bias of neuron {i} = {int(eff[i])} needs bias_mant {int(b[i])} at netx's "
                        f"bias_exp 6, outside the chip's [{lo}, {hi}]")
    return b


def _native(where: str, layer: IntLayer) -> dict:
    """The file's arrays of a layer netx expresses as it is (NetxError otherwise)."""
    if layer.kind in ("conv", "pool"):
        return dict(W=np.asarray(layer.weights, np.int64), bias=_file_bias(where, layer))
    W = _file_weight(where, "weights", layer.weights, layer.weight_exp)
    d = dict(W=W, bias=_file_bias(where, layer))
    if layer.recurrent:
        R = _file_weight(where, "rec_weights", layer.rec_weights, layer.rec_weight_exp)
        # netx optimizes the input and the recurrent weights together (one hstack)
        _check_exact(where, "weights and rec_weights", np.hstack([W, R]))
        d["R"] = R
    else:
        _check_exact(where, "weights", W)
    return d


def _sum_range(layer: IntLayer, payload: int) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the least and greatest input sum X = sum of weights x payloads one step can
    bring (a DelayDense synapse delivers at most once per step; a conv neuron is bounded by its
    whole kernel)."""
    w = np.asarray(layer.weights, np.int64)
    if layer.conv is not None:
        lo = np.minimum(w, 0).reshape(w.shape[0], -1).sum(1)
        hi = np.maximum(w, 0).reshape(w.shape[0], -1).sum(1)
        reps = layer.n_out // w.shape[0]
        return np.tile(lo, reps) * payload, np.tile(hi, reps) * payload     # (h, w, c) order: c fastest
    return np.minimum(w, 0).sum(1) * payload, np.maximum(w, 0).sum(1) * payload


def _message(layer: IntLayer, X: np.ndarray, graded: bool) -> np.ndarray:
    """Our projection's message for an input sum X (exact where X's range was checked)."""
    if layer.conv is not None:
        return X
    e = layer.weight_exp
    X = chip.wrap32.py_func(X) if graded else X
    return X << e if e >= 0 else X >> -e


def _remap_memoryless(where: str, layer: IntLayer, graded_bits: int) -> IntLayer:
    """The netx-native IntLayer that spikes exactly when a memoryless `layer` does.

    u = a << 6 and v = u + bias each step (nothing is remembered), so with no u wrap over the
    reachable input sums X, a neuron spikes iff a(X) * 64 + bias > vth * 64, i.e. iff X > T for
    an integer T; netx's layer at weight_exp 0 spikes iff X > vth' - b'. vth' is one per layer,
    b' per neuron in the chip's 13 bits (at netx's bias_exp 6)."""
    if layer.recurrent:
        raise NetxError(f"{where}: a recurrent layer cannot be remapped")
    if layer.kind == "delay" and layer.weight_exp < 0:
        raise NetxError(f"{where}: a DelayDense with weight_exp < 0 rounds each delay slot on its own "
                        f"(no single threshold on the input sum)")
    payload = (1 << graded_bits) - 1 if graded_bits else 1
    xlo, xhi = _sum_range(layer, payload)
    alo, ahi = _message(layer, xlo, bool(graded_bits)), _message(layer, xhi, bool(graded_bits))
    top = np.maximum(np.abs(alo), np.abs(ahi)) << chip.ACT_SHIFT
    bad = np.flatnonzero((top >= chip.UV_HALF) | (np.maximum(-xlo, xhi) >= 1 << 31))
    if bad.size:
        i = int(bad[0])
        raise NetxError(f"{where}: neuron {i}'s u can wrap (input sums {int(xlo[i])}..{int(xhi[i])} at weight_exp "
                        f"{layer.weight_exp}), so its spikes are no threshold on the input sum")
    # a(X) <= A  <=>  X <= T, with A = floor((vth << 6) - bias) >> 6)
    A = ((layer.vth << chip.VTH_SHIFT) - layer.bias) >> chip.ACT_SHIFT
    e = 0 if layer.conv is not None else layer.weight_exp
    T = A >> e if e >= 0 else ((A + 1) << -e) - 1
    # the thresholds that act the same on [xlo, xhi]: T itself, any T >= xhi (never), any T < xlo (always)
    lo = np.where(T >= xhi, xhi, np.where(T < xlo, -(1 << 40), T))
    hi = np.where(T >= xhi, 1 << 40, np.where(T < xlo, xlo - 1, T))
    blo, bhi = chip.BIAS_MANT_RANGE
    vmin = max(chip.VTH_RANGE[0], int((lo + blo).max()))
    vmax = min(chip.VTH_RANGE[1], int((hi + bhi).min()))
    if vmin > vmax or np.any(np.abs(xlo) > (chip.UV_HALF >> chip.ACT_SHIFT) - 1) \
            or np.any(np.abs(xhi) > (chip.UV_HALF >> chip.ACT_SHIFT) - 1):
        raise NetxError(f"{where}: its thresholds on the input sum ({int(T.min())}..{int(T.max())}) do not fit one "
                        f"netx vth with 13-bit biases")
    vth = vmin
    b = vth - np.clip(vth, lo, hi)
    out = replace(layer, weight_exp=0, vth=int(vth), bias_mant=b.astype(np.int16),
                  bias_exp=np.full(layer.n_out, NETX_BIAS_EXP, np.int8))
    out.validate(where, layer.n_in, None, graded_bits)
    # check at every neuron's edges: the same spikes for X in {xlo, T, T + 1, xhi}
    for X in (xlo, np.clip(T, xlo, xhi), np.clip(T + 1, xlo, xhi), xhi):
        for L, a in ((layer, _message(layer, X, bool(graded_bits))), (out, X)):
            s = [chip.lif_update(0, 0, int(ai), L.du, L.dv, L.vth << chip.VTH_SHIFT, int(bi), 0, 0, 0)[2]
                 for ai, bi in zip(a, L.bias)]
            if L is layer:
                want = np.array(s)
            elif not np.array_equal(want, np.array(s)):
                raise NetxError(f"{where}: the remapped memoryless layer would spike differently")  # not expected
    return out


def _is_readout(net: IntNetwork, k: int) -> bool:
    return k == len(net.layers) - 1 and net.layers[k].vth == chip.VTH_RANGE[1]


def netx_form(net: IntNetwork) -> tuple[IntNetwork, list[int]]:
    """(the IntNetwork the netx file holds, the layers remapped): `net` itself where netx
    expresses every layer natively, memoryless layers remapped for identical spikes otherwise.
    NetxError names the first layer and feature netx cannot express."""
    layers, remapped = [], []
    for k, layer in enumerate(net.layers):
        where = f"layer {k}"
        if layer.noise.on:
            raise NetxError(f"{where}: on-chip noise (inject = {layer.noise.inject!r}) has no netx equivalent")
        try:
            _native(where, layer)
            layers.append(layer)
            continue
        except NetxError as err:
            if (layer.du, layer.dv) != MEMORYLESS or layer.recurrent:
                raise
            if _is_readout(net, k):
                raise NetxError(f"{err} (a memoryless layer is remapped for identical spikes, but this one is the "
                                f"readout, read through its v, which the remap would change)") from None
            try:
                layers.append(_remap_memoryless(where, layer, net.input_message_bits if k == 0 else 0))
                remapped.append(k)
            except NetxError as why:
                raise NetxError(f"{err} (memoryless remap: {str(why).removeprefix(where + ': ')})") from None
    out = IntNetwork(n_in=net.n_in, layers=layers, input_message_bits=net.input_message_bits, name=net.name)
    return out, remapped


def early_spikes(net: IntNetwork) -> list[np.ndarray]:
    """Per layer k, its spikes [k + 1, n] at netx's steps 1..k + 1, before its first reset.

    netx's neurons run from the first step; neurohw holds layer k at rest until then
    (docs/timing.md). The input reaches layer 0 only at its reset step, so these spikes are
    data-independent, driven by the biases alone (and by the earlier layers' own). They are
    harmless when they die at the resets; `check` refuses a network where one would not."""
    from ..parity import _projection
    out, prev = [], None
    for k, L in enumerate(net.layers):
        n, steps = L.n_out, k + 1
        proj = _projection(L, False) if k > 0 else None
        rec = _projection(L, False, rec=True) if L.recurrent else None
        u, v = np.zeros(n, np.int64), np.zeros(n, np.int64)
        s = np.zeros((steps, n), np.uint8)
        bias, vth = L.bias, L.vth << chip.VTH_SHIFT
        for t in range(steps):
            a = np.zeros(n, np.int64)
            if proj is not None:
                a += np.asarray(proj(prev[t - 1] if t else np.zeros(prev.shape[1], np.int64)), np.int64)
            if rec is not None:
                a += np.asarray(rec(s[t - 1] if t else np.zeros(n, np.int64)), np.int64)
            a = chip.wrap32.py_func(a)
            if not a.any() and not bias.any() and not u.any() and not v.any():
                continue
            for i in range(n):
                u[i], v[i], s[t, i], _ = chip.lif_update(int(u[i]), int(v[i]), int(a[i]), L.du, L.dv, vth,
                                                         int(bias[i]), 0, 0, 0)
        out.append(s)
        prev = s
    return out


def _check_start(net: IntNetwork) -> None:
    """Refuse a network whose bias-driven start-up in netx would reach a layer after its reset."""
    if not any(x.recurrent or x.delays is not None for x in net.layers) or not any(np.any(x.bias) for x in net.layers):
        return
    early = early_spikes(net)
    for k, layer in enumerate(net.layers):
        where = f"layer {k}"
        if layer.recurrent and early[k][k].any():
            i = int(np.flatnonzero(early[k][k])[0])
            raise NetxError(f"{where}: recurrent, and its bias makes neuron {i} spike at netx's step {k + 1}, the last "
                            f"before its first reset: netx's neurons run from the first step, so that spike would come "
                            f"back through the recurrent weights after the reset (neurohw holds the layer at rest, "
                            f"docs/timing.md)")
        if layer.delays is not None and k > 0:
            d, w = layer.delays.astype(np.int64), layer.weights
            for t in range(1, k + 1):                      # layer k-1's spike at step t arrives at t + 1 + d
                late = (w != 0) & (d >= k + 1 - t) & (early[k - 1][t - 1][None, :] != 0)
                if late.any():
                    i, j = (int(x) for x in np.argwhere(late)[0])
                    raise NetxError(f"{where}: delayed, and layer {k - 1}'s neuron {j} spikes from its bias at netx's "
                                    f"step {t}, before its first reset: through delay {int(d[i, j])} that spike would "
                                    f"reach neuron {i} after this layer's reset (neurohw holds layers at rest, "
                                    f"docs/timing.md)")


def check(net: IntNetwork) -> None:
    """Raise NetxError naming the first layer and feature netx cannot express exactly."""
    _blocks(net)


def _blocks(net: IntNetwork) -> tuple[IntNetwork, list[int], list[dict]]:
    """(netx form, remapped layers, the file's blocks after layer/0 as {type, datasets, attrs})."""
    form, remapped = netx_form(net)
    blocks, prev_map = [], None
    for k, layer in enumerate(form.layers):
        where = f"layer {k}"
        kind = layer.kind
        if kind == "delay":
            if layer.recurrent:
                raise NetxError(f"{where}: delays in a recurrent layer: netx's RecurrentDense applies one "
                                f"delay array to both its synapses")
            if layer.delays.max() > NETX_MAX_DELAY:
                raise NetxError(f"{where}: delay = {int(layer.delays.max())} exceeds netx's {NETX_MAX_DELAY} "
                                f"(it clips larger delays)")
        if kind in ("conv", "pool") and k > 0 and prev_map is None:
            raise NetxError(f"{where}: a {kind} layer after a flat (dense) layer: netx builds a conv block on the "
                            f"previous block's shape, and a dense block's is flat")
        if kind in ("conv", "pool") and layer.recurrent:
            raise NetxError(f"{where}: a recurrent {kind} layer: netx has no recurrent conv block")
        if layer.rec_delays is not None:
            raise NetxError(f"{where}: recurrent delays: netx's RecurrentDense has no delays of its own")
        d = _native(where, layer)
        ds = {"neuron/type": "CUBA", "neuron/iDecay": layer.du + chip.DU_OFFSET, "neuron/vDecay": layer.dv,
              "neuron/vThMant": layer.vth, "neuron/refDelay": 1, "neuron/gradedSpike": False}
        attrs = {f"neurohw_{key}": getattr(layer, key) for key in
                 ("weight_exp", "num_weight_bits", "rec_weight_exp", "rec_num_weight_bits")}
        attrs["neurohw_bias_exp"] = layer.bias_exp.astype(np.int64)
        if kind in ("conv", "pool"):
            c = layer.conv
            Ho, Wo, Co = layer.shape
            b = d["bias"].reshape(Ho, Wo, Co)
            ds.update(shape=np.array([Co, Ho, Wo]), weight=d["W"].transpose(0, 3, 1, 2).astype(np.float32),
                      stride=np.array(c.stride), padding=np.array(c.padding), dilation=np.array(c.dilation),
                      groups=np.int64(c.groups), inChannels=c.in_shape[2], outChannels=Co,
                      kernelSize=np.array(layer.weights.shape[1:3]))
            if np.any(b):
                chan = np.all(b == b[:1, :1, :], axis=(0, 1))
                ds["bias"] = (b[0, 0] if chan.all() else b.transpose(1, 0, 2)).astype(np.float32)
            attrs["neurohw_pool"] = int(c.pool)
            blocks.append(dict(type="conv", datasets=ds, attrs=attrs))
        else:
            W, delays = d["W"], layer.delays
            if prev_map is not None:                # netx's flatten reads the map in (C, H, W) order
                p = flatten_order(prev_map)
                W = W[:, p]
                delays = None if delays is None else delays[:, p]
                blocks.append(dict(type="flatten", datasets=dict(shape=np.array([layer.n_in, 1, 1])), attrs={}))
            ds.update(shape=np.array([layer.n_out]), inFeatures=layer.n_in, outFeatures=layer.n_out,
                      weight=W.astype(np.float32), bias=d["bias"].astype(np.float32))   # as slayer writes them
            if layer.recurrent:
                ds["weight_rec"] = d["R"].astype(np.float32)
            if delays is not None:
                ds["delay"] = delays.astype(np.float32)          # -> Lava DelayDense
            blocks.append(dict(type="dense_rec" if layer.recurrent else "dense", datasets=ds, attrs=attrs))
        prev_map = layer.shape if kind in ("conv", "pool") else None
    _check_start(form)
    return form, remapped, blocks


def export(net: IntNetwork, path) -> Path:
    """Write `net` as a netx HDF5 file (atomically); NetxError if netx cannot express it exactly.

    Load it in Lava with ``netx.hdf5.Network(path, input_message_bits=net.input_message_bits)``.
    Memoryless layers that netx cannot hold as they are are remapped for identical spikes
    (`netx_form`; their indices are the file's ``neurohw_remapped`` attribute)."""
    import h5py
    form, remapped, blocks = _blocks(net)
    first = form.layers[0]
    in_shape = first.conv.in_shape if first.conv is not None else None
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["neurohw_name"] = net.name
            f.attrs["neurohw_input_message_bits"] = net.input_message_bits
            f.attrs["neurohw_remapped"] = np.array(remapped, np.int64)
            g = f.create_group("layer")
            inp = g.create_group("0")
            inp.create_dataset("type", (1,), "S10", [b"input"])
            inp.create_dataset("shape", data=np.array([in_shape[2], in_shape[0], in_shape[1]] if in_shape
                                                      else [net.n_in]))
            for k, blk in enumerate(blocks):
                h = g.create_group(str(k + 1))
                h.create_dataset("type", (1,), "S10", [blk["type"].encode()])
                for key, val in blk["datasets"].items():
                    h.create_dataset(key, data=val)
                for key, val in blk["attrs"].items():
                    h.attrs[key] = val
    return path


def requantize(net: IntNetwork, x_calib, readout: bool | None = None) -> IntNetwork:
    """`net` quantized again for netx (neurohw.quant's target "netx": weight_exp 0, biases on the
    64 grid, no noise), from its exact float equivalent (quant.from_int_network), calibrated on
    x_calib [batch, steps, n_in]. readout: whether the last layer is a readout read through v
    (default: its vth is out of reach). For a bundle netx refuses only for its grids; a network
    trained for netx from the start is `quant.target: netx` in its config."""
    import torch

    from .. import quant
    for k, layer in enumerate(net.layers):
        if layer.noise.on:
            raise NetxError(f"layer {k}: on-chip noise (inject = {layer.noise.inject!r}) has no netx equivalent; "
                            f"requantizing would drop it and change the network")
    if readout is None:
        readout = _is_readout(net, len(net.layers) - 1)
    fl, _ = quant.from_int_network(net, readout=readout)
    with torch.no_grad():
        plans = quant.plan(fl, np.asarray(x_calib, np.float32), target="netx")
    return quant.to_int_network(fl, plans, name=f"{net.name or 'network'}_netx")


# ================================================================================================
# import
# ================================================================================================
def _decompose(where: str, name: str, eff: np.ndarray, hint_exp=None, hint_bits=None):
    """(w, weight_exp, num_weight_bits) with w * 2**weight_exp == eff exactly and w representable;
    the exporter's hints first (identity round trip), else the largest exponent that fits."""
    exps = ([int(hint_exp)] if hint_exp is not None else []) + list(range(chip.WEIGHT_EXP_RANGE[1],
                                                                          chip.WEIGHT_EXP_RANGE[0] - 1, -1))
    for e in exps:
        w = eff * 2.0 ** -e
        if not np.array_equal(w, np.round(w)) or np.abs(w).max() > 256:
            continue
        w = w.astype(np.int64)
        bits = [int(hint_bits)] if hint_bits is not None and e == hint_exp else []
        for nwb in bits + [chip.MAX_WEIGHT_BITS]:
            if 1 <= nwb <= chip.MAX_WEIGHT_BITS and np.array_equal(chip.lava_weights(w, nwb), w):
                return w.astype(np.int16), e, nwb
    raise NetxError(f"{where}: {name} cannot be written as 8-bit chip weights times 2**weight_exp, "
                    f"weight_exp in {list(chip.WEIGHT_EXP_RANGE)}")


def _bias(where: str, b: np.ndarray, hint_exp) -> tuple[np.ndarray, np.ndarray]:
    eff = np.asarray(b, np.int64) << NETX_BIAS_EXP
    lo, hi = chip.BIAS_MANT_RANGE
    mant, exp = np.zeros_like(eff), np.zeros_like(eff)
    for i, x in enumerate(eff):
        cands = ([int(hint_exp[i])] if hint_exp is not None else []) + list(range(chip.BIAS_EXP_RANGE[1], -1, -1))
        for e in cands:
            m = x >> e if e >= 0 else x << -e
            if lo <= m <= hi and chip.shift_exp.py_func(int(m), int(e)) == x:
                mant[i], exp[i] = m, e
                break
        else:
            raise NetxError(f"{where}: bias of neuron {i} = {int(b[i])} (x 64) does not fit the chip's "
                            f"13-bit bias_mant with bias_exp in {list(chip.BIAS_EXP_RANGE)}")
    return mant.astype(np.int16), exp.astype(np.int8)


def _scalar(g, key, default=None):
    if key not in g:
        return default
    v = np.asarray(g[key][()])
    return v.reshape(-1)[0].item() if v.size else default


def _pair_of(g, key, default):
    """A (height, width) geometry entry as the file holds it (netx: scalar, or (h, w) it reverses)."""
    if key not in g:
        return (default, default)
    v = np.asarray(g[key][()]).reshape(-1).astype(int)
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def _neuron(where: str, h) -> dict:
    if "neuron" not in h:
        raise NetxError(f"{where}: a block without a neuron is not supported")
    ntype = h["neuron/type"][()]
    ntype = ntype.decode() if isinstance(ntype, bytes) else str(ntype)
    if ntype not in ("CUBA", "LOIHI"):
        raise NetxError(f"{where}: neuron type {ntype!r} is not supported (CUBA/LOIHI only)")
    i_decay = int(_scalar(h, "neuron/iDecay"))
    if not 1 <= i_decay <= chip.DECAY_UNITY:
        raise NetxError(f"{where}: neuron/iDecay = {i_decay} is out of range; allowed [1, 4096] "
                        f"(netx passes du = iDecay - 1 to Lava)")
    return dict(du=i_decay - chip.DU_OFFSET, dv=int(_scalar(h, "neuron/vDecay")), vth=int(_scalar(h, "neuron/vThMant")))


def _conv_layer(where: str, h, kind: str, in_shape) -> IntLayer:
    """A netx conv block (or a slayer pool block, as the conv it is) as an IntLayer."""
    H, W, C = in_shape
    stride, padding, dilation = (_pair_of(h, "stride", 1), _pair_of(h, "padding", 0), _pair_of(h, "dilation", 1))
    if "weight/imag" in h:
        raise NetxError(f"{where}: complex weights are not supported")
    w = np.asarray(h["weight"][()]).astype(int)          # as netx reads it (float -> int truncates)
    if kind == "pool":                                    # slayer: one (1, 1, kh, kw) kernel for every channel
        k = w.reshape(w.shape[-2:]) if w.ndim >= 2 else w.reshape(1, 1)
        w = np.repeat(k[None, :, :, None], C, axis=0)
        groups = C
        if "stride" not in h:
            stride = k.shape
    else:
        w = w.reshape(w.shape[:4]).transpose(0, 2, 3, 1)    # (C_out, C_in/g, kh, kw[, 1]) -> ours
        groups = int(_scalar(h, "groups", 1))
    a = h.attrs
    pool = (bool(a.get("neurohw_pool", kind == "pool")) and np.all(w == w.flat[0]) and groups == C == w.shape[0]
            and tuple(stride) == tuple(w.shape[1:3]) and dilation == (1, 1))
    try:
        conv = Conv2d(in_shape=(H, W, C), stride=stride, padding=padding, dilation=dilation, groups=groups,
                      pool=bool(pool))
        probe = IntLayer(weights=w, du=0, dv=0, vth=0, conv=conv)
        shape = probe.shape
    except ValueError as err:
        raise NetxError(f"{where}: {err}") from None
    want = np.asarray(h["shape"][()]).reshape(-1).astype(int)
    if tuple(want) != (shape[2], shape[0], shape[1]):
        raise NetxError(f"{where}: shape {tuple(want)} (C, H, W) but its geometry on a {in_shape} (H, W, C) input "
                        f"gives {(shape[2], shape[0], shape[1])}" + (" (slayer pads odd maps on one side only; "
                                                                     "neurohw's padding is symmetric)"
                                                                     if kind == "pool" else ""))
    Ho, Wo, Co = shape
    b = np.zeros(Ho * Wo * Co, np.int64)
    if "bias" in h:
        bb = np.asarray(h["bias"][()]).astype(int)
        if bb.shape == (Wo, Ho, Co):
            b = bb.transpose(1, 0, 2).reshape(-1)
        elif bb.reshape(-1).shape == (Co,):
            b = np.tile(bb.reshape(-1), Ho * Wo)
        else:
            raise NetxError(f"{where}: bias of shape {bb.shape}; netx takes one per channel ({Co},) or one per "
                            f"neuron in its (W, H, C) = {(Wo, Ho, Co)} layout")
    mant, bexp = _bias(where, b, a.get("neurohw_bias_exp"))
    nwb = int(a.get("neurohw_num_weight_bits", chip.MAX_WEIGHT_BITS))
    rec = {k: int(a[f"neurohw_{k}"]) for k in ("rec_weight_exp", "rec_num_weight_bits") if f"neurohw_{k}" in a}
    try:
        return IntLayer(weights=w, num_weight_bits=nwb, **rec,
                        conv=conv, bias_mant=mant, bias_exp=bexp, **_neuron(where, h))
    except ValueError as err:
        raise NetxError(f"{where}: {err} (Lava's Conv would use such a weight unclipped; Loihi's 8-bit synapses "
                        f"could not hold it)") from None


def load(path, input_shape=None) -> IntNetwork:
    """Read a netx HDF5 file (lava-dl's export_hdf5, or ours) as an IntNetwork that computes
    exactly what netx builds in Lava; NetxError names any block or feature we cannot take.

    input_shape: netx's own parameter, (x, y, c) = (W, H, C), for a file whose first block is a
    conv without an ``input`` block giving its shape. A slayer ``pool`` block (which netx itself
    cannot load) is imported as the conv it is on the chip (groups = C, one kernel)."""
    import h5py
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "layer" not in f:
            raise NetxError(f"{path}: no 'layer' group; not a netx HDF5 file")
        g = f["layer"]
        bits = int(f.attrs.get("neurohw_input_message_bits", 0))
        name = str(f.attrs.get("neurohw_name", path.stem))
        n_in, layers, in_map = None, [], None
        if input_shape is not None:
            x, y, c = (int(v) for v in input_shape)
            in_map, n_in = (y, x, c), x * y * c
        cur_map, flatten = in_map, False             # the previous block's (H, W, C) map, if any
        for k in range(len(g)):
            h = g[str(k)]
            where = f"{path.name}: layer/{k}"
            kind = np.asarray(h["type"][()]).reshape(-1)[0]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind == "input":
                if "neuron" in h:
                    raise NetxError(f"{where}: an 'input' block with a neuron (slayer's Input) is not supported; "
                                    f"export the network without it (or load it in netx with skip_layers=1)")
                shape = np.asarray(h["shape"][()]).reshape(-1).astype(int)
                n_in = int(np.prod(shape))
                if shape.size == 3:                      # (C, H, W) -> ours (H, W, C)
                    in_map = cur_map = (int(shape[1]), int(shape[2]), int(shape[0]))
                continue
            if kind == "flatten":
                flatten = True
                continue
            if kind in ("conv", "pool"):
                if cur_map is None:
                    raise NetxError(f"{where}: a {kind} block needs an (H, W, C) input: an 'input' block with a "
                                    f"3-D shape or a conv / pool block before it (or load(..., input_shape=))")
                layer = _conv_layer(where, h, kind, cur_map)
                if n_in is None:
                    n_in = layer.n_in
                layers.append(layer)
                cur_map = layer.shape
                continue
            if kind not in ("dense", "dense_rec"):
                raise NetxError(f"{where}: block type {kind!r} is not supported (neurohw imports input, dense, "
                                f"dense_rec, conv, pool and flatten blocks; netx itself cannot load pool, convT, "
                                f"unpool, average, concat)")
            if cur_map is not None and layers and not flatten:
                raise NetxError(f"{where}: a dense block right after a conv block: netx connects the conv's "
                                f"(W, H, C) port to the dense block's flat one only through a 'flatten' block")
            perm = flatten_order(cur_map) if (cur_map is not None and layers) else None
            cur_map, flatten = None, False
            nrn = _neuron(where, h)
            rec, delays = {}, None
            if "delay" in h:
                if kind == "dense_rec":
                    raise NetxError(f"{where}: delays in a dense_rec block (netx applies one delay array to both "
                                    f"synapses) are not supported")
                delays = np.clip(np.asarray(h["delay"][()]), 0, NETX_MAX_DELAY).astype(np.int64)  # as netx reads it
            if "weight/imag" in h:
                raise NetxError(f"{where}: complex weights (dense_comp) are not supported")
            W = np.asarray(h["weight"][()]).astype(int)   # what netx reads
            n_out = int(np.prod(h["shape"][()]))
            W = W.reshape(n_out, -1)
            if n_in is None:
                n_in = W.shape[1]
            if delays is not None:              # netx's broadcasting: scalar, per output, or per input
                if delays.ndim == 0:
                    delays = np.full(W.shape, int(delays))
                elif delays.ndim == 1:
                    delays = (np.repeat(delays[:, None], W.shape[1], 1) if delays.size == W.shape[0]
                              else np.repeat(delays[None, :], W.shape[0], 0))
                delays = delays.reshape(W.shape)
            R = np.asarray(h["weight_rec"][()]).astype(int).reshape(n_out, -1) if kind == "dense_rec" else None
            both = np.hstack([W, R]) if R is not None else W
            eff = netx_effective(both)
            if eff is None:
                raise NetxError(f"{where}: all weights are zero; netx itself cannot load this block")
            a = h.attrs
            weff = eff[:, :W.shape[1]]
            if perm is not None:                 # netx's flatten order -> ours
                if weff.shape[1] != perm.size:
                    raise NetxError(f"{where}: {weff.shape[1]} inputs after a flatten of a {perm.size}-value map")
                inv = np.argsort(perm)
                weff = weff[:, inv]
                delays = None if delays is None else delays[:, inv]
            if delays is not None:
                rec["delays"] = delays
            w, e, nwb = _decompose(where, "weight", weff, a.get("neurohw_weight_exp"),
                                   a.get("neurohw_num_weight_bits"))
            rec.update({k: int(a[f"neurohw_{k}"]) for k in ("rec_weight_exp", "rec_num_weight_bits")
                        if f"neurohw_{k}" in a})   # unused without a recurrent Dense; kept for the identity
            if R is not None:
                rw, re, rnwb = _decompose(where, "weight_rec", eff[:, W.shape[1]:], a.get("neurohw_rec_weight_exp"),
                                          a.get("neurohw_rec_num_weight_bits"))
                rec = dict(rec_weights=rw, rec_weight_exp=re, rec_num_weight_bits=rnwb)
            b = np.asarray(h["bias"][()]).astype(int).reshape(-1) if "bias" in h else np.zeros(n_out, int)
            if b.size == 1 and n_out > 1:
                b = np.full(n_out, int(b[0]))
            mant, bexp = _bias(where, b, a.get("neurohw_bias_exp"))
            try:
                layers.append(IntLayer(weights=w, weight_exp=e, num_weight_bits=nwb, bias_mant=mant, bias_exp=bexp,
                                       **nrn, **rec))
            except ValueError as err:
                raise NetxError(f"{where}: {err}") from None
    if not layers:
        raise NetxError(f"{path}: no dense or conv layers")
    try:
        return IntNetwork(n_in=n_in, layers=layers, input_message_bits=bits, name=name)
    except ValueError as err:
        raise NetxError(f"{path}: {err}") from None


# ================================================================================================
# run through lava-dl's own loader in Lava
# ================================================================================================
def run(path, raster, input_message_bits: int = 0, input_shape=None) -> RunResult:
    """Run a netx file through ``lava.lib.dl.netx.hdf5.Network`` in Lava's fixed-point simulator.

    Same layout and time convention as neurohw.lava.run (docs/timing.md): samples back to back,
    netx's own per-layer reset (reset_interval = steps, reset_offset = 1). A recurrent block
    would carry the last spikes of a sample into the next one, so a file with one gives each
    sample its own netx Network, and so does one with delays (a delayed message would).
    Returns spikes, u and v of every block in neurohw's layout: a conv block's (x, y, c) =
    (W, H, C) neurons as our (H, W, C) map, the raster fed to a conv-first file likewise."""
    return run_many([(path, raster, input_message_bits, input_shape)])[0]




def _alone(path) -> bool:
    """Whether a file needs a Lava network per sample (a recurrent or delayed block)."""
    import h5py
    with h5py.File(path, "r") as f:
        g = f["layer"]
        return any("delay" in g[k] or np.asarray(g[k]["type"][()]).reshape(-1)[0] in (b"dense_rec", "dense_rec")
                   for k in g)


def run_many(items) -> list[RunResult]:
    """Several (path, raster, input_message_bits[, input_shape]) in ONE Lava run (one compile and
    start-up): the graphs are joined only by a zero-weight Dense from each source into a shared sink.
    input_shape: netx's (x, y, c) for a conv-first file without an input block."""
    import tempfile

    import neurohw  # noqa: F401  (lava import hooks)
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset

    from ..lava.record import RecLIFResetModel

    items = [tuple(it) + (None,) * (4 - len(it)) for it in items]
    parts = []                               # (item index, raster rows)
    for i, (path, raster, _, _) in enumerate(items):
        raster = np.asarray(raster)
        alone = _alone(path)
        rows = [slice(b, b + 1) for b in range(raster.shape[0])] if alone else [slice(0, raster.shape[0])]
        parts += [(i, raster[r]) for r in rows]
    steps = max(r.shape[0] * r.shape[1] for _, r in parts)
    hub = Sink(shape=(1,), buffer=1) if len(parts) > 1 else None
    tmp = tempfile.TemporaryDirectory(prefix="neurohw-netx-")
    built, nets = [], []
    for p, (i, r) in enumerate(parts):
        path, _, bits, shape = items[i]
        B, T, n_in = r.shape
        with np.errstate(divide="ignore"):      # netx's optimizer divides by a one-sign matrix's absent extreme
            net = netx.hdf5.Network(net_config=str(path), input_message_bits=bits, reset_interval=T, reset_offset=1,
                                    input_shape=None if shape is None else tuple(int(x) for x in shape))
        nets.append(net)
        port = tuple(net.inp.shape)
        flat = r.reshape(B * T, n_in)
        if len(port) == 3:                     # (W, H, C): our (H, W, C) raster transposed
            data = to_port(flat, (port[1], port[0], port[2]))
            data = np.moveaxis(data, 0, -1)
        else:
            data = flat.T
        full = np.zeros(data.shape[:-1] + (steps,), np.int32)
        full[..., :B * T] = data
        source = Source(data=full)
        source.s_out.connect(net.inp)
        files = []
        for l, block in enumerate(net.layers):
            files.append(Path(tmp.name) / f"part{p}_block{l}.npz")
            block.neuron.proc_params["record_path"] = str(files[-1])
            block.neuron.proc_params["record_steps"] = steps
        if hub is not None:
            join = Dense(weights=np.zeros((1, n_in), np.int32))
            (source.s_out.flatten() if len(port) == 3 else source.s_out).connect(join.s_in)
            join.a_out.connect(hub.a_in)
        built.append((i, r.shape, [tuple(b.neuron.u.shape) for b in net.layers], files))
    first = nets[0]
    out = [[] for _ in items]
    cfg = Loihi2SimCfg(select_tag="fixed_pt", select_sub_proc_model=True,
                       exception_proc_model_map={LIFReset: RecLIFResetModel})
    try:
        with tmp:
            try:
                first.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            finally:
                first.stop()
            for i, (B, T, _), shapes, files in built:
                layers = {k: [] for k in ("spikes", "u", "v")}
                for l, (shp, fpath) in enumerate(zip(shapes, files)):
                    with np.load(fpath) as z:
                        for key in layers:
                            o = z[key][:B * T]
                            if len(shp) == 3:       # (W, H, C) neurons -> our (H, W, C) order
                                o = from_port(o, (shp[1], shp[0], shp[2]))
                            o = o.reshape(B, T, -1).astype(np.uint8 if key == "spikes" else np.int32)
                            o[:, :l + 1] = 0            # at rest, as the emulator reports it
                            layers[key].append(o)
                out[i].append(layers)
    finally:
        for net in nets:
            net.net_config.f.close()
    return [RunResult(spikes=[np.concatenate([p["spikes"][l] for p in o]) for l in range(len(o[0]["spikes"]))],
                      u=[np.concatenate([p["u"][l] for p in o]) for l in range(len(o[0]["u"]))],
                      v=[np.concatenate([p["v"][l] for p in o]) for l in range(len(o[0]["v"]))])
            for o in out]
