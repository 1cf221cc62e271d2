"""Will it fit? Resource accounting and core mapping of an IntNetwork on a chip profile.

Read from the integer network itself, per layer: neurons, input axons, synaptic memory as the
chip stores it, and output routes. Memory follows the Loihi synapse format that nengo-loihi
models (``nengo_loihi/block.py``, ``SynapseConfig.bits_per_axon``): each input axon of a core
owns a list of synapses cut into blocks of ``synapses_per_block``; a block costs its synapses'
bits plus a header and rounds up to a memory word. A synapse costs the stored weight width (the
narrowest width the chip offers that holds ``num_weight_bits``; the sign mode is a per-projection
setting and costs no bit), plus the delay bits when the projection has delays, plus, in the
sparse format only, an index. Per core and projection the cheaper of two formats is taken:
*dense* (one axon per source neuron, a weight for every neuron of the core) or *sparse* (an axon
only for sources with a non-zero weight into the core, an indexed entry per non-zero weight).

Output routes: like Loihi 1, a neuron sends one spike message per destination core that holds an
input axon for it, and each such route is an output axon of the neuron's core.

Partition (``partition``): every layer is cut into contiguous, equal chunks of neurons, one per
core, as nengo-loihi's ``split_blocks.split_block`` does (chunk = ceil(n / k)), but k is chosen by
checking every limit on every core: the largest chunk size that fits is found by bisection over
chunk sizes (per-core resources grow with the chunk), and the result is verified core by core, so
a returned mapping always respects every limit. nengo-loihi instead picks k from the layer's
totals (the largest of the ratios neurons / 1024, axons / 4096, bits / 2**20) and validates
afterwards; where its split validates, both give the same number of cores, and where output
routes bind (a wide next layer) ours still finds a mapping where its split fails validation.
Layers are mapped from the last to the first because a layer's output routes depend on how the
next layer was cut. Cores are numbered in layer order and filled into chips in that order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import chip
from .chip_profiles import ChipProfile, load_profile
from .network import IntNetwork

LIMITS = ("neurons", "input_axons", "output_axons", "synapse_bits")
LIMIT_NAMES = {"neurons": "neurons per core", "input_axons": "input axons per core",
               "output_axons": "output axons per core", "synapse_bits": "synapse memory bits per core",
               "chips": "chips", "imposed": "imposed mapping", "graded_spikes": "graded spikes", "delay_bits": "delay bits"}


class FitError(ValueError):
    """The network cannot be mapped: the message names the layer, the limit and the value."""

    def __init__(self, msg: str, layer: int | None = None, limit: str = "", value: int = 0, allowed: int = 0):
        super().__init__(msg)
        self.layer, self.limit, self.value, self.allowed = layer, limit, value, allowed


@dataclass
class Projection:
    """One synaptic projection into a layer, as the accounting sees it."""

    name: str                 # "feedforward" or "recurrent"
    nz: np.ndarray            # (n_out, n_src) bool: where a synapse exists
    weight_bits: int          # the chip's stored width
    delay_bits: int
    sign_mode: str
    source: int               # layer index of the sources; -1 = network input
    conv: object = None       # the IntLayer, for a Conv2d / sum-pool projection (nz is then None)


@dataclass
class LayerFit:
    layer: int
    neurons: int
    synapses: int             # non-zero synapses, all projections
    weight_bits: list[int]    # stored width per projection
    sign_modes: list[str]
    delay_bits: int
    cores: int
    neurons_per_core: int     # the chunk size
    binding: str              # the limit that set the chunk size (or the fullest one)
    binding_use: float        # the fullest core's use of that limit (fraction)
    synapse_bits: int         # all cores of the layer
    input_axons: int          # the most on any of its cores
    output_axons: int         # the most on any of its cores
    formats: dict = field(default_factory=dict)  # {"dense": n, "sparse": n} (core, projection) pairs
    sparse: list = field(default_factory=list, repr=False)  # per projection, (cores,) bool: sparse format


@dataclass
class FitResult:
    profile: ChipProfile
    layers: list[LayerFit]
    # per core, in core order
    core_layer: np.ndarray
    core_first: np.ndarray
    core_neurons: np.ndarray
    core_input_axons: np.ndarray
    core_output_axons: np.ndarray
    core_synapse_bits: np.ndarray
    chips_allowed: int | None = None

    @property
    def cores(self) -> int:
        return int(self.core_layer.size)

    @property
    def chips(self) -> int:
        return -(-self.cores // self.profile.cores_per_chip)

    def utilization(self) -> dict[str, np.ndarray]:
        """Per core, the used fraction of each limit."""
        p = self.profile
        return {"neurons": self.core_neurons / p.neurons_per_core,
                "input_axons": self.core_input_axons / p.input_axons_per_core,
                "output_axons": self.core_output_axons / p.output_axons_per_core,
                "synapse_bits": self.core_synapse_bits / p.synapse_bits_per_core}

    def core_of(self) -> list[np.ndarray]:
        """Per layer, the core index of each neuron."""
        out = []
        for lf in self.layers:
            idx = np.flatnonzero(self.core_layer == lf.layer)
            m = lf.neurons_per_core
            out.append(idx[np.arange(lf.neurons) // m])
        return out

    def to_dict(self) -> dict:
        p = self.profile
        u = self.utilization()
        return dict(chip=p.name, assumptions=list(p.assumptions), cores=self.cores, chips=self.chips,
                    chips_allowed=self.chips_allowed, cores_per_chip=p.cores_per_chip,
                    totals=dict(neurons=int(self.core_neurons.sum()), synapses=int(sum(l.synapses for l in self.layers)),
                                synapse_bits=int(self.core_synapse_bits.sum())),
                    layers=[dict(layer=l.layer, neurons=l.neurons, synapses=l.synapses, weight_bits=l.weight_bits,
                                 sign_modes=l.sign_modes, delay_bits=l.delay_bits, cores=l.cores,
                                 neurons_per_core=l.neurons_per_core, binding=l.binding,
                                 binding_use=l.binding_use,
                                 synapse_bits=l.synapse_bits, max_input_axons=l.input_axons,
                                 max_output_axons=l.output_axons, formats=l.formats) for l in self.layers],
                    utilization={k: dict(max=float(v.max()), mean=float(v.mean())) for k, v in u.items()})

    def table(self) -> str:
        """The per-layer table and the totals, as `neurohw fit` prints them."""
        p = self.profile
        head = (f"{'layer':>5} {'neurons':>9} {'synapses':>11} {'w bits':>7} {'memory (KiB)':>13} "
                f"{'cores':>6} {'per core':>9} {'max in-ax':>9} {'max out-ax':>10}  binding limit")
        rows = [head]
        for l in self.layers:
            rows.append(f"{l.layer:>5} {l.neurons:>9,} {l.synapses:>11,} {'/'.join(map(str, l.weight_bits)):>7} "
                        f"{l.synapse_bits / 8192:>13,.1f} {l.cores:>6,} {l.neurons_per_core:>9,} "
                        f"{l.input_axons:>9,} {l.output_axons:>10,}  {LIMIT_NAMES[l.binding]}"
                        + (f" ({100 * l.binding_use:.1f} % used)" if l.binding in LIMITS else ""))
        u = self.utilization()
        tot = self.to_dict()["totals"]
        rows.append(f"total {tot['neurons']:>9,} {tot['synapses']:>11,} {'':>7} {tot['synapse_bits'] / 8192:>13,.1f} "
                    f"{self.cores:>6,}  -> {self.chips} chip(s) of {p.cores_per_chip} cores")
        rows.append("busiest core: " + ", ".join(f"{k.replace('_', ' ')} {100 * v.max():.1f} %" for k, v in u.items()))
        if p.assumptions:
            rows.append(f"chip {p.name}: assumed (not public) limits: {', '.join(p.assumptions)}")
        return "\n".join(rows)


# ============================================================================================
# Memory of synapse lists
# ============================================================================================
def list_bits(n, bits_per_synapse, p: ChipProfile):
    """Bits of one axon's synapse list of n entries (vectorized over n): blocks of
    synapses_per_block, each with a header, each rounded up to a memory word."""
    n = np.asarray(n, np.int64)
    B, H, W = p.synapses_per_block, p.block_header_bits, p.word_bits
    full_block = -(-(B * bits_per_synapse + H) // W) * W
    rem = n % B
    return (n // B) * full_block + np.where(rem > 0, -(-(rem * bits_per_synapse + H) // W) * W, 0)


def projections(net: IntNetwork, p: ChipProfile) -> list[list[Projection]]:
    """Per layer, the projections into it (feedforward, then recurrent) with their stored widths."""
    out = []
    for i, layer in enumerate(net.layers):
        projs = []
        for name, w, nwb, src in (("feedforward", layer.weights, layer.num_weight_bits, i - 1),
                                  ("recurrent", layer.rec_weights, layer.rec_num_weight_bits, i)):
            if w is None:
                continue
            delays = getattr(layer, "delays" if name == "feedforward" else "rec_delays", None)
            dbits = int(np.max(delays)).bit_length() if delays is not None and np.size(delays) else 0
            conv = layer if name == "feedforward" and getattr(layer, "conv", None) is not None else None
            projs.append(Projection(name=name, nz=None if conv is not None else np.asarray(w) != 0,
                                    weight_bits=p.stored_weight_bits(nwb), delay_bits=dbits,
                                    sign_mode=chip.SIGN_MODE_NAMES[chip.sign_mode(w)], source=src, conv=conv))
        out.append(projs)
    return out


@dataclass
class _Cut:
    """One layer cut into chunks of m neurons: per-core resources and per-source routes."""

    m: int
    first: np.ndarray             # (k,) first neuron of each core
    sizes: np.ndarray             # (k,) neurons per core
    input_axons: np.ndarray       # (k,)
    synapse_bits: np.ndarray      # (k,)
    routes: dict                  # source layer -> (n_src,) number of this layer's cores it must reach
    formats: dict
    sparse: list                  # per projection, (k,) bool


def _cut(projs: list[Projection], n: int, m: int, p: ChipProfile) -> _Cut:
    """Resources of each core when a layer of n neurons is cut into chunks of m."""
    first = np.arange(0, n, m)
    last = np.minimum(first + m, n)
    sizes = last - first
    k = first.size
    axons = np.zeros(k, np.int64)
    bits = np.zeros(k, np.int64)
    routes: dict = {}
    formats = {"dense": 0, "sparse": 0}
    sparse = []
    idx_bits = p.stored_index_bits(int(sizes.max()))
    for pr in projs:
        if pr.conv is not None:
            a, b, r = _conv_cut(pr, first, sizes, p)
            axons += a
            bits += b
            routes[pr.source] = routes.get(pr.source, 0) + r
            sparse.append(np.ones(k, bool))
            formats["shared kernel"] = formats.get("shared kernel", 0) + k
            continue
        counts = _chunk_counts(pr.nz, m)                     # (k, n_src) synapses per core and source
        n_src = counts.shape[1]
        bps = pr.weight_bits + pr.delay_bits
        dense_bits = n_src * list_bits(sizes, bps, p)        # (k,)
        sparse_bits = list_bits(counts, bps + idx_bits, p).sum(1)
        sparse_axons = (counts > 0).sum(1)
        use_sparse = sparse_bits < dense_bits
        sparse.append(use_sparse)
        bits += np.where(use_sparse, sparse_bits, dense_bits)
        axons += np.where(use_sparse, sparse_axons, n_src)
        formats["sparse"] += int(use_sparse.sum())
        formats["dense"] += int(k - use_sparse.sum())
        # a source must reach every core that holds an axon for it
        reach = np.where(use_sparse[:, None], counts > 0, True).sum(0)
        routes[pr.source] = routes.get(pr.source, 0) + reach
    return _Cut(m=m, first=first, sizes=sizes, input_axons=axons, synapse_bits=bits, routes=routes, formats=formats,
                sparse=sparse)


def _axis_taps(n_in: int, k: int, s: int, pad: int, d: int, lo: int, hi: int) -> np.ndarray:
    """(n_in, k) bool: input position i reaches an output in [lo, hi] through kernel tap t
    (output o = (i + pad - t d) / s, an integer)."""
    num = np.arange(n_in)[:, None] + pad - np.arange(k)[None] * d
    o = num // s
    return (num % s == 0) & (o >= lo) & (o <= hi)


def _first_out(pos: np.ndarray, taps: np.ndarray, s: int, pad: int, d: int) -> np.ndarray:
    """The lowest output position each input position reaches through its valid taps."""
    o = (pos[:, None] + pad - np.arange(taps.shape[1])[None] * d) // s
    return np.where(taps, o, np.iinfo(np.int64).max).min(1)


def _conv_cut(pr: Projection, first: np.ndarray, sizes: np.ndarray, p: ChipProfile):
    """Input axons, synapse bits and output routes of a Conv2d / sum-pool projection, per core.

    The Loihi convolution as nengo-loihi builds it (nengo_loihi/conv.py): one population axon
    per input pixel (the channel is the atom), and the kernel stored once per core for each
    distinct pattern of kernel taps an input pixel reaches inside the core (interior pixels
    share one pattern; borders and stride phases add a few). A core is a contiguous run of the
    output map (h, w, c); its footprint is taken over the output rows it touches (and over its
    columns when it lies within one row): exact for whole rows, an upper bound otherwise."""
    layer = pr.conv
    cv = layer.conv
    H, W, C = cv.in_shape
    C_out, kh, kw, cg = layer.weights.shape
    Ho, Wo, _ = layer.shape
    (sh, sw), (ph, pw), (dh, dw) = cv.stride, cv.padding, cv.dilation
    row = Wo * C_out
    bps = pr.weight_bits + pr.delay_bits
    k = first.size
    axons = np.zeros(k, np.int64)
    bits = np.zeros(k, np.int64)
    R = np.zeros((k, H), np.float32)
    Cc = np.zeros((k, W), np.float32)
    for c, (a, n) in enumerate(zip(first, sizes)):
        b = a + n - 1
        h0, h1 = a // row, b // row
        w0, w1 = ((a % row) // C_out, (b % row) // C_out) if h0 == h1 else (0, Wo - 1)
        rt = _axis_taps(H, kh, sh, ph, dh, h0, h1)
        ct = _axis_taps(W, kw, sw, pw, dw, w0, w1)
        rows, cols = rt.any(1), ct.any(1)
        R[c], Cc[c] = rows, cols
        axons[c] = int(rows.sum()) * int(cols.sum())
        co = min(C_out, int(n))
        # nengo-loihi's layout: a pixel's synapses start at its first output (yi0, yj0) in the core;
        # the axon's compartment base holds that offset mod 256, the rest goes into the stored
        # indices, so patterns are (row taps, column taps, offset - offset mod 256)
        wrow = Wo if h0 != h1 else w1 - w0 + 1
        rsel, csel = np.flatnonzero(rows), np.flatnonzero(cols)
        _, rid = np.unique(rt[rsel], axis=0, return_inverse=True)
        _, cid = np.unique(ct[csel], axis=0, return_inverse=True)
        yi0 = _first_out(rsel, rt[rsel], sh, ph, dh) - h0
        yj0 = _first_out(csel, ct[csel], sw, pw, dw) - w0
        off = ((yi0[:, None] * wrow + yj0[None, :]) * co).ravel()
        key = np.stack([np.repeat(rid.ravel(), csel.size), np.tile(cid.ravel(), rsel.size), off - off % 256], 1)
        ukey, first_px = np.unique(key, axis=0, return_index=True)
        nr = np.repeat(rt[rsel].sum(1), csel.size)[first_px]
        nc = np.tile(ct[csel].sum(1), rsel.size)[first_px]
        max_idx = ukey[:, 2] + (nr - 1) * wrow * co + (nc - 1) * co + co - 1
        idx = p.stored_index_bits(int(max_idx.max()) + 1)
        bits[c] = int(list_bits(nr * nc * co * cg, bps + idx, p).sum())
    # routes: pixel (h, w) reaches every core whose footprint holds it; one axon per pixel, on its channel 0
    reach_px = np.rint(R.T @ Cc).astype(np.int64)        # (H, W)
    reach = np.zeros(H * W * C, np.int64)
    reach[::C] = reach_px.ravel()
    return axons, bits, reach


def _chunk_counts(nz: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros per chunk of m rows and per column: a reshape for the full chunks, the rest apart."""
    n = nz.shape[0]
    full = n // m
    parts = [nz[:full * m].reshape(full, m, -1).view(np.uint8).sum(1, dtype=np.int32)] if full else []
    if n > full * m:
        parts.append(nz[full * m:].view(np.uint8).sum(0, dtype=np.int32)[None])
    return np.concatenate(parts)


def _out_axons(cut: _Cut, layer: int, routes_from_next: np.ndarray | None) -> np.ndarray:
    """Output axons per core of this layer: its neurons' routes to the next layer's cores and,
    for a recurrent layer, to its own cores."""
    r = np.zeros(int(cut.sizes.sum()), np.int64)
    if routes_from_next is not None:
        r = r + routes_from_next
    if layer in cut.routes:
        r = r + cut.routes[layer]
    cs = np.concatenate([[0], np.cumsum(r)])
    return cs[cut.first + cut.sizes] - cs[cut.first]


def _violation(cut: _Cut, out_axons: np.ndarray, p: ChipProfile):
    """(limit, core, value, allowed) of the worst violation on this cut, or None."""
    worst = None
    for limit, used, cap in (("neurons", cut.sizes, p.neurons_per_core),
                             ("input_axons", cut.input_axons, p.input_axons_per_core),
                             ("output_axons", out_axons, p.output_axons_per_core),
                             ("synapse_bits", cut.synapse_bits, p.synapse_bits_per_core)):
        c = int(np.argmax(used))
        if used[c] > cap and (worst is None or used[c] / cap > worst[2] / worst[3]):
            worst = (limit, c, int(used[c]), cap)
    return worst


def _n_synapses(pr: Projection) -> int:
    """Synapses the projection makes (a conv's kernel counted at every output it reaches)."""
    if pr.conv is None:
        return int(np.count_nonzero(pr.nz))
    layer, cv = pr.conv, pr.conv.conv
    C_out, kh, kw, cg = layer.weights.shape
    Ho, Wo, _ = layer.shape
    H, W, _ = cv.in_shape
    rt = _axis_taps(H, kh, cv.stride[0], cv.padding[0], cv.dilation[0], 0, Ho - 1).sum(0)  # per tap: rows
    ct = _axis_taps(W, kw, cv.stride[1], cv.padding[1], cv.dilation[1], 0, Wo - 1).sum(0)
    nzk = (layer.weights != 0)                              # (C_out, kh, kw, cg)
    return int((nzk * rt[None, :, None, None] * ct[None, None, :, None]).sum())


def _layer_fit(i, n, projs, c: _Cut, o, binding, p: ChipProfile) -> LayerFit:
    use = {"neurons": c.sizes.max() / p.neurons_per_core, "input_axons": c.input_axons.max() / p.input_axons_per_core,
           "output_axons": o.max() / p.output_axons_per_core,
           "synapse_bits": c.synapse_bits.max() / p.synapse_bits_per_core}
    return LayerFit(binding_use=float(use.get(binding, 0.0)), layer=i, neurons=n, synapses=int(sum(_n_synapses(pr) for pr in projs)),
                    weight_bits=[pr.weight_bits for pr in projs], sign_modes=[pr.sign_mode for pr in projs],
                    delay_bits=max([pr.delay_bits for pr in projs] or [0]), cores=int(c.first.size),
                    neurons_per_core=int(c.m), binding=binding, synapse_bits=int(c.synapse_bits.sum()),
                    input_axons=int(c.input_axons.max()), output_axons=int(o.max()), formats=c.formats,
                    sparse=c.sparse)


def partition(net: IntNetwork, profile: ChipProfile | str = "loihi1", chips: int | None = None,
              chunks: list[int] | None = None) -> FitResult:
    """Map every layer onto cores of the profile; raise FitError naming the layer, the limit and
    the value when it cannot be done (or needs more than `chips` chips).

    chunks: impose the neurons per core of each layer instead of searching (the accounting of a
    given mapping; FitError names the first core that breaks a limit)."""
    p = load_profile(profile) if isinstance(profile, str) else profile
    if chips is not None and (isinstance(chips, bool) or not isinstance(chips, int) or chips < 1):
        raise ValueError(f"--chips = {chips!r} must be an integer >= 1")
    if net.input_message_bits > 0 and not p.graded_spikes:
        raise FitError(f"layer 0: input_message_bits = {net.input_message_bits} needs graded spikes, which chip "
                       f"{p.name} does not have", 0, "graded_spikes", net.input_message_bits, 0)
    all_projs = projections(net, p)
    L = len(net.layers)
    fits: list[LayerFit | None] = [None] * L
    cuts: list[_Cut | None] = [None] * L
    outs: list[np.ndarray | None] = [None] * L
    next_routes = None
    for i in reversed(range(L)):
        layer, projs = net.layers[i], all_projs[i]
        for pr in projs:
            if pr.delay_bits > p.max_delay_bits:
                raise FitError(f"layer {i}: {pr.name} delays need {pr.delay_bits} delay bits; chip {p.name} has "
                               f"{p.max_delay_bits}", i, "delay_bits", pr.delay_bits, p.max_delay_bits)
        n = layer.n_out
        memo: dict[int, tuple] = {}

        def check(m, _n=n, _projs=projs, _i=i, _nr=next_routes, _memo=memo):
            if m not in _memo:
                c = _cut(_projs, _n, m, p)
                o = _out_axons(c, _i, _nr)
                _memo[m] = (c, o, _violation(c, o, p))
            return _memo[m]

        # k: number of cores; a chunk is ceil(n / k) neurons. The totals at the widest chunk give a
        # lower bound on k (splitting never lowers total memory or routes); gallop up, then bisect.
        if chunks is not None:
            m = int(chunks[i])
            if not 1 <= m <= n:
                raise ValueError(f"layer {i}: chunk = {m} must be in [1, {n}]")
            c, o, bad = check(m)
            if bad is not None:
                limit, core, value, cap = bad
                raise FitError(f"layer {i}: {LIMIT_NAMES[limit]} = {value:,} exceeds the limit {cap:,} of chip "
                               f"{p.name} (core {core} of the layer, {m} neurons per core)", i, limit, value, cap)
            next_routes = c.routes.get(i - 1)
            cuts[i], outs[i] = c, o
            fits[i] = _layer_fit(i, n, projs, c, o, "imposed", p)
            continue
        c, o, bad = check(min(n, p.neurons_per_core))
        binding = None if bad is None else bad[0]
        k_lo = max(-(-n // p.neurons_per_core), -(-int(c.synapse_bits.sum()) // p.synapse_bits_per_core),
                   -(-int(o.sum()) // p.output_axons_per_core))
        k_lo = min(k_lo, n)
        k_fail, k_ok, step = k_lo - 1, k_lo, 1
        while (bad_k := check(-(-n // k_ok))[2]) is not None:
            if k_ok == n:
                limit, core, value, cap = bad_k
                raise FitError(f"layer {i}: {LIMIT_NAMES[limit]} = {value:,} exceeds the limit {cap:,} of chip "
                               f"{p.name} even with one neuron per core (neuron {core})", i, limit, value, cap)
            binding = bad_k[0]
            k_fail, k_ok, step = k_ok, min(k_ok + step, n), step * 2
        while k_ok - k_fail > 1:
            mid = (k_ok + k_fail) // 2
            bad_k = check(-(-n // mid))[2]
            if bad_k is None:
                k_ok = mid
            else:
                k_fail, binding = mid, bad_k[0]
        c, o, bad = check(-(-n // k_ok))
        if binding is None and c.first.size > 1:
            binding = "neurons"
        if binding is None:                     # one core holds the layer: name its fullest resource
            used = {"neurons": c.sizes.max() / p.neurons_per_core,
                    "input_axons": c.input_axons.max() / p.input_axons_per_core,
                    "output_axons": o.max() / p.output_axons_per_core,
                    "synapse_bits": c.synapse_bits.max() / p.synapse_bits_per_core}
            binding = max(used, key=used.get)
        cuts[i], outs[i] = c, o
        fits[i] = _layer_fit(i, n, projs, c, o, binding, p)
        next_routes = c.routes.get(i - 1)
    res = FitResult(
        profile=p, layers=fits, chips_allowed=chips,
        core_layer=np.concatenate([np.full(c.first.size, i) for i, c in enumerate(cuts)]),
        core_first=np.concatenate([c.first for c in cuts]),
        core_neurons=np.concatenate([c.sizes for c in cuts]),
        core_input_axons=np.concatenate([c.input_axons for c in cuts]),
        core_output_axons=np.concatenate(outs),
        core_synapse_bits=np.concatenate([c.synapse_bits for c in cuts]))
    if chips is not None and res.chips > chips:
        big = max(fits, key=lambda f: f.cores)
        raise FitError(f"network: needs {res.cores:,} cores = {res.chips} chips of {p.cores_per_chip}; --chips {chips} "
                       f"allows {chips * p.cores_per_chip:,} (largest: layer {big.layer}, {big.cores:,} cores)",
                       big.layer, "chips", res.chips, chips)
    return res
