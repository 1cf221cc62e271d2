"""Energy and latency of a mapped network from SANA-FE (PyPI ``sanafe`` 2.2.9), driven by the
emulator's real spikes.

SANA-FE simulates a neuromorphic chip time step by time step from an architecture description;
its Loihi description (``sanafe/examples/loihi.yaml``: a mesh of 32 tiles x 4 cores, energies
and latencies from Davies et al. 2018) is the one used here. We hand it:

* our mapping (``neurohw.fit.partition``): every neuron on the core the partition gives it, the
  network inputs on cores of their own after the network's (Loihi's host inputs arrive over the
  mesh too);
* our synapses: an edge per synapse the chip stores (every weight of a dense-format core, the
  non-zero ones of a sparse-format core), processed by SANA-FE's dense or sparse synapse unit
  (SANA-FE picks the unit per target neuron: the format of the feedforward projection on its core);
* our spikes: SANA-FE's neuron models are not the chip's CUBA LIF, so each neuron *replays* the
  spike train the emulator produced (SANA-FE's ``input`` soma model, one unit per neuron since
  that model keeps a single spike train per unit). The replay unit carries the Loihi LIF's costs:
  access + update energy and latency every step (a Loihi compartment is updated every step
  whether it spikes or not) and the spike-out cost when it fires. The input model refuses
  non-zero current, so edges carry weight 0: weights change nothing in SANA-FE's energy or
  timing model, which charge per synaptic event.

SANA-FE then counts synaptic events, neuron updates, spikes, messages and mesh hops and schedules
each step (its "detailed" timing model), which gives the energy breakdown and the time per step.
The time breakdown is the busy time of each kind of unit (counts x SANA-FE's unit latencies, summed
over cores): the cores work in parallel, so the step itself is shorter than the sum.
The samples of the test set run back to back (no state to reset: the spikes are replayed).
"""
from __future__ import annotations

import contextlib
import importlib.resources as ir
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from .fit import FitResult
from .network import IntNetwork

SOURCE = ("SANA-FE 2.2.9 (Boyle et al., IEEE TCAD 2025), its Loihi architecture description "
          "(energies and latencies from Davies et al. 2018, IEEE Micro 38(1)), driven by the emulator's spikes "
          "on neurohw's core mapping")
CORES_PER_TILE = 4


def _arch_yaml(units: int, cores: int) -> dict:
    """SANA-FE's Loihi description with replay somas: `units` per core for neurons (LIF costs)
    and as many zero-cost ones for network inputs; only the tiles that `cores` cores need (the
    mesh keeps its 8 x 4 shape, so hop counts are the full chip's)."""
    d = yaml.safe_load((ir.files("sanafe.examples") / "loihi.yaml").read_text())
    tile = d["architecture"]["tile"][0]
    lo, hi = _range(tile["name"])
    if cores > (hi - lo) * CORES_PER_TILE:
        raise ValueError(f"energy: the mapping needs {cores} cores; SANA-FE's Loihi description has "
                         f"{(hi - lo) * CORES_PER_TILE}")
    tile["name"] = f"loihi_tile[0..{-(-cores // CORES_PER_TILE) - 1}]"
    core = tile["core"][0]
    lif = next(s for s in core["soma"] if s["name"] == "loihi_lif")["attributes"]
    replay = dict(model="input",
                  energy_access_neuron=lif["energy_access_neuron"] + lif["energy_update_neuron"],
                  latency_access_neuron=lif["latency_access_neuron"] + lif["latency_update_neuron"],
                  energy_update_neuron=0.0, latency_update_neuron=0.0,
                  energy_spike_out=lif["energy_spike_out"], latency_spike_out=lif["latency_spike_out"])
    host = dict(model="input", energy_access_neuron=0.0, latency_access_neuron=0.0, energy_update_neuron=0.0,
                latency_update_neuron=0.0, energy_spike_out=0.0, latency_spike_out=0.0)
    core["soma"] = [dict(name=f"neuron[0..{units - 1}]", attributes=replay),
                    dict(name=f"host[0..{units - 1}]", attributes=host)]
    return d


def costs() -> dict:
    """The per-event energies (J) and latencies (s) of SANA-FE's Loihi description that the
    breakdown uses (and the hand-count test checks)."""
    d = yaml.safe_load((ir.files("sanafe.examples") / "loihi.yaml").read_text())
    t = d["architecture"]["tile"][0]
    core = t["core"][0]
    lif = next(s for s in core["soma"] if s["name"] == "loihi_lif")["attributes"]
    syn = {s["name"]: s["attributes"] for s in core["synapse"]}
    ta = t["attributes"]
    return dict(update=lif["energy_access_neuron"] + lif["energy_update_neuron"], spike=lif["energy_spike_out"],
                dense_synapse=syn["loihi_dense_synapse"]["energy_process_spike"],
                sparse_synapse=syn["loihi_sparse_synapse"]["energy_process_spike"],
                conv_synapse=syn["loihi_conv_synapse"]["energy_process_spike"],
                message=core["axon_out"][0]["attributes"]["energy_message_out"],
                hop_east_west=ta["energy_east_hop"], hop_north_south=ta["energy_north_hop"],
                latency=dict(update=lif["latency_access_neuron"] + lif["latency_update_neuron"],
                             spike=lif["latency_spike_out"],
                             **{f"{k}_synapse": syn[f"loihi_{k}_synapse"]["latency_process_spike"]
                                for k in ("dense", "sparse", "conv")},
                             message=core["axon_out"][0]["attributes"]["latency_message_out"]
                             + core["axon_in"][0]["attributes"]["latency_message_in"],
                             hop_east_west=ta["latency_east_hop"], hop_north_south=ta["latency_north_hop"]))


def _conv_edges(layer):
    """(sources, targets) of a Conv2d / sum-pool projection: every non-zero kernel tap at every output."""
    cv = layer.conv
    H, W, C = cv.in_shape
    C_out, kh, kw, cg = layer.weights.shape
    Ho, Wo, _ = layer.shape
    (sh, sw), (ph, pw), (dh, dw) = cv.stride, cv.padding, cv.dilation
    co, i, j, ci = np.nonzero(layer.weights)
    ho, wo = np.arange(Ho)[:, None, None], np.arange(Wo)[None, :, None]
    h = ho * sh - ph + i[None, None] * dh
    w = wo * sw - pw + j[None, None] * dw
    cin = (co // (C_out // cv.groups)) * cg + ci
    ok = (h >= 0) & (h < H) & (w >= 0) & (w < W)
    hb, wb, tb = np.nonzero(ok)
    src = (h[hb, 0, tb] * W + w[0, wb, tb]) * C + cin[tb]
    tgt = (hb * Wo + wb) * C_out + co[tb]
    return src, tgt


def _edges(w: np.ndarray, first: np.ndarray, m: int, sparse: np.ndarray):
    """(sources, targets) of the stored synapses: all of a dense-format core, non-zeros of a sparse one."""
    n_out, n_src = w.shape
    core = np.arange(n_out) // m
    keep = (w != 0) | ~sparse[core][:, None]
    t, s = np.nonzero(keep)
    return s, t


def simulate(net: IntNetwork, fit: FitResult, x: np.ndarray, spikes: list[np.ndarray], threads: int = 1) -> dict:
    """Run SANA-FE on the mapped network replaying these spikes; energy per inference (J),
    time per step (s) and their breakdown. x: [B, T, n_in] input raster; spikes: per layer
    [B, T, n] (the emulator's)."""
    import sanafe

    B, T, _ = x.shape
    steps = B * T
    n_cores = fit.cores
    n_in_cores = -(-net.n_in // fit.profile.neurons_per_core)
    total_cores = n_cores + n_in_cores
    d = _arch_yaml(int(max(fit.core_neurons.max(), min(net.n_in, fit.profile.neurons_per_core))), total_cores)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arch.yaml"
        path.write_text(yaml.safe_dump(d, sort_keys=False))
        arch = sanafe.load_arch(str(path))
    cores = arch.cores()
    snn = sanafe.Network()

    def group(name, raster, core_idx, unit, synapse_hw=None):
        g = snn.create_neuron_group(name, raster.shape[2])
        flat = raster.reshape(steps, -1) != 0
        slot = np.zeros(raster.shape[2], int)
        for c in np.unique(core_idx):
            idx = np.flatnonzero(core_idx == c)
            slot[idx] = np.arange(idx.size)
        for j, nrn in enumerate(g.neurons):
            nrn.set_attributes(soma_hw_name=f"{unit}[{slot[j]}]", model_attributes={"spikes": flat[:, j].tolist()},
                               **({} if synapse_hw is None else {"default_synapse_hw_name": synapse_hw[j]}))
            nrn.map_to_core(cores[int(core_idx[j])])
        return g

    per_layer_core = fit.core_of()
    units = ("dense", "sparse", "conv")
    layer_hw = []
    groups = [group("input", x, n_cores + np.arange(net.n_in) // fit.profile.neurons_per_core, "host")]
    for i, layer in enumerate(net.layers):
        # SANA-FE picks the synapse unit per target neuron: the feedforward projection's format on its core
        lf = fit.layers[i]
        hw = np.where(lf.sparse[0][np.arange(layer.n_out) // lf.neurons_per_core], "loihi_sparse_synapse",
                      "loihi_dense_synapse")
        if getattr(layer, "conv", None) is not None:
            hw[:] = "loihi_conv_synapse"
        groups.append(group(f"layer{i}", spikes[i], per_layer_core[i], "neuron", hw.tolist()))
        layer_hw.append(np.array([units.index(h.split("_")[1]) for h in hw]))
    events = 0
    unit_events = np.zeros(len(units), np.int64)
    for i, layer in enumerate(net.layers):
        lf = fit.layers[i]
        first = fit.core_first[fit.core_layer == i]
        projs = [(layer.weights, groups[i], i - 1)] + ([(layer.rec_weights, groups[i + 1], i)] if layer.recurrent else [])
        for k, ((w, src, src_layer), sparse) in enumerate(zip(projs, lf.sparse)):
            if k == 0 and getattr(layer, "conv", None) is not None:
                s, t = _conv_edges(layer)
            else:
                s, t = _edges(w, first, lf.neurons_per_core, sparse)
            src.connect_neurons_sparse(groups[i + 1], {"weight": [0.0] * s.size}, list(zip(s.tolist(), t.tolist())))
            src_spikes = (x if src_layer < 0 else spikes[src_layer]).reshape(steps, -1) != 0
            per_edge = src_spikes.sum(0)[s]
            events += int(per_edge.sum())
            unit_events += np.bincount(layer_hw[i][t], weights=per_edge, minlength=len(units)).astype(np.int64)
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    t0 = time.perf_counter()
    with _quiet(not sys.stdout.isatty()):           # SANA-FE prints its progress to the C stdout
        r = chip.sim(steps, processing_threads=threads, perf_trace=True)
    wall = time.perf_counter() - t0
    e = r["energy"]
    c = costs()
    neurons = sum(layer.n_out for layer in net.layers)
    fired = int(sum(int((s != 0).sum()) for s in spikes))
    per_step = np.asarray(r["perf_trace"]["sim_time"])
    update_j = neurons * steps * c["update"]
    # hops by direction, from SANA-FE's network energy (messages and the two hop energies known)
    hops = float(np.sum(r["perf_trace"]["hops"]))
    hop_j = e["network"] - r["packets_sent"] * c["message"]
    ns = (hop_j - hops * c["hop_east_west"]) / (c["hop_north_south"] - c["hop_east_west"]) if hops else 0.0
    lat = c["latency"]
    busy = dict(synaptic_events=sum(int(n) * lat[f"{u}_synapse"] for n, u in zip(unit_events, units)) / steps,
                neuron_updates=neurons * lat["update"], spikes=fired * lat["spike"] / steps,
                network=(r["packets_sent"] * lat["message"] + ns * lat["hop_north_south"]
                         + (hops - ns) * lat["hop_east_west"]) / steps)
    return dict(
        source=SOURCE, chip=fit.profile.name, samples=B, steps_per_sample=T, cores=total_cores, wall_seconds=wall,
        energy_per_inference_J=e["total"] / B,
        breakdown_per_inference_J=dict(synaptic_events=e["synapse"] / B, neuron_updates=update_j / B,
                                       spikes=(e["soma"] - update_j) / B, network=e["network"] / B,
                                       dendrite=e["dendrite"] / B),
        counts_per_inference=dict(synaptic_events=events / B, neuron_updates=neurons * T, spikes=fired / B,
                                  messages=r["packets_sent"] / B, hops=float(np.sum(r["perf_trace"]["hops"])) / B),
        time_per_step_s=dict(mean=float(per_step.mean()), max=float(per_step.max()),
                             p50=float(np.median(per_step))),
        time_per_inference_s=float(r["sim_time"]) / B,
        # the units' busy time per step, summed over cores (counts x SANA-FE's unit latencies); its
        # schedule runs cores in parallel and adds a barrier, so a step takes time_per_step_s
        busy_time_per_step_s=busy,
        synaptic_events_by_unit={u: int(n) for u, n in zip(units, unit_events)},
        sanafe=dict(energy=dict(e), sim_time=float(r["sim_time"]), neurons_fired=int(r["neurons_fired"]),
                    packets_sent=int(r["packets_sent"]), spikes=int(r["spikes"])))


@contextlib.contextmanager
def _quiet(on: bool):
    if not on:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _range(name: str) -> tuple[int, int]:
    """'loihi_tile[0..31]' -> (0, 32)."""
    a, b = name[name.index("[") + 1:-1].split("..")
    return int(a), int(b) + 1
