"""Trainer core: the float LIF recurrence, escape functions and surrogate gradients."""
import numpy as np
import pytest
import torch

from neurohw import Noise
from neurohw.noise import escape_probability
from neurohw.train import Escape, LayerSpec, Spiking, SpikingNet, spike


def numpy_reference(x, params, readout):
    """Independent step-by-step NumPy LIF chain with one-step Dense delay and rest until l+1."""
    B, T, _ = x.shape
    mods = params + [readout]
    u = [np.zeros((B, p["W"].shape[0])) for p in mods]
    v = [np.zeros_like(a) for a in u]
    s_prev = [np.zeros_like(a) for a in u]
    spikes = [np.zeros((B, T, p["W"].shape[0])) for p in params]
    rv = np.zeros((B, T, readout["W"].shape[0]))
    for t in range(T):
        s_now = [np.zeros_like(a) for a in u]
        for l, p in enumerate(mods):
            if t < l + 1:
                continue
            inp = x[:, t - 1] if l == 0 else s_prev[l - 1]
            a = inp @ p["W"].T + (s_prev[l] @ p["R"].T if p.get("R") is not None else 0)
            u[l] = u[l] * (1 - p["du"]) + a
            v[l] = v[l] * (1 - p["dv"]) + u[l] + p["b"]
            if l < len(params):
                s = (v[l] - p["vth"] > 0).astype(float)
                v[l] = v[l] * (1 - s)
                s_now[l] = s
                spikes[l][:, t] = s
            else:
                rv[:, t] = v[l]
        s_prev = s_now
    return spikes, rv


def test_float_recurrence_matches_numpy_reference():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    specs = [LayerSpec(n_out=6, du=400, dv=800, vth=1.0, recurrent=True), LayerSpec(n_out=5, du=0, dv=4096, vth=0.5)]
    net = SpikingNet(4, specs, readout=LayerSpec(n_out=3, du=1000, dv=300))
    params = []
    with torch.no_grad():
        for m in list(net.layers) + [net.readout]:
            m.weight.copy_(torch.randn_like(m.weight))
            m.bias.copy_(0.1 * torch.randn_like(m.bias))
            if m.rec is not None:
                m.rec.copy_(0.5 * torch.randn_like(m.rec))
            du, dv = (float(d) for d in m.du_dv)
            params.append(dict(W=m.weight.double().numpy(), R=None if m.rec is None else m.rec.double().numpy(),
                               b=m.bias.double().numpy(), du=du, dv=dv, vth=float(m.vth)))
    x = (rng.random((3, 20, 4)) < 0.4).astype(float)
    res = net.double()(torch.tensor(x))
    ref_s, ref_v = numpy_reference(x, params[:-1], params[-1])
    for a, b in zip(res["spikes"], ref_s):
        assert np.array_equal(a.detach().numpy(), b)
    assert np.allclose(res["readout_v"].detach().numpy(), ref_v, rtol=0, atol=1e-12)
    assert sum(s.sum() for s in ref_s) > 0
    # decays follow the chip: du = 400 -> 401/4096, dv = 800 -> 800/4096
    assert params[0]["du"] == pytest.approx(401 / 4096) and params[0]["dv"] == pytest.approx(800 / 4096)


@pytest.mark.parametrize("kind", ["sigmoid", "erf", "exp", "uniform"])
def test_escape_derivative_is_the_derivative_of_f(kind):
    esc = Escape(kind, beta=2.0)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64, requires_grad=True)
    f = esc.f(x)
    (g,) = torch.autograd.grad(f.sum(), x)
    assert torch.all(torch.diff(f.detach()) >= 0)
    mask = (x.detach().abs() - 0.25).abs() > 1e-6 if kind == "uniform" else torch.ones_like(x, dtype=bool)
    assert torch.allclose(g[mask], esc.df(x.detach())[mask], atol=1e-9)


def test_single_stochastic_neuron_surrogate_is_f_prime_times_input():
    """For fixed draws, d s / d w = f'(w x - theta) * x exactly; averaged over draws it is the
    derivative of the expected output f(w x - theta)."""
    esc = Escape("sigmoid", beta=3.0)
    sp = Spiking(stochastic=True, escape=esc)
    x, theta = 0.7, 0.5
    w = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    gen = torch.Generator().manual_seed(1)
    draws = torch.rand(200000, generator=gen, dtype=torch.float64)
    s = spike((w * x - theta).expand(draws.shape), sp, draws=draws)
    (g,) = torch.autograd.grad(s.sum(), w)
    z = torch.tensor(0.9 * x - theta, dtype=torch.float64)
    fprime = esc.df(z) * x
    assert g.item() / draws.numel() == pytest.approx(fprime.item(), rel=1e-12)
    # the expected output's exact derivative, and the Monte-Carlo mean of s
    w2 = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    (exact,) = torch.autograd.grad(esc.f(w2 * x - theta), w2)
    assert exact.item() == pytest.approx(fprime.item(), rel=1e-12)
    p = esc.f(z).item()
    assert abs(s.mean().item() - p) < 4 * np.sqrt(p * (1 - p) / draws.numel())


def test_chip_escape_equals_the_chip_staircase():
    nz = Noise(inject="threshold", dist="logistic", exp=9, seed=3)
    esc = Escape.from_chip(nz)
    v = np.arange(-2000, 2000, 7)
    got = esc.f(torch.tensor(v, dtype=torch.float64)).numpy()
    assert np.array_equal(got, escape_probability(v, 0, nz))
    # and its smooth surrogate is the matching sigmoid: within 1 % of the staircase
    assert np.max(np.abs(torch.sigmoid(esc.beta * torch.tensor(v, dtype=torch.float64)).numpy() - got)) < 0.01


def test_deterministic_surrogates_and_scaling():
    x = torch.tensor([0.0, 0.1, -0.2], dtype=torch.float64, requires_grad=True)
    sp = Spiking(surrogate="superspike", surrogate_beta=10.0)
    s = spike(x, sp)
    assert s.tolist() == [0.0, 1.0, 0.0]
    (g,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(g, 1 / (10 * x.detach().abs() + 1) ** 2)
    sp2 = Spiking(surrogate="superspike", surrogate_beta=10.0, scale_by_beta=True)
    (g2,) = torch.autograd.grad(spike(x, sp2).sum(), x)
    assert torch.allclose(g2, g / 10)


def test_escape_validation():
    with pytest.raises(ValueError, match="escape: kind = 'tanh' is not allowed"):
        Escape("tanh")
    with pytest.raises(ValueError, match="beta = 0 must be > 0"):
        Escape("sigmoid", beta=0)


def test_losses():
    from neurohw.train import losses
    s = torch.zeros(2, 5, 3)
    s[0, 2, 1] = 1
    s[1, 0, 2] = 1
    assert losses.first_spike_time(s).tolist() == [[5, 2, 5], [5, 5, 0]]
    assert losses.l2_spike_train(s, torch.zeros_like(s)).item() == 1.0
    assert losses.van_rossum(s, s).item() == 0.0
    # one spike alone: sum over t of exp(-2t/tau) / tau, truncated at the raster's end
    one = torch.zeros(1, 50, 1)
    one[0, 0, 0] = 1
    expect = sum(np.exp(-2 * t / 10.0) for t in range(50)) / 10.0
    assert losses.van_rossum(one, torch.zeros_like(one), tau=10.0).item() == pytest.approx(expect, rel=1e-6)
    v = torch.randn(4, 7, 3)
    y = torch.tensor([0, 1, 2, 1])
    assert losses.max_over_time_ce(v, y).item() == pytest.approx(
        torch.nn.functional.cross_entropy(v.max(1).values, y).item())
    reg = losses.rate_regularizer([torch.ones(2, 4, 3)], lower=[0.0], upper=[0.5])
    assert reg.item() == pytest.approx(0.25)
    assert losses.fano_factor(torch.tensor([[1.0], [3.0]])).item() == pytest.approx(1.0)


def _tiny_task(seed=0):
    from neurohw import data
    f, y = data.yin_yang(96, seed)
    x = data.latency_encode(f, 12, t_max=8)
    return dict(x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])


def _tiny_net(stochastic):
    torch.manual_seed(3)
    sp = Spiking(stochastic=stochastic, escape=Escape("sigmoid", beta=5.0))
    net = SpikingNet(5, [LayerSpec(n_out=16, spiking=sp)], readout=LayerSpec(n_out=3))
    with torch.no_grad():
        net.layers[0].weight.normal_(0, 1.0)
    return net


@pytest.mark.parametrize("stochastic", [False, True])
def test_resume_reproduces_uninterrupted_training(tmp_path, stochastic):
    from neurohw.train import losses
    from neurohw.train.loop import TrainConfig, fit
    d = _tiny_task()
    loss = lambda o, y: losses.max_over_time_ce(o["readout_v"], y)  # noqa: E731
    pred = lambda o: o["readout_v"].max(1).values.argmax(1)  # noqa: E731
    a = _tiny_net(stochastic)
    ma = fit(a, d, loss, pred, TrainConfig(epochs=3, batch_size=16, trials=2), out_dir=tmp_path / "a", progress=False)
    calls = []

    def interrupted(o, y):          # Ctrl-C in the middle of epoch 2
        calls.append(1)
        if len(calls) > 4 * 2 + 3:
            raise KeyboardInterrupt
        return loss(o, y)
    b = _tiny_net(stochastic)
    with pytest.raises(KeyboardInterrupt):
        fit(b, d, interrupted, pred, TrainConfig(epochs=3, batch_size=16, trials=2), out_dir=tmp_path / "b",
            progress=False)
    # a new process builds a fresh net and resumes from the epoch-1 checkpoint
    b2 = _tiny_net(stochastic)
    mb = fit(b2, d, loss, pred, TrainConfig(epochs=3, batch_size=16, trials=2), out_dir=tmp_path / "b",
             progress=False)
    for p, q in zip(a.state_dict().values(), b2.state_dict().values()):
        assert torch.equal(p, q)
    assert ma["loss"] == mb["loss"] and len(mb["test_acc"]) == 3
    assert (tmp_path / "b" / "metrics.json").exists()
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".")]


def test_fit_gives_every_trial_and_epoch_its_own_noise_ids():
    """Hardware-exact nets draw their on-chip noise from sample ids: fit must pass ids that no
    other trial or epoch reuses, else the k sampled paths of an update are one path k times."""
    from neurohw.train import losses
    from neurohw.train.loop import TrainConfig, fit
    d = _tiny_task()
    net = _tiny_net(True)
    seen = []
    real_forward = net.forward

    def recording(x, generator=None, record=False, sample_ids=None):
        if torch.is_grad_enabled():                      # training passes, not evaluation
            seen.append(np.asarray(sample_ids).copy())
        return real_forward(x, generator=generator, record=record, sample_ids=sample_ids)
    net.forward = recording
    fit(net, d, lambda o, y: losses.max_over_time_ce(o["readout_v"], y),
        lambda o: o["readout_v"].max(1).values.argmax(1), TrainConfig(epochs=2, batch_size=16, trials=3),
        progress=False)
    n = len(d["x_train"])
    ids = np.concatenate(seen)
    assert len(seen) == 2 * 3 * -(-n // 16) and len(ids) == 2 * 3 * n
    assert len(np.unique(ids)) == len(ids)                # all distinct across trials and epochs


def test_fluctuation_init_hits_the_target_membrane_std():
    from neurohw.train.init import fluctuation_init
    rng = np.random.default_rng(0)
    x = (rng.random((256, 120, 50)) < 0.1).astype(np.float32)
    net = SpikingNet(50, [LayerSpec(n_out=200, du=409, dv=205, vth=1.0)])
    fluctuation_init(net, x, xi=5.0)
    with torch.no_grad():
        v = net(torch.as_tensor(x), record=True)["v"][0][:, 60:]
    per_neuron = v.reshape(-1, v.shape[-1]).std(0)          # fluctuations around each mean
    assert 0.7 < float(per_neuron.mean()) / (1.0 / 5.0) < 1.3
