"""`neurohw gradcheck CONFIG|RUN`: the gradient audit of neurohw.grad on a configured network.

A config: the network as training starts (fluctuation-initialized, as the train stage does).
A run directory: its trained float network, and with --hw its hardware-exact network (quantized
plans) for the estimators' wall time there. Writes gradcheck.json, gradcheck.md and gradcheck.png
into the run directory (the run's report shows them from then on).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import tasks
from ._io import write_json, write_text
from .config import Config
from .grad.audit import AuditSettings, audit, plot, table
from .grad.estimators import ESTIMATORS, gradient


def load_net(cfg: Config, run_dir: Path, x_train: np.ndarray):
    """The run's trained float network, or a fresh one initialized as the train stage does."""
    from .train.init import fluctuation_init
    torch.manual_seed(cfg.seed)
    net = tasks.build_model(cfg)
    trained = (run_dir / "float_model.pt").exists()
    if trained:
        net.load_state_dict(torch.load(run_dir / "float_model.pt", weights_only=False))
    else:
        fluctuation_init(net, x_train[:512], xi=cfg.train.init_xi, seed=cfg.seed)
    return net, trained


def hw_timing(cfg: Config, net, plans, x, y, paths: int, reps: int = 2) -> dict:
    """Seconds per sampled path of each estimator on the hardware-exact net (best of reps)."""
    from .train.hw import HwExactNet
    hw = HwExactNet(net, plans)
    out = {}
    B = x.shape[0]
    for est in ESTIMATORS:
        best = float("inf")
        for r in range(reps):
            ids = [np.arange(B) + (r * paths + k) * B for k in range(paths)]
            t0 = time.perf_counter()
            gradient(hw, x, y, tasks.loss_fn(cfg), est, paths, ids=ids)
            best = min(best, time.perf_counter() - t0)
        out[est] = best / (paths * B)
    return out


def run_gradcheck(cfg: Config, run_dir: Path, settings: AuditSettings, hw: bool = False, progress=print) -> dict:
    if not cfg.neuron.stochastic:
        raise ValueError(f"gradcheck: {cfg.source}: neuron.stochastic = False; the estimators audit "
                         "stochastic networks (allowed: neuron.stochastic: true)")
    run_dir = Path(run_dir)
    data_file = run_dir / "data.npz"
    if data_file.exists():
        z = np.load(data_file)
        x_train, y_train = z["x_train"], z["y_train"]
    else:
        d = tasks.build_data(cfg)
        x_train, y_train = d.x_train, d.y_train
    torch.set_num_threads(1)
    net, trained = load_net(cfg, run_dir, x_train)
    rng = np.random.default_rng(settings.seed)
    idx = rng.choice(len(x_train), size=min(settings.batch, len(x_train)), replace=False)
    x = torch.as_tensor(x_train[idx], dtype=torch.float32)
    y = torch.as_tensor(y_train[idx])
    t0 = time.perf_counter()
    res = audit(net, x, y, tasks.loss_fn(cfg), settings, progress=progress)
    res.update(config=cfg.name, network="trained" if trained else "initialized", seconds=time.perf_counter() - t0)
    if hw and (run_dir / "plans.json").exists():
        from .rundir import Run, load_quantized
        qnet, plans = load_quantized(Run(cfg, run_dir, progress=False))
        res["hw_seconds_per_path"] = hw_timing(cfg, qnet, plans, x[:8], y[:8], paths=4)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "gradcheck.json", res)
    plot(res, run_dir / "gradcheck.png")
    write_text(run_dir / "gradcheck.md", markdown(res))
    return res


def markdown(res: dict) -> str:
    lines = [f"Gradient audit of {res.get('config', '?')} ({res.get('network', '?')} network), "
             f"{res.get('seconds', 0):.0f} s.", "", table(res), ""]
    hw = res.get("hw_seconds_per_path")
    if hw:
        lines += ["Hardware-exact net, µs per sampled path: " + ", ".join(f"{k} {1e6 * v:.0f}" for k, v in hw.items())
                  + ".", ""]
    lines += ["![gradient audit](gradcheck.png)", ""]
    return "\n".join(lines)


def settings_from_args(args) -> AuditSettings:
    s = AuditSettings()
    changes = {k: getattr(args, k) for k in ("batch", "paths", "reps", "directions", "fd_reps", "fd_paths", "h", "seed")
               if getattr(args, k, None) is not None}
    if getattr(args, "quick", False):
        changes = {**dict(batch=8, paths=8, reps=6, directions=3, fd_reps=8, fd_paths=4, path_grid=(2, 4, 8),
                          grid_reps=4), **changes}
    s = replace(s, **changes)
    for k in ("batch", "paths", "reps", "directions", "fd_reps", "fd_paths"):
        lo = 2 if k in ("paths", "reps", "fd_reps") else 1
        if getattr(s, k) < lo:
            raise ValueError(f"gradcheck: --{k.replace('_', '-')} = {getattr(s, k)} must be >= {lo}")
    if not 0 < s.h <= 1:
        raise ValueError(f"gradcheck: --h = {s.h} must be in (0, 1] (a fraction of each layer's parameter norm)")
    return s

