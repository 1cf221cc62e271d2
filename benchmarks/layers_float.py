"""Float accuracy of the conv and delay configs, per seed, on the pipeline's own data: trains on
the training samples less `data.n_val`, reports validation accuracy (for choices) and, only with
--test, test accuracy. The variants in docs/layers.md come from this script (`make bench-layers`).

    python benchmarks/layers_float.py [--configs events_conv delays nodelays] [--seeds 0 1 2]
                                      [--set model.layers.0.delay_sigma=4 train.epochs=30 ...]
                                      [--val-recordings K] [--test]

--val-recordings K (event_digits only) also scores the validation digits recorded K more times
(new sensor draws, seeds 50 + k, as benchmarks/events_agreement.py): 203 * (1 + K) samples, so
the sensor draw of the one validation recording does not decide a choice.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import yaml

from neurohw import events, tasks
from neurohw.config import load_config, parse_config
from neurohw.train.init import fluctuation_init
from neurohw.train.loop import TrainConfig, evaluate, fit


def with_overrides(name: str, seed: int, sets: list[str]):
    """configs/<name>.yaml with seed and `dotted.key=yaml value` overrides (list items by index)."""
    d = load_config(f"configs/{name}.yaml").to_dict()
    d["seed"] = seed
    for item in sets:
        key, val = item.split("=", 1)
        *path, last = key.split(".")
        node = d
        for k in path:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[int(last) if isinstance(node, list) else last] = yaml.safe_load(val)
    for layer in d["model"].get("layers", []):
        if layer.get("kind") in ("conv", "pool"):
            layer.pop("n", None)                # derived from the map: follows changed channels
    return parse_config(d, source=f"configs/{name}.yaml")


def validation_recordings(cfg, d, k_extra: int):
    """The validation digits recorded 1 + k_extra times (the split's own recording first)."""
    from sklearn.model_selection import train_test_split
    from neurohw.data import digits
    dg = digits(0)
    _, va = train_test_split(np.arange(len(dg["y_train"])), test_size=0.15, stratify=dg["y_train"], random_state=0)
    if not np.array_equal(dg["y_train"][va], d.y_val):
        raise SystemExit("--val-recordings: the validation split is not the event-digits generator's (data.n_val = 203)")
    x = np.concatenate([d.x_val] + [events.event_digits(dg["x_train"][va], 50 + k, steps_per_saccade=cfg.data.steps // 3)
                                    for k in range(k_extra)])
    return x, np.tile(d.y_val, 1 + k_extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["events_conv", "delays", "nodelays"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. train.epochs=30")
    ap.add_argument("--val-recordings", type=int, default=0,
                    help="event_digits: also score the validation digits recorded this many more times")
    ap.add_argument("--test", action="store_true", help="also report test accuracy (final numbers only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.configs:
        for seed in args.seeds:
            cfg = with_overrides(name, seed, args.set)
            d = tasks.build_data(cfg)
            if d.x_val is None:
                raise SystemExit(f"configs/{name}.yaml: set data.n_val to hold out a validation split")
            torch.manual_seed(seed)
            net = tasks.build_model(cfg)
            fluctuation_init(net, d.x_train[:512], xi=cfg.train.init_xi, seed=seed)
            t0 = time.perf_counter()
            m = fit(net, dict(x_train=d.x_train, y_train=d.y_train, x_test=d.x_val, y_test=d.y_val),
                    tasks.loss_fn(cfg), tasks.predictor(cfg),
                    TrainConfig(epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, lr=cfg.train.lr,
                                clip=cfg.train.clip, seed=seed), progress=False)
            row = dict(config=name, seed=seed, set=args.set, validation=m["test_acc"][-1],
                       validation_curve=[round(a, 4) for a in m["test_acc"]],
                       neurons=sum(l.spec.n_out for l in net.layers), seconds=round(time.perf_counter() - t0, 1))
            if args.val_recordings:
                xv, yv = validation_recordings(cfg, d, args.val_recordings)
                row[f"validation_x{1 + args.val_recordings}"] = evaluate(net, xv, yv, tasks.predictor(cfg))
            if args.test:
                row["test"] = evaluate(net, d.x_test, d.y_test, tasks.predictor(cfg))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
