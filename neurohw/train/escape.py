"""Escape functions f(x) = P(spike | v - vth = x) and the spike nonlinearity with surrogate gradients.

Stochastic spiking draws s ~ Bernoulli(f(x)) and back-propagates f'(x): the smoothed stochastic
derivative (Gygax & Zenke 2024). Deterministic spiking is the noise-free limit H(x), back-propagating
a chosen surrogate's derivative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import chip
from .. import noise as chip_noise

ESCAPES = ("sigmoid", "erf", "exp", "uniform", "chip")


@dataclass(frozen=True)
class Escape:
    """f and f' of one escape function. beta is the inverse width (1 / v units).

    sigmoid: 1/(1+exp(-beta x)); erf: Gaussian threshold noise of std 1/beta;
    exp: exponential escape rate, 1 - exp(-exp(beta x)); uniform: the ramp that uniform
    threshold noise of width 1/beta induces; chip: the exact staircase of neurohw's on-chip
    threshold noise (`noise`, `vth_eff` in chip units, x scaled by `unit` float units per v unit),
    whose surrogate is the logistic/uniform density of the same width."""

    kind: str = "sigmoid"
    beta: float = 1.0
    noise: chip_noise.Noise | None = None
    unit: float = 1.0

    def __post_init__(self):
        if self.kind not in ESCAPES:
            raise ValueError(f"escape: kind = {self.kind!r} is not allowed; allowed {ESCAPES}")
        if not self.beta > 0:
            raise ValueError(f"escape: beta = {self.beta!r} must be > 0")
        if self.kind == "chip" and (self.noise is None or self.noise.inject != "threshold"):
            raise ValueError("escape: kind 'chip' needs a threshold Noise")

    def f(self, x: torch.Tensor) -> torch.Tensor:
        b = self.beta
        if self.kind == "sigmoid":
            return torch.sigmoid(b * x)
        if self.kind == "erf":
            return 0.5 * (1 + torch.erf(b * x / math.sqrt(2)))
        if self.kind == "exp":
            return 1 - torch.exp(-torch.exp(torch.clamp(b * x, max=30.0)))
        if self.kind == "uniform":
            return torch.clamp(b * x + 0.5, 0.0, 1.0)
        # chip: P(v + n > vth) with x = v - vth in float units
        vals = torch.as_tensor(np.sort(self.noise.values()), dtype=x.dtype, device=x.device)
        k = vals.numel() - torch.searchsorted(vals, (-x / self.unit).contiguous(), right=True)
        return k.to(x.dtype) / vals.numel()

    def df(self, x: torch.Tensor) -> torch.Tensor:
        b = self.beta
        if self.kind == "sigmoid" or (self.kind == "chip" and self.noise.dist == "logistic"):
            s = torch.sigmoid(b * x)
            return b * s * (1 - s)
        if self.kind == "erf":
            return b / math.sqrt(2 * math.pi) * torch.exp(-0.5 * (b * x) ** 2)
        if self.kind == "exp" or (self.kind == "chip" and self.noise.dist == "gumbel"):
            e = torch.exp(torch.clamp(b * x, max=30.0))
            return b * e * torch.exp(-e)
        return b * ((b * x).abs() <= 0.5).to(x.dtype)          # uniform ramp (and chip uniform)

    @classmethod
    def from_chip(cls, noise: chip_noise.Noise, unit: float = 1.0) -> "Escape":
        """The chip's escape function of threshold noise, with beta matched to its width."""
        n = noise.values().astype(np.float64)
        if noise.dist == "logistic":
            beta = 1.0 / (chip.LOGISTIC_SCALE * 2.0 ** (noise.exp - chip.NOISE_EXP_BIAS) * unit)
        elif noise.dist == "gumbel":
            beta = 1.0 / (chip.GUMBEL_SCALE * 2.0 ** (noise.exp - chip.NOISE_EXP_BIAS) * unit)
        else:
            beta = 1.0 / ((n.max() - n.min() + 2.0 ** (noise.exp - chip.NOISE_EXP_BIAS)) * unit)
        return cls(kind="chip", beta=beta, noise=noise, unit=unit)


SURROGATES = ("superspike", "sigmoid")


@dataclass(frozen=True)
class Spiking:
    """How a layer spikes: stochastic (Bernoulli of escape.f, gradient escape.df) or
    deterministic (Heaviside, gradient of `surrogate` with `surrogate_beta`)."""

    stochastic: bool = False
    escape: Escape = Escape()
    surrogate: str = "superspike"
    surrogate_beta: float = 10.0
    scale_by_beta: bool = False        # multiply the surrogate by 1/beta
    detach_reset: bool = True          # no gradient through the reset

    def surrogate_grad(self, x: torch.Tensor) -> torch.Tensor:
        if self.stochastic:
            g, b = self.escape.df(x), self.escape.beta
        else:
            b = self.surrogate_beta
            if self.surrogate == "superspike":
                g = 1.0 / (b * x.abs() + 1.0) ** 2
            elif self.surrogate == "sigmoid":
                s = torch.sigmoid(b * x)
                g = b * s * (1 - s)
            else:
                raise ValueError(f"spiking: surrogate = {self.surrogate!r}; allowed {SURROGATES}")
        return g / b if self.scale_by_beta else g


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p_or_none, spiking: Spiking, draws):
        ctx.save_for_backward(x)
        ctx.spiking = spiking
        if p_or_none is None:
            return (x > 0).to(x.dtype)
        if draws is None:               # the spikes are given (hardware-exact forward)
            return p_or_none.to(x.dtype)
        return (draws < p_or_none).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.spiking.surrogate_grad(x), None, None, None


def spike(x: torch.Tensor, spiking: Spiking, generator: torch.Generator | None = None,
          draws: torch.Tensor | None = None) -> torch.Tensor:
    """Spikes for x = v - vth: Heaviside or Bernoulli(f(x)), with the surrogate gradient.

    draws: uniform [0, 1) numbers to use for the Bernoulli (for common random numbers)."""
    if not spiking.stochastic:
        return _Spike.apply(x, None, spiking, None)
    if draws is None:
        draws = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return _Spike.apply(x, spiking.escape.f(x.detach()), spiking, draws)


def spike_as(x: torch.Tensor, spikes: torch.Tensor, spiking: Spiking) -> torch.Tensor:
    """Given spikes (e.g. the chip's, computed in integers) with the surrogate gradient at x."""
    return _Spike.apply(x, spikes, spiking, None)
