"""Float spiking networks with exactly the chip's structure and timing.

Per layer: u = u*(1 - du_frac) + W s_prev (+ W_rec s_self_prev); v = v*(1 - dv_frac) + u + bias;
s = spike(v - vth); v = 0 where s. The Dense delay is one step, and layer l is at rest until
step l + 1 (docs/timing.md), so a trained network maps one to one onto an IntNetwork.
Decay fractions follow the chip: du_frac = (du + 1) / 4096, dv_frac = dv / 4096.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import chip
from .escape import Spiking, spike


def du_frac(du: int) -> float:
    return (du + chip.DU_OFFSET) / chip.DECAY_UNITY


def dv_frac(dv: int) -> float:
    return (dv + chip.DV_OFFSET) / chip.DECAY_UNITY


@dataclass
class LayerSpec:
    n_out: int
    du: int = 409                 # chip integers; the float layer uses the chip's fractions
    dv: int = 409
    vth: float = 1.0
    recurrent: bool = False
    spiking: Spiking = field(default_factory=Spiking)
    train_decays: bool = False
    noise_current: float = 0.0    # std of Gaussian noise added to u's input each step (float units)
    noise_voltage: float = 0.0    # std of Gaussian noise added to v each step


def lif_step(u, v, a, du_f, dv_f, bias, vth):
    """One float LIF sub-threshold step (pure): returns new (u, v, v - vth) before spiking."""
    u = u * (1 - du_f) + a
    v = v * (1 - dv_f) + u + bias
    return u, v, v - vth


class LIFLayer(nn.Module):
    def __init__(self, n_in: int, spec: LayerSpec):
        super().__init__()
        self.spec = spec
        self.weight = nn.Parameter(torch.zeros(spec.n_out, n_in))
        self.rec = nn.Parameter(torch.zeros(spec.n_out, spec.n_out)) if spec.recurrent else None
        self.bias = nn.Parameter(torch.zeros(spec.n_out))
        self.register_buffer("vth", torch.tensor(float(spec.vth)))
        d = torch.tensor([du_frac(spec.du), dv_frac(spec.dv)])
        self.decays = nn.Parameter(d) if spec.train_decays else None
        if not spec.train_decays:
            self.register_buffer("fixed_decays", d)

        self.quant = None          # a neurohw.quant.LayerQuant: forward on the chip's grid (QAT)

    @property
    def du_dv(self):
        d = self.decays if self.decays is not None else self.fixed_decays
        return d.clamp(0.0, 1.0)

    def noise_std(self) -> tuple[float, float]:
        """(current, voltage) noise std per step: the spec's, or the chip's realization of it."""
        if self.quant is not None:
            return self.quant.noise_std()
        return self.spec.noise_current, self.spec.noise_voltage

    def params(self):
        """(weight, rec, bias, vth, du_frac, dv_frac, spiking) as the forward pass uses them:
        the float parameters, or their fake-quantized values when a quantization plan is set."""
        if self.quant is not None:
            return self.quant.fake(self)
        du_f, dv_f = self.du_dv
        return self.weight, self.rec, self.bias, self.vth, du_f, dv_f, self.spec.spiking


class SpikingNet(nn.Module):
    """Layers of LIFLayer; optional non-spiking readout (LIF without spikes) of n_readout units."""

    def __init__(self, n_in: int, layers: list[LayerSpec], readout: LayerSpec | None = None):
        super().__init__()
        self.n_in = n_in
        sizes = [n_in] + [s.n_out for s in layers]
        self.layers = nn.ModuleList(LIFLayer(a, s) for a, s in zip(sizes[:-1], layers))
        self.readout = LIFLayer(sizes[-1], readout) if readout is not None else None

    @property
    def modules_in_order(self) -> list[LIFLayer]:
        return list(self.layers) + ([self.readout] if self.readout is not None else [])

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, record: bool = False,
                sample_ids=None, tape=None):
        """x: [batch, steps, n_in] float. Returns dict with 'spikes' (per spiking layer [B, T, n]),
        'readout_v' ([B, T, n]) if a readout exists, and 'u', 'v' per layer (readout included)
        when record=True. sample_ids is accepted for the hardware-exact net's interface.
        tape(layer, x, s, spiking) -> s, if given, sees every sampled spike with its x = v - vth and
        returns the spike to use (neurohw.grad's estimators record log-probabilities with it)."""
        B, T, _ = x.shape
        mods = self.modules_in_order
        n_spiking = len(self.layers)
        ps = [m.params() for m in mods]
        noise_sd = [m.noise_std() for m in mods]
        state = [(x.new_zeros(B, m.spec.n_out), x.new_zeros(B, m.spec.n_out)) for m in mods]
        prev = [x.new_zeros(B, m.spec.n_out) for m in mods]
        out_s = [[] for _ in mods]
        out_v = [[] for _ in mods]
        out_u = [[] for _ in mods]
        for t in range(T):
            new = []
            for l, m in enumerate(mods):
                u, v = state[l]
                if t <= l:
                    s = x.new_zeros(B, m.spec.n_out)
                else:
                    w, rec, bias, vth, du_f, dv_f, spiking = ps[l]
                    src = x[:, t - 1] if l == 0 else prev[l - 1]
                    a = src @ w.t()
                    if rec is not None:
                        a = a + prev[l] @ rec.t()
                    sd_u, sd_v = noise_sd[l]      # additive noise, reparameterized: sd * N(0, 1)
                    if sd_u:
                        a = a + sd_u * torch.randn(a.shape, generator=generator, dtype=a.dtype)
                    if sd_v:
                        bias = bias + sd_v * torch.randn(a.shape, generator=generator, dtype=a.dtype)
                    u, v, xv = lif_step(u, v, a, du_f, dv_f, bias, vth)
                    if l < n_spiking:
                        s = spike(xv, spiking, generator)
                        if tape is not None:
                            s = tape(l, xv, s, spiking)
                        keep = 1 - (s.detach() if spiking.detach_reset else s)
                        v = v * keep
                    else:
                        s = x.new_zeros(B, m.spec.n_out)
                    state[l] = (u, v)
                new.append(s)
                out_s[l].append(s)
                out_v[l].append(state[l][1])
                out_u[l].append(state[l][0])
            prev = new
        res = {"spikes": [torch.stack(s, 1) for s in out_s[:n_spiking]]}
        if self.readout is not None:
            res["readout_v"] = torch.stack(out_v[-1], 1)
        if record:
            res["v"] = [torch.stack(v, 1) for v in out_v]
            res["u"] = [torch.stack(u, 1) for u in out_u]
        return res
