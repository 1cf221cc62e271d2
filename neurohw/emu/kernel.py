"""The emulator's compiled core: a whole batch of samples, in parallel over samples.

The network arrives packed into flat arrays (see neurohw.emu.pack). Per sample and step,
each layer l (active from step l + 1, see docs/timing.md) accumulates the Dense input of
the previous step's spikes, then updates its neurons with neuron_step (chip.lif_update plus
Dense outputs and noise), the one definition of the neuron that every backend shares.
"""
import numpy as np
from numba import njit, prange

from ..chip import FLAG_U_WRAP, FLAG_V_SAT, dense_out, lif_update, wrap32
from ..noise import noise_terms


@njit(cache=True, inline="always")
def _accumulate(acc, n, w, base, x, graded):
    if graded:
        for k in range(n):
            acc[k] += w[base + k] * x
    else:
        for k in range(n):
            acc[k] += w[base + k]


@njit(cache=True, inline="always")
def neuron_step(u, v, acc, acc_rec, rec, w_exp, r_exp, graded, du, dv, vth_eff, bias,
                kind, dist, mant, exp, seed, tables, layer, k, t, sid):
    """One neuron, one step: Dense outputs, noise, chip.lif_update -> (u, v, spike, flags).

    The one place where a step of the integer network is assembled; the emulator's kernel
    and the hardware-exact trainer (layer_step) both call it."""
    a = dense_out(acc, w_exp, graded)
    if rec:
        a = wrap32(a + dense_out(acc_rec, r_exp, False))
    n_u, n_v, n_th = noise_terms(kind, dist, mant, exp, seed, tables, layer, k, t, sid)
    return lif_update(u, v, a, du, dv, vth_eff, bias, n_u, n_v, n_th)


@njit(cache=True)
def layer_step(u, v, acc, acc_rec, rec, w_exp, r_exp, graded, du, dv, vth_eff, bias,
               kind, dist, mant, exp, seed, tables, layer, t, sample_ids):
    """One layer of a batch, one step, on [batch, n] int64 arrays (u, v updated in place).

    Returns (spikes uint8 [batch, n], the number of u wraps, the number of v saturations)."""
    B, n = u.shape
    s = np.zeros((B, n), np.uint8)
    wraps = 0
    sats = 0
    for b in range(B):
        for k in range(n):
            uu, vv, sp, fl = neuron_step(u[b, k], v[b, k], acc[b, k], acc_rec[b, k], rec, w_exp, r_exp, graded,
                                         du, dv, vth_eff, bias[k], kind, dist, mant, exp, seed, tables,
                                         layer, k, t, sample_ids[b])
            u[b, k] = uu
            v[b, k] = vv
            s[b, k] = sp
            wraps += (fl & FLAG_U_WRAP) != 0
            sats += (fl & FLAG_V_SAT) != 0
    return s, wraps, sats


@njit(parallel=True, cache=True)
def run_batch(raster, graded, sample_ids, sizes, n_off, w, w_off, w_exp, r_off, r_exp,
              du, dv, vth_eff, bias, nz_kind, nz_dist, nz_mant, nz_exp, nz_seed, tables,
              probes, out_s, out_u, out_v):
    n_batch, n_steps, n_in = raster.shape
    n_layers = sizes.shape[0] - 1
    n_total = n_off[n_layers]
    n_max = 0
    for l in range(n_layers):
        n_max = max(n_max, sizes[l + 1])
    for b in prange(n_batch):
        u = np.zeros(n_total, np.int64)
        v = np.zeros(n_total, np.int64)
        s_prev = np.zeros(n_total, np.uint8)
        s_new = np.zeros(n_total, np.uint8)
        acc = np.zeros(n_max, np.int64)
        acc_rec = np.zeros(n_max, np.int64)
        sid = sample_ids[b]
        for t in range(n_steps):
            for l in range(n_layers):
                n = sizes[l + 1]
                off = n_off[l]
                if t <= l:              # at rest until the sample's first input can arrive
                    continue
                acc[:n] = 0
                if l == 0:
                    for j in range(n_in):
                        x = raster[b, t - 1, j]
                        if x != 0:
                            _accumulate(acc, n, w, w_off[0] + j * n, np.int64(x), graded)
                else:
                    prev = n_off[l - 1]
                    for j in range(sizes[l]):
                        if s_prev[prev + j]:
                            _accumulate(acc, n, w, w_off[l] + j * n, np.int64(1), False)
                rec = r_off[l] >= 0
                if rec:
                    acc_rec[:n] = 0
                    for j in range(n):
                        if s_prev[off + j]:
                            _accumulate(acc_rec, n, w, r_off[l] + j * n, np.int64(1), False)
                for k in range(n):
                    i = off + k
                    uu, vv, sp, _ = neuron_step(u[i], v[i], acc[k], acc_rec[k], rec, w_exp[l], r_exp[l],
                                                graded and l == 0, du[l], dv[l], vth_eff[l], bias[i],
                                                nz_kind[l], nz_dist[l], nz_mant[l], nz_exp[l], nz_seed[l],
                                                tables, l, k, t, sid)
                    u[i] = uu
                    v[i] = vv
                    s_new[i] = sp
                    out_s[b, t, i] = sp
                    if probes:
                        out_u[b, t, i] = uu
                        out_v[b, t, i] = vv
            s_prev, s_new = s_new, s_prev
