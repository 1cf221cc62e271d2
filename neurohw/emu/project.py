"""Projections: a layer's integer input sums for a whole [batch, steps] block at once.

A projection maps the previous layer's output raster [B, T, n_in] (binary spikes, or graded
payloads for the first layer) to the Dense accumulator of every neuron at every step,
sums[b, t] = W @ x[b, t], which the layer's neurons consume at step t + 1 (one step of synaptic
delay). It comes as a block function (project_dense: all [B, T] at once) and as a step function
(event_step: one sample, one step, into an accumulator) that the neuron kernel fuses. It knows nothing
about neurons: the neuron update (kernel.neuron_layer) takes the sums and applies the
chip's arithmetic. New projection kinds (convolutions, per-synapse delays) are new functions
of this shape, chosen per layer in neurohw.emu.run.

Exactness is decided from the weights, never from luck (see docs/emulator.md):
  * plan() bounds every partial sum of every neuron by lo = min_k sum_j min(w_kj, 0) * xmax and
    hi = max_k sum_j max(w_kj, 0) * xmax, where xmax is 1 for spikes and 2**bits - 1 for payloads;
  * int32 accumulators are exact for spikes when lo >= -2**31 and hi < 2**31; for graded payloads
    always, since the chip multiplies them in int32 and dense_out wraps the sum to 32 bits anyway
    (addition modulo 2**32 commutes with that wrap);
  * float32 matrix products are exact when max(hi, -lo) <= 2**24 (every partial sum and product is
    an integer of at most 24 bits, so no rounding happens in any summation order), float64 up to 2**53.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .simd import LANES, add_product8, add_scaled8, store_plus8

INT32_LO, INT32_HI = -(1 << 31), (1 << 31) - 1
FLOAT32_EXACT, FLOAT64_EXACT = 1 << 24, 1 << 53
# Graded-payload input density at and above which the matrix-product path is used (when exact;
# binary spikes use the group table instead, TABLE_MIN_DENSITY). Measured on a 2-core AVX-512
# machine (700->256, 256->256, 256->20 layers, batch 64 x 100 steps): the fused event kernel beat
# the float32 GEMM path up to 40 % density; see docs/emulator.md.
DENSE_MIN_DENSITY = 0.45
# Binary input density at and above which the group-table path is used instead (see table_rows):
# measured one-threaded on a 700->256 layer, table / event time was 1.08 at 20 %, 1.11 at 35 %,
# 0.96 at 50 % and 0.65 at 70 % density (its table is 4x the weights' bytes, so it misses cache
# more often per row); table / dense GEMM 0.87 at 50 %, 0.79 at 70 %. Graded payloads keep
# DENSE_MIN_DENSITY.
TABLE_MIN_DENSITY = 0.45
TABLE_GROUP = 4                      # inputs per table group: 2**4 subset sums (table_step is unrolled for 4)

PATHS = ("auto", "event", "matvec", "table", "dense")
ACCS = ("auto", "int32", "int64", "float32", "float64")


@dataclass(frozen=True)
class Plan:
    """How one projection runs: path 'event', 'matvec' or 'table' (acc 'int32' / 'int64', fused
    into the neuron kernel step by step) or 'dense' (acc 'float32' / 'float64', a matrix product
    over the whole block)."""
    path: str
    acc: str


def sum_bounds(weights: np.ndarray, xmax: int) -> tuple[int, int]:
    """(lowest, highest) value any partial sum of any neuron can take (Python ints, exact)."""
    w = np.asarray(weights, np.int64)
    if w.size == 0:
        return 0, 0
    lo = int(np.minimum(w, 0).sum(axis=1).min()) * int(xmax)
    hi = int(np.maximum(w, 0).sum(axis=1).max()) * int(xmax)
    return lo, hi


def exact_accs(weights: np.ndarray, xmax: int, graded: bool) -> set[str]:
    """The accumulator types that give the chip's sums bit for bit for these weights."""
    lo, hi = sum_bounds(weights, xmax)
    mag = max(hi, -lo)
    ok = {"int64"}                      # |sum| <= n_in * 256 * (2**24 - 1) < 2**63 for n_in < 2**31
    if graded or (lo >= INT32_LO and hi <= INT32_HI):
        ok.add("int32")
    if mag <= FLOAT64_EXACT:
        ok.add("float64")
    if mag <= FLOAT32_EXACT:
        ok.add("float32")
    return ok


def plan(weights: np.ndarray, xmax: int, graded: bool, density: float, path: str = "auto",
         acc: str = "auto") -> Plan:
    """Choose the projection for one layer; a forced path/acc that would not be exact raises."""
    if path not in PATHS:
        raise ValueError(f"emulator: path = {path!r} is not one of {PATHS}")
    if acc not in ACCS:
        raise ValueError(f"emulator: acc = {acc!r} is not one of {ACCS}")
    ok = exact_accs(weights, xmax, graded)
    if acc != "auto" and acc not in ok:
        lo, hi = sum_bounds(weights, xmax)
        raise ValueError(f"emulator: acc = {acc!r} is not exact for this layer (partial sums in [{lo}, {hi}]); "
                         f"exact here: {sorted(ok)}")
    if acc in ("float32", "float64") and path in ("event", "matvec", "table"):
        raise ValueError(f"emulator: acc = {acc!r} needs path 'dense' or 'auto', got path {path!r}")
    if acc in ("int32", "int64") and path == "dense":
        raise ValueError(f"emulator: acc = {acc!r} needs path 'event', 'matvec', 'table' or 'auto', got path 'dense'")
    if path == "table" and graded:
        raise ValueError("emulator: path 'table' needs binary spikes, not graded payloads")
    n_out, n_in = np.shape(weights)
    narrow = matvec_cheaper(n_in, n_out, density)
    table = not graded and not narrow and density >= TABLE_MIN_DENSITY
    step_path = (path if path in ("event", "matvec", "table") else
                 "matvec" if narrow else "table" if table else "event")
    if acc in ("int32", "int64"):
        return Plan(step_path, acc)
    if acc in ("float32", "float64"):
        return Plan("dense", acc)
    fl = "float32" if "float32" in ok else ("float64" if "float64" in ok else None)
    if path == "dense":
        if fl is None:
            raise ValueError("emulator: path 'dense' is not exact for this layer (partial sums beyond 2**53)")
        return Plan("dense", fl)
    if path == "auto" and graded and not narrow and fl is not None and density >= DENSE_MIN_DENSITY:
        return Plan("dense", fl)
    return Plan(step_path, "int32" if "int32" in ok else "int64")


# ----------------------------------------------------------------------------------------------
# Dense projection, event-driven: per non-zero input, add one contiguous weight row
# ----------------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def add_row(acc, row):
    """acc += row (a vectorizable, unit-stride loop; wraps in acc's dtype)."""
    for k in range(acc.shape[0]):
        acc[k] += row[k]


@njit(cache=True, inline="always")
def add_row_scaled(acc, row, x):
    """acc += row * x for a graded payload x (products wrap in acc's dtype, as the chip's int32)."""
    for k in range(acc.shape[0]):
        acc[k] += row[k] * x


def gather(x, idx):
    """idx[:cnt] = the indices of x's non-zero entries; returns cnt (compiled only; idx: int32
    scratch of len(x) + 8, the slack of its vector stores).

    Without a branch per input (a data-dependent branch costs a misprediction per spike). A
    binary spike raster (uint8, 0/1 bytes) goes 8 inputs at a time: one 64-bit multiply packs
    the 8 bytes' bits into a byte m, and the 8-lane row SPIKE_OFFSETS[m] (the positions of m's set
    bits) is stored at idx[cnt] in one vector store, cnt += popcount(m); ~3x fewer instructions
    than the byte loop, which graded payloads keep."""
    raise NotImplementedError


# SPIKE_OFFSETS[m, :popcount(m)]: the set bits of the byte m, ascending; the byte trick in gather
SPIKE_OFFSETS = np.array([[k for k in range(8) if m >> k & 1] + [0] * (8 - bin(m).count("1")) for m in range(256)],
                         np.int32).ravel()
SPIKE_COUNTS = np.array([bin(m).count("1") for m in range(256)], np.int64)
_PACK_BITS = np.uint64(0x0102040810204080)   # (w * this) >> 56: bit k = byte k of w, bytes 0/1


@overload(gather)
def _gather(x, idx):
    if isinstance(x, types.Array) and x.dtype == types.uint8:
        def impl(x, idx):
            n = x.shape[0]
            nw = n >> 3
            words = x[:nw << 3].view(np.uint64)
            cnt = 0
            for i in range(nw):
                m = (words[i] * _PACK_BITS) >> np.uint64(56)
                store_plus8(idx, np.uint64(cnt), SPIKE_OFFSETS, m << np.uint64(3), np.int32(i << 3))
                cnt += SPIKE_COUNTS[m]
            for j in range(nw << 3, n):
                idx[cnt] = j
                cnt += x[j] != 0
            return cnt
        return impl

    def impl(x, idx):
        cnt = 0
        for j in range(x.shape[0]):
            idx[cnt] = j
            cnt += x[j] != 0
        return cnt
    return impl


@njit(cache=True, inline="always")
def event_step(acc, x, rows, graded, idx):
    """The projection step: acc += rows[j] (* x[j] for graded payloads) for every x[j] != 0.

    The non-zero inputs' indices are gathered into idx (scratch of n_in) first (gather), then
    their rows are added."""
    cnt = gather(x, idx)
    for i in range(cnt):
        j = idx[i]
        if graded:
            add_row_scaled(acc, rows[j], acc.dtype.type(x[j]))
        else:
            add_row(acc, rows[j])


@njit(cache=True, inline="always")
def matvec_step(acc, x, w):
    """The same sums as event_step, as one matrix-vector product: acc[k] = sum_j w[k, j] * x[j]
    (w: W [n, n_in] row-major, unit-stride reductions that vectorize; products and sums in acc's
    dtype, so int32 wraps exactly as event_step's int32 additions do). Cheaper than event_step
    for narrow layers, where a row is too short to fill a vector (see matvec_cheaper)."""
    z = acc.dtype.type(0)
    for k in range(acc.shape[0]):
        s = z
        row = w[k]
        for j in range(x.shape[0]):
            s += acc.dtype.type(row[j]) * acc.dtype.type(x[j])
        acc[k] = s


def matvec_cheaper(n_in: int, n_out: int, density: float) -> bool:
    """The per-step cost model behind the 'matvec' choice, in units of ~0.05 ns (measured on this
    2-core AVX-512 machine, int16 weights, docs/emulator.md): event_step costs n_in * (8 + density *
    (40 + 10 * ceil(n_out / 16))) (the gather, then per spike a row of ceil(n_out / 16) vectors),
    matvec_step n_in * n_out (one multiply-add per weight)."""
    event = n_in * (8 + density * (40 + 10 * -(-n_out // 16)))
    return n_in * n_out < event


def table_rows(weights) -> np.ndarray:
    """The group table of W [n_out, n_in]: inputs in groups of TABLE_GROUP = 4 (the last one
    padded with zero weights), and for every group g and 4-bit pattern p the sum of the rows of the
    inputs whose bits are set in p: [ceil(n_in / 4) * 16, n_out] int16 (a sum of 4 chip weights
    lies in [-1024, 1020]). A step then adds one row per group with any spike -- at 50 % input
    density about half the rows of the event path -- and every partial sum is still a subset sum
    of a neuron's weights, so plan()'s bounds hold unchanged (the 'four Russians' trick)."""
    w = np.asarray(weights, np.int32).T
    n_in, n_out = w.shape
    G = -(-n_in // TABLE_GROUP)
    wp = np.zeros((G * TABLE_GROUP, n_out), np.int32)
    wp[:n_in] = w
    bits = ((np.arange(1 << TABLE_GROUP)[:, None] >> np.arange(TABLE_GROUP)[None, :]) & 1).astype(np.int32)
    t = np.einsum("pb,gbn->gpn", bits, wp.reshape(G, TABLE_GROUP, n_out))
    return np.ascontiguousarray(t.reshape(G << TABLE_GROUP, n_out), np.int16)


@njit(cache=True, inline="always")
def table_step(acc, x, table, idx):
    """acc += the table row of every input group with a spike (x: 0/1 spikes; table: table_rows).

    First the rows to add are gathered branch-free (as gather does), then added."""
    n_in = x.shape[0]
    G = table.shape[0] >> TABLE_GROUP
    full = n_in >> 2
    cnt = 0
    for g in range(full):
        j = g << 2
        p = np.int64(x[j]) | (np.int64(x[j + 1]) << 1) | (np.int64(x[j + 2]) << 2) | (np.int64(x[j + 3]) << 3)
        idx[cnt] = (g << TABLE_GROUP) + p
        cnt += p != 0
    if full < G:                        # the last, partial group
        p = np.int64(0)
        for j in range(full << 2, n_in):
            p |= np.int64(x[j]) << (j - (full << 2))
        idx[cnt] = (full << TABLE_GROUP) + p
        cnt += p != 0
    for i in range(cnt):
        add_row(acc, table[idx[i]])


@njit(parallel=True, cache=True)
def dense_event(x, rows, graded, out):
    """out[b, t] += sum over j with x[b, t, j] != 0 of rows[j] (* x for graded payloads).

    x: [B, T, n_in] uint8 spikes or int32 payloads; rows: [n_in, n] (W transposed, int16);
    out: [B, T, n] zeroed, in the acc dtype. Parallel over the batch."""
    for b in prange(x.shape[0]):
        idx = np.empty(x.shape[2] + LANES, np.int32)
        for t in range(x.shape[1]):
            event_step(out[b, t], x[b, t], rows, graded, idx)


def weight_rows(weights) -> np.ndarray:
    """W [n_out, n_in] as contiguous int16 rows [n_in, n_out]: every chip weight (-256..255) fits,
    and half the bytes of int32 rows keep more of the matrix in cache (measured ~20 % faster)."""
    return np.ascontiguousarray(np.asarray(weights).T, np.int16)


def project_dense(x: np.ndarray, weights: np.ndarray, p: Plan, rows: np.ndarray | None = None) -> np.ndarray:
    """A Dense layer's input sums, sums[b, t] = W @ x[b, t], for the steps that are consumed
    (t < T - 1; the layer sees them one step later): [B, T - 1, n_out] in p.acc's dtype, holding
    exact integers (float ones for the 'dense' path, exact by plan()).

    rows: W transposed as int16 (pass it to reuse it across calls)."""
    B, T, n_in = x.shape
    xs = x[:, :max(T - 1, 0)]
    if p.path == "dense":     # torch's GEMM (MKL, faster than numpy's here); exact by plan() in any order
        import torch
        dt = getattr(torch, p.acc)
        a = torch.from_numpy(np.ascontiguousarray(xs).reshape(-1, n_in)).to(dt)
        prod = a @ torch.from_numpy(np.ascontiguousarray(np.asarray(weights).T, p.acc))
        return prod.numpy().reshape(B, xs.shape[1], np.shape(weights)[0])
    if rows is None:
        rows = weight_rows(weights)
    out = np.zeros((B, xs.shape[1], rows.shape[1]), p.acc)
    if out.size:
        dense_event(xs, rows, x.dtype != np.uint8, out)
    return out


# ----------------------------------------------------------------------------------------------
# Conv2d / sum-pool projection, event-driven: per non-zero input, scatter its kernel rows
# ----------------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def add_row_of(acc, base, k, kb, n, val):
    """acc[base:base + n] += k[kb:kb + n] * val (int32): 8 lanes at a time (simd.add_scaled8)
    when n is a multiple of 8, else one by one."""
    if n % np.uint64(LANES) == 0:
        for z in range(np.uint64(0), n, np.uint64(LANES)):
            add_scaled8(acc, base + z, k, kb + z, val)
    else:
        for z in range(n):
            acc[base + z] += k[kb + z] * val


@njit(cache=True, inline="always")
def conv_step(acc, x, kern, graded, idx):
    """Scatter the kernel of every non-zero input of x into acc (int32 [>= n_out + C_out], the
    first n_out zeroed by the caller; the rest is a trash row).

    kern = conv_kernel(layer) = (ktf, pos, aoff, koff, _, Tm, og): ktf the kernel flattened from
    (C / groups, kh, kw, C_out), so that one tap of one input channel is a contiguous row of output
    channels; pos[j] = (pixel * Tm, kernel row of input j's channel in its group + its group's
    first output channel o0, o0). Each input pixel has Tm tap slots (the most taps any pixel lands
    on the output grid): aoff / koff[pixel * Tm + e] = output pixel * C_out and tap * C_out, and a
    slot whose tap falls off the grid points at the trash row. So every spike runs the same
    Tm-trip loop, which the branch predictor learns, and adds one row of its group's og output
    channels per slot (network.Conv2d's cross-correlation, turned around). The indices are
    unsigned, so that the adds carry no wraparound test. int32 is exact: network.IntLayer bounds
    every conv sum below 2**31. The message is then chip.conv_out(acc)."""
    ktf, pos, aoff, koff, _, Tm, og = kern
    cnt = gather(x, idx)
    n = np.uint64(og)
    for q in range(cnt):
        j = idx[q]
        val = np.int32(x[j]) if graded else np.int32(1)
        p0, kb0, ab0 = np.uint64(pos[j, 0]), np.uint64(pos[j, 1]), np.uint64(pos[j, 2])
        for e in range(np.uint64(Tm)):
            add_row_of(acc, np.uint64(aoff[p0 + e]) + ab0, ktf, np.uint64(koff[p0 + e]) + kb0, n, val)


def conv_kernel(layer) -> tuple:
    """A conv / pool layer's kernel and geometry as conv_step takes them:
    (ktf, pos, aoff, koff, unused, Tm, og).

    For input pixel (h, w), tap (i, j) lands on output (ho, wo) when h + ph - i dh is on the
    stride grid and the map, likewise for w; a pixel's landing taps fill its first slots, the
    rest point at the trash row (output index n_out)."""
    c = layer.conv
    co, kh, kw, cg = layer.weights.shape
    (H, W, C), (Ho, Wo, _) = c.in_shape, layer.shape
    (sh, sw), (ph, pw), (dh, dw) = c.stride, c.padding, c.dilation
    og = co // c.groups

    def tap_map(size, k, s, p, d, out):
        n = np.arange(size)[:, None] + p - np.arange(k)[None, :] * d
        o = n // s
        return np.where((n >= 0) & (n % s == 0) & (o < out), o, -1).astype(np.int64)

    hmap, wmap = tap_map(H, kh, sh, ph, dh, Ho), tap_map(W, kw, sw, pw, dw, Wo)
    # every (pixel, tap) pair, kept where both its row and column land: [H * W, kh * kw]
    ho, wo = hmap[:, None, :, None], wmap[None, :, None, :]
    ok = np.broadcast_to((ho >= 0) & (wo >= 0), (H, W, kh, kw)).reshape(H * W, kh * kw)
    out_pix = np.broadcast_to(ho * Wo + wo, (H, W, kh, kw)).reshape(H * W, kh * kw)
    tm = int(ok.sum(axis=1).max()) if ok.size else 0
    order = np.argsort(~ok, axis=1, kind="stable")[:, :tm]          # landing taps first
    land = np.take_along_axis(ok, order, axis=1)
    aoff = np.where(land, np.take_along_axis(out_pix, order, axis=1) * co, Ho * Wo * co)
    koff = np.where(land, order * co, 0)
    h, w, ch = np.unravel_index(np.arange(H * W * C), (H, W, C))
    o0 = (ch // cg) * og
    pos = np.stack([(h * W + w) * tm, (ch % cg) * kh * kw * co + o0, o0], axis=1).astype(np.int64)
    ktf = np.ascontiguousarray(np.transpose(layer.weights, (3, 1, 2, 0)), np.int32).ravel()
    return (ktf, pos, aoff.astype(np.int64).ravel(), koff.astype(np.int64).ravel(), np.zeros(1, np.int64), tm,
            og)


# ----------------------------------------------------------------------------------------------
# Depthwise conv / sum-pool projection, output-stationary: every output sums its landing taps
# ----------------------------------------------------------------------------------------------
def is_depthwise(layer) -> bool:
    """One input and one output channel per group (every sum-pool): the output-stationary path."""
    co, _, _, cg = layer.weights.shape
    return cg == 1 and co == layer.conv.groups


@njit(cache=True, inline="always")
def depthwise_step(acc, x, kern):
    """acc[o * C + c] += kdw[tap * C + c] * x[i * C + c] over output pixel o's landing (input
    pixel i, tap) pairs ostart[o]..ostart[o + 1] of oin / otap (kern = depthwise_kernel(layer));
    acc int32, zeroed by the caller. No gather and no scatter: per pair, C channels multiplied and
    added 8 lanes at a time (a spike raster's 0/1 bytes are the multiplier, a graded payload its
    value). A sum-pool reads each input once (stride = kernel), so this costs about n_in / 8
    vector operations where the event path costs n_in for its gather alone."""
    kdw, _, ostart, oin, otap, C, _ = kern
    uc = np.uint64(C)
    full = uc - uc % np.uint64(LANES)
    for o in range(ostart.shape[0] - 1):
        ab = np.uint64(o) * uc
        for e in range(ostart[o], ostart[o + 1]):
            xb = np.uint64(oin[e]) * uc
            kb = np.uint64(otap[e]) * uc
            for c in range(np.uint64(0), full, np.uint64(LANES)):
                add_product8(acc, ab + c, kdw, kb + c, x, xb + c)
            for c in range(full, uc):
                acc[ab + c] += kdw[kb + c] * np.int32(x[xb + c])


def depthwise_kernel(layer) -> tuple:
    """A depthwise conv / pool layer's tables for depthwise_step, in conv_kernel's tuple layout
    (kdw, pos, ostart, oin, otap, C, og): kdw [kh * kw * C] the kernel tap-major; for output
    pixel (ho, wo), tap (i, j) reads input (ho sh + i dh - ph, wo sw + j dw - pw) when on the
    map; pos is unused ([1, 3] zeros), og = 1."""
    c = layer.conv
    C, kh, kw, _ = layer.weights.shape
    (H, W, _), (Ho, Wo, _) = c.in_shape, layer.shape
    (sh, sw), (ph, pw), (dh, dw) = c.stride, c.padding, c.dilation
    h = np.arange(Ho)[:, None, None, None] * sh + np.arange(kh)[None, None, :, None] * dh - ph
    w = np.arange(Wo)[None, :, None, None] * sw + np.arange(kw)[None, None, None, :] * dw - pw
    h, w = np.broadcast_arrays(h, w)                                  # [Ho, Wo, kh, kw]
    ok = ((h >= 0) & (h < H) & (w >= 0) & (w < W)).reshape(Ho * Wo, kh * kw)
    inp = (h * W + w).reshape(Ho * Wo, kh * kw)
    tap = np.broadcast_to(np.arange(kh * kw), (Ho * Wo, kh * kw))
    ostart = np.concatenate([[0], np.cumsum(ok.sum(axis=1))]).astype(np.int64)
    kdw = np.ascontiguousarray(np.transpose(layer.weights[..., 0], (1, 2, 0)), np.int32).ravel()
    return kdw, np.zeros((1, 3), np.int64), ostart, inp[ok].astype(np.int64), tap[ok].astype(np.int64), C, 1


# neuron_layer's conv argument when the projection is not a conv (the same types: one compilation)
NO_CONV = (np.zeros(1, np.int32), np.zeros((1, 3), np.int64), np.zeros(2, np.int64), np.zeros(1, np.int64),
           np.zeros(1, np.int64), 0, 0)


def rec_rows(rec_weights) -> np.ndarray:
    """Recurrent weights transposed, in the accumulator's dtype: int32 when every sum fits
    (always below 2**23 neurons), else int64."""
    if rec_weights is None:
        return np.zeros((1, 1), np.int32)
    ok = exact_accs(rec_weights, 1, False)
    return np.ascontiguousarray(np.asarray(rec_weights).T, "int32" if "int32" in ok else "int64")
