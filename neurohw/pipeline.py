"""`neurohw run`: data -> train -> quantize (+QAT) -> emulate -> Lava -> parity -> report.

Each stage writes its artifacts atomically into the run directory and records, in
manifest.json, the hash of the config sections it depends on. Re-running skips every stage
whose hash and files are unchanged; an interrupted training resumes from its last epoch
checkpoint. The report stage always runs (it only reads artifacts).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch

from . import emu, generative, quant, tasks
from ._io import save_torch, write_json, write_npz, write_text
from .config import Config
from .rundir import ORDER, STAGES, Run, file_model, load_data, load_float, load_quantized
from .network import IntNetwork, RunResult, load_bundle
from .parity import compare
from .train.hw import HwExactNet
from .train.init import fluctuation_init
from .train.loop import TrainConfig, fit

# ---------------------------------------------------------------------------------------------
# Stages

def stage_data(run: Run) -> list[str]:
    d = tasks.build_data(run.cfg)
    write_npz(run.dir / "data.npz", **d.as_dict())
    return ["data.npz"]


def _train_cfg(cfg: Config, epochs: int, lr: float) -> TrainConfig:
    t = cfg.train
    return TrainConfig(epochs=epochs, batch_size=t.batch_size, lr=lr, clip=t.clip, trials=t.trials, seed=cfg.seed,
                       estimator=t.estimator, paths=t.paths or 4)


def _fit(run: Run, net, d: tasks.TaskData, tc: TrainConfig, out_dir: Path) -> dict:
    cfg = run.cfg
    score = None
    if cfg.n_classes is None:
        score = lambda n: tasks.score_float(cfg, n, d.x_test, d.y_test)  # noqa: E731
    return fit(net, d.as_dict(), tasks.loss_fn(cfg), tasks.predictor(cfg), tc, out_dir=out_dir,
               progress=run.progress, score=score)


def resume_dir(run: Run, stage: str, name: str) -> Path:
    """A checkpoint directory that is kept (to resume) only while the stage's hash is the same."""
    path, h = run.dir / name, run.cfg.section_hash(*STAGES[stage])
    stamp = path / "hash"
    if path.exists() and (not stamp.exists() or stamp.read_text() != h):
        shutil.rmtree(path)                             # a different training: start over
    path.mkdir(parents=True, exist_ok=True)
    write_text(stamp, h)
    return path


def stage_train(run: Run) -> list[str]:
    cfg, d = run.cfg, load_data(run)
    ckpt_dir = resume_dir(run, "train", "train")
    torch.manual_seed(cfg.seed)
    if cfg.model.file is not None:            # an imported network: fine-tuned only if train.epochs > 0
        net = file_model(cfg)[0]
    else:
        net = tasks.build_model(cfg)
        fluctuation_init(net, d.x_train[:512], xi=cfg.train.init_xi, seed=cfg.seed)
    t0 = time.perf_counter()
    metrics = _fit(run, net, d, _train_cfg(cfg, cfg.train.epochs, cfg.train.lr), ckpt_dir)
    t = cfg.train
    if t.score_epochs:          # the unbiased second phase, from where the surrogate left the net
        tc = TrainConfig(epochs=t.score_epochs, batch_size=t.batch_size, lr=t.score_lr or t.lr, clip=t.clip,
                         seed=cfg.seed, estimator="score", paths=t.paths)
        more = _fit(run, net, d, tc, resume_dir(run, "train", "train_score"))
        metrics["score_phase"] = dict(epochs=t.score_epochs, lr=tc.lr, paths=tc.paths, start=len(metrics["loss"]))
        for k, v in more.items():
            if isinstance(v, list) and isinstance(metrics.get(k), list):
                metrics[k] = metrics[k] + v
    metrics["seconds"] = time.perf_counter() - t0
    save_torch(run.dir / "float_model.pt", net.state_dict())
    write_json(run.dir / "train_metrics.json", metrics)
    return ["float_model.pt", "train_metrics.json"]


def decisions(cfg: Config, net, x: np.ndarray, batch_size: int = 256, seed: int = 12345) -> np.ndarray:
    """Class per sample of a float (or fake-quantized, or hardware-exact) network, decided as
    tasks.score_float decides it: same batches, same generator seed, so two networks compared
    on the same x see the same noise draws (common random numbers) when they are stochastic."""
    pred = tasks.predictor(cfg)
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            o = net(torch.as_tensor(x[i:i + batch_size], dtype=torch.float32), generator=gen,
                    sample_ids=np.arange(i, min(i + batch_size, len(x))))
            out.append(pred(o).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


# training samples that score a clip level. A stochastic net searches only its readout (the hidden
# scale is pinned by the escape), and under common random numbers the agreement's sampling noise
# is that of the quantization alone; 1024 samples there keep the search at ~1/4 of its cost
# (a 400-neuron, 60-step stochastic net: 11 min of a shared core for 4096 samples)
CLIP_SAMPLES, CLIP_SAMPLES_STOCHASTIC = 4096, 1024


def _select_clip(cfg: Config, net, d: tasks.TaskData, trace: list):
    """The score by which quant.plan chooses each deterministic layer's clip level, on (up to
    CLIP_SAMPLES of) the training samples, never the validation or test split: the fake-quantized net's
    accuracy (clip_select = train_accuracy) or its agreement with the float net's own decisions
    (agreement). None: the least weight error (weight_error, or a task without classes)."""
    sel = cfg.quant.clip_select
    if sel not in ("train_accuracy", "agreement") or cfg.n_classes is None:
        return None
    n = CLIP_SAMPLES_STOCHASTIC if any(m.spec.spiking.stochastic for m in net.layers) else CLIP_SAMPLES
    x = d.x_train[:n]
    ref = d.y_train[:n] if sel == "train_accuracy" else decisions(cfg, net, x)

    def score(plans) -> float:
        quant.attach(net, plans)
        acc = quant.agreement(decisions(cfg, net, x), ref)
        quant.attach(net, None)
        trace.append(acc)
        return acc
    return score


def stage_quantize(run: Run) -> list[str]:
    cfg, d = run.cfg, load_data(run)
    net = load_float(run)
    trace: list = []
    exact = (cfg.model.file is not None and cfg.model.file.kind == "netx" and cfg.train.epochs == 0
             and cfg.quant.qat_epochs == 0)         # a netx file is already on the chip: keep it exactly
    plans = (file_model(cfg)[1][1] if exact else
             quant.plan(net, d.x_train[:512], bits=cfg.quant.weight_bits, noise_seed=cfg.neuron.noise_seed,
                        select=_select_clip(cfg, net, d, trace), target=cfg.quant.target))
    qat, validation = {}, {}
    has_val = d.x_val is not None and cfg.n_classes is not None
    by_agreement = cfg.quant.clip_select == "agreement"
    if has_val:
        validation["float"] = tasks.score_float(cfg, net, d.x_val, d.y_val)
        validation["select"] = "agreement" if by_agreement else "accuracy"
        ref_val = decisions(cfg, net, d.x_val)           # the float net's own decisions
    if cfg.quant.qat_epochs > 0:
        # fake-quantized float forward, or (qat_hw_exact) the chip's own integer forward, which
        # also fine-tunes against the deployed noise draws; both back-propagate through the surrogate
        quant.attach(net, None if cfg.quant.qat_hw_exact else plans)
        model = HwExactNet(net, plans) if cfg.quant.qat_hw_exact else net
        tc = _train_cfg(cfg, cfg.quant.qat_epochs, cfg.quant.qat_lr)
        qdir = resume_dir(run, "quantize", "qat")
        if has_val:
            # with a validation split, QAT is scored on it each epoch (not on the test set) and the
            # epoch to deploy, 0 = post-training quantization, is the best on it (earliest on a tie):
            # by validation accuracy, or (clip_select = agreement) by validation agreement with
            # the float net's decisions, which bounds |deployed - float| instead of rewarding drift
            agree = [quant.agreement(decisions(cfg, model, d.x_val), ref_val)]

            def keep(epoch, _):
                save_torch(qdir / f"epoch{epoch}.pt", net.state_dict())
                agree.append(quant.agreement(decisions(cfg, model, d.x_val), ref_val))
            save_torch(qdir / "epoch0.pt", net.state_dict())
            qat = fit(model, dict(x_train=d.x_train, y_train=d.y_train, x_test=d.x_val, y_test=d.y_val),
                      tasks.loss_fn(cfg), tasks.predictor(cfg), tc, out_dir=qdir, progress=run.progress,
                      on_epoch=keep)
            accs = [qat["init"]] + qat["test_acc"]
            if len(agree) != len(accs):          # QAT resumed after an interruption: score the kept epochs
                agree = [agree[0]]
                for e in range(1, len(accs)):
                    net.load_state_dict(torch.load(qdir / f"epoch{e}.pt", weights_only=False))
                    agree.append(quant.agreement(decisions(cfg, model, d.x_val), ref_val))
            k = quant.pick_best(agree if by_agreement else accs)
            net.load_state_dict(torch.load(qdir / f"epoch{k}.pt", weights_only=False))
            validation.update(ptq=accs[0], qat_epochs=accs[1:], agreement=agree, ptq_agreement=agree[0],
                              chosen_epoch=k, deployed=accs[k], deployed_agreement=agree[k])
        else:
            qat = _fit(run, model, d, tc, qdir)
        quant.attach(net, None)
    elif has_val:
        quant.attach(net, plans)
        validation.update(ptq=tasks.score_float(cfg, net, d.x_val, d.y_val), chosen_epoch=0,
                          ptq_agreement=quant.agreement(decisions(cfg, net, d.x_val), ref_val))
        validation.update(deployed=validation["ptq"], deployed_agreement=validation["ptq_agreement"])
        quant.attach(net, None)
    quant.attach(net, plans)
    qat_score = tasks.score_float(cfg, net, d.x_test, d.y_test)     # the fake-quantized float net
    quant.attach(net, None)
    inet = file_model(cfg)[1][0] if exact else quant.to_int_network(net, plans, name=cfg.name)
    rows = quant.report(net, plans, d.x_train[:256])
    save_torch(run.dir / "quant_model.pt", net.state_dict())
    write_json(run.dir / "plans.json", [quant.plan_to_dict(p) for p in plans])
    write_json(run.dir / "quant_report.json", dict(layers=rows, qat=qat, qat_score=qat_score, validation=validation,
                                                  clip_search=trace))
    inet.save(run.dir / "bundle")
    return ["quant_model.pt", "plans.json", "quant_report.json", "bundle/manifest.yaml"]


def stage_emulate(run: Run) -> list[str]:
    cfg, d = run.cfg, load_data(run)
    inet = load_bundle(run.dir / "bundle")
    t0 = time.perf_counter()
    res = emu.run(inet, d.x_test, probes=True)
    seconds = time.perf_counter() - t0
    score = tasks.score_int(cfg, res, d.y_test)
    arrays = RunResult(res.spikes, [u[:8] for u in res.u], [v[:8] for v in res.v]).to_arrays()
    if cfg.n_classes is not None:
        arrays["pred"] = tasks.predict_int(cfg, res)
    agree = float_agreement(run, inet, res, d)
    write_npz(run.dir / "emulate.npz", score=np.float64(score), seconds=np.float64(seconds),
              agreement=np.array(agree), **arrays)
    if cfg.data.task == "generative":
        return ["emulate.npz"] + generative_eval(run, res, d)
    return ["emulate.npz"]


GENERATIVE_PERMUTATIONS = 1000


def generative_eval(run: Run, res: RunResult, d: tasks.TaskData) -> list[str]:
    """The generative task's test: per class, the float network's samples (its own noise, 1 draw per
    test input) and the chip's (the emulator's, on-chip noise; Lava equals it by parity) against
    the test data, and against each other, by the signature-kernel MMD^2 and its permutation test."""
    net = load_float(run)
    x = torch.as_tensor(d.x_test, dtype=torch.float32)
    with torch.no_grad():
        out = net(x, generator=torch.Generator().manual_seed(run.cfg.seed + 1), sample_ids=np.arange(len(x)))
    fl = out["spikes"][-1].numpy().astype(np.uint8)
    data = d.y_test[..., generative.K_CLASSES:].astype(np.uint8)
    t0 = time.perf_counter()
    ev = generative.evaluate(data, {"float": fl, "chip": res.spikes[-1]}, d.y_test,
                             n_perm=GENERATIVE_PERMUTATIONS, seed=run.cfg.seed)
    ev.update(seconds=time.perf_counter() - t0, permutations=GENERATIVE_PERMUTATIONS)
    write_npz(run.dir / "generative.npz", float_spikes=fl)
    write_json(run.dir / "generative.json", ev)
    return ["generative.npz", "generative.json"]


def float_agreement(run: Run, inet: IntNetwork, res: RunResult, d: tasks.TaskData) -> list[float]:
    """Per spiking layer: the share of (sample, step, neuron) entries where the trainer's
    fake-quantized float forward (the QAT view) spikes exactly as the emulator does."""
    net, plans = load_quantized(run)
    quant.attach(net, plans)
    with torch.no_grad():
        out = net(torch.as_tensor(d.x_test, dtype=torch.float32), generator=torch.Generator().manual_seed(0))
    return [float((s.numpy().astype(np.uint8) == e).mean()) for s, e in zip(out["spikes"], res.spikes)]


def stage_lava(run: Run) -> list[str]:
    cfg, d = run.cfg, load_data(run)
    n = min(cfg.deploy.lava_samples, len(d.x_test))
    if not cfg.deploy.lava or n == 0:
        write_npz(run.dir / "lava.npz", ran=np.bool_(False))
        return ["lava.npz"]
    from . import lava as nlava
    inet = load_bundle(run.dir / "bundle")
    run.log(f"lava: {n} samples x {d.x_test.shape[1]} steps in one Lava run (Loihi2SimCfg, fixed_pt)")
    t0 = time.perf_counter()
    res = nlava.run(inet, d.x_test[:n], probes=True)
    seconds = time.perf_counter() - t0
    score = tasks.score_int(cfg, res, d.y_test[:n])
    arrays = res.to_arrays()
    write_npz(run.dir / "lava.npz", ran=np.bool_(True), score=np.float64(score), seconds=np.float64(seconds),
              samples=np.int64(n), **arrays)
    return ["lava.npz"]


def stage_parity(run: Run) -> list[str]:
    """Emulator vs Lava on the Lava samples (spikes, u, v); hardware-exact trainer vs emulator."""
    cfg, d = run.cfg, load_data(run)
    inet = load_bundle(run.dir / "bundle")
    L = len(inet.layers)
    z = np.load(run.dir / "lava.npz")
    n_lava = int(z["samples"]) if bool(z["ran"]) else 0
    n_hw = min(cfg.parity.samples, len(d.x_test)) if cfg.parity.hw_exact else 0
    ref = emu.run(inet, d.x_test[:max(n_lava, n_hw)], probes=True)
    first = lambda n: RunResult(*([a[:n] for a in f] for f in (ref.spikes, ref.u, ref.v)))  # noqa: E731
    out = dict(layers=L)
    if n_lava:
        out["emu_vs_lava"] = _table(compare(first(n_lava), RunResult.from_arrays(z, L)), first(n_lava), n_lava)
    if n_hw:
        net, plans = load_quantized(run)
        with torch.no_grad():
            o = HwExactNet(net, plans)(torch.as_tensor(d.x_test[:n_hw], dtype=torch.float32), record=True)
        hw = RunResult(o["int"]["spikes"], o["int"]["u"], o["int"]["v"])
        out["hw_exact_vs_emu"] = _table(compare(first(n_hw), hw), first(n_hw), n_hw)
    out["ok"] = all(t["mismatches"] == 0 for k, t in out.items() if isinstance(t, dict))
    write_json(run.dir / "parity.json", out)
    return ["parity.json"]


def _table(mism, res: RunResult, n: int) -> dict:
    per_layer = [dict(layer=i, spikes=int(s.sum()), entries=int(s.size) * (3 if res.u is not None else 1),
                      mismatched=0) for i, s in enumerate(res.spikes)]
    for m in mism:
        per_layer[m.layer]["mismatched"] += m.count
    return dict(samples=n, per_layer=per_layer, mismatches=sum(m.count for m in mism))


def stage_report(run: Run) -> list[str]:
    from .report import write_report
    return write_report(run)


RUNNERS = dict(data=stage_data, train=stage_train, quantize=stage_quantize, emulate=stage_emulate,
               lava=stage_lava, parity=stage_parity, report=stage_report)


def run_pipeline(cfg: Config, out_dir: str | Path | None = None, progress: bool = True,
                 stages: tuple[str, ...] = ORDER, force: bool = False) -> Run:
    """Run (or resume) the configured stages; returns the Run."""
    run = Run(cfg, Path(out_dir or cfg.out_dir), progress=progress)
    run.dir.mkdir(parents=True, exist_ok=True)
    write_json(run.dir / "config.json", cfg.to_dict())
    if force:                                            # start training over, too
        for name in ("train", "train_score", "qat"):
            shutil.rmtree(run.dir / name, ignore_errors=True)
    for stage in stages:
        if stage != "report" and not force and run.done(stage):
            run.log(f"[{stage}] up to date, skipped")
            continue
        run.log(f"[{stage}] running")
        t0 = time.perf_counter()
        files = RUNNERS[stage](run)
        if stage != "report":
            run.complete(stage, files, time.perf_counter() - t0)
        run.log(f"[{stage}] done in {time.perf_counter() - t0:.1f} s")
    return run
