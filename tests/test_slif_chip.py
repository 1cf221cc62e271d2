"""The SLIF neuron on the chip: the quantized twin realizes the per-step clock with Gumbel threshold
noise, the chip's spike-time law equals its float twin's, Lava equals the emulator with that noise,
and a chip neuron with another input is told apart."""
import math

import numpy as np
import pytest
import torch

from neurohw import emu, slif_chip
from neurohw import sigkernel as sk
from neurohw.parity import compare
from neurohw.slif import SLIFParams

P = SLIFParams(sigma=0.0, T=1.0)


def paths(t):
    return sk.marcus_path(torch.as_tensor(t, dtype=torch.float64), P.T, time_scale=P.T, count_scale=3.0)


def test_chip_neuron_is_the_per_step_clock_with_gumbel_threshold_noise():
    inet = slif_chip.to_chip(P, 1.5, noise_seed=1)
    L = inet.layers[0]
    assert L.noise.inject == "threshold" and L.noise.dist == "gumbel"
    assert L.dv == round(P.mu1 * P.dt * 4096)
    net = slif_chip.twin(P, 1.5)
    assert float(net.layers[0].vth) == pytest.approx(P.vth + math.log(P.tau_s / P.dt) / P.beta)
    # escape of the twin at v: 1 - exp(-lambda(v) dt), the clock's per-step law
    x = torch.tensor([-0.5, 0.0, 0.3]) - math.log(P.tau_s / P.dt) / P.beta
    lam = torch.exp(P.beta * (x + math.log(P.tau_s / P.dt) / P.beta)) / P.tau_s
    esc = net.layers[0].spec.spiking.escape.f(x)
    np.testing.assert_allclose(esc.numpy(), (1 - torch.exp(-lam * P.dt)).numpy(), rtol=1e-5)


def test_chip_spike_times_follow_the_float_twin_and_tell_another_input_apart():
    n = 400
    chip = slif_chip.chip_times(slif_chip.to_chip(P, 1.5, noise_seed=1), P, n)
    twin = slif_chip.twin_times(slif_chip.twin(P, 1.5), P, n, seed=0)
    other = slif_chip.chip_times(slif_chip.to_chip(P, 1.35, noise_seed=1), P, n)
    g = torch.Generator().manual_seed(0)
    same = sk.permutation_test(paths(chip), paths(twin), n_perm=300, generator=g)
    diff = sk.permutation_test(paths(other), paths(twin), n_perm=300, generator=g)
    assert same["p_value"] > 0.05
    assert diff["p_value"] < 0.01 and diff["mmd2"] > 3 * diff["band"]
    se = np.sqrt(chip.var(0) / n + twin.var(0) / n)
    assert (np.abs(chip.mean(0) - twin.mean(0)) < 4 * se).all()


def test_lava_runs_the_slif_chip_neuron_like_the_emulator():
    from neurohw import lava as nlava
    inet = slif_chip.to_chip(P, 1.5, noise_seed=1)
    x = np.zeros((2, 60, 1), np.uint8)
    a = emu.run(inet, x, probes=True)
    assert a.spikes[0].sum() >= 4
    assert not compare(a, nlava.run(inet, x, probes=True))
