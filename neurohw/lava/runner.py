"""Build and run a Lava process graph for an IntNetwork, a whole batch in one Lava run.

Samples are concatenated in one RingBuffer source, `steps` columns each. Layer l (one Dense
hop deeper per layer) sees sample k's first column at step index k*steps + l + 1, where
its state is reset in-graph (Lava's LIFReset with reset_offset = l + 2; ChipLIF likewise).
Results come back in the emulator's layout: sample k's index i is step k*steps + i, and
indices <= l, where a layer is at rest in the emulator, are zero (see docs/timing.md).
Noiseless feed-forward layers use Lava's own Dense and LIFReset; recurrent or noisy layers
use neurohw's ChipLIF, which also discards the recurrent input carried across samples.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .. import chip
from ..emu import check_raster
from ..network import IntNetwork, RunResult


def _dense(weights, weight_exp, num_weight_bits, num_message_bits=0):
    from lava.proc.dense.process import Dense
    return Dense(weights=np.asarray(weights, np.int32), weight_exp=int(weight_exp),
                 num_weight_bits=int(num_weight_bits), num_message_bits=int(num_message_bits))


def build(net: IntNetwork, raster: np.ndarray, sample_ids=None, use_lava_lif: bool = True, sinks: bool = True):
    """The process graph for a batch: (source, lifs, sinks). raster as in run().
    sinks=False leaves out the RingBuffer sinks (sinks is then empty; the LIFs record themselves)."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset

    from .procs.process import ChipLIF

    B, T, n_in = raster.shape
    ids = np.arange(B) if sample_ids is None else np.asarray(sample_ids)
    data = raster.transpose(2, 0, 1).reshape(n_in, B * T).astype(np.int32)
    source = Source(data=data)
    want_sinks, (prev_out, lifs, sinks) = sinks, (source.s_out, [], [])
    for l, layer in enumerate(net.layers):
        n = layer.n_out
        bits = net.input_message_bits if l == 0 else 0
        dense = _dense(layer.weights, layer.weight_exp, layer.num_weight_bits, bits)
        prev_out.connect(dense.s_in)
        if use_lava_lif and not layer.recurrent and not layer.noise.on:
            lif = LIFReset(shape=(n,), du=layer.du, dv=layer.dv, vth=layer.vth,
                           bias_mant=layer.bias_mant.astype(np.int32), bias_exp=layer.bias_exp.astype(np.int32),
                           reset_interval=T, reset_offset=l + 2)
        else:
            nz = layer.noise
            lif = ChipLIF(shape=(n,), du=layer.du, dv=layer.dv, vth=layer.vth,
                          bias_mant=layer.bias_mant, bias_exp=layer.bias_exp, layer=l, start=l + 1, interval=T,
                          sample_ids=ids,
                          noise=(chip.NOISE_INJECT.index(nz.inject), chip.NOISE_DIST.index(nz.dist),
                                 nz.mant, nz.exp, nz.seed))
            if layer.recurrent:
                rec = _dense(layer.rec_weights, layer.rec_weight_exp, layer.rec_num_weight_bits)
                lif.s_out.connect(rec.s_in)
                rec.a_out.connect(lif.a_rec)
        dense.a_out.connect(lif.a_in)
        if want_sinks:
            sink = Sink(shape=(n,), buffer=B * T)
            lif.s_out.connect(sink.a_in)
            sinks.append(sink)
        lifs.append(lif)
        prev_out = lif.s_out
    return source, lifs, sinks


def _to_batches(flat: np.ndarray, B: int, T: int, layer: int) -> np.ndarray:
    """[B*T, n] in Lava's global steps -> [B, T, n], zero where the layer is at rest."""
    out = flat.reshape(B, T, -1).copy()
    out[:, : layer + 1] = 0
    return out


RECORDS = ("process", "monitor")


def run(net: IntNetwork, raster, probes: bool = False, sample_ids=None, use_lava_lif: bool = True,
        record: str = "process") -> RunResult:
    """Run a batch [batch, steps, n_in] in one Lava run; same result type as emu.run.

    use_lava_lif=False puts ChipLIF in every layer (to check ChipLIF against Lava's LIF).
    record: how spikes, u and v come back. 'process' (fast): every LIF model records them itself
    and writes them once after the run (neurohw.lava.record; Lava's LIFReset arithmetic is
    unchanged). 'monitor': Lava's RingBuffer sinks for spikes and Monitor probes for u and v,
    Lava's own I/O path (~3x slower), kept to check the first against."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    if record not in RECORDS:
        raise ValueError(f"record: {record!r}, allowed {RECORDS}")
    r = check_raster(net, raster)
    B, T, _ = r.shape
    if sample_ids is not None and np.shape(sample_ids) != (B,):
        raise ValueError(f"sample_ids: shape {np.shape(sample_ids)}, expected ({B},)")
    source, lifs, sinks = build(net, r, sample_ids, use_lava_lif, sinks=record == "monitor")
    monitors, exceptions = [], {}
    tmp = tempfile.TemporaryDirectory(prefix="neurohw-lava-")
    paths = [Path(tmp.name) / f"layer{l}.npz" for l in range(len(lifs))]
    if record == "process":
        from .record import RecLIFResetModel
        exceptions = {LIFReset: RecLIFResetModel}
        for lif, path in zip(lifs, paths):
            lif.proc_params["record_path"] = str(path)
            lif.proc_params["record_steps"] = B * T
    elif probes:
        for lif in lifs:
            mu, mv = Monitor(), Monitor()
            mu.probe(lif.u, B * T)
            mv.probe(lif.v, B * T)
            monitors.append((mu, mv))
    cfg = Loihi2SimCfg(select_tag="fixed_pt", select_sub_proc_model=True, exception_proc_model_map=exceptions)
    u = v = None
    try:
        with tmp:
            source.run(condition=RunSteps(num_steps=B * T), run_cfg=cfg)
            if record == "process":
                missing = [f"layer {l} ({type(lif).__name__})" for l, (lif, p) in enumerate(zip(lifs, paths))
                           if not p.exists()]
                if missing:
                    raise RuntimeError(f"record='process': no recording from {', '.join(missing)}; its process "
                                       "model must call neurohw.lava.record.Recorder._record (or use record='monitor')")
                rec = [np.load(p) for p in paths]
                spikes = [_to_batches(z["spikes"], B, T, l) for l, z in enumerate(rec)]
                if probes:
                    u = [_to_batches(z["u"], B, T, l) for l, z in enumerate(rec)]
                    v = [_to_batches(z["v"], B, T, l) for l, z in enumerate(rec)]
            else:
                spikes = [(_to_batches(s.data.get().T.astype(np.uint8), B, T, l)) for l, s in enumerate(sinks)]
                if probes:
                    u, v = [], []
                    for l, (lif, (mu, mv)) in enumerate(zip(lifs, monitors)):
                        u.append(_to_batches(mu.get_data()[lif.name]["u"].astype(np.int32), B, T, l))
                        v.append(_to_batches(mv.get_data()[lif.name]["v"].astype(np.int32), B, T, l))
    finally:
        source.stop()
    return RunResult(spikes=spikes, u=u, v=v)
