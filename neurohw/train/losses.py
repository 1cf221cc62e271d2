"""Readouts and losses for spiking networks (background.md section 5)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def max_over_time_ce(readout_v: torch.Tensor, labels: torch.Tensor, tau: float = 0.0) -> torch.Tensor:
    """Cross-entropy of logits = max over time of the non-spiking readout's membrane ([B, T, n]).

    With tau > 0 the max is softened to tau * logsumexp(v / tau) over time (between the max and
    the max + tau * log T). Why: the readout's membrane is the constant 0 until the first hidden
    spike reaches it; a class whose membrane then stays below 0 on every sample has its hard
    max at one of those constant steps, which passes no gradient, so the class can never come
    back (configs/yinyang.yaml seed 7 at lr 0.005, docs/quant.md). The soft max sends every step
    a share exp((v_t - max) / tau) of the gradient. The decision stays the hard max."""
    if tau > 0:
        return F.cross_entropy(tau * torch.logsumexp(readout_v / tau, dim=1), labels)
    return F.cross_entropy(readout_v.max(dim=1).values, labels)


def mean_over_time_ce(readout_v: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits = the readout's membrane averaged over time. Less sensitive than
    the maximum to one noisy step, so it suits stochastic networks."""
    return F.cross_entropy(readout_v.mean(dim=1), labels)


def spike_count_ce(spikes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits = output spike counts (rate-coded classification)."""
    return F.cross_entropy(spikes.sum(dim=1), labels)


def spike_count_mse(spikes: torch.Tensor, labels: torch.Tensor, on: float, off: float = 0.0) -> torch.Tensor:
    """MSE of counts against `on` spikes for the target class and `off` for the others."""
    target = torch.full_like(spikes[:, 0], off)
    target[torch.arange(labels.numel()), labels] = on
    return F.mse_loss(spikes.sum(dim=1), target)


def first_spike_time(spikes: torch.Tensor) -> torch.Tensor:
    """Index of each neuron's first spike, T where it never fires ([B, n]); not differentiable."""
    T = spikes.shape[1]
    t = torch.arange(T, device=spikes.device).view(1, T, 1).expand_as(spikes)
    return torch.where(spikes > 0, t, torch.full_like(t, T)).min(dim=1).values


def van_rossum(spikes: torch.Tensor, target: torch.Tensor, tau: float = 10.0) -> torch.Tensor:
    """Van Rossum distance: L2 norm of the difference filtered by a causal exponential (tau in
    steps), summed over neurons and time, averaged over the batch. Differentiable."""
    decay = math.exp(-1.0 / tau)
    diff = spikes - target
    acc = torch.zeros_like(diff[:, 0])
    total = diff.new_zeros(())
    for t in range(diff.shape[1]):
        acc = acc * decay + diff[:, t]
        total = total + (acc ** 2).sum()
    return total / (diff.shape[0] * tau)


def l2_spike_train(spikes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared difference of spike rasters, summed, averaged over the batch."""
    return ((spikes - target) ** 2).sum() / spikes.shape[0]


def rate_regularizer(spikes: list[torch.Tensor], lower: list[float], upper: list[float],
                     strength: float = 1.0) -> torch.Tensor:
    """Per-layer bounds on firing rate (spikes per neuron per step): squared excess above `upper`
    of the layer's mean rate, and squared shortfall below `lower` of each neuron's rate."""
    loss = spikes[0].new_zeros(())
    for s, lo, hi in zip(spikes, lower, upper):
        per_neuron = s.mean(dim=(0, 1))
        loss = loss + F.relu(s.mean() - hi) ** 2 + (F.relu(lo - per_neuron) ** 2).mean()
    return strength * loss


def fano_factor(counts: torch.Tensor) -> torch.Tensor:
    """Variance over trials / mean of spike counts ([trials, ...] -> [...]); NaN where mean is 0."""
    m = counts.float().mean(0)
    return counts.float().var(0, unbiased=True) / m
