"""The reference tasks as the pipeline sees them: data rasters, the model, its loss, and how a
float output or an integer run is scored (accuracy, or van Rossum distance for spike trains)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import data, events, generative
from .config import Config
from .network import RunResult
from .train import Escape, LayerSpec, SpikingNet, Spiking, losses


@dataclass
class TaskData:
    x_train: np.ndarray            # uint8 [N, T, n_in]
    y_train: np.ndarray            # labels [N], or target rasters [N, T, n_out]
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None    # data.n_val samples held out of the training split
    y_val: np.ndarray | None = None

    def as_dict(self) -> dict:
        d = dict(x_train=self.x_train, y_train=self.y_train, x_test=self.x_test, y_test=self.y_test)
        if self.x_val is not None:
            d.update(x_val=self.x_val, y_val=self.y_val)
        return d


def build_data(cfg: Config) -> TaskData:
    d = cfg.data
    if d.task == "yinyang":
        yy = data.yin_yang_splits()
        enc = lambda f: data.latency_encode(f, d.steps, t_max=d.t_max)  # noqa: E731
        out = TaskData(enc(yy["train"][0]), yy["train"][1], enc(yy["test"][0]), yy["test"][1])
    elif d.task == "digits":
        dg = data.digits()
        if d.encoding == "rate":
            enc = lambda x, s: data.rate_encode(x, d.steps, seed=cfg.seed * 2 + s, max_rate=d.rate_max)  # noqa: E731
        else:
            enc = lambda x, s: data.latency_encode(x, d.steps, t_max=d.t_max, bias_spike=False)  # noqa: E731
        out = TaskData(enc(dg["x_train"], 0), dg["y_train"], enc(dg["x_test"], 1), dg["y_test"])
    elif d.task in ("event_digits", "intervals"):
        # training samples = the generator's train split, then its validation split, so that
        # data.n_val = len(validation) holds out exactly that split
        sp = (events.event_digits_splits(steps_per_saccade=d.steps // 3, copies=d.copies) if d.task == "event_digits"
              else events.interval_splits(steps=d.steps))
        out = TaskData(*(np.concatenate([sp["train"][i], sp["validation"][i]]) for i in (0, 1)), *sp["test"])
    elif d.task == "generative":
        sp = generative.splits(cfg.seed, d.steps)
        out = TaskData(*sp["train"], *sp["test"])
    else:
        st = data.spike_train_matching(seed=cfg.seed, steps=d.steps)
        x, y = st.inputs[None].astype(np.uint8), st.target[None].astype(np.float32)
        out = TaskData(x, y, x, y)
    if d.n_train:
        out.x_train, out.y_train = out.x_train[:d.n_train], out.y_train[:d.n_train]
    if d.n_val:
        n = len(out.x_train)
        if d.n_val >= n:
            raise ValueError(f"{cfg.source}: data.n_val = {d.n_val} leaves no training samples; allowed int 0..{n - 1}")
        out.x_val, out.y_val = out.x_train[n - d.n_val:], out.y_train[n - d.n_val:]
        out.x_train, out.y_train = out.x_train[:n - d.n_val], out.y_train[:n - d.n_val]
    if d.n_test:
        out.x_test, out.y_test = out.x_test[:d.n_test], out.y_test[:d.n_test]
    return out


def spiking_of(cfg: Config) -> Spiking:
    n = cfg.neuron
    return Spiking(stochastic=n.stochastic, escape=Escape(n.escape, n.beta), surrogate=n.surrogate,
                   surrogate_beta=n.surrogate_beta, scale_by_beta=n.scale_by_beta, detach_reset=n.detach_reset)


def build_model(cfg: Config) -> SpikingNet:
    sp = spiking_of(cfg)
    layers = [LayerSpec(n_out=L.n, du=L.du, dv=L.dv, vth=L.vth, recurrent=L.recurrent, spiking=sp, kind=L.kind,
                        channels=L.channels, kernel=L.kernel, stride=L.stride, padding=L.padding,
                        dilation=L.dilation, groups=L.groups, max_delay=L.max_delay, train_delays=L.train_delays,
                        delay_sigma=L.delay_sigma, delay_seed=cfg.seed + i)
              for i, L in enumerate(cfg.model.layers)]
    ro = cfg.model.readout
    readout = None if ro is None else LayerSpec(n_out=ro.n, du=ro.du, dv=ro.dv)
    return SpikingNet(cfg.n_in, layers, readout=readout, in_shape=cfg.in_shape)


def loss_fn(cfg: Config):
    t = cfg.train
    kind = t.loss

    def fn(out, y):
        s = out["spikes"]
        if kind == "max_over_time_ce":
            loss = losses.max_over_time_ce(out["readout_v"], y, tau=t.max_over_time_tau)
        elif kind == "mean_over_time_ce":
            loss = losses.mean_over_time_ce(out["readout_v"], y)
        elif kind == "spike_count_ce":
            loss = losses.spike_count_ce(s[-1], y)
        elif kind == "spike_count_mse":
            loss = losses.spike_count_mse(s[-1], y, on=0.5 * s[-1].shape[1])
        elif kind == "sig_mmd":
            loss = generative.mmd_loss(s[-1], y)
        elif kind == "van_rossum":
            loss = losses.van_rossum(s[-1], y)
        else:
            loss = losses.l2_spike_train(s[-1], y)
        if t.rate_strength > 0:
            loss = loss + losses.rate_regularizer(s, [t.rate_low] * len(s), [t.rate_high] * len(s), t.rate_strength)
        return loss
    if kind == "sig_mmd":       # train.estimator 'score': the MMD's own likelihood-ratio weights
        fn.advantages = lambda out, y: generative.mmd_advantages(out["spikes"][-1], y)
    return fn


def predictor(cfg: Config):
    """Class per sample from a float output: argmax of the readout's membrane reduced over time
    as the loss reduces it (max, or mean for mean_over_time_ce), or of the last layer's spike
    counts when there is no readout."""
    mean = cfg.train.loss == "mean_over_time_ce"

    def predict(out: dict) -> torch.Tensor:
        if "readout_v" in out:
            v = out["readout_v"]
            return (v.mean(1) if mean else v.max(1).values).argmax(1)
        return out["spikes"][-1].sum(1).argmax(1)
    return predict


def predict_int(cfg: Config, res: RunResult) -> np.ndarray:
    """The same decision from an integer run (emulator or Lava): v of the readout layer (the
    last one; needs probes; the scale does not change the argmax), or spike counts."""
    if cfg.model.readout is not None:
        v = res.v[-1].astype(np.int64)
        return (v.sum(1) if cfg.train.loss == "mean_over_time_ce" else v.max(1)).argmax(1)
    return res.spikes[-1].sum(1).argmax(1)


def van_rossum_np(spikes: np.ndarray, target: np.ndarray) -> float:
    return float(losses.van_rossum(torch.as_tensor(spikes, dtype=torch.float32),
                                   torch.as_tensor(target, dtype=torch.float32)))


GENERATIVE_SCORE_SAMPLES = 192     # the per-epoch MMD^2 score's set (balanced: sample i has class i % 3)


def score_float(cfg: Config, net, x: np.ndarray, y: np.ndarray, seed: int = 12345) -> float:
    """Accuracy (classification), van Rossum distance (spike_train) or the signature-kernel MMD^2
    of samples against data on the first GENERATIVE_SCORE_SAMPLES (generative) of a float network."""
    gen = torch.Generator().manual_seed(seed)
    if cfg.data.task == "generative":
        n = GENERATIVE_SCORE_SAMPLES
        with torch.no_grad():
            out = net(torch.as_tensor(x[:n], dtype=torch.float32), generator=gen, sample_ids=np.arange(len(x[:n])))
        return generative.mmd_score(out["spikes"][-1].numpy(), y[:n])
    if cfg.n_classes is None:
        with torch.no_grad():
            out = net(torch.as_tensor(x, dtype=torch.float32), generator=gen)
        return van_rossum_np(out["spikes"][-1].numpy(), y)
    from .train.loop import evaluate
    return evaluate(net, x, y, predictor(cfg), seed=seed)


def score_int(cfg: Config, res: RunResult, y: np.ndarray) -> float:
    if cfg.data.task == "generative":
        n = GENERATIVE_SCORE_SAMPLES
        return generative.mmd_score(res.spikes[-1][:n], y[:n])
    if cfg.n_classes is None:
        return van_rossum_np(res.spikes[-1], y)
    return float((predict_int(cfg, res) == y).mean())
