"""Fluctuation-driven initialization (Rossbroich, Gygax & Zenke 2022).

Zero-mean Gaussian weights whose scale puts the free membrane's standard deviation at
vth / xi, given the measured rate of each layer's input, so that neurons start in the
fluctuation-driven regime: spiking now and then, neither silent nor saturated.
"""
from __future__ import annotations

import numpy as np
import torch

from .model import SpikingNet


def psp_energy(du_f: float, dv_f: float, steps: int) -> float:
    """sum_t k[t]**2 for the membrane kernel k of one unit input (u then v, no reset)."""
    u = v = 0.0
    total = 0.0
    for t in range(steps):
        u = u * (1 - du_f) + (1.0 if t == 0 else 0.0)
        v = v * (1 - dv_f) + u
        total += v * v
    return total


@torch.no_grad()
def fluctuation_init(net: SpikingNet, x: np.ndarray, xi: float = 3.0, seed: int = 0) -> list[float]:
    """Set each layer's weights (layer by layer, readout included) from the input rates measured
    on sample rasters x [B, T, n_in]. Returns the weight std chosen per layer."""
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    mods = list(net.layers) + ([net.readout] if net.readout is not None else [])
    stds = []
    for l, m in enumerate(mods):
        if m.spec.kind == "pool":          # one shared weight: keeps its own start (vth / 2)
            stds.append(0.0)
            continue
        out = net(xt, generator=gen)
        src = xt if l == 0 else out["spikes"][l - 1]
        nu = float(src.mean().clamp(1e-4, 1 - 1e-4))
        du_f, dv_f = (float(d) for d in m.du_dv)
        energy = psp_energy(du_f, dv_f, x.shape[1])
        sigma_v = float(m.vth) / xi
        fan_in = m.weight[0].numel()      # dense: n_in; conv: C_in / groups * k * k
        std = sigma_v / np.sqrt(fan_in * nu * (1 - nu) * energy)
        m.weight.normal_(0.0, std, generator=gen)
        if m.rec is not None:   # half the feed-forward budget, spread over n_out recurrent inputs
            m.rec.normal_(0.0, std * np.sqrt(fan_in / m.weight.shape[0]) / 2, generator=gen)
        stds.append(std)
    return stds
