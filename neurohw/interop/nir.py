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

Conv and sum-pool layers are Conv2d and SumPool2d nodes (AvgPool2d is read too), a dense layer
after a map reads it through a Flatten node; NIR's maps are (C, H, W), neurohw's (H, W, C) in C
order (per-neuron arrays transposed, a flattened map's columns permuted: `flatten_order`).

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


def _chw(x: np.ndarray, shape) -> np.ndarray:
    """Per-neuron values of an (H, W, C) map in neurohw's flat order -> NIR's (C, H, W) array."""
    H, W, C = shape
    return np.asarray(x, np.float64).reshape(H, W, C).transpose(2, 0, 1)


def _hwc(x: np.ndarray, shape) -> np.ndarray:
    """NIR's (C, H, W) values (or their C-order flattening) -> neurohw's flat (H, W, C) order."""
    H, W, C = shape
    return np.asarray(x, np.float64).reshape(C, H, W).transpose(1, 2, 0).reshape(-1)


def flatten_order(shape) -> np.ndarray:
    """p with nir_flat[j] = ours[p[j]] for an (H, W, C) map: NIR's (torch's) Flatten of a (C, H, W)
    tensor reads it in (C, H, W) order, ours is (H, W, C)."""
    H, W, C = shape
    return np.arange(H * W * C).reshape(H, W, C).transpose(2, 0, 1).reshape(-1)


def to_nir(net: SpikingNet, dt: float = DT["neurohw"], fold_r: bool = False):
    """A nir.NIRGraph of a float SpikingNet at time step dt (seconds).

    fold_r=False writes r = 1/a_v (snnTorch's form; weights unchanged, an exact round trip);
    fold_r=True writes r = 1 and folds 1/a_v into the weights (what Norse's reader needs).
    Conv layers are Conv2d nodes, pool layers SumPool2d nodes whose weight (none in NIR) is the
    neuron's input scale (r, or w_in for a CubaLIF; with fold_r a LIF's v is rescaled instead:
    threshold and v_leak divided by it); a dense layer after a map reads it through a Flatten
    node, its weight columns in NIR's (C, H, W) order. Maps are (C, H, W) in NIR, as in torch."""
    import nir
    if not dt > 0:
        raise NirError(f"dt = {dt!r} must be > 0 seconds")
    in_shape = net.in_shape
    if in_shape is None and net.modules_in_order[0].spec.kind != "dense":
        in_shape = net.modules_in_order[0].in_shape
    nodes = {"input": nir.Input(input_type={"input": np.array([in_shape[2], in_shape[0], in_shape[1]]
                                                             if in_shape is not None and
                                                             net.modules_in_order[0].spec.kind != "dense"
                                                             else [net.n_in])})}
    edges, prev, prev_map = [], "input", None
    mods = net.modules_in_order
    for l, m in enumerate(mods):
        readout = m is net.readout
        kind = m.spec.kind
        w, rec, b, vth, du_f, dv_f, spiking = m.params()
        if spiking.stochastic and not readout:
            raise NirError(f"layer {l}: stochastic spiking has no NIR equivalent (NIR neurons are deterministic)")
        if m.spec.noise_current or m.spec.noise_voltage:
            raise NirError(f"layer {l}: additive noise has no NIR equivalent")
        if m.spec.max_delay or m.spec.rec_max_delay:
            raise NirError(f"layer {l}: synaptic delays have no NIR node")
        W, B = _f(w.detach()), _f(b.detach())
        R = None if rec is None else _f(rec.detach())
        au, av, th = float(du_f), float(dv_f), float(vth)
        n = m.spec.n_out
        shape = (n,) if kind == "dense" else (m.out_shape[2], m.out_shape[0], m.out_shape[1])
        per = (lambda x: np.asarray(x, np.float64).reshape(shape)) if kind == "dense" else \
            (lambda x: _chw(x, m.out_shape))                        # noqa: E731
        full = lambda x: np.full(shape, float(x))  # noqa: E731
        memoryless = abs(au - 1.0) < DECAY_TOL
        name = f"l{l}"
        if kind != "dense" and l > 0 and prev_map is None:
            raise NirError(f"layer {l}: a {kind} layer reading a flat layer's neurons as a map: NIR has no node "
                           f"that reshapes a vector into a map")
        if kind != "dense" and R is not None:
            raise NirError(f"layer {l}: a recurrent {kind} layer: a recurrent Linear on a (C, H, W) neuron map has "
                           f"no NIR type (it needs a flat vector)")
        gain = float(W.reshape(-1)[0]) if kind == "pool" else 1.0     # the pool's weight: a neuron gain
        if kind == "pool" and fold_r and memoryless and not gain > 0:
            raise NirError(f"layer {l}: fold_r rescales a sum-pool layer's v by its weight {gain:.6g}, which must be "
                           f"> 0 (the threshold would flip); export without fold_r")
        # a conv layer's bias can ride in Conv2d's per-channel bias when memoryless (it then adds to v)
        chan_bias = kind == "conv" and memoryless and np.array_equal(B.reshape(m.out_shape),
                                                                     np.broadcast_to(B.reshape(m.out_shape)[:1, :1, :],
                                                                                     m.out_shape))
        own_bias = kind == "dense" or chan_bias          # the bias is in the synapse node (Affine / Conv2d)
        if av == 0.0:
            if not memoryless or readout:
                raise NirError(f"layer {l}: dv = 0 (no membrane leak) is only expressible as a NIR IF "
                               f"(du = 4095, spiking); NIR's CubaLIF / LI need tau_mem < inf")
            if not own_bias and np.any(B):
                raise NirError(f"layer {l}: a {kind} layer with dv = 0 and a bias that differs across its map: "
                               f"NIR's IF has no v_leak, and Conv2d / SumPool2d no per-neuron bias")
            scale = 1.0 / dt              # IF: v += dt r (W s + b)
            if fold_r and kind == "pool":            # r = 1: v in units of gain / dt (exact, reset to 0)
                neuron = nir.IF(r=full(1.0), v_threshold=full(th / (gain * scale)), v_reset=full(0.0))
            else:
                neuron = nir.IF(r=full(1.0 if fold_r else scale * gain), v_threshold=full(th), v_reset=full(0.0))
        else:
            scale = 1.0 / av
            tau = full(dt / av)
            if memoryless:                # LIF: v += a_v (v_leak + r Y) with Y the synapse node's output
                leak, vt = (full(0.0) if own_bias else per(B / av)), th
                if fold_r and kind == "pool":         # r = 1: v in units of gain / a_v (exact, reset to 0)
                    r, vt, leak = full(1.0), th * av / gain, per(B / gain)
                else:
                    r = full(1.0 if fold_r else scale * gain)
                neuron = (nir.LI(tau=tau, r=r, v_leak=leak) if readout else
                          nir.LIF(tau=tau, r=r, v_leak=leak, v_threshold=full(vt), v_reset=full(0.0)))
            else:                        # CubaLIF: the bias is v_leak, w_in = gain / a_u
                r = full(1.0 if fold_r else scale)
                w_in = gain / au * (scale if fold_r and kind == "pool" else 1.0)
                kw = dict(tau_syn=full(dt / au), tau_mem=tau, r=r, v_leak=per(B * scale), w_in=full(w_in))
                neuron = (nir.CubaLI(**kw) if readout else
                          nir.CubaLIF(v_threshold=full(th), v_reset=full(0.0), **kw))
        k = scale if fold_r else 1.0
        if kind == "dense":
            if prev_map is not None:          # NIR's Flatten reads the map in (C, H, W) order
                H, Wd, C = prev_map
                nodes[f"{name}.flatten"] = nir.Flatten(input_type={"input": np.array([C, H, Wd])}, start_dim=0,
                                                       end_dim=-1)
                edges.append((prev, f"{name}.flatten"))
                prev = f"{name}.flatten"
                W = W[:, flatten_order(prev_map)]
            if memoryless:
                nodes[f"{name}.affine"] = nir.Affine(weight=W * k, bias=B * k)
            else:
                nodes[f"{name}.affine"] = nir.Linear(weight=W * k)
            syn = f"{name}.affine"
        elif kind == "conv":
            sp = m.spec
            cb = B.reshape(m.out_shape)[0, 0, :] * k if chan_bias else np.zeros(W.shape[0])
            nodes[f"{name}.conv"] = nir.Conv2d(input_shape=np.array(m.in_shape[:2]), weight=W * k,
                                               stride=np.array(_pair(sp.stride)), padding=np.array(_pair(sp.padding)),
                                               dilation=np.array(_pair(sp.dilation)), groups=int(sp.groups), bias=cb)
            syn = f"{name}.conv"
        else:
            kk = np.array(_pair(m.spec.kernel))
            nodes[f"{name}.pool"] = nir.SumPool2d(kernel_size=kk, stride=kk, padding=np.zeros(2, int))
            syn = f"{name}.pool"
        if kind != "dense":               # the types NIR 1.0.8 gets wrong (module doc) or leaves open
            H, Wd, C = m.in_shape
            nodes[syn].input_type = {"input": np.array([C, H, Wd])}
            nodes[syn].output_type = {"output": np.array(shape)}
        nodes[f"{name}.lif"] = neuron
        edges += [(prev, syn), (syn, f"{name}.lif")]
        if R is not None:
            nodes[f"{name}.w_rec"] = nir.Linear(weight=R * k)
            edges += [(f"{name}.lif", f"{name}.w_rec"), (f"{name}.w_rec", f"{name}.lif")]
        prev, prev_map = f"{name}.lif", (m.out_shape if kind != "dense" else None)
    last = mods[-1]
    out = [last.spec.n_out] if last.spec.kind == "dense" else [last.out_shape[2], *last.out_shape[:2]]
    nodes["output"] = nir.Output(output_type={"output": np.array(out)})
    edges.append((prev, "output"))
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges)
    except ValueError:          # NIR 1.0.8 sizes a non-square kernel's output with kh on both axes
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(x) for x in v)


def _as_float_layers(inet: IntNetwork) -> IntNetwork:
    """A sum-pool with padding as the grouped conv it is (neurohw's float pool has none)."""
    from ..network import Conv2d, IntLayer
    layers = []
    for L in inet.layers:
        if L.kind == "pool" and any(L.conv.padding):
            c = L.conv
            L = IntLayer(**{**{f: getattr(L, f) for f in L.__dataclass_fields__},
                            "conv": Conv2d(c.in_shape, c.stride, c.padding, c.dilation, c.groups, pool=False)})
        layers.append(L)
    return IntNetwork(n_in=inet.n_in, layers=layers, input_message_bits=inet.input_message_bits, name=inet.name)


def int_to_nir(inet: IntNetwork, dt: float = DT["neurohw"], fold_r: bool = False, readout: bool = False):
    """An IntNetwork as NIR: its exact float equivalent (neurohw.quant.from_int_network: weights
    w * 2**weight_exp / 64 ... in units where every integer keeps its value), then to_nir."""
    from ..quant import from_int_network
    for l, L in enumerate(inet.layers):
        if L.kind == "delay" or L.rec_delays is not None:
            raise NirError(f"layer {l}: synaptic delays have no NIR node")
        if L.noise.on:
            raise NirError(f"layer {l}: on-chip noise (inject = {L.noise.inject!r}) has no NIR equivalent")
    if inet.input_message_bits:
        raise NirError(f"network: graded input (input_message_bits = {inet.input_message_bits}) has no NIR form")
    inet = _as_float_layers(inet)
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
    from ..network import Conv2d, IntLayer
    g = _graph(graph_or_path)
    net = from_nir(g, dt=dt)
    _, _, chain = _chain(g)
    layers = []
    for l, (m, (_, nk, _, _)) in enumerate(zip(net.modules_in_order, chain)):
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
        sp, conv = m.spec, None
        if sp.kind == "conv":
            w = w.transpose(0, 2, 3, 1)
            conv = Conv2d(in_shape=m.in_shape, stride=_pair(sp.stride), padding=_pair(sp.padding),
                          dilation=_pair(sp.dilation), groups=sp.groups)
        elif sp.kind == "pool":
            kh, kw = _pair(sp.kernel)
            w = np.full((m.in_shape[2], kh, kw, 1), float(w.reshape(-1)[0]))
            conv = Conv2d(in_shape=m.in_shape, stride=(kh, kw), groups=m.in_shape[2], pool=True)
        layers.append(IntLayer(
            weights=np.round(w).astype(np.int16), weight_exp=int(md["weight_exp"][0]),
            num_weight_bits=int(md["num_weight_bits"][0]), du=int(md["du"][0]), dv=int(md["dv"][0]),
            vth=int(md["vth"][0]), conv=conv,
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


def _param(node, key, default=None):
    """A node's parameter (or default) as a float64 array, None when it has neither."""
    v = getattr(node, key, None)
    if v is None:
        if default is None:
            return None
        v = default
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v, np.float64)


def _arr(node, key, n, default=None):
    v = _param(node, key, default)
    if v is None:
        return None
    v = v.reshape(-1)
    return np.full(n, v[0]) if v.size == 1 else v


def _uniform(where: str, name: str, x: np.ndarray) -> float:
    if not np.allclose(x, x[0], rtol=DECAY_TOL, atol=0):
        raise NirError(f"{where}: {name} differs between neurons ({x.min():.6g}..{x.max():.6g}); "
                       f"neurohw's du / dv are one per layer")
    return float(x[0])


def _type(node) -> str:
    return type(node).__name__


def _graph(graph_or_path):
    """A graph, or a file read without NIR's own type check (NIR 1.0.8's inference mis-sizes
    non-square conv kernels; neurohw checks every shape itself)."""
    import nir
    if isinstance(graph_or_path, (str, Path)):
        return nir.read(str(graph_or_path), type_check=False)
    return graph_or_path


SYNAPSES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")


def _chain(g) -> tuple[int, tuple | None, list[tuple[str, str, str | None, bool]]]:
    """Walk Input -> [Flatten] -> (synapse -> neuron [<-> Linear|Affine] [-> Flatten])* -> Output,
    synapse one of Affine, Linear, Conv2d, SumPool2d, AvgPool2d.

    Returns n_in, the input's (C, H, W) if it has three dimensions, and per layer (synapse key,
    neuron key, recurrent synapse key, whether a Flatten precedes it); anything else (branches,
    skips, nested graphs, other node types) is a NirError naming the node."""
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
    shape = np.asarray(list(nodes[inputs[0]].input_type.values())[0]).reshape(-1)
    if shape.size == 4 and shape[0] == 1:        # Norse 1.1.0 keeps its sample's batch of 1 in the type
        shape = shape[1:]
    n_in = int(np.prod(shape))
    chw = tuple(int(x) for x in shape) if shape.size == 3 else None
    layers, cur, flat = [], inputs[0], False
    while True:
        nxt = succ[cur]
        if len(nxt) != 1:
            raise NirError(f"node {cur!r}: {len(nxt)} successors {nxt}; neurohw takes a chain of layers")
        k = nxt[0]
        v = nodes[k]
        if isinstance(v, nir.Output):
            break
        if v is None:
            raise NirError(f"node {k!r}: an empty (None) node, as Norse 1.1.0's to_nir writes a module it cannot "
                           f"map (a torch.nn.Flatten, for one); not a NIR node")
        if isinstance(v, nir.Flatten):
            dims = len(np.asarray(list(v.input_type.values())[0]).reshape(-1)) if v.input_type and \
                list(v.input_type.values())[0] is not None else None
            if v.start_dim != 0 or v.end_dim not in (-1, None) and (dims is None or v.end_dim != dims - 1):
                raise NirError(f"node {k!r}: Flatten(start_dim={v.start_dim}, end_dim={v.end_dim}) flattens part of "
                               f"its input; neurohw takes a whole map flattened (start_dim 0, end_dim -1)")
            cur, flat = k, True
            continue
        if _type(v) not in SYNAPSES:
            raise NirError(f"node {k!r}: {_type(v)} where a synapse ({', '.join(SYNAPSES)}) was expected; neurohw "
                           f"imports {', '.join(NEURONS)}, {', '.join(SYNAPSES)}, Flatten, Input, Output")
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
        layers.append((k, neuron, rec[0] if rec else None, flat))
        cur, flat = neuron, False
        outs = [s for s in succ[neuron] if s not in rec]
        succ[neuron] = outs
    if not layers:
        raise NirError("graph: no layers between Input and Output")
    return n_in, chw, layers


def _geometry(syn, where: str) -> dict:
    """A Conv2d / SumPool2d / AvgPool2d node's stride, padding, dilation, kernel as int pairs."""
    def pair(key, default):
        v = getattr(syn, key, None)
        if v is None:
            return (default, default)
        if isinstance(v, str):
            raise NirError(f"{where}: padding = {v!r}; neurohw takes explicit padding (int or pair)")
        v = np.asarray(v).reshape(-1).astype(int)
        return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))
    if _type(syn) == "Conv2d":
        w = np.asarray(syn.weight)
        return dict(kernel=tuple(int(x) for x in w.shape[-2:]), stride=pair("stride", 1), padding=pair("padding", 0),
                    dilation=pair("dilation", 1), groups=int(syn.groups))
    kernel = pair("kernel_size", 1)
    stride = pair("stride", kernel[0]) if getattr(syn, "stride", None) is not None else kernel
    return dict(kernel=kernel, stride=stride, padding=pair("padding", 0), dilation=(1, 1))


def from_nir(graph_or_path, dt: float | None = None, peer: str = "neurohw") -> SpikingNet:
    """A float SpikingNet computing the NIR graph's forward-Euler discretization at dt.

    peer: who wrote the file ("neurohw", "snntorch", "norse"): its default dt, and Norse 1.1.0's
    tau bug (tau written as dt * tau) undone. Per-neuron thresholds are absorbed into the
    incoming weights and bias (exact with reset to 0); decays must be one per layer.
    Conv2d becomes a conv layer, SumPool2d / AvgPool2d (stride = kernel, no padding) a pool layer
    (any other geometry: the grouped conv it is); maps are NIR's (C, H, W), neurohw's (H, W, C),
    and a dense layer after a Flatten reads its columns in NIR's order."""
    import nir
    if peer not in DT:
        raise NirError(f"peer = {peer!r} is not known; allowed {sorted(DT)}")
    dt = DT[peer] if dt is None else float(dt)
    if not dt > 0:
        raise NirError(f"dt = {dt!r} must be > 0 seconds")
    tau_fix = dt if peer == "norse" else 1.0      # Norse 1.1.0 writes dt * tau
    g = _graph(graph_or_path)
    n_in, chw, chain = _chain(g)
    specs, params, n_prev = [], [], n_in
    cur_map = None if chw is None else (chw[1], chw[2], chw[0])        # the previous output as (H, W, C)
    net_in_shape = cur_map
    for li, (sk, nk, rk, flat) in enumerate(chain):
        syn, neu = g.nodes[sk], g.nodes[nk]
        where = f"node {nk!r} ({_type(neu)})"
        stype = _type(syn)
        proj: dict = {}
        if stype in ("Affine", "Linear"):
            W = _f(syn.weight.detach() if isinstance(syn.weight, torch.Tensor) else syn.weight)
            if W.ndim != 2 or W.shape[1] != n_prev:
                raise NirError(f"node {sk!r}: weight shape {W.shape}, expected (n, {n_prev})")
            if cur_map is not None:                          # NIR's flat order (C, H, W) -> ours (H, W, C)
                if not flat:
                    raise NirError(f"node {sk!r}: a dense synapse right after a map needs a Flatten node")
                W = W[:, np.argsort(flatten_order(cur_map))]
            n, out_map = W.shape[0], None
            bias = np.zeros(n) if isinstance(syn, nir.Linear) else _arr(syn, "bias", n, 0.0)
        else:
            if cur_map is None:
                raise NirError(f"node {sk!r}: a {stype} needs a (C, H, W) input: a 3-D Input or a map before it")
            geo = _geometry(syn, f"node {sk!r}")
            H, Wd, C = cur_map
            if stype == "Conv2d":
                W = _f(syn.weight)
                if W.ndim != 4 or W.shape[1] * geo["groups"] != C:
                    raise NirError(f"node {sk!r}: weight shape {W.shape} does not read {C} channels in "
                                   f"{geo['groups']} groups")
                cb = _f(getattr(syn, "bias", None) if getattr(syn, "bias", None) is not None else np.zeros(W.shape[0]))
                cb = np.broadcast_to(cb.reshape(-1), (W.shape[0],))
            else:                                            # a pool: one kernel per channel
                kh, kw = geo["kernel"]
                v = 1.0 if stype == "SumPool2d" else 1.0 / (kh * kw)
                W = np.full((C, 1, kh, kw), v)
                geo["groups"] = C
                cb = np.zeros(C)
            spec_geo = dict(kind="conv", channels=W.shape[0], kernel=geo["kernel"], stride=geo["stride"],
                            padding=geo["padding"], dilation=geo["dilation"], groups=geo["groups"])
            pool = stype != "Conv2d" and geo["stride"] == geo["kernel"] and geo["padding"] == (0, 0)
            if pool:
                spec_geo = dict(kind="pool", kernel=geo["kernel"])
            from ..train.model import conv_out_shape
            try:
                out_map = conv_out_shape(cur_map, LayerSpec(n_out=0, **spec_geo))
            except ValueError as e:
                raise NirError(f"node {sk!r}: {e}") from None
            proj = dict(spec_geo, in_shape=cur_map)
            n = int(np.prod(out_map))
            bias = np.tile(cb, n // W.shape[0])                # per channel -> per neuron, (h, w, c) order
        R = None
        if rk is not None:
            rn = g.nodes[rk]
            R = _f(rn.weight)
            if R.shape != (n, n):
                raise NirError(f"node {rk!r}: recurrent weight shape {R.shape}, expected ({n}, {n})")
            if isinstance(rn, nir.Affine) and np.any(_arr(rn, "bias", n, 0.0)):
                raise NirError(f"node {rk!r}: a recurrent Affine with bias is not supported")
            if out_map is not None:
                raise NirError(f"node {rk!r}: a recurrent synapse on a map (conv / pool) layer is not supported")
        kind = _type(neu)
        readout = kind in ("LI", "CubaLI")
        if readout and li != len(chain) - 1:
            raise NirError(f"{where}: a non-spiking neuron is only supported as the last layer (readout)")
        get = (lambda key, default=None: _arr(neu, key, n, default)) if out_map is None else \
            (lambda key, default=None: _arr_map(neu, key, out_map, default))     # noqa: E731
        v_reset = get("v_reset", 0.0)
        if np.any(v_reset != 0):
            raise NirError(f"{where}: v_reset = {v_reset.max():.6g} != 0; the chip resets v to 0")
        leak = get("v_leak", 0.0)
        if kind == "IF":
            au, av = 1.0, 0.0
            c = dt * get("r")
            leak = np.zeros(n)
        elif kind in ("LIF", "LI"):
            au = 1.0
            av_n = dt / (get("tau") / tau_fix)
            av = _uniform(where, "dt / tau", av_n)
            c = av_n * get("r")
        else:                                   # CubaLIF / CubaLI
            au_n = dt / (get("tau_syn") / tau_fix)
            av_n = dt / (get("tau_mem") / tau_fix)
            au, av = _uniform(where, "dt / tau_syn", au_n), _uniform(where, "dt / tau_mem", av_n)
            if np.any(bias):
                raise NirError(f"node {sk!r}: a bias into a CubaLIF's synaptic current has no exact "
                               f"neurohw form (neurohw's bias enters v); use v_leak")
            c = au_n * get("w_in", 1.0) * av_n * get("r")
        for name, a in (("dt / tau_syn", au), ("dt / tau_mem", av)):
            if not 0.0 <= a <= 1.0 + DECAY_TOL or (name == "dt / tau_syn" and a < 1.0 / chip.DECAY_UNITY - DECAY_TOL):
                raise NirError(f"{where}: {name} = {a:.6g} at dt = {dt:g} is outside the chip's decays "
                               f"[{1 / chip.DECAY_UNITY if 'syn' in name else 0:g}, 1]; check dt (peer {peer!r})")
        if readout:
            vth_n = np.full(n, 1.0)
        else:
            vth_n = get("v_threshold")
        vth = float(vth_n.max())
        if np.all(vth_n == vth):
            k = np.ones(n)
        elif np.all(vth_n > 0):
            k = vth / vth_n                      # per-neuron threshold -> row scaling (exact, reset to 0)
        else:
            raise NirError(f"{where}: per-neuron thresholds that differ must all be > 0 "
                           f"(got {vth_n.min():.6g}..{vth:.6g})")
        kc = k * c
        if out_map is None:
            Wn = kc[:, None] * W
        else:                                    # a shared kernel: one gain per output channel (one per pool)
            per_chan = kc.reshape(-1, W.shape[0])
            if not np.allclose(per_chan, per_chan[:1], rtol=1e-9, atol=0):
                raise NirError(f"{where}: its input scale (r, w_in, threshold) differs across the map; a shared "
                               f"{stype} kernel takes one per output channel")
            gch = per_chan[0]
            if proj["kind"] == "pool":
                if not np.allclose(gch * W[:, 0, 0, 0], gch[0] * W[0, 0, 0, 0], rtol=1e-9, atol=0):
                    raise NirError(f"{where}: its input scale differs between channels; a sum-pool has one weight")
                Wn = np.array([gch[0] * W[0, 0, 0, 0]])
            else:
                Wn = gch[:, None, None, None] * W
        Bn = k * (c * bias + av * leak)
        Rn = None if R is None else kc[:, None] * R
        du = int(round(au * chip.DECAY_UNITY)) - chip.DU_OFFSET
        dv = int(round(av * chip.DECAY_UNITY)) - chip.DV_OFFSET
        specs.append(LayerSpec(n_out=n if out_map is None else 0, du=min(max(du, 0), 4095), dv=min(max(dv, 0), 4096),
                               vth=vth, recurrent=R is not None, **proj))
        params.append((Wn, Rn, Bn, au, av))
        n_prev, cur_map = n, out_map
    ro = specs.pop() if _type(g.nodes[chain[-1][1]]) in ("LI", "CubaLI") else None
    first = (specs or [ro])[0]
    net = SpikingNet(n_in, specs, readout=ro, in_shape=net_in_shape if first.kind != "dense" else None)
    with torch.no_grad():
        for m, (Wn, Rn, Bn, au, av) in zip(net.modules_in_order, params):
            m.weight.copy_(torch.as_tensor(Wn).reshape(m.weight.shape))
            m.bias.copy_(torch.as_tensor(Bn))
            if Rn is not None:
                m.rec.copy_(torch.as_tensor(Rn))
            m.fixed_decays.copy_(torch.tensor([au, av]))   # the peer's exact decays, not the chip grid
    return net


def _arr_map(node, key, out_map, default=None):
    """A neuron parameter of a map layer: scalar, per channel (C, 1, 1), or per neuron (C, H, W)
    in NIR's order -> per neuron in neurohw's (H, W, C) order."""
    H, W, C = out_map
    v = _param(node, key, default)
    if v is None:
        return None
    if v.size == C * H * W:
        full = v.reshape(C, H, W)
    elif v.size in (1, C):
        full = np.broadcast_to(v.reshape(-1, 1, 1), (C, H, W))
    else:
        raise NirError(f"node parameter {key} of shape {v.shape} does not fit the ({C}, {H}, {W}) map")
    return full.transpose(1, 2, 0).reshape(-1).copy()


def align(ours: np.ndarray, layer: int) -> np.ndarray:
    """neurohw's raster of `layer` [B, T, n] moved onto a delay-free peer's clock: [B, T - layer - 1, n]."""
    return ours[:, layer + 1:]
