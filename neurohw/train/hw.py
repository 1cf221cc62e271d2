"""The hardware-exact trainer: the chip's integer arithmetic forward, surrogate gradients back.

The integer network runs first, for the whole batch and all steps: it is the emulator's run
(neurohw.emu.run) of the network the plans make (quant.to_int_network), every layer kind, noise
draws included, so the spikes, u and v are the emulator's bit for bit; inputs that are not
binary spikes go step by step through neurohw.emu.kernel.layer_step instead. Beside it runs the
float graph of the same fake-quantized layer; after each step its u and v
are moved onto the integer values (a straight-through correction), so the loss sees exactly the
chip's trajectory while gradients follow the float dynamics and the layer's surrogate.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from torch import nn

from .. import chip
from ..emu import run as emu_run
from ..emu.kernel import layer_step
from ..noise import NOISE_TABLES
from ..quant.core import to_int_network
from .escape import spike_as
from .model import SpikingNet, lif_step


def _int_params(m, lq) -> dict:
    mant, exp = lq.bias_ints(m.bias)
    d = m.int_delays()
    return dict(
        w=lq.weight_ints(m.weight).double(),
        # DelayDense: one weight matrix per delay slot [max_delay + 1, n_out, n_in]
        w_slots=None if d is None else torch.stack([lq.weight_ints(m.weight).double() * (d == k)
                                                    for k in range(m.spec.max_delay + 1)]),
        rec=None if m.rec is None else lq.weight_ints(m.rec, True).double(),
        rec_slots=None if m.rec_kernel() is None else lq.weight_ints(m.rec, True).double()[None]
        * m.rec_kernel().permute(2, 0, 1).double(),
        bias=chip.effective_bias(mant, exp), vth_eff=lq.vth << chip.VTH_SHIFT,
        noise=(chip.NOISE_INJECT.index(lq.noise.inject), chip.NOISE_DIST.index(lq.noise.dist),
               lq.noise.mant, lq.noise.exp, lq.noise.seed))


def _acc(src: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    """Integer Dense sums of binary spikes (exact in float64) as int64."""
    return (src.double() @ w.t()).numpy().astype(np.int64)


def _message(m, lq, ip, src: torch.Tensor, hist: torch.Tensor | None) -> tuple[np.ndarray, int]:
    """(acc, weight_exp) for layer_step: Dense's sums and its weight_exp; for the other kinds the
    finished message with exponent 0. Conv / pool: the exact sum wrapped to 24 bits (chip.conv_out);
    DelayDense: per delay slot the sum of the spikes sent that many steps before src, each slot
    shifted by weight_exp on its own and added in int32 (chip.delay_slot_out), as Lava's buffer."""
    if m.spec.kind != "dense":
        acc = m.project(src.double(), ip["w"]).round().numpy().astype(np.int64)
        return chip.conv_out.py_func(acc), 0            # vectorized: the same integer expression
    if hist is None:
        return _acc(src, ip["w"]), lq.weight_exp
    return _slots(hist, ip["w_slots"], lq.weight_exp), 0


def _slots(hist: torch.Tensor, w_slots: torch.Tensor, weight_exp: int) -> np.ndarray:
    """DelayDense's message: per slot k the sum over hist[..., k] with w_slots[k], shifted by
    weight_exp on its own (chip.shift_exp: floor for a negative exponent), added in int32."""
    msg = np.zeros((hist.shape[0], w_slots.shape[1]), np.int64)
    for k in range(hist.shape[-1]):
        acc = _acc(hist[..., k], w_slots[k])
        acc = np.right_shift(acc, -weight_exp) if weight_exp < 0 else np.left_shift(acc, weight_exp)
        msg = chip.wrap32.py_func(msg + chip.wrap32.py_func(acc))
    return msg


class _LifBlock(torch.autograd.Function):
    """A layer's LIF over a whole [B, T, n] block whose values are already known (the chip's),
    with the gradients of the step-by-step graph of HwExactNet.forward, computed in one reverse
    sweep instead of one autograd node per operation and step.

    Forward, for t > layer (at rest before, docs/timing.md), with the integer run's s, u, v
    (u, v in float units) and a[t] the synaptic input: u_f = u[t-1] (1 - du_f) + a[t],
    v_f = v[t-1] (1 - dv_f) + u_f + bias, xv = v_f - vth; the outputs are the chip's s[t], u[t],
    v[t] (straight through: d u[t] / d u_f = 1, d v[t] / d v_f = 1 - s[t], plus -v_f d s[t] when
    the reset is not detached), and d s[t] / d xv = the layer's surrogate at xv. A readout layer
    has no spikes and no reset."""

    @staticmethod
    def forward(ctx, a, bias, s, u, v, du_f, dv_f, vth, spiking, has_spikes, layer):
        # a [B, T - 1, n]: a[:, t - 1] is the input of step t; step 0 never has one
        u_f = a + u[:, :-1] * (1 - du_f)                      # steps 1 .. T - 1
        v_f = v[:, :-1] * (1 - dv_f) + u_f + bias
        xv = v_f - vth
        ctx.save_for_backward(xv, v_f, s)
        ctx.du_f, ctx.dv_f, ctx.spiking, ctx.has_spikes = du_f, dv_f, spiking, has_spikes
        ctx.t0, ctx.bias_shape = min(layer + 1, a.shape[1] + 1), bias.shape
        return s.view_as(s), u.view_as(u), v.view_as(v)

    @staticmethod
    def backward(ctx, g_s, g_u, g_v):
        xv, v_f, s = ctx.saved_tensors
        sp = ctx.spiking
        sg = sp.surrogate_grad(xv) if ctx.has_spikes else torch.zeros_like(xv)
        g_a, g_vf = (np.zeros(xv.shape, np.float32) for _ in range(2))
        f32 = (lambda t: np.ascontiguousarray(t.detach().numpy(), np.float32))
        _lif_block_backward(f32(g_s), f32(g_u), f32(g_v), f32(sg), f32(s), f32(v_f), ctx.has_spikes,
                            not sp.detach_reset, np.float32(1 - ctx.du_f), np.float32(1 - ctx.dv_f), ctx.t0, g_a, g_vf)
        g_bias = (torch.from_numpy(g_vf).sum((0, 1)).reshape(ctx.bias_shape).to(xv.dtype)
                  if ctx.needs_input_grad[1] else None)
        return torch.from_numpy(g_a).to(xv.dtype), g_bias, None, None, None, None, None, None, None, None, None


@njit(parallel=True, cache=True)
def _lif_block_backward(g_s, g_u, g_v, sg, s, v_f, has_spikes, reset_grad, ku, kv, t0, g_a, g_vf):
    """_LifBlock's reverse sweep, per sample (float32, the step loop's operations): from the
    output gradients g_s, g_u, g_v [B, T, n] to those of the input a (g_a) and of v_f (g_vf,
    whose sum is the bias gradient); sg, v_f, g_a, g_vf hold steps 1 .. T - 1 ([B, T - 1, n]).
    ku = 1 - du_f, kv = 1 - dv_f; steps before t0 are at rest."""
    B, T, n = g_s.shape
    rg = np.float32(1.0) if reset_grad else np.float32(0.0)
    hs = np.float32(1.0) if has_spikes else np.float32(0.0)
    for b in prange(B):
        cu = np.zeros(n, np.float32)
        cv = np.zeros(n, np.float32)
        for t in range(T - 1, t0 - 1, -1):
            for k in range(n):         # unit stride over neurons, no branch: vectorizes
                gv = g_v[b, t, k] + cv[k]
                gs = g_s[b, t, k] - rg * (gv * v_f[b, t - 1, k])
                gf = gv * (np.float32(1.0) - hs * s[b, t, k]) + hs * (gs * sg[b, t - 1, k])
                gu = g_u[b, t, k] + cu[k] + gf
                g_a[b, t - 1, k] = gu
                g_vf[b, t - 1, k] = gf
                cu[k] = gu * ku
                cv[k] = gf * kv


@njit(parallel=True, cache=True)
def _scaled(a, scale):
    """a / scale in float64, rounded to float32 (the chip's u or v in float units), one pass."""
    out = np.empty(a.shape, np.float32)
    flat, fo = a.reshape(-1), out.reshape(-1)
    for i in prange(flat.shape[0]):
        fo[i] = np.float32(np.float64(flat[i]) / scale)
    return out


class HwExactNet(nn.Module):
    """A SpikingNet and its quantization plans, run with the chip's arithmetic.

    forward returns what SpikingNet.forward returns (readout_v and v in float units, i.e. chip
    values / scale), plus 'int': the integer spikes, u and v per layer as NumPy arrays (with
    record=True) and 'wraps' / 'sats': per-layer counts of u wraps and v saturations."""

    def __init__(self, net: SpikingNet, plans: list, block: bool = True):
        super().__init__()
        self.net = net
        self.plans = plans
        self.block = block          # False: always the step loop (tests compare the two)

    @property
    def layers(self):
        return self.net.layers

    def constrain(self) -> None:
        self.net.constrain()

    def forward(self, x: torch.Tensor, generator=None, record: bool = False, sample_ids=None, tape=None):
        B, T, _ = x.shape
        x = x.float()
        ids = np.arange(B, dtype=np.int64) if sample_ids is None else np.asarray(sample_ids, np.int64)
        mods = self.net.modules_in_order
        n_spiking = len(self.net.layers)
        fake = [lq.fake(m) for m, lq in zip(mods, self.plans)]
        u_g = [x.new_zeros(B, m.spec.n_out) for m in mods]
        v_g = [x.new_zeros(B, m.spec.n_out) for m in mods]
        prev_g = [x.new_zeros(B, m.spec.n_out) for m in mods]
        wraps = [0] * len(mods)
        sats = [0] * len(mods)
        out_s, out_u, out_v = ([[] for _ in mods] for _ in range(3))
        rec_int = {k: [[] for _ in mods] for k in ("spikes", "u", "v")}
        xb = x.detach().numpy()
        # binary spikes: the integer network is the emulator's run of the quantized network, every
        # layer kind included; other inputs go step by step through layer_step
        fast = bool(((xb == 0) | (xb == 1)).all())
        # the step loop's own integer state and parameters: only for input that is not binary
        ints = [None if fast else _int_params(m, lq) for m, lq in zip(mods, self.plans)]
        u_int = [np.zeros((B, m.spec.n_out), np.int64) for m in mods]
        v_int = [np.zeros((B, m.spec.n_out), np.int64) for m in mods]
        kernels = [m.delay_kernel() for m in mods]      # delayed layers: slots of past source spikes
        hist_g = [None if k is None else x.new_zeros(B, k.shape[1], k.shape[2]) for k in kernels]
        rkernels = [m.rec_kernel() for m in mods]
        rhist_g = [None if k is None else x.new_zeros(B, k.shape[1], k.shape[2]) for k in rkernels]
        if fast:                                   # binary spikes: the whole integer network at once
            res = emu_run(to_int_network(self.net, self.plans), xb.astype(np.uint8), probes=True, sample_ids=ids,
                          flags=True)
            blocks = list(zip(res.spikes, res.u, res.v))
            wraps, sats = list(res.wraps), list(res.sats)
            # scaled once per layer (float64 division, then x's dtype): one op instead of one per step
            s_all = [torch.from_numpy(blk[0]).to(x.dtype) for blk in blocks]
            u_all, v_all = ([torch.from_numpy(_scaled(blk[i], float(lq.scale))).to(x.dtype)
                             for blk, lq in zip(blocks, self.plans)] for i in (1, 2))
        if self.block and fast and tape is None and all(f[1] is None and not m.spec.max_delay
                                                        for m, f in zip(mods, fake)):
            return self._block(x, mods, fake, s_all, u_all, v_all, blocks, wraps, sats, record, n_spiking)
        for t in range(T):
            new_g = []
            for l, (m, lq, (w, rec, bias, vth, du_f, dv_f, spiking), ip) in enumerate(zip(mods, self.plans, fake, ints)):
                n = m.spec.n_out
                if t <= l:                                  # at rest (docs/timing.md)
                    s_g = x.new_zeros(B, n)
                    s_int = np.zeros((B, n), np.uint8)
                else:
                    src_g = x[:, t - 1] if l == 0 else prev_g[l - 1]
                    if hist_g[l] is not None:
                        hist_g[l] = torch.cat([src_g[..., None], hist_g[l][..., :-1]], -1)
                    if rhist_g[l] is not None:
                        rhist_g[l] = torch.cat([prev_g[l][..., None], rhist_g[l][..., :-1]], -1)
                    if fast:
                        s_t, u_t, v_t = s_all[l][:, t], u_all[l][:, t], v_all[l][:, t]
                    else:
                        acc, w_exp = _message(m, lq, ip, src_g.detach(),
                                              None if hist_g[l] is None else hist_g[l].detach())
                        r_exp = lq.rec_weight_exp
                        if rhist_g[l] is not None:          # recurrent DelayDense: finished message
                            acc_rec, r_exp = _slots(rhist_g[l].detach(), ip["rec_slots"], r_exp), 0
                        else:
                            acc_rec = _acc(prev_g[l].detach(), ip["rec"]) if rec is not None else np.zeros_like(acc)
                        s_int, nw, ns = layer_step(u_int[l], v_int[l], acc, acc_rec, rec is not None, w_exp,
                                                   r_exp, False, lq.du, lq.dv, ip["vth_eff"], ip["bias"],
                                                   *ip["noise"], NOISE_TABLES, l, t, ids)
                        wraps[l] += nw
                        sats[l] += ns
                        s_t = torch.as_tensor(s_int, dtype=x.dtype)
                        u_t = torch.as_tensor(u_int[l] / lq.scale, dtype=x.dtype)
                        v_t = torch.as_tensor(v_int[l] / lq.scale, dtype=x.dtype)
                    a = m.project(src_g, w, hist_g[l], kernels[l])
                    if rec is not None:
                        a = a + m.recur(prev_g[l], rec, rhist_g[l], rkernels[l])
                    u, v, xv = lif_step(u_g[l], v_g[l], a, du_f, dv_f, bias, vth)
                    if l < n_spiking:
                        s_g = spike_as(xv, s_t, spiking)
                        if tape is not None:                # SpikingNet.forward's tape (neurohw.grad)
                            s_g = tape(l, xv, s_g, spiking)
                        v = v * (1 - (s_g.detach() if spiking.detach_reset else s_g))
                    else:
                        s_g = x.new_zeros(B, n)
                    u_g[l] = u + (u_t - u).detach()
                    v_g[l] = v + (v_t - v).detach()
                new_g.append(s_g)
                out_s[l].append(s_g)
                out_u[l].append(u_g[l])
                out_v[l].append(v_g[l])
                if record and not fast:
                    rec_int["spikes"][l].append(s_int)
                    rec_int["u"][l].append(u_int[l].copy())
                    rec_int["v"][l].append(v_int[l].copy())
            prev_g = new_g
        stack = (lambda seq: [torch.stack(a, 1) for a in seq])
        ints_rec = (_block_ints(blocks) if fast else {k: [np.stack(a, 1) for a in val] for k, val in rec_int.items()}) \
            if record else None
        # without record only the readout's v is read (its readout_v)
        v_st = stack(out_v) if record else [None] * (len(out_v) - 1) + [torch.stack(out_v[-1], 1)]
        return self._result(stack(out_s[:n_spiking]), stack(out_u) if record else None, v_st, ints_rec, wraps,
                            sats, n_spiking)

    def _result(self, s, u, v, ints, wraps, sats, n_spiking) -> dict:
        """forward's dict from per-layer [B, T, n] spikes, u, v (ints: the integer record, or None)."""
        res = {"spikes": s[:n_spiking], "wraps": wraps, "sats": sats}
        if self.net.readout is not None:
            res["readout_v"] = v[-1]
        if ints is not None:
            res["u"], res["v"], res["int"] = u, v, ints
        return res


    def _block(self, x, mods, fake, s_all, u_all, v_all, blocks, wraps, sats, record, n_spiking):
        """forward for binary input, no recurrence, no delays, no tape: per layer one projection of
        the whole block and one _LifBlock, the same values and gradients as the step loop."""
        B, T, _ = x.shape
        src = x
        out_s, out_u, out_v = [], [], []
        for l, (m, (w, rec, bias, vth, du_f, dv_f, spiking)) in enumerate(zip(mods, fake)):
            n = m.spec.n_out
            # the input of step t is the projection of the source's step t - 1 (one step of delay)
            a = m.project(src[:, :-1].reshape(B * (T - 1), src.shape[2]), w).reshape(B, T - 1, n)
            has_spikes = l < n_spiking
            s_in = s_all[l] if has_spikes else s_all[l].new_zeros(B, T, n)
            s, u, v = _LifBlock.apply(a, bias, s_in, u_all[l], v_all[l], du_f, dv_f, vth, spiking, has_spikes, l)
            out_s.append(s)
            out_u.append(u)
            out_v.append(v)
            src = s
        return self._result(out_s, out_u, out_v, _block_ints(blocks) if record else None, wraps, sats, n_spiking)


def _block_ints(blocks) -> dict:
    """The emulator run's per-layer (spikes, u, v) as forward's 'int' record (u, v as int64)."""
    return {k: [blk[i].astype(np.int64) if k != "spikes" else blk[0] for blk in blocks]
            for i, k in enumerate(("spikes", "u", "v"))}


def run_int_network(int_net, raster, sample_ids=None):
    """Run an IntNetwork through the hardware-exact trainer (binary input): a RunResult with
    spikes, u and v, to compare with the emulator and Lava."""
    from ..network import RunResult
    from ..quant import from_int_network
    if int_net.input_message_bits:
        raise ValueError("hardware-exact trainer: graded input (input_message_bits > 0) is not supported")
    net, plans = from_int_network(int_net)
    with torch.no_grad():
        out = HwExactNet(net, plans)(torch.as_tensor(np.asarray(raster), dtype=torch.float32), record=True,
                                     sample_ids=sample_ids)
    return RunResult(spikes=out["int"]["spikes"], u=out["int"]["u"], v=out["int"]["v"])
