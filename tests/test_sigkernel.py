"""Signatures of spike trains: Marcus lift, truncated signatures, the PDE signature kernel, MMD."""
import math

import numpy as np
import torch

from neurohw import sigkernel as sk
from neurohw.slif import Draws, SLIFParams
from neurohw.slif.fast import single_neuron_grad


def _smooth_paths(count, points=12, d=2, scale=0.35, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, points, dtype=torch.float64)
    f = 1 + 2 * torch.rand(count, d, 1, generator=g, dtype=torch.float64)
    ph = 2 * math.pi * torch.rand(count, d, 1, generator=g, dtype=torch.float64)
    return (scale * torch.sin(f * t + ph)).transpose(1, 2)              # [count, points, d]


def test_pde_kernel_equals_truncated_signature_inner_product_within_truncation_error():
    x, y = _smooth_paths(4, seed=1), _smooth_paths(3, seed=2)
    k = sk.sig_kernel(x, y, refine=4)
    L = lambda p: (p[:, 1:] - p[:, :-1]).norm(dim=-1).sum(1)             # noqa: E731  1-variation
    lxy = L(x)[:, None] * L(y)[None, :]
    for m in (2, 3, 5):
        trunc = 1 + sk.signature(x, m) @ sk.signature(y, m).T
        tail = sum(lxy ** j / float(math.factorial(j)) ** 2 for j in range(m + 1, 25))
        err = (k - trunc).abs()
        assert (err <= tail + 2e-5).all(), (m, err.max(), tail.min())
        if m == 2:
            assert err.max() > 1e-4                                     # the truncation is visible
    assert (k - (1 + sk.signature(x, 7) @ sk.signature(y, 7).T)).abs().max() < 2e-5


def test_signature_of_a_marcus_spike_path_has_its_closed_form():
    t = torch.tensor([[0.3, 0.7, 1.9], [0.2, 5.0, 5.0]], dtype=torch.float64)
    S = sk.signature(sk.marcus_path(t, 5.0), 2)
    assert torch.allclose(S[:, 0], t[:, 2]) and torch.allclose(S[:, 1], torch.full((2,), 3.0, dtype=torch.float64))
    # level 2, words (t,t), (t,N), (N,t), (N,N): int t dN = sum t_k; shuffle: S^tN + S^Nt = S^t S^N
    assert torch.allclose(S[:, 3], t.sum(1))
    assert torch.allclose(S[:, 4], 3 * t[:, 2] - t.sum(1))
    assert torch.allclose(S[:, 2], t[:, 2] ** 2 / 2) and torch.allclose(S[:, 5], torch.full((2,), 4.5, dtype=torch.float64))


def test_marcus_path_orders_events_of_several_neurons():
    t = torch.tensor([[[0.5, 2.0], [0.1, 0.9]]], dtype=torch.float64)     # 2 neurons, 2 spikes each
    P = sk.marcus_path(t, 5.0)[0]
    expect = [[0, 0, 0], [0.1, 0, 0], [0.1, 0, 1], [0.5, 0, 1], [0.5, 1, 1], [0.9, 1, 1], [0.9, 1, 2],
              [2.0, 1, 2], [2.0, 2, 2]]
    assert torch.allclose(P, torch.tensor(expect, dtype=torch.float64))


def test_pysiglib_kernel_and_gradient_equal_ours():
    x, y = _smooth_paths(5, seed=3), _smooth_paths(4, seed=4)
    for refine in (0, 2):
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        k1 = sk.gram(a, y, refine, "own")
        k2 = sk.gram(b, y, refine, "pysiglib")
        assert torch.allclose(k1, k2, rtol=0, atol=1e-12)
        k1.sum().backward(); k2.sum().backward()
        assert torch.allclose(a.grad, b.grad, rtol=0, atol=1e-10)


def _slif_paths(c, n, seed, sigma=0.5):
    p = SLIFParams(sigma=sigma)
    t, _ = single_neuron_grad(p, c, Draws.sample(p, n, 1, torch.Generator().manual_seed(seed)))
    return sk.marcus_path(torch.from_numpy(t), p.T, time_scale=p.T, count_scale=3.0)


def test_mmd_inside_permutation_band_for_one_distribution_and_above_it_for_two():
    g = torch.Generator().manual_seed(0)
    a, b, far = _slif_paths(1.5, 40, 1), _slif_paths(1.5, 40, 2), _slif_paths(1.25, 40, 3)
    same = sk.permutation_test(a, b, n_perm=200, generator=g)
    diff = sk.permutation_test(a, far, n_perm=200, generator=g)
    assert same["mmd2"] <= same["band"] and same["p_value"] > 0.05
    assert diff["mmd2"] > 3 * diff["band"] and diff["p_value"] < 0.01
    # the unbiased estimator is centred: its permutation null straddles 0
    assert min(same["null"]) < 0 < max(same["null"])


def test_bad_input_is_named():
    import pytest
    with pytest.raises(ValueError, match="backend"):
        sk.gram(_smooth_paths(2), _smooth_paths(2), 0, "cuda")
    with pytest.raises(ValueError, match="refine"):
        sk.sig_kernel(_smooth_paths(2), _smooth_paths(2), -1)
