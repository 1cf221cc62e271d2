"""Quantizer and hardware-exact trainer: representable integers, small errors, exact mapping
of the escape noise, bit-exact agreement with the emulator on quantized trained networks."""
import numpy as np
import pytest
import torch

from neurohw import chip, emu, quant
from neurohw.noise import escape_probability
from neurohw.train import Escape, LayerSpec, SpikingNet, Spiking
from neurohw.train.hw import HwExactNet


def make_net(seed, stochastic=False, kind="sigmoid", recurrent=False, n_in=12, n=20, n_out=3):
    torch.manual_seed(seed)
    sp = Spiking(stochastic=stochastic, escape=Escape(kind, 4.0))
    net = SpikingNet(n_in, [LayerSpec(n_out=n, spiking=sp, recurrent=recurrent, du=800, dv=1200)],
                     readout=LayerSpec(n_out=n_out))
    with torch.no_grad():
        for m in net.modules_in_order:
            m.weight.normal_(0, 0.6)
            m.bias.normal_(0, 0.05)
            if m.rec is not None:
                m.rec.normal_(0, 0.2)
    return net


def raster(seed, batch=16, steps=20, n_in=12, p=0.3):
    return (np.random.default_rng(seed).random((batch, steps, n_in)) < p).astype(np.float32)


@pytest.mark.parametrize("seed,stochastic,kind,recurrent", [
    (0, False, "sigmoid", False), (1, False, "sigmoid", True), (2, True, "sigmoid", False),
    (3, True, "uniform", True), (4, True, "erf", False), (5, True, "exp", False)])
def test_hw_exact_equals_emulator_on_quantized_net(seed, stochastic, kind, recurrent):
    net = make_net(seed, stochastic, kind, recurrent)
    x = raster(seed)
    plans = quant.plan(net, x, noise_seed=seed)
    inet = quant.to_int_network(net, plans)
    ref = emu.run(inet, x.astype(np.uint8), probes=True)
    out = HwExactNet(net, plans)(torch.as_tensor(x), record=True)
    for k in ("spikes", "u", "v"):
        for a, b in zip(out["int"][k], getattr(ref, k)):
            np.testing.assert_array_equal(a, b)
    assert sum(int(s.sum()) for s in ref.spikes[:-1]) > 0
    assert not ref.spikes[-1].any()                       # the readout never reaches its threshold
    # the float view is the integer state over the layer's scale
    for l, lq in enumerate(plans):
        np.testing.assert_allclose(out["v"][l].detach().numpy(), ref.v[l] / lq.scale, rtol=1e-6, atol=1e-6)


def test_hw_exact_gradients_flow_to_every_parameter():
    net = make_net(7, stochastic=True, recurrent=True)
    x = raster(7)
    plans = quant.plan(net, x)
    out = HwExactNet(net, plans)(torch.as_tensor(x))
    out["readout_v"].max(1).values.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("seed", range(4))
def test_weights_are_representable_and_close(seed):
    net = make_net(seed)
    plans = quant.plan(net, raster(seed))
    for m, lq in zip(net.modules_in_order, plans):
        w = lq.weight_ints(m.weight).numpy().astype(np.int64)
        np.testing.assert_array_equal(chip.lava_weights(w, lq.num_weight_bits), w)
        assert lq.mode == chip.SIGN_MIXED and (w % 2 == 0).all() and w.min() >= -256 and w.max() <= 254
        wf = m.weight.detach().double().numpy()
        err = np.abs(w * lq.q() - wf)
        assert np.sqrt((err ** 2).mean()) / wf.std() < 0.02          # 8-bit mixed: under 2 %
        assert (err > 2 * lq.q()).mean() < 0.01                      # almost nothing clipped
        assert chip.WEIGHT_EXP_RANGE[0] <= lq.weight_exp <= chip.WEIGHT_EXP_RANGE[1]
    rows = quant.report(net, plans, raster(seed))
    assert all(r["peak_v"] <= 0.5 and r["u_wraps"] == 0 and r["v_saturations"] == 0 for r in rows)


def test_weight_step_is_the_searched_optimum():
    """No other clip level on the search grid gives a smaller mean squared error."""
    net = make_net(11)
    m, lq = net.layers[0], quant.plan(net, raster(11))[0]
    w = m.weight.detach().double().numpy()
    best = quant.core.quant_error(w, lq.q(), lq.mode, 8)
    top = 254
    for f in quant.core.CLIP_FRACTIONS:
        assert best <= quant.core.quant_error(w, f * np.abs(w).max() / top, lq.mode, 8) + 1e-15


@pytest.mark.parametrize("kind,beta", [("sigmoid", 0.5), ("sigmoid", 4.0), ("sigmoid", 37.0), ("uniform", 3.0)])
def test_escape_noise_maps_exactly(kind, beta):
    """The chip's threshold noise realizes the float escape function: same beta, and the
    staircase P(spike | v) stays within one 1/256 step of f."""
    net = make_net(3, stochastic=True, kind=kind)
    net.layers[0].spec.spiking = Spiking(stochastic=True, escape=Escape(kind, beta))
    lq = quant.plan(net, raster(3))[0]
    assert lq.noise.inject == "threshold" and lq.noise.dist == quant.DEPLOY_NOISE[kind][0]
    assert lq.spiking.escape.beta == pytest.approx(beta, rel=1e-12)
    xs = np.linspace(-3 / beta, 3 / beta, 201)                       # float v - vth
    vth_eff = lq.vth << chip.VTH_SHIFT
    v = np.round(xs * lq.scale + vth_eff).astype(np.int64)
    p_chip = escape_probability(v, vth_eff, lq.noise)
    p_float = Escape(kind, beta).f(torch.as_tensor((v - vth_eff) / lq.scale)).numpy()
    assert np.abs(p_chip - p_float).max() < 0.02


def test_qat_forward_uses_the_grid_and_trains():
    net = make_net(5)
    x = torch.as_tensor(raster(5))
    plans = quant.plan(net, x.numpy())
    quant.attach(net, plans)
    w = net.layers[0].params()[0]
    assert torch.equal(w.detach(), plans[0].weight_ints(net.layers[0].weight) * plans[0].q())
    net(x)["readout_v"].sum().backward()
    assert net.layers[0].weight.grad.abs().sum() > 0
    quant.attach(net, None)
    assert net.layers[0].params()[0] is net.layers[0].weight


def test_unfittable_layer_is_a_clear_error():
    net = make_net(2)
    with torch.no_grad():
        net.layers[0].bias.fill_(1e6)
    with pytest.raises(ValueError, match="layer 0"):
        quant.plan(net, raster(2))


def test_out_of_range_decay_is_an_error():
    net = make_net(2)
    net.layers[0].fixed_decays[0] = 0.0            # du would be -1
    with pytest.raises(ValueError, match="du = -1"):
        quant.plan(net, raster(2))


@pytest.mark.parametrize("kind", ["current", "voltage"])
def test_additive_noise_maps_to_chip_noise_and_stays_exact(kind):
    torch.manual_seed(0)
    sd = 0.05
    spec = dict(noise_current=sd) if kind == "current" else dict(noise_voltage=sd)
    net = SpikingNet(12, [LayerSpec(n_out=20, du=800, dv=1200, **spec)], readout=LayerSpec(n_out=3))
    with torch.no_grad():
        for m in net.modules_in_order:
            m.weight.normal_(0, 0.6)
    x = raster(9)
    plans = quant.plan(net, x, noise_seed=5)
    lq = plans[0]
    assert lq.noise.inject == kind and lq.noise.dist == "logistic"
    chip_sd = lq.noise_std()[0 if kind == "current" else 1]
    assert sd / np.sqrt(2) <= chip_sd <= sd * np.sqrt(2)          # nearest power of two
    inet = quant.to_int_network(net, plans)
    ref = emu.run(inet, x.astype(np.uint8), probes=True)
    out = HwExactNet(net, plans)(torch.as_tensor(x), record=True)
    for a, b in zip(out["int"]["v"], ref.v):
        np.testing.assert_array_equal(a, b)


def test_float_current_noise_has_the_ar1_variance():
    """Noise alone (no input): u is AR(1) with stationary variance sd^2 / (1 - (1 - du_f)^2)."""
    sd, du = 0.1, 400
    net = SpikingNet(1, [LayerSpec(n_out=200, du=du, vth=1e9, noise_current=sd)])
    u = net(torch.zeros(20, 400, 1), generator=torch.Generator().manual_seed(1), record=True)["u"][0][:, 200:]
    a = 1 - (du + 1) / 4096
    expected = sd ** 2 / (1 - a ** 2)
    assert float(u.detach().var()) == pytest.approx(expected, rel=0.05)


def test_escape_and_additive_noise_together_is_an_error():
    net = SpikingNet(4, [LayerSpec(n_out=3, noise_current=0.1,
                                   spiking=Spiking(stochastic=True, escape=Escape("sigmoid", 4.0)))])
    with pytest.raises(ValueError, match="one noise source"):
        quant.plan(net, raster(1, n_in=4))


# ---------------------------------------------------------------------------------------------
# Issue 15: the deployed network is chosen by agreement with the float network's decisions

def test_agreement_and_pick_best():
    assert quant.agreement(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    with pytest.raises(ValueError, match="shape"):
        quant.agreement(np.zeros(3), np.zeros(4))
    assert quant.pick_best([0.9, 0.95, 0.95, 0.9]) == 1          # the earliest of the best
    assert quant.pick_best([0.97, 0.97]) == 0                     # candidate 0 (no QAT) wins a tie


def _tiny_cfg(**quant_keys):
    from pathlib import Path

    from neurohw.config import load_config, parse_config
    d = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml").to_dict()
    d["data"].update(n_train=200, n_val=50, n_test=20)
    d["train"]["epochs"] = 1
    d["quant"].update(quant_keys)
    d["deploy"]["lava"] = False
    return parse_config(d, source="tiny (test)")


CLIPS = quant.core.CLIP_FRACTIONS[::4]


def test_clip_level_is_the_most_agreeing_not_the_most_accurate():
    """With labels that contradict the float net's decisions, the most accurate clip level is not
    the most agreeing one; clip_select = agreement must pick the candidate whose decisions agree
    most with the float net's (computed here independently), and ignore the labels."""
    from neurohw import tasks
    from neurohw.pipeline import _select_clip, decisions
    cfg = _tiny_cfg(clip_select="agreement", weight_bits=3)
    d = tasks.build_data(cfg)
    torch.manual_seed(1)
    net = tasks.build_model(cfg)
    from neurohw.train.init import fluctuation_init
    fluctuation_init(net, d.x_train, xi=1.0, seed=1)
    ref = decisions(cfg, net, d.x_train)
    d.y_train = (ref + 1) % 3                     # every label disagrees with the float net
    trace = []
    score = _select_clip(cfg, net, d, trace)
    x = d.x_train
    peaks = quant.calibrate(net, x)
    base = [quant.plan_layer(m, *peaks[i], readout=m is net.readout, bits=3, noise_seed=i, where=f"layer {i}")
            for i, m in enumerate(net.modules_in_order)]
    cands = [base[0]] + [quant.plan_layer(net.layers[0], *peaks[0], readout=False, bits=3, noise_seed=0,
                                          clip=float(f)) for f in CLIPS]

    def agree(c):
        quant.attach(net, [c, base[1]])
        a = quant.agreement(decisions(cfg, net, x), ref)
        quant.attach(net, None)
        return a
    agrees = [agree(c) for c in cands]
    assert len(set(agrees)) > 2                   # the clip level matters here
    chosen = quant.plan(net, x, bits=3, select=score, clips=CLIPS)
    assert chosen[0] == cands[quant.pick_best(agrees)]
    assert trace[0] == agrees[0]                  # the scorer is agreement, not accuracy on the labels
    assert max(trace) > 0.5 > 1 - max(trace)      # (accuracy on these labels would be <= 1 - agreement)


def test_qat_epoch_deployed_is_the_most_agreeing_on_validation(tmp_path, monkeypatch):
    """The deployed QAT epoch (0 = none) is the one whose validation decisions agree most with the
    float net's, not the most accurate one: with shifted validation labels the two differ here."""
    import json

    from neurohw import tasks
    from neurohw.pipeline import decisions, run_pipeline
    from neurohw.rundir import load_data, load_float, load_quantized
    build = tasks.build_data

    def shifted(cfg):
        d = build(cfg)
        d.y_val = (d.y_val + 1) % 3
        return d
    monkeypatch.setattr(tasks, "build_data", shifted)
    cfg = _tiny_cfg(clip_select="agreement", qat_epochs=2, qat_lr=0.05)   # a large lr: QAT drifts
    run = run_pipeline(cfg, tmp_path / "r", progress=False, stages=("data", "train", "quantize"))
    v = json.loads((run.dir / "quant_report.json").read_text())["validation"]
    assert v["select"] == "agreement" and len(v["agreement"]) == 3 and len(v["qat_epochs"]) == 2
    assert v["chosen_epoch"] == quant.pick_best(v["agreement"])
    accs = [v["ptq"]] + v["qat_epochs"]
    assert v["deployed_agreement"] == max(v["agreement"]) and v["deployed"] == accs[v["chosen_epoch"]]
    assert quant.pick_best(accs) != v["chosen_epoch"]   # accuracy would have chosen another epoch
    d = load_data(run)
    ref = decisions(cfg, load_float(run), d.x_val)
    net, plans = load_quantized(run)                # the deployed weights really are that epoch's
    quant.attach(net, plans)
    assert quant.agreement(decisions(cfg, net, d.x_val), ref) == v["deployed_agreement"]
