"""Emulator speed: against Lava, against the honest ceilings of the same work, and how it scales.

Run with `make bench` (add --quick for fewer repeats and smaller curves). Every comparison is
measured in this one run, on the same spikes:
  (i)   100->200->10, 8 x 1000 steps: the emulator vs Lava (and that their spikes are identical);
  (ii)  700->256->256->20, batch 256 x 100 steps, 5 % input density: the emulator (auto, forced
        event, forced matvec, forced dense) vs the slice-add event ceiling (per layer, prange over the batch: each
        step's spike indices gathered, then their contiguous int16 weight rows added four at a time
        into int32 sums; the emulator's own spikes as input: only the synaptic sums, no neurons) and vs the float32 GEMM of all layers' input sums (torch, 2 threads,
        inputs already float32: only the matrix products); synaptic events/s and neuron updates/s;
  (iii) the same network with logistic threshold noise in every layer vs none;
  (iv)  scaling curves: time vs input density, batch size and hidden width, for the emulator, the
        slice-add loop and the GEMM -> docs/img/emulator_scaling.png and a Markdown table.
Times are the minimum of repeated runs (the machine may be shared).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from numba import njit, prange

from neurohw import IntLayer, IntNetwork, Noise, emu
from neurohw import lava as nlava

IMG = Path(__file__).resolve().parent.parent / "docs" / "img" / "emulator_scaling.png"


def dense_net(rng, sizes, vth=200, noise=None) -> IntNetwork:
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (np.round(rng.normal(0, 40, (n_out, n_in)) / 2) * 2).clip(-256, 254).astype(np.int16)
        layers.append(IntLayer(weights=w, weight_exp=0, du=410, dv=410, vth=vth,
                               noise=noise or Noise()))
    return IntNetwork(n_in=sizes[0], layers=layers)


def best_of(fn, repeats=5):
    times = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


@njit(parallel=True, cache=True)
def slice_add(pre, rows, out):
    """The event ceiling for one layer: for every sample (prange) and step, the indices of the
    presynaptic spikes are gathered first, then their contiguous int16 weight rows are added into
    an int32 accumulator four rows at a time (one load/store of the accumulator per four rows; the
    inner loop is unit-stride and vectorizes). Only the synaptic sums: no neurons, no state.
    out[b] gets a checksum so that nothing is optimized away."""
    B, T, n_in = pre.shape
    n = rows.shape[1]
    for b in prange(B):
        acc = np.zeros(n, np.int32)
        idx = np.empty(n_in, np.int64)
        chk = 0
        for t in range(T):
            m = 0
            x = pre[b, t]
            for j in range(n_in):
                if x[j] != 0:
                    idx[m] = j
                    m += 1
            acc[:] = 0
            q = 0
            while q + 4 <= m:
                r0, r1, r2, r3 = rows[idx[q]], rows[idx[q + 1]], rows[idx[q + 2]], rows[idx[q + 3]]
                for k in range(n):
                    acc[k] += np.int32(r0[k]) + np.int32(r1[k]) + np.int32(r2[k]) + np.int32(r3[k])
                q += 4
            while q < m:
                r0 = rows[idx[q]]
                for k in range(n):
                    acc[k] += r0[k]
                q += 1
            chk += acc[t % n]
        out[b] = chk


class Same:
    """One network and input, its emulator spikes, and the ceilings' inputs built from them."""

    def __init__(self, net: IntNetwork, x: np.ndarray):
        self.net, self.x = net, x
        self.res = emu.run(net, x)
        ins = [x] + self.res.spikes[:-1]
        self.events = sum(int(p.sum()) * layer.n_out for p, layer in zip(ins, net.layers))
        self.updates = x.shape[0] * x.shape[1] * sum(layer.n_out for layer in net.layers)
        self.pre = [np.ascontiguousarray(p, np.uint8) for p in ins]
        self.rows = [np.ascontiguousarray(layer.weights.T, np.int16) for layer in net.layers]
        self.chk = np.zeros(x.shape[0], np.int64)
        self.f_in = [torch.as_tensor(p.reshape(-1, p.shape[2]), dtype=torch.float32) for p in ins]
        self.f_w = [torch.as_tensor(layer.weights.T, dtype=torch.float32) for layer in net.layers]

    def emulator(self, **kw):
        return emu.run(self.net, self.x, **kw)

    def ceiling(self):
        for p, w in zip(self.pre, self.rows):
            slice_add(p, w, self.chk)
        return self.chk

    def gemm(self):
        return [a @ w for a, w in zip(self.f_in, self.f_w)]

    def times(self, repeats, forced=()):
        """Interleaved repeats (so background load hits every side alike); min per side."""
        sides = {"emulator": self.emulator, "slice-add": self.ceiling, "gemm": self.gemm}
        for path in forced:
            sides[f"emu {path}"] = lambda p=path: self.emulator(path=p)
        for f in sides.values():
            f()
        t = {k: [] for k in sides}
        for _ in range(repeats):
            for k, f in sides.items():
                t0 = time.perf_counter()
                f()
                t[k].append(time.perf_counter() - t0)
        return {k: min(v) for k, v in t.items()}


def curves(rng, repeats, quick):
    """(iv): time vs density, batch and width; returns rows (sweep, value, times, events)."""
    rows = []
    steps = 100
    base_b = 32 if quick else 64
    for d in ([0.005, 0.05, 0.2, 0.5] if quick else [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5]):
        net = dense_net(np.random.default_rng(1), [700, 256, 256, 20], vth=100)
        s = Same(net, (rng.random((base_b, steps, 700)) < d).astype(np.uint8))
        rows.append(("density", d, s.times(repeats), s.events))
    for b in ([16, 64] if quick else [16, 64, 256]):
        net = dense_net(np.random.default_rng(1), [700, 256, 256, 20], vth=100)
        s = Same(net, (rng.random((b, steps, 700)) < 0.05).astype(np.uint8))
        rows.append(("batch", b, s.times(repeats), s.events))
    for n in ([64, 256, 1024] if quick else [64, 128, 256, 512, 1024]):
        net = dense_net(np.random.default_rng(1), [700, n, n, 20], vth=100)
        s = Same(net, (rng.random((base_b, steps, 700)) < 0.05).astype(np.uint8))
        rows.append(("width", n, s.times(repeats), s.events))
    return rows


def plot(rows, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    labels = {"density": "input density", "batch": "batch size (100 steps)", "width": "hidden width n (700-n-n-20)"}
    for ax, sweep in zip(axes, ("density", "batch", "width")):
        sel = [r for r in rows if r[0] == sweep]
        xs = [r[1] for r in sel]
        for side, style in (("emulator", "o-"), ("slice-add", "s--"), ("gemm", "^:")):
            ax.plot(xs, [r[2][side] * 1e3 for r in sel], style, label=side)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(labels[sweep])
        ax.set_ylabel("time per batch (ms)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.suptitle("neurohw emulator vs the slice-add event ceiling and the float32 GEMM of the same sums")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter curves, no Lava")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"neurohw emulator benchmark (times: min of {repeats} interleaved runs after a warm-up; "
          "the machine may be shared)\n")

    if not args.quick:   # (i) emulator vs Lava, same network and inputs
        net = dense_net(rng, [100, 200, 10])
        x = (rng.random((8, 1000, 100)) < 0.05).astype(np.uint8)
        emu.run(net, x[:1, :10])
        t_emu, res = best_of(lambda: emu.run(net, x), repeats)
        t0 = time.perf_counter()
        lres = nlava.run(net, x)
        t_lava = time.perf_counter() - t0
        same = all(np.array_equal(a, b) for a, b in zip(res.spikes, lres.spikes))
        tc = Same(net, x).times(repeats)       # what the fastest honest loops would give against Lava
        print("(i) 100->200->10, 8 samples x 1000 steps, 5% input density")
        print(f"    emulator {t_emu * 1e3:9.2f} ms   Lava {t_lava:7.2f} s   ratio {t_lava / t_emu:,.0f}x   "
              f"spikes identical: {same}   (hidden rate {res.spikes[0].mean():.3f})")
        print(f"    the ceilings on the same spikes (synaptic sums only, no neurons): slice-add "
              f"{tc['slice-add'] * 1e3:.2f} ms = Lava / {t_lava / tc['slice-add']:,.0f};  GEMM "
              f"{tc['gemm'] * 1e3:.2f} ms = Lava / {t_lava / tc['gemm']:,.0f}\n")
    else:
        rng.random((8, 1000, 100))

    # (ii) throughput against the ceilings, same spikes
    net = dense_net(rng, [700, 256, 256, 20], vth=100)
    s = Same(net, (rng.random((256, 100, 700)) < 0.05).astype(np.uint8))
    t = s.times(repeats, forced=("event", "matvec", "table", "dense"))
    plans = emu.run(net, s.x[:8], flags=True).plans
    rates = ", ".join(f"{r.mean():.3f}" for r in s.res.spikes)
    print("(ii) 700->256->256->20, batch 256 x 100 steps, 5% input density "
          f"(layer rates {rates}; {s.events / 1e6:.1f} M synaptic events, {s.updates / 1e6:.1f} M neuron updates)")
    print("    auto plan: " + ", ".join(f"{p.path}/{p.acc}" for p in plans))
    for k in ("emulator", "emu event", "emu matvec", "emu table", "emu dense", "slice-add", "gemm"):
        extra = f"  {s.updates / t[k] / 1e9:5.2f} G neuron updates/s" if k.startswith("emu") else ""
        print(f"    {k:10s} {t[k] * 1e3:8.2f} ms  {s.events / t[k] / 1e9:6.2f} G synaptic events/s{extra}")
    print(f"    emulator / slice-add ceiling: {t['slice-add'] / t['emulator']:.0%} of the ceiling's speed;  "
          f"emulator / GEMM: {t['gemm'] / t['emulator']:.0%} of the GEMM's speed")

    # (iii) noise on vs off, same network (threshold noise in every layer)
    noisy = IntNetwork(n_in=700, layers=[IntLayer(**{**layer.__dict__, "noise": Noise("threshold", "logistic", 0, 7, 1)})
                                          for layer in net.layers])
    emu.run(noisy, s.x[:2])
    t_noise, _ = best_of(lambda: emu.run(noisy, s.x), repeats)
    print("\n(iii) same network, logistic threshold noise in every layer vs none")
    print(f"    noise off {t['emulator'] * 1e3:8.2f} ms   noise on {t_noise * 1e3:8.2f} ms   "
          f"ratio {t_noise / t['emulator']:.2f}x")

    # (iv) scaling curves
    rows = curves(rng, repeats, args.quick)
    plot(rows, IMG)
    print(f"\n(iv) scaling (700-n-n-20, 100 steps; plot: {IMG.relative_to(IMG.parents[2])})\n")
    print("| sweep | value | emulator ms | slice-add ms | GEMM ms | G syn. events/s | emu / slice-add | emu / GEMM |")
    print("|---|---|---|---|---|---|---|---|")
    for sweep, val, tt, ev in rows:
        print(f"| {sweep} | {val:g} | {tt['emulator'] * 1e3:.1f} | {tt['slice-add'] * 1e3:.1f} | "
              f"{tt['gemm'] * 1e3:.1f} | {ev / tt['emulator'] / 1e9:.2f} | "
              f"{tt['emulator'] / tt['slice-add']:.2f}x | {tt['emulator'] / tt['gemm']:.2f}x |")


if __name__ == "__main__":
    main()
