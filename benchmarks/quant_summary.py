"""Issue 15's per-seed study: does the chip (emulator) stay within 0.5 pp of the float network on
every seed? Runs (--run) or reads the seed sweeps benchmarks/sweeps/seeds_*.yaml, and prints per
config and seed: float and emulator test accuracy, their difference, the test-set disagreement of
their decisions (|Δacc| <= disagreement, whatever the labels), and the validation numbers that
chose the deployed network (float, post-training quantization, deployed QAT epoch, by agreement
with the float net's decisions). Stochastic nets also get the accuracies averaged over 5 noise
realizations and the disagreement of two float noise draws (the floor no quantizer can beat).

    python benchmarks/quant_summary.py --run benchmarks/sweeps/seeds_*.yaml      # one Dask engine
    python benchmarks/quant_summary.py runs/sweeps/seeds_yinyang [...]            # read only
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def extras(run_dir: str) -> dict:
    """Test-set decisions of the float net against the emulator's (on the worker after the trial)."""
    import torch
    torch.set_num_threads(1)
    from neurohw import tasks
    from neurohw.config import parse_config
    from neurohw.pipeline import decisions
    from neurohw.rundir import Run, load_data, load_float
    run_dir = Path(run_dir)
    cfg = parse_config(json.loads((run_dir / "config.json").read_text()), source=str(run_dir))
    run = Run(cfg, run_dir, progress=False)
    d = load_data(run)
    net = load_float(run)
    fl = decisions(cfg, net, d.x_test)
    em = np.load(run_dir / "emulate.npz")["pred"]
    out = dict(n_test=int(len(d.y_test)), test_disagree=int((fl != em).sum()))
    if cfg.neuron.stochastic:
        sys.path.insert(0, str(Path(__file__).resolve().parent))       # on a worker, too
        from accuracy import noise_averaged
        other = decisions(cfg, net, d.x_test, seed=777)      # a second noise draw of the float net
        out.update(noise_averaged(run), float_float_disagree=int((fl != other).sum()),
                   float_other_draw=float((other == d.y_test).mean()))
    tm = json.loads((run_dir / "train_metrics.json").read_text())
    out["train_seconds"] = tm.get("seconds")
    return out


def load_rows(sweep_dir: Path) -> list[dict]:
    from neurohw.sweep import trial_row
    rows = []
    for t in sorted((sweep_dir / "trials").glob("*/report.json")):
        cfg = json.loads((t.parent / "config.json").read_text())
        row = trial_row(t.parent) | {"seed": cfg["seed"], "dir": str(t.parent)}
        if (t.parent / "post.json").exists():
            row |= json.loads((t.parent / "post.json").read_text())
        rows.append(row)
    return sorted(rows, key=lambda r: r["seed"])


def summary(name: str, rows: list[dict]) -> str:
    pc = lambda v: "–" if v is None else f"{100 * v:.2f}"  # noqa: E731
    stoch = any("float_avg" in r for r in rows)
    n = rows[0].get("n_test") if rows else None
    head = ("| seed | float | emulator | Δ pp | test disagree | val float | val PTQ (agree) | val deployed (agree) | epoch |"
            + (" float 5-draw | emu 5-draw | Δ 5-draw | float vs float draw |" if stoch else ""))
    out = [f"### {name} (test accuracy %, {n} test samples: 0.5 pp = {0.005 * n:.1f} samples)" if n else f"### {name}",
           "", head, "|---" * (head.count("|") - 1) + "|"]
    deltas, dis, d5 = [], [], []
    for r in rows:
        dlt = 100 * (r["emulator"] - r["float"])
        deltas.append(dlt)
        dis.append(r.get("test_disagree"))
        cells = [str(r["seed"]), pc(r["float"]), pc(r["emulator"]), f"{dlt:+.2f}",
                 f"{r.get('test_disagree', '–')} ({100 * r['test_disagree'] / r['n_test']:.1f} %)" if "test_disagree" in r else "–",
                 pc(r.get("val_float")),
                 f"{pc(r.get('val_ptq'))} ({pc(r.get('val_ptq_agreement'))})",
                 f"{pc(r.get('val_deployed'))} ({pc(r.get('val_deployed_agreement'))})",
                 str(r.get("val_chosen_epoch", "–"))]
        if stoch:
            x = 100 * (r["emulator_avg"] - r["float_avg"])
            d5.append(x)
            cells += [pc(r["float_avg"]), pc(r["emulator_avg"]), f"{x:+.2f}",
                      f"{r['float_float_disagree']} ({pc(r['float_other_draw'])})"]
        out.append("| " + " | ".join(cells) + " |")
    missing = [s for s in range(8) if s not in {r["seed"] for r in rows}]
    for s in missing:                    # the study is seeds 0-7: a seed not (yet) run is listed as such
        out.append(f"| {s} | not run | " + " | ".join(["–"] * (head.count("|") - 3)) + " |")
    if rows:
        f = [100 * r["float"] for r in rows]
        out.append(f"\n{len(rows)} seeds: float mean {np.mean(f):.2f} (min {min(f):.2f}); emulator − float: mean "
                   f"{np.mean(deltas):+.2f} pp, min {min(deltas):+.2f}, max {max(deltas):+.2f}, |Δ| <= 0.5 pp on "
                   f"{sum(abs(x) <= 0.5 + 1e-9 for x in deltas)}/{len(deltas)}")
        if all(x is not None for x in dis):
            out.append(f"test disagreement float vs emulator: mean {np.mean(dis):.1f} samples, max {max(dis)}")
        if d5:
            out.append(f"averaged over 5 noise draws: emulator − float mean {np.mean(d5):+.2f} pp, min "
                       f"{min(d5):+.2f}, max {max(d5):+.2f}")
        ch = [r.get("val_chosen_epoch") for r in rows]
        out.append(f"deployed QAT epoch (0 = none) per seed: {ch}")
        q = [(r, json.loads((Path(r["dir"]) / "quant_report.json").read_text())["validation"]) for r in rows
             if r.get("dir") and "val_float" in r]
        q = [(r, v) for r, v in q if "agreement" in v]
        if q:      # the rule that chose: validation only (accuracy-chosen epoch vs agreement-chosen epoch)
            acc_k = [int(np.argmax([v["ptq"]] + v["qat_epochs"])) for _, v in q]
            gap = lambda v, k: 100 * abs(([v["ptq"]] + v["qat_epochs"])[k] - v["float"])  # noqa: E731
            dis = lambda v, k: 100 * (1 - v["agreement"][k])  # noqa: E731
            out.append(f"validation, epoch by val accuracy {acc_k}: |deployed − float| mean "
                       f"{np.mean([gap(v, k) for (_, v), k in zip(q, acc_k)]):.2f} pp, max "
                       f"{max(gap(v, k) for (_, v), k in zip(q, acc_k)):.2f}, disagreement mean "
                       f"{np.mean([dis(v, k) for (_, v), k in zip(q, acc_k)]):.2f} %; by val agreement "
                       f"{[v['chosen_epoch'] for _, v in q]}: |deployed − float| mean "
                       f"{np.mean([gap(v, v['chosen_epoch']) for _, v in q]):.2f} pp, max "
                       f"{max(gap(v, v['chosen_epoch']) for _, v in q):.2f}, disagreement mean "
                       f"{np.mean([dis(v, v['chosen_epoch']) for _, v in q]):.2f} %")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="sweep YAMLs (with --run) or sweep output directories")
    ap.add_argument("--run", action="store_true", help="run the sweeps (one engine, all trials in flight)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.run:
        from neurohw.sweep import load_sweep, run_sweeps
        sweeps = [load_sweep(p, workers=args.workers) for p in args.paths]
        tables = run_sweeps(sweeps, progress=False, post=extras)
        for sw, table in zip(sweeps, tables):
            bad = [r for r in table if r["status"] == "failed"]
            for r in bad:
                print(f"{sw.name} {r['trial']} failed: {r.get('error')}", flush=True)
        dirs = [sw.out_dir for sw in sweeps]
        print(f"wall time {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        dirs = [Path(p) for p in args.paths]
    print("\n\n".join(summary(p.name, load_rows(p)) for p in dirs))


if __name__ == "__main__":
    main()
