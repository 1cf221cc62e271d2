"""The fitted SLIF neuron on the chip (neurohw.slif_chip): first-three-spike-time distributions of
the continuous model, its discrete-time float twins and the chip, by two-sample tests.

Sets (n trajectories each, the fitted c of `make bench-slif`: sigma = 0.25, n = 128, mean over seeds):
  slif       the continuous-time SLIF (sigma, alpha, subtractive reset; neurohw.slif.fast)
  twin_sigma the float twin with the diffusion put back as voltage noise sigma sqrt(dt) per step
  twin       the float twin as the chip runs it (per-step clock, reset to 0, no alpha, no diffusion)
  chip       the quantized twin on the emulator with on-chip Gumbel threshold noise
Lava runs the chip neuron on the first `--lava` trajectories and must equal the emulator (spikes,
u, v). Tests: the signature-kernel MMD^2 of Marcus paths (time / T, count / 3) with its permutation
test (95 % band, p), and per spike index a two-sample Kolmogorov-Smirnov test.

    python benchmarks/slif_chip.py [--n 1000] [--lava 16] [--perm 1000]
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import ks_2samp

from neurohw import emu, sigkernel as sk, slif_chip
from neurohw._io import write_json
from neurohw.parity import compare
from neurohw.slif import SLIFParams
from neurohw.slif.fast import single_neuron_grad_rng

OUT = Path("benchmarks")


def fitted_c(default: float = 1.5) -> float:
    """The mean fitted c at sigma = 0.25, n = 128 (expected-signature loss) of benchmarks/slif_results.json."""
    path = OUT / "slif_results.json"
    if not path.exists():
        return default
    rows = [r for r in json.loads(path.read_text())["rows"]
            if r["loss"] == "sig" and r["sigma"] == 0.25 and r["n"] == 128]
    return rows[0]["c_hat_mean"] if rows else default


def test_pair(a: np.ndarray, b: np.ndarray, p: SLIFParams, perm: int, seed: int) -> dict:
    paths = lambda t: sk.marcus_path(torch.as_tensor(t, dtype=torch.float64), p.T, time_scale=p.T,  # noqa: E731
                                     count_scale=float(p.n_record))
    r = sk.permutation_test(paths(a), paths(b), n_perm=perm, generator=torch.Generator().manual_seed(seed))
    out = {k: r[k] for k in ("mmd2", "band", "p_value")}
    out["ks_p"] = [float(ks_2samp(a[:, k], b[:, k]).pvalue) for k in range(a.shape[1])]
    out["mean_diff"] = (a.mean(0) - b.mean(0)).tolist()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--lava", type=int, default=16)
    ap.add_argument("--perm", type=int, default=1000)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    p = SLIFParams(sigma=a.sigma)
    c = fitted_c()
    inet = slif_chip.to_chip(p, c, noise_seed=1)
    L = inet.layers[0]
    sets = {
        "slif": single_neuron_grad_rng(p, np.full(a.n, c), 123)[0],
        "twin_sigma": slif_chip.twin_times(slif_chip.twin(p, c, noise_voltage=p.sigma * math.sqrt(p.dt)), p, a.n, 1),
        "twin": slif_chip.twin_times(slif_chip.twin(p, c), p, a.n, 2),
        "chip": slif_chip.chip_times(inet, p, a.n),
    }
    lines = [f"SLIF on the chip: c = {c:.4f} (fitted), sigma = {p.sigma}, alpha = {p.alpha}, T = {p.T}, "
             f"dt = {p.dt}; {a.n} trajectories per set",
             f"chip neuron: dv = {L.dv} (mu1 dt = {p.mu1 * p.dt}), vth = {L.vth}, bias = {int(L.bias_mant[0])} << "
             f"{int(L.bias_exp[0])}, noise {L.noise.dist} exp {L.noise.exp} (threshold)"]
    for name, t in sets.items():
        lines.append(f"  {name:10s} mean first 3 spike times " + " ".join(f"{x:.4f}" for x in t.mean(0))
                     + f"  (std {' '.join(f'{x:.4f}' for x in t.std(0))}; missing {(t >= p.T).sum()})")
    pairs = [("chip", "slif"), ("chip", "twin"), ("twin", "twin_sigma"), ("twin_sigma", "slif"),
             ("twin", "slif")]
    tests = {}
    for i, (x, y) in enumerate(pairs):
        r = test_pair(sets[x], sets[y], p, a.perm, seed=i)
        tests[f"{x}_vs_{y}"] = r
        verdict = "inside" if r["mmd2"] <= r["band"] else "OUTSIDE"
        lines.append(f"  {x:10s} vs {y:10s}: MMD2 {r['mmd2']:.2e} (band {r['band']:.2e}, {verdict}, p {r['p_value']:.3f}); "
                     f"KS p per spike {' '.join(f'{q:.3f}' for q in r['ks_p'])}; mean diff "
                     f"{' '.join(f'{d:+.4f}' for d in r['mean_diff'])}")
    lava = None
    if a.lava:
        from neurohw import lava as nlava
        x = np.zeros((a.lava, p.steps + 1, 1), np.uint8)
        t1 = time.perf_counter()
        lr = nlava.run(inet, x, probes=True)
        er = emu.run(inet, x, probes=True)
        mism = compare(er, lr)
        lava = {"trajectories": a.lava, "steps": p.steps + 1, "mismatches": sum(m.count for m in mism),
                "spikes": int(er.spikes[0].sum()), "seconds": time.perf_counter() - t1}
        lines.append(f"  Lava vs emulator: {a.lava} trajectories x {p.steps + 1} steps, {lava['spikes']} spikes, "
                     f"{lava['mismatches']} mismatched entries (spikes, u, v); {lava['seconds']:.0f} s")
    lines.append(f"total {time.perf_counter() - t0:.0f} s (wall, machine shared with other jobs)")
    print("\n".join(lines))
    OUT.mkdir(exist_ok=True)
    (OUT / f"slif_chip_results{a.tag}.txt").write_text("\n".join(lines) + "\n")
    write_json(OUT / f"slif_chip_results{a.tag}.json", {"c": c, "n": a.n, "tests": tests, "lava": lava,
                                                       "means": {k: v.mean(0).tolist() for k, v in sets.items()}})
    plot(sets, p, Path("docs/img") / f"slif_chip{a.tag}.png")
    return 0


def plot(sets: dict, p: SLIFParams, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, p.n_record, figsize=(4 * p.n_record, 3.2))
    bins = np.linspace(0, 0.6, 61)
    for k in range(p.n_record):
        for name, t in sets.items():
            ax[k].hist(np.minimum(t[:, k], bins[-1]), bins=bins, histtype="step", density=True, label=name)
        ax[k].set(xlabel=f"spike {k + 1} time", title=f"spike {k + 1}")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
