"""`make demo` (foundation stage): a random integer network in the emulator and in Lava.

Prints the spike-for-spike agreement and both timings."""
from __future__ import annotations

import time

import numpy as np

from . import emu, synth
from . import lava as nlava
from .parity import compare


def main(seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    while True:   # a 3-layer network with a recurrent and a noisy layer, that spikes
        net = synth.random_network(rng, max_layers=3, max_n=48, p_recurrent=0.5, p_noise=0.5, graded=False)
        if (len(net.layers) == 3 and any(la.recurrent for la in net.layers)
                and any(la.noise.on for la in net.layers) and all(la.n_out > 4 for la in net.layers)):
            break
    x = synth.random_raster(rng, net, batch=4, steps=50, density=0.2)
    print(f"network {net.sizes}, recurrent {[layer.recurrent for layer in net.layers]}, "
          f"noise {[layer.noise.inject for layer in net.layers]}; batch 4 x 50 steps")
    emu.run(net, x[:1, :2])                       # compile (cached on disk afterwards)
    t = time.perf_counter()
    a = emu.run(net, x, probes=True)
    t_emu = time.perf_counter() - t
    t = time.perf_counter()
    b = nlava.run(net, x, probes=True)
    t_lava = time.perf_counter() - t
    mism = compare(a, b)
    n_spikes = int(sum(s.sum() for s in a.spikes))
    print(f"emulator {t_emu * 1e3:.2f} ms, Lava {t_lava:.2f} s ({t_lava / t_emu:,.0f}x)")
    print(f"{n_spikes} spikes; spikes, u and v identical in every layer: {not mism}")
    for m in mism:
        print(f"  MISMATCH layer {m.layer} {m.field}: {m.count} entries, first at {m.first}")
    return 1 if mism else 0


if __name__ == "__main__":
    raise SystemExit(main())
