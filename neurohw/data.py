"""Datasets and spike encoders for training spiking networks.

Everything here is generated in code or shipped inside an installed package (scikit-learn's
digits), so experiments never depend on a download and are reproducible from a seed alone.
Every random draw comes from a generator built from an explicit ``seed`` argument: there is
no global random state. Outputs are NumPy arrays: spike rasters are ``uint8`` of shape
``[batch, steps, n_in]`` (one row per time step, so a raster can be fed step by step to the
emulator), labels are ``int64``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "yin_yang", "yin_yang_class", "yin_yang_splits", "latency_encode", "rate_encode",
    "digits", "floyd_steinberg", "smiley_image", "SpikeTrainMatching", "spike_train_matching",
]


# --------------------------------------------------------------------------------------
# Yin-Yang (Kriener et al. 2021, github.com/lkriener/yin_yang_data_set)
# --------------------------------------------------------------------------------------

YIN_YANG_SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def yin_yang_class(x: float, y: float, r_small: float = 0.1, r_big: float = 0.5) -> int:
    """Class of one point (x, y) of the Yin-Yang plane, by the reference's region rules.

    The sign is the big circle centred at (r_big, r_big); the two dots of radius r_small sit
    at (0.5 r_big, r_big) and (1.5 r_big, r_big). Label 2 is the dots; label 1 is the region
    the reference calls ``is_yin`` (the upper half outside the right half-size disc, plus
    the left half-size disc, plus the right dot), label 0 the rest. The reference returns
    ``int(is_yin)``, so these integer labels are the published dataset's, whatever names
    its ``class_names`` list gives them; keeping them makes our splits the published ones.
    Distances are computed with ``sqrt`` as in the reference so that ties on the boundaries
    (measure zero, but floats) resolve identically.
    """
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    in_right_dot = d_right <= r_small
    in_left_half_disc = r_small < d_left <= 0.5 * r_big
    upper_outside_right_disc = y > r_big and d_right > 0.5 * r_big
    return int(in_right_dot or in_left_half_disc or upper_outside_right_disc)


def yin_yang(n: int, seed: int, r_small: float = 0.1, r_big: float = 0.5
             ) -> tuple[np.ndarray, np.ndarray]:
    """Yin-Yang samples: features (x, y, 1-x, 1-y) float32 [n, 4] and labels int64 [n].

    Reproduces the reference sampler draw for draw (``np.random.RandomState(seed)``): per
    sample a target class ``randint(3)``, then points ``rand(2) * 2 r_big`` are drawn and
    rejected until one lies inside the big circle and has that class. Drawing the class
    first balances the classes even though the dots cover only ~8% of the area. The
    mirrored features 1-x, 1-y give every input a partner that is large when it is small,
    which time-to-first-spike networks need (a small value alone means a late spike).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 < r_small < 0.5 * r_big:
        raise ValueError(f"need 0 < r_small < r_big/2, got r_small={r_small}, r_big={r_big}")
    rng = np.random.RandomState(seed)
    feats = np.empty((n, 4), dtype=np.float64)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            c = yin_yang_class(x, y, r_small, r_big)
            if c == goal:
                break
        feats[i] = (x, y, 1.0 - x, 1.0 - y)
        labels[i] = c
    return feats.astype(np.float32), labels


def yin_yang_splits(r_small: float = 0.1, r_big: float = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The standard splits: train 5000 (seed 42), validation 1000 (seed 41), test 1000 (seed 40).

    These sizes and seeds are the reference repository's, so results are comparable with
    published Yin-Yang accuracies. Returns {"train"|"validation"|"test": (features, labels)}.
    """
    return {name: yin_yang(n, seed, r_small, r_big) for name, (n, seed) in YIN_YANG_SPLITS.items()}


# --------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------

def _as_batch(x) -> np.ndarray:
    """[batch, *features] -> float64 [batch, n_features]; image-like inputs are flattened."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected an array [batch, features...], got shape {x.shape}")
    return x.reshape(x.shape[0], -1)


def _check_range(x: np.ndarray, lo: float, hi: float, what: str) -> None:
    """Raise on the first value outside [lo, hi] (NaN included): clipping would hide bugs."""
    bad = ~((x >= lo) & (x <= hi))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{what}: value {x[idx]!r} at index {idx} is outside the range "
                         f"[{lo}, {hi}] ({int(bad.sum())} value(s) out of range)")


def latency_encode(x, steps: int, t_min: int = 0, t_max: int | None = None, lo: float = 0.0,
                   hi: float = 1.0, bias_spike: bool = True) -> np.ndarray:
    """Time-to-first-spike code: each feature fires exactly one spike; larger fires earlier.

    ``t = round(t_min + (1 - (x - lo) / (hi - lo)) * (t_max - t_min))`` with rounding half
    up, so ``hi`` fires at ``t_min`` and ``lo`` at ``t_max`` (default ``steps - 1``). Large
    values fire first because they then have the most time to drive the network, the usual
    convention for time-to-first-spike Yin-Yang networks. With ``bias_spike`` one extra
    input channel (the last) fires once at ``t_min``: a reference spike that lets the
    network learn a threshold-like offset from timing alone.

    x: [batch, *features] in [lo, hi]; values outside raise ValueError (never clipped).
    Returns uint8 [batch, steps, n_features (+1)].
    """
    if t_max is None:
        t_max = steps - 1
    if not 0 <= t_min <= t_max < steps:
        raise ValueError(f"need 0 <= t_min <= t_max < steps, got t_min={t_min}, "
                         f"t_max={t_max}, steps={steps}")
    if not hi > lo:
        raise ValueError(f"need hi > lo, got lo={lo}, hi={hi}")
    x = _as_batch(x)
    _check_range(x, lo, hi, "latency_encode")
    frac = 1.0 - (x - lo) / (hi - lo)
    t = np.floor(t_min + frac * (t_max - t_min) + 0.5).astype(np.int64)
    t = np.clip(t, t_min, t_max)   # only guards float round-off; range was checked above
    batch, n = x.shape
    out = np.zeros((batch, steps, n + int(bias_spike)), dtype=np.uint8)
    b_idx, f_idx = np.indices((batch, n))
    out[b_idx, t, f_idx] = 1
    if bias_spike:
        out[:, t_min, n] = 1
    return out


def rate_encode(x, steps: int, seed: int, max_rate: float = 1.0) -> np.ndarray:
    """Bernoulli rate code: at every step each input spikes with probability ``x * max_rate``.

    The simplest code for data with no temporal structure (e.g. pixel intensities); the
    count over ``steps`` estimates x. ``max_rate`` (per step, in [0, 1]) caps the density,
    e.g. to stay within a chip's spike-traffic budget.

    x: [batch, *features] in [0, 1]; values outside raise ValueError (never clipped).
    Returns uint8 [batch, steps, n_features].
    """
    if not 0.0 <= max_rate <= 1.0:
        raise ValueError(f"max_rate is a per-step probability in [0, 1], got {max_rate}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    x = _as_batch(x)
    _check_range(x, 0.0, 1.0, "rate_encode")
    rng = np.random.default_rng(seed)
    u = rng.random((x.shape[0], steps, x.shape[1]))
    return (u < (x * max_rate)[:, None, :]).astype(np.uint8)


# --------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------

def digits(seed: int = 0, test_size: float = 0.25) -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1797 samples, shipped with the package).

    A small real-image benchmark that needs no download. Pixels (0..16) are divided by 16
    to lie in [0, 1], ready for ``rate_encode`` / ``latency_encode``. The train/test split
    is stratified and fixed by ``seed`` so every run and every model sees the same test set
    (default: 1347 train / 450 test). Returns x_train, y_train, x_test, y_test and the
    original row indices idx_train, idx_test.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_size,
                                           stratify=y, random_state=seed)
    return {"x_train": x[idx_train], "y_train": y[idx_train],
            "x_test": x[idx_test], "y_test": y[idx_test],
            "idx_train": idx_train.astype(np.int64), "idx_test": idx_test.astype(np.int64)}


# --------------------------------------------------------------------------------------
# Spike-train matching
# --------------------------------------------------------------------------------------

def floyd_steinberg(img) -> np.ndarray:
    """Floyd-Steinberg error diffusion of a gray image in [0, 1] to a binary uint8 image.

    Dithering turns smooth gray levels into a spike pattern whose local density follows
    the gray level, so a target image becomes a learnable spike raster. Pixels are visited
    row by row, left to right; each is set to 1 if its value (with diffused error) is
    >= 0.5, and the error goes 7/16 right, 3/16 down-left, 5/16 down, 1/16 down-right;
    error that would leave the image is dropped.
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    _check_range(img, 0.0, 1.0, "floyd_steinberg")
    h, w = img.shape
    out = np.zeros((h, w), dtype=np.uint8)
    cur = img[0].tolist() if h else []
    for r in range(h):
        nxt = img[r + 1].tolist() if r + 1 < h else [0.0] * w
        row_out = [0] * w
        for c in range(w):
            v = cur[c]
            q = 1 if v >= 0.5 else 0
            row_out[c] = q
            e = v - q
            if c + 1 < w:
                cur[c + 1] += e * (7 / 16)
                nxt[c + 1] += e * (1 / 16)
            if c > 0:
                nxt[c - 1] += e * (3 / 16)
            nxt[c] += e * (5 / 16)
        out[r] = row_out
        cur = nxt
    return out


def smiley_image(height: int, width: int) -> np.ndarray:
    """A smiley face with smooth gray levels in [0, 1], float64 [height, width].

    Built from Gaussian-profiled strokes (face outline, eyes, mouth) over a soft shaded
    face and a faint background gradient, so that after dithering the target has both
    dense strokes and sparse, irregular regions: a harder and more recognisable target
    than a constant rate.
    """
    v, u = np.meshgrid(np.linspace(1.0, -1.0, height), np.linspace(-1.0, 1.0, width),
                       indexing="ij")
    r = np.hypot(u, v)
    background = 0.05 + 0.1 * (u + 1.0) / 2.0
    face = 0.25 / (1.0 + np.exp((r - 0.78) / 0.03))            # soft-edged shaded disc
    outline = 0.95 * np.exp(-((r - 0.82) / 0.05) ** 2)
    eyes = sum(0.9 * np.exp(-((u - ex) ** 2 + (v - 0.3) ** 2) / (2 * 0.09 ** 2))
               for ex in (-0.3, 0.3))
    d_mouth = np.abs(np.hypot(u, v - 0.1) - 0.5)
    mouth = 0.85 * np.exp(-(d_mouth / 0.06) ** 2) / (1.0 + np.exp((v + 0.05) / 0.04))
    img = np.maximum.reduce([background + face, outline, eyes, mouth])
    return np.clip(img, 0.0, 1.0)


@dataclass(frozen=True)
class SpikeTrainMatching:
    """A spike-train matching task: reproduce ``target`` from the frozen ``inputs``.

    inputs: uint8 [steps, n_in] frozen Poisson raster; target: uint8 [steps, n_out]
    dithered image; image: float64 [n_out, steps] the gray image before dithering;
    dt_ms: the step length the rates refer to.
    """
    inputs: np.ndarray
    target: np.ndarray
    image: np.ndarray
    dt_ms: float


def spike_train_matching(seed: int = 0, n_in: int = 200, n_out: int = 200, steps: int = 198,
                         rate_hz: float = 50.0, dt_ms: float = 1.0) -> SpikeTrainMatching:
    """Frozen Poisson inputs and a dithered smiley target, for learning exact spike timing.

    A network must map one fixed input raster (each input spikes with per-step probability
    ``rate_hz * dt_ms / 1000``) to a prescribed output raster: neuron i's target train is
    row i of a smiley image (n_out x steps) Floyd-Steinberg dithered to binary, so success
    is visible at a glance in a raster plot. The target depends only on the sizes; the
    inputs only on ``seed``.
    """
    p = rate_hz * dt_ms / 1000.0
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"rate_hz * dt_ms / 1000 = {p} is not a per-step probability in [0, 1]")
    rng = np.random.default_rng(seed)
    inputs = (rng.random((steps, n_in)) < p).astype(np.uint8)
    image = smiley_image(n_out, steps)
    target = np.ascontiguousarray(floyd_steinberg(image).T)
    return SpikeTrainMatching(inputs=inputs, target=target, image=image, dt_ms=dt_ms)
