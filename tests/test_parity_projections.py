"""Randomized parity for conv, sum-pool and DelayDense layers: the emulator equals Lava's own
Conv / DelayDense processes and the NumPy reference (neurohw.parity.reference_run) on every
spike and every u and v value."""
import os

import numpy as np
import pytest

from neurohw import IntLayer, IntNetwork, chip, emu, synth
from neurohw.emu import project
from neurohw import lava as nlava
from neurohw.parity import compare, reference_run

N_REFERENCE, REF_CHUNK = 240, 60          # networks checked emulator = NumPy reference
# Networks also checked against Lava, up to 12 per Lava run (chunk k: the first networks of seed
# 3000 + k). Lava starts an OS process per process of the graph (~2.7 s CPU per random network
# with probes, measured under load), so `make test` checks 12 (2 runs of 6, noise off / on);
# `make bench-parity-projections` runs 204 (NEUROHW_LAVA_NETWORKS=204: 17 runs of 12).
N_LAVA = int(os.environ.get("NEUROHW_LAVA_NETWORKS", 12))
LAVA_RUNS = max(2, -(-N_LAVA // 12))
LAVA_CHUNK = min(12, N_LAVA // LAVA_RUNS)


def networks(seed, n, p_noise):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        net = synth.random_projection_network(rng, p_noise=p_noise)
        yield net, synth.random_raster(rng, net, int(rng.integers(1, 4)), int(rng.integers(1, 20)))


def coverage(nets):
    """What a chunk exercised: kinds, kernel sizes, geometry, sign modes, delays, recurrence."""
    c = dict(kinds=set(), kernels=set(), stride=False, padding=False, dilation=False, groups=False,
             odd=False, even=False, modes=set(), delays=set(), rec_delay=False, graded=False, noise=False,
             depthwise=False)
    for net in nets:
        c["kinds"] |= set(net.kinds)
        c["graded"] |= net.input_message_bits > 0
        for layer in net.layers:
            c["noise"] |= layer.noise.on
            c["rec_delay"] |= layer.rec_delays is not None and layer.rec_max_delay > 0
            if layer.delays is not None:
                c["delays"] |= {int(layer.delays.min()), layer.max_delay}
            if layer.conv is not None and not layer.conv.pool:
                cv = layer.conv
                c["depthwise"] |= project.is_depthwise(layer)
                c["kernels"] |= set(layer.weights.shape[1:3])
                c["stride"] |= max(cv.stride) > 1
                c["padding"] |= max(cv.padding) > 0
                c["dilation"] |= max(cv.dilation) > 1
                c["groups"] |= cv.groups > 1
                c["odd"] |= any(s % 2 == 1 and s > 1 for s in cv.in_shape[:2])
                c["even"] |= any(s % 2 == 0 for s in cv.in_shape[:2])
                c["modes"].add(chip.sign_mode(layer.weights))
    return c


@pytest.mark.parity
@pytest.mark.parametrize("chunk", range(N_REFERENCE // REF_CHUNK))
def test_emulator_equals_reference(chunk):
    """Emulator (event rows, ring buffers; depthwise convs and pools output-stationary, and with
    path 'event' scattered) = NumPy reference (gather conv, Lava's rolled buffer)."""
    cases = list(networks(3000 + chunk, REF_CHUNK, p_noise=0.5 * (chunk % 2)))
    bad = [(i, m) for i, (net, x) in enumerate(cases)
           if (m := compare(emu.run(net, x, probes=True), reference_run(net, x))
               + compare(emu.run(net, x, probes=True, path="event"), reference_run(net, x)))]
    assert not bad, bad
    c = coverage(net for net, _ in cases)
    assert c["kinds"] == {"conv", "pool", "delay", "dense"}
    assert c["depthwise"]          # output-stationary path on a depthwise conv, not only on pools
    assert c["kernels"] == set(range(1, 8)), c["kernels"]
    assert c["stride"] and c["padding"] and c["dilation"] and c["groups"] and c["odd"] and c["even"]
    assert c["modes"] == {chip.SIGN_EXCITATORY, chip.SIGN_MIXED, chip.SIGN_INHIBITORY}
    assert {0, chip.MAX_DELAY} <= c["delays"] and c["rec_delay"] and c["graded"]
    assert c["noise"] == bool(chunk % 2)
    assert sum(int(s.sum()) for net, x in cases for s in emu.run(net, x).spikes) > 0


@pytest.mark.parity
@pytest.mark.parametrize("chunk", range(LAVA_RUNS))
def test_emulator_equals_lava(chunk):
    """Emulator = Lava (Conv, DelayDense, LIFReset / ChipLIF) = NumPy reference, a chunk of
    networks in one Lava run."""
    cases = list(networks(3000 + chunk, LAVA_CHUNK, p_noise=0.5 * (chunk % 2)))
    results = nlava.run_many([net for net, _ in cases], [x for _, x in cases], probes=True)
    bad = []
    for i, ((net, x), b) in enumerate(zip(cases, results)):
        a = emu.run(net, x, probes=True)
        if m := compare(a, b) + compare(a, reference_run(net, x)):
            bad.append((i, m))
    assert not bad, bad
    c = coverage(net for net, _ in cases)
    assert {"conv", "pool", "delay"} <= c["kinds"] and c["delays"]


def leaky_network(delay):
    """A bias-driven layer that spikes every step into a DelayDense: without the quiet gap its
    last spikes of one sample would arrive in the next."""
    hot = IntLayer(weights=np.zeros((3, 2), np.int16), du=4095, dv=4096, vth=1,
                   bias_mant=np.array([100, 0, 100], np.int16), bias_exp=np.array([0, 0, 0], np.int8))
    out = IntLayer(weights=np.array([[8, 0, 0], [0, 8, 8]], np.int16), delays=np.array([[delay, 0, 0], [0, 1, delay]]),
                   du=100, dv=4096, vth=10, rec_weights=np.array([[0, 2], [2, 0]], np.int16),
                   rec_delays=np.array([[0, 3], [2, 0]]))
    return IntNetwork(n_in=2, layers=[hot, out])


@pytest.mark.parity
def test_delayed_spikes_do_not_leak_across_samples(monkeypatch):
    net = leaky_network(9)
    x = np.zeros((3, 8, 2), np.uint8)
    a = emu.run(net, x, probes=True)
    assert not compare(a, reference_run(net, x))
    assert not compare(a, nlava.run(net, x, probes=True))
    # the gap is what keeps them apart: without it, the same Lava graph leaks into samples 1, 2
    from neurohw.lava import runner
    monkeypatch.setattr(runner, "window", lambda net, steps: steps)
    leak = compare(a, nlava.run(net, x, probes=True))
    assert leak and all(m.first[0] >= 1 for m in leak)



def test_dense_networks_with_recurrent_delays():
    """Only the recurrent projection delayed: the emulator must not take the plain Dense path."""
    rng = np.random.default_rng(14)
    for _ in range(20):
        net = synth.random_network(rng, p_noise=0.5, p_recurrent=1.0)
        for layer in net.layers:
            layer.rec_delays = synth.random_delays(rng, layer.rec_weights.shape)
        net = IntNetwork(n_in=net.n_in, layers=net.layers, input_message_bits=net.input_message_bits)
        x = synth.random_raster(rng, net, 2, 16)
        assert net.kinds == ["dense"] * len(net.layers)
        assert not compare(emu.run(net, x, probes=True), reference_run(net, x))


@pytest.mark.parity
@pytest.mark.parametrize("graded", [False, True])
def test_vector_rows_equal_reference(graded):
    """The 8-lane paths (neurohw.emu.simd): conv rows of og = 8, 16, 24 output channels per group
    and depthwise convs / pools of C = 8, 12 (8 lanes + 4 scalar) and 16 channels, strides,
    paddings and dilations, binary spikes and graded payloads, weights at both ends of the range:
    emulator (auto and path 'event') = NumPy reference on every spike, u and v. The random suite
    above draws few channels, so it never reaches these paths."""
    from neurohw import Conv2d, sum_pool
    rng = np.random.default_rng(41 + graded)
    bits = 6 if graded else 0
    lif = dict(du=2048, dv=1024)
    cases = []
    for og, groups, C, k, stride, pad, dil in [(8, 1, 2, 3, 1, 1, 1), (16, 1, 3, 3, 2, 1, 1), (8, 2, 4, 2, 1, 0, 2),
                                               (24, 1, 1, 5, 1, 2, 1), (1, 8, 8, 3, 1, 1, 1), (1, 12, 12, 3, 2, 0, 1),
                                               (1, 16, 16, 2, 1, 1, 2)]:
        co = og * groups
        w = rng.integers(-128, 128, (co, k, k, C // groups)) * 2      # mixed sign: even weights
        w.flat[:2] = (-256, 254)
        H, W = int(rng.integers(5, 10)), int(rng.integers(5, 10))
        conv = IntLayer(weights=w, conv=Conv2d((H, W, C), stride=stride, padding=pad, dilation=dil, groups=groups),
                        vth=int(rng.integers(50, 400)), **lif)
        layers = [conv]
        if conv.shape[2] >= 8 and min(conv.shape[:2]) >= 2:
            layers.append(sum_pool(conv.shape, 2, int(rng.integers(1, 40)), vth=30, **lif))
        net = IntNetwork(n_in=H * W * C, layers=layers, input_message_bits=bits)
        cases.append((net, synth.random_raster(rng, net, 3, 8, density=0.3)))
    assert any(project.is_depthwise(n.layers[0]) and not n.layers[0].conv.pool for n, _ in cases)
    bad = [(i, m) for i, (net, x) in enumerate(cases)
           if (m := compare(emu.run(net, x, probes=True), reference_run(net, x))
               + compare(emu.run(net, x, probes=True, path="event"), reference_run(net, x)))]
    assert not bad, bad
    assert all(sum(int(s.sum()) for s in emu.run(net, x).spikes) > 0 for net, x in cases)
