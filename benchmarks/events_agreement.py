"""Float vs chip on the event-digits validation split, recorded more than once: a pipeline run's
float network against its chip network after post-training quantization and after each QAT epoch
(the emulator), on the validation digits recorded 1 + K times (K more sensors, seeds 50 + k).
Accuracy, and the share of samples where chip and float decide differently. Validation only.

    python benchmarks/events_agreement.py RUN_DIR [K]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from neurohw import emu, events, quant, tasks
from neurohw.config import parse_config
from neurohw.data import digits
from neurohw.rundir import Run, load_data, load_float, load_plans


def main() -> None:
    torch.set_num_threads(1)
    rd, k_extra = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4
    cfg = parse_config(json.loads((rd / "config.json").read_text()))
    d = load_data(Run(cfg, rd, progress=False))
    dg = digits(0)
    _, va = train_test_split(np.arange(len(dg["y_train"])), test_size=0.15, stratify=dg["y_train"], random_state=0)
    if not np.array_equal(dg["y_train"][va], d.y_val):
        raise SystemExit(f"{rd}: its validation split is not the event-digits generator's (data.n_val = 203)")
    x = np.concatenate([d.x_val] + [events.event_digits(dg["x_train"][va], 50 + k, steps_per_saccade=cfg.data.steps // 3)
                                    for k in range(k_extra)])
    y = np.tile(d.y_val, 1 + k_extra)
    net, plans = load_float(Run(cfg, rd, progress=False)), load_plans(Run(cfg, rd, progress=False))
    with torch.no_grad():
        pf = tasks.predictor(cfg)(net(torch.as_tensor(x, dtype=torch.float32))).numpy()
    print(f"{rd.name}: {len(x)} validation recordings; float {np.mean(pf == y):.4f}")
    for k in range(1 + cfg.quant.qat_epochs):
        p = rd / "qat" / f"epoch{k}.pt"
        if k and not p.exists():
            continue
        if k:
            net.load_state_dict(torch.load(p, weights_only=False))
        pc = tasks.predict_int(cfg, emu.run(quant.to_int_network(net, plans), x, probes=True))
        print(f"  {'PTQ' if k == 0 else f'QAT epoch {k}'}: chip {np.mean(pc == y):.4f}, disagrees with float on "
              f"{np.mean(pc != pf):.4f}, chip - float {np.mean(pc == y) - np.mean(pf == y):+.4f}")


if __name__ == "__main__":
    main()
