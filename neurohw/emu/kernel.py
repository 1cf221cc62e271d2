"""The emulator's compiled core: a whole batch of samples, in parallel over samples.

The neuron side of the emulator. A layer's Dense input sums arrive for a whole [batch, steps]
block from a projection (neurohw.emu.project); neuron_layer then steps its neurons in time,
each with neuron_step (chip.lif_update plus Dense outputs and noise), the one definition of the
neuron that every backend shares. Layer l is at rest until step l + 1 (docs/timing.md).
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ..chip import FLAG_U_WRAP, FLAG_V_SAT, conv_out, dense_out, lif_update, wrap32
from ..noise import noise_terms
from .project import conv_step, depthwise_step, event_step, matvec_step, table_step


PROJ_SUMS, PROJ_EVENT, PROJ_MATVEC, PROJ_CONV, PROJ_TABLE, PROJ_DEPTHWISE = 0, 1, 2, 3, 4, 5   # neuron_layer's input projections


def as_int64(x):
    """An exact integer sum held as int32, int64, float32 or float64, as int64 (compiled only)."""
    raise NotImplementedError


@overload(as_int64, inline="always")
def _as_int64(x):
    # float32 sums are exact integers below 2**24 (project.plan): through int32, the conversion
    # vectorizes (AVX2 has float32 -> int32 lanes, but no float -> int64 ones)
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: np.int64(np.int32(x))
    return lambda x: np.int64(x)


@njit(cache=True, inline="always")
def neuron_input(acc, acc_rec, rec, w_exp, r_exp, graded):
    """A neuron's summed input: its Dense output plus, when rec, its recurrent Dense output (int32)."""
    a = dense_out(acc, w_exp, graded)
    if rec:
        a = wrap32(a + dense_out(acc_rec, r_exp, False))
    return a


@njit(cache=True, inline="always")
def neuron_update(u, v, a, du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, k, t, sid):
    """A neuron's step from its summed input a: noise, then chip.lif_update -> (u, v, spike, flags)."""
    n_u, n_v, n_th = noise_terms(kind, dist, mant, exp, seed, tables, layer, k, t, sid)
    return lif_update(u, v, a, du, dv, vth_eff, bias, n_u, n_v, n_th)


@njit(cache=True, inline="always")
def neuron_step(u, v, acc, acc_rec, rec, w_exp, r_exp, graded, du, dv, vth_eff, bias,
                kind, dist, mant, exp, seed, tables, layer, k, t, sid):
    """One neuron, one step: Dense outputs, noise, chip.lif_update -> (u, v, spike, flags).

    The one place where a step of the integer network is assembled (neuron_input, then
    neuron_update); the emulator's kernel (as _neurons' loops), the hardware-exact
    trainer (layer_step) and the delayed-recurrence loop all use it."""
    return neuron_update(u, v, neuron_input(acc, acc_rec, rec, w_exp, r_exp, graded), du, dv, vth_eff, bias,
                         kind, dist, mant, exp, seed, tables, layer, k, t, sid)


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


@njit(cache=True, inline="always")
def _neurons(u, v, s_out, su, sv, sums, acc_rec, a, rec, w_exp, r_exp, graded, du, dv, vth_eff, bias,
             kind, dist, mant, exp, seed, tables, layer, t, sid, probes, n_wrap, n_sat, quiet):
    """All n neurons of one sample, one step (u, v updated in place).

    neuron_step without a branch in the update loop, so that it vectorizes (8 int32 lanes on
    AVX2): with recurrence, graded payloads or a weight_exp, the inputs go first into a (int32
    scratch); otherwise the message is the sum itself, read in the update loop. u wraps and v
    saturations are counted per neuron into n_wrap / n_sat (int32): a sum over neurons would be
    a 64-bit reduction that stops the loop from vectorizing. quiet: a constant, True where the
    caller passes kind = 0; the noisy copy always takes the first loop (one copy less to compile)."""
    if not quiet or rec or graded or w_exp != 0:
        for k in range(u.shape[0]):
            a[k] = neuron_input(as_int64(sums[k]), np.int64(acc_rec[k]), rec, w_exp, r_exp, graded)
        _update(u, v, s_out, a, du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, t, sid,
                n_wrap, n_sat)
    else:
        _update(u, v, s_out, sums, du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, t, sid,
                n_wrap, n_sat)
    if probes:
        for k in range(u.shape[0]):
            su[k] = u[k]
            sv[k] = v[k]


@njit(cache=True, inline="always")
def _update(u, v, s_out, src, du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, t, sid,
            n_wrap, n_sat):
    """The update loop of _neurons; src: each neuron's message (int32 after the wrap)."""
    for k in range(u.shape[0]):
        uu, vv, sp, fl = neuron_update(u[k], v[k], np.int32(as_int64(src[k])), du, dv, vth_eff, bias[k], kind,
                                       dist, mant, exp, seed, tables, layer, k, t, sid)
        u[k] = uu
        v[k] = vv
        s_out[k] = sp
        n_wrap[k] += np.int32((fl & FLAG_U_WRAP) != 0)
        n_sat[k] += np.int32((fl & FLAG_V_SAT) != 0)


@njit(parallel=True, cache=True)
def neuron_layer(sums, x, rows, proj, conv, graded, rec_rows, rec, w_exp, r_exp, du, dv, vth_eff, bias, kind, dist, mant,
                 exp, seed, tables, layer, sample_ids, probes, out_s, out_u, out_v, counts):
    """A layer's neurons over a whole [batch, steps] block.

    The Dense input comes either precomputed, sums [B, T - 1, n] from a block projection
    (project.project_dense: sums[b, t] = W @ x[b, t], consumed at step t + 1; x empty; integers,
    possibly held exactly in float32 / float64),
    or, when x [B, T, n_in] is given, from a projection step on x's previous step into a
    per-sample accumulator, chosen by proj: PROJ_EVENT project.event_step (rows: W transposed
    [n_in, n]), PROJ_MATVEC project.matvec_step (rows: W [n, n_in]) or PROJ_CONV
    project.conv_step (conv: project.conv_kernel's tuple; the message chip.conv_out, taken with
    w_exp 0) or PROJ_DEPTHWISE project.depthwise_step (conv: project.depthwise_kernel's tuple) -- fused, so the sums never leave the cache; sums then only fixes the acc dtype.
    rec_rows: the
    recurrent weights transposed [n, n], used when rec; the recurrent input is event-driven from the
    layer's own spikes of the previous step. The layer is at rest for t <= layer (docs/timing.md).
    Writes out_s [B, T, n] uint8, out_u / out_v (when probes) and counts[b] = (u wraps, v
    saturations). Parallel over the batch; the noiseless case runs a loop in which the noise
    branch is gone, so that the neuron update vectorizes over neurons (docs/emulator.md)."""
    B, T, n = out_s.shape
    fused = x.shape[2] > 0
    for b in prange(B):
        u = np.zeros(n, np.int32)        # int32 state: chip.lif_update works in 32-bit lanes
        v = np.zeros(n, np.int32)
        acc = np.zeros(n, sums.dtype)
        acc_rec = np.zeros(n, rec_rows.dtype)
        inp = np.zeros(n, np.int32)
        cacc = np.zeros(2 * n if proj == PROJ_CONV or proj == PROJ_DEPTHWISE else 1, np.int32)   # + trash row
        idx = np.empty(max(x.shape[2], n) + 8, np.int32)       # project.gather's scratch (+ 8 lanes of slack)
        sid = sample_ids[b]
        n_wrap = np.zeros(n, np.int32)
        n_sat = np.zeros(n, np.int32)
        for t in range(layer + 1, T):
            if fused:
                if proj == PROJ_MATVEC:
                    matvec_step(acc, x[b, t - 1], rows)
                elif proj == PROJ_CONV or proj == PROJ_DEPTHWISE:   # int32 scratch (acc is float in dense builds)
                    cacc[:n] = 0
                    if proj == PROJ_CONV:
                        conv_step(cacc, x[b, t - 1], conv, graded, idx)
                    else:
                        depthwise_step(cacc, x[b, t - 1], conv)
                    for k in range(n):
                        acc[k] = conv_out(cacc[k])
                elif proj == PROJ_TABLE:
                    acc[:] = 0
                    table_step(acc, x[b, t - 1], rows, idx)
                else:
                    acc[:] = 0
                    event_step(acc, x[b, t - 1], rows, graded, idx)
                a = acc
            else:
                a = sums[b, t - 1]
            if rec:
                acc_rec[:] = 0
                event_step(acc_rec, out_s[b, t - 1], rec_rows, False, idx)
            su = out_u[b, t] if probes else out_u[0, 0]
            sv = out_v[b, t] if probes else out_v[0, 0]
            if kind == 0:
                _neurons(u, v, out_s[b, t], su, sv, a, acc_rec, inp, rec, w_exp, r_exp, graded,
                         du, dv, vth_eff, bias, 0, dist, mant, exp, seed, tables, layer, t, sid, probes, n_wrap, n_sat,
                         True)
            else:
                _neurons(u, v, out_s[b, t], su, sv, a, acc_rec, inp, rec, w_exp, r_exp, graded,
                         du, dv, vth_eff, bias, kind, dist, mant, exp, seed, tables, layer, t, sid, probes, n_wrap,
                         n_sat, False)
        counts[b, 0] = n_wrap.sum()
        counts[b, 1] = n_sat.sum()
