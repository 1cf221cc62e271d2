"""Conv, pool and delay layers on the chip: quantizer -> IntLayer kinds, and the hardware-exact
trainer bit-exact against the emulator and the NumPy reference run (parity.reference_run)."""
import numpy as np
import pytest
import torch

from neurohw import emu, parity, quant, synth
from neurohw.train import LayerSpec, SpikingNet
from neurohw.train.hw import HwExactNet, run_int_network
from neurohw.train.init import fluctuation_init


def _same(a, b):
    assert parity.compare(a, b) == []
    for f in ("spikes", "u", "v"):
        for x, y in zip(getattr(a, f), getattr(b, f)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(24))
def test_hw_exact_trainer_matches_the_reference_on_random_projection_networks(seed):
    """Random conv / pool / delay stacks over the chip's ranges (synth.random_projection_network:
    strides, paddings, dilations, groups, sign modes, delays 0..63, recurrent delays), noise on and off."""
    rng = np.random.default_rng(7000 + seed)
    net = synth.random_projection_network(rng, graded=False, p_noise=0.4)
    x = synth.random_raster(rng, net, 3, 14)
    hw = run_int_network(net, x)
    _same(parity.reference_run(net, x), hw)
    _same(emu.run(net, x, probes=True), hw)


def _float_net(seed=0):
    torch.manual_seed(seed)
    layers = [LayerSpec(0, kind="conv", channels=4, kernel=3, padding=1, du=2048, dv=2048),
              LayerSpec(0, kind="pool", kernel=2, du=4095, dv=4096),
              LayerSpec(0, kind="conv", channels=6, kernel=(3, 2), stride=2, groups=2, du=1024, dv=1024),
              LayerSpec(12, max_delay=5, train_delays=True, du=1024, dv=2048)]
    net = SpikingNet(6 * 6 * 2, layers, readout=LayerSpec(3), in_shape=(6, 6, 2))
    x = (np.random.default_rng(seed).random((16, 16, 72)) < 0.25).astype(np.uint8)
    fluctuation_init(net, x, xi=1.5, seed=seed)
    with torch.no_grad():
        net.layers[3].bias.uniform_(-0.2, 0.2)
    return net, x


def test_quantizer_makes_the_chip_kinds_and_the_hw_exact_net_runs_them():
    net, x = _float_net()
    plans = quant.plan(net, x)
    inet = quant.to_int_network(net, plans)
    assert [L.kind for L in inet.layers] == ["conv", "pool", "conv", "delay", "dense"]
    conv, pool, conv2, dl = inet.layers[:4]
    assert conv.weight_exp == pool.weight_exp == conv2.weight_exp == 0          # Lava's Conv ignores it
    assert conv.weights.shape == (4, 3, 3, 2) and conv2.weights.shape == (6, 3, 2, 2)
    assert conv2.conv.stride == (2, 2) and conv2.conv.groups == 2 and conv2.conv.in_shape == (3, 3, 4)
    assert pool.conv.pool and len(np.unique(pool.weights)) == 1 and pool.weights.shape == (4, 2, 2, 1)
    np.testing.assert_array_equal(dl.delays, net.layers[3].int_delays().numpy())
    # the torch kernel (C_out, C_in/g, kh, kw) is the bundle's (C_out, kh, kw, C_in/g): same cross-correlation
    w = plans[0].weight_ints(net.layers[0].weight).numpy()
    np.testing.assert_array_equal(conv.weights, w.transpose(0, 2, 3, 1))
    with torch.no_grad():
        hw = HwExactNet(net, plans)(torch.as_tensor(x, dtype=torch.float32), record=True)
    ref = parity.reference_run(inet, x)
    got = type(ref)(hw["int"]["spikes"], hw["int"]["u"], hw["int"]["v"])
    _same(ref, got)
    _same(emu.run(inet, x, probes=True), got)
    assert sum(int(s.sum()) for s in ref.spikes) > 0
    # the fake-quantized float forward (the QAT view) follows the chip closely
    quant.attach(net, plans)
    with torch.no_grad():
        out = net(torch.as_tensor(x, dtype=torch.float32))
    quant.attach(net, None)
    agree = [float((s.numpy().astype(np.uint8) == e).mean()) for s, e in zip(out["spikes"], ref.spikes)]
    assert min(agree) > 0.97, agree


def test_hw_exact_gradients_reach_conv_pool_and_delays():
    net, x = _float_net(1)
    plans = quant.plan(net, x)
    out = HwExactNet(net, plans)(torch.as_tensor(x, dtype=torch.float32))
    out["readout_v"].max(1).values.sum().backward()
    for name in ("layers.0.weight", "layers.1.weight", "layers.2.weight", "layers.3.weight", "layers.3.delay"):
        g = dict(net.named_parameters())[name].grad
        assert g is not None and float(g.abs().sum()) > 0, name


def test_random_suite_covers_every_kind_and_recurrent_delays():
    kinds, rec_delays = set(), 0
    for seed in range(24):
        net = synth.random_projection_network(np.random.default_rng(7000 + seed), graded=False, p_noise=0.4)
        kinds |= {L.kind for L in net.layers}
        rec_delays += sum(L.rec_delays is not None for L in net.layers)
    assert kinds == {"dense", "conv", "pool", "delay"} and rec_delays >= 3
