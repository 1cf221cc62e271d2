"""A generative task: a stochastic network whose escape noise samples a distribution of spike trains.

The data (made in code from a seed). K = 3 prototype rasters of N_OUT = 4 neurons, each neuron with
2 spike times drawn uniformly from [T // 4, T - 3], at least MIN_GAP = 4 steps apart. A sample of class k is prototype k thinned (each
spike kept with probability KEEP = 0.8) and jittered (each kept spike moved by round(N(0, JITTER))
steps, JITTER = 1; a spike moved outside [2, T - 1] is dropped, two on one step merge: a raster is
binary). The input of a class-k sample is condition channel k, spiking at every step, and N_CLOCK = 8
clock channels, channel j spiking through the j-th eighth of the steps: the network is told what
to draw and when it is, and its own noise supplies the rest. The task is conditional, so that the
fit can be judged per class ("wherever the float model's MMD is inside the band").

Targets carry their condition: y = [condition channels | target raster], [N, T, K + N_OUT], so
that the loss (which sees the network's output and y only) compares *joint* paths (condition,
output) of the model and the data within a batch: zero in expectation exactly when every class's
output distribution matches. Sample i of the model and of the data share their condition, so the
estimator is the paired U-statistic (`sigkernel.mmd2_unbiased(..., paired=True)`).

Embedding. A raster [T, n] becomes the path in R^(1 + n) through (t / T, cumulative count of each
channel at step t / scale) for t = 0..T: on the step grid a spike's vertical Marcus jump (the SLIF
embedding in `sigkernel.marcus_path`) becomes a one-step ramp, every path has T + 1 points, and the
path is linear in the spikes, so surrogate gradients of the spikes pass through the kernel. Scales:
a condition channel by T (it rises 0 -> 1), an output channel by COUNT_SCALE = 2 (its spikes per
sample), so every coordinate stays in [0, 1] and the signature kernel O(1).
"""
from __future__ import annotations

import numpy as np
import torch

from . import sigkernel

K_CLASSES = 3
N_OUT = 4
N_CLOCK = 8
N_IN = K_CLASSES + N_CLOCK
SPIKES_PER_NEURON = 2
KEEP = 0.8
JITTER = 1.0
COUNT_SCALE = 2.0
MIN_GAP = 4


def check_steps(steps: int) -> None:
    if steps < 16 or steps % N_CLOCK:
        raise ValueError(f"generative: steps = {steps} must be a multiple of {N_CLOCK} and >= 16")


def prototypes(steps: int, seed: int = 0) -> np.ndarray:
    """[K, N_OUT, SPIKES_PER_NEURON] int spike steps of the K prototypes (sorted, distinct)."""
    check_steps(steps)
    rng = np.random.default_rng([seed, 18])
    lo, hi = steps // 4, steps - 3
    out = []
    while len(out) < K_CLASSES * N_OUT:         # a neuron's spikes >= MIN_GAP steps apart
        t = np.sort(rng.choice(np.arange(lo, hi + 1), SPIKES_PER_NEURON, replace=False))
        if np.all(np.diff(t) >= MIN_GAP):
            out.append(t)
    return np.stack(out).reshape(K_CLASSES, N_OUT, SPIKES_PER_NEURON)


def inputs(classes: np.ndarray, steps: int) -> np.ndarray:
    """uint8 [N, T, N_IN]: the condition channel of each sample's class, and the clock."""
    check_steps(steps)
    x = np.zeros((len(classes), steps, N_IN), np.uint8)
    x[np.arange(len(classes)), :, np.asarray(classes)] = 1
    w = steps // N_CLOCK
    for j in range(N_CLOCK):
        x[:, j * w:(j + 1) * w, K_CLASSES + j] = 1
    return x


def sample(classes: np.ndarray, steps: int, rng: np.random.Generator, proto_seed: int = 0) -> np.ndarray:
    """uint8 [N, T, N_OUT]: thinned, jittered copies of each sample's prototype."""
    proto = prototypes(steps, proto_seed)[np.asarray(classes)]           # [N, N_OUT, S]
    keep = rng.random(proto.shape) < KEEP
    t = proto + np.rint(rng.normal(0.0, JITTER, proto.shape)).astype(np.int64)
    ok = keep & (t >= 2) & (t <= steps - 1)
    out = np.zeros((len(classes), steps, N_OUT), np.uint8)
    n, j, _ = np.nonzero(ok)
    out[n, t[ok], j] = 1
    return out


def splits(seed: int, steps: int, n_train: int = 1200, n_test: int = 1500) -> dict:
    """Train and test sets; sample i has class i % K (so every prefix is balanced). The prototypes
    depend only on the steps; the draws on seed. y = [condition channels | target raster] (float32)."""
    out = {}
    for name, n, s in (("train", n_train, 0), ("test", n_test, 1)):
        cls = np.arange(n) % K_CLASSES
        x = inputs(cls, steps)
        y = np.concatenate([x[..., :K_CLASSES], sample(cls, steps, np.random.default_rng([seed, s]))], axis=2)
        out[name] = (x, y.astype(np.float32))
    return out


def classes_of(y) -> np.ndarray:
    """The class of each target (its condition channel)."""
    return np.asarray(y[:, 0, :K_CLASSES]).argmax(1)


def joint_path(cond: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Paths [B, T + 1, 1 + K + N_OUT] of (condition [B, T, K], output raster [B, T, N_OUT])."""
    B, T, _ = out.shape
    counts = torch.cat([cond / T, out / COUNT_SCALE], dim=2).cumsum(1)
    counts = torch.cat([counts.new_zeros(B, 1, counts.shape[2]), counts], dim=1)
    t = torch.arange(T + 1, dtype=out.dtype) / T
    return torch.cat([t.expand(B, T + 1)[..., None], counts], dim=2)


def mmd_loss(spikes: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased signature-kernel MMD^2 between the batch's joint (condition, model output) paths and
    its joint (condition, data) paths: the generative task's training loss (train.loss: sig_mmd)."""
    cond = y[..., :K_CLASSES].to(spikes.dtype)
    return sigkernel.sig_mmd2(joint_path(cond, spikes), joint_path(cond, y[..., K_CLASSES:].to(spikes.dtype)),
                              paired=True)


def mmd_score(spikes, y) -> float:
    """mmd_loss on a whole set (no gradient, float64, Gram matrices in chunks): the task's score
    (lower is better)."""
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    cond = y[..., :K_CLASSES]
    a = joint_path(cond, torch.as_tensor(np.asarray(spikes), dtype=torch.float64))
    b = joint_path(cond, y[..., K_CLASSES:])
    g = sigkernel.gram_chunked
    return float(sigkernel.mmd2_unbiased(g(a, a), g(b, b), g(a, b), paired=True))


def evaluate(data: np.ndarray, sets: dict, y: np.ndarray, n_perm: int = 1000, seed: int = 0) -> dict:
    """Per class: MMD^2 of each named sample set (e.g. float, chip) against the data, with its
    permutation test's 95 % band and p-value, and every pair of sample sets against each other.

    data, sets[name]: uint8 [N, T, N_OUT] rasters whose sample i has the class of y[i]. One pooled
    Gram matrix per class (data and every set), chunked; tests relabel sub-blocks of it."""
    cls = classes_of(y)
    names = list(sets)
    gen = torch.Generator().manual_seed(seed)
    res = {"classes": []}
    for k in range(K_CLASSES):
        idx = np.nonzero(cls == k)[0]
        cond = torch.as_tensor(y[idx, :, :K_CLASSES], dtype=torch.float64)
        groups = [data[idx]] + [sets[n][idx] for n in names]
        paths = torch.cat([joint_path(cond, torch.as_tensor(g, dtype=torch.float64)) for g in groups])
        with torch.no_grad():
            G = sigkernel.gram_chunked(paths, paths)
        m = len(idx)
        block = lambda a, b: G[a * m:(a + 1) * m][:, b * m:(b + 1) * m]  # noqa: E731
        row = {"class": k, "n": m}
        pairs = [("data", 0, n, i + 1) for i, n in enumerate(names)]
        pairs += [(names[i], i + 1, names[j], j + 1) for i in range(len(names)) for j in range(i + 1, len(names))]
        for a_name, a, b_name, b in pairs:
            Kp = torch.cat([torch.cat([block(a, a), block(a, b)], 1), torch.cat([block(b, a), block(b, b)], 1)], 0)
            t = sigkernel.permutation_test_gram(Kp, m, n_perm=n_perm, generator=gen)
            row[f"{b_name}_vs_{a_name}"] = {k2: t[k2] for k2 in ("mmd2", "band", "p_value")}
        res["classes"].append(row)
    return res
