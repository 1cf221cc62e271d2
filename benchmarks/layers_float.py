"""Float accuracy of the conv and delay configs, per seed, with the validation split kept apart:
trains on the train split, reports validation (for choices) and test accuracy. The numbers in
docs/layers.md come from this script (`make bench-layers`; minutes per seed on a free core).

    python benchmarks/layers_float.py [--configs events_conv delays nodelays] [--seeds 0 1 2] [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from neurohw import events, tasks
from neurohw.config import load_config
from neurohw.train.init import fluctuation_init
from neurohw.train.loop import TrainConfig, evaluate, fit


def splits(cfg):
    if cfg.data.task == "event_digits":
        return events.event_digits_splits(steps_per_saccade=cfg.data.steps // 3)
    return events.interval_splits(steps=cfg.data.steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["events_conv", "delays", "nodelays"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.configs:
        for seed in args.seeds:
            cfg = replace(load_config(f"configs/{name}.yaml"), seed=seed)
            sp = splits(cfg)
            torch.manual_seed(seed)
            net = tasks.build_model(cfg)
            fluctuation_init(net, sp["train"][0][:512], xi=cfg.train.init_xi, seed=seed)
            t0 = time.perf_counter()
            m = fit(net, dict(x_train=sp["train"][0], y_train=sp["train"][1],
                              x_test=sp["validation"][0], y_test=sp["validation"][1]),
                    tasks.loss_fn(cfg), tasks.predictor(cfg),
                    TrainConfig(epochs=args.epochs or cfg.train.epochs, batch_size=cfg.train.batch_size,
                                lr=cfg.train.lr, clip=cfg.train.clip, seed=seed), progress=False)
            test = evaluate(net, *sp["test"], tasks.predictor(cfg))
            print(json.dumps(dict(config=name, seed=seed, validation=m["test_acc"][-1], test=test,
                                  neurons=sum(l.spec.n_out for l in net.layers),
                                  seconds=round(time.perf_counter() - t0, 1))), flush=True)


if __name__ == "__main__":
    main()
