"""Reference gradients of the expected loss, to audit the estimators against.

exact:  for networks with few stochastic units, E[L] = sum over every spike pattern of
        P(pattern) L(pattern), written out by forcing each pattern through the network's own
        forward (the estimators' tape), and differentiated by autograd. The same enumeration with
        P detached and the surrogate's gradient on the forced spikes gives the exact mean of the
        surrogate estimator, so its bias is measured without Monte Carlo error.
finite differences:  for networks too big to enumerate, central differences of the expected loss
        along directions d, (E[L](theta + h d) - E[L](theta - h d)) / 2h, with common random
        numbers (the same noise draws at +h and -h: the same generator seed, or the same noise
        ids on a hardware-exact net), and an error bar from independent repetitions.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from .estimators import Tape, _params, per_sample_losses

MAX_UNITS = 16


def patterns(n: int, dtype=torch.float64) -> torch.Tensor:
    """All 2**n binary vectors, [2**n, n]."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=dtype)


def stochastic_units(net, steps: int) -> int:
    """Stochastic spikes per sample: layer l is active on steps l + 1 .. steps - 1."""
    return sum(max(steps - 1 - l, 0) * m.spec.n_out for l, m in enumerate(net.layers)
               if m.spec.spiking.stochastic)


def expected_loss(net, x: torch.Tensor, y: torch.Tensor, loss_fn, surrogate: bool = False) -> torch.Tensor:
    """E[loss] over every spike pattern, by enumeration (<= MAX_UNITS stochastic spikes per sample).

    surrogate=False: differentiable in theta through P(pattern) and L(pattern): its gradient is the
    exact gradient of the expected loss. surrogate=True: P is detached and the forced spikes carry
    the surrogate's gradient: its gradient is the exact mean of the surrogate estimator."""
    B, T = x.shape[0], x.shape[1]
    U = stochastic_units(net, T)
    if U > MAX_UNITS:
        raise ValueError(f"expected_loss: {U} stochastic spikes per sample; allowed <= {MAX_UNITS} "
                         "(2**units patterns); use finite differences")
    pats = patterns(U, x.dtype)                                    # [P, U]
    P = pats.shape[0]
    tape = Tape(mode="force", forced=pats.repeat_interleave(B, 0), force_surrogate=surrogate)
    xr = x.repeat(P, *([1] * (x.dim() - 1)))
    yr = y.repeat(P, *([1] * (y.dim() - 1)))
    out = net(xr, sample_ids=np.arange(P * B), tape=tape)
    if tape._col != U:
        raise RuntimeError(f"expected_loss: the forward took {tape._col} spikes, expected {U}")
    ell = per_sample_losses(loss_fn, out, yr).view(P, B)
    prob = tape.log_prob().view(P, B).exp()
    if surrogate:
        prob = prob.detach()
    return (prob * ell).sum(0).mean()


def exact_gradient(net, x, y, loss_fn, surrogate: bool = False) -> list[torch.Tensor]:
    """d E[loss] / d theta (or, with surrogate=True, E[surrogate estimate]) per trainable parameter."""
    return list(torch.autograd.grad(expected_loss(net, x, y, loss_fn, surrogate), _params(net), allow_unused=True))


def _loss_at(net, x, y, loss_fn, seed: int, ids) -> float:
    with torch.no_grad():
        out = net(x, generator=torch.Generator().manual_seed(seed), sample_ids=ids)
        return float(loss_fn(out, y))


def fd_directional(net, x, y, loss_fn, directions: list[list[torch.Tensor]], h: float, reps: int,
                   seed: int = 0, paths: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of E[loss] along each direction (a list of tensors aligned with the
    trainable parameters): returns (mean [D], standard error [D]) over `reps` independent
    repetitions, each with common random numbers at +h and -h and `paths` paths per sample."""
    params = _params(net)
    xr = x.repeat(paths, *([1] * (x.dim() - 1)))
    yr = y.repeat(paths, *([1] * (y.dim() - 1)))
    base = [p.detach().clone() for p in params]
    vals = np.zeros((reps, len(directions)))
    try:
        for r in range(reps):
            ids = np.arange(len(xr)) + (r + 1) * 1_000_003 + seed * 7_919
            for j, d in enumerate(directions):
                f = []
                for sign in (1.0, -1.0):
                    with torch.no_grad():
                        for p, b, dd in zip(params, base, d):
                            p.copy_(b + sign * h * dd)
                    f.append(_loss_at(net, xr, yr, loss_fn, seed * 100_003 + r, ids))
                vals[r, j] = (f[0] - f[1]) / (2 * h)
    finally:
        with torch.no_grad():
            for p, b in zip(params, base):
                p.copy_(b)
    return vals.mean(0), vals.std(0, ddof=1) / math.sqrt(reps)
