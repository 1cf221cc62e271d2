"""Build and run a Lava process graph for an IntNetwork, a whole batch in one Lava run.

Samples are concatenated in one RingBuffer source, one window of `steps + gap` columns each
(gap = the network's largest delay; zero columns). Layer l (one projection hop deeper per
layer) sees sample k's first column at step index k*window + l + 1, where its state is reset
in-graph (Lava's LIFReset with reset_offset = l + 2; ChipLIF likewise). Results come back in
the emulator's layout: sample k's index i is step k*window + i, and indices <= l, where a
layer is at rest in the emulator, are zero (see docs/timing.md).

Projections are Lava's own Dense, DelayDense and Conv. Noiseless feed-forward layers use
Lava's LIFReset; recurrent or noisy layers, and layers whose spikes enter a DelayDense, use
neurohw's ChipLIF: it discards the recurrent input carried across samples and, in a
network with delays, stays silent in each window's last `gap` steps (beyond the emulator's
`steps`), so that no delayed spike of one sample reaches the next (DelayDense has no reset).
run_many puts several networks in one Lava run (one compile, one set of processes started).
"""
from __future__ import annotations

import numpy as np

from .. import chip
from ..emu import check_raster
from ..network import IntLayer, IntNetwork, RunResult


def _dense(weights, weight_exp, num_weight_bits, num_message_bits=0, delays=None):
    from lava.proc.dense.process import Dense, DelayDense
    kw = dict(weights=np.asarray(weights, np.int32), weight_exp=int(weight_exp),
              num_weight_bits=int(num_weight_bits), num_message_bits=int(num_message_bits))
    if delays is None:
        return Dense(**kw)
    # Lava wants dtype int (int64) delays; max_delay = 0 lets it take the largest given
    return DelayDense(delays=np.asarray(delays, np.int64), **kw)


def _projection(layer: IntLayer, prev_out, num_message_bits: int):
    """Lava's process for the layer's input projection, connected to prev_out; returns its a_out."""
    if layer.conv is None:
        proj = _dense(layer.weights, layer.weight_exp, layer.num_weight_bits, num_message_bits, layer.delays)
        prev_out.connect(proj.s_in)
        return proj.a_out
    from lava.proc.conv.process import Conv
    c = layer.conv
    # Lava's Conv is a true convolution: neurohw's cross-correlation kernel, flipped
    conv = Conv(weight=np.ascontiguousarray(layer.weights[:, ::-1, ::-1, :]).astype(np.int32),
                weight_exp=0, input_shape=c.in_shape, stride=c.stride, padding=c.padding, dilation=c.dilation,
                groups=c.groups, num_weight_bits=layer.num_weight_bits, num_message_bits=int(num_message_bits))
    prev_out.reshape(c.in_shape).connect(conv.s_in)
    return conv.a_out.flatten()


def window(net: IntNetwork, steps: int) -> int:
    """Steps a sample occupies in a Lava run: its own, then a quiet gap for delayed spikes."""
    return steps + net.max_delay


def build(net: IntNetwork, raster: np.ndarray, sample_ids=None, use_lava_lif: bool = True,
          run_steps: int | None = None):
    """The process graph for a batch: (source, lifs, sinks). raster as in run(); run_steps:
    the length of the Lava run, if longer than the batch (the sinks keep every step)."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset

    from .procs.process import ChipLIF

    B, T, n_in = raster.shape
    Tw = window(net, T)
    ids = np.arange(B) if sample_ids is None else np.asarray(sample_ids)
    data = np.zeros((n_in, B, Tw), np.int32)
    data[:, :, :T] = raster.transpose(2, 0, 1)
    source = Source(data=data.reshape(n_in, B * Tw))
    prev_out, lifs, sinks = source.s_out, [], []
    for l, layer in enumerate(net.layers):
        n = layer.n_out
        a_out = _projection(layer, prev_out, net.input_message_bits if l == 0 else 0)
        feeds_delay = l + 1 < len(net.layers) and net.layers[l + 1].max_delay > 0
        if use_lava_lif and not layer.recurrent and not layer.noise.on and not feeds_delay:
            lif = LIFReset(shape=(n,), du=layer.du, dv=layer.dv, vth=layer.vth,
                           bias_mant=layer.bias_mant.astype(np.int32), bias_exp=layer.bias_exp.astype(np.int32),
                           reset_interval=Tw, reset_offset=l + 2)
        else:
            nz = layer.noise
            lif = ChipLIF(shape=(n,), du=layer.du, dv=layer.dv, vth=layer.vth,
                          bias_mant=layer.bias_mant, bias_exp=layer.bias_exp, layer=l, start=l + 1, interval=Tw,
                          sample_ids=ids, quiet=T - (l + 1) if Tw > T else Tw,
                          noise=(chip.NOISE_INJECT.index(nz.inject), chip.NOISE_DIST.index(nz.dist),
                                 nz.mant, nz.exp, nz.seed))
            if layer.recurrent:
                rec = _dense(layer.rec_weights, layer.rec_weight_exp, layer.rec_num_weight_bits,
                             delays=layer.rec_delays)
                lif.s_out.connect(rec.s_in)
                rec.a_out.connect(lif.a_rec)
        a_out.connect(lif.a_in)
        sink = Sink(shape=(n,), buffer=max(B * Tw, run_steps or 0))
        lif.s_out.connect(sink.a_in)
        lifs.append(lif)
        sinks.append(sink)
        prev_out = lif.s_out
    return source, lifs, sinks


def _to_batches(flat: np.ndarray, B: int, T: int, Tw: int, layer: int) -> np.ndarray:
    """[>= B*Tw, n] in Lava's global steps -> [B, T, n], zero where the layer is at rest."""
    out = flat[: B * Tw].reshape(B, Tw, -1)[:, :T].copy()
    out[:, : layer + 1] = 0
    return out


def run(net: IntNetwork, raster, probes: bool = False, sample_ids=None, use_lava_lif: bool = True) -> RunResult:
    """Run a batch [batch, steps, n_in] in one Lava run; same result type as emu.run.

    use_lava_lif=False puts ChipLIF in every layer (to check ChipLIF against Lava's LIF)."""
    return run_many([net], [raster], probes, None if sample_ids is None else [sample_ids], use_lava_lif)[0]


def run_many(nets: list[IntNetwork], rasters: list, probes: bool = False, sample_ids=None,
             use_lava_lif: bool = True) -> list[RunResult]:
    """Several networks, each with its own batch, in ONE Lava run (one compile and start-up):
    the graphs are joined only by a zero-weight Dense from each source into a shared sink,
    which changes no value. Returns one RunResult per network."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.monitor.process import Monitor

    if len(nets) != len(rasters):
        raise ValueError(f"run_many: {len(nets)} networks but {len(rasters)} rasters")
    ids = [None] * len(nets) if sample_ids is None else list(sample_ids)
    checked = [check_raster(net, raster) for net, raster in zip(nets, rasters)]
    empty = [r.shape[0] * r.shape[1] == 0 for r in checked]
    if any(empty):                            # nothing to run for these: all zeros, no processes
        def zeros(net, r, dtype):
            return [np.zeros(r.shape[:2] + (layer.n_out,), dtype) for layer in net.layers]
        rest = iter(run_many([n for n, e in zip(nets, empty) if not e], [r for r, e in zip(checked, empty) if not e],
                             probes, [i for i, e in zip(ids, empty) if not e], use_lava_lif) if not all(empty) else [])
        return [RunResult(spikes=zeros(net, r, np.uint8), u=zeros(net, r, np.int32) if probes else None,
                          v=zeros(net, r, np.int32) if probes else None) if e else next(rest)
                for net, r, e in zip(nets, checked, empty)]
    steps = max(r.shape[0] * window(net, r.shape[1]) for net, r in zip(nets, checked))
    graphs, monitors = [], []
    hub = Sink(shape=(1,), buffer=1) if len(nets) > 1 else None
    for net, r, sid in zip(nets, checked, ids):
        if sid is not None and np.shape(sid) != (r.shape[0],):
            raise ValueError(f"sample_ids: shape {np.shape(sid)}, expected ({r.shape[0]},)")
        source, lifs, sinks = build(net, r, sid, use_lava_lif, steps)
        graphs.append((r.shape, (source, lifs, sinks)))
        if hub is not None:
            join = _dense(np.zeros((1, net.n_in), np.int32), 0, chip.MAX_WEIGHT_BITS)
            source.s_out.connect(join.s_in)
            join.a_out.connect(hub.a_in)
        mons = []
        if probes:
            for lif in lifs:
                mu, mv = Monitor(), Monitor()
                mu.probe(lif.u, steps)
                mv.probe(lif.v, steps)
                mons.append((mu, mv))
        monitors.append(mons)
    first = graphs[0][1][0]
    cfg = Loihi2SimCfg(select_tag="fixed_pt", select_sub_proc_model=True)
    out = []
    try:
        first.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        for net, ((B, T, _), (_, lifs, sinks)), mons in zip(nets, graphs, monitors):
            Tw = window(net, T)
            spikes = [_to_batches(s.data.get().T.astype(np.uint8), B, T, Tw, l) for l, s in enumerate(sinks)]
            u = v = None
            if probes:
                u, v = [], []
                for l, (lif, (mu, mv)) in enumerate(zip(lifs, mons)):
                    u.append(_to_batches(mu.get_data()[lif.name]["u"].astype(np.int32), B, T, Tw, l))
                    v.append(_to_batches(mv.get_data()[lif.name]["v"].astype(np.int32), B, T, Tw, l))
            out.append(RunResult(spikes=spikes, u=u, v=v))
    finally:
        first.stop()
    return out
