"""Where post-training quantization loses accuracy, on already trained float nets (cheap: no
training). Per run directory (trained with data.n_val > 0): float accuracy on train / val / test;
every layer quantized alone; then the hidden layer at each clip level (fraction of max |W|):
agreement of the quantized net's decisions with the float net's, and its accuracy.

    python benchmarks/quant_ptq.py runs/q/yinyang-s0 runs/q/yinyang-s1 ...
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from neurohw import quant, tasks
from neurohw.config import parse_config
from neurohw.rundir import Run, load_data, load_float
from neurohw.quant import core


def decisions(cfg, net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([tasks.predictor(cfg)(net(torch.as_tensor(x[i:i + 500], dtype=torch.float32),
                                                        generator=torch.Generator().manual_seed(0))).numpy()
                               for i in range(0, len(x), 500)])


def study(rd: Path) -> dict:
    cfg = parse_config(json.loads((rd / "config.json").read_text()))
    run = Run(cfg, rd, progress=False)
    d, net = load_data(run), load_float(run)
    sets = dict(train=(d.x_train, d.y_train), val=(d.x_val, d.y_val), test=(d.x_test, d.y_test))
    fd = {k: decisions(cfg, net, x) for k, (x, _) in sets.items()}
    acc = lambda p: {k: round(100 * float((p[k] == y).mean()), 2) for k, (_, y) in sets.items()}  # noqa: E731
    out = dict(seed=cfg.seed, float=acc(fd))
    mods = net.modules_in_order
    plans = quant.plan(net, d.x_train[:512], bits=cfg.quant.weight_bits, noise_seed=cfg.neuron.noise_seed)
    for i in range(len(mods)):
        for j, m in enumerate(mods):
            m.quant = plans[j] if j == i else None
        out[f"layer{i}_alone"] = acc({k: decisions(cfg, net, x) for k, (x, _) in sets.items()})
    quant.attach(net, plans)
    out["all_layers"] = acc({k: decisions(cfg, net, x) for k, (x, _) in sets.items()})
    peaks = core.calibrate(net, d.x_train[:512])
    rows = []
    for f in core.CLIP_FRACTIONS[6::2]:
        p0 = core.plan_layer(mods[0], *peaks[0], readout=False, bits=cfg.quant.weight_bits, clip=float(f))
        quant.attach(net, [p0] + plans[1:])
        qd = {k: decisions(cfg, net, x) for k, (x, _) in sets.items()}
        rows.append(dict(clip=round(float(f), 2), agree={k: round(100 * float((qd[k] == fd[k]).mean()), 2) for k in sets},
                         acc=acc(qd)))
    quant.attach(net, None)
    out["hidden_clip_levels"] = rows
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    for p in sys.argv[1:]:
        print(json.dumps(study(Path(p))), flush=True)
