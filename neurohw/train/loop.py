"""Training loop: Adam + cosine schedule, gradient clipping, per-epoch evaluation, atomic
checkpoints and exact resume (model, optimizer, schedule and random-generator states)."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .model import SpikingNet


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    clip: float = 1.0
    trials: int = 1            # sampled paths averaged per update (stochastic networks)
    seed: int = 0


def _atomic_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def evaluate(net: SpikingNet, x: np.ndarray, y: np.ndarray, predict: Callable, batch_size: int = 256,
             seed: int = 12345) -> float:
    """Accuracy with the network as it is (stochastic nets keep their noise on)."""
    gen = torch.Generator().manual_seed(seed)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = net(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32), generator=gen)
            correct += int((predict(out) == torch.as_tensor(y[i:i + batch_size])).sum())
    return correct / len(x)


def fit(net: SpikingNet, data: dict, loss_fn: Callable, predict: Callable, cfg: TrainConfig,
        out_dir=None, progress: bool = True) -> dict:
    """Train on data['x_train'], data['y_train'] (rasters [N, T, n_in], labels), evaluating on
    data['x_test'], data['y_test'] each epoch. With out_dir, a checkpoint is written atomically
    after every epoch and training resumes from it. Returns the metrics (also metrics.json)."""
    out = Path(out_dir) if out_dir else None
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    metrics = {"config": asdict(cfg), "loss": [], "test_acc": []}
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
    for epoch in range(start, cfg.epochs):
        order = torch.randperm(len(x), generator=gen).numpy()
        total, n = 0.0, 0
        bar = tqdm(range(0, len(x), cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            xb = torch.as_tensor(x[idx], dtype=torch.float32)
            yb = torch.as_tensor(y[idx])
            opt.zero_grad()
            loss = sum(loss_fn(net(xb, generator=gen), yb) for _ in range(cfg.trials)) / cfg.trials
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            opt.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.set_postfix(loss=f"{total / n:.4f}")
        sched.step()
        metrics["loss"].append(total / n)
        metrics["test_acc"].append(evaluate(net, data["x_test"], data["y_test"], predict))
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {total / n:.4f}, test accuracy {metrics['test_acc'][-1]:.4f}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            _atomic_save(dict(model=net.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(),
                              gen=gen.get_state(), metrics=metrics, epoch=epoch + 1), ckpt)
            tmp = out / ".metrics.json.tmp"
            tmp.write_text(json.dumps(metrics, indent=1))
            os.replace(tmp, out / "metrics.json")
    return metrics
