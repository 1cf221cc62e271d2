"""Float network -> the chip's integers: one scale per layer, chosen by search.

Spikes carry no amplitude, so every layer has its own free scale s (chip v units per float v
unit). With it, a float weight W becomes w * 2**weight_exp * 64 / s (w on Lava's grid for the
sign mode: even values in [-256, 254] when mixed), vth becomes vth_int * 64 / s, a bias b
becomes bias_mant * 2**bias_exp / s, and an escape of width 1/beta becomes threshold noise of
width s / beta chip units. The noise amplitude is a power of two, so for a stochastic layer s
is pinned to beta * c * 2**k and only the weight step is searched among powers of two.
The same functions give the integers for export and the fake-quantized floats for QAT
(straight-through), so the network that is fine-tuned is the network that is deployed.

target="netx" (`quant.target: netx`): every layer is planned like a conv layer (weight_exp 0,
the weight step searched alone), biases on netx's fixed bias_exp 6 (multiples of 64, 13-bit
mantissa), recurrent and input weights in one sign mode (netx optimizes them as one matrix) and
no noise: the network lava-dl's netx can hold exactly (neurohw.interop.netx, docs/interop.md).

Conv and sum-pool layers: Lava's Conv ignores weight_exp (the IntLayer keeps it 0) and sends the
raw sum, so their scale is searched as a weight step alone: the best step, then coarser ones by
powers of two until vth, biases and peaks fit. Delayed Dense layers quantize like Dense; their
delays are the trainer's rounded delays (the forward pass already uses them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import chip
from ..noise import Noise, noise_moments
from ..train.escape import Escape, Spiking

ACT = 1 << chip.ACT_SHIFT                   # a weight unit enters u as w << 6
HEADROOM = 2.0 ** (chip.UV_BITS - 2)        # plan peaks |u|, |v| to at most half the 24-bit range
BIAS_MAX = chip.BIAS_MANT_RANGE[1] << chip.BIAS_EXP_RANGE[1]
NETX_BIAS_EXP = 6                           # lava-dl netx fixes bias_exp = 6
TARGETS = ("chip", "netx")
CLIP_FRACTIONS = np.linspace(0.3, 1.0, 36)   # candidate clip levels, as fractions of max |W|

# Escape function -> (chip distribution, c): the noise's scale in chip units is c * 2**(exp - 7)
# for an escape of width 1/beta = one float unit. sigmoid is logistic (table scale 16); erf is
# matched in variance by a logistic; exp, 1 - exp(-exp(beta x)), is exactly Gumbel threshold noise
# of scale 1/beta (the per-step exponential clock, docs/slif.md); a uniform ramp of width 1/beta is
# uniform noise spanning 256 raw steps.
DEPLOY_NOISE = {"sigmoid": ("logistic", chip.LOGISTIC_SCALE),
                "erf": ("logistic", chip.LOGISTIC_SCALE * math.pi / math.sqrt(3.0)),
                "exp": ("gumbel", chip.GUMBEL_SCALE),
                "uniform": ("uniform", float(1 << chip.NOISE_R_BITS))}


@dataclass(frozen=True)
class LayerQuant:
    """How one float layer maps onto the chip. scale: chip v units per float v unit."""

    scale: float
    weight_exp: int
    mode: int                      # Lava sign mode of the weights (fixed by the plan)
    num_weight_bits: int
    vth: int
    du: int
    dv: int
    rec_weight_exp: int = 0
    rec_mode: int = chip.SIGN_MIXED
    rec_num_weight_bits: int = chip.MAX_WEIGHT_BITS
    noise: Noise = Noise()
    readout: bool = False
    spiking: Spiking | None = None  # the escape as the chip realizes it (stochastic layers)
    bias_exp_min: int = 0           # NETX_BIAS_EXP for target "netx": biases on the 64 grid

    def noise_std(self) -> tuple[float, float]:
        """(current, voltage) noise std per step in float units, as the chip realizes it."""
        if self.noise.inject not in ("current", "voltage"):
            return 0.0, 0.0
        sd = math.sqrt(noise_moments(self.noise)[1]) / self.scale
        return (sd, 0.0) if self.noise.inject == "current" else (0.0, sd)

    def q(self, rec: bool = False) -> float:
        """Float value of one integer weight unit."""
        e = self.rec_weight_exp if rec else self.weight_exp
        return ACT * 2.0 ** e / self.scale

    def weight_ints(self, w: torch.Tensor, rec: bool = False) -> torch.Tensor:
        """Integer weights (float tensor of exact integers) on Lava's grid, clipped to the mode."""
        lo, hi, step = (chip.weight_limits(self.rec_mode, self.rec_num_weight_bits) if rec
                        else chip.weight_limits(self.mode, self.num_weight_bits))
        return torch.clamp(torch.round(w.detach() / (self.q(rec) * step)) * step, lo, hi)

    def bias_ints(self, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(bias_mant, bias_exp) per neuron: the smallest exponent that fits the mantissa."""
        x = b.detach().double().numpy() * self.scale
        exp = np.full(x.shape, self.bias_exp_min, np.int64)
        lo, hi = chip.BIAS_MANT_RANGE
        for e in range(self.bias_exp_min, chip.BIAS_EXP_RANGE[1] + 1):
            m = np.round(x / 2.0 ** e)
            exp = np.where((exp == e) & ((m < lo) | (m > hi)), e + 1, exp)
        bad = np.argwhere(exp > chip.BIAS_EXP_RANGE[1])
        if bad.size:
            i = int(bad[0][0])
            raise ValueError(f"quantize: bias[{i}] = {float(b[i]):.4g} needs {x[i]:.4g} chip units; "
                             f"allowed |bias| * scale <= {BIAS_MAX}")
        return np.round(x / 2.0 ** exp).astype(np.int64), exp

    def fake(self, layer) -> tuple:
        """The forward parameters of a LIFLayer on the chip's grid, straight-through gradients."""
        w = _ste(layer.weight, self.weight_ints(layer.weight) * self.q())
        rec = None if layer.rec is None else _ste(layer.rec, self.weight_ints(layer.rec, True) * self.q(True))
        mant, exp = self.bias_ints(layer.bias)
        b = _ste(layer.bias, torch.as_tensor(mant * 2.0 ** exp / self.scale, dtype=layer.bias.dtype))
        vth = torch.tensor(self.vth * float(1 << chip.VTH_SHIFT) / self.scale)
        du_f = (self.du + chip.DU_OFFSET) / chip.DECAY_UNITY
        dv_f = (self.dv + chip.DV_OFFSET) / chip.DECAY_UNITY
        return w, rec, b, vth, du_f, dv_f, self.spiking or layer.spec.spiking


def _ste(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return x + (value.to(x.dtype) - x).detach()


def quant_error(w: np.ndarray, q: float, mode: int, bits: int) -> float:
    lo, hi, step = chip.weight_limits(mode, bits)
    wq = np.clip(np.round(w / (q * step)) * step, lo, hi) * q
    return float(np.mean((w - wq) ** 2))


def _decay_ints(frac_u: float, frac_v: float, where: str) -> tuple[int, int]:
    du = int(round(frac_u * chip.DECAY_UNITY)) - chip.DU_OFFSET
    dv = int(round(frac_v * chip.DECAY_UNITY)) - chip.DV_OFFSET
    chip.check_range(where, "du", du, *chip.DU_RANGE)
    chip.check_range(where, "dv", dv, *chip.DV_RANGE)
    return du, dv


def plan_layer(layer, peak_u: float, peak_v: float, readout: bool, bits: int = chip.MAX_WEIGHT_BITS,
               noise_seed: int = 0, where: str = "layer", clip: float | None = None,
               target: str = "chip") -> LayerQuant:
    """Choose the scale, exponents, threshold, decays and noise of one layer.

    Deterministic layers: the weight step minimizing the mean squared weight error over
    clip levels, then the largest weight_exp (finest v resolution) for which vth, the biases
    and the calibration peaks of |u| and |v| fit. Stochastic layers: the same, with the
    scale pinned to beta * c * 2**k so that the escape is realized exactly by noise_exp.
    target "netx": weight_exp 0, biases at bias_exp 6, one sign mode, no noise (module doc)."""
    if target not in TARGETS:
        raise ValueError(f"quantize: target = {target!r}; allowed {', '.join(TARGETS)}")
    netx = target == "netx"
    if netx and not readout and (layer.spec.spiking.stochastic or layer.spec.noise_current
                                 or layer.spec.noise_voltage):
        raise ValueError(f"quantize: {where} has stochastic spiking or additive noise; target netx has no noise "
                         f"(lava-dl's netx cannot express on-chip noise)")
    w = layer.weight.detach().double().numpy()
    b = np.abs(layer.bias.detach().double().numpy())
    mode = chip.sign_mode(np.sign(w).astype(np.int64))
    rec = None if layer.rec is None else layer.rec.detach().double().numpy()
    rec_mode = chip.SIGN_MIXED if rec is None else chip.sign_mode(np.sign(rec).astype(np.int64))
    if netx and rec is not None:              # netx optimizes [W, W_rec] as one matrix: one sign mode
        mode = rec_mode = chip.sign_mode(np.sign(np.hstack([w.reshape(w.shape[0], -1), rec])).astype(np.int64))
    du, dv = _decay_ints(*(float(f) for f in layer.du_dv), where)
    vth_f = float(layer.vth)
    spiking = layer.spec.spiking
    stochastic = spiking.stochastic and not readout
    lo, hi, step = chip.weight_limits(mode, bits)
    wmax = float(np.abs(w).max()) or 1.0
    top = max(abs(lo), hi)

    if stochastic:
        dist, c = DEPLOY_NOISE[spiking.escape.kind]
        cb = c * spiking.escape.beta
        # q = 64 * 2**(e - k) / (c beta): search d = e - k over a generous window
        cands = [(quant_error(w, ACT * 2.0 ** d / cb, mode, bits), d) for d in range(-40, 41)
                 if wmax / 8 <= ACT * 2.0 ** d / cb * top <= 8 * wmax]
        d = min(cands)[1]
        scale_of = lambda e: cb * 2.0 ** (e - d)  # noqa: E731
    else:
        fracs = CLIP_FRACTIONS if clip is None else [clip]      # clip: a given level, no search
        q_best = min((quant_error(w, f * wmax / top, mode, bits), f * wmax / top) for f in fracs)[1]
        scale_of = lambda e: ACT * 2.0 ** e / q_best  # noqa: E731

    conv = layer.spec.kind != "dense" or netx
    bias_max = chip.BIAS_MANT_RANGE[1] << NETX_BIAS_EXP if netx else BIAS_MAX
    # conv / pool: weight_exp stays 0 and e only coarsens the weight step (q = q_best * 2**-e)
    exps = range(0, -17, -1) if conv else range(chip.WEIGHT_EXP_RANGE[1], chip.WEIGHT_EXP_RANGE[0] - 1, -1)
    for e in exps:
        s = scale_of(e)
        vth = chip.VTH_RANGE[1] if readout else int(round(s * vth_f / (1 << chip.VTH_SHIFT)))
        noise = Noise()
        if stochastic:
            k = e - d
            noise = Noise(inject="threshold", dist=dist, exp=k + chip.NOISE_EXP_BIAS, seed=noise_seed)
            if not chip.NOISE_EXP_RANGE[0] <= noise.exp <= chip.NOISE_EXP_RANGE[1]:
                continue
        if (vth <= chip.VTH_RANGE[1] and b.max(initial=0) * s <= bias_max
                and max(peak_u, peak_v) * s <= HEADROOM
                and (not readout or peak_v * s < chip.VTH_RANGE[1] << chip.VTH_SHIFT)):
            break
    else:
        raise ValueError(f"quantize: {where} does not fit the chip at any "
                         f"{'weight step' if conv else 'weight_exp in ' + str(chip.WEIGHT_EXP_RANGE)}: peak |u| {peak_u:.3g}, |v| {peak_v:.3g}, vth {vth_f:.3g}, "
                         f"max |bias| {b.max(initial=0):.3g} (float units)")
    rec_exp = 0
    if rec is not None and not netx:
        rec_exp = min((quant_error(rec, ACT * 2.0 ** r / s, rec_mode, bits), r)
                      for r in range(chip.WEIGHT_EXP_RANGE[0], chip.WEIGHT_EXP_RANGE[1] + 1))[1]
    chip_spiking = None
    if stochastic and (layer.spec.noise_current or layer.spec.noise_voltage):
        raise ValueError(f"quantize: {where} has escape noise and additive noise; the chip has one noise "
                         "source per layer")
    if not stochastic and (layer.spec.noise_current or layer.spec.noise_voltage):
        noise = additive_noise(layer.spec, s, noise_seed, where)
    if stochastic:
        esc = Escape.from_chip(noise, unit=1.0 / s)
        chip_spiking = replace(spiking, escape=esc)
    return LayerQuant(scale=s, weight_exp=0 if conv else e, mode=mode, num_weight_bits=bits, vth=vth, du=du, dv=dv,
                      rec_weight_exp=rec_exp, rec_mode=rec_mode, rec_num_weight_bits=bits, noise=noise, readout=readout,
                      spiking=chip_spiking, bias_exp_min=NETX_BIAS_EXP if netx else 0)


def additive_noise(spec, scale: float, seed: int, where: str) -> Noise:
    """Gaussian current or voltage noise of std sd (float units) as chip logistic noise of the
    nearest power-of-two amplitude (variance matched; the chip has one noise source per layer)."""
    if spec.noise_current and spec.noise_voltage:
        raise ValueError(f"quantize: {where} has both current and voltage noise; the chip has one noise "
                         "source per layer")
    inject, sd = ("current", spec.noise_current) if spec.noise_current else ("voltage", spec.noise_voltage)
    unit_sd = math.sqrt(noise_moments(Noise(dist="logistic", exp=chip.NOISE_EXP_BIAS))[1])
    exp = chip.NOISE_EXP_BIAS + int(round(math.log2(sd * scale / unit_sd)))
    chip.check_range(where, f"noise_exp (for {inject} noise std {sd:.3g})", exp, *chip.NOISE_EXP_RANGE)
    return Noise(inject=inject, dist="logistic", exp=exp, seed=seed)


def calibrate(net, x: np.ndarray, batch_size: int = 256) -> list[tuple[float, float]]:
    """Peak |u| and |v| per layer (readout included) of the float network on x."""
    peaks = [[0.0, 0.0] for _ in net.modules_in_order]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = net(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32), generator=gen, record=True)
            for p, u, v in zip(peaks, out["u"], out["v"]):
                p[0] = max(p[0], float(u.abs().max()))
                p[1] = max(p[1], float(v.abs().max()))
    return [tuple(p) for p in peaks]


def plan(net, x_calib: np.ndarray, bits: int = chip.MAX_WEIGHT_BITS, noise_seed: int = 0,
         select=None, clips=CLIP_FRACTIONS[::2], target: str = "chip") -> list[LayerQuant]:
    """A LayerQuant per layer of a SpikingNet (readout last), from calibration data.

    With `select(plans) -> score` (higher is better; e.g. the fake-quantized net's accuracy on
    the training split), each deterministic layer's clip level is then chosen, layer by layer,
    among `clips` and the weight-error optimum by that score. Why: the least weight error is not
    the least damage to the decision; a deterministic spiking net's spike times are discrete, so a
    few weights moved by one grid step can flip ~1 % of its decisions, and which level flips the
    fewest differs from net to net. Stochastic layers keep the step that realizes their escape.
    target: "chip", or "netx" for a network lava-dl's netx holds exactly (plan_layer)."""
    mods = net.modules_in_order
    peaks = calibrate(net, x_calib)

    def make(i: int, clip: float | None = None) -> LayerQuant:
        return plan_layer(mods[i], *peaks[i], readout=(mods[i] is net.readout), bits=bits,
                          noise_seed=noise_seed + i, where=f"layer {i}", clip=clip, target=target)
    plans = [make(i) for i in range(len(mods))]
    if select is None:
        return plans
    for i, m in enumerate(mods):
        if m is not net.readout and m.spec.spiking.stochastic:
            continue
        best_score, best = select(plans), plans[i]
        for f in clips:
            try:
                cand = make(i, float(f))
            except ValueError:                     # this clip level does not fit the chip
                continue
            score = select(plans[:i] + [cand] + plans[i + 1:])
            if score > best_score:
                best_score, best = score, cand
        plans[i] = best
    return plans


def agreement(pred: np.ndarray, ref: np.ndarray) -> float:
    """Share of samples on which two sets of decisions (class per sample) are the same. The
    accuracies of the two differ by at most 1 - agreement, whatever the labels: selecting the
    deployed network by agreement with the float network's decisions bounds |chip - float|,
    while selecting by accuracy rewards a candidate for moving away from the float function."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape or not pred.size:
        raise ValueError(f"agreement: decisions of shape {pred.shape} and {ref.shape}; allowed equal, non-empty")
    return float((pred == ref).mean())


def pick_best(scores) -> int:
    """Index of the best score (higher is better), the earliest on a tie: candidate 0 (e.g. no
    QAT, or the weight-error plan) wins unless another one is strictly better."""
    scores = [float(s) for s in scores]
    if not scores:
        raise ValueError("pick_best: no candidates")
    return int(np.argmax(scores))


def attach(net, plans: list[LayerQuant] | None) -> None:
    """Quantization-aware forward passes (plans) or float ones again (None)."""
    for i, m in enumerate(net.modules_in_order):
        m.quant = None if plans is None else plans[i]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(x) for x in v)


def to_int_layer(layer, lq: LayerQuant):
    """The IntLayer of a float layer: Dense, DelayDense (rounded delays), Conv2d (torch's
    (C_out, C_in/g, kh, kw) kernel as (C_out, kh, kw, C_in/g), both cross-correlations) or sum-pool."""
    from ..network import Conv2d, IntLayer
    mant, exp = lq.bias_ints(layer.bias)
    rec = None if layer.rec is None else lq.weight_ints(layer.rec, True).numpy().astype(np.int16)
    w = lq.weight_ints(layer.weight).numpy().astype(np.int16)
    sp, conv, delays = layer.spec, None, None
    if sp.kind == "conv":
        w = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
        conv = Conv2d(in_shape=layer.in_shape, stride=_pair(sp.stride), padding=_pair(sp.padding),
                      dilation=_pair(sp.dilation), groups=sp.groups)
    elif sp.kind == "pool":
        c, k = layer.in_shape[2], _pair(sp.kernel)
        w = np.full((c,) + k + (1,), w.reshape(-1)[0], np.int16)
        conv = Conv2d(in_shape=layer.in_shape, stride=k, groups=c, pool=True)
    elif sp.max_delay:
        delays = layer.int_delays().numpy().astype(np.int8)
    rec_delays = None if layer.rec_kernel() is None else layer.rec_delay.numpy().astype(np.int8)
    return IntLayer(weights=w, du=lq.du, dv=lq.dv,
                    vth=lq.vth, bias_mant=mant.astype(np.int16), bias_exp=exp.astype(np.int8),
                    weight_exp=lq.weight_exp, num_weight_bits=lq.num_weight_bits, rec_weights=rec,
                    rec_weight_exp=lq.rec_weight_exp, rec_num_weight_bits=lq.rec_num_weight_bits, noise=lq.noise,
                    conv=conv, delays=delays, rec_delays=rec_delays)


def to_int_network(net, plans: list[LayerQuant], name: str = "network"):
    """The IntNetwork that the plans make of the float network (the readout is the last layer,
    a LIF whose threshold is out of reach, read through its v)."""
    from ..network import IntNetwork
    return IntNetwork(n_in=net.n_in, layers=[to_int_layer(m, lq) for m, lq in zip(net.modules_in_order, plans)],
                      name=name)


def from_int_network(int_net, readout: bool = False, spiking: Spiking | None = None):
    """A SpikingNet and plans that reproduce an IntNetwork exactly (scale 64 * 2**weight_exp,
    so every integer is a float of its own value): the hardware-exact trainer's view of it.
    Conv, pool and delayed layers included, recurrent delays too (fixed in the trainer)."""
    from ..train.model import LayerSpec, SpikingNet
    specs, plans = [], []
    for i, L in enumerate(int_net.layers):
        s = float(ACT) * 2.0 ** L.weight_exp
        sp = spiking or Spiking()
        proj = {}
        if L.rec_delays is not None:
            proj["rec_max_delay"] = max(L.rec_max_delay, 1)
        if L.conv is not None:
            c = L.conv
            kh, kw = np.shape(L.weights)[1:3]
            proj.update(dict(kind="pool", kernel=(kh, kw), in_shape=tuple(c.in_shape)) if c.pool else
                    dict(kind="conv", channels=int(np.shape(L.weights)[0]), kernel=(kh, kw), stride=tuple(c.stride),
                         padding=tuple(c.padding), dilation=tuple(c.dilation), groups=c.groups,
                         in_shape=tuple(c.in_shape)))
        elif L.delays is not None:
            proj.update(max_delay=max(L.max_delay, 1))
        specs.append(LayerSpec(n_out=L.n_out, du=L.du, dv=L.dv, vth=L.vth * float(1 << chip.VTH_SHIFT) / s, recurrent=L.recurrent,
                               spiking=sp, **proj))
        plans.append(LayerQuant(scale=s, weight_exp=L.weight_exp, mode=chip.sign_mode(L.weights),
                                num_weight_bits=L.num_weight_bits, vth=L.vth, du=L.du, dv=L.dv,
                                rec_weight_exp=L.rec_weight_exp,
                                rec_mode=chip.sign_mode(L.rec_weights) if L.recurrent else chip.SIGN_MIXED,
                                rec_num_weight_bits=L.rec_num_weight_bits,
                                noise=L.noise, readout=readout and i == len(int_net.layers) - 1))
    ro = specs.pop() if readout else None
    net = SpikingNet(int_net.n_in, specs, readout=ro)
    with torch.no_grad():
        for m, L, lq in zip(net.modules_in_order, int_net.layers, plans):
            w = L.weights.astype(np.float64)
            if m.spec.kind == "conv":
                w = w.transpose(0, 3, 1, 2)
            elif m.spec.kind == "pool":
                w = w.reshape(-1)[:1]
            m.weight.copy_(torch.as_tensor(w * lq.q()))
            if L.delays is not None:
                m.fixed_delay.copy_(torch.as_tensor(L.delays.astype(np.float64)))
            if L.rec_delays is not None:
                m.rec_delay.copy_(torch.as_tensor(L.rec_delays.astype(np.float64)))
            if L.recurrent:
                m.rec.copy_(torch.as_tensor(L.rec_weights.astype(np.float64) * lq.q(True)))
            m.bias.copy_(torch.as_tensor(L.bias.astype(np.float64) / lq.scale))
    return net, plans


def report(net, plans: list[LayerQuant], x: np.ndarray, batch_size: int = 256) -> list[dict]:
    """Per layer: weight error, share of weights moved by more than one grid step (clipped),
    and, from the emulator's run of the quantized network on x (binary spikes), the peak |u|
    and |v| as a fraction of 2**23 and the counts of u wraps and v saturations."""
    from ..emu import run as emu_run          # a backend, called from here only
    inet = to_int_network(net, plans)
    x = np.asarray(x)
    if x.dtype.kind == "f" and ((x == 0) | (x == 1)).all():      # spikes held as floats
        x = x.astype(np.uint8)
    mods = net.modules_in_order
    peak = np.zeros((len(mods), 2))
    wraps = np.zeros(len(mods), np.int64)
    sats = np.zeros(len(mods), np.int64)
    for i in range(0, len(x), batch_size):
        out = emu_run(inet, x[i:i + batch_size], probes=True,
                      sample_ids=np.arange(i, min(i + batch_size, len(x))), flags=True)
        wraps += out.wraps
        sats += out.sats
        for l in range(len(mods)):
            peak[l] = np.maximum(peak[l], [np.abs(out.u[l]).max(), np.abs(out.v[l]).max()])
    rows = []
    for l, (m, lq) in enumerate(zip(mods, plans)):
        w = m.weight.detach().double()
        step = chip.weight_limits(lq.mode, lq.num_weight_bits)[2] * lq.q()
        err = (lq.weight_ints(m.weight).double() * lq.q() - w).abs()
        rows.append(dict(
            layer=l, readout=lq.readout, scale=lq.scale, weight_exp=lq.weight_exp, vth=lq.vth, du=lq.du, dv=lq.dv,
            sign_mode=chip.SIGN_MODE_NAMES[lq.mode], noise=dict(inject=lq.noise.inject, dist=lq.noise.dist,
                                                                exp=lq.noise.exp, seed=lq.noise.seed),
            weight_rel_rmse=float(err.pow(2).mean().sqrt() / (w.std() if w.numel() > 1 else w.abs().max()).clamp_min(1e-12)),
            moved_over_one_step=float((err > step).double().mean()),
            peak_u=float(peak[l, 0] / chip.UV_HALF), peak_v=float(peak[l, 1] / chip.UV_HALF),
            u_wraps=int(wraps[l]), v_saturations=int(sats[l])))
    return rows


def plan_to_dict(lq: LayerQuant) -> dict:
    """JSON-able plan (the realized escape is rebuilt from the noise and the layer's spiking)."""
    d = {k: getattr(lq, k) for k in ("scale", "weight_exp", "mode", "num_weight_bits", "vth", "du", "dv",
                                     "rec_weight_exp", "rec_mode", "rec_num_weight_bits", "readout", "bias_exp_min")}
    d["noise"] = dict(inject=lq.noise.inject, dist=lq.noise.dist, mant=lq.noise.mant, exp=lq.noise.exp,
                      seed=lq.noise.seed)
    return d


def plan_from_dict(d: dict, spiking: Spiking | None = None) -> LayerQuant:
    d = dict(d)
    noise = Noise(**d.pop("noise"))
    sp = None
    if noise.inject == "threshold" and spiking is not None and spiking.stochastic:
        sp = replace(spiking, escape=Escape.from_chip(noise, unit=1.0 / d["scale"]))
    return LayerQuant(noise=noise, spiking=sp, **d)
