"""Stochastic LIF neurons in continuous time with exact pathwise spike-time gradients.

The SLIF of Holberg & Salvi (NeurIPS 2024), background.md 4a, per neuron (v, i, s):

    dv = mu1 (i + c - v) dt + sigma dW        di = -mu2 i dt + sigma_i dW'        ds = lambda(v) dt
    lambda(v) = exp(beta * min(v - vth, v_cap)) / tau_s

s starts at log U - alpha (U uniform in (0, 1]) and a spike fires when s reaches 0, i.e. when the
integrated hazard since the last spike reaches E + alpha with E ~ Exp(1). At a spike of neuron k:
v_k -= v_reset (subtractive, differentiable), i_j += W[k, j] for its targets, s_k <- a fresh draw.

Integration is Euler-Maruyama on a grid of step dt. Inside a step the proposal is linear in time,
so the clock's crossing fraction has the closed form phi = -s / (s_end - s): the implicit-function
theorem applied to the step's linear interpolant. The state is interpolated there, the reset and
the synaptic jumps applied, and the rest of the step integrated from the new state with the
remaining fraction of the same Brownian increment; several events per step are taken in time order.
All randomness (Brownian increments, clock draws) lives in a `Draws` object made before the run, so
that the spike times are deterministic, piecewise smooth functions of the parameters and plain
autograd (or forward-mode AD) through `simulate` gives their exact pathwise gradients.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SLIFParams:
    """Constants of the model (the parameters being learned, c and W, are passed to `simulate`).

    Defaults are experiment 1 of background.md 4a."""

    mu1: float = 15.0           # 1 / membrane time constant
    mu2: float = 0.0            # 1 / synaptic time constant
    sigma: float = 0.25         # diffusion of v
    sigma_i: float = 0.0        # diffusion of i (the network experiment)
    beta: float = 5.0           # hazard steepness
    vth: float = 1.0
    tau_s: float = 1.0
    v_cap: float = 10.0         # lambda uses min(v - vth, v_cap)
    v_reset: float = 1.4        # subtractive reset
    alpha: float = 0.03         # refractory budget of the clock
    T: float = 5.0
    dt: float = 0.01
    n_record: int = 3           # first spikes recorded per neuron (missing ones are set to T)

    def __post_init__(self):
        for key in ("mu1", "mu2", "sigma", "sigma_i", "alpha", "v_reset"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"slif: {key} = {getattr(self, key)!r} must be >= 0")
        for key in ("beta", "tau_s", "T", "dt", "v_cap"):
            if not getattr(self, key) > 0:
                raise ValueError(f"slif: {key} = {getattr(self, key)!r} must be > 0")
        if not (isinstance(self.n_record, int) and self.n_record >= 1):
            raise ValueError(f"slif: n_record = {self.n_record!r} must be an int >= 1")

    @property
    def steps(self) -> int:
        return int(round(self.T / self.dt))


def hazard(v: torch.Tensor, p: SLIFParams) -> torch.Tensor:
    """lambda(v) = exp(beta * min(v - vth, v_cap)) / tau_s."""
    return torch.exp(p.beta * torch.clamp(v - p.vth, max=p.v_cap)) / p.tau_s


@dataclass
class Draws:
    """Frozen randomness of a batch of runs: the pathwise gradients hold these fixed.

    dW, dWi: standard normals [steps, batch, neurons] (scaled by sqrt(dt) in the run);
    log_u: log of uniforms in (0, 1], [batch, neurons, n_clock]; draw j of a neuron starts its
    clock after its j-th spike (j taken modulo n_clock)."""

    dW: torch.Tensor
    dWi: torch.Tensor | None
    log_u: torch.Tensor

    @classmethod
    def sample(cls, p: SLIFParams, batch: int, neurons: int = 1, generator: torch.Generator | None = None,
               dtype=torch.float64, n_clock: int = 64) -> "Draws":
        shape = (p.steps, batch, neurons)
        dW = torch.randn(shape, generator=generator, dtype=dtype)
        dWi = torch.randn(shape, generator=generator, dtype=dtype) if p.sigma_i > 0 else None
        u = 1.0 - torch.rand((batch, neurons, n_clock), generator=generator, dtype=dtype)  # (0, 1]
        return cls(dW, dWi, torch.log(u))

    def take(self, idx) -> "Draws":
        """The draws of a subset of the batch (index or slice along the batch axis)."""
        return Draws(self.dW[:, idx], None if self.dWi is None else self.dWi[:, idx], self.log_u[idx])


@dataclass
class SLIFResult:
    times: torch.Tensor     # [batch, neurons, n_record] first spike times, T where missing
    counts: torch.Tensor    # [batch, neurons] all spikes in [0, T] (or until the early stop)
    v: torch.Tensor         # [batch, neurons] state at the end of the run
    i: torch.Tensor


def simulate(p: SLIFParams, c: torch.Tensor, draws: Draws, W: torch.Tensor | None = None,
             stop_when_recorded: bool = True, max_events_per_step: int = 1000) -> SLIFResult:
    """Run a batch of SLIF networks with exact event handling inside each Euler step.

    c: constant input current, broadcastable to [batch, neurons]; W: [neurons, neurons] (or one per
    trajectory, [batch, neurons, neurons]) with W[k, j] the jump of i_j at a spike of k (None: no
    synapses). Differentiable in c and W.
    stop_when_recorded: end the run once every neuron has n_record spikes (later spikes do not
    change the recorded times)."""
    steps, B, N = draws.dW.shape
    if steps < p.steps:
        raise ValueError(f"slif: draws have {steps} steps, the run needs {p.steps}")
    dtype = draws.dW.dtype
    K, M = p.n_record, draws.log_u.shape[-1]
    c = torch.as_tensor(c, dtype=dtype).expand(B, N)
    if W is not None:
        W = W.to(dtype)
        if W.shape[-2:] != (N, N) or W.dim() not in (2, 3) or (W.dim() == 3 and W.shape[0] != B):
            raise ValueError(f"slif: W has shape {tuple(W.shape)}; expected {(N, N)} or {(B, N, N)}")
    v = torch.zeros(B, N, dtype=dtype)
    i = torch.zeros(B, N, dtype=dtype)
    s = draws.log_u[:, :, 0] - p.alpha
    count = torch.zeros(B, N, dtype=torch.long)
    times = torch.full((B, N, K), p.T, dtype=dtype)
    slots = torch.arange(K)
    sq = math.sqrt(p.dt)
    for n in range(p.steps):
        a = torch.zeros(B, 1, dtype=dtype)                    # fraction of the step done
        dv_noise = p.sigma * sq * draws.dW[n]
        di_noise = p.sigma_i * sq * draws.dWi[n] if draws.dWi is not None else None
        for _ in range(max_events_per_step + 1):
            rem = 1.0 - a
            v_end = v + p.mu1 * (i + c - v) * (rem * p.dt) + rem * dv_noise
            i_end = i - p.mu2 * i * (rem * p.dt)
            if di_noise is not None:
                i_end = i_end + rem * di_noise
            s_end = s + hazard(v, p) * (rem * p.dt)
            cross = s_end >= 0
            if not bool(cross.any()):
                v, i, s = v_end, i_end, s_end
                break
            # crossing fraction of the remainder on the linear interpolant (implicit function theorem)
            phi = torch.where(cross, -s / torch.where(cross, s_end - s, torch.ones_like(s)),
                              torch.full_like(s, math.inf))
            phi_min, k = phi.min(dim=1, keepdim=True)         # earliest event per trajectory
            has = torch.isfinite(phi_min)
            f = torch.where(has, phi_min, torch.ones_like(phi_min))
            v = v + f * (v_end - v)
            i = i + f * (i_end - i)
            s = s + f * (s_end - s)
            spk = has & (torch.arange(N) == k)                # [B, N] bool, one neuron at most
            t_ev = (n + a + f * rem) * p.dt                   # [B, 1]
            rec = spk.unsqueeze(-1) & (count.unsqueeze(-1) == slots)
            times = torch.where(rec, t_ev.unsqueeze(-1), times)
            spk_f = spk.to(dtype)
            v = v - p.v_reset * spk_f
            if W is not None:
                i = i + (spk_f @ W if W.dim() == 2 else torch.bmm(spk_f.unsqueeze(1), W).squeeze(1))
            fresh = torch.gather(draws.log_u, 2, ((count + 1) % M).unsqueeze(-1)).squeeze(-1)
            s = torch.where(spk, fresh - p.alpha, s)
            count = count + spk.long()
            a = a + f * rem
        else:
            raise RuntimeError(f"slif: more than {max_events_per_step} events in step {n}")
        if stop_when_recorded and bool((count >= K).all()):
            break
    return SLIFResult(times=times, counts=count, v=v, i=i)


def single_neuron(p: SLIFParams, c, batch: int | None = None, draws: Draws | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """First n_record spike times [batch, n_record] of independent single neurons with input c
    (a scalar or one value per trajectory)."""
    if draws is None:
        draws = Draws.sample(p, batch, 1, generator)
    c = torch.as_tensor(c, dtype=draws.dW.dtype)
    c = c.reshape(-1, 1) if c.dim() == 1 else c
    return simulate(p, c, draws).times[:, 0, :]


def feedforward_weights(sizes: tuple[int, ...], blocks: list[torch.Tensor]) -> torch.Tensor:
    """The [N, N] weight matrix of a layered feed-forward net from its blocks [n_l, n_{l+1}]."""
    N = sum(sizes)
    offs = [0]
    for n in sizes:
        offs.append(offs[-1] + n)
    W = blocks[0].new_zeros(N, N)
    for l, blk in enumerate(blocks):
        if tuple(blk.shape) != (sizes[l], sizes[l + 1]):
            raise ValueError(f"slif: block {l} has shape {tuple(blk.shape)}, expected {(sizes[l], sizes[l + 1])}")
        W = W.index_put((torch.arange(offs[l], offs[l + 1])[:, None],
                         torch.arange(offs[l + 1], offs[l + 2])[None, :]), blk)
    return W


def network_input(sizes: tuple[int, ...], c_in: float, dtype=torch.float64) -> torch.Tensor:
    """Constant input current c_in on the first layer, none elsewhere: [1, N]."""
    c = torch.zeros(1, sum(sizes), dtype=dtype)
    c[0, : sizes[0]] = c_in
    return c
