"""The seed experiment's baseline: neurohw's discrete-time sigmoid-escape neuron with its surrogate
gradient, as the torch trainer computes it (`discrete_torch`) and compiled with forward tangents
(`discrete_grad`, what `benchmarks/slif.py` trains with; `tests/test_slif.py` holds the two equal).

Per step (dt = 0.01) and trajectory, with `train.model.lif_step` and `train.spike`:
    v <- v (1 - mu1 dt) + mu1 dt c;  v <- v + sigma sqrt(dt) z;  s ~ Bernoulli(sigmoid(beta (v - vth')))
    v <- v (1 - s) (reset to 0, no gradient through it);  N <- N + s;  t_k <- t_k + dt clamp(k - N, 0, 1)
with vth' = vth + ln(tau_s / dt) / beta (the per-step escape matches the SLIF hazard at small rates)
and the surrogate d s / d v = beta sigmoid (1 - sigmoid). t_k (k = 1..3) is the k-th spike time on
the step grid, and passes the surrogate through the counts. The run ends after the first step at
which every trajectory of the batch has 3 spikes (as the torch loop does: its stop, and so t_k's
tangent, depends on the whole batch); the compiled version finds that step in a first pass
without tangents, then runs every trajectory to it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from numba import get_num_threads, njit, prange

from .fast import _normal, _stream, _uniform
from .model import SLIFParams


def threshold(p: SLIFParams) -> float:
    return p.vth + math.log(p.tau_s / p.dt) / p.beta


def discrete_torch(p: SLIFParams, c: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor, u: torch.Tensor,
                   K: int = 3) -> torch.Tensor:
    """First K spike times [B, K] (differentiable by the surrogate) for inputs c [B], noise sigma [B],
    normals z [steps, B] and uniforms u [steps, B] of the spike draws."""
    from ..train.escape import Escape, Spiking, spike
    from ..train.model import lif_step
    dt, dv_f, vth = p.dt, p.mu1 * p.dt, threshold(p)
    spiking = Spiking(stochastic=True, escape=Escape("sigmoid", p.beta))
    B = c.shape[0]
    v = torch.zeros(B, dtype=torch.float64)
    u0 = torch.zeros(B, dtype=torch.float64)
    N = torch.zeros(B, dtype=torch.float64)
    t = torch.zeros(B, K, dtype=torch.float64)
    ks = torch.arange(1, K + 1, dtype=torch.float64)
    for n in range(p.steps):
        u0, v, _ = lif_step(u0, v, 0.0, 0.0, dv_f, dv_f * c, vth)
        v = v + sigma * np.sqrt(dt) * z[n]
        s = spike(v - vth, spiking, draws=u[n])
        v = v * (1 - s.detach())
        N = N + s
        t = t + dt * torch.clamp(ks - N[:, None], 0.0, 1.0)
        if bool((N.detach() >= K).all()):
            break
    return t


@njit(inline="always")
def _draws(gen, st, z, u, n, b):
    if gen:
        st, zz = _normal(st)
        st, uu = _uniform(st)
        return st, zz, uu
    return st, z[n, b], u[n, b]


@njit(cache=True, parallel=True)
def _first_k_step(c, sigma, z, u, seed, steps, dt, dv_f, vth, beta, K, nt):
    """Per trajectory: the step at whose end it has K spikes (steps - 1 if never)."""
    B = c.shape[0]
    out = np.full(B, steps - 1)
    gen = seed >= 0
    sq = math.sqrt(dt)
    for th in prange(nt):
        for b in range(th, B, nt):
            st = _stream(seed, b) if gen else np.uint64(0)
            v = 0.0
            N = 0
            for n in range(steps):
                st, zz, uu = _draws(gen, st, z, u, n, b)
                v = v * (1 - dv_f) + 0.0 + dv_f * c[b]
                v = v + sigma[b] * sq * zz
                pr = 1.0 / (1.0 + math.exp(-beta * (v - vth)))
                if uu < pr:
                    v = 0.0
                    N += 1
                    if N >= K:
                        out[b] = n
                        break
    return out


@njit(cache=True, parallel=True)
def _tangent_run(c, sigma, z, u, seed, last, dt, dv_f, vth, beta, K, nt):
    B = c.shape[0]
    times = np.zeros((B, K))
    dtimes = np.zeros((B, K))
    gen = seed >= 0
    sq = math.sqrt(dt)
    for th in prange(nt):
        for b in range(th, B, nt):
            st = _stream(seed, b) if gen else np.uint64(0)
            v, dv, N, dN = 0.0, 0.0, 0.0, 0.0
            for n in range(last + 1):
                st, zz, uu = _draws(gen, st, z, u, n, b)
                v = v * (1 - dv_f) + 0.0 + dv_f * c[b]
                dv = dv * (1 - dv_f) + dv_f
                v = v + sigma[b] * sq * zz
                sg = 1.0 / (1.0 + math.exp(-beta * (v - vth)))
                ds = beta * sg * (1 - sg) * dv
                s = 1.0 if uu < sg else 0.0
                v = v * (1 - s)
                dv = dv * (1 - s)
                N += s
                dN += ds
                for k in range(K):
                    m = (k + 1) - N
                    if m >= 0.0 and m <= 1.0:          # torch.clamp passes the gradient on [min, max]
                        times[b, k] += dt * m
                        dtimes[b, k] -= dt * dN
                    elif m > 1.0:
                        times[b, k] += dt
    return times, dtimes


def discrete_grad(p: SLIFParams, c, sigma, seed: int = -1, z=None, u=None, K: int = 3):
    """`discrete_torch`'s times [B, K] and their surrogate derivatives d t / d c [B, K], compiled:
    draws from the counter-based streams of `seed` (trajectory b: its own stream, a normal then a
    uniform per step), or given z, u [steps, B] (seed < 0)."""
    c = np.ascontiguousarray(np.asarray(c, dtype=np.float64).reshape(-1))
    sigma = np.ascontiguousarray(np.broadcast_to(np.asarray(sigma, dtype=np.float64).reshape(-1), c.shape))
    if seed < 0:
        z, u = (np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in (z, u))
    else:
        z = u = np.zeros((1, 1))
    dt, dv_f, vth, nt = p.dt, p.mu1 * p.dt, threshold(p), get_num_threads()
    last = int(_first_k_step(c, sigma, z, u, seed, p.steps, dt, dv_f, vth, p.beta, K, nt).max())
    return _tangent_run(c, sigma, z, u, seed, last, dt, dv_f, vth, p.beta, K, nt)
