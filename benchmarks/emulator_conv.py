"""Emulator speed on conv / pool and delay networks, against Lava on the same batch.

Run with `make bench` (or `python benchmarks/emulator_conv.py`). Prints both sides of each
comparison, measured in this one run, the ratio, and whether the spikes are identical."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neurohw import Conv2d, IntLayer, IntNetwork, emu, events, sum_pool
from neurohw import lava as nlava
from neurohw.network import load_bundle

ROOT = Path(__file__).resolve().parent.parent


def even(rng, shape, sd):
    return (np.round(rng.normal(0, sd, shape) / 2) * 2).clip(-256, 254).astype(np.int16)


def conv_net(rng, side=32) -> IntNetwork:
    """An event-camera-sized stack: (side, side, 2) -> conv 5x5x8 -> sum-pool 2 -> conv 3x3x16
    -> sum-pool 2 -> dense 10 (the shape of configs/events_conv.yaml's network)."""
    lif = dict(du=2048, dv=1024)
    c1 = IntLayer(weights=even(rng, (8, 5, 5, 2), 40), conv=Conv2d((side, side, 2), padding=2), vth=150, **lif)
    p1 = sum_pool(c1.shape, 2, 16, vth=40, **lif)
    c2 = IntLayer(weights=even(rng, (16, 3, 3, 8), 30), conv=Conv2d(p1.shape, padding=1), vth=300, **lif)
    p2 = sum_pool(c2.shape, 2, 16, vth=40, **lif)
    out = IntLayer(weights=even(rng, (10, p2.n_out), 20), vth=131071, **lif)
    return IntNetwork(n_in=side * side * 2, layers=[c1, p1, c2, p2, out])


def delay_net(rng) -> IntNetwork:
    lif = dict(du=410, dv=410, vth=80)
    return IntNetwork(n_in=64, layers=[
        IntLayer(weights=even(rng, (128, 64), 40), delays=rng.integers(0, 64, (128, 64)), **lif),
        IntLayer(weights=even(rng, (10, 128), 40), delays=rng.integers(0, 16, (10, 128)),
                 rec_weights=even(rng, (10, 10), 20), rec_delays=rng.integers(0, 8, (10, 10)), **lif)])


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def compare(name, net, x):
    emu.run(net, x[:1, :5])                         # compile
    t_emu, res = best_of(lambda: emu.run(net, x))
    t0 = time.perf_counter()
    lres = nlava.run(net, x)
    t_lava = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(res.spikes, lres.spikes))
    rates = ", ".join(f"{s.mean():.3f}" for s in res.spikes)
    print(f"{name}\n    emulator {t_emu * 1e3:9.2f} ms   Lava {t_lava:7.2f} s   ratio {t_lava / t_emu:,.0f}x   "
          f"spikes identical: {same}   (layer rates {rates})")


def main():
    rng = np.random.default_rng(0)
    print("neurohw emulator on conv / pool / delay networks (emulator: best of 5 after a warm-up)\n")
    net = load_bundle(ROOT / "deploy" / "events_conv")
    x = events.event_digits_splits(steps_per_saccade=6)["test"][0][:64]
    compare("(iii) deploy/events_conv (the trained conv network: 16x16x2 -> conv 3x3x8 -> pool 2 -> conv 3x3x16 "
            "stride 2 -> 10), the first 64 event-digit test samples x 18 steps", net, x.reshape(64, 18, -1))
    net = conv_net(rng)
    x = (rng.random((8, 100, net.n_in)) < 0.05).astype(np.uint8)
    compare("(iv) (32, 32, 2) -> conv 5x5x8 -> pool 2 -> conv 3x3x16 -> pool 2 -> 10, 8 samples x 100 steps, "
            "5% input density", net, x)
    net = delay_net(rng)
    x = (rng.random((8, 100, 64)) < 0.05).astype(np.uint8)
    compare("(v) 64 -> 128 (delays 0..63) -> 10 (delays 0..15, recurrent delays 0..7), 8 samples x 100 steps",
            net, x)


if __name__ == "__main__":
    main()
