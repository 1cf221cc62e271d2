"""Float spiking networks with exactly the chip's structure and timing.

Per layer: u = u*(1 - du_frac) + W s_prev (+ W_rec s_self_prev); v = v*(1 - dv_frac) + u + bias;
s = spike(v - vth); v = 0 where s. The Dense delay is one step, and layer l is at rest until
step l + 1 (docs/timing.md), so a trained network maps one to one onto an IntNetwork.
Decay fractions follow the chip: du_frac = (du + 1) / 4096, dv_frac = dv / 4096.

The input projection W s_prev is a Dense matrix, a 2-D convolution or a sum-pool over maps kept
flat in the chip's (height, width, channel) C order, or a Dense with per-synapse delays (a spike
sent at step t reaches the layer's u at step t + 1 + delay, as Lava's DelayDense). Trainable
delays are real numbers whose forward pass always uses the chip's integer delay (rounded), while
the gradient flows through a Gaussian delay kernel over the slots 0..max_delay centred on the real
delay, its width annealed during training: the learnable-spacing relaxation of Hammouamri,
Khalfaoui-Hassani & Masquelier (2023), "Learning delays in spiking neural networks using dilated
convolutions with learnable spacings" (DCLS, ICLR 2024), in its per-synapse Dense form, made
straight-through so that the trained network is the deployed one (docs/layers.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
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
    # --- the input projection (docs/layers.md) ---
    kind: str = "dense"           # "dense", "conv" (torch conv2d) or "pool" (sum-pool, one weight)
    channels: int = 0             # conv: output channels
    kernel: int | tuple = 1       # conv, pool: int or (height, width) (pool: stride = kernel)
    stride: int | tuple = 1
    padding: int | tuple = 0
    dilation: int | tuple = 1
    groups: int = 1
    max_delay: int = 0            # dense: > 0 gives per-synapse delays 0..max_delay (DelayDense)
    train_delays: bool = False    # learn them (Gaussian kernel, annealed) or keep their random init
    delay_sigma: float = 2.0      # initial width (steps) of the Gaussian delay kernel
    delay_seed: int = 0           # initial delays: uniform in [0, max_delay], from this seed
    rec_max_delay: int = 0        # recurrent: > 0 gives fixed delays 0..rec_max_delay (seed delay_seed + 1)
    in_shape: tuple | None = None  # conv, pool: view a flat input as this (H, W, C) map (default:
                                   # the previous conv / pool layer's map, or the network's in_shape)


KINDS = ("dense", "conv", "pool")
SIGMA_MIN = 0.5    # the delay kernel's width (steps) at the end of training


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) and not isinstance(v, bool) else tuple(v)


def conv_out_shape(in_shape: tuple[int, int, int], spec: LayerSpec) -> tuple[int, int, int]:
    """(H', W', C') of a conv or pool layer on an (H, W, C) map (Lava's size rule, chip.conv_out_size).
    kernel, stride, padding, dilation: an int or (height, width). Raises on a shape Lava could not build."""
    pool = spec.kind == "pool"
    geo = dict(kernel=spec.kernel, stride=spec.kernel if pool else spec.stride, padding=0 if pool else spec.padding,
               dilation=1 if pool else spec.dilation)
    for name, val in geo.items():
        pair = _pair(val) if isinstance(val, (int, tuple, list)) else ()
        lo = 0 if name == "padding" else 1
        if len(pair) != 2 or any(isinstance(x, bool) or not isinstance(x, int) or x < lo for x in pair):
            raise ValueError(f"{spec.kind} layer: {name} = {val!r} must be an int >= {lo} or a pair of them")
        geo[name] = pair
    c = in_shape[2]
    cout, g = (c, c) if pool else (spec.channels, spec.groups)
    for name, val in (("channels", cout), ("groups", g)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ValueError(f"{spec.kind} layer: {name} = {val!r} must be an int >= 1")
    if c % g or cout % g:
        raise ValueError(f"conv layer: groups = {g} must divide the input channels {c} and output channels {cout}")
    out = tuple(chip.conv_out_size(in_shape[a], *(geo[k][a] for k in ("kernel", "stride", "padding", "dilation")))
                for a in (0, 1))
    if min(out) < 1:
        raise ValueError(f"{spec.kind} layer: kernel {spec.kernel} (dilation {spec.dilation}, padding "
                         f"{spec.padding}) does not fit the {in_shape[0]}x{in_shape[1]} input map; allowed "
                         "dilation * (kernel - 1) + 1 <= map size + 2 * padding")
    return out[0], out[1], cout


def lif_step(u, v, a, du_f, dv_f, bias, vth):
    """One float LIF sub-threshold step (pure): returns new (u, v, v - vth) before spiking."""
    u = u * (1 - du_f) + a
    v = v * (1 - dv_f) + u + bias
    return u, v, v - vth


class LIFLayer(nn.Module):
    """One LIF population and its input projection. weight is (n_out, n_in) for dense layers,
    torch's (C_out, C_in / groups, k, k) cross-correlation kernel for conv layers, and a single
    value for pool layers (the sum-pool's shared weight). in_shape: the (H, W, C) input map of
    conv and pool layers."""

    def __init__(self, n_in: int, spec: LayerSpec, in_shape: tuple[int, int, int] | None = None):
        super().__init__()
        if spec.kind not in KINDS:
            raise ValueError(f"layer: kind = {spec.kind!r} is not known; allowed one of {KINDS}")
        self.in_shape = in_shape
        self.out_shape = None
        if spec.kind != "dense":
            if in_shape is None:
                raise ValueError(f"{spec.kind} layer: needs an (H, W, C) input map (a conv or pool layer, or "
                                 "the network's in_shape), not a flat dense input")
            self.out_shape = conv_out_shape(in_shape, spec)
            n = math.prod(self.out_shape)
            if spec.n_out not in (0, n):
                raise ValueError(f"{spec.kind} layer: n_out = {spec.n_out} does not match its output map "
                                 f"{self.out_shape} = {n} neurons; allowed {n} (or 0 to derive it)")
            spec = replace(spec, n_out=n)
        if spec.max_delay and spec.kind != "dense":
            raise ValueError(f"{spec.kind} layer: max_delay = {spec.max_delay} is only for dense layers; allowed 0")
        self.spec = spec
        if spec.kind == "conv":
            self.weight = nn.Parameter(torch.zeros(spec.channels, in_shape[2] // spec.groups, *_pair(spec.kernel)))
        elif spec.kind == "pool":
            self.weight = nn.Parameter(torch.full((1,), 0.5 * float(spec.vth)))
        else:
            self.weight = nn.Parameter(torch.zeros(spec.n_out, n_in))
        self.delay = None
        if spec.max_delay:
            g = torch.Generator().manual_seed(spec.delay_seed)
            d = torch.rand(spec.n_out, n_in, generator=g) * spec.max_delay
            # trained in units of max_delay, so that Adam's steps (~lr) move delays by ~lr * max_delay
            # steps: delays cross their range in tens of updates, as DCLS's larger position lr does
            self.delay = nn.Parameter(d / spec.max_delay) if spec.train_delays else None
            if not spec.train_delays:
                self.register_buffer("fixed_delay", d.round())
            self.register_buffer("sigma", torch.tensor(float(spec.delay_sigma) if spec.train_delays else 0.0))
        self.rec = nn.Parameter(torch.zeros(spec.n_out, spec.n_out)) if spec.recurrent else None
        if spec.rec_max_delay:
            if not spec.recurrent:
                raise ValueError(f"layer: rec_max_delay = {spec.rec_max_delay} needs recurrent = True")
            g = torch.Generator().manual_seed(spec.delay_seed + 1)
            self.register_buffer("rec_delay", (torch.rand(spec.n_out, spec.n_out, generator=g)
                                               * spec.rec_max_delay).round())
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

    @property
    def delays(self) -> torch.Tensor | None:
        """Per-synapse delays (n_out, n_in) as floats (trainable ones unrounded), or None."""
        if not self.spec.max_delay:
            return None
        return self.delay * self.spec.max_delay if self.delay is not None else self.fixed_delay

    def int_delays(self) -> torch.Tensor | None:
        """The chip's delays: rounded and kept in 0..max_delay."""
        d = self.delays
        return None if d is None else d.detach().round().clamp(0, self.spec.max_delay).long()

    def delay_kernel(self) -> torch.Tensor | None:
        """(n_out, n_in, max_delay + 1): the weight of each delay slot per synapse.

        Forward: the one-hot of the rounded delay (the chip's). Backward (trainable delays): the
        gradient of a Gaussian of width sigma around the real delay, normalized over the slots, so
        that a delay moves towards the slots whose input would have lowered the loss."""
        d = self.delays
        if d is None:
            return None
        D = self.spec.max_delay
        k = torch.arange(D + 1, dtype=d.dtype)
        dc = d.clamp(0, D)
        hard = F.one_hot(self.int_delays(), D + 1).to(d.dtype)
        if self.delay is None:
            return hard
        sig = max(float(self.sigma), SIGMA_MIN)
        soft = torch.softmax(-(k - dc[..., None]) ** 2 / (2 * sig * sig), dim=-1)
        return soft + (hard - soft).detach()

    def rec_kernel(self) -> torch.Tensor | None:
        """(n_out, n_out, rec_max_delay + 1): the one-hot delay slots of the recurrent synapses, or None."""
        if not self.spec.rec_max_delay:
            return None
        return F.one_hot(self.rec_delay.long(), self.spec.rec_max_delay + 1).to(self.rec_delay.dtype)

    def recur(self, prev_self: torch.Tensor, rec: torch.Tensor, hist: torch.Tensor | None = None,
              kernel: torch.Tensor | None = None) -> torch.Tensor:
        """The recurrent input [B, n_out]: the layer's own previous spikes through rec, or with
        delays hist [B, n_out, rec_max_delay + 1] (slot k: own spikes k steps before prev_self)."""
        if kernel is None:
            return prev_self @ rec.t()
        return hist.flatten(1) @ (rec[..., None] * kernel).flatten(1).t()

    def anneal(self, progress: float) -> None:
        """Trainable delays: the kernel's width shrinks linearly from delay_sigma towards SIGMA_MIN."""
        if self.delay is not None:
            self.sigma.fill_(SIGMA_MIN + (self.spec.delay_sigma - SIGMA_MIN) * max(0.0, 1.0 - progress))

    @torch.no_grad()
    def constrain(self) -> None:
        """Trainable delays: back into 0..max_delay after an update (a projected gradient step).
        The kernel is centred on the clamped delay, so a delay pushed past the end of its range
        would otherwise get no gradient and never come back."""
        if self.delay is not None:
            self.delay.clamp_(0.0, 1.0)

    def project(self, src: torch.Tensor, w: torch.Tensor, hist: torch.Tensor | None = None,
                kernel: torch.Tensor | None = None) -> torch.Tensor:
        """Synaptic input [B, n_out] from the source spikes: src [B, n_in] (flat (H, W, C) maps for
        conv and pool), or for delayed layers hist [B, n_in, max_delay + 1] (slot k = the spikes
        sent k steps before src) with kernel = delay_kernel()."""
        sp = self.spec
        if sp.kind == "dense":
            if kernel is None:
                return src @ w.t()
            return hist.flatten(1) @ (w[..., None] * kernel).flatten(1).t()
        h, wd, c = self.in_shape
        img = src.reshape(-1, h, wd, c).permute(0, 3, 1, 2)
        if sp.kind == "conv":
            out = F.conv2d(img, w, stride=sp.stride, padding=sp.padding, dilation=sp.dilation, groups=sp.groups)
        else:
            k = _pair(sp.kernel)
            out = F.avg_pool2d(img, k, stride=k) * (k[0] * k[1]) * w
        return out.permute(0, 2, 3, 1).flatten(1)


class SpikingNet(nn.Module):
    """Layers of LIFLayer; optional non-spiking readout (LIF without spikes) of n_readout units."""

    def __init__(self, n_in: int, layers: list[LayerSpec], readout: LayerSpec | None = None,
                 in_shape: tuple[int, int, int] | None = None):
        """in_shape: the input as an (H, W, C) map (needed when the first layer is conv or pool);
        a conv or pool layer's output map feeds the next one; a dense layer flattens it."""
        super().__init__()
        self.n_in = n_in
        if in_shape is not None and math.prod(in_shape) != n_in:
            raise ValueError(f"network: in_shape = {tuple(in_shape)} has {math.prod(in_shape)} inputs, "
                             f"but n_in = {n_in}")
        self.in_shape = None if in_shape is None else tuple(int(x) for x in in_shape)
        mods, n, shape = [], n_in, self.in_shape
        for i, spec in enumerate(list(layers) + ([readout] if readout is not None else [])):
            try:
                if spec.in_shape is not None:
                    if math.prod(spec.in_shape) != n:
                        raise ValueError(f"in_shape = {tuple(spec.in_shape)} does not hold the {n} inputs")
                    shape = tuple(int(v) for v in spec.in_shape)
                m = LIFLayer(n, spec, shape if spec.kind != "dense" else None)
            except ValueError as e:
                raise ValueError(f"layer {i}: {e}") from None
            mods.append(m)
            n, shape = m.spec.n_out, m.out_shape
        self.layers = nn.ModuleList(mods[:len(layers)])
        self.readout = mods[-1] if readout is not None else None

    def anneal(self, progress: float) -> None:
        """Called by the training loop before each epoch with epoch / epochs (delay kernels)."""
        for m in self.modules_in_order:
            m.anneal(progress)

    def constrain(self) -> None:
        """Called by the training loop after each update (delays kept in their range)."""
        for m in self.modules_in_order:
            m.constrain()

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
        kernels = [m.delay_kernel() for m in mods]
        hist = [None if k is None else x.new_zeros(B, k.shape[1], k.shape[2]) for k in kernels]
        rkernels = [m.rec_kernel() for m in mods]
        rhist = [None if k is None else x.new_zeros(B, k.shape[1], k.shape[2]) for k in rkernels]
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
                    if hist[l] is not None:     # slot k: the spikes sent k steps before src
                        hist[l] = torch.cat([src[..., None], hist[l][..., :-1]], -1)
                    a = m.project(src, w, hist[l], kernels[l])
                    if rec is not None:
                        if rhist[l] is not None:
                            rhist[l] = torch.cat([prev[l][..., None], rhist[l][..., :-1]], -1)
                        a = a + m.recur(prev[l], rec, rhist[l], rkernels[l])
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
