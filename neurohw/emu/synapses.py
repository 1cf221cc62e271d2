"""Event-driven Conv and DelayDense projections, and the neuron loop for their messages.

A Conv input's spike (or payload) scatters its kernel into the output map: for every tap that
lands on the output grid, one contiguous row of output channels (conv_step, straight from the
kernel and a per-pixel table of the taps that land; no per-synapse table). A DelayDense is held as event rows (like a transposed sparse
matrix): for input j, the entries ptr[j]:ptr[j + 1] give each synapse's target neuron, weight
and delay, each bound for its delay slot of a ring buffer.

What the neurons receive is the chip's *message* (chip.conv_out, chip.delay_slot_out):
a finished int32 value, which the shared neuron step (kernel.neuron_step / layer_step) takes
with weight_exp = 0 and graded = False (dense_out is then the identity on int32 values).
Time layout as in the Dense kernel: msgs[b, t] is what the neurons receive at step t + 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from . import project
from .project import NO_CONV, rec_rows
from ..chip import FLAG_U_WRAP, FLAG_V_SAT, conv_out, delay_slot_out, delay_term, wrap32
from ..noise import NOISE_TABLES
from .kernel import PROJ_SUMS, neuron_layer, neuron_step


@dataclass(frozen=True)
class Rows:
    """A projection as event rows: input j's synapses are ptr[j]:ptr[j + 1] of post (target
    neuron), w (weight) and delay (slot); n_out targets; max_delay the largest delay."""
    ptr: np.ndarray
    post: np.ndarray
    w: np.ndarray
    delay: np.ndarray
    n_out: int
    max_delay: int


def _rows(pre, post, w, delay, n_in: int, n_out: int) -> Rows:
    keep = w != 0                                   # a zero weight adds nothing, in any mode
    pre, post, w, delay = pre[keep], post[keep], w[keep], delay[keep]
    order = np.argsort(pre, kind="stable")
    ptr = np.zeros(n_in + 1, np.int64)
    np.cumsum(np.bincount(pre, minlength=n_in), out=ptr[1:])
    return Rows(ptr=ptr, post=post[order].astype(np.int64), w=w[order].astype(np.int64),
                delay=delay[order].astype(np.int64), n_out=int(n_out),
                max_delay=int(delay.max(initial=0)))


def dense_rows(weights, delays=None) -> Rows:
    """Event rows of a Dense / DelayDense (weights (n_out, n_in), delays alike or None)."""
    w = np.asarray(weights, np.int64)
    n_out, n_in = w.shape
    post, pre = np.indices(w.shape).reshape(2, -1)
    d = np.zeros(w.size, np.int64) if delays is None else np.asarray(delays, np.int64).ravel()
    return _rows(pre, post, w.ravel(), d, n_in, n_out)


# ---- step functions (one sample, one step) ---------------------------------------------------
@njit(cache=True, inline="always")
def delay_step(ring, tmp, t, x, ptr, post, w, delay, weight_exp, graded, msg):
    """One step of a DelayDense ring buffer (ring, tmp: [max_delay + 1, n] int64).

    x is the input of step t; each delay slot's sum of this step is shifted by weight_exp and
    added (int32) into the ring slot of step t + d; msg gets the message of step t + 1 (the
    ring slot of step t, which is then cleared)."""
    D1 = ring.shape[0]
    tmp[:] = 0
    hit = False
    for j in range(x.shape[0]):
        xv = x[j]
        if xv != 0:
            hit = True
            for e in range(ptr[j], ptr[j + 1]):
                tmp[delay[e], post[e]] += delay_term(w[e], np.int64(xv), graded)
    if hit:
        for d in range(D1):
            slot = (t + d) % D1
            for k in range(ring.shape[1]):
                if tmp[d, k] != 0:
                    ring[slot, k] = wrap32(ring[slot, k] + delay_slot_out(tmp[d, k], weight_exp))
    s0 = t % D1
    for k in range(ring.shape[1]):
        msg[k] = ring[s0, k]
        ring[s0, k] = 0


# ---- block functions (a whole [batch, steps] block, parallel over samples) -------------------
@njit(parallel=True, cache=True)
def conv_block(x, kern, graded, out):
    """out[b, t] = Conv's message from x[b, t] (received at step t + 1), int32 (kern:
    project.conv_kernel)."""
    B, T, n = out.shape
    for b in prange(B):
        acc = np.zeros(2 * n, np.int32)          # + conv_step's trash row
        idx = np.empty(x.shape[2] + 8, np.int32)       # project.gather's scratch (+ 8 lanes of slack)
        for t in range(T):
            acc[:n] = 0
            project.conv_step(acc, x[b, t], kern, graded, idx)
            for k in range(n):
                out[b, t, k] = conv_out(acc[k])


@njit(parallel=True, cache=True)
def delay_block(x, ptr, post, w, delay, max_delay, weight_exp, graded, out):
    """out[b, t] = DelayDense's message received at step t + 1 (inputs up to step t), int32."""
    B, T, n = out.shape
    for b in prange(B):
        ring = np.zeros((max_delay + 1, n), np.int64)
        tmp = np.zeros((max_delay + 1, n), np.int64)
        msg = np.zeros(n, np.int64)
        for t in range(T):
            delay_step(ring, tmp, t, x[b, t], ptr, post, w, delay, weight_exp, graded, msg)
            out[b, t] = msg


@njit(parallel=True, cache=True)
def message_layer(msgs, w_exp, graded, r_ptr, r_post, r_w, r_delay, r_max_delay, r_exp, du, dv, vth_eff, bias,
                  kind, dist, mant, exp, seed, tables, layer, sample_ids, probes, out_s, out_u, out_v, counts):
    """A layer's neurons over a [B, T] block with a recurrent DelayDense from the layer's own
    spikes of the previous step as a ring buffer (what kernel.neuron_layer has no room for).
    msgs [B, >= T - 1, n]: row t received at step t + 1, passed through dense_out(., w_exp,
    graded) (finished messages: w_exp 0, graded False; a Dense's exact sums: its own).
    At rest for t <= layer. counts[b] = (wraps, sats)."""
    B, T, n = out_s.shape
    for b in prange(B):
        u = np.zeros(n, np.int64)
        v = np.zeros(n, np.int64)
        ring = np.zeros((r_max_delay + 1, n), np.int64)
        tmp = np.zeros((r_max_delay + 1, n), np.int64)
        msg_rec = np.zeros(n, np.int64)
        sid = sample_ids[b]
        wraps = 0
        sats = 0
        for t in range(layer + 1, T):
            delay_step(ring, tmp, t - 1, out_s[b, t - 1], r_ptr, r_post, r_w, r_delay, r_exp, False, msg_rec)
            for k in range(n):
                uu, vv, sp, fl = neuron_step(u[k], v[k], np.int64(msgs[b, t - 1, k]), msg_rec[k], True, w_exp, 0,
                                             graded, du, dv, vth_eff, bias[k], kind, dist, mant, exp, seed, tables,
                                             layer, k, t, sid)
                u[k] = uu
                v[k] = vv
                out_s[b, t, k] = sp
                if probes:
                    out_u[b, t, k] = uu
                    out_v[b, t, k] = vv
                wraps += (fl & FLAG_U_WRAP) != 0
                sats += (fl & FLAG_V_SAT) != 0
        counts[b, 0] = wraps
        counts[b, 1] = sats


def messages(layer, x, graded: bool) -> np.ndarray:
    """A conv / pool / delay layer's input messages for a block x [B, T, n_in]:
    [B, T, n_out] int32, row t received at step t + 1."""
    B, T, _ = x.shape
    out = np.zeros((B, T, layer.n_out), np.int32)
    if out.size:
        if layer.conv is not None:
            conv_block(x, project.conv_kernel(layer), graded, out)
        else:
            r = dense_rows(layer.weights, layer.delays)
            delay_block(x, r.ptr, r.post, r.w, r.delay, r.max_delay, layer.weight_exp, graded, out)
    return out


def run_layer(layer, x, p: dict, graded: bool, sample_ids, probes: bool):
    """A layer with a conv / pool / delay input projection or a recurrent DelayDense, over a
    block x [B, T, n_in]: its input messages, then its neurons.

    p: emu.layer_arrays of the layer (with p["rec"]). The neurons run in the Dense kernel's
    neuron_layer (messages as its precomputed sums, weight_exp 0), or, when the recurrent
    projection has delays, in message_layer. Returns (spikes, u, v, wraps, sats) like
    emu.layer_block: the layer-level step the hardware-exact trainer can call."""
    B, T, _ = x.shape
    n = layer.n_out
    if layer.kind == "dense":           # a Dense input with a delayed recurrence: its exact sums
        msgs = project.project_dense(x, layer.weights, project.Plan("event", "int64"))
        w_exp = layer.weight_exp
    else:
        msgs, w_exp, graded = messages(layer, x, graded), 0, False
    s = np.zeros((B, T, n), np.uint8)
    u = np.zeros((B, T, n) if probes else (1, 1, n), np.int32)
    v = np.zeros_like(u)
    counts = np.zeros((B, 2), np.int64)
    ids = np.asarray(sample_ids, np.int64)
    if s.size and layer.rec_delays is None:
        neuron_layer(msgs, np.zeros((1, 1, 0), np.uint8), np.zeros((1, n), np.int16), PROJ_SUMS, NO_CONV, False,
                     rec_rows(layer.rec_weights), p["rec"], 0, p["r_exp"], p["du"], p["dv"], p["vth_eff"], p["bias"],
                     *p["noise"], NOISE_TABLES, p["layer"], ids, probes, s, u, v, counts)
    elif s.size:
        rr = dense_rows(layer.rec_weights, layer.rec_delays)
        message_layer(msgs, w_exp, graded, rr.ptr, rr.post, rr.w, rr.delay, rr.max_delay, p["r_exp"], p["du"],
                      p["dv"], p["vth_eff"], p["bias"], *p["noise"], NOISE_TABLES, p["layer"], ids, probes, s, u, v,
                      counts)
    return s, u, v, int(counts[:, 0].sum()), int(counts[:, 1].sum())
