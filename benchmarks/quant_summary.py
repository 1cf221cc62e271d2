"""Per-seed table of a quantization study sweep (benchmarks/sweeps/quant_*.yaml): float and
emulator test accuracy for each clip rule, and the validation numbers that decided the rule and
the deployed QAT epoch. Reads the sweep's finished trial directories (so a partly run sweep
shows what it has); trains nothing.

    python benchmarks/quant_summary.py runs/sweeps/quant_yinyang [runs/sweeps/quant_digits ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RULES = ("weight_error", "train_accuracy")


def summary(sweep_dir: Path) -> str:
    from neurohw.sweep import trial_row
    by = {}
    for t in sorted((sweep_dir / "trials").glob("*/report.json")):
        cfg = json.loads((t.parent / "config.json").read_text())
        by[(cfg["seed"], cfg["quant"]["clip_select"])] = trial_row(t.parent)
    res = {"name": sweep_dir.name}
    seeds = sorted({s for s, _ in by})
    out = [f"### {res['name']} (test accuracy %, validation % in brackets; Δ = emulator − float, pp)", "",
           "| seed | float [val] | " + " | ".join(f"{r}: emulator [val PTQ → deployed, epoch] | Δ" for r in RULES) + " |",
           "|---" * (2 + 2 * len(RULES)) + "|"]
    deltas = {r: [] for r in RULES}
    for s in seeds:
        row = next(by[(s, r)] for r in RULES if (s, r) in by)
        cells = [f"{100 * row['float']:.2f} [{100 * row['val_float']:.1f}]" if "val_float" in row else f"{100 * row['float']:.2f}"]
        for rule in RULES:
            r = by.get((s, rule))
            if r is None:
                cells += ["not run", "–"]
                continue
            d = 100 * (r["emulator"] - r["float"])
            deltas[rule].append(d)
            cells += [f"{100 * r['emulator']:.2f} [{100 * r['val_ptq']:.1f} → {100 * r['val_deployed']:.1f}, "
                      f"{r['val_chosen_epoch']}]", f"{d:+.2f}"]
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    for rule, d in deltas.items():
        if d:
            out.append(f"\n{rule}: {len(d)} seeds, mean Δ {np.mean(d):+.2f} pp, worst {min(d):+.2f} pp, "
                       f"within 0.5 pp on {sum(x >= -0.5 for x in d)}/{len(d)}")
    vals = {rule: [100 * (by[(s, rule)]["val_deployed"] - by[(s, rule)]["val_float"]) for s in seeds
                   if (s, rule) in by and "val_float" in by[(s, rule)]] for rule in RULES}
    for rule, v in vals.items():
        if v:
            out.append(f"{rule}, validation: mean deployed − float {np.mean(v):+.2f} pp, worst {min(v):+.2f} pp")
    return "\n".join(out)


if __name__ == "__main__":
    print("\n\n".join(summary(Path(p)) for p in sys.argv[1:]))
