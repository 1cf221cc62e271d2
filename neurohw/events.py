"""Event-based tasks generated in code: event-camera digits and an interval (timing) task.

Both are reproducible from explicit seeds (no global random state, no download), and both return
``uint8`` rasters ``[batch, steps, n_in]`` like ``neurohw.data``. Event frames are flattened in the
chip's (height, width, channel) C order, so pixel (r, c) of polarity p is input ``(r * W + c) * 2 + p``
and a conv layer sees the raster as an (H, W, 2) map without reindexing (docs/events.md).
"""
from __future__ import annotations

import numpy as np

__all__ = ["EVENT_DIGITS_DEFAULTS", "saccade_path", "events_from_frames", "event_digits", "event_digits_splits",
           "interval_task", "interval_splits"]

EVENT_DIGITS_DEFAULTS = dict(size=16, digit_size=12, steps_per_saccade=6, amplitude=1.5, threshold=0.2,
                             threshold_sd=0.02, noise_rate=0.002, eps=0.05)


def saccade_path(steps_per_saccade: int, amplitude: float) -> np.ndarray:
    """Sensor offsets (rows, cols) in pixels, float64 [3 * steps_per_saccade + 1, 2].

    Like N-MNIST's pan-tilt unit, the sensor makes three straight saccades around an isosceles
    triangle, (0, 0) -> (a, a) -> (0, 2a) -> (0, 0) in (row, col), at constant speed; the first row
    is the rest position before any event, the rest are the end of each step."""
    a = float(amplitude)
    corners = np.array([[0.0, 0.0], [a, a], [0.0, 2 * a], [0.0, 0.0]])
    k = np.arange(1, steps_per_saccade + 1) / steps_per_saccade
    path = [corners[:1]]
    for i in range(3):
        path.append(corners[i] + k[:, None] * (corners[i + 1] - corners[i]))
    return np.concatenate(path)


def _shift(img: np.ndarray, dr: float, dc: float) -> np.ndarray:
    """img moved by (dr, dc) pixels with bilinear interpolation, zero outside."""
    from scipy.ndimage import shift
    return shift(img, (dr, dc), order=1, mode="constant", cval=0.0)


def events_from_frames(frames: np.ndarray, threshold: np.ndarray | float, eps: float,
                       rng: np.random.Generator | None = None, noise_rate: float = 0.0) -> np.ndarray:
    """DVS pixel model: ON/OFF events from thresholded changes of log intensity.

    frames: float [steps + 1, H, W] in [0, 1], frame 0 the rest image. Each pixel keeps the log
    intensity log(eps + I) of its last event (initially of frame 0); at step t it sends an ON event
    when the new log intensity exceeds that reference by its threshold, an OFF event when it is
    below by the threshold, and moves the reference by a whole number of thresholds towards the
    new value (a binary raster carries one event per pixel, polarity and step). Background noise
    events of either polarity appear with probability ``noise_rate`` per pixel, polarity and step.
    Returns uint8 [steps, H, W, 2] (channel 0 ON, 1 OFF)."""
    logi = np.log(eps + frames)
    ref = logi[0].copy()
    th = np.broadcast_to(np.asarray(threshold, np.float64), ref.shape)
    out = np.zeros(frames.shape[:1] + frames.shape[1:] + (2,), np.uint8)[1:]
    for t in range(1, len(frames)):
        d = logi[t] - ref
        n = np.trunc(d / th)                      # whole thresholds crossed, sign = polarity
        out[t - 1, ..., 0] = n >= 1
        out[t - 1, ..., 1] = n <= -1
        ref = ref + n * th
    if noise_rate > 0:
        if rng is None:
            raise ValueError("events_from_frames: noise_rate > 0 needs an rng")
        out |= (rng.random(out.shape) < noise_rate).astype(np.uint8)
    return out


def _upsampled(x8: np.ndarray, digit_size: int, size: int) -> np.ndarray:
    """An 8x8 digit in [0, 1] upsampled (bilinear) to digit_size and centred on a size x size field."""
    from scipy.ndimage import zoom
    d = np.clip(zoom(x8.reshape(8, 8), digit_size / 8.0, order=1), 0.0, 1.0)
    canvas = np.zeros((size, size))
    o = (size - d.shape[0]) // 2
    canvas[o:o + d.shape[0], o:o + d.shape[1]] = d
    return canvas


def event_digits(x: np.ndarray, seed: int, size: int = 16, digit_size: int = 12, steps_per_saccade: int = 6,
                 amplitude: float = 1.5, threshold: float = 0.2, threshold_sd: float = 0.02,
                 noise_rate: float = 0.002, eps: float = 0.05) -> np.ndarray:
    """Event-camera recordings of 8x8 digits (scikit-learn's, values in [0, 1]), made like N-MNIST.

    Each digit is upsampled to ``digit_size`` pixels, centred on a ``size`` x ``size`` sensor with
    a random sub-pixel placement (up to half a pixel), and seen by a sensor that makes three
    saccades of ``amplitude`` pixels (``saccade_path``), ``steps_per_saccade`` steps each. Events
    come from ``events_from_frames`` with a per-pixel threshold drawn once per sensor
    (``threshold`` +- ``threshold_sd``: pixel mismatch) and background noise. Deterministic in
    ``seed``. Returns uint8 [N, 3 * steps_per_saccade, size * size * 2] in (H, W, 2) C order."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != 64:
        raise ValueError(f"event_digits: x must be [N, 64] 8x8 digits, got shape {x.shape}")
    if not (x.min(initial=0) >= 0 and x.max(initial=0) <= 1):
        raise ValueError(f"event_digits: pixel values must lie in [0, 1], got [{x.min()}, {x.max()}]")
    if not (digit_size >= 8 and amplitude >= 0 and (size - digit_size) / 2 >= amplitude + 0.5):
        raise ValueError(f"event_digits: digit_size = {digit_size} must be >= 8 and leave a margin "
                         f"(size - digit_size) / 2 >= amplitude + 0.5 = {amplitude + 0.5} so the saccades and "
                         f"the sub-pixel jitter keep it on the {size}x{size} sensor")
    if steps_per_saccade < 1 or threshold <= 0 or threshold_sd < 0 or not 0 <= noise_rate <= 1 or eps <= 0:
        raise ValueError("event_digits: need steps_per_saccade >= 1, threshold > 0, threshold_sd >= 0, "
                         f"0 <= noise_rate <= 1, eps > 0; got {steps_per_saccade}, {threshold}, {threshold_sd}, "
                         f"{noise_rate}, {eps}")
    rng = np.random.default_rng(seed)
    th = np.maximum(threshold + threshold_sd * rng.standard_normal((size, size)), 0.05 * threshold)
    path = saccade_path(steps_per_saccade, amplitude)
    top = -float(np.ceil(amplitude)) / 2
    out = np.zeros((len(x), len(path) - 1, size * size * 2), np.uint8)
    for i, img in enumerate(x):
        base = _upsampled(img, digit_size, size)
        jitter = rng.uniform(-0.5, 0.5, 2)
        frames = np.stack([np.clip(_shift(base, top + jitter[0] + dr, -amplitude + jitter[1] + dc), 0.0, 1.0)
                           for dr, dc in path])
        out[i] = events_from_frames(frames, th, eps, rng, noise_rate).reshape(len(path) - 1, -1)
    return out


def event_digits_splits(seed: int = 0, validation: float = 0.15, copies: int = 1,
                        **kw) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train / validation / test event rasters of scikit-learn's digits.

    The test set is ``neurohw.data.digits(0)``'s fixed 450 samples; ``validation`` of the training
    samples (stratified, fixed by ``seed``) are held out for choices. Each split is recorded with
    its own sensor draws (seeds 3 * seed + 0, 1, 2). With ``copies`` > 1 the training digits are
    recorded that many times, copy k >= 1 with its own sensor draws (seed 3 * seed + 1000 * k):
    the same digits seen with other placement jitter, pixel thresholds and background noise, an
    augmentation of the training split only. Returns {"train"|"validation"|"test": (x, y)}."""
    from sklearn.model_selection import train_test_split
    from .data import digits
    dg = digits(0)
    tr, va = train_test_split(np.arange(len(dg["y_train"])), test_size=validation, stratify=dg["y_train"],
                              random_state=seed)
    parts = {"train": (dg["x_train"][tr], dg["y_train"][tr]), "validation": (dg["x_train"][va], dg["y_train"][va]),
             "test": (dg["x_test"], dg["y_test"])}
    out = {k: (event_digits(x, 3 * seed + i, **kw), y) for i, (k, (x, y)) in enumerate(parts.items())}
    if copies > 1:
        x, y = parts["train"]
        extra = [event_digits(x, 3 * seed + 1000 * k, **kw) for k in range(1, copies)]
        out["train"] = (np.concatenate([out["train"][0]] + extra), np.tile(y, copies))
    return out


# --------------------------------------------------------------------------------------
# Interval task: the class is carried only by relative spike timing
# --------------------------------------------------------------------------------------

def interval_task(n: int, seed: int, intervals=(2, 5, 8, 11), pairs: int = 4, steps: int = 32,
                  noise_rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of spikes whose inter-channel interval decides the class.

    There are ``pairs`` channel pairs (2 * pairs inputs, channel 2k "start" and 2k + 1 "stop").
    In every sample each pair fires exactly once on both channels: the start spike at a random
    step, the stop spike ``intervals[c]`` steps later, where c is the sample's class (the same
    interval in every pair, each pair at its own random onset). Every channel fires exactly one
    spike in every sample and onsets are uniform, so spike counts, channel identities and
    absolute times carry no information: only the interval does. Optional background spikes
    (probability ``noise_rate`` per channel and step) make it harder. Balanced classes.
    Returns (uint8 [n, steps, 2 * pairs], int64 labels [n])."""
    intervals = tuple(int(i) for i in intervals)
    if len(intervals) < 2 or len(set(intervals)) != len(intervals) or min(intervals) < 0:
        raise ValueError(f"interval_task: intervals = {intervals} must be >= 2 distinct non-negative ints")
    if max(intervals) >= steps - 1:
        raise ValueError(f"interval_task: max interval {max(intervals)} must be < steps - 1 = {steps - 1}")
    if pairs < 1 or n < 0 or not 0 <= noise_rate <= 1:
        raise ValueError(f"interval_task: need pairs >= 1, n >= 0, 0 <= noise_rate <= 1; got {pairs}, {n}, {noise_rate}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(intervals)).astype(np.int64)
    iv = np.asarray(intervals)[y]
    x = (rng.random((n, steps, 2 * pairs)) < noise_rate).astype(np.uint8) if noise_rate else \
        np.zeros((n, steps, 2 * pairs), np.uint8)
    # onsets leave room for the longest interval, so the onset range does not depend on the class
    onset = rng.integers(0, steps - max(intervals) - 1, size=(n, pairs))
    rows = np.arange(n)[:, None]
    x[rows, onset, 2 * np.arange(pairs)] = 1
    x[rows, onset + iv[:, None], 2 * np.arange(pairs) + 1] = 1
    return x, y


INTERVAL_SPLITS = {"train": (2000, 0), "validation": (500, 1), "test": (1000, 2)}


def interval_splits(seed: int = 0, **kw) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train 2000 / validation 500 / test 1000 interval samples (seeds 3 * seed + 0, 1, 2)."""
    return {k: interval_task(n, 3 * seed + s, **kw) for k, (n, s) in INTERVAL_SPLITS.items()}
