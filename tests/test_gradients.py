"""Surrogate gradients of stochastic spiking layers against the exact gradient of the expected loss.

The networks (neurohw.grad.tiny: one input step, 4 hidden Bernoulli units, 3 outputs, as
SpikingNets) are small enough that the expected loss E[L] = sum over all spike patterns of
P(pattern) * L(pattern) can be written out and differentiated exactly with autograd
(neurohw.grad.expected_loss). The estimate under test is what training uses: the gradient of the
loss of sampled paths through neurohw's `spike` (stochastic `Spiking`, sigmoid `Escape`,
surrogate f'), averaged over many paths (neurohw.grad.gradient, estimator 'surrogate').

Three gradients per setting:
  exact     d E[L] / dW by autograd through the enumerated expectation;
  sampled   the surrogate gradient averaged over TRIALS sampled paths (what training computes);
  expected  the mean of the surrogate-gradient estimator itself, enumerated exactly: every
            pattern is forced through the network's forward with the surrogate's gradient
            (spike_as) and weighted by its (detached) probability.
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

The unbiased estimators of neurohw.grad (score function with a leave-one-out baseline; 'mixed',
the score function with the surrogate as a control variate whose mean is added back) are checked
against the same exact gradient: mixed reaches cosine >= 0.95 in every setting, the five biased
ones included, at 4000 paths; and both estimators' means equal the exact gradient within their
standard error at K = 2 paths, where a leave-one-out construction would show any bias.

Run with `pytest tests/test_gradients.py -s` to see the cosine values.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurohw.grad import exact_gradient, gradient
from neurohw.grad.tiny import BETA, NETS, REGIMES, tiny_problem

TRIALS = 20000            # sampled paths per input for the surrogate estimate
MIN_COS = 0.8
SEEDS = (0, 1, 2)
UNBIASED_PATHS = 4000     # paths per input at which 'mixed' reaches UNBIASED_COS everywhere
UNBIASED_COS = 0.95

# Settings where the bias (not the sampling noise) takes the cosine below MIN_COS, with the
# measured values (torch 2.13, float64); the reason is in the module docstring.
KNOWN_BIASED = {
    ("readout", "saturated", 1): "cos(W1) = 0.27: saturated units, per-unit sizes off x0.5-5, cancelling sum over inputs",
    ("readout", "saturated", 2): "cos(W1) = 0.71: saturated units, per-unit sizes off x0.7-3, cancelling sum over inputs",
    ("two_layer", "mid", 2): "cos(W2) = 0.70: slope vs finite difference of CE over one output spike",
    ("two_layer", "moderate", 0): "cos(W1) = 0.72: slope vs finite difference, compounded through layer 2",
    ("two_layer", "saturated", 1): "cos(W1) = -0.23, cos(W2) = 0.08: saturated, per-unit signs flip through layer 2",
}


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


@functools.lru_cache(maxsize=None)
def gradients(net: str, regime: str, seed: int):
    """{'exact'|'expected'|'sampled': (dL/dW1, dL/dW2)} and the hidden spike probabilities."""
    torch.set_num_threads(1)
    model, x, y, loss = tiny_problem(net, regime, seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    pick = lambda g: (g[0], g[2])   # noqa: E731 - parameters are W1, b1, W2, b2
    out = {"exact": pick(exact_gradient(model, x, y, loss)),
           "expected": pick(exact_gradient(model, x, y, loss, surrogate=True)),
           "sampled": pick(gradient(model, x, y, loss, "surrogate", paths=TRIALS, generator=gen)[1])}
    hidden = model.layers[0]
    p = hidden.spec.spiking.escape.f(x[:, 0] @ hidden.weight.detach().t() + hidden.bias.detach() - hidden.vth)
    return out, p


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


@pytest.mark.parametrize("net,regime,seed", list(cases(known_xfail=False)))
def test_mixed_estimator_aligns_with_exact_gradient_everywhere(net, regime, seed):
    """The unbiased 'mixed' estimator at UNBIASED_PATHS paths: cosine >= 0.95 with the exact
    gradient for every parameter (W1, b1, W2, b2), including the settings where the surrogate
    fails. The surrogate's cosines stay documented in KNOWN_BIASED."""
    torch.set_num_threads(1)
    model, x, y, loss = tiny_problem(net, regime, seed)
    exact = exact_gradient(model, x, y, loss)
    _, est = gradient(model, x, y, loss, "mixed", paths=UNBIASED_PATHS, generator=torch.Generator().manual_seed(7))
    for name, a, b in zip(("W1", "b1", "W2", "b2"), est, exact):
        c = cosine(a, b)
        assert c >= UNBIASED_COS, f"{net} {regime} seed={seed} {name}: cos(mixed, exact) = {c:.3f} < {UNBIASED_COS}"


@pytest.mark.parametrize("estimator", ["score", "mixed"])
@pytest.mark.parametrize("setting", sorted(KNOWN_BIASED), ids=lambda s: "-".join(map(str, s)))
def test_unbiased_estimators_mean_equals_exact_gradient(setting, estimator):
    """At K = 2 paths (the leave-one-out baseline and control-variate slopes come from the one
    other path) the estimator's mean over 20 independent runs of 2000 replicas of the batch equals
    the exact gradient within 4.5 standard errors in every coordinate. The surrogate's mean, the
    enumerated 'expected', misses it by far more in these settings (checked as a control)."""
    torch.set_num_threads(1)
    model, x, y, loss = tiny_problem(*setting)
    exact = torch.cat([g.flatten() for g in exact_gradient(model, x, y, loss)])
    sg = torch.cat([g.flatten() for g in exact_gradient(model, x, y, loss, surrogate=True)])
    R, reps = 20, 2000
    xr, yr = x.repeat(reps, 1, 1), y.repeat(reps)            # independent 2-path estimates, averaged
    runs = []
    for r in range(R):
        _, g = gradient(model, xr, yr, loss, estimator, paths=2, generator=torch.Generator().manual_seed(r))
        runs.append(torch.cat([t.flatten() for t in g]))
    runs = torch.stack(runs)
    se = runs.std(0) / np.sqrt(R)
    z = ((runs.mean(0) - exact).abs() / (se + 1e-12)).max()
    z_sg = ((sg - exact).abs() / (se + 1e-12)).max()
    assert z < 4.5, f"{setting} {estimator}: max |mean - exact| / se = {float(z):.2f}"
    assert z_sg > 10, f"{setting}: control: the surrogate's bias is only {float(z_sg):.2f} se"
