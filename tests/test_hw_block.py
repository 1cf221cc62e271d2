"""HwExactNet's block forward (one projection and one _LifBlock per layer) against its step loop:
the same values (to float32 rounding: the step loop's straight-through u + (u_chip - u) rounds)
and the same gradients, on random integer networks with every surrogate, detached and attached
resets, stochastic escapes from the chip's noise, readouts and conv / pool stacks."""
import copy
import dataclasses

import numpy as np
import pytest
import torch

from neurohw import synth
from neurohw.quant import from_int_network
from neurohw.train.escape import Spiking
from neurohw.train.hw import HwExactNet


def _run(fnet, plans, x, block):
    net = copy.deepcopy(fnet)
    out = HwExactNet(net, plans, block=block)(torch.as_tensor(x, dtype=torch.float32), record=True)
    g = torch.Generator().manual_seed(1)
    loss = sum((t * torch.randn(t.shape, generator=g)).sum() for t in out["spikes"] + out["u"] + out["v"])
    if "readout_v" in out:
        loss = loss + 1e-3 * (out["readout_v"] ** 2).sum()
    if loss.requires_grad:          # one step: nothing reaches any layer, no graph
        loss.backward()
    return ([t.detach() for t in out["spikes"] + out["u"] + out["v"]],
            [p.grad if p.grad is not None else torch.zeros_like(p) for p in net.parameters()], out["int"])


@pytest.mark.parametrize("case", range(8))
def test_block_equals_step_loop(case):
    rng = np.random.default_rng(900 + case)
    make = synth.random_projection_network if case >= 6 else synth.random_network
    while True:
        net = make(rng, p_noise=0.4, graded=False)
        if not any(L.recurrent or L.delays is not None or L.rec_delays is not None for L in net.layers):
            break
    x = synth.random_raster(rng, net, 3, 14)
    stochastic = case % 4 == 3
    fnet, plans = from_int_network(net, readout=bool(case % 2),
                                   spiking=Spiking(stochastic=True) if stochastic else None)
    if not stochastic:
        sp = Spiking(surrogate=("superspike", "sigmoid")[case % 2], detach_reset=case % 3 != 1,
                     scale_by_beta=case % 3 == 2)
        for m in fnet.modules_in_order:
            m.spec = dataclasses.replace(m.spec, spiking=sp)
    (vals_b, grads_b, ints_b), (vals_s, grads_s, ints_s) = (_run(fnet, plans, x, b) for b in (True, False))
    for k in ints_s:
        for a, b in zip(ints_b[k], ints_s[k]):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(vals_b, vals_s):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * float(b.abs().max() + 1))
    assert any(float(g.abs().max()) > 0 for g in grads_s)
    for a, b in zip(grads_b, grads_s):
        assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max() + 1e-12), float((a - b).abs().max())


@pytest.mark.parametrize("steps", [1, 2])
def test_block_short_runs(steps):
    """One or two steps (no input, or one step of it, reaches layer 0): the block path (no
    recurrence, so it is taken) gives the step loop's values."""
    rng = np.random.default_rng(77)
    net = synth.random_network(rng, p_recurrent=0.0, graded=False)
    x = synth.random_raster(rng, net, 2, steps)
    fnet, plans = from_int_network(net)
    (vals_b, _, ints_b), (vals_s, _, ints_s) = (_run(fnet, plans, x, b) for b in (True, False))
    for a, b in zip(vals_b, vals_s):
        torch.testing.assert_close(a, b)
