"""The continuous-time SLIF neuron (neurohw.slif) as a chip neuron, and the comparison of the two.

The chip steps the SLIF's Euler grid: v <- v (1 - dv) + bias with dv = mu1 dt (the chip's nearest
dv / 4096) and bias = dv * c (so that the fixed point stays c), and it escapes through the
exponential clock's per-step law, P(spike in a step) = 1 - exp(-lambda(v) dt), which is the
escape 'exp' of neurohw.train (1 - exp(-exp(beta x))) at x = v - vth - ln(tau_s / dt) / beta,
deployed exactly as Gumbel threshold noise of scale 1 / beta (quant.DEPLOY_NOISE). The network is
built as a float `SpikingNet` (its discrete-time twin) and quantized by neurohw.quant, so the chip
arithmetic stays in one place. What the chip cannot do, and is therefore left out of the twin:
the diffusion sigma dW (one noise source per layer, taken by the escape), the subtractive reset
(the chip resets v to 0), the refractory budget alpha (per-step escape is memoryless), and spike
times inside a step (a chip spike at step t stands for the time (t - 1/2) dt: layer 0 first
updates at step 1, and step t covers [(t - 1) dt, t dt]).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import chip, emu, quant
from .network import IntNetwork
from .slif import SLIFParams
from .train import Escape, LayerSpec, SpikingNet, Spiking


def twin(p: SLIFParams, c: float, noise_voltage: float = 0.0) -> SpikingNet:
    """The discrete-time float twin of a single SLIF neuron with input c (one dummy input channel).

    noise_voltage: std of Gaussian noise added to v each step (sigma sqrt(dt) puts the diffusion
    back, for measuring what leaving it out costs; the chip cannot deploy it beside the escape)."""
    dv = int(round(p.mu1 * p.dt * chip.DECAY_UNITY))
    if not 0 < dv <= chip.DECAY_UNITY:
        raise ValueError(f"slif_chip: mu1 * dt = {p.mu1 * p.dt} gives dv = {dv}; allowed 1..{chip.DECAY_UNITY}")
    spec = LayerSpec(n_out=1, du=chip.DECAY_UNITY - 1, dv=dv, vth=p.vth + math.log(p.tau_s / p.dt) / p.beta,
                     spiking=Spiking(stochastic=True, escape=Escape("exp", p.beta)), noise_voltage=noise_voltage)
    net = SpikingNet(1, [spec])
    layer = net.layers[0]
    with torch.no_grad():
        layer.bias.fill_(float(layer.du_dv[1]) * c)      # the chip's dv fraction: fixed point at c
    return net


def to_chip(p: SLIFParams, c: float, noise_seed: int = 0) -> IntNetwork:
    """The twin quantized for the chip (Gumbel threshold noise, seed noise_seed)."""
    net = twin(p, c)
    plans = quant.plan(net, np.zeros((1, p.steps + 1, 1), np.float32), noise_seed=noise_seed)
    return quant.to_int_network(net, plans, name="slif")


def first_times(spikes: np.ndarray, p: SLIFParams) -> np.ndarray:
    """[B, n_record] spike times of rasters [B, steps + 1, 1] (step t -> (t - 1/2) dt), T where missing."""
    s = np.asarray(spikes)[:, :, 0]
    out = np.full((s.shape[0], p.n_record), p.T)
    for b in range(s.shape[0]):
        t = np.nonzero(s[b])[0][:p.n_record]
        out[b, :len(t)] = np.minimum((t - 0.5) * p.dt, p.T)
    return out


def chip_times(inet: IntNetwork, p: SLIFParams, n: int, first_sample: int = 0) -> np.ndarray:
    """First spike times of n chip trajectories (the emulator; samples first_sample.. of the noise hash)."""
    x = np.zeros((n, p.steps + 1, 1), np.uint8)
    res = emu.run(inet, x, sample_ids=np.arange(first_sample, first_sample + n))
    return first_times(res.spikes[0], p)


def twin_times(net: SpikingNet, p: SLIFParams, n: int, seed: int = 0) -> np.ndarray:
    """First spike times of n runs of the float twin (its own Bernoulli draws)."""
    x = torch.zeros(n, p.steps + 1, 1)
    with torch.no_grad():
        s = net(x, generator=torch.Generator().manual_seed(seed))["spikes"][0].numpy()
    return first_times(s, p)
