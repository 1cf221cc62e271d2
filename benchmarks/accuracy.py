"""Accuracy benchmark: each reference config trained, quantized (+QAT), emulated and run in
Lava for 3 seeds; prints mean +- std of float / QAT / emulator / Lava, the cross-evaluations
(stochastic-trained run deterministically, deterministic-trained run with noise) and the
spike-train matching reduction. `make bench-accuracy` (about 20-30 minutes on 2 cores).

    python benchmarks/accuracy.py [--seeds 0 1 2] [--configs yinyang digits ...] [--out runs/bench]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from neurohw import tasks
from neurohw.config import load_config, parse_config
from neurohw.pipeline import load_data, load_float, run_pipeline
from neurohw.train import Escape

CONFIGS = ["yinyang", "yinyang_stochastic", "digits", "spike_train"]


def cross_eval(run, beta: float) -> float | None:
    """The float network evaluated with its noise flipped: off for a stochastic net; on for a
    deterministic one, as sigmoid escape of the given beta (the stochastic config's)."""
    cfg = run.cfg
    if cfg.n_classes is None:
        return None
    net = load_float(run)
    for m in net.layers:
        sp = m.spec.spiking
        flipped = dataclasses.replace(sp, stochastic=not sp.stochastic)
        if flipped.stochastic:
            flipped = dataclasses.replace(flipped, escape=Escape("sigmoid", beta))
        m.spec = dataclasses.replace(m.spec, spiking=flipped)
    d = load_data(run)
    return tasks.score_float(cfg, net, d.x_test, d.y_test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--lava-samples", type=int, default=200)
    ap.add_argument("--noise-beta", type=float, default=None,
                    help="escape beta for running deterministic nets with noise (default: configs/yinyang_stochastic.yaml's)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    beta = args.noise_beta or load_config("configs/yinyang_stochastic.yaml").neuron.beta
    table = {}
    for name in args.configs:
        rows = []
        for seed in args.seeds:
            base = load_config(Path("configs") / f"{name}.yaml").to_dict()
            base["seed"] = seed
            base["deploy"]["lava_samples"] = args.lava_samples
            cfg = parse_config(base, source=f"configs/{name}.yaml")
            run = run_pipeline(cfg, Path(args.out) / f"{name}-s{seed}", progress=False)
            rep = json.loads((run.dir / "report.json").read_text())
            tm = json.loads((run.dir / "train_metrics.json").read_text())
            rows.append(dict(rep["scores"], cross=cross_eval(run, beta), init=tm.get("init"), parity=rep["parity"]["ok"],
                             train_s=tm.get("seconds")))
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()
                                                      if isinstance(v, float)), flush=True)
        table[name] = rows
    print()
    print(f"cross-eval: stochastic nets run without noise; deterministic nets with sigmoid escape, beta {beta}")
    print("| config | float | after QAT | emulator | emulator (Lava samples) | Lava | cross-eval | parity |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in table.items():
        def ms(k, scale=100.0):
            v = [r[k] for r in rows if r.get(k) is not None]
            return f"{scale * np.mean(v):.2f} ± {scale * np.std(v):.2f}" if v else "–"
        sc = 100.0 if name != "spike_train" else 1.0
        print(f"| {name} | {ms('float', sc)} | {ms('qat', sc)} | {ms('emulator', sc)} | "
              f"{ms('emulator_on_lava_samples', sc)} | {ms('lava', sc)} | {ms('cross', sc)} | "
              f"{all(r['parity'] for r in rows)} |")
    if "spike_train" in table:
        red = [r["init"] / r["float"] for r in table["spike_train"]]
        print(f"\nspike-train matching: van Rossum distance reduced {np.mean(red):.1f}x "
              f"(min {np.min(red):.1f}x) from initialization (float); emulator/float distance "
              f"{np.mean([r['emulator'] / r['float'] for r in table['spike_train']]):.2f}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "accuracy.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
