"""Accuracy benchmark: each reference config trained, quantized (+QAT), emulated and run in
Lava for 3 seeds; prints mean +- std of float / QAT / emulator / Lava, the cross-evaluations
(stochastic-trained run deterministically, deterministic-trained run with noise) and the
spike-train matching reduction. `make bench-accuracy`: every (config, seed) is a trial of
`neurohw.sweep` on Dask, all in flight at once, one thread each (--sequential: the old loop,
one run after another with 2 torch threads, for the speed comparison).

    python benchmarks/accuracy.py [--seeds 0 1 2] [--configs yinyang digits ...] [--out runs/bench]
                                  [--workers N] [--address tcp://...] [--sequential]
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from neurohw import emu, tasks
from neurohw._io import write_json
from neurohw.network import load_bundle
from neurohw.config import load_config, parse_config
from neurohw.pipeline import run_pipeline
from neurohw.rundir import Run, load_data, load_float
from neurohw.sweep import parse_sweep, run_sweeps
from neurohw.train import Escape

CONFIGS = ["yinyang", "yinyang_stochastic", "digits", "spike_train", "events_conv", "delays", "nodelays"]


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


def noise_averaged(run, k: int = 5) -> dict:
    """Stochastic nets: float and emulator accuracy averaged over k noise realizations (float:
    generator seeds; emulator: other sample ids in the noise hash), so that the comparison of
    float and chip is not one draw against another."""
    cfg = run.cfg
    if not cfg.neuron.stochastic or cfg.n_classes is None:
        return {}
    d = load_data(run)
    inet = load_bundle(run.dir / "bundle")
    n = len(d.x_test)
    emu_acc = [tasks.score_int(cfg, emu.run(inet, d.x_test, probes=True, sample_ids=np.arange(n) + j * n), d.y_test)
               for j in range(k)]
    net = load_float(run)
    float_acc = [tasks.score_float(cfg, net, d.x_test, d.y_test, seed=1000 + j) for j in range(k)]
    return dict(float_avg=float(np.mean(float_acc)), emulator_avg=float(np.mean(emu_acc)))


def extras(run_dir: str, beta: float) -> dict:
    """What the table needs beyond the run's report (on the worker that ran the trial)."""
    torch.set_num_threads(1)
    run_dir = Path(run_dir)
    run = Run(parse_config(json.loads((run_dir / "config.json").read_text()), source=str(run_dir)), run_dir,
              progress=False)
    tm = json.loads((run_dir / "train_metrics.json").read_text())
    return dict(cross=cross_eval(run, beta), init=tm.get("init"), train_s=tm.get("seconds"), **noise_averaged(run))


def row_of(run, beta: float) -> dict:
    rep = json.loads((run.dir / "report.json").read_text())
    return dict(rep["scores"], parity=rep["parity"]["ok"], **extras(str(run.dir), beta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--lava-samples", type=int, default=200)
    ap.add_argument("--noise-beta", type=float, default=None,
                    help="escape beta for running deterministic nets with noise (default: configs/yinyang_stochastic.yaml's)")
    ap.add_argument("--workers", type=int, default=None, help="local Dask workers (default: one per core)")
    ap.add_argument("--address", default=None, help="an existing Dask scheduler instead of a local cluster")
    ap.add_argument("--sequential", action="store_true", help="the old loop: one run after another, 2 torch threads")
    args = ap.parse_args()
    beta = args.noise_beta or load_config("configs/yinyang_stochastic.yaml").neuron.beta
    table = {}
    t0 = time.perf_counter()
    if args.sequential:
        torch.set_num_threads(2)
        for name in args.configs:
            rows = []
            for seed in args.seeds:
                base = load_config(Path("configs") / f"{name}.yaml").to_dict()
                base["seed"] = seed
                base["deploy"]["lava_samples"] = args.lava_samples
                cfg = parse_config(base, source=f"configs/{name}.yaml")
                run = run_pipeline(cfg, Path(args.out) / f"{name}-s{seed}", progress=False)
                rows.append(row_of(run, beta))
            table[name] = rows
    else:
        sweeps = [parse_sweep({"name": name, "base": f"configs/{name}.yaml", "out_dir": str(Path(args.out) / name),
                               "set": {"deploy.lava_samples": args.lava_samples}, "grid": {"seed": args.seeds}},
                              source=f"bench-accuracy ({name})", address=args.address, workers=args.workers)
                  for name in args.configs]
        tables = run_sweeps(sweeps, progress=True, post=functools.partial(extras, beta=beta))
        keep = ("float", "qat", "emulator", "lava", "emulator_on_lava_samples", "parity", "cross", "init",
                "train_s", "float_avg", "emulator_avg")
        for name, rows in zip(args.configs, tables):
            bad = [r for r in rows if r["status"] == "failed"]
            if bad:
                raise SystemExit(f"bench-accuracy: {name} {bad[0]['trial']} failed: {bad[0]['error']}")
            table[name] = [{k: r[k] for k in keep if k in r} for r in rows]
    for name, rows in table.items():
        for seed, row in zip(args.seeds, rows):
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                      if isinstance(v, float)), flush=True)
    wall = time.perf_counter() - t0
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
    for name, rows in table.items():
        if rows and "float_avg" in rows[0]:
            f, e = (100 * np.array([r[k] for r in rows]) for k in ("float_avg", "emulator_avg"))
            print(f"\n{name}, averaged over 5 noise realizations per seed: float {f.mean():.2f} ± {f.std():.2f}, "
                  f"emulator {e.mean():.2f} ± {e.std():.2f}, emulator - float {np.mean(e - f):+.2f} pp")
    if "spike_train" in table:
        red = [r["init"] / r["float"] for r in table["spike_train"]]
        print(f"\nspike-train matching: van Rossum distance reduced {np.mean(red):.1f}x "
              f"(min {np.min(red):.1f}x) from initialization (float); emulator/float distance "
              f"{np.mean([r['emulator'] / r['float'] for r in table['spike_train']]):.2f}")
    print(f"\nwall time {wall:.0f} s ({'sequential, 2 torch threads' if args.sequential else 'Dask sweep engine'})")
    path = Path(args.out) / "accuracy.json"          # merged: a run of some configs keeps the others
    old = json.loads(path.read_text()) if path.exists() else {}
    write_json(path, {**old, **table})


if __name__ == "__main__":
    main()
