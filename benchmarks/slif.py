"""The SLIF seed experiment (background.md 4a, experiment 1) against its sampling floor.

Estimate the input current c of a stochastic LIF neuron (c_true = 1.5) from n observed trajectories
by RMSprop on a loss between spike-train distributions, with exact pathwise spike-time gradients:
  sig   depth-3 expected-signature loss on the unscaled (t, N_t) Marcus paths (the seed's loss),
  mmd   unbiased signature-kernel MMD^2 (the Goursat scheme of sigkernel, refinement 0) on paths
        scaled to [0, 1]^2,
  sg    baseline: neurohw's discrete-time sigmoid-escape neuron (train.model.lif_step, train.spike)
        with its surrogate gradient, same data, same signature loss on its raster's spike times.
Every (sigma, n, seed) run of a loss is one slice of one batch per step (RMSprop is elementwise, so
one optimizer over the vector of c's is independent runs): one compiled simulation of all runs'
fresh trajectories with d t / d c (neurohw.slif.fast, forward tangents, both cores), then the
loss's forward tangent (fast.sig3_tangent, fast.mmd_grad; the baseline: neurohw.slif.discrete).
Each is held equal to autograd through the torch code in tests/test_slif.py. The floor: (a) c_grid per seed = argmin of the same loss
over a c grid with 4,000 model trajectories under common random numbers, (b) the RMS of c_grid
around 1.5 over many data draws, (c) the MAE of the true model against n held-out trajectories.
Also the >= 20-point gradient checks of neurohw.slif.check. `make bench-slif`.

    python benchmarks/slif.py [--seeds 8] [--steps 1500] [--losses sig mmd sg] [--draws 200]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from numba import get_num_threads

from neurohw._io import write_json
from neurohw.slif import Draws, SLIFParams, check
from neurohw.slif.discrete import discrete_grad
from neurohw.slif.fast import (kernel_means, kernel_pair_mean, marcus_paths, mmd_grad, sig3_tangent, single_neuron_grad,
                               single_neuron_grad_rng)

SIGMAS = (0.25, 0.5)
NS = (16, 32, 64, 128)
C_TRUE, C0 = 1.5, 0.56
GRID = np.round(np.arange(1.30, 1.70 + 1e-9, 0.0025), 6)
N_MODEL = 4000
GRID_MMD = np.round(np.arange(1.40, 1.60 + 1e-9, 0.0025), 6)   # the MMD loss's own c_grid (seeds only)
N_MODEL_PAIRS = 1000      # model paths of its model-model term (the cross term uses all N_MODEL)
MMD_REFINE = 0            # dyadic refinement of the PDE grid for the MMD loss
OUT = Path("benchmarks")


def progress(it, **kw):
    try:
        from tqdm import tqdm
        return tqdm(it, disable=not sys.stderr.isatty(), **kw)
    except ImportError:
        return it


def sig_feats(times, T: float = 5.0) -> np.ndarray:
    """The 14 depth-3 signature terms of the unscaled Marcus paths of first-3-spike times [B, 3]
    (`fast.sig3_tangent`, equal to `sigkernel.signature(marcus_path(.))`)."""
    t = np.asarray(times, dtype=np.float64)
    return sig3_tangent(t, np.zeros_like(t))[0]


def sim(p, c, seed, sigma=None):
    """Times [B, 3] and d times / d c of len(c) fresh trajectories (counter-based streams of seed)."""
    return single_neuron_grad_rng(p, c, seed, sigma)


def mae(model_times, data_times) -> float:
    """Test metric: MAE of the average first three spike times."""
    return float(np.abs(np.asarray(model_times).mean(0) - np.asarray(data_times).mean(0)).mean())


# ------------------------------------------------------------------------------------------------
def make_data(seeds: int):
    """Per sigma and seed: 128 training and 128 held-out trajectories at c_true (n uses the first n)."""
    data = {}
    for si, sigma in enumerate(SIGMAS):
        p = SLIFParams(sigma=sigma)
        for s in range(seeds):
            tr, _ = sim(p, np.full(128, C_TRUE), 1_000_000 + 1000 * si + s)
            te, _ = sim(p, np.full(128, C_TRUE), 2_000_000 + 1000 * si + s)
            data[sigma, s] = (tr, te)
    return data


def floor(data, draws: int, mmd: bool = False):
    """Model expected signatures on the grid (CRN: the same 4,000 draws at every c), c_grid per seed
    and per extra data draw, the floor's spread and the true model's MAE; model test times at any c
    come from the same draws. With mmd: also each seed's argmin of the PDE-MMD^2 loss on GRID_MMD
    (N_MODEL trajectories in the model-data term, the first N_MODEL_PAIRS in the model-model term)."""
    out = {}
    for si, sigma in enumerate(SIGMAS):
        p = SLIFParams(sigma=sigma)
        crn = Draws.sample(p, N_MODEL, 1, torch.Generator().manual_seed(77 + si))
        E = np.stack([sig_feats(single_neuron_grad(p, c, crn)[0]).mean(0) for c in GRID])   # [G, 14]
        true_t = single_neuron_grad(p, C_TRUE, crn)[0]

        def c_grid(train_n):
            L = ((E - sig_feats(train_n).mean(0)) ** 2).mean(1)
            j = int(np.argmin(L))
            return float(GRID[j]), j in (0, len(GRID) - 1)

        extra_tr = [sim(p, np.full(128, C_TRUE), 3_000_000 + 1000 * si + k)[0] for k in range(draws)]
        extra_te = [sim(p, np.full(128, C_TRUE), 4_000_000 + 1000 * si + k)[0] for k in range(draws)]
        for n in NS:
            cg = np.array([c_grid(t[:n])[0] for t in extra_tr])
            out[sigma, n] = {
                "grid_rms": float(np.sqrt(np.mean((cg - C_TRUE) ** 2))),
                "grid_std": float(cg.std()), "grid_mean": float(cg.mean()),
                "mae_true": float(np.mean([mae(true_t, t[:n]) for t in extra_te])),
                "seed_c_grid": {}, "edge": 0}
            for (sg, s), (tr, te) in data.items():
                if sg == sigma:
                    cgs, edge = c_grid(tr[:n])
                    out[sigma, n]["seed_c_grid"][s] = cgs
                    out[sigma, n]["edge"] += int(edge)
        out[sigma, "crn"] = crn
        if mmd:                 # the PDE-MMD^2's own argmin on the grid, per seed and n (CRN as above)
            seeds = sorted(s for (sg, s) in data if sg == sigma)
            y = np.concatenate([marcus_paths(data[sigma, s][0], np.zeros((128, 3)), p.T, 3.0)[0] for s in seeds])
            A, Bm = [], []
            for c in GRID_MMD:
                x = marcus_paths(single_neuron_grad(p, c, crn)[0], np.zeros((N_MODEL, 3)), p.T, 3.0)[0]
                A.append(kernel_pair_mean(x[:N_MODEL_PAIRS]))
                Bm.append(kernel_means(x, y).reshape(len(seeds), 128))
            A, Bm = np.array(A), np.stack(Bm)                                   # [G], [G, seeds, 128]
            for n in NS:
                out[sigma, n]["seed_c_grid_mmd"], out[sigma, n]["edge_mmd"] = {}, 0
                for i, s in enumerate(seeds):
                    j = int(np.argmin(A - 2 * Bm[:, i, :n].mean(1)))
                    out[sigma, n]["seed_c_grid_mmd"][s] = float(GRID_MMD[j])
                    out[sigma, n]["edge_mmd"] += int(j in (0, len(GRID_MMD) - 1))
    return out


# ------------------------------------------------------------------------------------------------
class Runs:
    """All (sigma, n, seed) runs of one loss, flattened: run r owns the trajectories traj == r (in
    run order), all simulated in one call per optimizer step."""

    def __init__(self, seeds, ns=NS):
        self.keys = [(sg, n, s) for sg in SIGMAS for n in ns for s in range(seeds)]
        self.c = torch.full((len(self.keys),), C0, dtype=torch.float64, requires_grad=True)
        self.traj = np.concatenate([np.full(n, r) for r, (g, n, s) in enumerate(self.keys)])
        self.sigma = np.array([self.keys[r][0] for r in self.traj])
        self.n = np.array([k[1] for k in self.keys], dtype=np.float64)
        self.first = np.concatenate([[0], np.cumsum(self.n[:-1])]).astype(np.int64)


def sig_step_grad(runs, times, dtimes, feats_data):
    """d/dc_r of sum_r mean_j (E_r sig_j(model) - sig_j(data_r))^2, by the signature's forward tangent."""
    S, D = sig3_tangent(times, dtimes)
    mS = np.add.reduceat(S, runs.first, axis=0) / runs.n[:, None]    # trajectories sorted by run
    mD = np.add.reduceat(D, runs.first, axis=0) / runs.n[:, None]
    return (2.0 * (mS - feats_data) * mD).mean(1)


def train_exact(data, seeds, steps, loss_kind, ns=NS):
    """RMSprop on every (sigma, n, seed) run at once; per step one compiled simulation of all runs'
    n fresh trajectories with their exact d t / d c, and the loss's forward tangent."""
    runs = Runs(seeds, ns)
    opt = torch.optim.RMSprop([runs.c], lr=1e-3, alpha=0.7, momentum=0.3)
    hist = np.zeros((steps, len(runs.keys)))
    p = SLIFParams()
    if loss_kind == "sig":
        feats_data = np.stack([sig_feats(data[sg, s][0][:n]).mean(0) for sg, n, s in runs.keys])
    else:
        ys = [data[sg, s][0][:n] for sg, n, s in runs.keys]
        y_all = marcus_paths(np.concatenate(ys), np.zeros((sum(map(len, ys)), 3)), p.T, 3.0)[0]
        y_run = np.concatenate([np.full(len(y), r) for r, y in enumerate(ys)])
    for it in progress(range(steps), desc=loss_kind):
        c_traj = runs.c.detach().numpy()[runs.traj]
        times, dts = sim(p, c_traj, 10_000_000 + 7919 * it + (0 if loss_kind == "sig" else 1), runs.sigma)
        if loss_kind == "sig":
            grad = sig_step_grad(runs, times, dts, feats_data)
        else:
            x, dx = marcus_paths(times, dts, p.T, 3.0)
            grad = mmd_grad(x, dx, y_all, runs.traj, y_run, len(runs.keys))[1]
        opt.zero_grad()
        runs.c.grad = torch.from_numpy(grad)
        opt.step()
        hist[it] = runs.c.detach().numpy()
    return runs, hist


def train_sg(data, seeds, steps, lr=1e-3):
    """Baseline: neurohw's discrete-time sigmoid-escape LIF (train.model.lif_step, train.spike: reset
    to 0, surrogate gradient f') with the same signature loss on its raster's first three spike
    times (`neurohw.slif.discrete`; the compiled forward tangent equals autograd through the torch
    trainer's ops, tests/test_slif.py). Its fitted 'c' is bias / (mu1 dt); its threshold
    vth + ln(tau_s / dt) / beta makes the per-step escape match the SLIF hazard at small rates.
    All runs of both sigmas are one batch, as before (the batch's stop step is shared)."""
    runs = Runs(seeds)
    opt = torch.optim.RMSprop([runs.c], lr=lr, alpha=0.7, momentum=0.3)
    hist = np.zeros((steps, len(runs.keys)))
    p0 = SLIFParams()
    feats_data = np.stack([sig_feats(data[sg, s][0][:n]).mean(0) for sg, n, s in runs.keys])
    for it in progress(range(steps), desc="sg"):
        c_traj = runs.c.detach().numpy()[runs.traj]
        t, dts = discrete_grad(p0, c_traj, runs.sigma, seed=20_000_000 + 7919 * it)
        grad = sig_step_grad(runs, t, dts, feats_data)
        opt.zero_grad()
        runs.c.grad = torch.from_numpy(grad)
        opt.step()
        hist[it] = runs.c.detach().numpy()
    return runs, hist


# ------------------------------------------------------------------------------------------------
def summarize(name, runs, hist, data, fl, lines, results, sg_model=False):
    c_hat = hist[-100:].mean(0)           # the mean of the last 100 iterates
    for sg in SIGMAS:
        p = SLIFParams(sigma=sg)
        crn = fl[sg, "crn"]
        for n in NS:
            rs = [r for r, k in enumerate(runs.keys) if k[:2] == (sg, n)]
            if not rs:
                continue
            ch = c_hat[rs]
            maes = []
            for r in rs:
                s = runs.keys[r][2]
                mt = single_neuron_grad(p, ch[rs.index(r)], crn)[0]
                maes.append(mae(mt, data[sg, s][1][:n]))
            f = fl[sg, n]
            key = "seed_c_grid_mmd" if name == "mmd" else "seed_c_grid"
            cg = np.array([f[key][runs.keys[r][2]] for r in rs]) if key in f else None
            rms = float(np.sqrt(np.mean((ch - C_TRUE) ** 2)))
            row = {"loss": name, "sigma": sg, "n": n, "c_hat_mean": float(ch.mean()),
                   "c_hat_min": float(ch.min()), "c_hat_max": float(ch.max()),
                   "rel_err_pct": float(100 * abs(ch.mean() - C_TRUE) / C_TRUE), "rms": rms,
                   "floor_rms": f["grid_rms"], "rms_ratio": rms / f["grid_rms"],
                   "max_dev_grid": float(np.abs(ch - cg).max()) if name != "sg" and cg is not None else None,
                   "mae": float(np.mean(maes)), "mae_floor": f["mae_true"],
                   "mae_ratio": float(np.mean(maes)) / f["mae_true"], "c_hat": ch.tolist()}
            results.append(row)
            dev = f"  max|c-c_grid| {row['max_dev_grid']:.4f}" if row["max_dev_grid"] is not None else ""
            line = (f"{name:4s} sigma={sg:<4} n={n:<4} c_hat {ch.mean():.4f} [{ch.min():.4f},{ch.max():.4f}]"
                    f"  rel.err {row['rel_err_pct']:.2f}%  RMS {rms:.4f} / floor {f['grid_rms']:.4f}"
                    f" = {row['rms_ratio']:.2f}x{dev}  MAE {row['mae']:.4f} / floor {f['mae_true']:.4f}"
                    f" = {row['mae_ratio']:.2f}x")
            print(line, flush=True)
            lines.append(line)


def plots(all_hist, results, fl, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    for name, (runs, hist) in all_hist.items():
        for sg, ls in zip(SIGMAS, ("-", "--")):
            rs = [r for r, k in enumerate(runs.keys) if k[:2] == (sg, max(k[1] for k in runs.keys))]
            ax.plot(hist[:, rs].mean(1), ls, label=f"{name} sigma={sg} n={runs.keys[rs[0]][1]}")
    ax.axhline(C_TRUE, color="k", lw=0.8)
    ax.set_xlabel("RMSprop step"); ax.set_ylabel("c (mean over seeds)"); ax.legend(fontsize=7)
    ax.set_title("estimates during training")
    ax = axes[1]
    for sg, mk in zip(SIGMAS, ("o", "s")):
        xs = np.array(NS, dtype=float)
        band = np.array([fl[sg, n]["grid_rms"] for n in NS])
        ax.fill_between(xs, C_TRUE - 1.5 * band, C_TRUE + 1.5 * band, alpha=0.12)
        for name, off in (("sig", 0.97), ("mmd", 1.0), ("sg", 1.03)):
            rows = [r for r in results if r["loss"] == name and r["sigma"] == sg]
            if rows:
                for r in rows:
                    ax.plot([r["n"] * off * (1.01 if sg == 0.5 else 1)] * len(r["c_hat"]), r["c_hat"], mk,
                            ms=3, alpha=0.6, label=f"{name} sigma={sg}" if r["n"] == 16 else None)
    ax.axhline(C_TRUE, color="k", lw=0.8)
    ax.set_xscale("log", base=2); ax.set_xlabel("n (data trajectories)"); ax.set_ylabel("c_hat per seed")
    ax.set_title("c_hat per seed; band: 1.5 +- 1.5x floor RMS"); ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def gradchecks(points: int, net_T: float):
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    lines = []
    for sg in (0.0, 0.5):
        r = check.single_neuron(sg, points=points, seed=11)
        lines.append(f"gradcheck single sigma={sg}: {points} points, max rel.err spike times "
                     f"{r.times_rel.max():.2e}, loss {r.loss_rel.max():.2e}")
        r = check.network(sg, points=points, per_point=1, seed=11, T=net_T)
        lines.append(f"gradcheck 4-16-2 sigma={sg} (T={net_T}): {points} points, max rel.err spike "
                     f"times {r.times_rel.max():.2e}, loss {r.loss_rel.max():.2e}")
    return lines, time.perf_counter() - t0, time.process_time()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--losses", nargs="+", default=["sig", "mmd", "sg"], choices=["sig", "mmd", "sg"])
    ap.add_argument("--sg-steps", type=int, default=None, help="steps of the baseline (default --steps)")
    ap.add_argument("--sg-lr", type=float, default=1e-3, help="RMSprop lr of the baseline")
    ap.add_argument("--mmd-seeds", type=int, default=None, help="seeds of the MMD runs (default --seeds)")
    ap.add_argument("--mmd-ns", type=int, nargs="+", default=list(NS), help="n of the MMD runs")
    ap.add_argument("--grad-points", type=int, default=20)
    ap.add_argument("--net-T", type=float, default=2.0)
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    lines, results, info = [], [], {"args": vars(a)}
    t0 = time.perf_counter()
    pool = None
    if a.grad_points:      # torch, one thread: in a second process, beside the compiled runs
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
        gc_future = pool.submit(gradchecks, a.grad_points, a.net_T)
    data = make_data(a.seeds)
    t1, c1 = time.perf_counter(), time.process_time()
    fl = floor(data, a.draws, mmd="mmd" in a.losses)
    info["t_floor_s"], info["cpu_floor_s"] = time.perf_counter() - t1, time.process_time() - c1
    for sg in SIGMAS:
        for n in NS:
            f = fl[sg, n]
            line = (f"floor sigma={sg:<4} n={n:<4} c_grid over {a.draws} draws: mean {f['grid_mean']:.4f} "
                    f"RMS about 1.5 {f['grid_rms']:.4f} (std {f['grid_std']:.4f}); true-model MAE "
                    f"{f['mae_true']:.4f}; seeds at grid edge {f['edge']}" + (
                        f"; PDE-MMD c_grid of the seeds: mean {np.mean(list(f['seed_c_grid_mmd'].values())):.4f}, "
                        f"at grid edge {f['edge_mmd']}" if "seed_c_grid_mmd" in f else ""))
            print(line, flush=True); lines.append(line)
    all_hist = {}
    for name in a.losses:
        t1, c1 = time.perf_counter(), time.process_time()
        if name == "sg":
            runs, hist = train_sg(data, a.seeds, a.sg_steps or a.steps, a.sg_lr)
        else:
            seeds = a.mmd_seeds if (name == "mmd" and a.mmd_seeds) else a.seeds
            runs, hist = train_exact(data, seeds, a.steps, name, a.mmd_ns if name == "mmd" else NS)
        info[f"t_{name}_s"], info[f"cpu_{name}_s"] = time.perf_counter() - t1, time.process_time() - c1
        all_hist[name] = (runs, hist)
        summarize(name, runs, hist, data, fl, lines, results)
    if pool is not None:
        gc_lines, info["t_gradcheck_s"], info["cpu_gradcheck_s"] = gc_future.result()
        lines[:0] = gc_lines
        print("\n".join(gc_lines))
        pool.shutdown()
    info["t_total_s"] = time.perf_counter() - t0
    info["cpu_total_s"] = time.process_time() + info.get("cpu_gradcheck_s", 0.0)
    info["numba_threads"] = get_num_threads()
    lines.append("wall times (s): " + ", ".join(f"{k[2:]} {v:.0f}" for k, v in info.items() if k.startswith("t_")))
    lines.append(f"CPU times (s, all threads, {info['numba_threads']} Numba threads; the gradient checks in a "
                 "second process): " + ", ".join(f"{k[4:]} {v:.0f}" for k, v in info.items() if k.startswith("cpu_")))
    lines.append(f"load average at the end (1, 5, 15 min): {os.getloadavg()}")
    print("\n".join(lines[-3:]))
    OUT.mkdir(exist_ok=True)
    (OUT / f"slif_results{a.tag}.txt").write_text("\n".join(lines) + "\n")
    write_json(OUT / f"slif_results{a.tag}.json", {"info": info, "rows": results,
               "floor": {f"{k[0]}_{k[1]}": {kk: vv for kk, vv in v.items()} for k, v in fl.items() if k[1] != "crn"}})
    Path("docs/img").mkdir(parents=True, exist_ok=True)
    plots(all_hist, results, fl, f"docs/img/slif_estimates{a.tag}.png")


if __name__ == "__main__":
    main()
