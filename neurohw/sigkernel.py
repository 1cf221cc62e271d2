"""Signatures of spike trains: path embedding, truncated signatures, the signature kernel, MMD.

Embedding (Marcus lift). A train of N neurons with first spike times t[n, k] (k < K; a missing
spike is set to T, the censoring time, as the SLIF model records it) becomes the piecewise-linear
path in R^(1+N) through (0, 0), then, for the events in time order, (t_e, N_before) -> (t_e, N_after):
time runs horizontally and each spike's jump of its neuron's count is a vertical segment. Every
train thus has the same number of points, 1 + 2 N K, and the path is a smooth function of the spike
times, so losses on it pass exact spike-time gradients. Coordinates are scaled as
(t / time_scale, count / count_scale); the seed experiment uses no scaling (1, 1), the kernel MMD
uses (T, K) so that both coordinates lie in [0, 1] and the signature kernel stays O(1).

Signature kernel. k(x, y) solves the Goursat PDE d2k/ds dt = <x'(s), y'(t)> k with k = 1 on both
axes; it is the inner product of the full signatures. Solved by the standard explicit
finite-difference scheme on the grid of the paths' points refined 2^refine times per cell, one
anti-diagonal at a time (vectorized over all pairs of paths), in torch with autograd.
"""
from __future__ import annotations

import math

import torch


def marcus_path(times: torch.Tensor, T: float | None = None, time_scale: float = 1.0,
                count_scale: float = 1.0) -> torch.Tensor:
    """Marcus-lifted (time, cumulative count per neuron) paths of spike trains.

    times: [B, K] (one neuron) or [B, N, K]; missing spikes must already be set to the censoring
    time (>= every real spike). Returns [B, 1 + 2 N K, 1 + N]."""
    if times.dim() == 2:
        times = times.unsqueeze(1)
    if times.dim() != 3:
        raise ValueError(f"marcus_path: times has shape {tuple(times.shape)}; expected [B, K] or [B, N, K]")
    if time_scale <= 0 or count_scale <= 0:
        raise ValueError(f"marcus_path: time_scale = {time_scale}, count_scale = {count_scale} must be > 0")
    B, N, K = times.shape
    flat = times.reshape(B, N * K)
    t_sorted, order = torch.sort(flat, dim=1, stable=True)
    neuron = order // K                                              # [B, E]
    jumps = torch.nn.functional.one_hot(neuron, N).to(times.dtype)   # [B, E, N]
    after = torch.cumsum(jumps, dim=1)
    before = after - jumps
    pts_t = torch.stack([t_sorted, t_sorted], dim=2).reshape(B, 2 * N * K, 1)
    pts_c = torch.stack([before, after], dim=2).reshape(B, 2 * N * K, N)
    pts = torch.cat([pts_t / time_scale, pts_c / count_scale], dim=2)
    start = times.new_zeros(B, 1, 1 + N)
    return torch.cat([start, pts], dim=1)


def _tensor_exp(dx: torch.Tensor, depth: int) -> list[torch.Tensor]:
    """Levels 1..depth of the signature of one straight segment: dx^(x)m / m!."""
    levels = [dx]
    for m in range(2, depth + 1):
        levels.append(torch.einsum("b...,bj->b...j", levels[-1], dx) / m)
    return levels


def _chen(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
    """Truncated tensor product (1 + a) (x) (1 + b), levels 1..depth."""
    out = []
    for m in range(len(a)):
        z = a[m] + b[m]
        for j in range(m):                  # a[j] (level j+1) (x) b[m-1-j] (level m-j)
            x, y = a[j], b[m - 1 - j]
            z = z + (x.reshape(x.shape[0], -1, 1) * y.reshape(y.shape[0], 1, -1)).reshape(z.shape)
        out.append(z)
    return out


def signature(path: torch.Tensor, depth: int = 3) -> torch.Tensor:
    """Truncated signature of piecewise-linear paths [B, L, d] -> [B, d + d^2 + ... + d^depth]
    (levels 1..depth, words in lexicographic order; the constant 1 left out), by Chen's identity."""
    if path.dim() != 3 or path.shape[1] < 2:
        raise ValueError(f"signature: path has shape {tuple(path.shape)}; expected [B, L >= 2, d]")
    if not (isinstance(depth, int) and depth >= 1):
        raise ValueError(f"signature: depth = {depth!r} must be an int >= 1")
    inc = path[:, 1:] - path[:, :-1]
    sig = _tensor_exp(inc[:, 0], depth)
    for j in range(1, inc.shape[1]):
        sig = _chen(sig, _tensor_exp(inc[:, j], depth))
    return torch.cat([s.reshape(s.shape[0], -1) for s in sig], dim=1)


def expected_signature_loss(x: torch.Tensor, y: torch.Tensor, depth: int = 3) -> torch.Tensor:
    """Mean over signature terms of (E sig(x) - E sig(y))^2 for path batches x, y (the seed's loss:
    14 terms for depth 3 in 2 dimensions)."""
    return ((signature(x, depth).mean(0) - signature(y, depth).mean(0)) ** 2).mean()


def sig_kernel(x: torch.Tensor, y: torch.Tensor, refine: int = 0) -> torch.Tensor:
    """Signature kernel Gram matrix [A, B] of paths x [A, Lx, d] and y [B, Ly, d] with the linear
    static kernel, by the Goursat PDE on the dyadically refined grid (refine >= 0)."""
    if x.dim() != 3 or y.dim() != 3 or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"sig_kernel: shapes {tuple(x.shape)} and {tuple(y.shape)} do not match [A, L, d]")
    if not (isinstance(refine, int) and refine >= 0):
        raise ValueError(f"sig_kernel: refine = {refine!r} must be an int >= 0")
    r = 2 ** refine
    dx, dy = x[:, 1:] - x[:, :-1], y[:, 1:] - y[:, :-1]
    G = torch.einsum("aid,bjd->abij", dx, dy) / (r * r)              # per refined cell
    if r > 1:
        G = G.repeat_interleave(r, dim=2).repeat_interleave(r, dim=3)
    A, Bn, P, Q = G.shape
    coef_a = 1.0 + G / 2.0 + G * G / 12.0
    coef_b = 1.0 - G * G / 12.0
    one = G.new_ones(A, Bn, 1)
    prev2 = one                                # diagonal 0: point (0, 0)
    prev1 = G.new_ones(A, Bn, 2)               # diagonal 1: points (0, 1), (1, 0), indexed by p
    for e in range(2, P + Q + 1):              # points (p, e - p) on diagonal e
        p_lo, p_hi = max(0, e - Q), min(P, e)
        vals = []
        for_p = torch.arange(max(1, p_lo), min(P, e - 1) + 1)           # interior points
        if for_p.numel():
            q = e - for_p
            ca = coef_a[:, :, for_p - 1, q - 1]
            cb = coef_b[:, :, for_p - 1, q - 1]
            lo1 = max(0, e - 1 - Q)                                      # first p on diagonal e-1
            lo2 = max(0, e - 2 - Q)
            k_left = prev1[:, :, for_p - lo1]                            # (p, q-1)
            k_down = prev1[:, :, for_p - 1 - lo1]                        # (p-1, q)
            k_diag = prev2[:, :, for_p - 1 - lo2]                        # (p-1, q-1)
            inner = (k_left + k_down) * ca - k_diag * cb
        parts = []
        if p_lo == 0:
            parts.append(one)                                            # (0, e) on the axis
        if for_p.numel():
            parts.append(inner)
        if p_hi == e:
            parts.append(one)                                            # (e, 0) on the axis
        prev2, prev1 = prev1, torch.cat(parts, dim=2)
    return prev1[:, :, -1]


def mmd2_unbiased(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 from Gram matrices (diagonals of kxx, kyy left out)."""
    m, n = kxx.shape[0], kyy.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased: needs >= 2 samples per set, got {m} and {n}")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return sxx + syy - 2.0 * kxy.mean()


BACKENDS = ("own", "pysiglib")


def gram(x: torch.Tensor, y: torch.Tensor, refine: int = 0, backend: str = "own", n_jobs: int = 1) -> torch.Tensor:
    """Signature-kernel Gram matrix by this module's PDE solver or by pysiglib's (same scheme, C++;
    docs/slif.md gives the measured agreement and speed; n_jobs threads, the same result for any)."""
    if backend == "own":
        return sig_kernel(x, y, refine)
    if backend == "pysiglib":
        import pysiglib.torch_api as ps   # optional peer, imported only when asked for
        return ps.sig_kernel_gram(x.contiguous(), y.contiguous(), dyadic_order=refine, n_jobs=n_jobs)
    raise ValueError(f"sigkernel: backend = {backend!r} is not allowed; allowed {BACKENDS}")


def sig_mmd2(x: torch.Tensor, y: torch.Tensor, refine: int = 0, backend: str = "own") -> torch.Tensor:
    """Unbiased signature-kernel MMD^2 between path samples x and y; differentiable (a training loss)."""
    return mmd2_unbiased(gram(x, x, refine, backend), gram(y, y, refine, backend),
                         gram(x, y, refine, backend))


def gram_chunked(x: torch.Tensor, y: torch.Tensor, refine: int = 0, backend: str = "own",
                 rows: int = 8, n_jobs: int = 1) -> torch.Tensor:
    """`gram` computed `rows` rows of x at a time (no gradient): the PDE grid holds one value per
    pair and cell, so a 1,500 x 1,500 Gram of 33-point paths would need ~20 GB at once."""
    with torch.no_grad():
        return torch.cat([gram(x[i:i + rows], y, refine, backend, n_jobs) for i in range(0, x.shape[0], rows)], 0)


def permutation_test_gram(K: torch.Tensor, m: int, n_perm: int = 500, level: float = 0.05,
                          generator: torch.Generator | None = None) -> dict:
    """The permutation test on a pooled Gram matrix K (the first m rows: sample x, the rest: y).

    Each permutation relabels the pooled samples; its unbiased MMD^2 is a quadratic form in the
    label vector, so all permutations are computed at once from K @ labels."""
    N = K.shape[0]
    n = N - m
    if m < 2 or n < 2:
        raise ValueError(f"permutation_test: needs >= 2 samples per set, got {m} and {n}")
    K = K.double()
    labels = torch.zeros(n_perm + 1, N, dtype=torch.float64)
    labels[0, :m] = 1.0                                   # row 0: the observed split
    for i in range(n_perm):
        labels[i + 1, torch.randperm(N, generator=generator)[:m]] = 1.0
    a, b = labels, 1.0 - labels
    Ka, Kb = a @ K, b @ K
    d = K.diagonal()
    sxx = ((Ka * a).sum(1) - a @ d) / (m * (m - 1))
    syy = ((Kb * b).sum(1) - b @ d) / (n * (n - 1))
    sxy = (Ka * b).sum(1) / (m * n)
    mmd = sxx + syy - 2.0 * sxy
    stat, null_t = mmd[0].item(), mmd[1:]
    band = torch.quantile(null_t, 1.0 - level).item()
    p = (1 + (null_t >= stat).sum().item()) / (n_perm + 1)
    return {"mmd2": stat, "band": band, "p_value": p, "null": null_t.tolist()}


def permutation_test(x: torch.Tensor, y: torch.Tensor, refine: int = 0, n_perm: int = 500,
                     level: float = 0.05, generator: torch.Generator | None = None,
                     backend: str = "own") -> dict:
    """Two-sample permutation test with the signature-kernel MMD^2.

    The pooled Gram matrix is computed once; each permutation relabels it. Returns the statistic,
    the (1 - level) quantile of the permutation distribution (the band) and the p-value."""
    z = torch.cat([x, y], dim=0)
    return permutation_test_gram(gram_chunked(z, z, refine, backend), x.shape[0], n_perm, level, generator)
