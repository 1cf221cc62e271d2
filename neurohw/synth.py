"""Random integer networks and rasters across the chip's full parameter ranges.

Used by the parity tests, the demo and the benchmarks. Each parameter is drawn so that its
extremes come up often (they are where emulators go wrong) and the bulk is spread
log-uniformly, so that a good share of the networks spike at all.
"""
from __future__ import annotations

import numpy as np

from . import chip
from .network import Conv2d, IntLayer, IntNetwork
from .noise import Noise


def _pick(rng, lo: int, hi: int, p_edge: float = 0.25, log: bool = False) -> int:
    """An integer in [lo, hi]: an endpoint with probability p_edge, else (log-)uniform."""
    if rng.random() < p_edge:
        return int(lo if rng.random() < 0.5 else hi)
    if log and lo >= 0:
        return int(min(hi, max(lo, np.round(np.exp(rng.uniform(0, np.log(hi - lo + 1)))) - 1 + lo)))
    return int(rng.integers(lo, hi + 1))


def random_weights(rng, shape, num_weight_bits: int, mode: int | None = None) -> np.ndarray:
    """Representable weights of a random sign mode, extremes included."""
    mode = mode or int(rng.choice([chip.SIGN_EXCITATORY, chip.SIGN_MIXED, chip.SIGN_INHIBITORY]))
    lo, hi, step = chip.weight_limits(mode, num_weight_bits)
    grid = np.arange(lo, hi + 1, step)
    w = rng.choice(grid, size=shape)
    sparsity = rng.choice([0.0, 0.5, 0.9])
    w[rng.random(shape) < sparsity] = 0
    if w.size and rng.random() < 0.3:      # some extreme entries
        flat = w.reshape(-1)
        flat[rng.integers(0, flat.size, max(1, flat.size // 10))] = rng.choice([lo, hi])
    # zeroing can change the derived sign mode; settle on what Lava would make of it
    while not np.array_equal(fixed := chip.lava_weights(w, num_weight_bits), w):
        w = fixed
    return w.astype(np.int16)


def random_noise(rng) -> Noise:
    return Noise(inject=str(rng.choice(chip.NOISE_INJECT[1:])), dist=str(rng.choice(chip.NOISE_DIST)),
                 mant=_pick(rng, *chip.NOISE_MANT_RANGE, p_edge=0.2),
                 exp=_pick(rng, *chip.NOISE_EXP_RANGE, p_edge=0.2), seed=int(rng.integers(0, 2**32)))


def random_lif(rng, n: int) -> dict:
    """du, dv, vth, bias_mant, bias_exp of a population of n, extremes included."""
    return dict(
        du=_pick(rng, *chip.DU_RANGE, log=True), dv=_pick(rng, *chip.DV_RANGE, log=True),
        vth=_pick(rng, *chip.VTH_RANGE, p_edge=0.15, log=True),
        bias_mant=np.array([_pick(rng, *chip.BIAS_MANT_RANGE, p_edge=0.2) for _ in range(n)], np.int16)
        * (rng.random(n) < rng.choice([0.0, 0.5, 1.0])),
        bias_exp=np.array([_pick(rng, *chip.BIAS_EXP_RANGE, p_edge=0.3) for _ in range(n)], np.int8))


def random_network(rng, max_layers: int = 3, max_n: int = 64, p_recurrent: float = 0.5,
                   p_noise: float = 0.0, graded: bool | None = None) -> IntNetwork:
    n_in = _pick(rng, 1, max_n, p_edge=0.15)
    layers, n_prev = [], n_in
    for _ in range(int(rng.integers(1, max_layers + 1))):
        n = _pick(rng, 1, max_n, p_edge=0.15)
        nwb = _pick(rng, *chip.NUM_WEIGHT_BITS_RANGE, p_edge=0.5)
        rec = rng.random() < p_recurrent
        rnwb = _pick(rng, *chip.NUM_WEIGHT_BITS_RANGE, p_edge=0.5)
        layers.append(IntLayer(
            weights=random_weights(rng, (n, n_prev), nwb),
            weight_exp=_pick(rng, *chip.WEIGHT_EXP_RANGE, p_edge=0.3), num_weight_bits=nwb,
            **random_lif(rng, n),
            rec_weights=random_weights(rng, (n, n), rnwb) if rec else None,
            rec_weight_exp=_pick(rng, *chip.WEIGHT_EXP_RANGE, p_edge=0.3), rec_num_weight_bits=rnwb,
            noise=random_noise(rng) if rng.random() < p_noise else Noise()))
        n_prev = n
    graded = rng.random() < 0.2 if graded is None else graded
    return IntNetwork(n_in=n_in, layers=layers, input_message_bits=int(rng.choice([1, 8, 16])) if graded else 0)


def random_raster(rng, net: IntNetwork, batch: int, steps: int, density: float | None = None) -> np.ndarray:
    """[batch, steps, n_in]: binary spikes at `density` (random, 0 and 1 included), or
    graded payloads up to the network's message width."""
    if density is None:
        density = float(rng.choice([0.0, 1.0, rng.uniform(0, 1), rng.uniform(0, 0.2)]))
    on = rng.random((batch, steps, net.n_in)) < density
    if net.input_message_bits == 0:
        return on.astype(np.uint8)
    hi = (1 << net.input_message_bits) - 1
    vals = np.where(rng.random(on.shape) < 0.2, hi, rng.integers(0, hi + 1, on.shape))
    return (on * vals).astype(np.int32)


# ---- conv, pool and delay networks ---------------------------------------------------------
KINDS = ("conv", "pool", "delay", "dense")


def _random_conv(rng, in_shape, max_out: int, max_kernel: int = 7):
    """A random valid Conv2d geometry and kernel shape on in_shape, output map <= max_out."""
    H, W, C = in_shape
    divisors = [g for g in range(1, C + 1) if C % g == 0]
    for _ in range(50):
        kh, kw = (int(rng.integers(1, max_kernel + 1)) for _ in range(2))
        stride = tuple(int(rng.choice([1, 1, 2, 3])) for _ in range(2))
        padding = tuple(int(rng.choice([0, 0, 1, 2, 3])) for _ in range(2))
        dilation = tuple(int(rng.choice([1, 1, 2, 3])) for _ in range(2))
        groups = int(rng.choice(divisors))
        c_out = groups * int(rng.integers(1, 4))
        ho = chip.conv_out_size(H, kh, stride[0], padding[0], dilation[0])
        wo = chip.conv_out_size(W, kw, stride[1], padding[1], dilation[1])
        if ho >= 1 and wo >= 1 and ho * wo * c_out <= max_out:
            return (c_out, kh, kw, C // groups), Conv2d(in_shape, stride, padding, dilation, groups)
    return (1, 1, 1, C), Conv2d(in_shape)           # always fits


def random_delays(rng, shape) -> np.ndarray:
    """Delays 0..d_max, d_max drawn with its edges (0: like Dense; 63: the chip's maximum)."""
    d_max = int(rng.choice([0, 1, 3, 8, chip.MAX_DELAY])) if rng.random() < 0.6 else _pick(rng, *chip.DELAY_RANGE)
    d = rng.integers(0, d_max + 1, size=shape)
    if d.size and rng.random() < 0.5:
        d.flat[rng.integers(0, d.size)] = d_max      # the largest delay occurs
    return d.astype(np.int8)


def random_projection_network(rng, max_layers: int = 3, max_map: int = 9, max_n: int = 48,
                              p_recurrent: float = 0.3, p_noise: float = 0.0, kinds=KINDS,
                              graded: bool | None = None) -> IntNetwork:
    """A random network with at least one conv, sum-pool or delay layer (kinds), over the
    chip's ranges: maps odd and even, kernels 1..7, strides, paddings, dilations, groups, all
    sign modes, delays 0..63, recurrent delays, noise with probability p_noise."""
    n_layers = int(rng.integers(1, max_layers + 1))
    new = [k for k in kinds if k != "dense"]
    plan = [str(rng.choice(kinds)) for _ in range(n_layers)]
    if not any(k in new for k in plan):
        plan[int(rng.integers(0, n_layers))] = str(rng.choice(new))
    spatial = plan[0] in ("conv", "pool")
    shape = (int(rng.integers(1, max_map + 1)), int(rng.integers(1, max_map + 1)), int(rng.integers(1, 4)))
    n_in = int(np.prod(shape)) if spatial else _pick(rng, 1, max_n, p_edge=0.15)
    graded = rng.random() < 0.2 if graded is None else graded
    bits = int(rng.choice([1, 8] if spatial else [1, 8, 16, 24])) if graded else 0
    layers, n_prev, map_shape = [], n_in, shape if spatial else None
    for kind in plan:
        if kind in ("conv", "pool") and map_shape is None:
            # after a flat layer, read its neurons as a map of the same size
            map_shape = (n_prev, 1, 1) if rng.random() < 0.5 else (1, n_prev, 1)
        nwb = _pick(rng, *chip.NUM_WEIGHT_BITS_RANGE, p_edge=0.5)
        conv = delays = None
        weight_exp = _pick(rng, *chip.WEIGHT_EXP_RANGE, p_edge=0.3)
        if kind == "conv":
            w_shape, conv = _random_conv(rng, map_shape, max_n)
            weights, weight_exp = random_weights(rng, w_shape, nwb), 0
        elif kind == "pool":
            H, W, C = map_shape
            kh, kw = int(rng.integers(1, min(H, 3) + 1)), int(rng.integers(1, min(W, 3) + 1))
            lo, hi, step = chip.weight_limits(chip.SIGN_EXCITATORY, nwb)
            weights = np.full((C, kh, kw, 1), rng.choice(np.arange(step, hi + 1, step)), np.int16)
            conv, weight_exp = Conv2d(map_shape, (kh, kw), 0, 1, C, pool=True), 0
        else:
            n = _pick(rng, 1, max_n, p_edge=0.15)
            weights = random_weights(rng, (n, n_prev), nwb)
            if kind == "delay":
                delays = random_delays(rng, (n, n_prev))
        layer = IntLayer(weights=weights, weight_exp=weight_exp, num_weight_bits=nwb, conv=conv, delays=delays,
                         du=0, dv=0, vth=0)
        n = layer.n_out
        lif = random_lif(rng, n)
        rec = rng.random() < p_recurrent
        rnwb = _pick(rng, *chip.NUM_WEIGHT_BITS_RANGE, p_edge=0.5)
        layer = IntLayer(weights=weights, weight_exp=weight_exp, num_weight_bits=nwb, conv=conv, delays=delays,
                         rec_weights=random_weights(rng, (n, n), rnwb) if rec else None,
                         rec_weight_exp=_pick(rng, *chip.WEIGHT_EXP_RANGE, p_edge=0.3), rec_num_weight_bits=rnwb,
                         rec_delays=random_delays(rng, (n, n)) if rec and rng.random() < 0.6 else None,
                         noise=random_noise(rng) if rng.random() < p_noise else Noise(), **lif)
        layers.append(layer)
        n_prev, map_shape = n, (layer.shape if conv is not None else None)
    return IntNetwork(n_in=n_in, layers=layers, input_message_bits=bits)
