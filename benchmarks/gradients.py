"""Gradient estimators against exact and finite-difference references (`make bench-gradients`).

1. Enumeration (neurohw.grad.tiny, the 18 settings of tests/test_gradients.py): per setting the
   surrogate's bias (cosine of its exact mean with the exact gradient of the expected loss, W1 and
   W2) beside the cosine of 'score' and 'mixed' at --paths paths (worst parameter of W1, b1, W2, b2).
2. The audit (neurohw.grad.audit) of configs/yinyang_stochastic.yaml's network as training starts
   (5 -> 400 stochastic -> 3 readout, 60 steps): per layer and estimator the cosine, relative error
   and z against central finite differences with common random numbers, variance against paths
   (log-log PNG), and microseconds per sampled path; the variance reduction of the baselines.
3. Wall time per sampled path of each estimator on the hardware-exact net of the same network.
One torch thread. Writes benchmarks/gradients_results.json and docs/img/gradients_audit.png.
Run: .venv/bin/python benchmarks/gradients.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neurohw import quant, tasks
from neurohw._io import write_json
from neurohw.config import load_config
from neurohw.grad import exact_gradient, gradient
from neurohw.grad.audit import AuditSettings, audit, plot, table
from neurohw.grad.tiny import NETS, REGIMES, tiny_problem
from neurohw.gradcheck import hw_timing
from neurohw.train.init import fluctuation_init

ROOT = Path(__file__).resolve().parent.parent


def cos(a, b) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def enumeration(paths: int) -> list[dict]:
    rows = []
    for net_kind in NETS:
        for regime in REGIMES:
            for seed in (0, 1, 2):
                net, x, y, loss = tiny_problem(net_kind, regime, seed)
                exact = exact_gradient(net, x, y, loss)
                sg = exact_gradient(net, x, y, loss, surrogate=True)
                row = dict(net=net_kind, regime=regime, seed=seed, sg_W1=cos(sg[0], exact[0]), sg_W2=cos(sg[2], exact[2]))
                for est in ("score", "mixed"):
                    t0 = time.perf_counter()
                    _, g = gradient(net, x, y, loss, est, paths, generator=torch.Generator().manual_seed(7))
                    row[f"{est}_seconds"] = time.perf_counter() - t0
                    row[est] = min(cos(a, b) for a, b in zip(g, exact))
                rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--paths", type=int, default=4000, help="paths per sample in the enumeration")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    out = {}

    t0 = time.perf_counter()
    rows = enumeration(args.paths)
    out["enumeration"] = dict(paths=args.paths, rows=rows, seconds=time.perf_counter() - t0)
    print(f"## Enumeration: cosine with the exact gradient of the expected loss ({args.paths} paths for score / mixed)\n")
    print("| net | regime | seed | surrogate (exact mean) W1 | W2 | score, worst param | mixed, worst param |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['regime']} | {r['seed']} | {r['sg_W1']:+.3f} | {r['sg_W2']:+.3f} | "
              f"{r['score']:+.3f} | {r['mixed']:+.3f} |")
    print(f"\nworst: surrogate {min(min(r['sg_W1'], r['sg_W2']) for r in rows):+.3f}, score "
          f"{min(r['score'] for r in rows):+.3f}, mixed {min(r['mixed'] for r in rows):+.3f} "
          f"({out['enumeration']['seconds']:.0f} s)\n", flush=True)

    cfg = load_config(ROOT / "configs/yinyang_stochastic.yaml")
    d = tasks.build_data(cfg)
    torch.manual_seed(cfg.seed)
    net = tasks.build_model(cfg)
    fluctuation_init(net, d.x_train[:512], xi=cfg.train.init_xi, seed=cfg.seed)
    s = AuditSettings(batch=32, paths=16, reps=10, directions=4, fd_reps=16, fd_paths=4, h=0.02,
                      path_grid=(2, 4, 8, 16, 32), grid_reps=5)
    if args.quick:
        s = replace(s, batch=8, reps=6, directions=2, fd_reps=8, path_grid=(2, 8), grid_reps=3)
    rng = np.random.default_rng(s.seed)
    idx = rng.choice(len(d.x_train), s.batch, replace=False)
    x = torch.as_tensor(d.x_train[idx], dtype=torch.float32)
    y = torch.as_tensor(d.y_train[idx])
    t0 = time.perf_counter()
    res = audit(net, x, y, tasks.loss_fn(cfg), s,
                progress=lambda m: print(f"  [{time.perf_counter() - t0:.0f} s] {m}", flush=True))
    res["seconds"] = time.perf_counter() - t0
    out["audit"] = res
    print(f"\n## Audit: yinyang_stochastic network (initialized), {res['seconds']:.0f} s\n")
    print(table(res))
    img = ROOT / "docs/img/gradients_audit.png"
    plot(res, img)

    plans = quant.plan(net, d.x_train[:256], bits=cfg.quant.weight_bits, noise_seed=cfg.neuron.noise_seed)
    hw = hw_timing(cfg, net, plans, x[:8], y[:8], paths=4, reps=1 if args.quick else 2)
    out["hw_seconds_per_path"] = hw
    print("\nHardware-exact net, µs per sampled path: " + ", ".join(f"{k} {1e6 * v:.0f}" for k, v in hw.items()))
    out["seconds"] = time.perf_counter() - t_all
    write_json(ROOT / "benchmarks/gradients_results.json", out)
    print(f"\nwrote benchmarks/gradients_results.json, {img.relative_to(ROOT)}; total {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
