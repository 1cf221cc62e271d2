"""The generative task: data, the MMD loss and its permutation test, the config rules, and a small
run through the pipeline (train with sig_mmd, quantize, emulator and Lava with on-chip noise)."""
import json

import numpy as np
import pytest
import torch

from neurohw import generative as gen
from neurohw import pipeline
from neurohw import sigkernel as sk
from neurohw.config import ConfigError, parse_config


def test_data_is_thinned_jittered_prototypes_with_condition_and_clock():
    sp = gen.splits(seed=0, steps=32, n_train=300, n_test=30)
    x, y = sp["train"]
    assert x.shape == (300, 32, gen.N_IN) and y.shape == (300, 32, gen.K_CLASSES + gen.N_OUT)
    cls = gen.classes_of(y)
    np.testing.assert_array_equal(cls, np.arange(300) % 3)
    np.testing.assert_array_equal(x.reshape(300, 32, 3, 16).sum(3), y[:, :, :3])   # targets carry the class
    assert (x.sum(2) == 1).all()                                            # one clock channel per step
    proto = gen.prototypes(32)
    assert (np.diff(proto, axis=2) >= gen.MIN_GAP).all()
    out = y[..., 3:]
    for k in range(3):
        t, n = np.nonzero(out[cls == k].sum(0))
        near = np.abs(t[:, None] - proto[k][n]).min(1)
        assert near.max() <= 4                                             # jitter of 1 step, 4 sigma
    kept = out.sum((1, 2)).mean() / (gen.N_OUT * gen.SPIKES_PER_NEURON)
    assert abs(kept - gen.KEEP) < 0.03                                     # thinning (~0.2 % merged)
    assert not np.array_equal(sp["test"][1], y[:30])                      # test draws are fresh


def test_mmd_loss_is_near_zero_between_draws_of_the_data_and_large_across_classes():
    rng = np.random.default_rng(1)
    cls = np.arange(96) % 3
    cond = torch.as_tensor(gen.condition(cls, 32), dtype=torch.float64)
    a = torch.as_tensor(gen.sample(cls, 32, rng), dtype=torch.float64).requires_grad_(True)
    b = torch.as_tensor(gen.sample(cls, 32, rng), dtype=torch.float64)
    wrong = torch.as_tensor(gen.sample((cls + 1) % 3, 32, rng), dtype=torch.float64)
    y = torch.cat([cond, b], 2)
    same, diff = gen.mmd_loss(a, y), gen.mmd_loss(wrong, y)
    assert abs(float(same.detach())) < 0.1 * float(diff)
    same.backward()
    assert a.grad.abs().sum() > 0                                           # a loss for surrogate gradients


def test_training_loss_uses_its_own_time_scale_and_the_test_keeps_the_test_scale():
    rng = np.random.default_rng(2)
    cls = np.arange(60) % 3
    a = torch.as_tensor(gen.sample(cls, 32, rng), dtype=torch.float64)
    b = torch.as_tensor(gen.sample(cls, 32, rng), dtype=torch.float64)
    y = torch.cat([torch.as_tensor(gen.condition(cls, 32), dtype=torch.float64), b], 2)
    p2, p4 = gen.raster_path(a), gen.raster_path(a, gen.TRAIN_TIME_SCALE)
    assert p2[0, -1, 0] == pytest.approx(gen.TIME_SCALE) and p4[0, -1, 0] == pytest.approx(gen.TRAIN_TIME_SCALE)
    torch.testing.assert_close(p2[..., 1:], p4[..., 1:])                  # counts are unchanged
    train = gen.class_mmd2(a, b, cls, time_scale=gen.TRAIN_TIME_SCALE)
    assert float(gen.mmd_loss(a, y)) == pytest.approx(float(train), rel=1e-6)
    assert gen.mmd_score(a.numpy(), y.numpy()) == pytest.approx(float(gen.class_mmd2(a, b, cls)), rel=1e-9)
    assert float(train) != pytest.approx(float(gen.class_mmd2(a, b, cls)), rel=1e-3)


def test_vectorized_permutation_test_equals_relabelling_one_permutation_at_a_time():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(30, 5, 2, generator=g, dtype=torch.float64).cumsum(1)
    K = sk.gram(z, z)
    m = 12
    r = sk.permutation_test_gram(K, m, n_perm=50, generator=torch.Generator().manual_seed(4))
    g2 = torch.Generator().manual_seed(4)
    for i in range(50):
        idx = torch.randperm(30, generator=g2)
        lab = torch.zeros(30, dtype=torch.bool)
        lab[idx[:m]] = True
        order = torch.cat([torch.nonzero(lab)[:, 0], torch.nonzero(~lab)[:, 0]])
        Kp = K[order][:, order]
        ref = sk.mmd2_unbiased(Kp[:m, :m], Kp[m:, m:], Kp[:m, m:]).item()
        assert r["null"][i] == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert r["mmd2"] == pytest.approx(sk.mmd2_unbiased(K[:m, :m], K[m:, m:], K[:m, m:]).item(), rel=1e-9)


BASE = {"name": "gen", "seed": 0, "data": {"task": "generative", "steps": 16, "n_train": 192, "n_test": 90},
        "model": {"layers": [{"n": 12, "du": 1600, "dv": 1000}, {"n": 4, "du": 1600, "dv": 1000}], "readout": None},
        "neuron": {"stochastic": True, "escape": "exp", "beta": 5.0},
        "train": {"epochs": 8, "batch_size": 48, "lr": 0.02, "init_xi": 2.0},
        "quant": {"qat_epochs": 0}, "deploy": {"lava": True, "lava_samples": 3}, "parity": {"samples": 3}}


def config(tmp_path=None, **over):
    d = json.loads(json.dumps(BASE))
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    if tmp_path is not None:
        d["out_dir"] = str(tmp_path / "run")
    return parse_config(d)


@pytest.mark.parametrize("over,msg", [
    ({"data": {"steps": 24}}, "data.steps = 24"),
    ({"train": {"loss": "van_rossum"}}, "train.loss = 'van_rossum'"),
    ({"model": {"layers": [{"n": 12}, {"n": 5}], "readout": None}}, "layers[1].n = 5"),
    ({"model": {"layers": [{"n": 12}], "readout": {"n": 4}}}, "readout"),
])
def test_config_rules_of_the_generative_task(over, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        config(**over)


def test_config_mirrors_the_task_sizes():
    from neurohw import config as c
    assert c.N_IN["generative"] == gen.N_IN and c.GENERATIVE_N_OUT == gen.N_OUT


def test_sig_mmd_is_refused_outside_the_generative_task():
    with pytest.raises(ConfigError, match="train.loss = 'sig_mmd'"):
        parse_config({"name": "x", "data": {"task": "yinyang"}, "model": {"layers": [{"n": 8}], "readout": None},
                      "train": {"loss": "sig_mmd"}})


@pytest.mark.slow
def test_generative_pipeline_learns_and_the_chip_samples_with_its_own_noise(tmp_path):
    cfg = config(tmp_path)
    assert cfg.train.loss == "sig_mmd" and cfg.n_in == gen.N_IN
    run = pipeline.run_pipeline(cfg, progress=False)
    tm = json.loads((run.dir / "train_metrics.json").read_text())
    assert tm["test_score"][-1] < 0.25 * tm["init"]                     # MMD^2 to the data falls (17.6 -> 2.3)
    par = json.loads((run.dir / "parity.json").read_text())
    assert par["ok"] and par["emu_vs_lava"]["samples"] == 3 and par["hw_exact_vs_emu"]["samples"] == 3
    g = json.loads((run.dir / "generative.json").read_text())
    assert [r["n"] for r in g["classes"]] == [30, 30, 30]
    for r in g["classes"]:
        for key in ("float_vs_data", "chip_vs_data", "chip_vs_float"):
            assert 0 <= r[key]["p_value"] <= 1 and r[key]["band"] > 0
    chip = np.load(run.dir / "emulate.npz")["spikes_1"]
    assert 0 < chip.mean() < 0.5                                           # the chip's noise draws differ per sample
    assert len({chip[i].tobytes() for i in range(0, 90, 3)}) > 20
    md = (run.dir / "report.md").read_text()
    assert "Generative test" in md and (run.dir / "generative_rasters.png").exists()


def test_mmd_advantages_are_the_exact_gradient():
    """On a model small enough to enumerate (each sample's raster is empty but for two spike
    sites, spiking with probabilities sigmoid(theta_1), sigmoid(theta_2)), the expectation of the
    likelihood-ratio estimate sum_i a_i dlog P(x_i) equals autograd's gradient of E[class_mmd2]."""
    import itertools
    T, m = 16, 4
    theta = torch.tensor([0.3, -0.8], dtype=torch.float64, requires_grad=True)
    data = torch.zeros(3, T, gen.N_OUT, dtype=torch.float64)
    data[0, 5, 1] = data[1, 9, 2] = data[2, 5, 1] = data[2, 9, 2] = 1
    y = torch.cat([torch.zeros(m, T, gen.K_CLASSES, dtype=torch.float64), data[[0, 1, 2, 0]]], 2)
    y[:, :, 0] = 1                                                          # all class 0
    e_mmd, e_est = 0.0, torch.zeros(2, dtype=torch.float64)
    for bits in itertools.product([0, 1], repeat=2 * m):
        p = torch.sigmoid(theta)
        b = torch.tensor(bits, dtype=torch.float64).view(m, 2)
        x = torch.zeros(m, T, gen.N_OUT, dtype=torch.float64)
        x[:, 5, 1], x[:, 9, 2] = b[:, 0], b[:, 1]
        logp_rows = (b * p.log() + (1 - b) * (1 - p).log()).sum(1)           # [m]
        prob = logp_rows.sum().exp()
        e_mmd = e_mmd + prob * gen.class_mmd2(x, y[..., gen.K_CLASSES:], np.zeros(m, int))
        adv, value = gen.mmd_advantages(x, y)
        assert abs(value - float(gen.class_mmd2(x, y[..., gen.K_CLASSES:], np.zeros(m, int)))) < 1e-12
        g = torch.autograd.grad((logp_rows * adv).sum(), theta, retain_graph=True)[0]
        e_est = e_est + prob.detach() * g
    exact = torch.autograd.grad(e_mmd, theta)[0]
    assert exact.abs().max() > 1e-3
    assert torch.allclose(e_est, exact, rtol=1e-9, atol=1e-12), (e_est, exact)


def test_score_estimator_on_the_generative_loss():
    """train.estimator 'score' with sig_mmd: the MMD's own weights through neurohw.grad (finite,
    every parameter reached); 'mixed' needs a per-sample loss: one-line errors from the config
    and from the estimator."""
    from neurohw.grad import gradient
    from neurohw import tasks
    cfg = config(train={"estimator": "score", "paths": 2})
    net = tasks.build_model(cfg)
    d = tasks.build_data(cfg)
    x, y = torch.as_tensor(d.x_train[:24], dtype=torch.float32), torch.as_tensor(d.y_train[:24])
    value, grads = gradient(net, x, y, tasks.loss_fn(cfg), "score", 2, generator=torch.Generator().manual_seed(0))
    assert np.isfinite(value) and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    with pytest.raises(ValueError, match="compares sets of samples"):
        gradient(net, x, y, tasks.loss_fn(cfg), "mixed", 2)
    with pytest.raises(ConfigError, match=r"train\.estimator.*mixed.*compares sets of samples"):
        config(train={"estimator": "mixed"})


@pytest.mark.parametrize("over,msg", [
    ({"train": {"score_lr": 0.01}}, "train.score_lr = 0.01.*only applies with train.score_epochs"),
    ({"train": {"score_epochs": 3, "estimator": "score"}}, "train.score_epochs = 3.*follows a surrogate training"),
    ({"train": {"score_epochs": 3, "paths": 1}}, "train.paths = 1"),
    ({"train": {"score_epochs": 3}, "neuron": {"stochastic": False}}, "train.score_epochs = 3.*known probability"),
])
def test_score_phase_config_rules(over, msg):
    with pytest.raises(ConfigError, match=msg):
        config(**over)


def test_score_phase_follows_the_surrogate_training(tmp_path):
    """train.score_epochs: the surrogate's epochs, then the score-function estimator's from where
    they left the net (its own checkpoints), the metrics one list; a re-run is up to date."""
    cfg = config(tmp_path, train={"epochs": 2, "score_epochs": 2, "score_lr": 0.005})
    assert cfg.train.paths == 2 and cfg.train.estimator == "surrogate"
    run = pipeline.run_pipeline(cfg, progress=False, stages=("data", "train"))
    m = json.loads((run.dir / "train_metrics.json").read_text())
    assert len(m["loss"]) == len(m["test_score"]) == 4
    assert m["score_phase"] == {"epochs": 2, "lr": 0.005, "paths": 2, "start": 2}
    assert (run.dir / "train_score" / "checkpoint.pt").exists()
    plain = config(tmp_path / "plain", train={"epochs": 2})
    assert plain.section_hash("train") != cfg.section_hash("train")
    assert "score_epochs" not in plain.to_dict()["train"]                   # old configs keep their hashes
    before = (run.dir / "float_model.pt").read_bytes()
    pipeline.run_pipeline(cfg, progress=False, stages=("data", "train"))
    assert (run.dir / "float_model.pt").read_bytes() == before
