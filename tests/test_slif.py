"""SLIF event-time gradients (exact vs finite differences on the same noise) and the clock's law."""
import math

import numpy as np
import pytest
import torch

from neurohw.slif import Draws, SLIFParams, check, simulate
from neurohw.slif.fast import single_neuron_grad


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_single_neuron_event_gradients_match_finite_differences(sigma):
    r = check.single_neuron(sigma, points=6, per_point=4, seed=3, T=2.0, c_range=(1.0, 2.5))
    assert (r.times_norm > 0).all() and (r.loss_grad.abs() > 0).all()      # not vacuous
    assert r.times_rel.max() <= 1e-3 and r.loss_rel.max() <= 1e-3


@pytest.mark.parametrize("sigma", [0.0, 0.5])
def test_network_4_16_2_event_gradients_match_finite_differences(sigma):
    r = check.network(sigma, points=3, per_point=1, seed=5, T=0.6)
    assert (r.times_norm > 0).all() and (r.loss_grad.abs() > 0).all()
    assert r.times_rel.max() <= 1e-3 and r.loss_rel.max() <= 1e-3


def test_clock_with_frozen_membrane_gives_exact_exponential_spike_times():
    """v frozen at 0 (mu1 = sigma = 0): the hazard is constant, the linear interpolant is exact, and
    spike k fires when the hazard integrated since spike k-1 reaches alpha - log U_k."""
    p = SLIFParams(mu1=0.0, sigma=0.0, v_reset=0.0, alpha=0.03, beta=5.0, vth=-0.5, T=5.0)
    d = Draws.sample(p, 50, 1, torch.Generator().manual_seed(0))
    t = simulate(p, 0.0, d).times[:, 0]
    lam = math.exp(p.beta * (0.0 - p.vth)) / p.tau_s
    isi = (p.alpha - d.log_u[:, 0, :3]) / lam
    expect = torch.cumsum(isi, dim=1)
    expect = torch.where(expect < p.T, expect, torch.full_like(expect, p.T))
    ok = torch.cumsum(isi, 1) < p.T - 1e-9
    assert torch.allclose(t[ok], expect[ok], atol=1e-12, rtol=0)
    assert ok.sum() > 100


def test_subtractive_reset_and_synaptic_jump():
    """One step, two neurons, mu1 = 0: neuron 0's clock crosses at the closed-form fraction; then its v
    dropped by exactly v_reset and neuron 1's current jumped by exactly W[0, 1]."""
    p = SLIFParams(mu1=0.0, sigma=0.0, v_reset=1.4, vth=-0.5, T=0.01, dt=0.01, n_record=1)
    d = Draws.sample(p, 1, 2, torch.Generator().manual_seed(1))
    d.log_u[:] = -50.0                                    # no other crossing
    d.log_u[0, 0, 0] = p.alpha - 1e-4                     # s0 = -1e-4
    W = torch.tensor([[0.0, 0.7], [0.0, 0.0]], dtype=torch.float64)
    r = simulate(p, 0.0, d, W, stop_when_recorded=False)
    lam = math.exp(p.beta * 0.5)
    assert r.counts.tolist() == [[1, 0]]
    assert abs(r.times[0, 0, 0].item() - 1e-4 / (lam * p.dt) * p.dt) < 1e-15
    assert r.v.tolist() == [[-1.4, 0.0]] and r.i.tolist() == [[0.0, 0.7]]


def test_compiled_single_neuron_equals_autograd_through_the_model():
    for sigma in (0.0, 0.5):
        p = SLIFParams(sigma=sigma)
        g = torch.Generator().manual_seed(7)
        d = Draws.sample(p, 32, 1, g)
        c = (0.5 + 1.5 * torch.rand(32, 1, generator=g, dtype=torch.float64)).requires_grad_(True)
        times = simulate(p, c, d).times[:, 0]
        jac = torch.stack([torch.autograd.grad(times[:, k].sum(), c, retain_graph=True)[0][:, 0]
                           for k in range(3)], 1)
        t, dt = single_neuron_grad(p, c.detach().numpy()[:, 0], d)
        np.testing.assert_allclose(t, times.detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(dt, jac.numpy(), rtol=1e-9, atol=1e-9)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="dt"):
        SLIFParams(dt=0.0)
    with pytest.raises(ValueError, match="W has shape"):
        p = SLIFParams(T=0.02)
        simulate(p, 1.0, Draws.sample(p, 2, 3), torch.zeros(2, 2))


def test_compiled_fresh_noise_is_thread_independent_and_has_the_models_law():
    """The counter-based streams: the same times on 1 or 2 threads; and the same law as the torch
    model on its own draws (means of the first three spike times within 4 standard errors)."""
    import numba
    from neurohw.slif.fast import single_neuron_grad_rng
    p = SLIFParams(sigma=0.5)
    c = np.full(1500, 1.5)
    n0 = numba.get_num_threads()
    a = single_neuron_grad_rng(p, c, 3)
    numba.set_num_threads(1)
    try:
        b = single_neuron_grad_rng(p, c, 3)
    finally:
        numba.set_num_threads(n0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    ref = simulate(p, 1.5, Draws.sample(p, 1500, 1, torch.Generator().manual_seed(2))).times[:, 0].numpy()
    se = np.sqrt(a[0].var(0) / 1500 + ref.var(0) / 1500)
    assert (np.abs(a[0].mean(0) - ref.mean(0)) < 4 * se).all()


def test_loss_tangents_equal_autograd_through_sigkernel():
    """The compiled forward tangents of the seed's two losses (depth-3 expected signature; PDE-MMD^2
    per run) equal autograd through neurohw.sigkernel on the same spike times."""
    from neurohw import sigkernel as sk
    from neurohw.slif.fast import marcus_paths, mmd_grad, sig3_tangent, single_neuron_grad_rng
    p = SLIFParams(sigma=0.5)
    t, dt = single_neuron_grad_rng(p, np.linspace(1.0, 2.0, 24), 1)
    tt = torch.tensor(t, requires_grad=True)
    S = sk.signature(sk.marcus_path(tt, p.T), 3)
    J = torch.stack([torch.autograd.grad(S[:, j].sum(), tt, retain_graph=True)[0] for j in range(14)], 1)
    Sn, Dn = sig3_tangent(t, dt)
    np.testing.assert_allclose(Sn, S.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Dn, (J.numpy() * dt[:, None, :]).sum(2), rtol=1e-10, atol=1e-10)
    x = sk.marcus_path(tt, p.T, time_scale=p.T, count_scale=3.0)
    y = sk.marcus_path(torch.tensor(single_neuron_grad_rng(p, np.full(20, 1.5), 2)[0]), p.T,
                       time_scale=p.T, count_scale=3.0)
    run, y_run = np.repeat([0, 1], [10, 14]), np.repeat([0, 1], [8, 12])
    xn, dxn = marcus_paths(t, dt, p.T, 3.0)
    np.testing.assert_array_equal(xn, x.detach().numpy())
    loss, grad = mmd_grad(xn, dxn, y.numpy(), run, y_run, 2)
    L = []
    for r in range(2):
        xr, yr = x[torch.from_numpy(run == r)], y[torch.from_numpy(y_run == r)]
        kxx, m = sk.gram(xr, xr), xr.shape[0]
        L.append((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1)) - 2 * sk.gram(xr, yr).mean())
    gt = torch.autograd.grad(torch.stack(L).sum(), tt)[0].numpy()
    np.testing.assert_allclose(loss, torch.stack(L).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, [(gt * dt)[run == r].sum() for r in range(2)], rtol=1e-9)


def test_compiled_discrete_baseline_equals_autograd_through_the_torch_trainer_ops():
    """The surrogate-gradient baseline: times and d t / d c of the compiled forward tangents equal
    the torch version (train.model.lif_step, train.spike, clamp) on the same draws."""
    from neurohw.slif.discrete import discrete_grad, discrete_torch
    p = SLIFParams()
    g = torch.Generator().manual_seed(0)
    B = 24
    c = (0.8 + 1.2 * torch.rand(B, generator=g, dtype=torch.float64)).requires_grad_(True)
    sig = torch.tensor([0.25, 0.5], dtype=torch.float64).repeat(B // 2)
    z = torch.randn(p.steps, B, generator=g, dtype=torch.float64)
    u = torch.rand(p.steps, B, generator=g, dtype=torch.float64)
    t = discrete_torch(p, c, sig, z, u)
    J = torch.stack([torch.autograd.grad(t[:, k].sum(), c, retain_graph=True)[0] for k in range(3)], 1)
    tn, dn = discrete_grad(p, c.detach().numpy(), sig.numpy(), -1, z.numpy(), u.numpy())
    np.testing.assert_allclose(tn, t.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dn, J.numpy(), rtol=1e-9, atol=1e-9)
    assert np.abs(dn).max() > 1
