"""Emulator speed: against Lava, against a bare accumulate loop, and with noise on vs off.

Run with `make bench`. Prints both sides of each comparison, measured in this one run."""
from __future__ import annotations

import time

import numpy as np
from numba import njit, prange

from neurohw import IntLayer, IntNetwork, Noise, emu
from neurohw import lava as nlava


def dense_net(rng, sizes, vth=200, noise=None) -> IntNetwork:
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = (np.round(rng.normal(0, 40, (n_out, n_in)) / 2) * 2).clip(-256, 254).astype(np.int16)
        layers.append(IntLayer(weights=w, weight_exp=0, du=410, dv=410, vth=vth,
                               noise=noise or Noise()))
    return IntNetwork(n_in=sizes[0], layers=layers)


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


@njit(parallel=True, cache=True)
def bare_accumulate_w(pre, w8, row_off, pre_off, n_outs):
    """The ceiling: for each presynaptic spike, add an int8 weight row into int32 sums."""
    B, T, _ = pre.shape
    out = np.zeros(B, np.int64)
    for b in prange(B):
        acc = np.zeros(1024, np.int32)
        chk = 0
        for t in range(T):
            for l in range(n_outs.shape[0]):
                n = n_outs[l]
                acc[:n] = 0
                for j in range(pre_off[l + 1] - pre_off[l]):
                    if pre[b, t, pre_off[l] + j]:
                        base = row_off[l] + j * n
                        for k in range(n):
                            acc[k] += w8[base + k]
                chk += acc[0]
        out[b] = chk
    return out


def main():
    rng = np.random.default_rng(0)
    print("neurohw emulator benchmark (times: best of 5 after a warm-up run)\n")

    # (i) emulator vs Lava, same network and inputs
    net = dense_net(rng, [100, 200, 10])
    x = (rng.random((8, 1000, 100)) < 0.05).astype(np.uint8)
    emu.run(net, x[:1, :10])
    t_emu, res = best_of(lambda: emu.run(net, x))
    t0 = time.perf_counter()
    lres = nlava.run(net, x)
    t_lava = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(res.spikes, lres.spikes))
    print("(i) 100->200->10, 8 samples x 1000 steps, 5% input density")
    print(f"    emulator {t_emu * 1e3:9.2f} ms   Lava {t_lava:7.2f} s   ratio {t_lava / t_emu:,.0f}x   "
          f"spikes identical: {same}   (hidden rate {res.spikes[0].mean():.3f})")

    # (ii) throughput against the bare accumulate loop
    sizes = [700, 256, 256, 20]
    net = dense_net(rng, sizes, vth=100)
    x = (rng.random((256, 100, 700)) < 0.05).astype(np.uint8)
    emu.run(net, x[:2])
    t_emu, res = best_of(lambda: emu.run(net, x))
    pre = np.concatenate([x] + res.spikes[:-1], axis=2)
    events = sum(int(p.sum()) * n for p, n in zip([x] + res.spikes[:-1], sizes[1:]))
    w8 = np.concatenate([np.asarray(layer.weights.T, np.int8).ravel() // 2 for layer in net.layers])
    row_off = np.cumsum([0] + [layer.weights.size for layer in net.layers])[:-1].astype(np.int64)
    pre_off = np.cumsum([0] + sizes[:-1]).astype(np.int64)
    n_outs = np.array(sizes[1:], np.int64)
    bare_accumulate_w(pre[:2], w8, row_off, pre_off, n_outs)
    t_bare, _ = best_of(lambda: bare_accumulate_w(pre, w8, row_off, pre_off, n_outs))
    rates = ", ".join(f"{s.mean():.3f}" for s in res.spikes)
    print("\n(ii) 700->256->256->20, batch 256 x 100 steps, 5% input density "
          f"(layer rates {rates}; {events / 1e6:.1f} M synaptic events)")
    print(f"    emulator   {t_emu * 1e3:8.2f} ms  {events / t_emu / 1e9:6.2f} G events/s")
    print(f"    bare loop  {t_bare * 1e3:8.2f} ms  {events / t_bare / 1e9:6.2f} G events/s  (int8 rows into int32)")
    print(f"    emulator reaches {t_bare / t_emu:.0%} of the bare-loop ceiling")

    # noise on vs off, same network (threshold noise in every layer)
    noisy = IntNetwork(n_in=700, layers=[IntLayer(**{**layer.__dict__, "noise": Noise("threshold", "logistic", 0, 7, 1)})
                                          for layer in net.layers])
    emu.run(noisy, x[:2])
    t_noise, _ = best_of(lambda: emu.run(noisy, x))
    print("\n(iii) same network, logistic threshold noise in every layer vs none")
    print(f"    noise off {t_emu * 1e3:8.2f} ms   noise on {t_noise * 1e3:8.2f} ms   ratio {t_noise / t_emu:.2f}x")


if __name__ == "__main__":
    main()
