"""Trainer speed: one training epoch of neurohw's SpikingNet against the same network in snnTorch.

Two tasks, both deterministic spiking with the SuperSpike surrogate 1 / (10 |x| + 1)^2
(snnTorch: `surrogate.fast_sigmoid(slope=10)`, the same function):
  yin_yang  5 latency inputs (60 steps, t_max 50, as configs/yinyang.yaml) -> 120 LIF -> 3 readout,
            cross-entropy of the readout membrane's max over time; 5000 samples.
  rate      700 Bernoulli inputs (rate 0.05, 100 steps) -> 256 LIF -> 20 LIF,
            cross-entropy of the output spike counts; 1024 random samples.
An epoch is, for every batch of 64: zero_grad, forward, loss, backward, gradient clipping
(1.0, as `neurohw.train.loop.fit`), Adam step. snnTorch uses `snn.Synaptic` (current-based LIF)
with alpha = 1 - du_frac, beta = 1 - dv_frac (neurohw's decays), threshold 1, reset to zero,
starting from neurohw's fluctuation-initialized weights; the readout is a Synaptic without reset.
The two differ only where the chip's structure requires it (neurohw: one step of Dense delay and
layer l at rest until step l + 1, bias into v, u not reset; snnTorch: bias into the current, both
states reset), which does not change the amount of work per step.

Times are the best of `--repeats` epochs after a warm-up of a few batches, the two frameworks
alternating so that background load hits both alike. `--threads N` sets torch's threads for
both (default: all cores); `--quick` uses 1024 Yin-Yang and 256 rate samples.
Run: .venv/bin/python benchmarks/train_speed.py [--quick] [--threads N] [--repeats R]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

from neurohw import data
from neurohw.train import LayerSpec, Spiking, SpikingNet, losses
from neurohw.train.init import fluctuation_init
from neurohw.train.model import du_frac, dv_frac

try:
    import snntorch as snn
    from snntorch import surrogate
except ImportError:          # the benchmark still reports neurohw's times
    snn = None

BATCH = 64
SG_BETA = 10.0
WARMUP_BATCHES = 3


# ---- the snnTorch networks --------------------------------------------------------------------------

def synaptic(spec: LayerSpec, reset: str):
    return snn.Synaptic(alpha=1 - du_frac(spec.du), beta=1 - dv_frac(spec.dv), threshold=spec.vth,
                        spike_grad=surrogate.fast_sigmoid(slope=SG_BETA), reset_mechanism=reset)


class SnnTorchNet(nn.Module):
    """Linear + Synaptic per layer, stepped in time; mirrors a SpikingNet's sizes and decays."""

    def __init__(self, net: SpikingNet):
        super().__init__()
        mods = list(net.layers) + ([net.readout] if net.readout is not None else [])
        self.fcs = nn.ModuleList()
        self.lifs = nn.ModuleList()
        for i, m in enumerate(mods):
            fc = nn.Linear(m.weight.shape[1], m.weight.shape[0])
            with torch.no_grad():                      # same starting weights as neurohw
                fc.weight.copy_(m.weight)
                fc.bias.copy_(m.bias)
            self.fcs.append(fc)
            self.lifs.append(synaptic(m.spec, "none" if i >= len(net.layers) else "zero"))
        self.has_readout = net.readout is not None

    def forward(self, x: torch.Tensor) -> dict:
        states = [lif.init_synaptic() for lif in self.lifs]
        spikes, mems = [], []
        for t in range(x.shape[1]):
            s = x[:, t]
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                spk, syn, mem = lif(fc(s), *states[i])
                states[i] = (syn, mem)
                s = spk
            spikes.append(s)
            mems.append(mem)
        out = torch.stack(mems if self.has_readout else spikes, 1)
        return {"readout_v": out} if self.has_readout else {"spikes": [out]}


# ---- tasks ------------------------------------------------------------------------------------------

def yin_yang_task(n: int):
    feats, labels = data.yin_yang_splits()["train"]
    x = data.latency_encode(feats[:n], 60, t_max=50)
    net = SpikingNet(5, [LayerSpec(n_out=120, vth=1.0, spiking=Spiking(surrogate="superspike",
                                                                      surrogate_beta=SG_BETA))],
                     readout=LayerSpec(n_out=3))
    fluctuation_init(net, x[:512], xi=2.0)
    return net, x, labels[:n], lambda out, y: losses.max_over_time_ce(out["readout_v"], y)


def rate_task(n: int):
    rng = np.random.default_rng(0)
    x = (rng.random((n, 100, 700)) < 0.05).astype(np.uint8)
    y = rng.integers(0, 20, n)
    sp = Spiking(surrogate="superspike", surrogate_beta=SG_BETA)
    net = SpikingNet(700, [LayerSpec(n_out=256, spiking=sp), LayerSpec(n_out=20, spiking=sp)])
    fluctuation_init(net, x[:128], xi=2.0)
    return net, x, y, lambda out, y: losses.spike_count_ce(out["spikes"][-1], y)


def make_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, batch: int = BATCH):
    """A function running one training epoch (or its first `limit` batches); returns the mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def epoch(limit: int | None = None) -> float:
        total, n = 0.0, 0
        for k, i in enumerate(range(0, len(x), batch)):
            if limit is not None and k >= limit:
                break
            xb, yb = x[i:i + batch], y[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(xb)
            n += len(xb)
        return total / n

    return epoch


def bench(task, n: int, repeats: int) -> dict:
    net, x_np, y_np, loss_fn = task(n)
    x = torch.as_tensor(x_np, dtype=torch.float32)
    y = torch.as_tensor(y_np, dtype=torch.long)
    runners = {"neurohw": make_epoch(net, x, y, loss_fn)}
    if snn is not None:
        runners["snntorch"] = make_epoch(SnnTorchNet(net), x, y, loss_fn)   # built before training
    for run in runners.values():
        run(limit=WARMUP_BATCHES)
    times = {k: [] for k in runners}
    loss = {}
    for _ in range(repeats):
        for k, run in runners.items():
            t0 = time.perf_counter()
            loss[k] = run()
            times[k].append(time.perf_counter() - t0)
    return {k: (min(v), loss[k]) for k, v in times.items()}


def bench_hw_exact(n: int, repeats: int) -> dict:
    """The hardware-exact trainer (HwExactNet: the chip's integer forward, surrogate backward) against
    the float trainer on the same Yin-Yang network and batches (configs/yinyang.yaml: 5 -> 120 -> 3,
    60 steps, batch 256): plain float, and float with the fake-quantized (QAT) forward."""
    import copy

    from neurohw import quant
    from neurohw.train.hw import HwExactNet
    net, x_np, y_np, loss_fn = yin_yang_task(n)
    plans = quant.plan(net, x_np[:512])
    x = torch.as_tensor(x_np, dtype=torch.float32)
    y = torch.as_tensor(y_np, dtype=torch.long)
    qat = copy.deepcopy(net)
    quant.attach(qat, plans)
    runners = {"float": make_epoch(copy.deepcopy(net), x, y, loss_fn, 256),
               "float_qat": make_epoch(qat, x, y, loss_fn, 256),
               "hw_exact": make_epoch(HwExactNet(copy.deepcopy(net), plans), x, y, loss_fn, 256)}
    for run in runners.values():
        run(limit=2)
    times = {k: [] for k in runners}
    for _ in range(repeats):
        for k, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="fewer samples (1024 Yin-Yang, 256 rate)")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per framework; best is reported")
    ap.add_argument("--hw-only", action="store_true", help="only the hardware-exact vs float trainer timing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = {"yin_yang": 1024 if args.quick else 5000, "rate": 256 if args.quick else 1024}
    n_hw = 2560
    hw = bench_hw_exact(n_hw, args.repeats)
    torch.set_num_threads(args.threads)        # numba's OpenMP layer may have changed it
    print(f"hardware-exact trainer vs float trainer, Yin-Yang 5->120->3, 60 steps, batch 256, {n_hw} samples "
          f"({args.threads} torch thread(s), best of {args.repeats} epochs):")
    print(f"    float {hw['float']:.3f} s   float+QAT {hw['float_qat']:.3f} s   HwExactNet {hw['hw_exact']:.3f} s   "
          f"ratio {hw['hw_exact'] / hw['float']:.2f}x float, {hw['hw_exact'] / hw['float_qat']:.2f}x float+QAT")
    if args.hw_only:
        return
    print(f"one training epoch, batch {BATCH}, torch {torch.__version__}, {args.threads} thread(s), "
          f"best of {args.repeats} after a {WARMUP_BATCHES}-batch warm-up")
    if snn is None:
        print("snntorch not installed, skipping the snnTorch side (neurohw times only)")
    else:
        print(f"snntorch {snn.__version__}")
    rows = []
    for name, task in (("yin_yang", yin_yang_task), ("rate", rate_task)):
        r = bench(task, sizes[name], args.repeats)
        rows.append((f"{name} ({sizes[name]} samples)", r))
    print(f"\n{'task':28s} {'neurohw s':>10s} {'snnTorch s':>11s} {'neurohw/snnTorch':>17s}   mean loss of last epoch (nh / snn)")
    for label, r in rows:
        t_nh, l_nh = r["neurohw"]
        if "snntorch" in r:
            t_sn, l_sn = r["snntorch"]
            print(f"{label:28s} {t_nh:10.3f} {t_sn:11.3f} {t_nh / t_sn:17.2f}   {l_nh:.3f} / {l_sn:.3f}")
        else:
            print(f"{label:28s} {t_nh:10.3f} {'-':>11s} {'-':>17s}   {l_nh:.3f}")


if __name__ == "__main__":
    main()
