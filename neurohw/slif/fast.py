"""The single SLIF neuron with its exact spike-time derivative d t_k / d c, compiled.

The seed experiment fits one scalar (the input current c) from thousands of independent neurons
per optimizer step, where torch's per-operation cost dominates (tens of microseconds per op on a
few thousand floats). With one parameter, forward-mode differentiation is the cheapest exact
gradient: this kernel carries the tangents (dv, ds, da) = d/dc of (v, s, step fraction done) along
the same Euler-Maruyama steps and closed-form crossings as `model.simulate`, per trajectory, in
Numba. `tests/test_slif.py` checks times and derivatives against autograd through
`model.simulate` on the same draws; docs/slif.md states when to use which.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .model import Draws, SLIFParams


@njit(cache=True)
def _run(c, dW, log_u, K, steps, mu1, sigma, beta, vth, tau_s, v_cap, v_reset, alpha, T, dt, seed):
    """seed < 0: read the draws dW [steps, B], log_u [B, M]; seed >= 0: draw them on the fly from
    Numba's generator seeded with `seed` (fresh noise per optimizer step, nothing stored)."""
    B = c.shape[0]
    M = log_u.shape[1]
    gen = seed >= 0
    if gen:
        np.random.seed(seed)
    times = np.full((B, K), T)
    dtimes = np.zeros((B, K))
    sq = math.sqrt(dt)
    for b in range(B):
        v, dv = 0.0, 0.0
        s = (math.log(1.0 - np.random.random()) if gen else log_u[b, 0]) - alpha
        ds = 0.0
        cnt = 0
        for n in range(steps):
            a, da = 0.0, 0.0
            noise = sigma * sq * (np.random.standard_normal() if gen else dW[n, b])
            while True:
                rem, drem = 1.0 - a, -da
                x = v - vth
                lam = math.exp(beta * min(x, v_cap)) / tau_s
                dlam = beta * lam * dv if x <= v_cap else 0.0
                v_end = v + mu1 * (c[b] - v) * rem * dt + rem * noise
                dv_end = dv + mu1 * (1.0 - dv) * rem * dt + mu1 * (c[b] - v) * drem * dt + drem * noise
                s_end = s + lam * rem * dt
                ds_end = ds + dlam * rem * dt + lam * drem * dt
                if s_end < 0.0:
                    v, dv, s, ds = v_end, dv_end, s_end, ds_end
                    break
                den = s_end - s
                f = -s / den
                df = (-ds * den + s * (ds_end - ds)) / (den * den)
                dv = dv + df * (v_end - v) + f * (dv_end - dv)     # state at the crossing
                v = v + f * (v_end - v)
                a_new = a + f * rem
                da_new = da + df * rem + f * drem
                if cnt < K:
                    times[b, cnt] = (n + a_new) * dt
                    dtimes[b, cnt] = da_new * dt
                cnt += 1
                v = v - v_reset
                s = (math.log(1.0 - np.random.random()) if gen else log_u[b, cnt % M]) - alpha
                ds = 0.0
                a, da = a_new, da_new
            if cnt >= K:
                break
    return times, dtimes


def single_neuron_grad(p: SLIFParams, c, draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """First n_record spike times [B, K] of single neurons (input c: scalar or [B]) and their exact
    derivatives d t / d c, on `draws` (only dW[:, :, 0] and log_u[:, 0, :] are used)."""
    if p.mu2 != 0.0 or p.sigma_i != 0.0:
        raise ValueError("slif.fast: the compiled single neuron has no synaptic current (mu2 = sigma_i = 0)")
    B = draws.dW.shape[1]
    c = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), (B,)).copy()
    dW = np.ascontiguousarray(draws.dW[:, :, 0].double().numpy())
    log_u = np.ascontiguousarray(draws.log_u[:, 0, :].double().numpy())
    return _run(c, dW, log_u, p.n_record, p.steps, p.mu1, p.sigma, p.beta, p.vth, p.tau_s,
                p.v_cap, p.v_reset, p.alpha, p.T, p.dt, -1)


def single_neuron_grad_rng(p: SLIFParams, c, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """As `single_neuron_grad`, with the draws generated inside from `seed` (len(c) trajectories)."""
    if p.mu2 != 0.0 or p.sigma_i != 0.0:
        raise ValueError("slif.fast: the compiled single neuron has no synaptic current (mu2 = sigma_i = 0)")
    c = np.ascontiguousarray(np.asarray(c, dtype=np.float64).reshape(-1))
    return _run(c, np.zeros((1, 1)), np.zeros((1, 1)), p.n_record, p.steps, p.mu1, p.sigma, p.beta,
                p.vth, p.tau_s, p.v_cap, p.v_reset, p.alpha, p.T, p.dt, int(seed))
