"""neurohw's on-chip noise: a counter-based random source and Loihi-style amplitudes.

Every draw is MurmurHash3_x86_32 (Austin Appleby, public domain) of a 16-byte key, the
four little-endian uint32 words (layer, neuron, step, sample), with the layer's noise seed
as the hash seed. No state is carried between draws, so a draw depends only on where and
when it is used, never on batch order, thread schedule or backend. docs/noise.md specifies
it exactly. The same functions run on Python ints, NumPy int64 arrays and in Numba.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from . import chip
from .chip import NOISE_EXP_BIAS, NOISE_MANT_SCALE, shift_exp

M32 = 0xFFFFFFFF
_C1, _C2 = 0xCC9E2D51, 0x1B873593


@njit(cache=True)
def murmur3_key(seed, layer, neuron, step, sample):
    """MurmurHash3_x86_32 of the 16-byte key (layer, neuron, step, sample) with `seed`.

    Written once, inline, in int64 arithmetic masked to 32 bits: the same body runs on
    Python ints, NumPy int64 arrays (``murmur3_key.py_func``) and in Numba."""
    h = seed & M32
    for k in (layer, neuron, step, sample):
        k = (k & M32) * _C1 & M32
        k = ((k << 15) | (k >> 17)) & M32
        k = k * _C2 & M32
        h = h ^ k
        h = ((h << 13) | (h >> 19)) & M32
        h = (h * 5 + 0xE6546B64) & M32
    h = h ^ 16                      # length of the key in bytes
    h = h ^ (h >> 16)
    h = h * 0x85EBCA6B & M32
    h = h ^ (h >> 13)
    h = h * 0xC2B2AE35 & M32
    return h ^ (h >> 16)


def _logistic_table() -> np.ndarray:
    r = np.arange(1 << chip.NOISE_R_BITS)
    p = (r + 0.5) / (1 << chip.NOISE_R_BITS)
    return np.round(chip.LOGISTIC_SCALE * np.log(p / (1 - p))).astype(np.int64)


def _gumbel_table() -> np.ndarray:
    """Quantiles of the Gumbel (max) law, F(x) = exp(-exp(-x)): as threshold noise n the escape is
    P(v + n > vth) = 1 - exp(-exp((v - vth) / s)), i.e. P(spike in a step) = 1 - exp(-lambda dt) of an
    exponential clock with hazard lambda = exp(beta (v - vth)) / tau_s (background.md 4a), with
    s = 1 / beta and the threshold moved up by ln(tau_s / dt) / beta."""
    r = np.arange(1 << chip.NOISE_R_BITS)
    p = (r + 0.5) / (1 << chip.NOISE_R_BITS)
    return np.round(-chip.GUMBEL_SCALE * np.log(-np.log(p))).astype(np.int64)


LOGISTIC_TABLE = _logistic_table()  # 256 entries, antisymmetric, in [-100, 100]
UNIFORM_TABLE = np.arange(1 << chip.NOISE_R_BITS, dtype=np.int64) - chip.NOISE_R_OFFSET
GUMBEL_TABLE = _gumbel_table()      # 256 entries, increasing, in [-29, 100]
NOISE_TABLES = np.stack([UNIFORM_TABLE, LOGISTIC_TABLE, GUMBEL_TABLE])  # indexed [dist, r]


@njit(cache=True, inline="always")
def noise_value(h, tables, dist, mant, exp):
    """Noise from a hash: x = table[dist][top 8 bits], then (x + mant*64) * 2**(exp - 7)."""
    return shift_exp(tables[dist, h >> 24] + mant * NOISE_MANT_SCALE, exp - NOISE_EXP_BIAS)


def draw(seed, layer, neuron, step, sample, dist="uniform", mant=0, exp=7):
    """NumPy reference: the noise values for broadcast arrays of keys."""
    args = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (seed, layer, neuron, step, sample)))
    h = murmur3_key.py_func(*args)
    return Noise(dist=dist, mant=mant, exp=exp).values()[h >> 24]


# ============================================================================================
# Per-layer noise parameters
# ============================================================================================
@dataclass(frozen=True)
class Noise:
    """Noise of one layer: where it enters, its distribution, amplitude and seed."""

    inject: str = "none"          # none | current | voltage | threshold
    dist: str = "uniform"         # uniform | logistic | gumbel
    mant: int = 0                 # noise_mant: mean offset, in units of 64 raw steps
    exp: int = 7                  # noise_exp: amplitude 2**(exp - 7)
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.inject not in chip.NOISE_INJECT:
            raise ValueError(f"{where}: noise inject = {self.inject!r} is not allowed; allowed {chip.NOISE_INJECT}")
        if self.dist not in chip.NOISE_DIST:
            raise ValueError(f"{where}: noise dist = {self.dist!r} is not allowed; allowed {chip.NOISE_DIST}")
        for name, val, rng in (("noise_mant", self.mant, chip.NOISE_MANT_RANGE),
                               ("noise_exp", self.exp, chip.NOISE_EXP_RANGE),
                               ("noise_seed", self.seed, chip.NOISE_SEED_RANGE)):
            if not isinstance(val, (int, np.integer)) or isinstance(val, bool):
                raise ValueError(f"{where}: {name} must be an integer, got {val!r}")
            chip.check_range(where, name, val, *rng)

    @property
    def on(self) -> bool:
        return self.inject != "none"

    def values(self) -> np.ndarray:
        """The 256 equally likely noise values (one per raw draw r), in v units."""
        d = chip.NOISE_DIST.index(self.dist)
        return np.array([noise_value(r << 24, NOISE_TABLES, d, self.mant, self.exp) for r in range(256)])


# ============================================================================================
# Analytic consequences of the noise
# ============================================================================================
def escape_probability(v, vth_eff, noise: Noise) -> np.ndarray:
    """Exact P(spike | v) for threshold noise: P(v + n > vth_eff) over the 256 equally
    likely values n. This is the chip's escape function, a staircase in v."""
    n = np.sort(noise.values())
    v = np.asarray(v, dtype=np.int64)
    # count of n with n > vth_eff - v
    k = n.size - np.searchsorted(n, vth_eff - v, side="right")
    return k / n.size


def noise_moments(noise: Noise) -> tuple[float, float]:
    """Mean and variance that one step of current/voltage noise adds (before decay)."""
    n = noise.values().astype(np.float64)
    return float(n.mean()), float(n.var())


@njit(cache=True, inline="always")
def noise_terms(kind, dist, mant, exp, seed, tables, layer, neuron, step, sample):
    """The (n_u, n_v, n_th) noise of one neuron at one step: one draw, put where `kind`
    (index into chip.NOISE_INJECT) says; all zero, and no draw, when noise is off."""
    if kind == 0:
        return 0, 0, 0
    z = noise_value(murmur3_key(seed, layer, neuron, step, sample), tables, dist, mant, exp)
    if kind == 1:
        return z, 0, 0
    if kind == 2:
        return 0, z, 0
    return 0, 0, z
