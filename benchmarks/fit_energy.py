"""Chip fit and SANA-FE energy benchmarks (`make bench-fit`, part of `make bench`).

1. `neurohw.fit.partition` on a network of 1,000,000 neurons (target: <= 10 s), Loihi 1 and 2.
2. SANA-FE on the whole Yin-Yang test set (1,000 samples x 60 steps) with deploy/yinyang and the
   emulator's spikes (target: <= 60 s), plus what it reports.
3. SANA-FE's own example, reproduced: tutorial 5 of the SANA-FE repository (DVS gesture network
   on its Loihi description, 1,000 steps), whose notebook checks 365,277 neurons fired.
Timings are wall clock on this machine; take the min of repeats when it is loaded.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def big_network(n: int = 1_000_000, n_in: int = 64, seed: int = 0):
    from neurohw.network import IntLayer, IntNetwork
    rng = np.random.default_rng(seed)
    w = (rng.integers(-127, 128, size=(n, n_in), dtype=np.int16) * 2)
    return IntNetwork(n_in=n_in, layers=[IntLayer(weights=w, du=100, dv=100, vth=100)])


def conv_network(seed: int = 0):
    """256 x 256 x 2 events -> conv 3x3 (16) -> sum-pool 4 -> sum-pool 4 -> dense 10: 1,118,218 neurons."""
    from neurohw.network import Conv2d, IntLayer, IntNetwork, sum_pool
    rng = np.random.default_rng(seed)
    lif = dict(du=0, dv=0, vth=10)
    w = lambda *s: (rng.integers(1, 128, s) * rng.choice([-2, 2], s)).astype(np.int16)  # noqa: E731
    return IntNetwork(n_in=256 * 256 * 2, layers=[
        IntLayer(weights=w(16, 3, 3, 2), conv=Conv2d(in_shape=(256, 256, 2), padding=1), **lif),
        sum_pool((256, 256, 16), 4, 2, **lif), sum_pool((64, 64, 16), 4, 2, **lif),
        IntLayer(weights=w(10, 16 * 16 * 16), **lif)])


def bench_fit(repeats: int) -> None:
    from neurohw.fit import partition
    for label, net in (("dense", big_network()), ("conv", conv_network())):
        n = sum(net.sizes[1:])
        print(f"fit: {label} network {' -> '.join(f'{s:,}' for s in net.sizes)} ({n:,} neurons)")
        for chip in ("loihi1", "loihi2"):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = partition(net, chip)
                times.append(time.perf_counter() - t0)
            print(f"  {chip}: {r.cores:,} cores on {r.chips} chips, binding limits "
                  f"{', '.join(l.binding for l in r.layers)}; {min(times):.2f} s (min of {repeats}; target <= 10 s)")


def bench_yinyang(repeats: int) -> None:
    from neurohw import emu, tasks
    from neurohw.config import load_config
    from neurohw.energy import simulate
    from neurohw.fit import partition
    from neurohw.network import load_bundle
    net = load_bundle("deploy/yinyang")
    x = tasks.build_data(load_config("configs/yinyang.yaml")).x_test
    spikes = emu.run(net, x).spikes
    fit = partition(net, "loihi1")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        e = simulate(net, fit, x, spikes)
        times.append(time.perf_counter() - t0)
    b, t = e["breakdown_per_inference_J"], e["time_per_step_s"]
    print(f"SANA-FE, Yin-Yang test set ({e['samples']} samples x {e['steps_per_sample']} steps, deploy/yinyang on "
          f"{fit.cores} Loihi 1 cores): {min(times):.1f} s (min of {repeats}; simulation alone "
          f"{e['wall_seconds']:.1f} s; target <= 60 s)")
    print(f"  energy per inference {1e9 * e['energy_per_inference_J']:.1f} nJ: synaptic events "
          f"{1e9 * b['synaptic_events']:.1f}, neuron updates {1e9 * b['neuron_updates']:.1f}, spikes "
          f"{1e9 * b['spikes']:.1f}, network {1e9 * b['network']:.1f}; time per step {1e6 * t['mean']:.2f} us "
          f"(max {1e6 * t['max']:.2f}), {1e6 * e['time_per_inference_s']:.1f} us per inference")


def bench_sanafe_example() -> None:
    """SANA-FE's tutorial 5 (tutorial/tutorial_5_dvs.ipynb), its own mapping and network."""
    import sanafe
    import sanafe.layers
    import sanafe.tutorial
    arch = sanafe.load_loihi()
    snn = sanafe.Network()
    with sanafe.tutorial.get_dvs_data() as f:
        data = dict(np.load(f))
    th = data["thresholds"]
    layers = [sanafe.layers.Input2D(snn, 32, 32, threshold=th[0])]
    layers.append(sanafe.layers.Conv2D(snn, layers[-1], data["conv1"], stride_width=2, stride_height=2,
                                       threshold=th[1]))
    for k in (2, 3, 4):
        layers.append(sanafe.layers.Conv2D(snn, layers[-1], data[f"conv{k}"], threshold=th[k]))
    layers.append(sanafe.layers.Dense(snn, layers[-1], 11, data["dense1"], threshold=th[5]))
    for n, b in zip(layers[0], data["inputs"]):
        n.set_attributes(model_attributes={"bias": b})
    cores, used = arch.cores(), 0
    for layer, count in zip(layers, [1, 4, 16, 16, 4, 1]):   # the notebook's core counts, its even split
        per = len(layer) // count
        for c in range(count):
            for nrn in (layer[c * per:] if c == count - 1 else layer[c * per:(c + 1) * per]):
                nrn.map_to_core(cores[used])
            used += 1
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    t0 = time.perf_counter()
    r = chip.sim(1000, processing_threads=1)
    secs = time.perf_counter() - t0
    ok = r["neurons_fired"] == 365277
    print(f"SANA-FE tutorial 5 (DVS gesture on Loihi, 1000 steps): neurons fired {r['neurons_fired']:,} "
          f"(the notebook expects 365,277: {'reproduced' if ok else 'NOT reproduced'}); energy "
          f"{1e3 * r['energy']['total']:.3f} mJ (synapse {1e3 * r['energy']['synapse']:.3f}, soma "
          f"{1e3 * r['energy']['soma']:.3f}, network {1e3 * r['energy']['network']:.3f}), simulated time "
          f"{1e3 * r['sim_time']:.2f} ms ({1e6 * r['sim_time'] / 1000:.2f} us per step); {secs:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-example", action="store_true", help="skip SANA-FE's tutorial network (~20-50 s)")
    args = ap.parse_args()
    bench_fit(args.repeats)
    bench_yinyang(args.repeats)
    if not args.skip_example:
        bench_sanafe_example()


if __name__ == "__main__":
    main()
