"""Surrogate gradients of stochastic spiking layers against the exact gradient of the expected loss.

The networks are small enough (one time step, 4 hidden Bernoulli units, 3 outputs) that the
expected loss E[L] = sum over all spike patterns of P(pattern) * L(pattern) can be written out
and differentiated exactly with autograd. The estimate under test is what training uses: the
gradient of the loss of sampled paths through neurohw's `spike` (stochastic `Spiking`, sigmoid
`Escape`, surrogate f'), averaged over many paths.

Three gradients per setting:
  exact     d E[L] / dW by autograd through the enumerated expectation;
  sampled   the surrogate gradient averaged over TRIALS sampled paths (what training computes);
  expected  the mean of the surrogate-gradient estimator itself, enumerated exactly: every
            pattern is pushed through the real `spike` (its `draws` argument forces the
            pattern) and weighted by its (detached) probability.
cos(sampled, expected) ~ 1 shows the Monte Carlo error is negligible, so any shortfall of
cos(sampled, exact) is the estimator's bias. That bias is real (background.md section 3: SGs
are biased). Per unit i the exact gradient carries the finite difference L(s_i=1) - L(s_i=0),
the surrogate the slope dL/ds_i at the sampled pattern. With p_i ~ 0.5 both ends are sampled
and the average slope is close to the finite difference (trapezoid rule, exact for quadratic L);
with a saturated unit only one end is ever sampled and the slope there misses the secant by the
curvature of L over one spike (softmax cross-entropy is curved). In the failing readout cases
the per-(input, unit) gradients dE/d(pre-activation) still agree in sign and broadly in
direction (cos 0.91-0.97) but their sizes are off by factors of 0.4 to 5; W1's gradient sums
them over inputs with heavy cancellation (|sum| / sum of |terms| ~ 0.3), so the size errors
rotate the sum. Through a second stochastic layer the same happens twice and single terms can
flip sign. Those settings are marked xfail(strict) with the measured values.

Run with `pytest tests/test_gradients.py -s` to see the cosine values.
"""
from __future__ import annotations

import functools
import itertools

import pytest
import torch
import torch.nn.functional as F

from neurohw.train import Escape, Spiking, spike
from neurohw.train.losses import spike_count_ce

N_IN, N_HID, N_OUT = 3, 4, 3
BATCH = 8                 # distinct inputs; the loss is their mean
TRIALS = 20000            # sampled paths per input for the surrogate estimate
BETA = 3.0                # moderate escape-noise width (1/beta = a third of vth)
W2_STD = 1.0              # readout / second-layer weight scale
VTH = 1.0
MIN_COS = 0.8
SEEDS = (0, 1, 2)

# Hidden pre-activation regimes, in units of 1/beta: near zero (p ~ 0.5), a moderate spread
# like a layer during training, and saturated (|beta x| of about 4: p ~ 0.02 or 0.98).
REGIMES = ("mid", "moderate", "saturated")

# Settings where the bias (not the sampling noise) takes the cosine below MIN_COS, with the
# measured values (torch 2.13, float64); the reason is in the module docstring.
KNOWN_BIASED = {
    ("readout", "saturated", 1): "cos(W1) = 0.27: saturated units, per-unit sizes off x0.5-5, cancelling sum over inputs",
    ("readout", "saturated", 2): "cos(W1) = 0.71: saturated units, per-unit sizes off x0.7-3, cancelling sum over inputs",
    ("two_layer", "mid", 2): "cos(W2) = 0.70: slope vs finite difference of CE over one output spike",
    ("two_layer", "moderate", 0): "cos(W1) = 0.72: slope vs finite difference, compounded through layer 2",
    ("two_layer", "saturated", 1): "cos(W1) = -0.23, cos(W2) = 0.08: saturated, per-unit signs flip through layer 2",
}


def patterns(n: int) -> torch.Tensor:
    """All 2**n binary vectors, [2**n, n] float64."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=torch.float64)


def pattern_probs(p: torch.Tensor, pats: torch.Tensor) -> torch.Tensor:
    """P(pattern | p) for independent Bernoullis: p [..., n], pats [K, n] -> [..., K]."""
    p = p.unsqueeze(-2)
    return torch.prod(pats * p + (1 - pats) * (1 - p), dim=-1)


def forced(pre: torch.Tensor, pats: torch.Tensor) -> torch.Tensor:
    """Uniform draws that make `spike` emit exactly `pats` (spike iff draw < p): 0 -> spike, 1 -> none."""
    return (1 - pats).expand_as(pre).contiguous()


def make_problem(regime: str, seed: int):
    """Inputs, labels and layer parameters (float64) whose hidden pre-activations sit in `regime`."""
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


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy for any leading shape: logits [..., C], y [...]."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction="none").reshape(y.shape)


# ---- network 1: stochastic hidden layer -> non-spiking (linear) readout, cross-entropy -------------

def readout_exact(x, y, w1, b1, w2, b2, sp):
    pats = patterns(N_HID)                                    # [K, H]
    P = pattern_probs(sp.escape.f(x @ w1.t() + b1 - VTH), pats)   # [B, K]
    K = pats.shape[0]
    L = ce(pats.expand(BATCH, K, N_HID) @ w2.t() + b2, y[:, None].expand(-1, K))
    return (P * L).sum(1).mean()


def readout_expected_sg(x, y, w1, b1, w2, b2, sp):
    pats = patterns(N_HID)
    K = pats.shape[0]
    pre = (x @ w1.t() + b1 - VTH)[:, None].expand(-1, K, -1)  # [B, K, H]
    P = pattern_probs(sp.escape.f(pre[:, 0]).detach(), pats)
    h = spike(pre, sp, draws=forced(pre, pats))
    return (P * ce(h @ w2.t() + b2, y[:, None].expand(-1, K))).sum(1).mean()


def readout_sampled(x, y, w1, b1, w2, b2, sp, gen):
    xr, yr = x.repeat(TRIALS, 1), y.repeat(TRIALS)
    h = spike(xr @ w1.t() + b1 - VTH, sp, generator=gen)
    return ce(h @ w2.t() + b2, yr).mean()


# ---- network 2: two stochastic layers, cross-entropy of the output spike counts (one step) --------

def two_layer_exact(x, y, w1, b1, w2, b2, sp):
    hp, op = patterns(N_HID), patterns(N_OUT)                 # [K, H], [M, O]
    P_h = pattern_probs(sp.escape.f(x @ w1.t() + b1 - VTH), hp)   # [B, K]
    P_o = pattern_probs(sp.escape.f(hp @ w2.t() + b2 - VTH), op)  # [K, M]
    M = op.shape[0]
    L = torch.stack([ce(op, torch.full((M,), c)) for c in range(N_OUT)])  # [C, M]
    return (P_h * (P_o @ L.t()).t()[y]).sum(1).mean()


def two_layer_expected_sg(x, y, w1, b1, w2, b2, sp):
    hp, op = patterns(N_HID), patterns(N_OUT)
    K, M = hp.shape[0], op.shape[0]
    pre1 = (x @ w1.t() + b1 - VTH)[:, None].expand(-1, K, -1)             # [B, K, H]
    P_h = pattern_probs(sp.escape.f(pre1[:, 0]).detach(), hp)            # [B, K]
    h = spike(pre1, sp, draws=forced(pre1, hp))
    pre2 = h @ w2.t() + b2 - VTH                                          # [B, K, O]
    P_o = pattern_probs(sp.escape.f(pre2.detach()), op)                   # [B, K, M]
    pre2 = pre2[:, :, None].expand(-1, -1, M, -1)                         # [B, K, M, O]
    o = spike(pre2, sp, draws=forced(pre2, op))
    L = ce(o, y[:, None, None].expand(-1, K, M))
    return (P_h[:, :, None] * P_o * L).sum((1, 2)).mean()


def two_layer_sampled(x, y, w1, b1, w2, b2, sp, gen):
    xr, yr = x.repeat(TRIALS, 1), y.repeat(TRIALS)
    h = spike(xr @ w1.t() + b1 - VTH, sp, generator=gen)
    o = spike(h @ w2.t() + b2 - VTH, sp, generator=gen)
    return spike_count_ce(o[:, None], yr)                    # [B, T=1, O]: counts = spikes


NETS = {"readout": (readout_exact, readout_expected_sg, readout_sampled),
        "two_layer": (two_layer_exact, two_layer_expected_sg, two_layer_sampled)}


@functools.lru_cache(maxsize=None)
def gradients(net: str, regime: str, seed: int):
    """{'exact'|'expected'|'sampled': (dL/dW1, dL/dW2)} and the hidden spike probabilities."""
    torch.set_num_threads(1)
    exact_fn, expected_fn, sampled_fn = NETS[net]
    sp = Spiking(stochastic=True, escape=Escape("sigmoid", beta=BETA))
    x, y, w1, b1, w2, b2 = make_problem(regime, seed)
    ws = [w1.clone().requires_grad_(), w2.clone().requires_grad_()]
    gen = torch.Generator().manual_seed(1000 + seed)
    out = {"exact": torch.autograd.grad(exact_fn(x, y, ws[0], b1, ws[1], b2, sp), ws),
           "expected": torch.autograd.grad(expected_fn(x, y, ws[0], b1, ws[1], b2, sp), ws),
           "sampled": torch.autograd.grad(sampled_fn(x, y, ws[0], b1, ws[1], b2, sp, gen), ws)}
    return out, sp.escape.f(x @ w1.t() + b1 - VTH)


def describe(net, regime, seed) -> tuple[list[float], str]:
    g, p = gradients(net, regime, seed)
    cos = [cosine(a, b) for a, b in zip(g["sampled"], g["exact"])]
    bias = [cosine(a, b) for a, b in zip(g["expected"], g["exact"])]
    mc = [cosine(a, b) for a, b in zip(g["sampled"], g["expected"])]
    msg = (f"{net:9s} {regime:9s} seed={seed} beta={BETA}: cos(sampled SG, exact) W1={cos[0]:+.3f} "
           f"W2={cos[1]:+.3f} | cos(E[SG], exact) {bias[0]:+.3f} {bias[1]:+.3f} | "
           f"cos(sampled, E[SG]) {mc[0]:.4f} {mc[1]:.4f} | hidden p in [{float(p.min()):.3f}, "
           f"{float(p.max()):.3f}], |grad W1|={float(g['exact'][0].norm()):.2e}")
    return cos, msg


def cases(known_xfail: bool):
    for net in NETS:
        for regime in REGIMES:
            for seed in SEEDS:
                reason = KNOWN_BIASED.get((net, regime, seed))
                marks = [pytest.mark.xfail(strict=True, reason="surrogate-gradient bias: " + reason)] \
                    if known_xfail and reason else []
                yield pytest.param(net, regime, seed, marks=marks, id=f"{net}-{regime}-{seed}")


@pytest.mark.parametrize("net,regime,seed", list(cases(known_xfail=True)))
def test_surrogate_gradient_aligns_with_exact_gradient(net, regime, seed):
    cos, msg = describe(net, regime, seed)
    print("\n" + msg)
    for name, c in zip(("W1", "W2"), cos):
        assert c >= MIN_COS, f"cosine({name}) = {c:.3f} < {MIN_COS}: {msg}"


@pytest.mark.parametrize("net,regime,seed", list(cases(known_xfail=False)))
def test_sampled_surrogate_gradient_matches_its_expectation(net, regime, seed):
    """The average over sampled paths through `spike` converges to the enumerated mean of the
    estimator: the Monte Carlo error is negligible and `spike`'s forward draw and backward
    surrogate agree with the Bernoulli(f) / f' the enumeration assumes."""
    g, _ = gradients(net, regime, seed)
    for name, a, b in zip(("W1", "W2"), g["sampled"], g["expected"]):
        c = cosine(a, b)
        rel = float((a - b).norm() / b.norm())
        assert c >= 0.99 and rel < 0.1, f"{net} {regime} seed={seed} {name}: cos={c:.4f}, rel. err={rel:.3f}"
