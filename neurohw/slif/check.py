"""Event-time gradients against central finite differences on the same noise.

Each parameter point is its own slice of one batch (its own c, or its own weights W and direction),
so all points run in one `simulate` call; the finite differences re-run the batch at p +- h with
the same `Draws`. Relative error: ||g_exact - g_fd|| / ||g_fd|| per point, over the recorded spike
times (censored spikes, at T, have zero derivative on both sides) and for the loss.
Used by tests/test_slif.py (a few points) and benchmarks/slif.py (the target's >= 20).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD

from .. import sigkernel as sk
from .model import Draws, SLIFParams, feedforward_weights, network_input, simulate


@dataclass
class GradCheck:
    times_rel: torch.Tensor     # [points] relative error of d(spike times)
    loss_rel: torch.Tensor      # [points] relative error of d(loss)
    times_norm: torch.Tensor    # [points] ||d(spike times)||, to see that the check was not vacuous
    loss_grad: torch.Tensor     # [points] the exact loss derivative


def _rel(exact: torch.Tensor, fd: torch.Tensor) -> torch.Tensor:
    num = (exact - fd).flatten(1).norm(dim=1)
    den = fd.flatten(1).norm(dim=1)
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), num)


def _group_loss(times: torch.Tensor, data_times: torch.Tensor, points: int, T: float) -> torch.Tensor:
    """Expected-signature loss (depth 3, unscaled Marcus paths) of each point's group of runs."""
    x = sk.marcus_path(times, T)
    y = sk.marcus_path(data_times, T)
    sx = sk.signature(x, 3).reshape(points, -1, sk.signature(x[:1], 3).shape[1]).mean(1)
    sy = sk.signature(y, 3).mean(0)
    return ((sx - sy) ** 2).mean(1)


def single_neuron(sigma: float, points: int = 20, per_point: int = 8, seed: int = 0,
                  h: float = 1e-7, c_range=(0.6, 2.5), T: float = 5.0) -> GradCheck:
    """Random input currents c; d(first three spike times)/dc and d(loss)/dc, loss against 16
    data trajectories at c = 1.5."""
    p = SLIFParams(sigma=sigma, T=T)
    g = torch.Generator().manual_seed(seed)
    c0 = c_range[0] + (c_range[1] - c_range[0]) * torch.rand(points, 1, generator=g, dtype=torch.float64)
    draws = Draws.sample(p, points * per_point, 1, g)
    data = simulate(p, 1.5, Draws.sample(p, 16, 1, g)).times
    c = c0.repeat_interleave(per_point, 0).requires_grad_(True)       # one leaf per trajectory
    times = simulate(p, c, draws).times                                   # [B, 1, 3]
    # each trajectory's times depend on its own c only: one backward per recorded spike gives all
    td = torch.stack([torch.autograd.grad(times[:, 0, k].sum(), c, retain_graph=True)[0][:, 0]
                      for k in range(p.n_record)], dim=1)
    loss = _group_loss(times, data, points, p.T)
    gl = torch.autograd.grad(loss.sum(), c)[0].reshape(points, per_point).sum(1)   # chain rule
    with torch.no_grad():
        cp, cm = (c0 + h).repeat_interleave(per_point, 0), (c0 - h).repeat_interleave(per_point, 0)
        tp, tm = simulate(p, cp, draws).times, simulate(p, cm, draws).times
        fd_t = (tp - tm) / (2 * h)
        fd_l = (_group_loss(tp, data, points, p.T) - _group_loss(tm, data, points, p.T)) / (2 * h)
    shape = (points, per_point * 3)
    return GradCheck(_rel(td.reshape(shape), fd_t.reshape(shape)), _rel(gl[:, None], fd_l[:, None]),
                     td.reshape(shape).norm(dim=1), gl)


NET_SIZES = (4, 16, 2)


def network_params(sigma: float, T: float = 5.0) -> SLIFParams:
    """The 4-16-2 network of experiment 2: input current on the first layer, noise on v and i."""
    return SLIFParams(sigma=sigma, sigma_i=sigma, mu2=5.0, T=T)


def network(sigma: float, points: int = 20, per_point: int = 2, seed: int = 0, h: float = 1e-7,
            T: float = 5.0) -> GradCheck:
    """Random weights W and random directions D; derivative of all 22 x 3 first spike times and of
    the 22-train expected-signature loss along D (the loss against 8 runs of another random net)."""
    p = network_params(sigma, T)
    g = torch.Generator().manual_seed(seed)
    N = sum(NET_SIZES)

    def weights(k):
        w1 = 0.2 + 0.8 * torch.rand(k, 4, 16, generator=g, dtype=torch.float64)
        w2 = 0.05 + 0.3 * torch.rand(k, 16, 2, generator=g, dtype=torch.float64)
        return torch.stack([feedforward_weights(NET_SIZES, [w1[j], w2[j]]) for j in range(k)])

    W0, D = weights(points), weights(points) - 0.5
    mask = weights(1)[0] != 0
    D = D * mask
    c = network_input(NET_SIZES, 1.5)
    draws = Draws.sample(p, points * per_point, N, g)
    data = simulate(p, c, Draws.sample(p, 8, N, g), weights(1)[0]).times
    rep = lambda x: x.repeat_interleave(per_point, 0)                     # noqa: E731
    eps0 = torch.zeros(points, 1, 1, dtype=torch.float64)
    with fwAD.dual_level():
        ed = fwAD.make_dual(eps0, torch.ones_like(eps0))
        td = fwAD.unpack_dual(simulate(p, c, draws, rep(W0 + ed * D)).times).tangent
    eps = eps0.clone().requires_grad_(True)
    loss = _group_loss(simulate(p, c, draws, rep(W0 + eps * D)).times, data, points, p.T)
    gl = torch.autograd.grad(loss.sum(), eps)[0].reshape(points)
    with torch.no_grad():
        tp = simulate(p, c, draws, rep(W0 + h * D)).times
        tm = simulate(p, c, draws, rep(W0 - h * D)).times
        fd_t = (tp - tm) / (2 * h)
        fd_l = (_group_loss(tp, data, points, p.T) - _group_loss(tm, data, points, p.T)) / (2 * h)
    shape = (points, -1)
    return GradCheck(_rel(td.reshape(shape), fd_t.reshape(shape)), _rel(gl[:, None], fd_l[:, None]),
                     td.reshape(shape).norm(dim=1), gl)
