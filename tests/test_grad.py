"""neurohw.grad beyond the enumeration (tests/test_gradients.py): config keys, the estimators on
float and hardware-exact nets with the trainer's noise ids, fit with them, the finite-difference
reference against the exact gradient and against the unbiased estimator, and `neurohw gradcheck`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurohw.config import ConfigError, parse_config
from neurohw.grad import exact_gradient, fd_directional, gradient
from neurohw.grad.tiny import tiny_problem
from neurohw.train import Escape, LayerSpec, Spiking, SpikingNet, losses

ALL = ("surrogate", "score_plain", "score", "mixed")


def _cfg(**train) -> dict:
    return {"name": "g", "data": {"task": "yinyang", "steps": 12, "t_max": 8, "n_train": 64, "n_test": 32},
            "model": {"layers": [{"n": 16}], "readout": {"n": 3}},
            "neuron": {"stochastic": True, "beta": 5.0}, "train": {"epochs": 1, "batch_size": 16, **train},
            "deploy": {"lava": False}, "parity": {"samples": 4}}


def test_config_estimator_keys():
    c = parse_config(_cfg(estimator="mixed", paths=8))
    assert (c.train.estimator, c.train.paths) == ("mixed", 8)
    assert parse_config(c.to_dict()) == c
    assert parse_config(_cfg(estimator="score")).train.paths == 4            # default paths
    plain = parse_config(_cfg())
    assert (plain.train.estimator, plain.train.paths) == ("surrogate", None)
    assert "estimator" not in plain.to_dict()["train"]                       # old hashes unchanged
    assert plain.section_hash("train") == parse_config(_cfg(estimator="surrogate")).section_hash("train")
    assert plain.section_hash("train") != c.section_hash("train")


@pytest.mark.parametrize("train,neuron,expected", [
    (dict(estimator="reinforce"), {}, ["train.estimator = 'reinforce'", "one of 'surrogate', 'score', 'mixed'"]),
    (dict(estimator="score", paths=1), {}, ["train.paths = 1", "must be >= 2", "int 2..4096"]),
    (dict(estimator="mixed", paths="8"), {}, ["train.paths = '8'", "expected int"]),
    (dict(paths=8), {}, ["train.paths = 8", "only applies to train.estimator 'score' or 'mixed'"]),
    (dict(estimator="score", trials=2), {}, ["train.trials = 2", "does not apply to train.estimator = 'score'"]),
    (dict(estimator="mixed"), {"stochastic": False}, ["train.estimator = 'mixed'", "neuron.stochastic = False"]),
])
def test_config_estimator_mistakes(train, neuron, expected):
    d = _cfg(**train)
    d["neuron"].update(neuron)
    with pytest.raises(ConfigError) as e:
        parse_config(d, source="c.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("c.yaml: ") and "; allowed " in msg, msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def _tiny(seed=0, n=16, steps=12):
    from neurohw import data
    f, y = data.yin_yang(48, seed)
    x = torch.as_tensor(data.latency_encode(f, steps, t_max=8), dtype=torch.float32)
    torch.manual_seed(3)
    sp = Spiking(stochastic=True, escape=Escape("sigmoid", beta=5.0))
    net = SpikingNet(5, [LayerSpec(n_out=n, spiking=sp)], readout=LayerSpec(n_out=3))
    with torch.no_grad():
        net.layers[0].weight.normal_(0, 1.0)
        net.readout.weight.normal_(0, 0.5)
    return net, x, torch.as_tensor(y)


def _loss(o, y):
    return losses.mean_over_time_ce(o["readout_v"], y)


def _hw(net, x):
    from neurohw import quant
    from neurohw.train.hw import HwExactNet
    return HwExactNet(net, quant.plan(net, x.numpy().astype(np.uint8), bits=8, noise_seed=1))


@pytest.mark.parametrize("hw", [False, True], ids=["float", "hw_exact"])
def test_estimators_run_batched_with_the_trainers_noise_ids(hw):
    """Every estimator on float and hardware-exact nets, K paths in one forward: the readout's
    gradient (which no spike depends on) is the same for all of them on the same paths, the
    hidden layer's differs, and on the hardware-exact net the K paths draw different chip noise."""
    torch.set_num_threads(1)
    net, x, y = _tiny()
    x, y = x[:8], y[:8]
    model = _hw(net, x) if hw else net
    K = 3
    ids = [np.arange(8) + 100 * k for k in range(K)]
    grads = {}
    for est in ALL:
        _, g = gradient(model, x, y, _loss, est, K, generator=torch.Generator().manual_seed(5), ids=ids)
        assert all(t is not None and torch.isfinite(t).all() for t in g)
        grads[est] = g
    for est in ALL[1:]:
        for a, b in zip(grads["surrogate"][2:], grads[est][2:]):          # readout weight and bias
            assert torch.allclose(a, b, atol=1e-6), est
        assert not torch.allclose(grads["surrogate"][0], grads[est][0]), est
    if hw:
        with torch.no_grad():
            s = model(x.repeat(K, 1, 1), sample_ids=np.concatenate(ids))["spikes"][0].view(K, 8, -1)
        assert not torch.equal(s[0], s[1]) and not torch.equal(s[1], s[2])
        with torch.no_grad():
            again = model(x.repeat(K, 1, 1), sample_ids=np.concatenate(ids))["spikes"][0].view(K, 8, -1)
        assert torch.equal(s, again)                                        # ids fix the chip's draws


@pytest.mark.parametrize("estimator,hw", [("mixed", False), ("score", True)])
def test_fit_with_an_unbiased_estimator(estimator, hw):
    """fit trains with score / mixed: every path of every update and epoch gets its own noise ids,
    the parameters move, the recorded loss is finite."""
    from neurohw.train.loop import TrainConfig, fit
    torch.set_num_threads(1)
    net, x, y = _tiny()
    model = _hw(net, x) if hw else net
    d = dict(x_train=x[:32].numpy(), y_train=y[:32].numpy(), x_test=x[32:].numpy(), y_test=y[32:].numpy())
    seen = []
    real = model.forward

    def recording(xx, generator=None, record=False, sample_ids=None, tape=None):
        if torch.is_grad_enabled():
            seen.append(np.asarray(sample_ids).copy())
        return real(xx, generator=generator, record=record, sample_ids=sample_ids, tape=tape)
    model.forward = recording
    before = net.layers[0].weight.detach().clone()
    m = fit(model, d, _loss, lambda o: o["readout_v"].mean(1).argmax(1),
            TrainConfig(epochs=2, batch_size=16, estimator=estimator, paths=3), progress=False)
    ids = np.concatenate(seen)
    assert len(seen) == 2 * 2 and len(ids) == 2 * 3 * 32 and len(np.unique(ids)) == len(ids)
    assert np.isfinite(m["loss"]).all() and not torch.equal(before, net.layers[0].weight.detach())


def test_finite_differences_match_the_exact_gradient():
    """On an enumerable problem, CRN central differences along random directions equal the exact
    directional derivative within 3 standard errors, and their error bar is honest (not 0)."""
    torch.set_num_threads(1)
    net, x, y, loss = tiny_problem("two_layer", "moderate", 0)
    exact = exact_gradient(net, x, y, loss)
    g = torch.Generator().manual_seed(0)
    dirs = [[torch.randn(p.shape, generator=g, dtype=p.dtype) for p in net.parameters()] for _ in range(3)]
    mean, se = fd_directional(net, x, y, loss, dirs, h=0.05, reps=10, paths=2000)
    true = np.array([sum(float((a * b).sum()) for a, b in zip(d, exact)) for d in dirs])
    assert (se > 0).all() and (np.abs(mean - true) <= 3 * se).all(), (mean, se, true)


def test_unbiased_estimator_agrees_with_finite_differences():
    """Too big to enumerate (16 neurons x 11 steps): the mixed estimator and the CRN finite
    differences agree within 3 combined standard errors along directions in each layer, and the
    surrogate control variate cuts the plain score function's variance in the hidden layer > 5x
    (the readout's gradient is the same pathwise one in every estimator)."""
    from neurohw.grad.audit import AuditSettings, audit
    torch.set_num_threads(1)
    net, x, y = _tiny()
    s = AuditSettings(batch=16, paths=8, reps=12, directions=3, fd_reps=20, fd_paths=16, h=0.02,
                      path_grid=(2, 8), grid_reps=3, estimators=("surrogate", "score_plain", "mixed"), seed=1)
    res = audit(net, x[:16], y[:16], _loss, s)
    for row in res["estimators"]["mixed"]["per_layer"]:
        assert row["agree"], row
    hidden, readout = res["variance_reduction"]["mixed"]
    assert hidden > 5 and readout == pytest.approx(1.0), res["variance_reduction"]   # no spike feeds the readout's


def test_gradcheck_command(tmp_path):
    import yaml

    from neurohw.cli import main
    cfg = _cfg()
    cfg["out_dir"] = str(tmp_path / "run")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    args = ["gradcheck", str(tmp_path / "c.yaml"), "--quick", "--quiet", "--batch", "4", "--reps", "3",
            "--fd-reps", "3", "--directions", "1"]
    assert main(args) == 0
    res = json.loads((tmp_path / "run" / "gradcheck.json").read_text())
    assert res["layers"] == ["layer 0", "layer 1 (readout)"]
    assert set(res["estimators"]) == set(ALL) and res["variance_vs_paths"]["mixed"][0]["paths"] == 2
    assert (tmp_path / "run" / "gradcheck.png").stat().st_size > 1000
    assert "| layer 0 | mixed |" in (tmp_path / "run" / "gradcheck.md").read_text()
    assert main(["gradcheck", str(tmp_path / "c.yaml"), "--paths", "1"]) == 1       # one-line error


def test_pipeline_trains_with_mixed_and_the_report_shows_the_audit(tmp_path):
    """A stochastic config trained with `mixed` (float) and QAT'd with it on the hardware-exact
    net runs end to end with parity; `gradcheck RUN --hw` audits the trained net, times the
    estimators on its hardware-exact net, and the run's report carries the audit."""
    from neurohw import cli, pipeline
    d = _cfg(estimator="mixed", paths=2)
    d.update(out_dir=str(tmp_path / "run"), quant={"qat_epochs": 1, "qat_hw_exact": True})
    run = pipeline.run_pipeline(parse_config(d), progress=False)
    assert json.loads((run.dir / "report.json").read_text())["parity"]["ok"]
    assert json.loads((run.dir / "train_metrics.json").read_text())["config"]["estimator"] == "mixed"
    assert cli.main(["gradcheck", str(run.dir), "--quick", "--quiet", "--hw", "--batch", "4", "--reps", "3",
                     "--fd-reps", "3", "--directions", "1"]) == 0
    res = json.loads((run.dir / "gradcheck.json").read_text())
    assert res["network"] == "trained" and set(res["hw_seconds_per_path"]) == {"surrogate", "score", "mixed"}
    assert cli.main(["report", str(run.dir), "--quiet"]) == 0
    md = (run.dir / "report.md").read_text()
    assert "## Gradient audit" in md and "| layer 0 | mixed |" in md and "gradcheck.png" in md
