"""The chip's integer model: every bit width, shift, offset and range, and its arithmetic.

This is the only place where the numbers of the chip are written (see docs/chip.md and
``../shared/docs/hardware.md``). The emulator, the Lava processes and the hardware-exact
trainer import them from here. The scalar step functions below are written once, in plain
integer arithmetic on int64 scalars, compiled by Numba for the emulator and the Lava process
(and callable from Python via ``.py_func``), so every backend runs the same definition.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# --- state: u and v are 24-bit, held in int32 --------------------------------------------
UV_BITS = 24
UV_HALF = 1 << (UV_BITS - 1)          # 2**23
UV_SPAN = 1 << UV_BITS                # 2**24: added/subtracted by u's single wrap
V_MAX = UV_HALF - 1                   # v saturates to [-(2**23 - 1), 2**23 - 1]
V_MIN = -(UV_HALF - 1)

# --- decays: 12-bit, on a 1/4096 scale ------------------------------------------------------
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT        # 4096
DU_OFFSET = 1                         # u decays by (du + 1) / 4096: du = 0 still decays
DV_OFFSET = 0
DU_RANGE = (0, DECAY_UNITY - 1)       # 4095 makes u memoryless
DV_RANGE = (0, DECAY_UNITY)           # 4096 makes v memoryless

# --- threshold and activation alignment -----------------------------------------------------
VTH_BITS = 17
VTH_RANGE = (0, (1 << VTH_BITS) - 1)
VTH_SHIFT = 6                         # vth_eff = vth << 6
ACT_SHIFT = 6                         # synaptic input enters u as a << 6

# --- bias -----------------------------------------------------------------------------------
BIAS_MANT_BITS = 13
BIAS_MANT_RANGE = (-(1 << (BIAS_MANT_BITS - 1)), (1 << (BIAS_MANT_BITS - 1)) - 1)
# 3-bit exponent; Lava also accepts a negative exponent as a floor right shift.
BIAS_EXP_RANGE = (-7, 7)

# --- Dense synapses ---------------------------------------------------------------------------
MAX_WEIGHT_BITS = 8
NUM_WEIGHT_BITS_RANGE = (1, MAX_WEIGHT_BITS)
WEIGHT_EXP_RANGE = (-8, 7)
# graded input messages: Lava multiplies the payload in int32
INPUT_MESSAGE_BITS_RANGE = (0, 24)
SIGN_EXCITATORY, SIGN_MIXED, SIGN_INHIBITORY = 1, 2, 3
SIGN_MODE_NAMES = {SIGN_EXCITATORY: "excitatory", SIGN_MIXED: "mixed", SIGN_INHIBITORY: "inhibitory"}

# --- Conv (PyConvModelFixed) and DelayDense (PyDelayDenseModelBitAcc) -----------------------
CONV_SUM_BITS = 24                    # Conv's sum is wrapped (not saturated) to 24 bits
CONV_GEOM_MAX = 127                   # kernel, stride, padding, dilation, groups live in int8 Vars
MAX_DELAY = 63                        # Loihi 2 delays are 6 bit; Lava's DelayDense raises above 63
DELAY_RANGE = (0, MAX_DELAY)

# --- on-chip noise (neurohw's own, Loihi-style; see docs/noise.md) -------------------------
NOISE_INJECT = ("none", "current", "voltage", "threshold")
NOISE_DIST = ("uniform", "logistic", "gumbel")
NOISE_R_BITS = 8                      # raw draw r in [0, 255]: the top 8 bits of the hash
NOISE_R_OFFSET = 128                  # uniform noise is r - 128
NOISE_MANT_SCALE = 64                 # noise = (x + noise_mant * 64) * 2**(noise_exp - 7)
NOISE_EXP_BIAS = 7
NOISE_MANT_RANGE = (-16, 15)
NOISE_EXP_RANGE = (0, 23)
NOISE_SEED_RANGE = (0, (1 << 32) - 1)
LOGISTIC_SCALE = 16.0                 # logistic table: round(16 * logit((r + 0.5) / 256))
GUMBEL_SCALE = 16.0                   # gumbel table: round(16 * -log(-log((r + 0.5) / 256))); as threshold
                                      # noise it gives P(spike) = 1 - exp(-exp(x / s)): a per-step hazard


FLAG_U_WRAP, FLAG_V_SAT = 1, 2     # what lif_update reports it did silently


# ============================================================================================
# Validation
# ============================================================================================
def check_range(where: str, name: str, value, lo: int, hi: int) -> None:
    """Raise ValueError naming the place, the parameter, the offending value and the range."""
    arr = np.asarray(value)
    if arr.size == 0:
        return
    bad = (arr < lo) | (arr > hi)
    if np.any(bad):
        idx = np.argwhere(bad)[0]
        off = arr[tuple(idx)] if arr.ndim else arr
        at = f" at index {tuple(int(i) for i in idx)}" if arr.ndim else ""
        raise ValueError(f"{where}: {name} = {int(off)}{at} is out of range; allowed [{lo}, {hi}]")


def check_int(where: str, name: str, value) -> np.ndarray:
    """Integer-typed arrays only: a float silently truncated by Lava is a bug, not an input."""
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{where}: {name} must have an integer dtype, got {arr.dtype}")
    return arr


# ============================================================================================
# Dense weights as Lava preprocesses them (clip by sign mode, then truncate low bits)
# ============================================================================================
def sign_mode(weights: np.ndarray) -> int:
    """Lava's rule: excitatory if min >= 0, inhibitory if max <= 0, else mixed."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return SIGN_EXCITATORY
    if w.max() <= 0:
        return SIGN_INHIBITORY
    return SIGN_MIXED


def weight_limits(mode: int, num_weight_bits: int = MAX_WEIGHT_BITS) -> tuple[int, int, int]:
    """(lowest, highest, step) of the weights Lava leaves unchanged for this sign mode."""
    k = MAX_WEIGHT_BITS - num_weight_bits + (1 if mode == SIGN_MIXED else 0)
    step = 1 << k
    top = ((1 << MAX_WEIGHT_BITS) - 1) >> k << k
    if mode == SIGN_EXCITATORY:
        return 0, top, step
    if mode == SIGN_INHIBITORY:
        return -top, 0, step
    return -(1 << MAX_WEIGHT_BITS), top, step


def lava_weights(weights: np.ndarray, num_weight_bits: int = MAX_WEIGHT_BITS) -> np.ndarray:
    """What Lava's bit-accurate Dense makes of a weight matrix (clip, then truncate)."""
    mode = sign_mode(weights)
    w = np.asarray(weights).astype(np.int64)
    k = MAX_WEIGHT_BITS - num_weight_bits + (1 if mode == SIGN_MIXED else 0)
    if mode == SIGN_INHIBITORY:
        w = np.clip(-w, 0, (1 << MAX_WEIGHT_BITS) - 1)
        return -((w >> k) << k)
    lo = -(1 << MAX_WEIGHT_BITS) if mode == SIGN_MIXED else 0
    w = np.clip(w, lo, (1 << MAX_WEIGHT_BITS) - 1)
    return (w >> k) << k


def effective_bias(bias_mant, bias_exp) -> np.ndarray:
    """bias = bias_mant << bias_exp (floor right shift for a negative exponent), per neuron."""
    m, e = np.asarray(bias_mant, np.int64), np.asarray(bias_exp, np.int64)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


# ============================================================================================
# Scalar arithmetic shared by every backend (int64 in, int64 out)
# ============================================================================================
@njit(cache=True, inline="always")
def wrap32(x):
    """Two's-complement int32 wrap: what Lava's int32 arrays do on overflow."""
    return ((x + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(cache=True, inline="always")
def decay(x, factor):
    """x * factor / 4096, rounded toward zero (sign(p) * (|p| >> 12) of the product p), as int32.

    x is a state that fits int32 (v: 24 bits; u: int32 after its one conditional wrap) and
    factor <= 4096. In 32-bit lanes only, so that loops over neurons run 8 to an AVX2 vector:
    with |x| = hi * 4096 + lo, |x| * factor >> 12 = hi * factor + (lo * factor >> 12) exactly,
    and each term stays below 2**32 unsigned (|x| <= 2**31). 2x faster per neuron update than
    the int64 product (one 32x32->64 multiply per 4 lanes)."""
    xi = np.int32(x)
    m = np.int32(xi >> 31)                                   # -1 for x < 0, else 0
    ax = np.uint32(np.int32(xi ^ m) - m)                     # |x| (2**31 for -2**31)
    f = np.uint32(factor)
    hi = np.uint32(np.uint32(ax >> np.uint32(DECAY_SHIFT)) * f)
    lo = np.uint32(np.uint32(np.uint32(ax & np.uint32(DECAY_UNITY - 1)) * f) >> np.uint32(DECAY_SHIFT))
    return np.int32(np.int32(np.int32(np.uint32(hi + lo)) ^ m) - m)


@njit(cache=True, inline="always")
def shift_exp(x, e):
    """x << e, or floor x >> -e for e < 0 (weight_exp, bias_exp, noise exponent)."""
    if e >= 0:
        return x << e
    return x >> (-e)


@njit(cache=True, inline="always")
def dense_out(acc, weight_exp, graded):
    """Dense's message: acc shifted by weight_exp, sent on an int32 port.

    Binary spikes sum in int64 before the shift; graded payloads are multiplied in
    int32 (so they wrap before the shift)."""
    if graded:
        acc = wrap32(acc)
    return wrap32(shift_exp(acc, weight_exp))


@njit(cache=True, inline="always")
def lif_update(u, v, a, du, dv, vth_eff, bias, n_u, n_v, n_th):
    """One LIF step of PyLifModelBitAcc, plus neurohw's noise terms.

    a: the summed int32 input; n_u / n_v: noise added to u's / v's input (kept in the
    state); n_th: noise added for the threshold comparison only. Returns (u, v, spike, flags);
    flags says what the chip did silently: FLAG_U_WRAP if u wrapped, FLAG_V_SAT if v saturated,
    so that quantization reports can count it. Written without branches (selects and
    min/max), so that the emulator's loops over neurons vectorize."""
    # In int32 throughout (the chip's adds wrap modulo 2**32, as int32 casts do), so that the
    # emulator's loops over neurons vectorize 8 lanes wide.
    # u: decay (toward zero), input << 6 (int32), int32 sum, one conditional 24-bit wrap
    cur = np.int32(decay(u, DECAY_UNITY - (du + DU_OFFSET)) + np.int32(a << ACT_SHIFT) + np.int32(n_u))
    up, down = cur > UV_HALF, cur <= -UV_HALF
    cur = np.int32(cur + (np.int32(down) - np.int32(up)) * np.int32(UV_SPAN))
    # v: decay, + new u + bias in int32, saturate to 24 bits
    vol = np.int32(decay(v, DECAY_UNITY - (dv + DV_OFFSET)) + cur + np.int32(bias) + np.int32(n_v))
    sat = (vol > V_MAX) | (vol < V_MIN)
    vol = min(max(vol, np.int32(V_MIN)), np.int32(V_MAX))
    flags = np.int64(up | down) * FLAG_U_WRAP | np.int64(sat) * FLAG_V_SAT
    # vol + n_th > vth_eff, compared as vol > vth_eff - n_th clamped into int32 (vol is 24-bit)
    spike = vol > np.int32(min(max(np.int64(vth_eff) - n_th, -(1 << 31)), (1 << 31) - 1))
    vol = np.int32(vol * np.int32(not spike))
    return cur, vol, spike, flags


# ============================================================================================
# Conv (PyConvModelFixed) and DelayDense (PyDelayDenseModelBitAcc): messages and references
# ============================================================================================
def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length along one axis: floor((size + 2p - d(k - 1) - 1) / s) + 1 (may be < 1)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@njit(cache=True, inline="always")
def conv_out(acc):
    """Conv's message: the exact sum (int32 after Lava's float->int32 cast, which neurohw
    keeps exact by bounding the sum), WRAPPED to 24 bits (Lava's signed_clamp is a modulo)."""
    return ((acc + (1 << (CONV_SUM_BITS - 1))) & ((1 << CONV_SUM_BITS) - 1)) - (1 << (CONV_SUM_BITS - 1))


@njit(cache=True, inline="always")
def delay_term(w, x, graded):
    """One synapse's contribution to a DelayDense slot sum: w for a binary spike, the int32
    product w * x for a graded payload (Lava multiplies elementwise in int32, sums in int64)."""
    if graded:
        return wrap32(w * x)
    return w


@njit(cache=True, inline="always")
def delay_slot_out(acc, weight_exp):
    """A DelayDense slot's share of a step: its int64 sum shifted by weight_exp, added into
    the int32 ring buffer (so each slot's sum is rounded by the shift on its own)."""
    return wrap32(shift_exp(acc, weight_exp))


def conv_reference(x, weights, in_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                   graded=False) -> np.ndarray:
    """NumPy reference of Conv's message for inputs x [..., H*W*C] (flat (h*W + w)*C + c):
    a gather over kernel taps, cross-correlation with weights (C_out, kh, kw, C/groups).

    Returns [..., H'*W'*C_out] int64 (flat the same way), what the Conv sends one step later."""
    H, W, C = in_shape
    c_out, kh, kw, cg = np.shape(weights)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = (conv_out_size(H, kh, sh, ph, dh), conv_out_size(W, kw, sw, pw, dw))
    x = np.asarray(x).reshape(np.shape(x)[:-1] + (H, W, C)).astype(np.int64)
    if not graded:
        x = (x != 0).astype(np.int64)
    lead = x.shape[:-3]
    xp = np.zeros(lead + (H + 2 * ph, W + 2 * pw, C), np.int64)
    xp[..., ph:ph + H, pw:pw + W, :] = x
    w = np.asarray(weights, np.int64)
    og = c_out // groups
    acc = np.zeros(lead + (Ho, Wo, c_out), np.int64)
    for i in range(kh):
        for j in range(kw):
            tap = xp[..., i * dh: i * dh + (Ho - 1) * sh + 1: sh, j * dw: j * dw + (Wo - 1) * sw + 1: sw, :]
            for g in range(groups):
                acc[..., g * og:(g + 1) * og] += tap[..., g * cg:(g + 1) * cg] @ w[g * og:(g + 1) * og, i, j, :].T
    return conv_out.py_func(acc).reshape(lead + (Ho * Wo * c_out,))


def dense_reference(x, weights, weight_exp=0, graded=False) -> np.ndarray:
    """NumPy reference of Dense's message for inputs x [..., n_in] (sent one step later)."""
    w = np.asarray(weights, np.int64)
    x = np.asarray(x, np.int64)
    acc = wrap32.py_func(x @ w.T) if graded else (x != 0).astype(np.int64) @ w.T
    acc = acc << weight_exp if weight_exp >= 0 else acc >> -weight_exp
    return wrap32.py_func(acc)


class DelayBuffer:
    """NumPy reference of DelayDense's (n_out, max_delay + 1) int32 buffer, as Lava runs it.

    step(x) takes the input of one step and returns the message the neurons receive at the
    next step: drop slot 0, shift the buffer by one, add this step's sum of each delay slot,
    shifted by weight_exp, into int32; slot 0 is then what is sent (so a spike at step t with
    delay d arrives at step t + 1 + d, and delay 0 behaves like Dense)."""

    def __init__(self, weights, delays, weight_exp=0, graded=False):
        self.w = np.asarray(weights, np.int64)
        self.d = np.asarray(delays)
        self.weight_exp, self.graded = weight_exp, graded
        self.buf = np.zeros((self.w.shape[0], int(self.d.max(initial=0)) + 1), np.int64)

    def step(self, x) -> np.ndarray:
        x = np.asarray(x, np.int64)
        terms = wrap32.py_func(self.w * x[None, :]) if self.graded else self.w * (x != 0)[None, :]
        self.buf = np.concatenate([self.buf[:, 1:], np.zeros((self.w.shape[0], 1), np.int64)], axis=1)
        e = self.weight_exp
        for k in range(self.buf.shape[1]):
            acc = np.where(self.d == k, terms, 0).sum(axis=1)
            acc = acc << e if e >= 0 else acc >> -e
            self.buf[:, k] = wrap32.py_func(self.buf[:, k] + wrap32.py_func(acc))
        return self.buf[:, 0].copy()


def delay_dense_reference(xs, weights, delays, weight_exp=0, graded=False) -> np.ndarray:
    """DelayBuffer over inputs xs [T, n_in]: [T, n_out] int64, the message the neurons
    receive at each step (row 0 is zero: nothing has arrived yet)."""
    ref = DelayBuffer(weights, delays, weight_exp, graded)
    out = np.zeros((len(xs), ref.w.shape[0]), np.int64)
    for t in range(1, len(xs)):
        out[t] = ref.step(xs[t - 1])
    return out
