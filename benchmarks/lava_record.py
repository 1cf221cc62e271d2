"""The pipeline's Lava stage: spikes, u and v recorded in-process vs through Lava's Monitor.

`make bench-lava` (or `PYTHONPATH=$PWD .venv/bin/python benchmarks/lava_record.py --batch 200`).
The network and inputs have the demo's shape (configs/yinyang.yaml: 5 latency inputs -> 120 LIF
-> 3, 60 steps, 200 samples in one Lava run, probes on, as stage_lava runs them); the weights are
random. Both sides run interleaved in this one process; each result is checked against the
emulator (spikes, u, v). Times are the minimum over repeats (the machine may be shared)."""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from neurohw import IntLayer, IntNetwork, emu
from neurohw import lava as nlava
from neurohw.parity import compare


def demo_like(rng, batch: int, steps: int = 60):
    def layer(n_out, n_in):
        return IntLayer(weights=(rng.integers(-128, 128, (n_out, n_in)) * 2).astype(np.int16), weight_exp=0,
                        du=410, dv=410, vth=100)
    net = IntNetwork(n_in=5, layers=[layer(120, 5), layer(3, 120)])
    x = np.zeros((batch, steps, 5), np.uint8)
    for b in range(batch):
        x[b, rng.integers(0, steps - 10, 5), np.arange(5)] = 1
    return net, x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    net, x = demo_like(np.random.default_rng(0), args.batch)
    ref = emu.run(net, x, probes=True)
    t = {"monitor": [], "process": []}
    print(f"Lava stage, 5->120->3, {args.batch} samples x {x.shape[1]} steps, probes on "
          f"(load average at start {os.getloadavg()[0]:.1f})")
    for _ in range(args.repeats):
        for k in t:
            t0 = time.perf_counter()
            r = nlava.run(net, x, probes=True, record=k)
            t[k].append(time.perf_counter() - t0)
            assert not compare(ref, r), k
            print(f"    record={k:8s} {t[k][-1]:8.2f} s   (load {os.getloadavg()[0]:.1f}; equals the emulator)")
    m, p = min(t["monitor"]), min(t["process"])
    print(f"  min: monitor {m:.2f} s, process {p:.2f} s, ratio {m / p:.1f}x")


if __name__ == "__main__":
    main()
