"""Random integer networks and rasters across the chip's full parameter ranges.

Used by the parity tests, the demo and the benchmarks. Each parameter is drawn so that its
extremes come up often (they are where emulators go wrong) and the bulk is spread
log-uniformly, so that a good share of the networks spike at all.
"""
from __future__ import annotations

import numpy as np

from . import chip
from .network import IntLayer, IntNetwork
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
            du=_pick(rng, *chip.DU_RANGE, log=True), dv=_pick(rng, *chip.DV_RANGE, log=True),
            vth=_pick(rng, *chip.VTH_RANGE, p_edge=0.15, log=True),
            bias_mant=np.array([_pick(rng, *chip.BIAS_MANT_RANGE, p_edge=0.2) for _ in range(n)], np.int16)
            * (rng.random(n) < rng.choice([0.0, 0.5, 1.0])),
            bias_exp=np.array([_pick(rng, *chip.BIAS_EXP_RANGE, p_edge=0.3) for _ in range(n)], np.int8),
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
