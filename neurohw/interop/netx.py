"""lava-dl netx HDF5, in and out: the format that reaches Loihi 2 through Lava.

The mapping (lava-dl 0.6.0, ``lava/lib/dl/netx/hdf5.py``; docs/interop.md has the table):

* a layer is a group ``layer/<k>`` of type ``dense`` (``dense_rec`` with a recurrent Dense),
  preceded by ``layer/0`` of type ``input`` holding only ``shape`` (no neuron: netx then builds
  no input process and the first Dense reads the network's input port);
* neuron ``CUBA``: ``vThMant`` = vth, ``iDecay`` = du + 1 (netx passes du = iDecay - 1 to Lava),
  ``vDecay`` = dv; netx fixes bias_exp = 6, so the file's ``bias`` is our effective bias / 64;
* ``weight`` is the layer's exact integer weight W with W @ s = our Dense output: w << weight_exp.
  netx re-derives num_weight_bits and weight_exp from W (``optimize_weight_bits``), which keeps
  W @ s exact when W fits its rules; we run that very function to check, and refuse otherwise.

What netx cannot express is refused with a NetxError naming the layer and the feature: on-chip
noise, a weight_exp < 0 that discards bits, weights netx's optimizer would clip or zero, a bias
that is not a multiple of 64 (or whose mantissa at exponent 6 leaves 13 bits).
Our own choices (weight_exp, num_weight_bits, bias_exp, the network's input_message_bits) ride
along as HDF5 attributes, which netx ignores, so that neurohw -> netx -> neurohw is the identity.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from .. import chip
from .._io import atomic_path
from ..network import IntLayer, IntNetwork, RunResult

NETX_BIAS_EXP = 6
NETX_MAX_DELAY = 62          # netx clips delays to [0, 62] (hdf5.py create_dense)


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


def check(net: IntNetwork) -> None:
    """Raise NetxError naming the first layer and feature netx cannot express exactly."""
    _layers_for_file(net)


def _layers_for_file(net: IntNetwork) -> list[dict]:
    out = []
    for k, layer in enumerate(net.layers):
        where = f"layer {k}"
        kind = getattr(layer, "kind", "dense")       # conv / pool / delay projections (issue 11)
        if kind not in ("dense", "delay"):
            raise NetxError(f"{where}: a {kind} projection is not exported to netx yet (dense, delayed "
                            f"dense and recurrent dense layers are)")
        if kind == "delay":
            if layer.recurrent:
                raise NetxError(f"{where}: delays in a recurrent layer: netx's RecurrentDense applies one "
                                f"delay array to both its synapses")
            j = next((j for j, x in enumerate(net.layers[:k]) if np.any(x.bias)), None)
            if j is not None:
                raise NetxError(f"{where}: a delayed layer after a layer with bias (layer {j}): netx's neurons run "
                                f"from the first step, so a bias-driven spike before layer {j}'s first input would "
                                f"arrive through the delays after this layer's reset (neurohw holds layers at "
                                f"rest, docs/timing.md)")
            if layer.delays.max() > NETX_MAX_DELAY:
                raise NetxError(f"{where}: delay = {int(layer.delays.max())} exceeds netx's {NETX_MAX_DELAY} "
                                f"(it clips larger delays)")
        if layer.recurrent and any(np.any(x.bias) for x in net.layers[:k + 1]):
            j = next(j for j, x in enumerate(net.layers[:k + 1]) if np.any(x.bias))
            raise NetxError(f"{where}: a recurrent layer with bias in layer {j}: netx's neurons run from the first "
                            f"step, so a spike the bias causes before the layer's first input would come back "
                            f"through the recurrent weights after its reset (neurohw holds the layer at rest, "
                            f"docs/timing.md); a recurrent layer needs zero bias in it and every layer before it")
        if layer.noise.on:
            raise NetxError(f"{where}: on-chip noise (inject = {layer.noise.inject!r}) has no netx equivalent")
        W = _file_weight(where, "weights", layer.weights, layer.weight_exp)
        d = dict(W=W, bias=_file_bias(where, layer), layer=layer)
        if layer.recurrent:
            R = _file_weight(where, "rec_weights", layer.rec_weights, layer.rec_weight_exp)
            # netx optimizes the input and the recurrent weights together (one hstack)
            _check_exact(where, "weights and rec_weights", np.hstack([W, R]))
            d["R"] = R
        else:
            _check_exact(where, "weights", W)
        out.append(d)
    return out


def export(net: IntNetwork, path) -> Path:
    """Write `net` as a netx HDF5 file (atomically); NetxError if netx cannot express it exactly.

    Load it in Lava with ``netx.hdf5.Network(path, input_message_bits=net.input_message_bits)``."""
    import h5py
    layers = _layers_for_file(net)
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["neurohw_name"] = net.name
            f.attrs["neurohw_input_message_bits"] = net.input_message_bits
            g = f.create_group("layer")
            inp = g.create_group("0")
            inp.create_dataset("type", (1,), "S10", [b"input"])
            inp.create_dataset("shape", data=np.array([net.n_in]))
            for k, d in enumerate(layers):
                layer = d["layer"]
                h = g.create_group(str(k + 1))
                h.create_dataset("type", (1,), "S10", [b"dense_rec" if layer.recurrent else b"dense"])
                h.create_dataset("shape", data=np.array([layer.n_out]))
                h.create_dataset("inFeatures", data=layer.n_in)
                h.create_dataset("outFeatures", data=layer.n_out)
                h.create_dataset("weight", data=d["W"].astype(np.float32))   # as slayer writes it
                if layer.recurrent:
                    h.create_dataset("weight_rec", data=d["R"].astype(np.float32))
                if getattr(layer, "delays", None) is not None:
                    h.create_dataset("delay", data=layer.delays.astype(np.float32))   # -> Lava DelayDense
                h.create_dataset("bias", data=d["bias"].astype(np.float32))
                h.create_dataset("neuron/type", data="CUBA")
                h.create_dataset("neuron/iDecay", data=layer.du + chip.DU_OFFSET)
                h.create_dataset("neuron/vDecay", data=layer.dv)
                h.create_dataset("neuron/vThMant", data=layer.vth)
                h.create_dataset("neuron/refDelay", data=1)
                h.create_dataset("neuron/gradedSpike", data=False)
                for key in ("weight_exp", "num_weight_bits", "rec_weight_exp", "rec_num_weight_bits"):
                    h.attrs[f"neurohw_{key}"] = getattr(layer, key)
                h.attrs["neurohw_bias_exp"] = layer.bias_exp.astype(np.int64)
    return path


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


def load(path) -> IntNetwork:
    """Read a netx HDF5 file (lava-dl's export_hdf5, or ours) as an IntNetwork that computes
    exactly what netx builds in Lava; NetxError names any block or feature we cannot take."""
    import h5py
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "layer" not in f:
            raise NetxError(f"{path}: no 'layer' group; not a netx HDF5 file")
        g = f["layer"]
        bits = int(f.attrs.get("neurohw_input_message_bits", 0))
        name = str(f.attrs.get("neurohw_name", path.stem))
        n_in, layers = None, []
        for k in range(len(g)):
            h = g[str(k)]
            where = f"{path.name}: layer/{k}"
            kind = np.asarray(h["type"][()]).reshape(-1)[0]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind == "input":
                if "neuron" in h:
                    raise NetxError(f"{where}: an 'input' block with a neuron (slayer's Input) is not supported; "
                                    f"export the network without it (or load it in netx with skip_layers=1)")
                n_in = int(np.prod(h["shape"][()]))
                continue
            if kind == "flatten":
                continue   # a dense after flatten reads the flat index; without conv it is the identity
            if kind not in ("dense", "dense_rec"):
                raise NetxError(f"{where}: block type {kind!r} is not supported (neurohw imports dense and "
                                f"dense_rec blocks; netx itself cannot load pool, convT, unpool, average, concat)")
            if "neuron" not in h:
                raise NetxError(f"{where}: a dense block without a neuron is not supported")
            ntype = h["neuron/type"][()]
            ntype = ntype.decode() if isinstance(ntype, bytes) else str(ntype)
            if ntype not in ("CUBA", "LOIHI"):
                raise NetxError(f"{where}: neuron type {ntype!r} is not supported (CUBA/LOIHI only)")
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
                rec["delays"] = delays
            R = np.asarray(h["weight_rec"][()]).astype(int).reshape(n_out, -1) if kind == "dense_rec" else None
            both = np.hstack([W, R]) if R is not None else W
            eff = netx_effective(both)
            if eff is None:
                raise NetxError(f"{where}: all weights are zero; netx itself cannot load this block")
            a = h.attrs
            w, e, nwb = _decompose(where, "weight", eff[:, :W.shape[1]], a.get("neurohw_weight_exp"),
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
            i_decay = int(_scalar(h, "neuron/iDecay"))
            if not 1 <= i_decay <= chip.DECAY_UNITY:
                raise NetxError(f"{where}: neuron/iDecay = {i_decay} is out of range; allowed [1, 4096] "
                                f"(netx passes du = iDecay - 1 to Lava)")
            try:
                layers.append(IntLayer(weights=w, weight_exp=e, num_weight_bits=nwb, du=i_decay - chip.DU_OFFSET,
                                       dv=int(_scalar(h, "neuron/vDecay")), vth=int(_scalar(h, "neuron/vThMant")),
                                       bias_mant=mant, bias_exp=bexp, **rec))
            except ValueError as err:
                raise NetxError(f"{where}: {err}") from None
    if not layers:
        raise NetxError(f"{path}: no dense layers")
    return IntNetwork(n_in=n_in, layers=layers, input_message_bits=bits, name=name)


# ================================================================================================
# run through lava-dl's own loader in Lava
# ================================================================================================
def run(path, raster, input_message_bits: int = 0) -> RunResult:
    """Run a netx file through ``lava.lib.dl.netx.hdf5.Network`` in Lava's fixed-point simulator.

    Same layout and time convention as neurohw.lava.run (docs/timing.md): samples back to back,
    netx's own per-layer reset (reset_interval = steps, reset_offset = 1). A recurrent block
    would carry the last spikes of a sample into the next one, so a file with one gives each
    sample its own netx Network, and so does one with delays (a delayed message would too)."""
    return run_many([(path, raster, input_message_bits)])[0]


def run_many(items) -> list[RunResult]:
    """Several (path, raster, input_message_bits) in ONE Lava run (one compile and start-up):
    the graphs are joined only by a zero-weight Dense from each source into a shared sink."""
    import h5py

    import neurohw  # noqa: F401  (lava import hooks)
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    parts = []                               # (item index, raster rows, raster)
    for i, (path, raster, _) in enumerate(items):
        raster = np.asarray(raster)
        with h5py.File(path, "r") as f:
            g = f["layer"]
            alone = any("delay" in g[k] or np.asarray(g[k]["type"][()]).reshape(-1)[0] in (b"dense_rec", "dense_rec")
                        for k in g)
        rows = [slice(b, b + 1) for b in range(raster.shape[0])] if alone else [slice(0, raster.shape[0])]
        parts += [(i, raster[r]) for r in rows]
    steps = max(r.shape[0] * r.shape[1] for _, r in parts)
    hub = Sink(shape=(1,), buffer=1) if len(parts) > 1 else None
    built, nets = [], []
    for i, r in parts:
        path, _, bits = items[i]
        B, T, n_in = r.shape
        data = np.zeros((n_in, steps), np.int32)
        data[:, :B * T] = r.transpose(2, 0, 1).reshape(n_in, B * T)
        net = netx.hdf5.Network(net_config=str(path), input_message_bits=bits, reset_interval=T, reset_offset=1)
        source = Source(data=data)
        source.s_out.connect(net.inp)
        sinks = []
        for block in net.layers:
            sink = Sink(shape=block.out.shape, buffer=steps)
            block.out.connect(sink.a_in)
            sinks.append(sink)
        if hub is not None:
            join = Dense(weights=np.zeros((1, n_in), np.int32))
            source.s_out.connect(join.s_in)
            join.a_out.connect(hub.a_in)
        built.append((i, r.shape, source, sinks))
        nets.append(net)
    first = built[0][2]
    out = [[] for _ in items]
    try:
        first.run(condition=RunSteps(num_steps=steps),
                  run_cfg=Loihi2SimCfg(select_tag="fixed_pt", select_sub_proc_model=True))
        for i, (B, T, _), _, sinks in built:
            layers = []
            for l, s in enumerate(sinks):   # emulator layout: [B, T, n], zero while the layer is at rest
                o = s.data.get().T.astype(np.uint8)[:B * T].reshape(B, T, -1).copy()
                o[:, :l + 1] = 0
                layers.append(o)
            out[i].append(layers)
    finally:
        first.stop()
        for net in nets:
            net.net_config.f.close()
    return [RunResult(spikes=[np.concatenate([p[l] for p in o]) for l in range(len(o[0]))]) for o in out]
