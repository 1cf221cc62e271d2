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
