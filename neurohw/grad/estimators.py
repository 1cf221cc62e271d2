"""Gradient estimators for networks of escape-noise neurons (docs/gradients.md).

Every sampled spike s of a stochastic layer has a known probability: P(s = 1) = f(x) with
x = v - vth, so log P(path) = sum of s log f(x) + (1 - s) log(1 - f(x)) over layers, steps and
neurons, and the likelihood-ratio identity gives unbiased gradients of the expected loss.

  surrogate  today's: the loss of each sampled path back-propagated through f' (biased; the
             smoothed stochastic derivative, background.md section 3).
  score      likelihood ratio (Williams 1992) with the leave-one-out baseline over K paths of the
             same input (Kool, van Hoof & Welling 2019): the baseline of path k is the mean loss
             of the other K - 1 paths, independent of path k, so the estimate stays unbiased.
  mixed      score with the surrogate as a control variate whose mean is added back analytically
             (the linear control variate of MuProp, Gu, Levine, Sutskever & Mnih 2016, with its
             slopes taken from the surrogate gradients of the other K - 1 paths):
               g = dL/dtheta|spikes fixed + sum_u dlog P(s_u)/dtheta * (L - b - c M) + c sum_u G_u dp_u/dtheta,
               M = sum_u G_u (s_u - p_u),
             u runs over every sampled spike, G_u = mean over the other paths of dL/ds_u (the
             surrogate's slope). Each term G_u (s_u - p_u) has conditional mean zero given the
             path before u's step, so E[dlog P(s_u) * M] = G_u E[dp_u] (only u's own term
             survives), which the last sum adds back: unbiased for any G and c independent of the
             path. c scales the control variate per sample: the least-squares slope of L - b on M
             over the paths of the other samples (the surrogate's slopes ignore the reset and
             overshoot a spike's effect on a long run; c = 1 is MuProp's choice).
  score_plain  the likelihood ratio without baseline: the reference for the variance reduction.

All run batched: the K paths of a batch go through one forward of K * B rows, with the noise
ids the trainer gives path k (hardware-exact nets) or fresh draws of the generator (float nets).
On a hardware-exact net, or a float net with the chip's staircase escape attached, the spikes'
probability is taken from the smooth escape of the same width (logistic or uniform): the
estimators are then unbiased for that model of the chip's noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..train.escape import Escape, Spiking

ESTIMATORS = ("surrogate", "score", "mixed")
ALL_ESTIMATORS = ESTIMATORS + ("score_plain",)
EPS = 1e-12


def prob_escape(spiking: Spiking) -> Escape:
    """The escape whose f is the spike probability used for log-probabilities: the layer's own,
    or for the chip's staircase the smooth escape of the same width (its surrogate's)."""
    e = spiking.escape
    if e.kind != "chip":
        return e
    return Escape("sigmoid" if e.noise.dist == "logistic" else "uniform", e.beta)


def log_prob(x: torch.Tensor, s: torch.Tensor, escape: Escape) -> torch.Tensor:
    """log P(s | x) elementwise for Bernoulli(f(x)); exact logsigmoid for the sigmoid escape."""
    if escape.kind == "sigmoid":
        z = escape.beta * x
        return torch.where(s > 0, torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z))
    p = escape.f(x)
    return torch.where(s > 0, p.clamp_min(EPS).log(), (1 - p).clamp_min(EPS).log())


class _Gated(torch.autograd.Function):
    """The sampled spike with the surrogate's gradient while tape.surrogate_on, none after: one
    forward serves the surrogate slopes dL/ds and the score terms (spikes held fixed)."""

    @staticmethod
    def forward(ctx, x, s, spiking, tape):
        ctx.save_for_backward(x)
        ctx.spiking, ctx.tape = spiking, tape
        return s.clone()

    @staticmethod
    def backward(ctx, grad):
        if not ctx.tape.surrogate_on:
            return None, None, None, None
        (x,) = ctx.saved_tensors
        return grad * ctx.spiking.surrogate_grad(x), None, None, None


@dataclass
class Tape:
    """SpikingNet.forward's `tape`: records x, the spike node and its value for every step of
    every stochastic layer. mode 'fixed': spikes carry no gradient (score); 'gated': the
    surrogate's gradient until surrogate_on is cleared (mixed); 'force': the spikes are replaced
    by the columns of `forced` [rows, units] in call order (enumeration), with no gradient, or
    with the surrogate's when force_surrogate."""

    mode: str = "fixed"
    forced: torch.Tensor | None = None
    force_surrogate: bool = False
    surrogate_on: bool = True
    records: list = field(default_factory=list)    # (layer, x, spike node, spike value, escape)
    _col: int = 0

    def __call__(self, layer: int, x: torch.Tensor, s: torch.Tensor, spiking: Spiking) -> torch.Tensor:
        if not spiking.stochastic:
            return s
        value = s.detach()
        if self.mode == "force":
            n = x.shape[-1]
            value = self.forced[:, self._col:self._col + n].to(x.dtype)
            self._col += n
            node = spike_like(x, value, spiking) if self.force_surrogate else value
        elif self.mode == "gated":
            node = _Gated.apply(x, value, spiking, self)
        else:
            node = value
        self.records.append((layer, x, node, value, prob_escape(spiking)))
        return node

    def log_prob(self) -> torch.Tensor:
        """log P(all recorded spikes) per row [rows], differentiable through x."""
        return sum(log_prob(x, s, e).sum(-1) for _, x, _, s, e in self.records)

    def probs(self) -> list[torch.Tensor]:
        return [e.f(x) for _, x, _, _, e in self.records]


def spike_like(x: torch.Tensor, value: torch.Tensor, spiking: Spiking) -> torch.Tensor:
    from ..train.escape import spike_as
    return spike_as(x, value, spiking)


def per_sample_losses(loss_fn, out: dict, y: torch.Tensor) -> torch.Tensor:
    """The loss of every row on its own ([rows]), for loss_fn(out, y) that averages over the
    batch: vmapped over rows, or row by row where a loss does not vmap."""
    keys = [k for k in ("spikes", "readout_v") if k in out]
    sub = {k: ([s.unsqueeze(1) for s in out[k]] if k == "spikes" else out[k].unsqueeze(1)) for k in keys}
    yy = y.unsqueeze(1)
    try:
        return torch.func.vmap(lambda o, t: loss_fn(o, t))(sub, yy)
    except Exception:  # noqa: BLE001 - e.g. in-place indexing inside a loss; same result, slower
        n = y.shape[0]
        rows = []
        for i in range(n):
            o = {k: ([s[i:i + 1] for s in out[k]] if k == "spikes" else out[k][i:i + 1]) for k in keys}
            rows.append(loss_fn(o, y[i:i + 1]))
        return torch.stack(rows)


def _params(net) -> list[torch.nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


def _paths_input(x: torch.Tensor, y: torch.Tensor, ids, paths: int):
    """K copies of the batch, path-major ([K * B, ...]), and the noise ids of each copy."""
    B = x.shape[0]
    if ids is None:
        ids = [np.arange(B) + k * B for k in range(paths)]
    if len(ids) != paths:
        raise ValueError(f"estimator: {len(ids)} lists of noise ids for paths = {paths}")
    return x.repeat(paths, *([1] * (x.dim() - 1))), y.repeat(paths, *([1] * (y.dim() - 1))), \
        np.concatenate([np.asarray(i, np.int64) for i in ids])


def _loo_mean(a: torch.Tensor) -> torch.Tensor:
    """Leave-one-out mean over the path axis 0: for path k, the mean of the other K - 1."""
    K = a.shape[0]
    return (a.sum(0, keepdim=True) - a) / (K - 1)


def _cv_coefficient(adv: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The control variate's scale for each sample b ([B]): the least-squares slope of the
    baselined loss on M over the paths of the *other* samples (independent of sample b's paths,
    so the estimate stays unbiased); 1 (MuProp's) for a batch of one."""
    B = adv.shape[1]
    if B < 2:
        return adv.new_ones(B)
    sxy, syy = (adv * m).sum(0), (m * m).sum(0)                    # per sample, over its paths
    num, den = sxy.sum() - sxy, syy.sum() - syy
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(den))


def gradient(net, x: torch.Tensor, y: torch.Tensor, loss_fn, estimator: str = "surrogate", paths: int = 1,
             generator: torch.Generator | None = None, ids=None):
    """One gradient estimate of E[loss_fn(net(x), y)] from `paths` sampled paths per sample.

    Returns (loss: float, grads: list of tensors aligned with the net's trainable parameters).
    ids: one array of noise ids per path (hardware-exact nets), as fit hands out trials."""
    if estimator not in ALL_ESTIMATORS:
        raise ValueError(f"estimator = {estimator!r} is not allowed; allowed {ALL_ESTIMATORS}")
    advantages = getattr(loss_fn, "advantages", None)
    if estimator != "surrogate" and paths < 2 and advantages is None:
        raise ValueError(f"estimator {estimator!r}: paths = {paths} must be >= 2 (leave-one-out across paths)")
    params = _params(net)
    B = x.shape[0]
    xr, yr, idr = _paths_input(x, y, ids, paths)
    if estimator == "surrogate":
        out = net(xr, generator=generator, sample_ids=idr)
        loss = loss_fn(out, yr)                                   # as fit computes it
        return float(loss.detach()), list(torch.autograd.grad(loss, params, allow_unused=True))
    if advantages is not None:
        # a loss on the set of samples (an MMD: a U-statistic), not a mean of per-sample losses:
        # it gives the likelihood-ratio weight of every row itself (baselined over the other rows)
        if estimator != "score":
            raise ValueError(f"estimator {estimator!r}: this loss compares sets of samples (no per-sample "
                             "loss); allowed 'surrogate' or 'score'")
        tape = Tape(mode="fixed")
        out = net(xr, generator=generator, sample_ids=idr, tape=tape)
        adv, value = advantages(out, yr)
        objective = (tape.log_prob().double() * adv).sum()
        return float(value), list(torch.autograd.grad(objective, params, allow_unused=True))
    tape = Tape(mode="gated" if estimator == "mixed" else "fixed")
    out = net(xr, generator=generator, sample_ids=idr, tape=tape)
    ell = per_sample_losses(loss_fn, out, yr)                     # [K * B]
    ell_k = ell.detach().view(paths, B)
    if estimator == "score_plain":
        adv = ell_k
    else:
        adv = ell_k - _loo_mean(ell_k)
    extra = 0.0
    if estimator == "mixed":
        nodes = [r[2] for r in tape.records]
        gs = torch.autograd.grad(ell.sum(), nodes, retain_graph=True, allow_unused=True)
        tape.surrogate_on = False
        m = ell.new_zeros(paths, B)
        for (_, xv, _, s, e), g in zip(tape.records, gs):
            if g is None:
                continue
            gbar = _loo_mean(g.detach().view(paths, B, -1)).reshape(g.shape)   # slopes of the other paths
            p = e.f(xv)
            m = m + (gbar * (s - p.detach())).view(paths, B, -1).sum(-1)
            extra = extra + (gbar * p).reshape(paths * B, -1).sum(-1)          # [K * B]
        c = _cv_coefficient(adv, m)                                # [B], from the other samples
        adv = adv - c * m
        extra = (extra * c.repeat(paths)).sum()
    logp = tape.log_prob()                                         # [K * B]
    objective = (ell.sum() + (logp * adv.reshape(-1)).sum() + extra) / (paths * B)
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    return float(ell.detach().mean()), list(grads)


def grads_to_params(net, grads) -> None:
    """Write a gradient estimate into the parameters' .grad (for an optimizer step)."""
    for p, g in zip(_params(net), grads):
        p.grad = torch.zeros_like(p) if g is None else g.detach().clone()

