"""The enumeration problems: tiny stochastic SpikingNets whose expected loss can be written out.

One input step (3 analog inputs), 4 stochastic hidden neurons (sigmoid escape, beta = 3,
vth = 1), and either a non-spiking readout of 3 classes (cross-entropy of its membrane on the
last step: net 'readout') or a second stochastic layer of 3 neurons (cross-entropy of its spike
counts: net 'two_layer'). Three steps: the hidden layer fires on step 1 from the input of step 0,
and the readout or output layer answers on step 2 (docs/timing.md). The hidden layer's pre-
activation is placed in one of three regimes, in units of 1/beta: 'mid' (p ~ 0.5), 'moderate'
(a spread like a layer in training) and 'saturated' (|beta x| ~ 4: p ~ 0.02 or 0.98).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..train import Escape, LayerSpec, SpikingNet, Spiking
from ..train.losses import spike_count_ce

N_IN, N_HID, N_OUT = 3, 4, 3
BATCH = 8
BETA = 3.0
W2_STD = 1.0
VTH = 1.0
STEPS = 3
NETS = ("readout", "two_layer")
REGIMES = ("mid", "moderate", "saturated")


def problem_params(regime: str, seed: int):
    """Inputs, labels and layer parameters (float64) whose hidden pre-activations sit in `regime`."""
    if regime not in REGIMES:
        raise ValueError(f"tiny problem: regime = {regime!r}; allowed {REGIMES}")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, N_IN, generator=g, dtype=torch.float64)
    y = torch.randint(0, N_OUT, (BATCH,), generator=g)
    w1 = torch.randn(N_HID, N_IN, generator=g, dtype=torch.float64)
    if regime == "mid":
        w1 = w1 * 0.3 / BETA                                   # beta * pre-activation of std ~ 0.3 around 0
        b1 = VTH - x.mean(0) @ w1.t()
    elif regime == "moderate":
        w1 = w1 * 1.5 / BETA / x.std(0).mean().clamp_min(0.1)  # std ~ 1.5, mean slightly sub-threshold
        b1 = VTH - x.mean(0) @ w1.t() - 0.5 / BETA
    else:
        w1 = w1 * 0.5 / BETA                                   # every unit saturated for every input
        sign = torch.where(torch.rand(N_HID, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
        b1 = VTH + sign * 4.0 / BETA - (x @ w1.t()).mean(0)
    w2 = torch.randn(N_OUT, N_HID, generator=g, dtype=torch.float64) * W2_STD
    b2 = torch.zeros(N_OUT, dtype=torch.float64)
    return x, y, w1, b1, w2, b2


def readout_loss(out: dict, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the readout membrane on the last step."""
    return F.cross_entropy(out["readout_v"][:, -1], y)


def count_loss(out: dict, y: torch.Tensor) -> torch.Tensor:
    return spike_count_ce(out["spikes"][-1], y)


def tiny_problem(net_kind: str, regime: str, seed: int):
    """(net, x [B, STEPS, N_IN], y, loss_fn) in float64; the net's parameters are
    [W1, b1, W2, b2] in that order."""
    if net_kind not in NETS:
        raise ValueError(f"tiny problem: net = {net_kind!r}; allowed {NETS}")
    x0, y, w1, b1, w2, b2 = problem_params(regime, seed)
    sp = Spiking(stochastic=True, escape=Escape("sigmoid", beta=BETA))
    hidden = LayerSpec(n_out=N_HID, vth=VTH, spiking=sp)
    if net_kind == "readout":
        net = SpikingNet(N_IN, [hidden], readout=LayerSpec(n_out=N_OUT))
        loss = readout_loss
    else:
        net = SpikingNet(N_IN, [hidden, LayerSpec(n_out=N_OUT, vth=VTH, spiking=sp)])
        loss = count_loss
    net = net.double()
    mods = net.modules_in_order
    with torch.no_grad():
        for m, w, b in zip(mods, (w1, w2), (b1, b2)):
            m.weight.copy_(w)
            m.bias.copy_(b)
    x = torch.zeros(BATCH, STEPS, N_IN, dtype=torch.float64)
    x[:, 0] = x0
    return net, x, y, loss
