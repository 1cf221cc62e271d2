"""The single SLIF neuron with its exact spike-time derivative d t_k / d c, compiled.

The seed experiment fits one scalar (the input current c) from thousands of independent neurons
per optimizer step, where torch's per-operation cost dominates (tens of microseconds per op on a
few thousand floats). With one parameter, forward-mode differentiation is the cheapest exact
gradient: this kernel carries the tangents (dv, ds, da) = d/dc of (v, s, step fraction done) along
the same Euler-Maruyama steps and closed-form crossings as `model.simulate`, per trajectory, in
Numba. `tests/test_slif.py` checks times and derivatives against autograd through
`model.simulate` on the same draws; docs/slif.md states when to use which.

Fresh noise (`single_neuron_grad_rng`) comes from a counter-based generator: trajectory b of a
call with seed S draws from its own stream (splitmix64 of (S, b)), so the trajectories run in
parallel (Numba prange over the cores) and the result does not depend on the thread count.
The losses' forward tangents are here too: `sig3_tangent` (the depth-3 signature of the Marcus
path and its d/dc) and `mmd_grad` (the unbiased signature-kernel MMD^2 per run and its d/dc, the
Goursat scheme of `sigkernel.sig_kernel` with its tangent carried along the grid).
"""
from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

from .model import Draws, SLIFParams

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _stream(seed, b):
    """The start state of trajectory b's stream."""
    return _mix(_mix(np.uint64(seed) * _GOLD + np.uint64(0x632BE59BD9B4E019)) ^ (np.uint64(b) * _M2 + _GOLD))


@njit(inline="always")
def _uniform(state):
    """(new state, uniform in [0, 1)) by splitmix64."""
    state = state + _GOLD
    return state, float(_mix(state) >> np.uint64(11)) * _TWO53


@njit(inline="always")
def _normal(state):
    """(new state, standard normal) by Box-Muller (one of the pair; the other is dropped)."""
    state, u1 = _uniform(state)
    state, u2 = _uniform(state)
    return state, math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@njit(inline="always")
def _one(b, c, dW, log_u, K, steps, mu1, sigma, beta, vth, tau_s, v_cap, v_reset, alpha, T, dt, seed,
         times, dtimes):
    M = log_u.shape[1]
    gen = seed >= 0
    st = _stream(seed, b) if gen else np.uint64(0)
    sq = math.sqrt(dt)
    v, dv = 0.0, 0.0
    if gen:
        st, u = _uniform(st)
        s = math.log(1.0 - u) - alpha
    else:
        s = log_u[b, 0] - alpha
    ds = 0.0
    cnt = 0
    for n in range(steps):
        a, da = 0.0, 0.0
        if gen:
            st, z = _normal(st)
        else:
            z = dW[n, b]
        noise = sigma * sq * z
        while True:
            rem, drem = 1.0 - a, -da
            x = v - vth
            lam = math.exp(beta * min(x, v_cap)) / tau_s
            dlam = beta * lam * dv if x <= v_cap else 0.0
            v_end = v + mu1 * (c - v) * rem * dt + rem * noise
            dv_end = dv + mu1 * (1.0 - dv) * rem * dt + mu1 * (c - v) * drem * dt + drem * noise
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
            if gen:
                st, u = _uniform(st)
                s = math.log(1.0 - u) - alpha
            else:
                s = log_u[b, cnt % M] - alpha
            ds = 0.0
            a, da = a_new, da_new
        if cnt >= K:
            break


@njit(cache=True, parallel=True)
def _run(c, dW, log_u, K, steps, mu1, sigma, beta, vth, tau_s, v_cap, v_reset, alpha, T, dt, seed, nt):
    """seed < 0: read the draws dW [steps, B], log_u [B, M]; seed >= 0: trajectory b draws its own
    stream of (seed, b). sigma may differ per trajectory ([B])."""
    B = c.shape[0]
    times = np.full((B, K), T)
    dtimes = np.zeros((B, K))
    for t in prange(nt):                       # round robin: trajectories differ in length
        for b in range(t, B, nt):
            _one(b, c[b], dW, log_u, K, steps, mu1, sigma[b], beta, vth, tau_s, v_cap, v_reset, alpha, T, dt,
                 seed, times, dtimes)
    return times, dtimes


def _check(p: SLIFParams):
    if p.mu2 != 0.0 or p.sigma_i != 0.0:
        raise ValueError("slif.fast: the compiled single neuron has no synaptic current (mu2 = sigma_i = 0)")


def single_neuron_grad(p: SLIFParams, c, draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """First n_record spike times [B, K] of single neurons (input c: scalar or [B]) and their exact
    derivatives d t / d c, on `draws` (only dW[:, :, 0] and log_u[:, 0, :] are used)."""
    _check(p)
    B = draws.dW.shape[1]
    c = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), (B,)).copy()
    dW = np.ascontiguousarray(draws.dW[:, :, 0].double().numpy())
    log_u = np.ascontiguousarray(draws.log_u[:, 0, :].double().numpy())
    return _run(c, dW, log_u, p.n_record, p.steps, p.mu1, np.full(B, p.sigma), p.beta, p.vth, p.tau_s,
                p.v_cap, p.v_reset, p.alpha, p.T, p.dt, -1, get_num_threads())


def single_neuron_grad_rng(p: SLIFParams, c, seed: int, sigma=None) -> tuple[np.ndarray, np.ndarray]:
    """As `single_neuron_grad`, with the draws generated inside from `seed` (len(c) trajectories;
    sigma: one per trajectory, default p.sigma)."""
    _check(p)
    c = np.ascontiguousarray(np.asarray(c, dtype=np.float64).reshape(-1))
    sg = np.full(len(c), p.sigma) if sigma is None else np.ascontiguousarray(np.broadcast_to(
        np.asarray(sigma, dtype=np.float64).reshape(-1), c.shape))
    return _run(c, np.zeros((1, 1)), np.zeros((1, 1)), p.n_record, p.steps, p.mu1, sg, p.beta,
                p.vth, p.tau_s, p.v_cap, p.v_reset, p.alpha, p.T, p.dt, int(seed), get_num_threads())


def normals(seed: int, B: int, steps: int) -> np.ndarray:
    """[steps, B] the standard normals the generator of `seed` gives trajectory b at step n when no
    spike draws come between (for tests)."""
    return _normals(np.int64(seed), B, steps)


@njit(cache=True)
def _normals(seed, B, steps):
    out = np.empty((steps, B))
    for b in range(B):
        st = _stream(seed, b)
        for n in range(steps):
            st, out[n, b] = _normal(st)
    return out


# ------------------------------------------------------------------------------------------------
# forward tangents of the losses
@njit(cache=True)
def _sig3_path(pts, dpts, out, dout):
    """Levels 1..3 of the signature of a 2-D piecewise-linear path [L, 2] and their tangents, by
    Chen's identity (words in lexicographic order: 2 + 4 + 8 terms)."""
    S1 = np.zeros(2); S2 = np.zeros(4); S3 = np.zeros(8)
    D1 = np.zeros(2); D2 = np.zeros(4); D3 = np.zeros(8)
    for j in range(pts.shape[0] - 1):
        d0 = pts[j + 1, 0] - pts[j, 0]
        d1 = pts[j + 1, 1] - pts[j, 1]
        e0 = dpts[j + 1, 0] - dpts[j, 0]
        e1 = dpts[j + 1, 1] - dpts[j, 1]
        d = (d0, d1)
        e = (e0, e1)
        N3 = np.empty(8); M3 = np.empty(8)
        for i in range(2):
            for k in range(2):
                for l in range(2):
                    w = i * 4 + k * 2 + l
                    N3[w] = (S3[w] + S2[i * 2 + k] * d[l] + S1[i] * d[k] * d[l] / 2.0
                             + d[i] * d[k] * d[l] / 6.0)
                    M3[w] = (D3[w] + D2[i * 2 + k] * d[l] + S2[i * 2 + k] * e[l]
                             + (D1[i] * d[k] * d[l] + S1[i] * (e[k] * d[l] + d[k] * e[l])) / 2.0
                             + (e[i] * d[k] * d[l] + d[i] * e[k] * d[l] + d[i] * d[k] * e[l]) / 6.0)
        N2 = np.empty(4); M2 = np.empty(4)
        for i in range(2):
            for k in range(2):
                N2[i * 2 + k] = S2[i * 2 + k] + S1[i] * d[k] + d[i] * d[k] / 2.0
                M2[i * 2 + k] = D2[i * 2 + k] + D1[i] * d[k] + S1[i] * e[k] + (e[i] * d[k] + d[i] * e[k]) / 2.0
        for i in range(2):
            S1[i] += d[i]
            D1[i] += e[i]
        S2[:] = N2; D2[:] = M2; S3[:] = N3; D3[:] = M3
    out[:2] = S1; out[2:6] = S2; out[6:] = S3
    dout[:2] = D1; dout[2:6] = D2; dout[6:] = D3


@njit(inline="always")
def _marcus(t, dt_, K, ts, cs, pts, dpts):
    """The Marcus path of one neuron's K sorted spike times: (0, 0), then (t_k, k) -> (t_k, k + 1)."""
    pts[0, 0] = 0.0; pts[0, 1] = 0.0; dpts[0, 0] = 0.0; dpts[0, 1] = 0.0
    for k in range(K):
        for h in range(2):
            pts[1 + 2 * k + h, 0] = t[k] / ts
            pts[1 + 2 * k + h, 1] = (k + h) / cs
            dpts[1 + 2 * k + h, 0] = dt_[k] / ts
            dpts[1 + 2 * k + h, 1] = 0.0


def sig3_tangent(times, dtimes):
    """Depth-3 signatures [B, 14] of the unscaled Marcus paths of spike times [B, K] (sorted, missing
    ones at T) and their tangents given d times [B, K] (as `sigkernel.signature(marcus_path(.))`)."""
    return _sig3_all(np.ascontiguousarray(times, dtype=np.float64), np.ascontiguousarray(dtimes, dtype=np.float64),
                     get_num_threads())


@njit(cache=True, parallel=True)
def _sig3_all(times, dtimes, nt):
    B, K = times.shape
    S = np.empty((B, 14)); D = np.empty((B, 14))
    for t in prange(nt):
        pts = np.empty((1 + 2 * K, 2)); dpts = np.empty((1 + 2 * K, 2))
        for b in range(t, B, nt):
            _marcus(times[b], dtimes[b], K, 1.0, 1.0, pts, dpts)
            _sig3_path(pts, dpts, S[b], D[b])
    return S, D


@njit(inline="always")
def _k_tangent(x, dx, y, dy, kprev, dkprev, kcur, dkcur):
    """Signature kernel k(x, y) (Goursat scheme, refinement 0, linear static kernel) and its tangent
    along (dx, dy): x, y [L, 2] points."""
    P, Q = x.shape[0] - 1, y.shape[0] - 1
    for q in range(Q + 1):
        kprev[q] = 1.0
        dkprev[q] = 0.0
    for p in range(1, P + 1):
        ax0 = x[p, 0] - x[p - 1, 0]; ax1 = x[p, 1] - x[p - 1, 1]
        bx0 = dx[p, 0] - dx[p - 1, 0]; bx1 = dx[p, 1] - dx[p - 1, 1]
        kcur[0] = 1.0
        dkcur[0] = 0.0
        for q in range(1, Q + 1):
            ay0 = y[q, 0] - y[q - 1, 0]; ay1 = y[q, 1] - y[q - 1, 1]
            G = ax0 * ay0 + ax1 * ay1
            dG = bx0 * ay0 + bx1 * ay1 + ax0 * (dy[q, 0] - dy[q - 1, 0]) + ax1 * (dy[q, 1] - dy[q - 1, 1])
            ca = 1.0 + G / 2.0 + G * G / 12.0
            cb = 1.0 - G * G / 12.0
            sm = kcur[q - 1] + kprev[q]
            dsm = dkcur[q - 1] + dkprev[q]
            kcur[q] = sm * ca - kprev[q - 1] * cb
            dkcur[q] = dsm * ca + sm * (0.5 + G / 6.0) * dG - dkprev[q - 1] * cb + kprev[q - 1] * (G / 6.0) * dG
        for q in range(Q + 1):
            kprev[q] = kcur[q]
            dkprev[q] = dkcur[q]
    return kprev[Q], dkprev[Q]


@njit(cache=True, parallel=True)
def _mmd_rows(xp, dxp, yp, run, start, ystart, nt):
    """Per model path i of run r: sum_{j > i in r} (k, dk)(x_i, x_j) and sum_{l in r's data} (k, dk)(x_i, y_l)."""
    B, L = xp.shape[0], xp.shape[1]
    out = np.zeros((B, 4))
    zero = np.zeros((L, 2))
    for t in prange(nt):
        kp = np.empty(L); dkp = np.empty(L); kc = np.empty(L); dkc = np.empty(L)
        for i in range(t, B, nt):
            r = run[i]
            for j in range(i + 1, start[r + 1]):
                k, dk = _k_tangent(xp[i], dxp[i], xp[j], dxp[j], kp, dkp, kc, dkc)
                out[i, 0] += k
                out[i, 1] += dk
            for l in range(ystart[r], ystart[r + 1]):
                k, dk = _k_tangent(xp[i], dxp[i], yp[l], zero, kp, dkp, kc, dkc)
                out[i, 2] += k
                out[i, 3] += dk
    return out


def marcus_paths(times: np.ndarray, dtimes: np.ndarray, time_scale: float, count_scale: float):
    """Marcus paths [B, 1 + 2K, 2] of sorted single-neuron spike times [B, K] and their tangents."""
    B, K = times.shape
    pts = np.zeros((B, 1 + 2 * K, 2)); dpts = np.zeros((B, 1 + 2 * K, 2))
    pts[:, 1:, 0] = np.repeat(times, 2, axis=1) / time_scale
    dpts[:, 1:, 0] = np.repeat(dtimes, 2, axis=1) / time_scale
    pts[:, 1:, 1] = (np.arange(2 * K) + 1) // 2 / count_scale
    return pts, dpts


def mmd_grad(x: np.ndarray, dx: np.ndarray, y: np.ndarray, run: np.ndarray, y_run: np.ndarray, R: int):
    """Per run r (model paths x[run == r] with tangents dx = d x / d c_r, data paths y[y_run == r];
    both sorted by run): the unbiased signature-kernel MMD^2 without its data-data term,
    sum_{i != j} k(x_i, x_j) / (m (m - 1)) - 2 mean k(x_i, y_l), and its derivative in c_r. [R], [R]."""
    start = np.searchsorted(run, np.arange(R + 1))
    ystart = np.searchsorted(y_run, np.arange(R + 1))
    rows = _mmd_rows(np.ascontiguousarray(x), np.ascontiguousarray(dx), np.ascontiguousarray(y),
                     run.astype(np.int64), start.astype(np.int64), ystart.astype(np.int64), get_num_threads())
    sums = np.stack([np.bincount(run, rows[:, j], minlength=R) for j in range(4)], 1)
    m = np.diff(start).astype(np.float64)
    n = np.diff(ystart).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = 2 * sums[:, 0] / (m * (m - 1)) - 2 * sums[:, 2] / (m * n)
        grad = 2 * sums[:, 1] / (m * (m - 1)) - 2 * sums[:, 3] / (m * n)
    return loss, grad


@njit(inline="always")
def _k(x, y, kprev, kcur):
    """Signature kernel k(x, y) of 2-D paths [L, 2] (Goursat scheme, refinement 0, linear static kernel)."""
    P, Q = x.shape[0] - 1, y.shape[0] - 1
    for q in range(Q + 1):
        kprev[q] = 1.0
    for p in range(1, P + 1):
        ax0 = x[p, 0] - x[p - 1, 0]; ax1 = x[p, 1] - x[p - 1, 1]
        kcur[0] = 1.0
        for q in range(1, Q + 1):
            G = ax0 * (y[q, 0] - y[q - 1, 0]) + ax1 * (y[q, 1] - y[q - 1, 1])
            kcur[q] = (kcur[q - 1] + kprev[q]) * (1.0 + G / 2.0 + G * G / 12.0) - kprev[q - 1] * (1.0 - G * G / 12.0)
        for q in range(Q + 1):
            kprev[q] = kcur[q]
    return kprev[Q]


@njit(cache=True, parallel=True)
def _kernel_means(x, y, nt):
    B, L = y.shape[0], y.shape[1]
    out = np.zeros(B)
    for t in prange(nt):
        kp = np.empty(L); kc = np.empty(L)
        for b in range(t, B, nt):
            acc = 0.0
            for a in range(x.shape[0]):
                acc += _k(x[a], y[b], kp, kc)
            out[b] = acc / x.shape[0]
    return out


@njit(cache=True, parallel=True)
def _pair_sums(x, nt):
    A, L = x.shape[0], x.shape[1]
    out = np.zeros(A)
    for t in prange(nt):
        kp = np.empty(L); kc = np.empty(L)
        for i in range(t, A, nt):
            for j in range(i + 1, A):
                out[i] += _k(x[i], x[j], kp, kc)
    return out


def kernel_means(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[B]: mean over the paths x [A, L, 2] of k(x_a, y_b), for each path y_b [B, L, 2]."""
    return _kernel_means(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
                         get_num_threads())


def kernel_pair_mean(x: np.ndarray) -> float:
    """Mean of k(x_i, x_j) over the pairs i != j of the paths x [A, L, 2]."""
    A = x.shape[0]
    return float(2.0 * _pair_sums(np.ascontiguousarray(x, dtype=np.float64), get_num_threads()).sum() / (A * (A - 1)))
