"""Training loop: Adam + cosine schedule, gradient clipping, per-epoch evaluation, atomic
checkpoints and exact resume (model, optimizer, schedule and random-generator states)."""
from __future__ import annotations

import sys

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .._io import save_torch, write_json
from . import losses
from .model import SpikingNet


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    clip: float = 1.0
    trials: int = 1            # sampled paths averaged per update (stochastic networks)
    seed: int = 0
    estimator: str = "surrogate"   # or 'score' / 'mixed' (neurohw.grad), sampling `paths` paths
    paths: int = 4


def evaluate(net: SpikingNet, x: np.ndarray, y: np.ndarray, predict: Callable, batch_size: int = 256,
             seed: int = 12345, rates: bool = False):
    """Accuracy with the network as it is (stochastic nets keep their noise on); with
    rates=True also each spiking layer's firing rate (spikes per neuron per step)."""
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    counts = None
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = net(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32), generator=gen,
                      sample_ids=np.arange(i, min(i + batch_size, len(x))))
            correct += int((predict(out) == torch.as_tensor(y[i:i + batch_size])).sum())
            c = [float(s.sum()) for s in out["spikes"]]
            counts = c if counts is None else [a + b for a, b in zip(counts, c)]
    acc = correct / len(x)
    if not rates:
        return acc
    T = x.shape[1]
    return acc, [c / (len(x) * T * s.shape[2]) for c, s in zip(counts, out["spikes"])]


def fano_factors(net: SpikingNet, x: np.ndarray, trials: int = 8, seed: int = 54321) -> list[float]:
    """Per spiking layer: the Fano factor of each neuron's spike count over repeated trials of
    the same inputs, averaged over neurons and samples that spiked (stochastic nets: ~1 for
    Poisson-like firing; deterministic nets: 0)."""
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        ids = np.arange(len(x))     # other on-chip noise draws per trial (hardware-exact nets)
        runs = [net(xt, generator=gen, sample_ids=ids + k * len(x))["spikes"] for k in range(trials)]
    out = []
    for layer in range(len(runs[0])):
        c = torch.stack([r[layer].sum(1) for r in runs])       # [trials, batch, n]
        ff = losses.fano_factor(c)
        ok = torch.isfinite(ff)
        out.append(float(ff[ok].mean()) if ok.any() else float("nan"))
    return out


def fit(net: SpikingNet, data: dict, loss_fn: Callable, predict: Callable | None, cfg: TrainConfig,
        out_dir=None, progress: bool = True, score: Callable | None = None,
        on_epoch: Callable | None = None) -> dict:
    """Train on data['x_train'], data['y_train'] (rasters [N, T, n_in], labels or targets),
    evaluating each epoch on data['x_test'], data['y_test']: accuracy with `predict` (metrics
    'test_acc', plus per-layer firing 'rates' and, at the end, 'fano' per layer), or any
    `score(net) -> float` ('test_score'). With out_dir, a checkpoint is written atomically after
    every epoch and training resumes from it; `on_epoch(epoch, metrics)` is called after each.
    Returns the metrics (also metrics.json)."""
    out = Path(out_dir) if out_dir else None
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    metrics = {"config": asdict(cfg), "loss": [], "test_acc" if score is None else "test_score": [], "rates": []}
    start = 0
    ckpt = out / "checkpoint.pt" if out else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        metrics, start = state["metrics"], state["epoch"]
    x, y = data["x_train"], data["y_train"]
    if start == 0:                    # the starting point, e.g. for "reduced 10x from init"
        metrics["init"] = (evaluate(net, data["x_test"], data["y_test"], predict) if score is None
                           else float(score(net)))
    for epoch in range(start, cfg.epochs):
        if hasattr(net, "anneal"):    # schedules that depend on the epoch (delay kernels)
            net.anneal(epoch / max(cfg.epochs, 1))
        order = torch.randperm(len(x), generator=gen).numpy()
        total, n = 0.0, 0
        bar = tqdm(range(0, len(x), cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and sys.stderr.isatty()), leave=False)
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            xb = torch.as_tensor(x[idx], dtype=torch.float32)
            yb = torch.as_tensor(y[idx])
            opt.zero_grad()
            # fresh on-chip noise draws each epoch and trial (hardware-exact nets)
            n_paths = cfg.trials if cfg.estimator == "surrogate" else cfg.paths
            ids = [idx + (epoch * n_paths + k) * len(x) for k in range(n_paths)]
            if cfg.estimator == "surrogate":
                loss = sum(loss_fn(net(xb, generator=gen, sample_ids=i), yb) for i in ids) / cfg.trials
                loss.backward()
            else:                       # the estimator hook: the one import of neurohw.grad here
                from ..grad import gradient, grads_to_params
                value, grads = gradient(net, xb, yb, loss_fn, cfg.estimator, cfg.paths, generator=gen, ids=ids)
                grads_to_params(net, grads)
                loss = torch.tensor(value)
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            opt.step()
            if hasattr(net, "constrain"):
                net.constrain()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f"{total / n:.4f}")
        sched.step()
        metrics["loss"].append(total / n)
        if score is None:
            acc, rates = evaluate(net, data["x_test"], data["y_test"], predict, rates=True)
            metrics["test_acc"].append(acc)
            metrics["rates"].append(rates)
            shown = f"test accuracy {acc:.4f}"
        else:
            metrics["test_score"].append(float(score(net)))
            shown = f"test score {metrics['test_score'][-1]:.4f}"
        if epoch + 1 == cfg.epochs and any(m.spec.spiking.stochastic for m in net.layers):
            metrics["fano"] = fano_factors(net, data["x_test"][:64])
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {total / n:.4f}, {shown}")
        if on_epoch is not None:          # before the checkpoint, so a resume never skips it
            on_epoch(epoch + 1, metrics)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            save_torch(ckpt, dict(model=net.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                                  gen=gen.get_state(), metrics=metrics, epoch=epoch + 1))
            write_json(out / "metrics.json", metrics)
    return metrics
