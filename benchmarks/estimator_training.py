"""Training with an unbiased gradient estimator against the surrogate, end to end.

Runs the whole pipeline (train, quantize + QAT, emulate, Lava, parity, report) of a config
(default configs/yinyang_mixed.yaml: estimator 'mixed', 4 paths) and of its twin trained with the
surrogate over the same number of paths (train.trials = paths), and prints accuracy (float, QAT,
emulator, Lava), parity, training time per epoch and the Fano factor side by side.
Run: .venv/bin/python benchmarks/estimator_training.py [CONFIG] [--out runs/estimators]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from neurohw.config import parse_config
from neurohw.pipeline import run_pipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default="configs/yinyang_mixed.yaml")
    ap.add_argument("--out", default="runs/estimators")
    ap.add_argument("--only", choices=("estimator", "surrogate"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw = yaml.safe_load(Path(args.config).read_text())
    paths = raw["train"].get("paths", 4)
    twin = {**raw, "name": raw["name"] + "_surrogate",
            "train": {**{k: v for k, v in raw["train"].items() if k not in ("estimator", "paths")}, "trials": paths}}
    rows = []
    for tag, d in (("estimator", raw), ("surrogate", twin)):
        if args.only and tag != args.only:
            continue
        cfg = parse_config(d, source=args.config, base_dir=Path(args.config).parent)
        run = run_pipeline(cfg, Path(args.out) / cfg.name, progress=True)
        rep = json.loads((run.dir / "report.json").read_text())
        tm = json.loads((run.dir / "train_metrics.json").read_text())
        rows.append((f"{cfg.train.estimator} ({paths} paths)", rep["scores"], rep["parity"]["ok"],
                     tm["seconds"] / max(cfg.train.epochs, 1), rep.get("fano")))
    print("| estimator | float | after QAT | emulator | Lava (200) | parity | s / epoch | Fano |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s, ok, spe, fano in rows:
        pct = lambda v: "–" if v is None else f"{100 * v:.2f}"  # noqa: E731
        print(f"| {name} | {pct(s['float'])} | {pct(s['qat'])} | {pct(s['emulator'])} | {pct(s.get('lava'))} | "
              f"{'ok' if ok else 'MISMATCH'} | {spe:.1f} | {fano} |")


if __name__ == "__main__":
    main()
