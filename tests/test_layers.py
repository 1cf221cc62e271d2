"""The trainer's conv, sum-pool and delayed projections (neurohw.train.model)."""
import numpy as np
import pytest
import torch

from neurohw.train import LayerSpec, SpikingNet
from neurohw.train import model as M

MEMORYLESS = dict(du=4095, dv=4096)       # u = this step's input: the trace shows the projection


def _conv_ref(x, w, stride, pad, dil, groups):
    """Cross-correlation written out on (H, W, C) maps, w torch-style (C_out, C_in/g, k, k)."""
    H, W, C = x.shape
    co, cg, k, _ = w.shape
    Ho = (H + 2 * pad - dil * (k - 1) - 1) // stride + 1
    Wo = (W + 2 * pad - dil * (k - 1) - 1) // stride + 1
    out = np.zeros((Ho, Wo, co))
    for o in range(co):
        g = o // (co // groups)
        for h in range(Ho):
            for ww in range(Wo):
                for i in range(k):
                    for j in range(k):
                        r, c = h * stride + i * dil - pad, ww * stride + j * dil - pad
                        if 0 <= r < H and 0 <= c < W:
                            out[h, ww, o] += x[r, c, g * cg:(g + 1) * cg] @ w[o, :, i, j]
    return out


@pytest.mark.parametrize("H,W,C,co,k,stride,pad,dil,groups", [
    (5, 7, 2, 4, 3, 1, 1, 1, 1), (6, 6, 4, 4, 2, 2, 0, 1, 2), (7, 5, 3, 6, 3, 2, 2, 2, 3), (4, 4, 1, 2, 1, 1, 0, 1, 1),
    (9, 8, 2, 2, 5, 3, 1, 1, 2)])
def test_conv_projection_is_the_written_out_cross_correlation(H, W, C, co, k, stride, pad, dil, groups):
    spec = LayerSpec(0, kind="conv", channels=co, kernel=k, stride=stride, padding=pad, dilation=dil, groups=groups)
    layer = M.LIFLayer(H * W * C, spec, (H, W, C))
    g = torch.Generator().manual_seed(H * 100 + k)
    w = torch.randn(layer.weight.shape, generator=g, dtype=torch.float64)
    x = (torch.rand(2, H * W * C, generator=g) < 0.5).double()
    got = layer.project(x, w)
    for b in range(2):
        ref = _conv_ref(x[b].reshape(H, W, C).numpy(), w.numpy(), stride, pad, dil, groups)
        assert layer.out_shape == ref.shape and layer.spec.n_out == ref.size
        np.testing.assert_allclose(got[b].numpy(), ref.reshape(-1), atol=1e-12)


def test_pool_projection_sums_blocks_per_channel():
    layer = M.LIFLayer(6 * 4 * 3, LayerSpec(0, kind="pool", kernel=2), (6, 4, 3))
    assert layer.out_shape == (3, 2, 3)
    x = torch.arange(2 * 72, dtype=torch.float64).reshape(2, 72)
    got = layer.project(x, torch.tensor([0.25], dtype=torch.float64)).reshape(2, 3, 2, 3)
    ref = x.reshape(2, 3, 2, 2, 2, 3).sum((2, 4)) * 0.25
    np.testing.assert_allclose(got.numpy(), ref.numpy())


def test_shapes_flow_through_conv_pool_and_dense():
    net = SpikingNet(512, [LayerSpec(0, kind="conv", channels=8, kernel=3, padding=1), LayerSpec(0, kind="pool", kernel=2),
                           LayerSpec(0, kind="conv", channels=16, kernel=3, stride=2, padding=1, groups=2)],
                     readout=LayerSpec(10), in_shape=(16, 16, 2))
    assert [m.spec.n_out for m in net.modules_in_order] == [2048, 512, 256, 10]
    assert [m.out_shape for m in net.layers] == [(16, 16, 8), (8, 8, 8), (4, 4, 16)]
    assert net.readout.weight.shape == (10, 256)
    out = net(torch.zeros(2, 5, 512), record=True)
    assert [s.shape for s in out["spikes"]] == [(2, 5, 2048), (2, 5, 512), (2, 5, 256)]


@pytest.mark.parametrize("layers,in_shape,msg", [
    ([LayerSpec(4), LayerSpec(0, kind="conv", channels=2)], (2, 2, 1), "layer 1: conv layer: needs an"),
    ([LayerSpec(0, kind="conv", channels=3, groups=2)], (4, 4, 2), "groups = 2 must divide"),
    ([LayerSpec(0, kind="conv", channels=2, kernel=5)], (4, 4, 1), "kernel 5"),
    ([LayerSpec(7, kind="pool", kernel=2)], (4, 4, 1), "n_out = 7 does not match"),
    ([LayerSpec(0, kind="conv", channels=2, max_delay=3)], (4, 4, 1), "max_delay = 3 is only for dense"),
    ([LayerSpec(0, kind="max")], (4, 4, 1), "kind = 'max'")])
def test_bad_layers_raise_one_line(layers, in_shape, msg):
    with pytest.raises(ValueError, match=msg) as e:
        SpikingNet(int(np.prod(in_shape)), layers, in_shape=in_shape)
    assert "\n" not in str(e.value)


def _one_synapse_net(delay: float, train: bool, max_delay: int = 8):
    spec = LayerSpec(1, max_delay=max_delay, train_delays=train, delay_sigma=2.0, vth=1e9, **MEMORYLESS)
    net = SpikingNet(1, [spec])
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
        if train:
            net.layers[0].delay.fill_(delay / max_delay)
        else:
            net.layers[0].fixed_delay.fill_(delay)
    return net


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("d", [0, 1, 5, 8])
def test_a_spike_arrives_one_plus_delay_steps_later(d, train):
    x = torch.zeros(1, 14, 1)
    x[0, 2, 0] = 1
    u = _one_synapse_net(d + (0.3 if train and d < 8 else 0.0), train)(x, record=True)["u"][0][0, :, 0]
    expected = np.zeros(14)
    expected[2 + 1 + d] = 1.0                  # sent at step 2, in u at step 3 + delay (DelayDense)
    np.testing.assert_array_equal(u.detach().numpy(), expected)


def test_trainable_delays_forward_is_the_rounded_delays():
    g = torch.Generator().manual_seed(0)
    spec = LayerSpec(5, max_delay=6, train_delays=True, **MEMORYLESS)
    net = SpikingNet(4, [spec], readout=LayerSpec(2))
    torch.nn.init.normal_(net.layers[0].weight, generator=g)
    torch.nn.init.normal_(net.readout.weight, generator=g)
    hard = SpikingNet(4, [LayerSpec(5, max_delay=6, **MEMORYLESS)], readout=LayerSpec(2))
    hard.load_state_dict({k: v for k, v in net.state_dict().items() if "delay" not in k and "sigma" not in k},
                         strict=False)
    with torch.no_grad():
        hard.layers[0].fixed_delay.copy_(net.layers[0].int_delays().double())
    assert not torch.equal(net.layers[0].delays, net.layers[0].delays.round())
    x = (torch.rand(3, 20, 4, generator=g) < 0.3).float()
    a, b = net(x, record=True), hard(x, record=True)
    for key in ("u", "v"):
        for p, q in zip(a[key], b[key]):
            torch.testing.assert_close(p, q)


def test_delay_gradient_points_to_the_rewarded_step():
    """Reward u at step 9 for a spike sent at step 2: the best delay is 6; the gradient says
    'longer' from a shorter delay and 'shorter' from a longer one."""
    x = torch.zeros(1, 14, 1)
    x[0, 2, 0] = 1
    grads = []
    for d in (4.0, 8.0):
        net = _one_synapse_net(d, True)
        u = net(x, record=True)["u"][0][0, :, 0]
        (-u[9]).backward()
        grads.append(float(net.layers[0].delay.grad))
    assert grads[0] < 0 < grads[1]            # gradient descent lengthens 4, shortens 8


def test_trainable_delays_learn_a_delay_and_anneal():
    torch.manual_seed(0)
    x = torch.zeros(1, 16, 1)
    x[0, 1, 0] = 1
    net = _one_synapse_net(1.0, True, max_delay=10)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    sigmas = []
    for step in range(60):
        net.anneal(step / 60)
        sigmas.append(float(net.layers[0].sigma))
        opt.zero_grad()
        u = net(x, record=True)["u"][0][0, :, 0]
        (-u[9] + 0.1 * u.pow(2).sum()).backward()
        opt.step()
    assert int(net.layers[0].int_delays()) == 7               # 1 + 1 + 7 = 9
    assert sigmas[0] == 2.0 and abs(sigmas[-1] - (M.SIGMA_MIN + 1.5 / 60)) < 1e-6
    assert all(a >= b for a, b in zip(sigmas, sigmas[1:]))


def test_trainable_delays_stay_in_range_and_come_back_from_its_end():
    """A delay pushed against max_delay is projected back into range after each update
    (SpikingNet.constrain, called by fit), so it keeps a gradient: when the reward moves to a
    shorter delay, the delay follows. Without the projection it leaves the range, where the
    clamped kernel has no gradient, and stays at max_delay."""
    x = torch.zeros(1, 16, 1)
    x[0, 1, 0] = 1
    for constrain in (True, False):
        torch.manual_seed(0)
        net = _one_synapse_net(8.0, True, max_delay=10)
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        top = 0.0
        for step in range(80):
            target = 12 if step < 40 else 7          # delay 10 (the end of the range), then 5
            opt.zero_grad()
            u = net(x, record=True)["u"][0][0, :, 0]
            (-u[target] + 0.1 * u.pow(2).sum()).backward()
            opt.step()
            if constrain:
                net.constrain()
            top = max(top, float(net.layers[0].delays.detach()))
        if constrain:
            assert top <= 10.0 and int(net.layers[0].int_delays()) == 5
        else:
            assert top > 10.0 and int(net.layers[0].int_delays()) == 10


def test_fixed_delays_are_integers_and_not_trained():
    net = SpikingNet(3, [LayerSpec(4, max_delay=5, delay_seed=7)])
    d = net.layers[0].delays
    assert torch.equal(d, d.round()) and d.min() >= 0 and d.max() <= 5
    assert not any("delay" in n for n, _ in net.named_parameters())
    d2 = SpikingNet(3, [LayerSpec(4, max_delay=5, delay_seed=7)]).layers[0].delays
    assert torch.equal(d, d2)


@pytest.mark.parametrize("d", [0, 3])
def test_recurrent_delay_returns_a_spike_one_plus_delay_steps_later(d):
    spec = LayerSpec(1, recurrent=True, rec_max_delay=4, vth=0.5, **MEMORYLESS)
    net = SpikingNet(1, [spec])
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
        net.layers[0].rec.fill_(0.25)                 # below threshold: the echo shows in u only
        net.layers[0].rec_delay.fill_(d)
    x = torch.zeros(1, 12, 1)
    x[0, 2, 0] = 1
    out = net(x, record=True)
    s, u = out["spikes"][0][0, :, 0], out["u"][0][0, :, 0]
    assert s.nonzero().flatten().tolist() == [3]       # input spike at 2 -> spike at 3
    expected = np.zeros(12)
    expected[3], expected[3 + 1 + d] = 1.0, 0.25
    np.testing.assert_allclose(u.detach().numpy(), expected)
