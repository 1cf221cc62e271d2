"""The YAML pipeline and the CLI end to end on a tiny config: stages, skipping, resume after an
interruption, no half-written artifacts, and one-line errors."""
import json
import os

import numpy as np
import pytest
import torch

from neurohw import cli, pipeline
from neurohw.config import parse_config

TINY = {
    "name": "tiny", "seed": 3,
    "data": {"task": "yinyang", "steps": 16, "t_max": 10, "n_train": 120, "n_test": 40},
    "model": {"layers": [{"n": 16, "du": 800, "dv": 800}], "readout": {"n": 3, "du": 800, "dv": 800}},
    "train": {"epochs": 2, "batch_size": 40, "lr": 0.01},
    "quant": {"qat_epochs": 1},
    "deploy": {"lava": True, "lava_samples": 4},
    "parity": {"samples": 6},
}


def tiny(tmp_path, **over):
    d = json.loads(json.dumps(TINY))
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    d["out_dir"] = str(tmp_path / "run")
    return parse_config(d)


def no_temp_files(path):
    return not [p for p in path.rglob(".*") if p.is_file()]


@pytest.mark.slow
def test_pipeline_end_to_end_and_skip(tmp_path, capsys):
    cfg = tiny(tmp_path)
    run = pipeline.run_pipeline(cfg, progress=False)
    rep = json.loads((run.dir / "report.json").read_text())
    assert rep["parity"]["ok"]
    assert rep["parity"]["emu_vs_lava"]["samples"] == 4 and rep["parity"]["hw_exact_vs_emu"]["samples"] == 6
    s = rep["scores"]
    assert 0 <= s["float"] <= 1 and s["lava"] == s["emulator_on_lava_samples"]
    for f in ("report.md", "training.png", "rasters.png", "membrane.png", "weights.png", "activity.png"):
        assert (run.dir / f).stat().st_size > 0
    cr = rep["chip_resources"]
    assert cr["fits"] and cr["energy"]["energy_per_inference_J"] > 0 and "SANA-FE" in cr["energy"]["source"]
    assert cr["energy"]["samples"] == np.load(run.dir / "data.npz")["x_test"].shape[0]
    assert (run.dir / "chip_utilization.png").stat().st_size > 0
    assert cli.main(["fit", str(run.dir), "--energy"]) == 0 and "nJ per inference" in capsys.readouterr().out
    assert no_temp_files(run.dir)
    # a second run skips every stage and changes nothing
    before = {p: p.stat().st_mtime_ns for p in run.dir.glob("*.npz")}
    pipeline.run_pipeline(cfg, progress=True)
    assert capsys.readouterr().out.count("up to date, skipped") == len(pipeline.STAGES)
    assert before == {p: p.stat().st_mtime_ns for p in run.dir.glob("*.npz")}
    # changing deploy re-runs lava and parity only
    cfg2 = tiny(tmp_path, deploy={"lava": True, "lava_samples": 5})
    pipeline.run_pipeline(cfg2, progress=True)
    out = capsys.readouterr().out
    assert "[train] up to date" in out and "[quantize] up to date" in out and "[lava] running" in out
    assert json.loads((run.dir / "parity.json").read_text())["emu_vs_lava"]["samples"] == 5
    # the CLI on the run directory: parity table and report, nothing re-trained
    assert cli.main(["parity", str(run.dir)]) == 0
    assert "all spikes, u and v identical" in capsys.readouterr().out
    assert cli.main(["report", str(run.dir), "--quiet"]) == 0
    assert "report.md" in capsys.readouterr().out


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_result(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, train={"epochs": 3, "batch_size": 40, "lr": 0.01})
    stages = ("data", "train")
    ref = pipeline.run_pipeline(tiny(tmp_path / "ref", train={"epochs": 3, "batch_size": 40, "lr": 0.01}),
                                progress=False, stages=stages)
    import neurohw.tasks as tasks
    real = tasks.loss_fn
    calls = {"n": 0}

    def interrupting(c):
        fn = real(c)

        def wrapped(out, y):
            calls["n"] += 1
            if calls["n"] == 5:          # in the second epoch (3 batches per epoch)
                raise KeyboardInterrupt
            return fn(out, y)
        return wrapped
    monkeypatch.setattr(tasks, "loss_fn", interrupting)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_pipeline(cfg, progress=False, stages=stages)
    assert not (tmp_path / "run" / "float_model.pt").exists()
    assert (tmp_path / "run" / "train" / "checkpoint.pt").exists()
    monkeypatch.setattr(tasks, "loss_fn", real)
    run = pipeline.run_pipeline(cfg, progress=False, stages=stages)
    a = torch.load(ref.dir / "float_model.pt")
    b = torch.load(run.dir / "float_model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_force_trains_again_instead_of_resuming_a_finished_checkpoint(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, train={"epochs": 2, "batch_size": 40, "lr": 0.01})
    stages = ("data", "train")
    pipeline.run_pipeline(cfg, progress=False, stages=stages)
    assert (tmp_path / "run" / "train" / "checkpoint.pt").exists()     # a finished checkpoint
    import neurohw.tasks as tasks
    real, calls = tasks.loss_fn, {"n": 0}

    def counting(c):
        fn = real(c)

        def wrapped(out, y):
            calls["n"] += 1
            return fn(out, y)
        return wrapped
    monkeypatch.setattr(tasks, "loss_fn", counting)
    pipeline.run_pipeline(cfg, progress=False, stages=stages)
    assert calls["n"] == 0                                               # up to date: skipped
    pipeline.run_pipeline(cfg, progress=False, stages=stages, force=True)
    assert calls["n"] == 2 * 3                                           # 2 epochs x 3 batches, from scratch


@pytest.mark.slow
def test_hw_exact_qat_fine_tunes_what_the_chip_runs(tmp_path):
    """With quant.qat_hw_exact the QAT forward is the chip's integer network, noise draws
    included: the accuracy it records after its last epoch is the emulator's, sample for sample,
    and the fine-tuning moved the weights."""
    cfg = tiny(tmp_path, neuron={"stochastic": True, "beta": 5.0},
               quant={"qat_epochs": 2, "qat_lr": 0.01, "qat_hw_exact": True}, deploy={"lava": False})
    run = pipeline.run_pipeline(cfg, progress=False, stages=("data", "train", "quantize", "emulate"))
    qat = json.loads((run.dir / "quant_report.json").read_text())["qat"]
    assert len(qat["test_acc"]) == 2 and len(qat["fano"]) == 1 and qat["fano"][0] > 0.1
    emulated = np.load(run.dir / "emulate.npz")
    assert qat["test_acc"][-1] == float(emulated["score"])
    a, b = torch.load(run.dir / "float_model.pt"), torch.load(run.dir / "quant_model.pt")
    assert not torch.equal(a["layers.0.weight"], b["layers.0.weight"])


def test_failing_stage_leaves_no_artifact(tmp_path, monkeypatch):
    cfg = tiny(tmp_path, train={"epochs": 1, "batch_size": 40}, quant={"qat_epochs": 0})
    pipeline.run_pipeline(cfg, progress=False, stages=("data", "train", "quantize"))

    def boom(*a, **k):
        raise RuntimeError("emulator exploded")
    monkeypatch.setattr(pipeline.emu, "run", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        pipeline.run_pipeline(cfg, progress=False, stages=("emulate",))
    run_dir = tmp_path / "run"
    assert not (run_dir / "emulate.npz").exists() and no_temp_files(run_dir)
    assert "emulate" not in json.loads((run_dir / "manifest.json").read_text())["stages"]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    p = tmp_path / "x.json"
    pipeline.write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        pipeline.write_json(p, {"a": object()})
    assert json.loads(p.read_text()) == {"a": 1} and no_temp_files(tmp_path)


def test_cli_validate_and_one_line_errors(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    import yaml
    good.write_text(yaml.safe_dump({**TINY, "out_dir": str(tmp_path / "r")}))
    assert cli.main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "train": {"lr": -1.0}}))
    assert cli.main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train.lr = -1.0" in err and "allowed" in err
    assert cli.main(["run", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    with pytest.raises(Exception):
        cli.main(["--debug", "validate", str(bad)])
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "lava-run" in capsys.readouterr().out


def test_cli_emulate_lava_run_and_parity_on_a_bundle(tmp_path, capsys):
    from neurohw import deploy, synth
    rng = np.random.default_rng(4)
    net = synth.random_network(rng, max_layers=2, max_n=12, p_noise=1.0, graded=False)
    x = synth.random_raster(rng, net, 3, 12, density=0.3)
    deploy.save_reference(net, x, tmp_path / "b")
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "e.npz"), "--probes"]) == 0
    assert cli.main(["lava-run", str(tmp_path / "b"), "--input", str(tmp_path / "x.npy"),
                     "--output", str(tmp_path / "l.npz"), "--probes"]) == 0
    e, lv = np.load(tmp_path / "e.npz"), np.load(tmp_path / "l.npz")
    assert set(e) == set(lv) and all(np.array_equal(e[k], lv[k]) for k in e)
    assert cli.main(["parity", str(tmp_path / "b")]) == 0
    assert "all spikes, u and v identical" in capsys.readouterr().out
    # a tampered expectation is caught and exits non-zero
    net2, extra = __import__("neurohw").load_bundle(tmp_path / "b", with_extra=True)
    extra["expected_spikes_0"] = 1 - extra["expected_spikes_0"]
    net2.save(tmp_path / "t", extra=extra)
    assert cli.main(["parity", str(tmp_path / "t"), "--no-lava"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert cli.main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "nope.npy"),
                     "--output", str(tmp_path / "o.npz")]) == 1
    assert "--input" in capsys.readouterr().err
    os.remove(tmp_path / "x.npy")


@pytest.mark.parametrize("loss", ["max_over_time_ce", "mean_over_time_ce"])
def test_float_and_chip_predictions_reduce_time_alike(tmp_path, loss):
    """predict_int on an emulator run equals the float predictor on the hardware-exact
    forward of the same quantized network (whose readout v is the chip's v / scale)."""
    from neurohw import emu, quant, tasks
    from neurohw.train.hw import HwExactNet
    cfg = tiny(tmp_path, train={"loss": loss})
    torch.manual_seed(1)
    net = tasks.build_model(cfg)
    with torch.no_grad():
        for m in net.modules_in_order:
            m.weight.normal_(0, 3.0)
        net.readout.weight -= net.readout.weight.mean(1, keepdim=True)   # no class wins by its row sum
    x = (np.random.default_rng(1).random((64, 16, cfg.n_in)) < 0.3).astype(np.uint8)
    plans = quant.plan(net, x)
    res = emu.run(quant.to_int_network(net, plans), x, probes=True)
    with torch.no_grad():
        out = HwExactNet(net, plans)(torch.as_tensor(x, dtype=torch.float32))
    pred = tasks.predict_int(cfg, res)
    np.testing.assert_array_equal(pred, tasks.predictor(cfg)(out).numpy())
    assert len(set(pred.tolist())) > 1
