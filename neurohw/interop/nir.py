"""NIR (Neuromorphic Intermediate Representation) in and out, with the discretization explicit.

NIR is continuous-time and stores no dt. neurohw's layer is the forward-Euler step of a NIR
CubaLIF at a time step dt, in the chip's order (u first, then v with the new u):

    u_t = (1 - a_u) u_{t-1} + W s                    a_u = dt / tau_syn = (du + 1) / 4096
    v_t = (1 - a_v) v_{t-1} + u_t + b                a_v = dt / tau_mem = dv / 4096
    spike where v_t > vth, then v_t = 0              (v_reset = 0)

so, for NIR's CubaLIF (tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = v_leak - v + r I):
u = a_v r I, the input scale a_u w_in a_v r multiplies W, and a_v v_leak is our bias. With
du = 4095 (a_u = 1) u is memoryless and the layer is a NIR LIF (v_t = (1 - a_v) v + a_v r (W s + b));
with dv = 0 as well, an IF (v_t = v + dt r (W s + b)). The readout (no spikes) is LI / CubaLI.

neurohw's Dense adds one step per layer (layer l answers input t at t + l + 1); NIR's edges
carry none, NIR simulators delay a recurrent edge by one step, as neurohw does. A feed-forward
neurohw raster is therefore a peer's raster shifted by l + 1 steps (compare with `align`).

Peers (measured, docs/interop.md): snnTorch writes Leaky as LIF with r = tau / dt at dt = 1e-4 and
reads LIF back with dt = 1e-4 hard-coded; Norse writes tau = dt / tau_mem_inv (a bug: we divide
by dt when told the file is Norse's) at dt = 1e-3 and reads LIF ignoring r (so `fold_r=True`
writes r = 1 with the scale folded into the weights, which both read correctly).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import chip
from ..network import IntNetwork
from ..train.model import LayerSpec, SpikingNet

DT = {"neurohw": 1e-4, "snntorch": 1e-4, "norse": 1e-3}   # each peer's default time step (seconds)
DECAY_TOL = 1e-6


class NirError(ValueError):
    """A NIR graph neurohw cannot take exactly (or a network NIR cannot hold); names the node."""


# ================================================================================================
# export
# ================================================================================================
def _f(x) -> np.ndarray:
    return np.asarray(x, np.float64)


def to_nir(net: SpikingNet, dt: float = DT["neurohw"], fold_r: bool = False):
    """A nir.NIRGraph of a float SpikingNet at time step dt (seconds).

    fold_r=False writes r = 1/a_v (snnTorch's form; weights unchanged, an exact round trip);
    fold_r=True writes r = 1 and folds 1/a_v into the weights (what Norse's reader needs)."""
    import nir
    if not dt > 0:
        raise NirError(f"dt = {dt!r} must be > 0 seconds")
    nodes = {"input": nir.Input(input_type={"input": np.array([net.n_in])})}
    edges, prev = [], "input"
    mods = net.modules_in_order
    for l, m in enumerate(mods):
        readout = m is net.readout
        w, rec, b, vth, du_f, dv_f, spiking = m.params()
        if spiking.stochastic and not readout:
            raise NirError(f"layer {l}: stochastic spiking has no NIR equivalent (NIR neurons are deterministic)")
        if m.spec.noise_current or m.spec.noise_voltage:
            raise NirError(f"layer {l}: additive noise has no NIR equivalent")
        W, B = _f(w.detach()), _f(b.detach())
        R = None if rec is None else _f(rec.detach())
        au, av, th = float(du_f), float(dv_f), float(vth)
        n = W.shape[0]
        full = lambda x: np.full(n, float(x))  # noqa: E731
        memoryless = abs(au - 1.0) < DECAY_TOL
        name = f"l{l}"
        if av == 0.0:
            if not memoryless or readout:
                raise NirError(f"layer {l}: dv = 0 (no membrane leak) is only expressible as a NIR IF "
                               f"(du = 4095, spiking); NIR's CubaLIF / LI need tau_mem < inf")
            scale = 1.0 / dt              # IF: v += dt r (W s + b)
            neuron = nir.IF(r=full(1.0 if fold_r else scale), v_threshold=full(th), v_reset=full(0.0))
        else:
            scale = 1.0 / av
            r = full(1.0 if fold_r else scale)
            tau = full(dt / av)
            if memoryless:
                neuron = (nir.LI(tau=tau, r=r, v_leak=full(0.0)) if readout else
                          nir.LIF(tau=tau, r=r, v_leak=full(0.0), v_threshold=full(th), v_reset=full(0.0)))
            else:                        # CubaLIF: the bias is v_leak, w_in = 1 / a_u
                kw = dict(tau_syn=full(dt / au), tau_mem=tau, r=r, v_leak=B * scale, w_in=full(1.0 / au))
                neuron = (nir.CubaLI(**kw) if readout else
                          nir.CubaLIF(v_threshold=full(th), v_reset=full(0.0), **kw))
        k = scale if fold_r else 1.0
        if memoryless:
            nodes[f"{name}.affine"] = nir.Affine(weight=W * k, bias=B * k)
        else:
            nodes[f"{name}.affine"] = nir.Linear(weight=W * k)
        nodes[f"{name}.lif"] = neuron
        edges += [(prev, f"{name}.affine"), (f"{name}.affine", f"{name}.lif")]
        if R is not None:
            nodes[f"{name}.w_rec"] = nir.Linear(weight=R * k)
            edges += [(f"{name}.lif", f"{name}.w_rec"), (f"{name}.w_rec", f"{name}.lif")]
        prev = f"{name}.lif"
    nodes["output"] = nir.Output(output_type={"output": np.array([mods[-1].spec.n_out])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def int_to_nir(inet: IntNetwork, dt: float = DT["neurohw"], fold_r: bool = False, readout: bool = False):
    """An IntNetwork as NIR: its exact float equivalent (neurohw.quant.from_int_network: weights
    w * 2**weight_exp / 64 ... in units where every integer keeps its value), then to_nir."""
    from ..quant import from_int_network
    for l, L in enumerate(inet.layers):
        kind = getattr(L, "kind", "dense")           # conv / pool / delay projections (issue 11)
        if kind != "dense":
            raise NirError(f"layer {l}: a {kind} projection is not exported to NIR yet")
        if L.noise.on:
            raise NirError(f"layer {l}: on-chip noise (inject = {L.noise.inject!r}) has no NIR equivalent")
    if inet.input_message_bits:
        raise NirError(f"network: graded input (input_message_bits = {inet.input_message_bits}) has no NIR form")
    net, _ = from_int_network(inet, readout=readout)
    g = to_nir(net, dt=dt, fold_r=fold_r)
    for l, L in enumerate(inet.layers):          # neurohw's integer choices ride along as metadata
        g.nodes[f"l{l}.lif"].metadata.update({
            "neurohw_" + k: np.atleast_1d(np.asarray(getattr(L, k), np.int64)) for k in (
                "weight_exp", "num_weight_bits", "rec_weight_exp", "rec_num_weight_bits", "vth", "du", "dv",
                "bias_mant", "bias_exp")})
    return g


def int_from_nir(graph_or_path, dt: float | None = None) -> IntNetwork:
    """The IntNetwork an int_to_nir graph came from, exactly (needs its neurohw metadata;
    a foreign graph goes through quantization instead: neurohw.quant.plan)."""
    from ..network import IntLayer
    g = _graph(graph_or_path)
    net = from_nir(g, dt=dt)
    _, chain = _chain(g)
    layers = []
    for l, (m, (_, nk, _)) in enumerate(zip(net.modules_in_order, chain)):
        md = {k[len("neurohw_"):]: np.asarray(v).reshape(-1) for k, v in g.nodes[nk].metadata.items()
              if k.startswith("neurohw_")}
        if "weight_exp" not in md:
            raise NirError(f"node {nk!r}: no neurohw metadata; quantize the imported network instead")
        s = float(64 * 2.0 ** int(md["weight_exp"][0]))
        w = m.weight.detach().double().numpy()
        b = np.round(m.bias.detach().double().numpy() * s).astype(np.int64)
        bexp, mant = md["bias_exp"].astype(np.int64), md["bias_mant"].astype(np.int64)
        if not np.array_equal(chip.effective_bias(mant, bexp), b):
            raise NirError(f"node {nk!r}: neurohw metadata (bias_mant, bias_exp) disagrees with the graph's bias")
        q_rec = 2.0 ** (int(md["rec_weight_exp"][0]) - int(md["weight_exp"][0]))
        rec = None if m.rec is None else np.round(m.rec.detach().double().numpy() / q_rec).astype(np.int16)
        layers.append(IntLayer(
            weights=np.round(w).astype(np.int16), weight_exp=int(md["weight_exp"][0]),
            num_weight_bits=int(md["num_weight_bits"][0]), du=int(md["du"][0]), dv=int(md["dv"][0]),
            vth=int(md["vth"][0]),
            bias_mant=mant.astype(np.int16), bias_exp=bexp.astype(np.int8), rec_weights=rec,
            rec_weight_exp=int(md["rec_weight_exp"][0]), rec_num_weight_bits=int(md["rec_num_weight_bits"][0])))
    return IntNetwork(n_in=net.n_in, layers=layers)


def write(graph, path) -> Path:
    """nir.write, atomically."""
    import nir

    from .._io import atomic_path
    path = Path(path)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    return path


# ================================================================================================
# import
# ================================================================================================
NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")


def _arr(node, key, n, default=None):
    v = getattr(node, key, None)
    if v is None:
        if default is None:
            return None
        v = default
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    v = np.asarray(v, np.float64).reshape(-1)
    return np.full(n, v[0]) if v.size == 1 else v


def _uniform(where: str, name: str, x: np.ndarray) -> float:
    if not np.allclose(x, x[0], rtol=DECAY_TOL, atol=0):
        raise NirError(f"{where}: {name} differs between neurons ({x.min():.6g}..{x.max():.6g}); "
                       f"neurohw's du / dv are one per layer")
    return float(x[0])


def _type(node) -> str:
    return type(node).__name__


def _graph(graph_or_path):
    import nir
    if isinstance(graph_or_path, (str, Path)):
        return nir.read(str(graph_or_path))
    return graph_or_path


def _chain(g) -> tuple[int, list[tuple[str, str, str | None]]]:
    """Walk Input -> [Flatten] -> (Affine|Linear -> neuron [<-> Linear|Affine])* -> Output.

    Returns n_in and (synapse key, neuron key, recurrent synapse key) per layer; anything else
    (branches, skips, nested graphs, other node types) is a NirError naming the node."""
    import nir
    nodes, edges = g.nodes, list(dict.fromkeys(tuple(e) for e in g.edges))
    succ = {k: [b for a, b in edges if a == k] for k in nodes}
    pred = {k: [a for a, b in edges if b == k] for k in nodes}
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise NirError(f"graph: {len(inputs)} Input nodes; neurohw takes exactly one")
    for k, v in nodes.items():
        if isinstance(v, nir.NIRGraph):
            raise NirError(f"node {k!r}: nested NIR graphs are not supported (flatten the graph first)")
    shape = list(nodes[inputs[0]].input_type.values())[0]
    n_in = int(np.prod(shape))
    layers, cur = [], inputs[0]
    while True:
        nxt = succ[cur]
        if len(nxt) != 1:
            raise NirError(f"node {cur!r}: {len(nxt)} successors {nxt}; neurohw takes a chain of layers")
        k = nxt[0]
        v = nodes[k]
        if isinstance(v, nir.Output):
            break
        if isinstance(v, nir.Flatten):
            cur = k
            continue
        if not isinstance(v, (nir.Affine, nir.Linear)):
            raise NirError(f"node {k!r}: {_type(v)} where a synapse (Affine / Linear) was expected; neurohw "
                           f"imports {', '.join(NEURONS)}, Affine, Linear, Flatten, Input, Output")
        if len(pred[k]) != 1:
            raise NirError(f"node {k!r}: {len(pred[k])} inputs; neurohw takes a chain of layers")
        nk = succ[k]
        if len(nk) != 1 or _type(nodes[nk[0]]) not in NEURONS:
            raise NirError(f"node {k!r}: must feed exactly one neuron node ({', '.join(NEURONS)}), feeds {nk}")
        neuron = nk[0]
        rec = [r for r in succ[neuron] if neuron in succ[r] and isinstance(nodes[r], (nir.Affine, nir.Linear))]
        if len(rec) > 1:
            raise NirError(f"node {neuron!r}: {len(rec)} recurrent synapses; neurohw takes one")
        others = [p for p in pred[neuron] if p not in (k, *rec)]
        if others:
            raise NirError(f"node {neuron!r}: extra inputs {others}; neurohw takes a chain of layers")
        if rec and (succ[rec[0]] != [neuron] or pred[rec[0]] != [neuron]):
            raise NirError(f"node {rec[0]!r}: a recurrent synapse must connect its neuron to itself only")
        layers.append((k, neuron, rec[0] if rec else None))
        cur = neuron
        outs = [s for s in succ[neuron] if s not in rec]
        succ[neuron] = outs
    if not layers:
        raise NirError("graph: no layers between Input and Output")
    return n_in, layers


def from_nir(graph_or_path, dt: float | None = None, peer: str = "neurohw") -> SpikingNet:
    """A float SpikingNet computing the NIR graph's forward-Euler discretization at dt.

    peer: who wrote the file ("neurohw", "snntorch", "norse"): its default dt, and Norse 1.1.0's
    tau bug (tau written as dt * tau) undone. Per-neuron thresholds are absorbed into the
    incoming weights and bias (exact with reset to 0); decays must be one per layer."""
    import nir
    if peer not in DT:
        raise NirError(f"peer = {peer!r} is not known; allowed {sorted(DT)}")
    dt = DT[peer] if dt is None else float(dt)
    if not dt > 0:
        raise NirError(f"dt = {dt!r} must be > 0 seconds")
    tau_fix = dt if peer == "norse" else 1.0      # Norse 1.1.0 writes dt * tau
    g = _graph(graph_or_path)
    n_in, chain = _chain(g)
    specs, params, n_prev = [], [], n_in
    for li, (sk, nk, rk) in enumerate(chain):
        syn, neu = g.nodes[sk], g.nodes[nk]
        where = f"node {nk!r} ({_type(neu)})"
        W = _f(syn.weight.detach() if isinstance(syn.weight, torch.Tensor) else syn.weight)
        if W.ndim != 2 or W.shape[1] != n_prev:
            raise NirError(f"node {sk!r}: weight shape {W.shape}, expected (n, {n_prev})")
        n = W.shape[0]
        bias = np.zeros(n) if isinstance(syn, nir.Linear) else _arr(syn, "bias", n, 0.0)
        R = None
        if rk is not None:
            rn = g.nodes[rk]
            R = _f(rn.weight)
            if R.shape != (n, n):
                raise NirError(f"node {rk!r}: recurrent weight shape {R.shape}, expected ({n}, {n})")
            if isinstance(rn, nir.Affine) and np.any(_arr(rn, "bias", n, 0.0)):
                raise NirError(f"node {rk!r}: a recurrent Affine with bias is not supported")
        kind = _type(neu)
        readout = kind in ("LI", "CubaLI")
        if readout and li != len(chain) - 1:
            raise NirError(f"{where}: a non-spiking neuron is only supported as the last layer (readout)")
        v_reset = _arr(neu, "v_reset", n, 0.0)
        if np.any(v_reset != 0):
            raise NirError(f"{where}: v_reset = {v_reset.max():.6g} != 0; the chip resets v to 0")
        leak = _arr(neu, "v_leak", n, 0.0)
        if kind == "IF":
            au, av = 1.0, 0.0
            c = dt * _arr(neu, "r", n)
            leak = np.zeros(n)
        elif kind in ("LIF", "LI"):
            au = 1.0
            av_n = dt / (_arr(neu, "tau", n) / tau_fix)
            av = _uniform(where, "dt / tau", av_n)
            c = av_n * _arr(neu, "r", n)
        else:                                   # CubaLIF / CubaLI
            au_n = dt / (_arr(neu, "tau_syn", n) / tau_fix)
            av_n = dt / (_arr(neu, "tau_mem", n) / tau_fix)
            au, av = _uniform(where, "dt / tau_syn", au_n), _uniform(where, "dt / tau_mem", av_n)
            if np.any(bias):
                raise NirError(f"node {sk!r}: an Affine bias into a CubaLIF's synaptic current has no exact "
                               f"neurohw form (neurohw's bias enters v); use v_leak")
            c = au_n * _arr(neu, "w_in", n, 1.0) * av_n * _arr(neu, "r", n)
        for name, a in (("dt / tau_syn", au), ("dt / tau_mem", av)):
            if not 0.0 <= a <= 1.0 + DECAY_TOL or (name == "dt / tau_syn" and a < 1.0 / chip.DECAY_UNITY - DECAY_TOL):
                raise NirError(f"{where}: {name} = {a:.6g} at dt = {dt:g} is outside the chip's decays "
                               f"[{1 / chip.DECAY_UNITY if 'syn' in name else 0:g}, 1]; check dt (peer {peer!r})")
        if readout:
            vth_n = np.full(n, 1.0)
        else:
            vth_n = _arr(neu, "v_threshold", n)
        vth = float(vth_n.max())
        if np.all(vth_n == vth):
            k = np.ones(n)
        elif np.all(vth_n > 0):
            k = vth / vth_n                      # per-neuron threshold -> row scaling (exact, reset to 0)
        else:
            raise NirError(f"{where}: per-neuron thresholds that differ must all be > 0 "
                           f"(got {vth_n.min():.6g}..{vth:.6g})")
        Wn = (k * c)[:, None] * W
        Bn = k * (c * bias + av * leak)
        Rn = None if R is None else (k * c)[:, None] * R
        du = int(round(au * chip.DECAY_UNITY)) - chip.DU_OFFSET
        dv = int(round(av * chip.DECAY_UNITY)) - chip.DV_OFFSET
        specs.append(LayerSpec(n_out=n, du=min(max(du, 0), 4095), dv=min(max(dv, 0), 4096), vth=vth,
                               recurrent=R is not None))
        params.append((Wn, Rn, Bn, au, av))
        n_prev = n
    ro = specs.pop() if _type(g.nodes[chain[-1][1]]) in ("LI", "CubaLI") else None
    net = SpikingNet(n_in, specs, readout=ro)
    with torch.no_grad():
        for m, (Wn, Rn, Bn, au, av) in zip(net.modules_in_order, params):
            m.weight.copy_(torch.as_tensor(Wn))
            m.bias.copy_(torch.as_tensor(Bn))
            if Rn is not None:
                m.rec.copy_(torch.as_tensor(Rn))
            m.fixed_decays.copy_(torch.tensor([au, av]))   # the peer's exact decays, not the chip grid
    return net


def align(ours: np.ndarray, layer: int) -> np.ndarray:
    """neurohw's raster of `layer` [B, T, n] moved onto a delay-free peer's clock: [B, T - layer - 1, n]."""
    return ours[:, layer + 1:]
